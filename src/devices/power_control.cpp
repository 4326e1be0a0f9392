#include "devices/power_control.hpp"

namespace hv {

PowerControl::PowerControl(StopControl& stop, Kind kind)
    : stop_(stop), kind_(kind), value_(kind == Kind::Pm1aControl ? kSciEnable : 0) {}

std::string_view PowerControl::name() const {
  return kind_ == Kind::Pm1aControl ? "acpi-pm1a-control" : "reset-control";
}

void PowerControl::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t byte = offset + i;
    data[i] = byte < width() ? static_cast<uint8_t>(value_ >> (8 * byte)) : 0xff;
  }
}

void PowerControl::write(uint64_t offset, std::span<const uint8_t> data) {
  bool power_off = false;
  bool reset = false;
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
      const uint64_t byte = offset + i;
      if (byte < width()) {
        const auto mask = static_cast<uint16_t>(0xff << (8 * byte));
        value_ = static_cast<uint16_t>((value_ & ~mask) | (data[i] << (8 * byte)));
      }
    }
    if (kind_ == Kind::Pm1aControl) {
      power_off = (value_ & kSleepEnable) != 0;
      value_ &= static_cast<uint16_t>(~kSleepEnable);  // write-only: it always reads as 0
    } else {
      reset = (value_ & kResetCpu) != 0;
    }
  }
  // Outside the lock: stopping kicks every vCPU, which need not wait for this device.
  if (power_off) {
    stop_.request(StopReason{StopKind::PowerOff, 0,
                             "guest powered off through the ACPI PM1a control register", ""});
  }
  if (reset) {
    stop_.request(StopReason{StopKind::Reset, 0,
                             "guest reset the machine through the reset control register", ""});
  }
}

}  // namespace hv
