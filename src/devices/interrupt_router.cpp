#include "devices/interrupt_router.hpp"

namespace hv {

Result<std::unique_ptr<InterruptRouter>> InterruptRouter::create(Machine& machine,
                                                                 TimerService& timers,
                                                                 std::vector<CpuSignals*> cpus) {
  if (cpus.empty() || cpus.size() > kMaxCpus) {
    return make_error(ExitStatus::HostError, "interrupt router: {} CPUs (1 to {} supported)",
                      cpus.size(), kMaxCpus);
  }
  std::unique_ptr<InterruptRouter> router(new InterruptRouter(machine));
  InterruptRouter* self = router.get();
  for (size_t i = 0; i < cpus.size(); ++i) {
    self->local_apics_.push_back(std::make_unique<LocalApic>(static_cast<uint8_t>(i), i == 0,
                                                             self->apic_bus_, timers, cpus[i]));
    self->apic_bus_.attach(self->local_apics_.back().get());
  }
  self->io_apic_ = std::make_unique<IoApic>(self->apic_bus_);
  self->apic_bus_.set_eoi_listener(
      [self](uint8_t vector) { self->io_apic_->end_of_interrupt(vector); });

  LocalApic* bsp = self->local_apics_.front().get();
  self->pic_ = std::make_unique<Pic8259Pair>([bsp](bool level) { bsp->set_lint(0, level); });
  self->pic_acknowledge_ = std::make_unique<PicAcknowledge>(self->pic_.get());
  bsp->set_external_controller(self->pic_acknowledge_.get());

  self->pit_ =
      std::make_unique<Pit8254>(timers, [self](bool level) { self->set_irq_line(0, level); });

  HV_TRY(self->pic_->install(machine.pio()));
  HV_TRY(self->pit_->install(machine.pio()));
  HV_TRY(machine.mmio().add(IoApic::kBaseAddress, IoApic::kMmioSize, self->io_apic_.get()));
  machine.set_interrupt_sink(self);
  self->installed_ = true;
  return router;
}

InterruptRouter::~InterruptRouter() {
  if (installed_) {
    machine_.set_interrupt_sink(nullptr);
  }
  pit_.reset();  // stop the PIT's timer before the chips it interrupts go away
}

void InterruptRouter::set_irq_line(uint32_t gsi, bool level) {
  if (gsi >= kGsiCount) {
    return;
  }
  if (gsi < Pic8259Pair::kIrqCount) {
    pic_->set_irq(gsi, level);
  }
  io_apic_->set_irq(gsi == 0 ? kPitIoApicPin : gsi, level);
}

}  // namespace hv
