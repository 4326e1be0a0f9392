#include "vm/io_bus.hpp"

#include <algorithm>
#include <cstring>

namespace hv {

Status IoBus::add(uint64_t base, uint64_t length, IoDevice* device) {
  if (length == 0 || base + length < base || device == nullptr) {
    return make_error(ExitStatus::HostError, "{} bus: invalid range {:#x}+{:#x}", name_, base,
                      length);
  }
  auto it = std::lower_bound(mappings_.begin(), mappings_.end(), base,
                             [](const Mapping& m, uint64_t b) { return m.base < b; });
  if (it != mappings_.end() && it->base < base + length) {
    return make_error(ExitStatus::HostError, "{} bus: {} at {:#x} overlaps {}", name_,
                      device->name(), base, it->device->name());
  }
  if (it != mappings_.begin()) {
    const Mapping& prev = *(it - 1);
    if (prev.base + prev.length > base) {
      return make_error(ExitStatus::HostError, "{} bus: {} at {:#x} overlaps {}", name_,
                        device->name(), base, prev.device->name());
    }
  }
  mappings_.insert(it, Mapping{base, length, device});
  return {};
}

const IoBus::Mapping* IoBus::find(uint64_t address) const {
  auto it = std::upper_bound(mappings_.begin(), mappings_.end(), address,
                             [](uint64_t a, const Mapping& m) { return a < m.base; });
  if (it == mappings_.begin()) {
    return nullptr;
  }
  const Mapping& m = *(it - 1);
  return address - m.base < m.length ? &m : nullptr;
}

bool IoBus::read(uint64_t address, std::span<uint8_t> data) const {
  const Mapping* m = find(address);
  if (m == nullptr) {
    std::memset(data.data(), 0xff, data.size());
    return false;
  }
  m->device->read(address - m->base, data);
  return true;
}

bool IoBus::write(uint64_t address, std::span<const uint8_t> data) const {
  const Mapping* m = find(address);
  if (m == nullptr) {
    return false;
  }
  m->device->write(address - m->base, data);
  return true;
}

}  // namespace hv
