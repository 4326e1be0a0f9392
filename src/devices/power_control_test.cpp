#include "devices/power_control.hpp"

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"

namespace hv {
namespace {

class PowerControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(vm_.pio().add(0x604, pm1a_.width(), &pm1a_).ok());
    ASSERT_TRUE(vm_.pio().add(0xb004, pm1a_.width(), &pm1a_).ok());
    ASSERT_TRUE(vm_.pio().add(0xcf9, reset_.width(), &reset_).ok());
  }
  void expect_stop(StopKind kind) {
    auto reason = vm_.stop_reason();
    ASSERT_TRUE(reason.has_value());
    EXPECT_EQ(reason->kind, kind);
    EXPECT_EQ(reason->exit_status, 0);
  }

  device_test::TestMachine vm_;
  PowerControl pm1a_{vm_.machine->stop(), PowerControl::Kind::Pm1aControl};
  PowerControl reset_{vm_.machine->stop(), PowerControl::Kind::ResetControl};
};

TEST_F(PowerControlTest, SleepEnableOn0x604PowersOff) {
  vm_.outw(0x604, 0x2000 | (5 << 10));  // SLP_EN with SLP_TYP 5, as QEMU's \_S5 asks
  expect_stop(StopKind::PowerOff);
}

TEST_F(PowerControlTest, SleepEnableOnBochsPortPowersOff) {
  vm_.outw(0xb004, 0x2000);
  expect_stop(StopKind::PowerOff);
}

TEST_F(PowerControlTest, WritesWithoutSleepEnableDoNothing) {
  EXPECT_EQ(vm_.inw(0x604), 0x0001);  // SCI_EN: ACPI mode is on
  vm_.outw(0x604, 0x1401);            // SLP_TYP 5 without SLP_EN
  vm_.outb(0x604, 0xff);              // the low byte cannot reach bit 13
  vm_.outw(0xcf9, 0x0002);            // SYS_RST alone does not reset
  EXPECT_FALSE(vm_.stop_reason(10).has_value());
  EXPECT_EQ(vm_.inw(0x604), 0x14ff);
  EXPECT_EQ(vm_.inb(0xcf9), 0x02);
}

TEST_F(PowerControlTest, HighByteWriteReachesSleepEnable) {
  vm_.outb(0x605, 0x20);
  expect_stop(StopKind::PowerOff);
  EXPECT_EQ(vm_.inw(0x604) & 0x2000, 0);  // SLP_EN always reads 0
}

TEST_F(PowerControlTest, ResetControlRstBitResets) {
  vm_.outb(0xcf9, 0x02);
  EXPECT_FALSE(vm_.stop_reason(1).has_value());
  vm_.outb(0xcf9, 0x06);  // what Linux's reboot=pci writes
  expect_stop(StopKind::Reset);
  EXPECT_EQ(vm_.inb(0xcf9), 0x06);
}

TEST_F(PowerControlTest, BytesPastTheRegisterAreIgnored) {
  EXPECT_EQ(vm_.inl(0x604), 0xffff0001u);
  EXPECT_EQ(vm_.inl(0xcf9), 0xffffff00u);
  vm_.out(0xcf9, 0x0400, 2);  // RST in the byte that is not ours
  vm_.out(0x604, 0x2000'0000ull, 4);
  EXPECT_FALSE(vm_.stop_reason(10).has_value());
  EXPECT_EQ(pm1a_.name(), "acpi-pm1a-control");
  EXPECT_EQ(reset_.name(), "reset-control");
}

}  // namespace
}  // namespace hv
