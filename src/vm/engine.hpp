// The interface both CPU engines implement: hardware-assisted (KVM) and software (emulator).
// An engine runs the vCPUs of one Machine; everything the guest touches besides its CPUs (memory,
// devices, interrupt lines) belongs to the Machine and is shared by both engines.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "vm/cpu_state.hpp"
#include "vm/machine.hpp"

namespace hv {

class Vcpu {
 public:
  virtual ~Vcpu() = default;
  virtual uint32_t index() const = 0;
  virtual Result<CpuState> state() = 0;
  virtual Status set_state(const CpuState& state) = 0;
  // Runs guest code on the calling thread until the machine stops. Port and MMIO accesses go to
  // the Machine's buses; a guest crash is reported through machine.stop() with a register dump.
  virtual void run() = 0;
  // Thread-safe: makes run() return promptly once a stop has been requested.
  virtual void kick() = 0;
};

struct ExitCount {
  std::string reason;
  uint64_t count;
};

// Per-reason totals that vCPU threads add to when they finish; both engines keep one.
class ExitCounters {
 public:
  void add(const std::vector<ExitCount>& counts) {
    std::lock_guard lock(mutex_);
    for (const ExitCount& c : counts) {
      auto it = std::find_if(totals_.begin(), totals_.end(),
                             [&](const ExitCount& e) { return e.reason == c.reason; });
      if (it == totals_.end()) {
        totals_.push_back(c);
      } else {
        it->count += c.count;
      }
    }
  }
  // In the order reasons were first reported, or largest first.
  std::vector<ExitCount> snapshot(bool largest_first) const {
    std::lock_guard lock(mutex_);
    std::vector<ExitCount> out = totals_;
    if (largest_first) {
      std::stable_sort(out.begin(), out.end(),
                       [](const ExitCount& a, const ExitCount& b) { return a.count > b.count; });
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<ExitCount> totals_;
};

class Engine : public InterruptSink {
 public:
  ~Engine() override = default;
  virtual std::string_view name() const = 0;
  // vCPU 0 is the bootstrap processor; the others wait for INIT/SIPI from it.
  virtual Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t index) = 0;
  // Guest exits by reason, summed over all vCPUs, largest first (for --trace-exits).
  virtual std::vector<ExitCount> exit_counts() const = 0;

  // Fast paths for devices that work on an I/O thread of their own (virtio). An engine that has
  // them (KVM: ioeventfd and irqfd) returns true and from then on:
  //  - a guest write of `length` bytes to the MMIO `address` (of `value`, if given) only
  //    signals the eventfd `event_fd`, without leaving the kernel and without reaching the
  //    device's write() on the vCPU thread;
  //  - signalling `event_fd` raises and lowers `gsi` (an edge), without a trip through hv.
  // An engine without them (the software CPU, whose "exits" are calls anyway) returns false:
  // the device is then called on the vCPU thread as usual and raises its interrupts through the
  // machine. The eventfds must outlive the engine.
  virtual Result<bool> add_mmio_doorbell(uint64_t address, uint32_t length,
                                         std::optional<uint64_t> value, int event_fd) {
    (void)address, (void)length, (void)value, (void)event_fd;
    return false;
  }
  virtual Result<bool> add_interrupt_event(uint32_t gsi, int event_fd) {
    (void)gsi, (void)event_fd;
    return false;
  }
};

}  // namespace hv
