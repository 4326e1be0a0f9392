// hv's para-virtual call interface (docs/hypercalls.md is the guest author's reference): a guest
// finds it through CPUID leaves 0x40000100-0x40000101, and calls it with a 32-bit OUT to the
// doorbell port (or, on the emulation engine, with VMCALL), the call number in EAX and the
// arguments in RBX, RCX, RSI, RDI.
//
// The calls are implemented once, here, by HypercallService; an engine only reads the caller's
// registers into a HypercallFrame, runs dispatch() and writes the frame's result back. Every
// value in a frame comes from the guest and is checked before it is used.
#pragma once

#include <array>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "devices/char_sink.hpp"
#include "devices/timer_service.hpp"
#include "vm/engine.hpp"
#include "vm/io_device.hpp"
#include "vm/machine.hpp"

namespace hv {

namespace hypercall {

// Leaf 0x40000000 stays free for the host's own paravirtual leaves (KVM's "KVMKVMKVM"), which
// Linux looks for there first.
constexpr uint32_t kCpuidBaseLeaf = 0x4000'0100;
constexpr uint32_t kCpuidFeaturesLeaf = 0x4000'0101;
constexpr std::string_view kSignature = "hvHypervisor";  // EBX, ECX, EDX of the base leaf
constexpr uint32_t kAbiVersion = 1;
// Not used by any PC device hv has (see pc_platform.hpp) nor by QEMU's pc machine.
constexpr uint16_t kDoorbellPort = 0x0cb0;
constexpr uint32_t kDoorbellWidth = 4;
// Feature bits in ECX of the features leaf.
constexpr uint32_t kFeatureVmcall = 1u << 0;

enum class Call : uint32_t {
  Version = 0,
  ConsoleWrite = 1,
  MonotonicNs = 2,
  SetTimer = 3,
  Yield = 4,
  PowerOff = 5,
};
constexpr uint32_t kCallCount = 6;

// Limits on what a guest may ask for.
constexpr uint64_t kMaxConsoleWrite = 64 * 1024;
constexpr uint64_t kMaxTimerDelayNs = 86'400ull * 1'000'000'000;  // one day
constexpr uint64_t kTimerGsiCount = 24;                           // the I/O APIC's inputs
constexpr uint64_t kMaxPowerOffStatus = 127;

// Negative errno values as the guest sees them: two's complement in RAX (and EDX:EAX).
constexpr uint64_t error_result(int error) {
  return static_cast<uint64_t>(-static_cast<int64_t>(error));
}

// The name of a call for exit counters and messages; "unknown" past the known ones.
std::string_view call_name(uint32_t number);

struct CpuidLeaf {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};
// The leaves an engine advertises when its machine has a HypercallService; nullopt for any other
// leaf. `vmcall_accepted`: the engine takes VMCALL as well as the doorbell port.
std::optional<CpuidLeaf> cpuid_leaf(uint32_t leaf, bool vmcall_accepted);

}  // namespace hypercall

// One call's registers as the engine read them, and its result once dispatched. In 64-bit code
// the registers count whole; in any other mode only their low 32 bits, because the upper halves
// hold whatever long mode (or nothing) left there.
struct HypercallFrame {
  bool wide = false;  // the caller runs 64-bit code
  uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0;

  uint32_t number() const { return static_cast<uint32_t>(rax); }
  // Arguments 0-3: RBX, RCX, RSI, RDI.
  uint64_t argument(size_t index) const {
    const uint64_t value = index == 0 ? rbx : index == 1 ? rcx : index == 2 ? rsi : rdi;
    return wide ? value : (value & 0xffff'ffff);
  }
  // RAX gets the result; 32-bit callers get its high half in EDX as well (EDX:EAX).
  void set_result(uint64_t result) {
    if (wide) {
      rax = result;
    } else {
      rax = result & 0xffff'ffff;
      rdx = result >> 32;
    }
  }
};

// Calls per number, kept by each vCPU without locks and added to its engine's exit counters.
class HypercallCounts {
 public:
  void count(uint32_t number) {
    ++counts_[number < hypercall::kCallCount ? number : hypercall::kCallCount];
  }
  uint64_t of(uint32_t number) const {
    return counts_[number < hypercall::kCallCount ? number : hypercall::kCallCount];
  }
  // One "  hypercall N NAME" entry per number called (the leading spaces keep them out of the
  // VM-exit total: each one is also a port-I/O exit on KVM).
  void append_to(std::vector<ExitCount>& counts) const;

 private:
  std::array<uint64_t, hypercall::kCallCount + 1> counts_{};
};

// MONOTONIC_NS's clock and SET_TIMER's one timer. Tests substitute a fake one.
class HypercallClock {
 public:
  using Expired = std::function<void()>;
  virtual ~HypercallClock() = default;
  // Nanoseconds since the clock was made.
  virtual uint64_t now_ns() = 0;
  // (Re)arms the one timer to call `expired` at now_ns() == deadline_ns; replaces a pending one.
  virtual void arm(uint64_t deadline_ns, Expired expired) = 0;
  virtual void cancel() = 0;
  // No expiry runs after this returns (one running now is waited for); arm() does nothing more.
  virtual void shut_down() = 0;
};

// The host's monotonic clock and a TimerService thread, started by the first arm() so that a
// guest that never sets a timer costs no thread.
class HostHypercallClock final : public HypercallClock {
 public:
  HostHypercallClock();
  ~HostHypercallClock() override;
  uint64_t now_ns() override;
  void arm(uint64_t deadline_ns, Expired expired) override;
  void cancel() override;
  void shut_down() override;

 private:
  const TimerService::Clock::time_point start_;
  std::mutex mutex_;  // guards everything below; taken before the TimerService's own lock
  std::unique_ptr<TimerService> timers_;
  TimerService::TimerId timer_ = TimerService::kNoTimer;
  Expired expired_;
  bool shut_down_ = false;
};

// The calls themselves. Also an IoDevice on the doorbell port, so that no other device can take
// the port and accesses that are not calls (other widths, IN, string I/O) read all ones and are
// otherwise ignored. Thread-safe: every vCPU may call at once.
class HypercallService final : public IoDevice {
 public:
  // Console output goes to `console` (may be null: CONSOLE_WRITE then writes nowhere and still
  // succeeds). Stops the timer when the machine stops, before the engine that delivers its
  // interrupt goes away.
  HypercallService(Machine& machine, CharSink* console,
                   std::unique_ptr<HypercallClock> clock = std::make_unique<HostHypercallClock>());
  ~HypercallService() override;
  HypercallService(const HypercallService&) = delete;
  HypercallService& operator=(const HypercallService&) = delete;

  // Runs the call in `frame` and stores its result there. POWER_OFF that succeeds has requested
  // the machine's stop: the engine must not run the caller's next instruction.
  void dispatch(HypercallFrame& frame);

  std::string_view name() const override { return "hypercall-doorbell"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  uint64_t console_write(uint64_t address, uint64_t length);
  uint64_t set_timer(uint64_t delay_ns, uint64_t gsi);
  uint64_t power_off(uint64_t status);
  void timer_expired(uint32_t gsi);

  Machine& machine_;
  CharSink* console_;
  std::mutex console_mutex_;               // one call's bytes reach the sink together
  std::shared_ptr<HypercallClock> clock_;  // shared with the machine's stop hook (weakly)
};

}  // namespace hv
