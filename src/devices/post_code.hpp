// The POST diagnostic port 0x80. Firmware writes progress codes to it and Linux writes to it (or
// to 0xed with io_delay=0xed) as an I/O delay, so some guests hit it very often: the device keeps
// no state and takes no lock. Writes are ignored; reads return all ones like an empty bus.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "vm/io_device.hpp"

namespace hv {

class PostCodePort final : public IoDevice {
 public:
  static constexpr uint64_t kPortCount = 1;

  std::string_view name() const override { return "post-code"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
};

}  // namespace hv
