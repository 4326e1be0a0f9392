// One virtual machine's hardware, independent of the engine that runs its CPUs: guest memory,
// the port-I/O and MMIO buses with their devices, the interrupt lines, and how it stops.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/error.hpp"
#include "vm/guest_memory.hpp"
#include "vm/io_bus.hpp"
#include "vm/stop_control.hpp"

namespace hv {

// Implemented by the engine that owns the interrupt controllers (in-kernel on KVM, software in
// the emulator). Thread-safe.
class InterruptSink {
 public:
  virtual ~InterruptSink() = default;
  virtual void set_irq_line(uint32_t gsi, bool level) = 0;
};

class Machine;
class HypercallService;  // devices/hypercalls.hpp

// A device's wire to an interrupt controller input (ISA IRQ n is GSI n).
class IrqLine {
 public:
  IrqLine() = default;
  IrqLine(Machine* machine, uint32_t gsi) : machine_(machine), gsi_(gsi) {}
  void set(bool level) const;
  void raise() const { set(true); }
  void lower() const { set(false); }
  uint32_t gsi() const { return gsi_; }

 private:
  Machine* machine_ = nullptr;
  uint32_t gsi_ = 0;
};

struct MachineConfig {
  uint64_t memory_bytes = 256ull << 20;
  uint32_t cpu_count = 1;
};

class Machine {
 public:
  static Result<std::unique_ptr<Machine>> create(const MachineConfig& config);

  const MachineConfig& config() const { return config_; }
  GuestMemory& memory() { return memory_; }
  const GuestMemory& memory() const { return memory_; }
  IoBus& pio() { return pio_; }
  IoBus& mmio() { return mmio_; }
  StopControl& stop() { return stop_; }

  // The machine owns its devices and what wires them (buses behind bridges, windows); returns
  // the raw pointer for wiring.
  template <typename T>
  T* own(std::unique_ptr<T> device) {
    T* raw = device.get();
    devices_.emplace_back(device.release(), [](void* p) { delete static_cast<T*>(p); });
    return raw;
  }

  // The para-virtual call service (docs/hypercalls.md) the engines hand calls to, or null when
  // the machine has none: then they advertise no hypercall CPUID leaves and the doorbell port is
  // an ordinary one. Set while the machine is built, before any vCPU exists.
  void set_hypercalls(HypercallService* service) { hypercalls_ = service; }
  HypercallService* hypercalls() const { return hypercalls_; }

  IrqLine irq_line(uint32_t gsi) { return IrqLine(this, gsi); }
  void set_interrupt_sink(InterruptSink* sink) { sink_.store(sink, std::memory_order_release); }
  void set_irq(uint32_t gsi, bool level) {
    if (InterruptSink* s = sink_.load(std::memory_order_acquire)) {
      s->set_irq_line(gsi, level);
    }
  }

 private:
  Machine(const MachineConfig& config, GuestMemory memory);

  MachineConfig config_;
  GuestMemory memory_;
  IoBus pio_{"port-I/O"};
  IoBus mmio_{"MMIO"};
  StopControl stop_;
  std::atomic<InterruptSink*> sink_{nullptr};
  HypercallService* hypercalls_ = nullptr;
  std::vector<std::unique_ptr<void, void (*)(void*)>> devices_;
};

inline void IrqLine::set(bool level) const {
  if (machine_ != nullptr) {
    machine_->set_irq(gsi_, level);
  }
}

}  // namespace hv
