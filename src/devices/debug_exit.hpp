// QEMU's isa-debug-exit device as test guests use it (iobase=0xf4, iosize=4): writing a value v
// of any width at any offset ends the machine with process status (v << 1) | 1, taken mod 256
// like any exit status. The status is always odd, so it can never be mistaken for one of hv's
// own (see common/exit_status.hpp).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "vm/io_device.hpp"
#include "vm/stop_control.hpp"

namespace hv {

class DebugExit final : public IoDevice {
 public:
  static constexpr uint64_t kPortCount = 4;

  explicit DebugExit(StopControl& stop) : stop_(stop) {}

  std::string_view name() const override { return "debug-exit"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;  // all ones
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  static int exit_status_for(uint64_t value) { return static_cast<int>(((value << 1) | 1) & 0xff); }

 private:
  StopControl& stop_;  // stateless otherwise, so no lock
};

}  // namespace hv
