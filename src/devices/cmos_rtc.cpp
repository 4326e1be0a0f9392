#include "devices/cmos_rtc.hpp"

#include <algorithm>

namespace hv {
namespace {

constexpr uint8_t kSeconds = 0x00;
constexpr uint8_t kMinutes = 0x02;
constexpr uint8_t kHours = 0x04;
constexpr uint8_t kWeekday = 0x06;
constexpr uint8_t kDayOfMonth = 0x07;
constexpr uint8_t kMonth = 0x08;
constexpr uint8_t kYear = 0x09;
constexpr uint8_t kStatusA = 0x0a;
constexpr uint8_t kStatusB = 0x0b;
constexpr uint8_t kStatusC = 0x0c;
constexpr uint8_t kStatusD = 0x0d;
constexpr uint8_t kChecksumHigh = 0x2e;
constexpr uint8_t kChecksumLow = 0x2f;
constexpr uint8_t kCentury = 0x32;

constexpr uint8_t kIndexMask = 0x7f;
constexpr uint8_t kNmiDisable = 0x80;

constexpr uint8_t kStatusAUpdateInProgress = 0x80;
constexpr uint8_t kStatusARateMask = 0x0f;
constexpr uint8_t kStatusADefault = 0x26;  // 32.768 kHz time base, 1024 Hz periodic rate

constexpr uint8_t kStatusBSet = 0x80;
constexpr uint8_t kStatusBUpdateInterrupt = 0x10;
constexpr uint8_t kStatusBInterruptEnables = 0x70;  // PIE, AIE, UIE: same bits as C's flags
constexpr uint8_t kStatusBBinary = 0x04;
constexpr uint8_t kStatusB24Hour = 0x02;
constexpr uint8_t kStatusBDefault = kStatusB24Hour;  // BCD, 24-hour, as a PC BIOS leaves it

constexpr uint8_t kStatusCInterruptRequest = 0x80;
constexpr uint8_t kStatusCPeriodic = 0x40;
constexpr uint8_t kStatusCUpdateEnded = 0x10;

constexpr uint8_t kStatusDValid = 0x80;  // RAM and time valid: the battery is fine

constexpr uint8_t kHourPm = 0x80;

constexpr int64_t kNanosecondsPerSecond = 1'000'000'000;
constexpr int64_t kSecondsPerDay = 86'400;
// UIP rises this long before each update, so software waiting for its falling edge sees it.
constexpr int64_t kUpdateInProgressNanoseconds = 244'000;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

int64_t floor_div(int64_t a, int64_t b) {
  const int64_t quotient = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient;
}

// Howard Hinnant's proleptic Gregorian conversions; exact for any int64 day count we produce.
int64_t days_from_civil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = floor_div(year, 400);
  const auto year_of_era = static_cast<unsigned>(year - era * 400);
  const unsigned day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + static_cast<int64_t>(day_of_era) - 719468;
}

}  // namespace

CmosRtc::CmosRtc(IrqLine irq, uint64_t memory_below_4g, uint64_t memory_above_4g, WallClock clock)
    : irq_(irq), clock_(std::move(clock)) {
  ram_[kStatusA] = kStatusADefault;
  ram_[kStatusB] = kStatusBDefault;
  ram_[kStatusD] = kStatusDValid;
  store_memory_sizes(memory_below_4g, memory_above_4g);
  status_c_read_nanoseconds_ = host_nanoseconds();
}

void CmosRtc::store_memory_sizes(uint64_t memory_below_4g, uint64_t memory_above_4g) {
  auto store = [this](uint8_t index, uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) {
      ram_[index + i] = static_cast<uint8_t>(value >> (8 * i));
    }
  };
  store(0x15, 640, 2);  // base memory in KiB: a PC always reports the full 640 KiB
  // Extended memory from 1 MiB, in KiB, saturating at 64 MiB (the field is 16 bits).
  const uint64_t extended_kib =
      memory_below_4g > kMiB ? std::min<uint64_t>((memory_below_4g - kMiB) / kKiB, 0xffff) : 0;
  store(0x17, extended_kib, 2);
  store(0x30, extended_kib, 2);
  // Memory from 16 MiB to the 32-bit hole, in 64 KiB units.
  const uint64_t above_16m =
      memory_below_4g > 16 * kMiB
          ? std::min<uint64_t>((memory_below_4g - 16 * kMiB) / (64 * kKiB), 0xffff)
          : 0;
  store(0x34, above_16m, 2);
  // Memory above 4 GiB, in 64 KiB units (24 bits: up to 1 TiB).
  store(0x5b, std::min<uint64_t>(memory_above_4g / (64 * kKiB), 0xff'ffff), 3);

  unsigned checksum = 0;
  for (uint8_t index = 0x10; index <= 0x2d; ++index) {
    checksum += ram_[index];
  }
  ram_[kChecksumHigh] = static_cast<uint8_t>(checksum >> 8);
  ram_[kChecksumLow] = static_cast<uint8_t>(checksum);
}

void CmosRtc::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    switch (offset + i) {
      case 0:
        data[i] = static_cast<uint8_t>(index_ | (nmi_disabled_ ? kNmiDisable : 0));
        break;
      case 1:
        data[i] = read_data();
        break;
      default:
        data[i] = 0xff;
        break;
    }
  }
}

void CmosRtc::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    switch (offset + i) {
      case 0:
        index_ = data[i] & kIndexMask;
        nmi_disabled_ = (data[i] & kNmiDisable) != 0;
        break;
      case 1:
        write_data(data[i]);
        break;
      default:
        break;
    }
  }
}

uint8_t CmosRtc::read_data() {
  switch (index_) {
    case kSeconds:
    case kMinutes:
    case kHours:
    case kWeekday:
    case kDayOfMonth:
    case kMonth:
    case kYear:
    case kCentury:
      return read_time_register(index_);
    case kStatusA: {
      const bool updating = !frozen_ && guest_time().nanoseconds >=
                                            kNanosecondsPerSecond - kUpdateInProgressNanoseconds;
      return static_cast<uint8_t>(ram_[kStatusA] | (updating ? kStatusAUpdateInProgress : 0));
    }
    case kStatusC:
      return read_status_c();
    case kStatusD:
      return kStatusDValid;
    default:
      return ram_[index_];
  }
}

void CmosRtc::write_data(uint8_t value) {
  switch (index_) {
    case kSeconds:
    case kMinutes:
    case kHours:
    case kWeekday:
    case kDayOfMonth:
    case kMonth:
    case kYear:
    case kCentury:
      write_time_register(index_, value);
      break;
    case kStatusA:
      ram_[kStatusA] = value & static_cast<uint8_t>(~kStatusAUpdateInProgress);
      break;
    case kStatusB:
      write_status_b(value);
      break;
    case kStatusC:
    case kStatusD:
      break;  // read-only
    default:
      ram_[index_] = value;
      break;
  }
}

void CmosRtc::write_status_b(uint8_t value) {
  if ((value & kStatusBSet) != 0) {
    if (!frozen_) {
      frozen_ = calendar_time();
    }
    value &= static_cast<uint8_t>(~kStatusBUpdateInterrupt);  // SET clears UIE on the chip
  } else if (frozen_) {
    const CalendarTime written = *frozen_;
    frozen_.reset();
    set_calendar_time(written);
  }
  ram_[kStatusB] = value;
}

int64_t CmosRtc::host_nanoseconds() const {
  const auto now = clock_ ? clock_() : std::chrono::system_clock::now();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
}

CmosRtc::GuestTime CmosRtc::guest_time() const {
  const int64_t host = host_nanoseconds();
  const int64_t host_seconds = floor_div(host, kNanosecondsPerSecond);
  return GuestTime{host_seconds + offset_seconds_, host - host_seconds * kNanosecondsPerSecond};
}

CmosRtc::CalendarTime CmosRtc::calendar_time() const {
  if (frozen_) {
    return *frozen_;
  }
  const int64_t seconds = guest_time().seconds;
  const int64_t days = floor_div(seconds, kSecondsPerDay);
  const auto second_of_day = static_cast<unsigned>(seconds - days * kSecondsPerDay);

  // civil_from_days, the inverse of days_from_civil.
  const int64_t shifted = days + 719468;
  const int64_t era = floor_div(shifted, 146097);
  const auto day_of_era = static_cast<unsigned>(shifted - era * 146097);
  const unsigned year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const unsigned day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const unsigned month_index = (5 * day_of_year + 2) / 153;  // March = 0
  const unsigned month = month_index < 10 ? month_index + 3 : month_index - 9;

  CalendarTime time{};
  time.year = static_cast<int64_t>(year_of_era) + era * 400 + (month <= 2 ? 1 : 0);
  time.month = month;
  time.day = day_of_year - (153 * month_index + 2) / 5 + 1;
  time.hour = second_of_day / 3600;
  time.minute = second_of_day / 60 % 60;
  time.second = second_of_day % 60;
  // 1970-01-01 was a Thursday (5 when Sunday is 1).
  time.weekday = static_cast<unsigned>(days + 4 - floor_div(days + 4, 7) * 7) + 1;
  return time;
}

void CmosRtc::set_calendar_time(const CalendarTime& time) {
  if (frozen_) {
    frozen_ = time;
    return;
  }
  // Out-of-range days roll into the next month rather than failing: the chip would count on
  // from whatever it was given too.
  const int64_t days = days_from_civil(time.year, std::clamp(time.month, 1u, 12u), 1) +
                       std::clamp(time.day, 1u, 31u) - 1;
  const int64_t seconds = days * kSecondsPerDay + std::min(time.hour, 23u) * 3600 +
                          std::min(time.minute, 59u) * 60 + std::min(time.second, 59u);
  offset_seconds_ += seconds - guest_time().seconds;
}

uint8_t CmosRtc::encode(unsigned value) const {
  value %= 100;
  if ((ram_[kStatusB] & kStatusBBinary) != 0) {
    return static_cast<uint8_t>(value);
  }
  return static_cast<uint8_t>((value / 10) << 4 | (value % 10));
}

unsigned CmosRtc::decode(uint8_t value) const {
  if ((ram_[kStatusB] & kStatusBBinary) != 0) {
    return value;
  }
  return (value >> 4) * 10u + (value & 0x0fu);  // invalid BCD digits are clamped by the caller
}

uint8_t CmosRtc::read_time_register(uint8_t index) const {
  const CalendarTime time = calendar_time();
  const auto year_in_century = static_cast<unsigned>((time.year % 100 + 100) % 100);
  const auto century = static_cast<unsigned>((floor_div(time.year, 100) % 100 + 100) % 100);
  switch (index) {
    case kSeconds:
      return encode(time.second);
    case kMinutes:
      return encode(time.minute);
    case kHours: {
      if ((ram_[kStatusB] & kStatusB24Hour) != 0) {
        return encode(time.hour);
      }
      const unsigned hour12 = time.hour % 12 == 0 ? 12 : time.hour % 12;
      return static_cast<uint8_t>(encode(hour12) | (time.hour >= 12 ? kHourPm : 0));
    }
    case kWeekday:
      return encode(time.weekday);
    case kDayOfMonth:
      return encode(time.day);
    case kMonth:
      return encode(time.month);
    case kYear:
      return encode(year_in_century);
    case kCentury:
      return encode(century);
    default:
      return 0xff;
  }
}

void CmosRtc::write_time_register(uint8_t index, uint8_t value) {
  CalendarTime time = calendar_time();
  switch (index) {
    case kSeconds:
      time.second = std::min(decode(value), 59u);
      break;
    case kMinutes:
      time.minute = std::min(decode(value), 59u);
      break;
    case kHours:
      if ((ram_[kStatusB] & kStatusB24Hour) != 0) {
        time.hour = std::min(decode(value), 23u);
      } else {
        const unsigned hour12 = std::clamp(decode(value & 0x7f), 1u, 12u);
        time.hour = hour12 % 12 + ((value & kHourPm) != 0 ? 12 : 0);
      }
      break;
    case kWeekday:
      return;  // the weekday follows the date
    case kDayOfMonth:
      time.day = std::clamp(decode(value), 1u, 31u);
      break;
    case kMonth:
      time.month = std::clamp(decode(value), 1u, 12u);
      break;
    case kYear:
      time.year = floor_div(time.year, 100) * 100 + std::min(decode(value), 99u);
      break;
    case kCentury:
      time.year = std::min(decode(value), 99u) * 100 + (time.year % 100 + 100) % 100;
      break;
    default:
      return;
  }
  set_calendar_time(time);
}

uint8_t CmosRtc::read_status_c() {
  // The flags are set by events that happened since the last read, so they are computed from
  // the time elapsed since then; the read clears them.
  const int64_t now = host_nanoseconds();
  const int64_t last = status_c_read_nanoseconds_;
  status_c_read_nanoseconds_ = now;
  uint8_t flags = 0;
  // The offset is whole seconds, so guest updates happen when host seconds turn.
  if (!frozen_ && floor_div(now, kNanosecondsPerSecond) != floor_div(last, kNanosecondsPerSecond)) {
    flags |= kStatusCUpdateEnded;
  }
  const unsigned rate = ram_[kStatusA] & kStatusARateMask;
  if (rate != 0) {
    const int64_t frequency = rate == 1 ? 256 : rate == 2 ? 128 : 32768 >> (rate - 1);
    const int64_t elapsed = std::clamp<int64_t>(now - last, 0, kNanosecondsPerSecond);
    if (elapsed * frequency >= kNanosecondsPerSecond) {
      flags |= kStatusCPeriodic;
    }
  }
  if ((flags & ram_[kStatusB] & kStatusBInterruptEnables) != 0) {
    flags |= kStatusCInterruptRequest;
  }
  return flags;
}

}  // namespace hv
