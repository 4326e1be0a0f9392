// The registers through which guests without firmware services switch the machine off or reset
// it. One class serves both kinds; the constructor says which register an instance is, since a
// bus range only tells a device the offset inside it:
//  - Pm1aControl: the ACPI PM1a control register (16 bits). Registered at 0x604 (QEMU q35) and
//    at 0xb004 (old QEMU/Bochs PIIX4), one instance on both ranges because they behave alike.
//    Setting SLP_EN (bit 13) powers off whatever sleep type is asked for: hv has no sleep states,
//    and guests only ask for S5. SCI_EN reads as set: ACPI mode is always on (no SMI handshake).
//  - ResetControl: the chipset's reset control register at 0xcf9 (8 bits). Writing RST (bit 2)
//    resets the machine; reads return the last value written.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>

#include "vm/io_device.hpp"
#include "vm/stop_control.hpp"

namespace hv {

class PowerControl final : public IoDevice {
 public:
  enum class Kind { Pm1aControl, ResetControl };

  static constexpr uint64_t kPm1aControlWidth = 2;
  static constexpr uint64_t kResetControlWidth = 1;
  static constexpr uint16_t kSleepEnable = 1 << 13;
  static constexpr uint16_t kSciEnable = 1 << 0;
  static constexpr uint8_t kResetCpu = 1 << 2;

  PowerControl(StopControl& stop, Kind kind);

  // The bus range length for an instance of this kind.
  uint64_t width() const {
    return kind_ == Kind::Pm1aControl ? kPm1aControlWidth : kResetControlWidth;
  }

  std::string_view name() const override;
  // Bytes of an access that fall past the register read 0xff and are ignored.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  StopControl& stop_;
  const Kind kind_;
  std::mutex mutex_;
  uint16_t value_;  // guarded by mutex_
};

}  // namespace hv
