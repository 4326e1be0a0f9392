#include "devices/debug_exit.hpp"

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"

namespace hv {
namespace {

constexpr uint64_t kPort = 0xf4;

class DebugExitTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(vm_.pio().add(kPort, DebugExit::kPortCount, &device_).ok()); }
  device_test::TestMachine vm_;
  DebugExit device_{vm_.machine->stop()};
};

TEST_F(DebugExitTest, ValueZeroExitsWithStatusOne) {
  EXPECT_FALSE(vm_.stop_reason(1).has_value());
  vm_.outb(kPort, 0);
  auto reason = vm_.stop_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->kind, StopKind::DebugExit);
  EXPECT_EQ(reason->exit_status, 1);
  EXPECT_EQ(reason->message, "guest wrote 0x0 to the debug-exit port");
}

TEST_F(DebugExitTest, Value0x10ExitsWithStatus33) {
  vm_.outl(kPort, 0x10);
  auto reason = vm_.stop_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->kind, StopKind::DebugExit);
  EXPECT_EQ(reason->exit_status, 33);
  EXPECT_EQ(reason->message, "guest wrote 0x10 to the debug-exit port");
}

TEST_F(DebugExitTest, StatusIsTakenModulo256AtAnyWidthAndOffset) {
  EXPECT_EQ(DebugExit::exit_status_for(0x7f), 0xff);
  EXPECT_EQ(DebugExit::exit_status_for(0x80), 0x01);
  EXPECT_EQ(DebugExit::exit_status_for(~0ull), 0xff);
  vm_.out(kPort + 3, 0x1234'5678'9abc'def0ull, 8);
  auto reason = vm_.stop_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->exit_status, 0xe1);  // (0xf0 << 1 | 1) & 0xff
}

TEST_F(DebugExitTest, ReadsReturnAllOnes) {
  EXPECT_EQ(vm_.inl(kPort), 0xffffffffu);
  EXPECT_EQ(vm_.inb(kPort + 2), 0xff);
  EXPECT_FALSE(vm_.stop_reason(1).has_value());
}

}  // namespace
}  // namespace hv
