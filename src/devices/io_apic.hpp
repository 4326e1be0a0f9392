// The I/O APIC at 0xfec00000 (IOREGSEL at +0x00, IOWIN at +0x10): 24 pins, each with a
// redirection entry that turns the pin into a message on the APIC bus.
//
// Lines are modelled as "asserted / not asserted": the polarity bit is stored for the guest but
// does not invert the input (the board's wiring is assumed to match the MP/ACPI tables, as in
// KVM and QEMU). Edge pins deliver on a rising edge while unmasked (an edge while masked is
// lost); level pins deliver while asserted, unmasked and remote IRR clear, set remote IRR when a
// fixed/lowest-priority message was accepted, and are re-delivered on the EOI of their vector if
// still asserted.
//
// Locking: one mutex, held while delivering to LocalApics (lock order IoApic -> LocalApic).
// end_of_interrupt() is called by LocalApics without their locks held.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>

#include "devices/local_apic.hpp"
#include "vm/io_device.hpp"

namespace hv {

class IoApic final : public IoDevice {
 public:
  static constexpr uint64_t kBaseAddress = 0xfec00000;
  static constexpr uint64_t kMmioSize = 0x20;
  static constexpr uint32_t kPinCount = 24;
  static constexpr uint32_t kVersion = 0x00170011;  // version 0x11, max redirection entry 23

  // `bus` must outlive the I/O APIC.
  explicit IoApic(ApicBus& bus);

  std::string_view name() const override { return "io-apic"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  void set_irq(uint32_t pin, bool level);  // pins >= kPinCount are ignored
  void end_of_interrupt(uint8_t vector);

  // For tests and debugging.
  uint64_t redirection(uint32_t pin);

 private:
  uint32_t read_register(uint32_t index) const;
  void write_register(uint32_t index, uint32_t value);
  void deliver_locked(uint32_t pin);
  void service_level_locked(uint32_t pin);

  ApicBus& bus_;

  std::mutex mutex_;  // guards everything below
  uint32_t select_ = 0;
  uint32_t id_ = 0;  // bits 27:24 of the ID register
  std::array<uint64_t, kPinCount> redirection_;
  std::array<bool, kPinCount> levels_{};
};

}  // namespace hv
