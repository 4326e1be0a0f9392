// An address space of devices: the port-I/O bus and the MMIO bus are both IoBus objects.
//
// Devices are registered while the machine is built and the bus is frozen before any vCPU runs,
// so lookups on the exit path take no lock. Ranges are kept sorted and found by binary search.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "vm/io_device.hpp"

namespace hv {

class IoBus {
 public:
  explicit IoBus(std::string name) : name_(std::move(name)) {}

  // Fails when the range is empty, wraps around, or overlaps a registered one.
  Status add(uint64_t base, uint64_t length, IoDevice* device);

  // Accesses that hit no device behave like an empty PC bus: reads return all ones, writes
  // vanish. Returns whether a device answered.
  bool read(uint64_t address, std::span<uint8_t> data) const;
  bool write(uint64_t address, std::span<const uint8_t> data) const;

  struct Mapping {
    uint64_t base;
    uint64_t length;
    IoDevice* device;
  };
  const Mapping* find(uint64_t address) const;
  std::span<const Mapping> mappings() const { return mappings_; }

 private:
  std::string name_;
  std::vector<Mapping> mappings_;  // sorted by base, non-overlapping
};

}  // namespace hv
