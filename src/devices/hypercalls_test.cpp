#include "devices/hypercalls.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "devices/device_test_support.hpp"

namespace hv {
namespace {

using hypercall::Call;
using hypercall::error_result;

// Time stands still until the test moves it; the timer fires only when the test says so.
class FakeClock final : public HypercallClock {
 public:
  uint64_t now_ns() override { return now; }
  void arm(uint64_t deadline_ns, Expired expired) override {
    if (!shut) {
      deadline = deadline_ns;
      expired_ = std::move(expired);
    }
  }
  void cancel() override {
    deadline.reset();
    ++cancels;
  }
  void shut_down() override {
    shut = true;
    deadline.reset();
  }
  // Moves time to the deadline and runs the expiry, as the timer thread would.
  void expire() {
    ASSERT_TRUE(deadline.has_value());
    now = *deadline;
    deadline.reset();
    expired_();
  }

  uint64_t now = 0;
  std::optional<uint64_t> deadline;
  int cancels = 0;
  bool shut = false;

 private:
  Expired expired_;
};

// Keeps each write apart, to check that one call is one write.
class WriteRecordingSink final : public CharSink {
 public:
  void write(std::span<const uint8_t> bytes) override {
    writes.emplace_back(bytes.begin(), bytes.end());
  }
  std::vector<std::string> writes;
};

class HypercallServiceTest : public ::testing::Test {
 protected:
  HypercallServiceTest() {
    auto clock = std::make_unique<FakeClock>();
    clock_ = clock.get();
    service_ = std::make_unique<HypercallService>(*vm_.machine, &console_, std::move(clock));
  }

  // A call from 64-bit code: arguments in RBX, RCX, RSI, RDI.
  uint64_t call(uint64_t number, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
                uint64_t a3 = 0) {
    HypercallFrame frame{.wide = true, .rax = number, .rbx = a0, .rcx = a1, .rsi = a2, .rdi = a3};
    service_->dispatch(frame);
    return frame.rax;
  }
  uint64_t call(Call number, uint64_t a0 = 0, uint64_t a1 = 0) {
    return call(static_cast<uint64_t>(number), a0, a1);
  }
  void put_text(uint64_t address, std::string_view text) {
    ASSERT_TRUE(
        vm_.machine->memory()
            .write(address, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()))
            .ok());
  }

  device_test::TestMachine vm_;  // 2 MiB of RAM
  WriteRecordingSink console_;
  FakeClock* clock_ = nullptr;
  std::unique_ptr<HypercallService> service_;
};

TEST(HypercallAbi, CpuidLeavesCarryTheSignatureVersionDoorbellAndFeatures) {
  const auto base = hypercall::cpuid_leaf(0x4000'0100, false);
  ASSERT_TRUE(base.has_value());
  EXPECT_EQ(base->eax, 0x4000'0101u);
  char signature[13] = {};
  std::memcpy(signature, &base->ebx, 4);
  std::memcpy(signature + 4, &base->ecx, 4);
  std::memcpy(signature + 8, &base->edx, 4);
  EXPECT_STREQ(signature, "hvHypervisor");

  const auto features = hypercall::cpuid_leaf(0x4000'0101, false);
  ASSERT_TRUE(features.has_value());
  EXPECT_EQ(features->eax, 1u);
  EXPECT_EQ(features->ebx, 0xcb0u);
  EXPECT_EQ(features->ecx, 0u);
  EXPECT_EQ(hypercall::cpuid_leaf(0x4000'0101, true)->ecx, hypercall::kFeatureVmcall);

  // KVM's own leaves and the ones past the range are not hv's.
  EXPECT_FALSE(hypercall::cpuid_leaf(0x4000'0000, true).has_value());
  EXPECT_FALSE(hypercall::cpuid_leaf(0x4000'0102, true).has_value());
}

TEST(HypercallAbi, ThirtyTwoBitCallersUseTheLowHalvesAndGetResultsInEdxEax) {
  HypercallFrame frame{.wide = false, .rax = 0xdead'0000'0000'0001, .rbx = 0xffff'ffff'0000'1000};
  EXPECT_EQ(frame.number(), 1u);
  EXPECT_EQ(frame.argument(0), 0x1000u);
  frame.set_result(error_result(EFAULT));
  EXPECT_EQ(frame.rax, 0xffff'fff2u);
  EXPECT_EQ(frame.rdx, 0xffff'ffffu);

  HypercallFrame wide{.wide = true, .rbx = 0xffff'ffff'0000'1000, .rdx = 0xcb0};
  EXPECT_EQ(wide.argument(0), 0xffff'ffff'0000'1000u);
  wide.set_result(0x1'0000'0002);
  EXPECT_EQ(wide.rax, 0x1'0000'0002u);
  EXPECT_EQ(wide.rdx, 0xcb0u) << "64-bit callers keep RDX";
}

TEST(HypercallAbi, CountsAreNamedPerNumberAndKeptOutOfTheExitTotals) {
  HypercallCounts counts;
  counts.count(1);
  counts.count(1);
  counts.count(5);
  counts.count(1000);
  std::vector<ExitCount> out;
  counts.append_to(out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].reason, "  hypercall 1 CONSOLE_WRITE");
  EXPECT_EQ(out[0].count, 2u);
  EXPECT_EQ(out[1].reason, "  hypercall 5 POWER_OFF");
  EXPECT_EQ(out[2].reason, "  hypercall unknown numbers");
  EXPECT_EQ(counts.of(1), 2u);
  EXPECT_EQ(counts.of(77), 1u);  // with every other unknown number
}

TEST_F(HypercallServiceTest, VersionIsTheAbiVersion) {
  EXPECT_EQ(call(Call::Version), 1u);
}

TEST_F(HypercallServiceTest, UnknownNumbersReturnEnosys) {
  EXPECT_EQ(call(6), error_result(ENOSYS));
  EXPECT_EQ(call(0xffff'ffff), error_result(ENOSYS));
  // The number is EAX: what lies above it does not make another call.
  EXPECT_EQ(call(0x1'0000'0000), 1u);
}

TEST_F(HypercallServiceTest, ConsoleWriteSendsTheWholeBufferInOneWrite) {
  put_text(0x1000, "hello, console\n");
  EXPECT_EQ(call(Call::ConsoleWrite, 0x1000, 15), 15u);
  ASSERT_EQ(console_.writes.size(), 1u);
  EXPECT_EQ(console_.writes[0], "hello, console\n");
}

TEST_F(HypercallServiceTest, ConsoleWriteOfNothingWritesNothing) {
  EXPECT_EQ(call(Call::ConsoleWrite, 0x1000, 0), 0u);
  EXPECT_EQ(call(Call::ConsoleWrite, ~0ull, 0), 0u);
  EXPECT_TRUE(console_.writes.empty());
}

TEST_F(HypercallServiceTest, ConsoleWriteOutsideRamIsEfaultAndWritesNothing) {
  const uint64_t ram = 2 << 20;
  EXPECT_EQ(call(Call::ConsoleWrite, ram - 4, 4), 4u);  // the last bytes are fine
  console_.writes.clear();
  EXPECT_EQ(call(Call::ConsoleWrite, ram - 4, 5), error_result(EFAULT));  // one byte past
  EXPECT_EQ(call(Call::ConsoleWrite, ram, 1), error_result(EFAULT));
  EXPECT_EQ(call(Call::ConsoleWrite, 0xfee0'0000, 16), error_result(EFAULT));  // MMIO
  // Ranges that wrap around the address space must not pass the check.
  EXPECT_EQ(call(Call::ConsoleWrite, ~0ull, 2), error_result(EFAULT));
  EXPECT_EQ(call(Call::ConsoleWrite, ~0ull - 0xfff, 0x1000), error_result(EFAULT));
  EXPECT_TRUE(console_.writes.empty());
}

TEST_F(HypercallServiceTest, ConsoleWriteLongerThanTheCapIsE2big) {
  EXPECT_EQ(call(Call::ConsoleWrite, 0, hypercall::kMaxConsoleWrite), hypercall::kMaxConsoleWrite);
  EXPECT_EQ(call(Call::ConsoleWrite, 0, hypercall::kMaxConsoleWrite + 1), error_result(E2BIG));
  EXPECT_EQ(call(Call::ConsoleWrite, 0, ~0ull), error_result(E2BIG));
  EXPECT_EQ(console_.writes.size(), 1u);
}

TEST_F(HypercallServiceTest, ConsoleWriteWithoutASinkStillSucceeds) {
  HypercallService service(*vm_.machine, nullptr, std::make_unique<FakeClock>());
  HypercallFrame frame{.wide = true, .rax = 1, .rbx = 0x1000, .rcx = 8};
  service.dispatch(frame);
  EXPECT_EQ(frame.rax, 8u);
}

TEST_F(HypercallServiceTest, MonotonicNsReadsTheClock) {
  clock_->now = 123'456'789;
  EXPECT_EQ(call(Call::MonotonicNs), 123'456'789u);
}

TEST_F(HypercallServiceTest, SetTimerPulsesTheGsiOnceAtTheDeadline) {
  clock_->now = 1000;
  EXPECT_EQ(call(Call::SetTimer, 10'000'000, 0), 0u);
  ASSERT_TRUE(clock_->deadline.has_value());
  EXPECT_EQ(*clock_->deadline, 10'001'000u);
  EXPECT_EQ(vm_.irqs.rising_edges(0), 0);
  clock_->expire();
  EXPECT_EQ(vm_.irqs.rising_edges(0), 1);
  EXPECT_FALSE(vm_.irqs.level(0)) << "an edge: the line goes low again";
  EXPECT_FALSE(clock_->deadline.has_value()) << "one-shot: the guest re-arms it";
}

TEST_F(HypercallServiceTest, SetTimerOnAnotherGsiAndReArming) {
  EXPECT_EQ(call(Call::SetTimer, 500, 23), 0u);
  EXPECT_EQ(call(Call::SetTimer, 700, 5), 0u);  // replaces the pending one
  EXPECT_EQ(*clock_->deadline, 700u);
  clock_->expire();
  EXPECT_EQ(vm_.irqs.rising_edges(5), 1);
  EXPECT_EQ(vm_.irqs.rising_edges(23), 0);
}

TEST_F(HypercallServiceTest, SetTimerWithZeroDelayCancels) {
  EXPECT_EQ(call(Call::SetTimer, 500, 0), 0u);
  EXPECT_EQ(call(Call::SetTimer, 0, 0), 0u);
  EXPECT_FALSE(clock_->deadline.has_value());
  EXPECT_EQ(clock_->cancels, 1);
  // Cancelling with nothing armed is no error, whatever the GSI says.
  EXPECT_EQ(call(Call::SetTimer, 0, 9999), 0u);
}

TEST_F(HypercallServiceTest, SetTimerRejectsBadGsisAndDelays) {
  EXPECT_EQ(call(Call::SetTimer, 500, 24), error_result(EINVAL));
  EXPECT_EQ(call(Call::SetTimer, 500, ~0ull), error_result(EINVAL));
  EXPECT_EQ(call(Call::SetTimer, hypercall::kMaxTimerDelayNs + 1, 0), error_result(EINVAL));
  EXPECT_EQ(call(Call::SetTimer, ~0ull, 0), error_result(EINVAL));
  EXPECT_FALSE(clock_->deadline.has_value());
  EXPECT_EQ(call(Call::SetTimer, hypercall::kMaxTimerDelayNs, 0), 0u);
}

TEST_F(HypercallServiceTest, YieldReturnsZero) {
  EXPECT_EQ(call(Call::Yield), 0u);
}

TEST_F(HypercallServiceTest, PowerOffWithStatusZeroIsAPowerOff) {
  EXPECT_EQ(call(Call::PowerOff, 0), 0u);
  std::optional<StopReason> reason = vm_.stop_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->kind, StopKind::PowerOff);
  EXPECT_EQ(reason->exit_status, 0);
}

TEST_F(HypercallServiceTest, PowerOffWithAStatusEndsAsADebugExitWriteWould) {
  EXPECT_EQ(call(Call::PowerOff, 3), 0u);
  std::optional<StopReason> reason = vm_.stop_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->kind, StopKind::DebugExit);
  EXPECT_EQ(reason->exit_status, 7);  // (3 << 1) | 1
}

TEST_F(HypercallServiceTest, PowerOffRejectsStatusesThatDoNotFitAnExitStatus) {
  EXPECT_EQ(call(Call::PowerOff, 128), error_result(EINVAL));
  EXPECT_EQ(call(Call::PowerOff, ~0ull), error_result(EINVAL));
  EXPECT_FALSE(vm_.stop_reason(10).has_value());
}

TEST_F(HypercallServiceTest, TheMachineStoppingShutsTheTimerDown) {
  EXPECT_EQ(call(Call::SetTimer, 500, 0), 0u);
  vm_.machine->stop().request({StopKind::UserQuit, 0, "test", {}});
  EXPECT_TRUE(clock_->shut);
  EXPECT_FALSE(clock_->deadline.has_value());
}

TEST_F(HypercallServiceTest, TheDoorbellPortOutsideACallReadsAllOnes) {
  uint8_t data[4] = {};
  service_->read(0, data);
  EXPECT_EQ(io_value(data), 0xffff'ffffu);
  const uint8_t value[4] = {5, 0, 0, 0};  // POWER_OFF's number, but not through an engine
  service_->write(0, value);
  EXPECT_FALSE(vm_.stop_reason(10).has_value());
}

// The host clock's timer: a real thread, deadlines in host time.
TEST(HostHypercallClock, FiresOnceAndNeverAfterShutDown) {
  HostHypercallClock clock;
  const uint64_t start = clock.now_ns();
  std::mutex mutex;
  std::condition_variable fired_cv;
  int fired = 0;
  uint64_t fired_at = 0;
  clock.arm(start + 2'000'000, [&] {
    std::lock_guard lock(mutex);
    ++fired;
    fired_at = clock.now_ns();
    fired_cv.notify_all();
  });
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(fired_cv.wait_for(lock, std::chrono::seconds(10), [&] { return fired == 1; }));
    EXPECT_GE(fired_at, start + 2'000'000);
  }
  EXPECT_GE(clock.now_ns(), fired_at);

  clock.shut_down();
  std::atomic<bool> late{false};
  clock.arm(clock.now_ns(), [&] { late = true; });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(late.load());
}

TEST(HostHypercallClock, CancelledTimersDoNotFire) {
  HostHypercallClock clock;
  std::atomic<bool> fired{false};
  clock.arm(clock.now_ns() + 20'000'000, [&] { fired = true; });
  clock.cancel();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(fired.load());
}

}  // namespace
}  // namespace hv
