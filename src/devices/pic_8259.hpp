// The PC's two cascaded 8259A programmable interrupt controllers: the master at 0x20-0x21, the
// slave at 0xa0-0xa1 wired to the master's IRQ 2, and the chipset's edge/level control registers
// (ELCR) at 0x4d0-0x4d1.
//
// Implemented: ICW1-ICW4 initialisation, OCW1 (IMR), OCW2 (non-specific, specific and rotating
// EOIs, set priority, rotate in auto-EOI mode), OCW3 (read IRR/ISR, poll, special mask mode),
// auto-EOI, edge and level triggering per ELCR, spurious IRQ 7/15.
// Ignored as on every PC chipset: ICW1 LTIM (ELCR decides), single mode's missing ICW3, the
// special fully nested mode bit is stored but a nested slave interrupt is not preferred.
//
// Locking: one mutex for both chips. on_intr is called with that mutex held, so it must not call
// back into the PIC (lock order: PIC -> whatever on_intr takes, e.g. a LocalApic).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>

#include "vm/io_bus.hpp"
#include "vm/io_device.hpp"

namespace hv {

class Pic8259Pair final : public IoDevice {
 public:
  static constexpr uint64_t kMasterPort = 0x20;
  static constexpr uint64_t kSlavePort = 0xa0;
  static constexpr uint64_t kElcrPort = 0x4d0;
  static constexpr uint64_t kPortCount = 2;  // per range
  // Offsets of the three ranges in this device's own offset space (see install()).
  static constexpr uint64_t kMasterOffset = 0;
  static constexpr uint64_t kSlaveOffset = 2;
  static constexpr uint64_t kElcrOffset = 4;
  static constexpr uint64_t kOffsetCount = 6;
  static constexpr uint32_t kIrqCount = 16;
  static constexpr uint32_t kCascadeIrq = 2;

  // `on_intr` gets the new level of the master's INTR output each time it changes (may be empty).
  explicit Pic8259Pair(std::function<void(bool)> on_intr);

  std::string_view name() const override { return "pic-8259"; }
  // Offsets 0-1: master, 2-3: slave, 4-5: ELCR. Wider accesses touch consecutive offsets.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Registers the master, slave and ELCR ranges on `pio` (the PIC must outlive the bus's use).
  Status install(IoBus& pio);

  // An input line, 0..15 (others are ignored). Edge inputs latch IRR on a rising edge.
  void set_irq(uint32_t irq, bool level);

  // The master's INTR output.
  bool has_interrupt();
  // The INTA cycle: returns the vector and moves the request from IRR to ISR. Without a request
  // returns the spurious vector of IRQ 7 (or IRQ 15 when the slave lost its request).
  uint8_t acknowledge();

 private:
  struct Chip {
    uint8_t irr = 0;
    uint8_t isr = 0;
    uint8_t imr = 0;
    uint8_t line_levels = 0;  // the input pins, for edge detection
    uint8_t elcr = 0;
    uint8_t elcr_mask = 0;  // which lines may be level-triggered
    uint8_t vector_base = 0;
    uint8_t lowest_priority_base = 0;  // priority rotation: this IRQ has the highest priority
    uint8_t init_step = 0;             // 0: operational, 1..3: expecting ICW2..ICW4
    bool expect_icw4 = false;
    bool single = false;
    bool auto_eoi = false;
    bool rotate_on_auto_eoi = false;
    bool read_isr = false;
    bool poll = false;
    bool special_mask = false;
    bool special_fully_nested = false;
  };

  uint8_t read_locked(uint64_t offset);
  void write_locked(uint64_t offset, uint8_t value);
  void write_command(Chip& chip, uint8_t value);
  void write_data(Chip& chip, uint8_t value);
  static void set_line(Chip& chip, uint32_t line, bool level);
  static int priority_of(const Chip& chip, uint8_t mask);
  static int pending_irq(const Chip& chip);
  static void acknowledge_irq(Chip& chip, int irq);
  uint8_t poll_locked(Chip& chip);
  // Propagates the slave's output to master IRQ 2 and the master's to INTR.
  void update();

  class Window final : public IoDevice {
   public:
    Window(Pic8259Pair* pic, uint64_t displacement) : pic_(pic), displacement_(displacement) {}
    std::string_view name() const override { return pic_->name(); }
    void read(uint64_t offset, std::span<uint8_t> data) override {
      pic_->read(offset + displacement_, data);
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
      pic_->write(offset + displacement_, data);
    }

   private:
    Pic8259Pair* pic_;
    uint64_t displacement_;
  };

  const std::function<void(bool)> on_intr_;
  Window slave_window_{this, kSlaveOffset};
  Window elcr_window_{this, kElcrOffset};

  std::mutex mutex_;           // guards everything below
  std::array<Chip, 2> chips_;  // [0] master, [1] slave
  bool intr_ = false;
};

}  // namespace hv
