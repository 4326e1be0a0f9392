// PCI bus 0 behind the host bridge: the functions plugged into it, found by device number, and
// the host bridge itself at 00:00.0. Operating systems look for that host bridge before they trust
// configuration mechanism #1 (Linux's pci_sanity_check wants a host bridge or a VGA function on
// bus 0), so a machine with no other PCI device still has it, as every PC chipset does.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>

#include "common/error.hpp"
#include "devices/pci_config_space.hpp"

namespace hv {

// One PCI function's 256-byte configuration space. Called from vCPU threads concurrently; each
// function locks what it changes.
class PciFunction {
 public:
  virtual ~PciFunction() = default;
  virtual uint32_t config_read(uint8_t reg) = 0;
  virtual void config_write(uint8_t reg, uint32_t value, uint8_t byte_enable) = 0;
};

// A function whose header fields are fixed at construction: identification, class and the
// command/status pair (whose writable bits are kept). Used for the host bridge, which has no
// BARs and no interrupt.
class FixedPciFunction final : public PciFunction {
 public:
  FixedPciFunction(uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision);
  uint32_t config_read(uint8_t reg) override;
  void config_write(uint8_t reg, uint32_t value, uint8_t byte_enable) override;

 private:
  const uint32_t id_;              // device << 16 | vendor
  const uint32_t class_revision_;  // class code << 8 | revision
  std::mutex mutex_;
  uint16_t command_ = 0;  // guarded by mutex_
};

class PciBus final : public PciConfigSpace {
 public:
  static constexpr uint8_t kDeviceCount = 32;
  // Intel 440FX host bridge, the chipset of QEMU's default "pc" machine: guests have drivers and
  // quirks for it already.
  static constexpr uint16_t kIntelVendor = 0x8086;
  static constexpr uint16_t kI440fxHostBridge = 0x1237;
  static constexpr uint32_t kHostBridgeClass = 0x060000;

  PciBus();

  // Plugs a single-function device into slot `device` of bus 0. Usage error when the slot is
  // taken or out of range. `function` must outlive the bus.
  Status plug(uint8_t device, PciFunction* function);

  std::optional<uint32_t> config_read(PciAddress address, uint8_t reg) override;
  void config_write(PciAddress address, uint8_t reg, uint32_t value, uint8_t byte_enable) override;

 private:
  PciFunction* find(PciAddress address) const;

  FixedPciFunction host_bridge_;
  std::array<PciFunction*, kDeviceCount> slots_{};  // written before the guest runs, then read-only
};

}  // namespace hv
