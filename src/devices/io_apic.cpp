#include "devices/io_apic.hpp"

namespace hv {
namespace {

constexpr uint64_t kRegisterSelect = 0x00;
constexpr uint64_t kWindow = 0x10;

constexpr uint32_t kIndexId = 0x00;
constexpr uint32_t kIndexVersion = 0x01;
constexpr uint32_t kIndexArbitration = 0x02;
constexpr uint32_t kIndexRedirection = 0x10;

constexpr uint64_t kMasked = 1u << 16;
constexpr uint64_t kLevelTriggered = 1u << 15;
constexpr uint64_t kRemoteIrr = 1u << 14;
constexpr uint64_t kLogical = 1u << 11;
// Delivery status (12) and remote IRR (14) are read-only.
constexpr uint32_t kLowWritable = 0x1afff;
constexpr uint32_t kHighWritable = 0xff000000;

}  // namespace

IoApic::IoApic(ApicBus& bus) : bus_(bus) {
  redirection_.fill(kMasked);
}

void IoApic::read(uint64_t offset, std::span<uint8_t> data) {
  uint32_t value = 0;
  const uint64_t within = offset & 3;
  {
    std::lock_guard lock(mutex_);
    const uint64_t reg = offset & ~uint64_t{3};
    if (reg == kRegisterSelect) {
      value = select_;
    } else if (reg == kWindow) {
      value = read_register(select_);
    }
  }
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t byte = within + i;
    data[i] = byte < 4 ? static_cast<uint8_t>(value >> (8 * byte)) : 0;
  }
}

void IoApic::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) {
    return;
  }
  std::lock_guard lock(mutex_);
  if (offset == kRegisterSelect) {
    select_ = data[0];  // only the low byte exists; byte and dword writes both work
  } else if (offset == kWindow && data.size() >= 4) {
    write_register(select_, static_cast<uint32_t>(io_value(data.first(4))));
  }
}

uint64_t IoApic::redirection(uint32_t pin) {
  std::lock_guard lock(mutex_);
  return pin < kPinCount ? redirection_[pin] : 0;
}

uint32_t IoApic::read_register(uint32_t index) const {
  switch (index) {
    case kIndexId:
    case kIndexArbitration:
      return id_;
    case kIndexVersion:
      return kVersion;
    default:
      break;
  }
  if (index >= kIndexRedirection && index < kIndexRedirection + 2 * kPinCount) {
    const uint64_t entry = redirection_[(index - kIndexRedirection) / 2];
    return static_cast<uint32_t>((index & 1) != 0 ? entry >> 32 : entry);
  }
  return 0;
}

void IoApic::write_register(uint32_t index, uint32_t value) {
  if (index == kIndexId) {
    id_ = value & 0x0f000000;
    return;
  }
  if (index < kIndexRedirection || index >= kIndexRedirection + 2 * kPinCount) {
    return;
  }
  const uint32_t pin = (index - kIndexRedirection) / 2;
  uint64_t& entry = redirection_[pin];
  if ((index & 1) != 0) {
    entry = (entry & 0xffffffffull) | (uint64_t{value & kHighWritable} << 32);
    return;
  }
  entry = (entry & ~uint64_t{kLowWritable} & ~0xffffffffull) | (entry & kRemoteIrr) |
          (value & kLowWritable);
  if ((entry & kLevelTriggered) == 0) {
    entry &= ~kRemoteIrr;  // remote IRR has no meaning for edge pins
  }
  // Unmasking an asserted level pin delivers it now.
  service_level_locked(pin);
}

void IoApic::set_irq(uint32_t pin, bool level) {
  if (pin >= kPinCount) {
    return;
  }
  std::lock_guard lock(mutex_);
  const bool rising = level && !levels_[pin];
  levels_[pin] = level;
  const uint64_t entry = redirection_[pin];
  if ((entry & kMasked) != 0) {
    return;
  }
  if ((entry & kLevelTriggered) != 0) {
    service_level_locked(pin);
  } else if (rising) {
    deliver_locked(pin);
  }
}

void IoApic::end_of_interrupt(uint8_t vector) {
  std::lock_guard lock(mutex_);
  for (uint32_t pin = 0; pin < kPinCount; ++pin) {
    uint64_t& entry = redirection_[pin];
    if ((entry & kRemoteIrr) != 0 && static_cast<uint8_t>(entry) == vector) {
      entry &= ~kRemoteIrr;
      service_level_locked(pin);
    }
  }
}

void IoApic::service_level_locked(uint32_t pin) {
  const uint64_t entry = redirection_[pin];
  if ((entry & kLevelTriggered) != 0 && (entry & kMasked) == 0 && (entry & kRemoteIrr) == 0 &&
      levels_[pin]) {
    deliver_locked(pin);
  }
}

void IoApic::deliver_locked(uint32_t pin) {
  uint64_t& entry = redirection_[pin];
  const uint32_t mode = (entry >> 8) & 7;
  if (mode == 3 || mode == 6) {
    return;  // reserved delivery modes
  }
  ApicMessage message;
  message.vector = static_cast<uint8_t>(entry);
  message.mode = static_cast<ApicDeliveryMode>(mode);
  message.logical = (entry & kLogical) != 0;
  message.destination = static_cast<uint8_t>(entry >> 56);
  message.level_triggered = (entry & kLevelTriggered) != 0;
  const size_t accepted = bus_.deliver(message);
  const bool expects_eoi =
      message.mode == ApicDeliveryMode::Fixed || message.mode == ApicDeliveryMode::LowestPriority;
  if (message.level_triggered && expects_eoi && accepted > 0) {
    entry |= kRemoteIrr;
  }
}

}  // namespace hv
