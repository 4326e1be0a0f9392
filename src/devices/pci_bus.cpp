#include "devices/pci_bus.hpp"

namespace hv {

namespace {
constexpr uint8_t kIdRegister = 0x00;
constexpr uint8_t kCommandStatusRegister = 0x04;
constexpr uint8_t kClassRevisionRegister = 0x08;
// Memory space, bus master and the parity/SERR enables are the command bits a host bridge keeps;
// it has no I/O space of its own and no interrupt.
constexpr uint16_t kWritableCommandBits = 0x0002 | 0x0004 | 0x0040 | 0x0100;
}  // namespace

FixedPciFunction::FixedPciFunction(uint16_t vendor, uint16_t device, uint32_t class_code,
                                   uint8_t revision)
    : id_(static_cast<uint32_t>(device) << 16 | vendor),
      class_revision_(class_code << 8 | revision) {}

uint32_t FixedPciFunction::config_read(uint8_t reg) {
  switch (reg) {
    case kIdRegister:
      return id_;
    case kCommandStatusRegister: {
      std::lock_guard lock(mutex_);
      return command_;  // status: no capabilities list, no errors latched
    }
    case kClassRevisionRegister:
      return class_revision_;
    default:
      return 0;  // header type 0, single function, no BARs, no interrupt pin
  }
}

void FixedPciFunction::config_write(uint8_t reg, uint32_t value, uint8_t byte_enable) {
  if (reg != kCommandStatusRegister) {
    return;
  }
  std::lock_guard lock(mutex_);
  uint16_t mask = kWritableCommandBits;
  if ((byte_enable & 1) == 0)
    mask &= 0xff00;
  if ((byte_enable & 2) == 0)
    mask &= 0x00ff;
  command_ = static_cast<uint16_t>((command_ & ~mask) | (value & mask));
}

PciBus::PciBus() : host_bridge_(kIntelVendor, kI440fxHostBridge, kHostBridgeClass, 2) {
  slots_[0] = &host_bridge_;
}

Status PciBus::plug(uint8_t device, PciFunction* function) {
  if (device >= kDeviceCount || function == nullptr) {
    return make_error(ExitStatus::Usage, "PCI slot {} does not exist", device);
  }
  if (slots_[device] != nullptr) {
    return make_error(ExitStatus::Usage, "PCI slot {} is taken", device);
  }
  slots_[device] = function;
  return {};
}

PciFunction* PciBus::find(PciAddress address) const {
  // Only bus 0 exists and every device is single-function: the other functions of a slot and
  // other buses are empty, so their vendor ID reads all ones.
  if (address.bus != 0 || address.function != 0 || address.device >= kDeviceCount) {
    return nullptr;
  }
  return slots_[address.device];
}

std::optional<uint32_t> PciBus::config_read(PciAddress address, uint8_t reg) {
  PciFunction* function = find(address);
  if (function == nullptr) {
    return std::nullopt;
  }
  return function->config_read(reg);
}

void PciBus::config_write(PciAddress address, uint8_t reg, uint32_t value, uint8_t byte_enable) {
  if (PciFunction* function = find(address)) {
    function->config_write(reg, value, byte_enable);
  }
}

}  // namespace hv
