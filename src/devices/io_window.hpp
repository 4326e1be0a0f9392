// Some chips answer on port ranges that are not contiguous: the i8042 at 0x60 and 0x64 (0x61 in
// between is the PIT's speaker gate), the PCI host bridge at 0xcf8 and 0xcfc (0xcf9 in between is
// the chipset's reset control register). A bus range only tells its device the offset inside that
// range, so such a device lays out all its registers in one offset space and each extra range is
// an IoWindow that forwards its accesses at a fixed displacement.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "vm/io_device.hpp"

namespace hv {

class IoWindow final : public IoDevice {
 public:
  // `target` must outlive the window (both are normally owned by the same Machine).
  IoWindow(IoDevice* target, uint64_t displacement)
      : target_(target), displacement_(displacement) {}

  std::string_view name() const override { return target_->name(); }
  void read(uint64_t offset, std::span<uint8_t> data) override {
    target_->read(offset + displacement_, data);
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    target_->write(offset + displacement_, data);
  }

 private:
  IoDevice* target_;
  uint64_t displacement_;
};

}  // namespace hv
