// The PCI host bridge's configuration mechanism #1: CONFIG_ADDRESS at 0xcf8 and CONFIG_DATA at
// 0xcfc..0xcff. Configuration cycles go to a PciConfigSpace; with none (today) every function is
// absent, so configuration reads return all ones at any width and offset and writes vanish, which
// is what an OS sees on a bus with no devices.
//
// Offsets are port numbers minus 0xcf8. Only a 32-bit access at 0xcf8 reaches CONFIG_ADDRESS;
// narrower ones pass through to the ISA bus on real chipsets, which is how 0xcf9 (the reset
// control register, PowerControl) shares the dword. So the bridge is registered at 0xcf8 with
// length 1 and an IoWindow with displacement kDataOffset at 0xcfc (length 4); other accesses at
// offset 0 are no-ops that read all ones.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>

#include "devices/pci_config_space.hpp"
#include "vm/io_device.hpp"

namespace hv {

class PciHostBridge final : public IoDevice {
 public:
  static constexpr uint64_t kAddressOffset = 0;  // port 0xcf8
  static constexpr uint64_t kDataOffset = 4;     // port 0xcfc
  static constexpr uint64_t kDataWidth = 4;
  static constexpr uint32_t kEnable = 1u << 31;

  // `functions` may be null (no PCI functions); it must outlive the bridge.
  explicit PciHostBridge(PciConfigSpace* functions = nullptr) : functions_(functions) {}

  std::string_view name() const override { return "pci-host-bridge"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  uint32_t config_address() const { return address_.load(std::memory_order_relaxed); }

 private:
  PciConfigSpace* const functions_;
  // The only state, one word: an atomic is enough. A guest pairs CONFIG_ADDRESS and CONFIG_DATA
  // accesses under its own lock; racing them is its problem, as on hardware.
  std::atomic<uint32_t> address_{0};
};

}  // namespace hv
