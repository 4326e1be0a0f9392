// The one device model both engines use. A device claims address ranges on the port-I/O bus or
// the MMIO bus and is called with the offset of the access inside its range. Devices are called
// from vCPU threads and from the console thread at the same time: each one does its own locking.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace hv {

class IoDevice {
 public:
  virtual ~IoDevice() = default;
  virtual std::string_view name() const = 0;
  // data.size() is the access width (1, 2, 4 or 8). Reads must fill all of data.
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

// Little-endian helpers for devices: guest accesses arrive as byte spans.
inline uint64_t io_value(std::span<const uint8_t> data) {
  uint64_t v = 0;
  for (size_t i = 0; i < data.size() && i < 8; ++i) {
    v |= static_cast<uint64_t>(data[i]) << (8 * i);
  }
  return v;
}

inline void set_io_value(std::span<uint8_t> data, uint64_t v) {
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = i < 8 ? static_cast<uint8_t>(v >> (8 * i)) : 0;
  }
}

}  // namespace hv
