// The local APIC of each CPU (xAPIC mode, registers in the 4 KiB page at 0xfee00000) and the
// APIC bus that carries IPIs and I/O APIC messages between them.
//
// Engine-independent: a LocalApic reaches its CPU only through CpuSignals, and the PIC (for
// ExtINT) only through ExternalInterruptController. The CPU engine routes each CPU's accesses
// to the APIC page to that CPU's LocalApic::read/write (it is not on the shared MMIO bus), the
// APIC base MSR to base()/set_base(), CR8 to task_priority()/set_task_priority(), and at every
// instruction boundary where interrupts can be taken it asks has_interrupt(), acknowledge() and
// take_nmi().
//
// Model: version 0x14 with 6 LVT entries (timer, thermal, performance, LINT0, LINT1, error:
// max LVT index 5, no CMCI). The timer counts at kApicTimerHz (1 GHz, one count per nanosecond
// before the divider, as KVM advertises) from host-monotonic time; one-shot and periodic modes;
// TSC-deadline mode is not supported (the LVT bit is not writable; CPUID must not advertise it).
// Directed EOI (SVR bit 12) is not supported. Relocating the APIC base and x2APIC mode are
// refused. Delivery status in ICR/LVTs always reads idle. Thermal and performance LVTs exist as
// registers only. Following KVM, the BSP's LINT0 comes out of reset as unmasked ExtINT (virtual
// wire mode) so a guest that never programs its APIC still gets PIC interrupts.
//
// Locking: each LocalApic has its own mutex. Lock order: PIC -> LocalApic, IoApic -> LocalApic,
// LocalApic -> CpuSignals, any -> TimerService. A LocalApic never calls the PIC, the I/O APIC or
// another LocalApic while holding its mutex (IPIs, EOI broadcasts and ExtINT acknowledgements
// are made after releasing it). CpuSignals methods are called with device locks held: they must
// only record the event and wake the CPU, never call back into the interrupt controllers.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "devices/timer_service.hpp"
#include "vm/io_device.hpp"

namespace hv {

// Implemented by the CPU engine, one per vCPU. Called from any thread (see the locking note).
class CpuSignals {
 public:
  virtual ~CpuSignals() = default;
  // has_interrupt() may have become true: wake a halted CPU / check at the next block boundary.
  virtual void interrupt_pending() = 0;
  // An NMI is pending: take_nmi() returns true.
  virtual void nmi() = 0;
  // INIT: the CPU enters wait-for-SIPI (an AP) or resets (the LocalApic has already reset its
  // own registers).
  virtual void init() = 0;
  // Startup IPI: a CPU waiting for SIPI starts in real mode at CS = vector << 8, IP = 0; others
  // ignore it.
  virtual void startup(uint8_t vector) = 0;
};

// What an APIC asks for during an ExtINT acknowledge: the 8259 PIC pair.
class ExternalInterruptController {
 public:
  virtual ~ExternalInterruptController() = default;
  virtual uint8_t acknowledge() = 0;
};

enum class ApicDeliveryMode : uint8_t {
  Fixed = 0,
  LowestPriority = 1,
  Smi = 2,
  Nmi = 4,
  Init = 5,
  Startup = 6,
  ExtInt = 7,
};

enum class ApicShorthand : uint8_t { None = 0, Self = 1, All = 2, AllButSelf = 3 };

// One interrupt message on the APIC bus (from an ICR write or an I/O APIC redirection entry).
struct ApicMessage {
  uint8_t vector = 0;
  ApicDeliveryMode mode = ApicDeliveryMode::Fixed;
  bool logical = false;     // destination mode
  uint8_t destination = 0;  // APIC ID, or logical mask; 0xff broadcasts
  bool level_triggered = false;
  bool assert = true;  // false only for INIT level de-assert, which does nothing
  ApicShorthand shorthand = ApicShorthand::None;
};

class LocalApic;

// All local APICs of the machine, indexed by APIC ID. attach() and set_eoi_listener() are
// setup-time only; after that the bus is read-only and takes no lock.
class ApicBus {
 public:
  void attach(LocalApic* apic);  // the APIC's id() must equal the number already attached
  // Called (without any LocalApic lock held) with the vector of each EOI of a level-triggered
  // interrupt: the I/O APIC's end_of_interrupt.
  void set_eoi_listener(std::function<void(uint8_t)> listener) {
    eoi_listener_ = std::move(listener);
  }

  // Delivers to every matching APIC (one, for lowest priority: the one with the lowest task
  // priority, ties to the lowest ID). `source` is the sender for shorthands (null for the
  // I/O APIC). Returns how many APICs accepted it.
  size_t deliver(const ApicMessage& message, const LocalApic* source = nullptr);
  void broadcast_eoi(uint8_t vector);

  size_t size() const { return apics_.size(); }
  LocalApic* apic(size_t id) const { return id < apics_.size() ? apics_[id] : nullptr; }

 private:
  std::vector<LocalApic*> apics_;
  std::function<void(uint8_t)> eoi_listener_;
};

class LocalApic final : public IoDevice {
 public:
  using Clock = TimerService::Clock;
  static constexpr uint64_t kDefaultBase = 0xfee00000;
  static constexpr uint64_t kMmioSize = 0x1000;
  static constexpr uint64_t kApicTimerHz = 1'000'000'000;
  static constexpr uint64_t kBaseBsp = 1u << 8;
  static constexpr uint64_t kBaseX2apic = 1u << 10;
  static constexpr uint64_t kBaseEnable = 1u << 11;
  static constexpr uint32_t kVersion = 0x00050014;  // version 0x14, max LVT entry 5
  static constexpr std::chrono::microseconds kMinPeriodicInterval{100};

  // `bus` and `timers` must outlive the APIC. `signals` may be null until set_cpu_signals().
  LocalApic(uint8_t id, bool bsp, ApicBus& bus, TimerService& timers, CpuSignals* signals);
  ~LocalApic() override;

  void set_cpu_signals(CpuSignals* signals) { signals_.store(signals, std::memory_order_release); }
  void set_external_controller(ExternalInterruptController* pic) { pic_.store(pic); }

  std::string_view name() const override { return "local-apic"; }
  // `offset` inside the APIC page. Registers are 32 bits at 16-byte strides; narrower reads see
  // part of a register, bytes 4-15 of a slot read 0; writes other than 32-bit aligned ones (or
  // the low half of a 64-bit one) are ignored.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  uint8_t id() const { return id_; }
  // The IA32_APIC_BASE MSR. set_base() refuses (returns false, changes nothing) a relocation,
  // x2APIC mode or reserved bits; clearing the enable bit disables and resets the APIC.
  uint64_t base();
  bool set_base(uint64_t value);

  // For the CPU.
  bool has_interrupt();
  // Moves the highest deliverable vector from IRR to ISR and returns it, or returns the PIC's
  // vector for ExtINT. -1 when nothing is deliverable (ask has_interrupt() first).
  int acknowledge();
  bool take_nmi();
  uint8_t task_priority();  // CR8 is task_priority() >> 4
  void set_task_priority(uint8_t value);

  // LINT0 / LINT1 input pins (pin 0 is wired to the PIC's INTR, pin 1 to NMI).
  void set_lint(int pin, bool level);

  // For the ApicBus.
  bool accept(const ApicMessage& message);
  bool matches(uint8_t destination, bool logical);

 private:
  using VectorBits = std::array<uint32_t, 8>;
  enum Lvt { kLvtTimer, kLvtThermal, kLvtPerf, kLvtLint0, kLvtLint1, kLvtError, kLvtCount };

  uint32_t read_register(uint64_t reg);
  void write_register(uint64_t reg, uint32_t value);
  void reset_locked();
  bool hardware_enabled() const { return (base_ & kBaseEnable) != 0; }
  bool software_enabled() const { return (svr_ & 0x100) != 0; }
  bool pic_routed_locked() const;
  uint32_t processor_priority() const;
  void accept_vector_locked(uint8_t vector, bool level_triggered);
  void report_error_locked(uint32_t bits);
  void notify_interrupt();
  void notify_nmi();
  uint64_t timer_divide() const;
  uint32_t current_count(Clock::time_point now) const;
  void start_timer_locked(Clock::time_point start);
  void on_timer();

  const uint8_t id_;
  const bool bsp_;
  ApicBus& bus_;
  TimerService& timers_;
  std::atomic<CpuSignals*> signals_;
  std::atomic<ExternalInterruptController*> pic_{nullptr};
  TimerService::TimerId timer_ = TimerService::kNoTimer;

  std::mutex mutex_;  // guards everything below
  uint64_t base_;
  uint32_t tpr_ = 0;
  uint32_t ldr_ = 0;
  uint32_t dfr_ = 0xffffffff;
  uint32_t svr_ = 0xff;
  uint32_t esr_ = 0;          // as read: latched by the last ESR write
  uint32_t esr_pending_ = 0;  // errors since then
  uint32_t icr_low_ = 0;
  uint32_t icr_high_ = 0;
  std::array<uint32_t, kLvtCount> lvt_{};
  VectorBits isr_{};
  VectorBits tmr_{};
  VectorBits irr_{};
  uint32_t initial_count_ = 0;
  uint32_t divide_config_ = 0;
  bool timer_running_ = false;
  Clock::time_point timer_start_;
  Clock::time_point next_timer_event_;
  bool nmi_pending_ = false;
  bool ext_int_pending_ = false;  // an ExtINT message from the I/O APIC
  bool pic_intr_ = false;         // the level on LINT0
  std::array<bool, 2> lint_levels_{};
};

}  // namespace hv
