#include "devices/acpi_pm.hpp"

namespace hv {

AcpiPmRegisters::AcpiPmRegisters(Kind kind, Clock clock)
    : kind_(kind),
      clock_(clock ? std::move(clock) : [] { return std::chrono::steady_clock::now(); }),
      epoch_(clock_()) {}

std::string_view AcpiPmRegisters::name() const {
  return kind_ == Kind::PmTimer ? "acpi-pm-timer" : "acpi-pm1a-event";
}

uint64_t AcpiPmRegisters::timer_ticks() const {
  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_() - epoch_);
  // Whole seconds and the rest apart: nanoseconds times 3.58 MHz would overflow 64 bits after
  // about 80 minutes.
  const auto ns = static_cast<uint64_t>(elapsed.count());
  constexpr uint64_t kNsPerSecond = 1'000'000'000;
  return ns / kNsPerSecond * kTimerHz + ns % kNsPerSecond * kTimerHz / kNsPerSecond;
}

uint64_t AcpiPmRegisters::register_bytes() {
  if (kind_ == Kind::PmTimer) {
    return static_cast<uint32_t>(timer_ticks());
  }
  std::lock_guard lock(mutex_);
  const bool carried = ((timer_ticks() ^ ticks_at_status_clear_) >> 31) != 0;
  const uint16_t status = carried ? kTimerStatus : 0;
  return status | static_cast<uint32_t>(enable_) << 16;
}

void AcpiPmRegisters::read(uint64_t offset, std::span<uint8_t> data) {
  const uint64_t bytes = register_bytes();
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    data[i] = at < kWidth ? static_cast<uint8_t>(bytes >> (8 * at)) : 0xff;
  }
}

void AcpiPmRegisters::write(uint64_t offset, std::span<const uint8_t> data) {
  if (kind_ == Kind::PmTimer) {
    return;  // read-only
  }
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    if (at == 0 && (data[i] & kTimerStatus) != 0) {
      ticks_at_status_clear_ = timer_ticks();
    } else if (at == 2 || at == 3) {
      const unsigned shift = 8 * (at - 2);
      const uint16_t mask = static_cast<uint16_t>(kEnableMask & (0xff << shift));
      enable_ = static_cast<uint16_t>((enable_ & ~mask) | ((data[i] << shift) & mask));
    }
  }
}

}  // namespace hv
