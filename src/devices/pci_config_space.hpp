// Where the PCI host bridge finds the configuration space of PCI functions: PciBus (bus 0 with
// the host bridge function and the devices plugged into it) implements it.
#pragma once

#include <cstdint>
#include <optional>

namespace hv {

struct PciAddress {
  uint8_t bus;
  uint8_t device;    // 0..31
  uint8_t function;  // 0..7
};

class PciConfigSpace {
 public:
  virtual ~PciConfigSpace() = default;
  // `reg` is the byte offset of a naturally aligned dword (0, 4, ..., 252). Returns nullopt when
  // no function answers at `address`; the bridge then reads all ones, as an empty slot does.
  // Called from vCPU threads concurrently, without any bridge lock held.
  virtual std::optional<uint32_t> config_read(PciAddress address, uint8_t reg) = 0;
  // Writes the bytes of `value` whose bit is set in `byte_enable` (bit i: byte i).
  virtual void config_write(PciAddress address, uint8_t reg, uint32_t value,
                            uint8_t byte_enable) = 0;
};

}  // namespace hv
