#include "devices/pic_8259.hpp"

namespace hv {
namespace {

constexpr uint8_t kIcw1Init = 0x10;
constexpr uint8_t kIcw1NeedIcw4 = 0x01;
constexpr uint8_t kIcw1Single = 0x02;
constexpr uint8_t kOcw3Select = 0x08;
constexpr uint8_t kOcw3Poll = 0x04;
constexpr uint8_t kOcw3ReadRegister = 0x02;
constexpr uint8_t kOcw3ReadIsr = 0x01;
constexpr uint8_t kOcw3SpecialMaskChange = 0x40;
constexpr uint8_t kOcw3SpecialMask = 0x20;
constexpr uint8_t kIcw4AutoEoi = 0x02;
constexpr uint8_t kIcw4SpecialFullyNested = 0x10;
constexpr int kNoIrq = 8;
constexpr int kSpuriousIrq = 7;

}  // namespace

Pic8259Pair::Pic8259Pair(std::function<void(bool)> on_intr) : on_intr_(std::move(on_intr)) {
  // IRQ 0, 1, 2 (timer, keyboard, cascade) and 8, 13 (RTC, FPU) are edge-only on PIIX chipsets.
  chips_[0].elcr_mask = 0xf8;
  chips_[1].elcr_mask = 0xde;
}

Status Pic8259Pair::install(IoBus& pio) {
  HV_TRY(pio.add(kMasterPort, kPortCount, this));
  HV_TRY(pio.add(kSlavePort, kPortCount, &slave_window_));
  HV_TRY(pio.add(kElcrPort, kPortCount, &elcr_window_));
  return {};
}

void Pic8259Pair::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = read_locked(offset + i);
  }
}

void Pic8259Pair::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    write_locked(offset + i, data[i]);
  }
}

uint8_t Pic8259Pair::read_locked(uint64_t offset) {
  if (offset >= kOffsetCount || offset < kMasterOffset) {
    return 0xff;
  }
  if (offset >= kElcrOffset) {
    return chips_[offset - kElcrOffset].elcr;
  }
  const bool is_master = offset < kSlaveOffset;
  Chip& chip = chips_[is_master ? 0 : 1];
  if (chip.poll) {
    return poll_locked(chip);
  }
  if ((offset & 1) == 0) {
    return chip.read_isr ? chip.isr : chip.irr;
  }
  return chip.imr;
}

void Pic8259Pair::write_locked(uint64_t offset, uint8_t value) {
  if (offset >= kOffsetCount) {
    return;
  }
  if (offset >= kElcrOffset) {
    Chip& chip = chips_[offset - kElcrOffset];
    chip.elcr = value & chip.elcr_mask;
    return;
  }
  Chip& chip = chips_[offset < kSlaveOffset ? 0 : 1];
  if ((offset & 1) == 0) {
    write_command(chip, value);
  } else {
    write_data(chip, value);
  }
  update();
}

void Pic8259Pair::write_command(Chip& chip, uint8_t value) {
  if ((value & kIcw1Init) != 0) {
    // ICW1 resets everything but the ELCR and the pins; level inputs still asserted stay in IRR.
    const uint8_t elcr = chip.elcr;
    const uint8_t elcr_mask = chip.elcr_mask;
    const uint8_t levels = chip.line_levels;
    chip = Chip{};
    chip.elcr = elcr;
    chip.elcr_mask = elcr_mask;
    chip.line_levels = levels;
    chip.irr = levels & elcr;
    chip.init_step = 1;
    chip.expect_icw4 = (value & kIcw1NeedIcw4) != 0;
    chip.single = (value & kIcw1Single) != 0;
    return;
  }
  if ((value & kOcw3Select) != 0) {
    chip.poll = (value & kOcw3Poll) != 0;
    if ((value & kOcw3ReadRegister) != 0) {
      chip.read_isr = (value & kOcw3ReadIsr) != 0;
    }
    if ((value & kOcw3SpecialMaskChange) != 0) {
      chip.special_mask = (value & kOcw3SpecialMask) != 0;
    }
    return;
  }
  // OCW2: bits 7:5 are R, SL, EOI.
  const int level = value & 7;
  switch (value >> 5) {
    case 0:  // rotate in auto-EOI mode: clear
      chip.rotate_on_auto_eoi = false;
      break;
    case 4:  // rotate in auto-EOI mode: set
      chip.rotate_on_auto_eoi = true;
      break;
    case 1:    // non-specific EOI
    case 5: {  // rotate on non-specific EOI
      const int priority = priority_of(chip, chip.isr);
      if (priority != kNoIrq) {
        const int irq = (priority + chip.lowest_priority_base) & 7;
        chip.isr = static_cast<uint8_t>(chip.isr & ~(1u << irq));
        if ((value >> 5) == 5) {
          chip.lowest_priority_base = static_cast<uint8_t>((irq + 1) & 7);
        }
      }
      break;
    }
    case 3:  // specific EOI
      chip.isr = static_cast<uint8_t>(chip.isr & ~(1u << level));
      break;
    case 6:  // set priority: `level` becomes the lowest
      chip.lowest_priority_base = static_cast<uint8_t>((level + 1) & 7);
      break;
    case 7:  // rotate on specific EOI
      chip.isr = static_cast<uint8_t>(chip.isr & ~(1u << level));
      chip.lowest_priority_base = static_cast<uint8_t>((level + 1) & 7);
      break;
    default:  // 2: no operation
      break;
  }
}

void Pic8259Pair::write_data(Chip& chip, uint8_t value) {
  switch (chip.init_step) {
    case 1:  // ICW2
      chip.vector_base = value & 0xf8;
      chip.init_step = chip.single ? (chip.expect_icw4 ? 3 : 0) : 2;
      break;
    case 2:  // ICW3: the cascade wiring is fixed on a PC
      chip.init_step = chip.expect_icw4 ? 3 : 0;
      break;
    case 3:  // ICW4
      chip.auto_eoi = (value & kIcw4AutoEoi) != 0;
      chip.special_fully_nested = (value & kIcw4SpecialFullyNested) != 0;
      chip.init_step = 0;
      break;
    default:  // OCW1
      chip.imr = value;
      break;
  }
}

void Pic8259Pair::set_irq(uint32_t irq, bool level) {
  if (irq >= kIrqCount) {
    return;
  }
  std::lock_guard lock(mutex_);
  set_line(chips_[irq / 8], irq % 8, level);
  update();
}

void Pic8259Pair::set_line(Chip& chip, uint32_t line, bool level) {
  const uint8_t bit = static_cast<uint8_t>(1u << line);
  if ((chip.elcr & bit) != 0) {
    // Level: IRR follows the pin.
    chip.irr = level ? (chip.irr | bit) : (chip.irr & ~bit);
  } else if (level && (chip.line_levels & bit) == 0) {
    chip.irr |= bit;  // rising edge; IRR stays latched after the pin falls
  }
  chip.line_levels = level ? (chip.line_levels | bit) : (chip.line_levels & ~bit);
}

// The rank (0 = highest) of the highest-priority bit set in `mask`, or kNoIrq.
int Pic8259Pair::priority_of(const Chip& chip, uint8_t mask) {
  if (mask == 0) {
    return kNoIrq;
  }
  int priority = 0;
  while ((mask & (1u << ((priority + chip.lowest_priority_base) & 7))) == 0) {
    ++priority;
  }
  return priority;
}

// The IRQ this chip would raise INT for, or -1: the best unmasked request that outranks every
// in-service interrupt (in special mask mode, masked in-service levels do not block).
int Pic8259Pair::pending_irq(const Chip& chip) {
  const int priority = priority_of(chip, chip.irr & ~chip.imr);
  if (priority == kNoIrq) {
    return -1;
  }
  uint8_t in_service = chip.isr;
  if (chip.special_mask) {
    in_service &= ~chip.imr;
  }
  if (priority < priority_of(chip, in_service)) {
    return (priority + chip.lowest_priority_base) & 7;
  }
  return -1;
}

void Pic8259Pair::acknowledge_irq(Chip& chip, int irq) {
  const uint8_t bit = static_cast<uint8_t>(1u << irq);
  if (chip.auto_eoi) {
    if (chip.rotate_on_auto_eoi) {
      chip.lowest_priority_base = static_cast<uint8_t>((irq + 1) & 7);
    }
  } else {
    chip.isr |= bit;
  }
  // A level request stays in IRR while its pin is asserted.
  if ((chip.elcr & bit) == 0) {
    chip.irr &= ~bit;
  }
}

// A poll is an INTA cycle on this chip alone; polling the slave is the guest's business.
uint8_t Pic8259Pair::poll_locked(Chip& chip) {
  chip.poll = false;
  const int irq = pending_irq(chip);
  if (irq < 0) {
    return 0;
  }
  acknowledge_irq(chip, irq);
  update();
  return static_cast<uint8_t>(0x80 | irq);
}

void Pic8259Pair::update() {
  set_line(chips_[0], kCascadeIrq, pending_irq(chips_[1]) >= 0);
  const bool intr = pending_irq(chips_[0]) >= 0;
  if (intr != intr_) {
    intr_ = intr;
    if (on_intr_) {
      on_intr_(intr);
    }
  }
}

bool Pic8259Pair::has_interrupt() {
  std::lock_guard lock(mutex_);
  return intr_;
}

uint8_t Pic8259Pair::acknowledge() {
  std::lock_guard lock(mutex_);
  Chip& master = chips_[0];
  Chip& slave = chips_[1];
  uint8_t vector;
  const int irq = pending_irq(master);
  if (irq < 0) {
    // The request went away before INTA: the master answers with IRQ 7 and sets no ISR bit.
    vector = static_cast<uint8_t>(master.vector_base + kSpuriousIrq);
  } else if (irq == static_cast<int>(kCascadeIrq)) {
    // The master acknowledges its cascade input even when the slave's request vanished, in
    // which case the slave answers IRQ 15 and the guest must still EOI the master.
    acknowledge_irq(master, irq);
    const int slave_irq = pending_irq(slave);
    if (slave_irq >= 0) {
      acknowledge_irq(slave, slave_irq);
      vector = static_cast<uint8_t>(slave.vector_base + slave_irq);
    } else {
      vector = static_cast<uint8_t>(slave.vector_base + kSpuriousIrq);
    }
  } else {
    acknowledge_irq(master, irq);
    vector = static_cast<uint8_t>(master.vector_base + irq);
  }
  update();
  return vector;
}

}  // namespace hv
