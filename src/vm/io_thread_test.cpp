#include "vm/io_thread.hpp"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace hv {
namespace {

using namespace std::chrono_literals;

uint64_t drain(int fd) {
  uint64_t value = 0;
  return ::read(fd, &value, sizeof(value)) == sizeof(value) ? value : 0;
}

void signal(int fd, uint64_t times = 1) {
  [[maybe_unused]] ssize_t n = ::write(fd, &times, sizeof(times));
}

bool eventually(const std::function<bool()>& condition) {
  for (int i = 0; i < 500; ++i) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

TEST(IoThread, RunsTheHandlerOfEachReadyDescriptorOnItsThread) {
  auto io = IoThread::create("hv-io-test");
  ASSERT_TRUE(io.ok()) << io.error().to_string();
  Fd first(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  Fd second(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  std::atomic<uint64_t> first_count{0}, second_count{0};
  std::atomic<bool> on_other_thread{true};
  const auto test_thread = std::this_thread::get_id();
  ASSERT_TRUE((*io)
                  ->add(first.get(),
                        [&] {
                          first_count += drain(first.get());
                          on_other_thread =
                              on_other_thread && std::this_thread::get_id() != test_thread;
                        })
                  .ok());
  ASSERT_TRUE((*io)->add(second.get(), [&] { second_count += drain(second.get()); }).ok());
  ASSERT_TRUE((*io)->start().ok());
  signal(first.get(), 3);
  signal(second.get());
  EXPECT_TRUE(eventually([&] { return first_count == 3 && second_count == 1; }));
  signal(first.get());
  EXPECT_TRUE(eventually([&] { return first_count == 4; }));
  EXPECT_TRUE(on_other_thread);
  (*io)->stop();
  signal(first.get());  // stopped: nobody handles it
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(first_count, 4u);
}

TEST(IoThread, AddingABadDescriptorFails) {
  auto io = IoThread::create("hv-io-test");
  ASSERT_TRUE(io.ok());
  EXPECT_FALSE((*io)->add(-1, [] {}).ok());
  EXPECT_TRUE((*io)->start().ok());
  EXPECT_FALSE((*io)->start().ok());
}

TEST(IoThread, APausedDescriptorIsNotWatchedUntilResumed) {
  auto io = IoThread::create("hv-io-test");
  ASSERT_TRUE(io.ok()) << io.error().to_string();
  Fd ready(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  std::atomic<int> runs{0};
  // The handler leaves the eventfd readable and pauses it itself, as a device with nowhere to put
  // the data would: level-triggered, it would otherwise run again at once.
  ASSERT_TRUE((*io)
                  ->add(ready.get(),
                        [&] {
                          ++runs;
                          EXPECT_TRUE((*io)->pause(ready.get()).ok());
                        })
                  .ok());
  ASSERT_TRUE((*io)->start().ok());
  signal(ready.get());
  EXPECT_TRUE(eventually([&] { return runs == 1; }));
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE((*io)->pause(ready.get()).ok());  // already paused: nothing changes

  // Resumed from another thread: still readable, so the handler runs (and pauses) again.
  EXPECT_TRUE((*io)->resume(ready.get()).ok());
  EXPECT_TRUE(eventually([&] { return runs == 2; }));
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(drain(ready.get()), 1u);
  EXPECT_TRUE((*io)->resume(ready.get()).ok());
  EXPECT_TRUE((*io)->resume(ready.get()).ok());  // already watched: nothing changes
  signal(ready.get());
  EXPECT_TRUE(eventually([&] { return runs == 3; }));
}

TEST(IoThread, PausingAnUnknownDescriptorFails) {
  auto io = IoThread::create("hv-io-test");
  ASSERT_TRUE(io.ok());
  Fd unknown(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  EXPECT_FALSE((*io)->pause(unknown.get()).ok());
  EXPECT_FALSE((*io)->resume(unknown.get()).ok());
}

}  // namespace
}  // namespace hv
