// The MC146818-style real-time clock and CMOS RAM of a PC: index port 0x70, data port 0x71.
//
// The clock is the host's UTC clock plus an offset in whole seconds that the guest changes by
// writing the time registers, so it keeps counting while nobody looks and costs nothing between
// accesses. Status register B's data mode (BCD or binary) and hour format (12 or 24) apply when
// the registers are read or written; the stored time itself is mode-independent, so a guest that
// switches modes never reads garbage. Setting B's SET bit freezes the clock until it is cleared,
// as the chip does while software writes a new time.
//
// The firmware-style fields hv's firmware-less boot still has to provide live in CMOS RAM: base
// and extended memory sizes, the century byte (the ACPI FADT's century index) and the standard
// checksum over 0x10..0x2d.
//
// Not modelled yet: the periodic, alarm and update-ended interrupts (IRQ 8 is taken for them),
// the alarm flag, day-of-week writes (the weekday always follows the date), and stopping the
// clock through register A's divider bits. Register C's update-ended and periodic flags are
// computed when C is read, so software that polls them still sees them come and go.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include "vm/io_device.hpp"
#include "vm/machine.hpp"

namespace hv {

class CmosRtc final : public IoDevice {
 public:
  static constexpr uint64_t kPortCount = 2;  // 0x70 index, 0x71 data
  using WallClock = std::function<std::chrono::system_clock::time_point()>;

  // `clock` defaults to the host's system clock; tests pass a fake.
  CmosRtc(IrqLine irq, uint64_t memory_below_4g, uint64_t memory_above_4g,
          WallClock clock = nullptr);

  std::string_view name() const override { return "cmos-rtc"; }
  // A 16-bit write to 0x70 selects the index and writes the data byte, as on the ISA bus.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  struct GuestTime {
    int64_t seconds;      // since the Unix epoch, guest's view
    int64_t nanoseconds;  // into the current second, always the host's phase
  };
  // A broken-down UTC time. While the clock is frozen its fields hold what the guest wrote, which
  // may not be a valid date yet (software writes day and month one at a time).
  struct CalendarTime {
    int64_t year;
    unsigned month;    // 1..12
    unsigned day;      // 1..31
    unsigned hour;     // 0..23
    unsigned minute;   // 0..59
    unsigned second;   // 0..59
    unsigned weekday;  // 1..7, Sunday = 1, as the RTC counts
  };

  uint8_t read_data();
  void write_data(uint8_t value);
  GuestTime guest_time() const;
  CalendarTime calendar_time() const;  // the frozen fields, or the running clock
  void set_calendar_time(const CalendarTime& time);
  void write_status_b(uint8_t value);
  uint8_t encode(unsigned value) const;
  unsigned decode(uint8_t value) const;
  uint8_t read_time_register(uint8_t index) const;
  void write_time_register(uint8_t index, uint8_t value);
  uint8_t read_status_c();
  int64_t host_nanoseconds() const;
  void store_memory_sizes(uint64_t memory_below_4g, uint64_t memory_above_4g);

  [[maybe_unused]] const IrqLine irq_;  // IRQ 8, for the interrupts not modelled yet
  const WallClock clock_;

  std::mutex mutex_;  // guards everything below
  std::array<uint8_t, 128> ram_{};
  uint8_t index_ = 0;
  bool nmi_disabled_ = false;  // bit 7 of the index port; kept so a read of 0x70 returns it
  int64_t offset_seconds_ = 0;
  std::optional<CalendarTime> frozen_;     // the time registers while status B's SET bit is on
  int64_t status_c_read_nanoseconds_ = 0;  // host time of the last register C read
};

}  // namespace hv
