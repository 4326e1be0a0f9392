// The ACPI fixed-hardware registers the FADT points to, besides PM1a control (PowerControl):
//  - Pm1aEvent at 0x600 (4 bytes): PM1 status (write 1 to clear) and PM1 enable.
//  - PmTimer at 0x608 (4 bytes): the 3.579545 MHz power-management timer, 32 bits wide
//    (FADT TMR_VAL_EXT). It counts host monotonic time, the same clock the emulated TSC and the
//    LAPIC timer follow, so a kernel's clocksource watchdog sees no skew between them.
// TMR_STS is set whenever bit 31 of the timer has changed since the guest last cleared it. The
// machine raises no SCI: the power and sleep buttons, RTC alarm and wake events do not exist in
// an hv machine, and the timer-carry interrupt (TMR_EN) is not delivered (Linux never enables it).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>

#include "vm/io_device.hpp"

namespace hv {

class AcpiPmRegisters final : public IoDevice {
 public:
  enum class Kind { Pm1aEvent, PmTimer };
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  static constexpr uint64_t kWidth = 4;
  static constexpr uint64_t kTimerHz = 3'579'545;
  static constexpr uint16_t kTimerStatus = 1 << 0;
  // PM1 enable bits that exist in hardware: TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN, RTC_EN.
  static constexpr uint16_t kEnableMask = 0x0001 | 0x0020 | 0x0100 | 0x0200 | 0x0400;

  // `clock` defaults to the host's steady clock; tests pass a fake. The timer reads 0 at
  // construction.
  explicit AcpiPmRegisters(Kind kind, Clock clock = nullptr);

  std::string_view name() const override;
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  uint64_t timer_ticks() const;  // since construction, not wrapped

 private:
  uint64_t register_bytes();  // the 4 bytes at offset 0, little-endian
  const Kind kind_;
  const Clock clock_;
  const std::chrono::steady_clock::time_point epoch_;
  std::mutex mutex_;
  uint64_t ticks_at_status_clear_ = 0;  // guarded by mutex_
  uint16_t enable_ = 0;                 // guarded by mutex_
};

}  // namespace hv
