// The software interrupt controllers of a PC, built and wired together: the 8259 PIC pair, the
// 8254 PIT with port 0x61, the I/O APIC, one local APIC per CPU and the APIC bus between them.
// It is the machine's InterruptSink: device interrupt lines (GSIs) reach the PIC and the I/O
// APIC as on a PIIX board with the MP table's interrupt overrides:
//   GSI 0..15  -> PIC IRQ n and I/O APIC pin n, except GSI 0 -> I/O APIC pin 2 (the PIT's
//                 override; pin 0 is the PIC's ExtINT, unused)
//   GSI 16..23 -> I/O APIC pin n only
// The PIC's INTR output drives LINT0 of the APIC with ID 0 (the BSP); ExtINT acknowledgements go
// back to the PIC.
//
// Used by engines without an in-kernel irqchip (the emulator); nothing here depends on an engine.
//
// Lifetime: the router owns the chips and registers them on the machine's buses, so it must
// outlive every vCPU and every bus access; it detaches itself as the machine's interrupt sink
// when destroyed. The TimerService must outlive the router.
//
// Lock order of the whole set (never taken in the other direction):
//   PIT -> PIC -> LocalApic -> CpuSignals, PIT -> IoApic -> LocalApic, any -> TimerService.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/error.hpp"
#include "devices/io_apic.hpp"
#include "devices/local_apic.hpp"
#include "devices/pic_8259.hpp"
#include "devices/pit_8254.hpp"
#include "devices/timer_service.hpp"
#include "vm/machine.hpp"

namespace hv {

class InterruptRouter final : public InterruptSink {
 public:
  static constexpr uint32_t kGsiCount = IoApic::kPinCount;
  static constexpr uint32_t kPitIoApicPin = 2;
  static constexpr uint32_t kMaxCpus = 255;  // APIC ID 0xff is the broadcast address

  // One LocalApic per entry of `cpus` (APIC ID = index, index 0 is the BSP); entries may be null
  // and set later with local_apic(i).set_cpu_signals(). Registers PIC, ELCR, PIT and port 0x61 on
  // machine.pio(), the I/O APIC on machine.mmio(), and installs itself as the interrupt sink.
  static Result<std::unique_ptr<InterruptRouter>> create(Machine& machine, TimerService& timers,
                                                         std::vector<CpuSignals*> cpus);
  ~InterruptRouter() override;
  InterruptRouter(const InterruptRouter&) = delete;
  InterruptRouter& operator=(const InterruptRouter&) = delete;

  void set_irq_line(uint32_t gsi, bool level) override;

  size_t cpu_count() const { return local_apics_.size(); }
  LocalApic& local_apic(size_t index) { return *local_apics_.at(index); }
  Pic8259Pair& pic() { return *pic_; }
  Pit8254& pit() { return *pit_; }
  IoApic& io_apic() { return *io_apic_; }
  ApicBus& apic_bus() { return apic_bus_; }

 private:
  // Lets the BSP's LocalApic run an INTA cycle on the PIC.
  class PicAcknowledge final : public ExternalInterruptController {
   public:
    explicit PicAcknowledge(Pic8259Pair* pic) : pic_(pic) {}
    uint8_t acknowledge() override { return pic_->acknowledge(); }

   private:
    Pic8259Pair* pic_;
  };

  explicit InterruptRouter(Machine& machine) : machine_(machine) {}

  Machine& machine_;
  bool installed_ = false;  // whether we are the machine's interrupt sink
  // Destroyed in reverse order: the PIT (whose timer feeds the rest) goes first, the bus last.
  ApicBus apic_bus_;
  std::vector<std::unique_ptr<LocalApic>> local_apics_;
  std::unique_ptr<IoApic> io_apic_;
  std::unique_ptr<Pic8259Pair> pic_;
  std::unique_ptr<PicAcknowledge> pic_acknowledge_;
  std::unique_ptr<Pit8254> pit_;
};

}  // namespace hv
