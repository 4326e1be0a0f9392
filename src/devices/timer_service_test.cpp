#include "devices/timer_service.hpp"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace hv {
namespace {

using namespace std::chrono_literals;
using Clock = TimerService::Clock;

bool wait_for(const std::atomic<int>& value, int expected, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (value.load() < expected && Clock::now() < end) {
    std::this_thread::sleep_for(200us);
  }
  return value.load() >= expected;
}

TEST(TimerServiceTest, FiresNotBeforeItsDeadline) {
  TimerService timers;
  std::atomic<int> fired{0};
  Clock::time_point fired_at;
  const TimerService::TimerId id = timers.add([&] {
    fired_at = Clock::now();
    ++fired;
  });
  const auto deadline = Clock::now() + 5ms;
  timers.arm(id, deadline);
  ASSERT_TRUE(wait_for(fired, 1, 500ms));
  EXPECT_GE(fired_at, deadline);
  EXPECT_LT(fired_at, deadline + 50ms);  // generous: the CI machine is busy
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(fired.load(), 1);  // one arm, one call
}

TEST(TimerServiceTest, EarlierDeadlineFiresFirst) {
  TimerService timers;
  std::atomic<int> order{0};
  std::atomic<int> late_rank{0};
  std::atomic<int> early_rank{0};
  const auto late = timers.add([&] { late_rank = ++order; });
  const auto early = timers.add([&] { early_rank = ++order; });
  timers.arm(late, Clock::now() + 20ms);
  timers.arm(early, Clock::now() + 2ms);
  ASSERT_TRUE(wait_for(order, 2, 500ms));
  EXPECT_EQ(early_rank.load(), 1);
  EXPECT_EQ(late_rank.load(), 2);
}

TEST(TimerServiceTest, CancelAndRearm) {
  TimerService timers;
  std::atomic<int> fired{0};
  const auto id = timers.add([&] { ++fired; });
  timers.arm(id, Clock::now() + 5ms);
  timers.cancel(id);
  std::this_thread::sleep_for(15ms);
  EXPECT_EQ(fired.load(), 0);
  // Re-arming moves the deadline instead of adding a second one.
  timers.arm(id, Clock::now() + 50ms);
  timers.arm(id, Clock::now() + 1ms);
  ASSERT_TRUE(wait_for(fired, 1, 500ms));
  std::this_thread::sleep_for(60ms);
  EXPECT_EQ(fired.load(), 1);
}

TEST(TimerServiceTest, CallbackCanRearmItself) {
  TimerService timers;
  std::atomic<int> fired{0};
  TimerService::TimerId id = TimerService::kNoTimer;
  id = timers.add([&] {
    if (++fired < 5) {
      timers.arm(id, Clock::now() + 1ms);
    }
  });
  timers.arm(id, Clock::now());
  ASSERT_TRUE(wait_for(fired, 5, 500ms));
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(fired.load(), 5);
}

TEST(TimerServiceTest, RemoveWaitsForARunningCallback) {
  TimerService timers;
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  const auto id = timers.add([&] {
    started = true;
    std::this_thread::sleep_for(20ms);
    finished = true;
  });
  timers.arm(id, Clock::now());
  while (!started) {
    std::this_thread::sleep_for(100us);
  }
  timers.remove(id);
  EXPECT_TRUE(finished.load());
  timers.arm(id, Clock::now());  // unknown now: ignored
}

}  // namespace
}  // namespace hv
