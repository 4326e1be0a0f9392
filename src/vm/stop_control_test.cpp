#include "vm/stop_control.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace hv {
namespace {

TEST(StopControl, FirstRequestWinsAndKicksEveryone) {
  StopControl stop;
  std::atomic<int> kicks = 0;
  stop.on_stop([&] { ++kicks; });
  stop.on_stop([&] { ++kicks; });
  EXPECT_FALSE(stop.stopping());
  EXPECT_FALSE(stop.wait(std::chrono::milliseconds(1)).has_value());
  EXPECT_TRUE(stop.request({StopKind::DebugExit, 7, "first", {}}));
  EXPECT_FALSE(stop.request({StopKind::GuestCrash, 12, "second", {}}));
  EXPECT_TRUE(stop.stopping());
  EXPECT_EQ(kicks.load(), 2);
  auto reason = stop.wait(std::chrono::milliseconds(1));
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->exit_status, 7);
  EXPECT_EQ(reason->message, "first");
}

TEST(StopControl, LateKickRegistrationRunsAtOnce) {
  StopControl stop;
  stop.request({StopKind::PowerOff, 0, "off", {}});
  bool kicked = false;
  stop.on_stop([&] { kicked = true; });
  EXPECT_TRUE(kicked);
}

TEST(StopControl, WaiterWakesOnRequestFromAnotherThread) {
  StopControl stop;
  std::thread t([&] { stop.request({StopKind::Timeout, 14, "late", {}}); });
  auto reason = stop.wait(std::nullopt);
  t.join();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->kind, StopKind::Timeout);
}

}  // namespace
}  // namespace hv
