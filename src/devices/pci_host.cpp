#include "devices/pci_host.hpp"

#include <algorithm>

namespace hv {
namespace {

constexpr uint32_t kAddressWritableBits = ~0x3u;  // bits 1:0 are hard-wired to zero

PciAddress decode_address(uint32_t address) {
  return PciAddress{static_cast<uint8_t>(address >> 16),
                    static_cast<uint8_t>((address >> 11) & 0x1f),
                    static_cast<uint8_t>((address >> 8) & 0x7)};
}

uint8_t register_number(uint32_t address) {
  return static_cast<uint8_t>(address & 0xfc);
}

}  // namespace

void PciHostBridge::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  if (offset == kAddressOffset) {
    if (data.size() == 4) {
      set_io_value(data, address_.load(std::memory_order_relaxed));
    }
    return;
  }
  if (offset < kDataOffset || offset >= kDataOffset + kDataWidth) {
    return;
  }
  const uint32_t address = address_.load(std::memory_order_relaxed);
  if ((address & kEnable) == 0 || functions_ == nullptr) {
    return;
  }
  const uint32_t dword =
      functions_->config_read(decode_address(address), register_number(address)).value_or(~0u);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t byte = offset - kDataOffset + i;
    if (byte < kDataWidth) {
      data[i] = static_cast<uint8_t>(dword >> (8 * byte));
    }
  }
}

void PciHostBridge::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == kAddressOffset) {
    if (data.size() == 4) {
      address_.store(static_cast<uint32_t>(io_value(data)) & kAddressWritableBits,
                     std::memory_order_relaxed);
    }
    return;
  }
  if (offset < kDataOffset || offset >= kDataOffset + kDataWidth) {
    return;
  }
  const uint32_t address = address_.load(std::memory_order_relaxed);
  if ((address & kEnable) == 0 || functions_ == nullptr) {
    return;
  }
  uint32_t value = 0;
  uint8_t byte_enable = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t byte = offset - kDataOffset + i;
    if (byte < kDataWidth) {
      value |= static_cast<uint32_t>(data[i]) << (8 * byte);
      byte_enable |= static_cast<uint8_t>(1u << byte);
    }
  }
  functions_->config_write(decode_address(address), register_number(address), value, byte_enable);
}

}  // namespace hv
