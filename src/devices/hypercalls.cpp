#include "devices/hypercalls.hpp"

#include <sched.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "devices/debug_exit.hpp"

namespace hv {

namespace hypercall {

std::string_view call_name(uint32_t number) {
  switch (static_cast<Call>(number)) {
    case Call::Version:
      return "VERSION";
    case Call::ConsoleWrite:
      return "CONSOLE_WRITE";
    case Call::MonotonicNs:
      return "MONOTONIC_NS";
    case Call::SetTimer:
      return "SET_TIMER";
    case Call::Yield:
      return "YIELD";
    case Call::PowerOff:
      return "POWER_OFF";
  }
  return "unknown";
}

std::optional<CpuidLeaf> cpuid_leaf(uint32_t leaf, bool vmcall_accepted) {
  CpuidLeaf r;
  switch (leaf) {
    case kCpuidBaseLeaf: {
      r.eax = kCpuidFeaturesLeaf;
      static_assert(kSignature.size() == 12);
      std::memcpy(&r.ebx, kSignature.data(), 4);
      std::memcpy(&r.ecx, kSignature.data() + 4, 4);
      std::memcpy(&r.edx, kSignature.data() + 8, 4);
      return r;
    }
    case kCpuidFeaturesLeaf:
      r.eax = kAbiVersion;
      r.ebx = kDoorbellPort;
      r.ecx = vmcall_accepted ? kFeatureVmcall : 0;
      return r;
    default:
      return std::nullopt;
  }
}

}  // namespace hypercall

void HypercallCounts::append_to(std::vector<ExitCount>& counts) const {
  for (uint32_t number = 0; number <= hypercall::kCallCount; ++number) {
    if (counts_[number] == 0) {
      continue;
    }
    counts.push_back({number < hypercall::kCallCount
                          ? fmt::format("  hypercall {} {}", number, hypercall::call_name(number))
                          : std::string("  hypercall unknown numbers"),
                      counts_[number]});
  }
}

HostHypercallClock::HostHypercallClock() : start_(TimerService::Clock::now()) {}

HostHypercallClock::~HostHypercallClock() {
  shut_down();
}

uint64_t HostHypercallClock::now_ns() {
  const auto elapsed = TimerService::Clock::now() - start_;
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
}

void HostHypercallClock::arm(uint64_t deadline_ns, Expired expired) {
  std::lock_guard lock(mutex_);
  if (shut_down_) {
    return;
  }
  if (!timers_) {
    timers_ = std::make_unique<TimerService>();
    timer_ = timers_->add([this] {
      Expired due;
      {
        std::lock_guard callback_lock(mutex_);
        due = expired_;
      }
      if (due) {
        due();
      }
    });
  }
  expired_ = std::move(expired);
  // deadline_ns is bounded by the caller (kMaxTimerDelayNs past now), so this cannot overflow.
  timers_->arm(timer_, start_ + std::chrono::nanoseconds(deadline_ns));
}

void HostHypercallClock::cancel() {
  std::lock_guard lock(mutex_);
  if (timers_) {
    timers_->cancel(timer_);
  }
}

void HostHypercallClock::shut_down() {
  TimerService* timers = nullptr;
  {
    std::lock_guard lock(mutex_);
    shut_down_ = true;
    timers = timers_.get();
  }
  // remove() waits for a running callback, which takes mutex_: not under it. timers_ itself
  // never changes once shut_down_ is set.
  if (timers != nullptr) {
    timers->remove(timer_);
  }
}

HypercallService::HypercallService(Machine& machine, CharSink* console,
                                   std::unique_ptr<HypercallClock> clock)
    : machine_(machine), console_(console), clock_(std::move(clock)) {
  // The timer raises interrupts through the engine, which is destroyed once the machine has
  // stopped and its vCPUs are joined, before this service: no expiry may come after the stop.
  machine_.stop().on_stop([weak = std::weak_ptr<HypercallClock>(clock_)] {
    if (std::shared_ptr<HypercallClock> timer_clock = weak.lock()) {
      timer_clock->shut_down();
    }
  });
}

HypercallService::~HypercallService() {
  clock_->shut_down();
}

void HypercallService::dispatch(HypercallFrame& frame) {
  using hypercall::Call;
  uint64_t result = hypercall::error_result(ENOSYS);
  switch (static_cast<Call>(frame.number())) {
    case Call::Version:
      result = hypercall::kAbiVersion;
      break;
    case Call::ConsoleWrite:
      result = console_write(frame.argument(0), frame.argument(1));
      break;
    case Call::MonotonicNs:
      result = clock_->now_ns();
      break;
    case Call::SetTimer:
      result = set_timer(frame.argument(0), frame.argument(1));
      break;
    case Call::Yield:
      ::sched_yield();
      result = 0;
      break;
    case Call::PowerOff:
      result = power_off(frame.argument(0));
      break;
  }
  frame.set_result(result);
}

uint64_t HypercallService::console_write(uint64_t address, uint64_t length) {
  if (length > hypercall::kMaxConsoleWrite) {
    return hypercall::error_result(E2BIG);
  }
  if (length == 0) {
    return 0;
  }
  // host_pointer() checks the whole range against RAM without overflowing on hostile values.
  const uint8_t* bytes = machine_.memory().host_pointer(address, length);
  if (bytes == nullptr) {
    return hypercall::error_result(EFAULT);
  }
  if (console_ != nullptr) {
    std::lock_guard lock(console_mutex_);
    console_->write(std::span<const uint8_t>(bytes, length));
  }
  return length;
}

uint64_t HypercallService::set_timer(uint64_t delay_ns, uint64_t gsi) {
  if (delay_ns == 0) {
    clock_->cancel();
    return 0;
  }
  if (delay_ns > hypercall::kMaxTimerDelayNs || gsi >= hypercall::kTimerGsiCount) {
    return hypercall::error_result(EINVAL);
  }
  const auto line = static_cast<uint32_t>(gsi);
  clock_->arm(clock_->now_ns() + delay_ns, [this, line] { timer_expired(line); });
  return 0;
}

void HypercallService::timer_expired(uint32_t gsi) {
  // An edge: edge-triggered inputs (the PIC's IRQ 0, I/O APIC pins set to edge) latch it.
  IrqLine line = machine_.irq_line(gsi);
  line.raise();
  line.lower();
}

uint64_t HypercallService::power_off(uint64_t status) {
  if (status > hypercall::kMaxPowerOffStatus) {
    return hypercall::error_result(EINVAL);
  }
  if (status == 0) {
    machine_.stop().request(
        {StopKind::PowerOff, 0, "guest powered off through the POWER_OFF hypercall", ""});
  } else {
    machine_.stop().request({StopKind::DebugExit, DebugExit::exit_status_for(status),
                             fmt::format("guest powered off with status {} (POWER_OFF "
                                         "hypercall)",
                                         status),
                             ""});
  }
  return 0;
}

void HypercallService::read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
}

void HypercallService::write(uint64_t, std::span<const uint8_t>) {}

}  // namespace hv
