// Test code only: the guest driver's side of virtio, played by the tests. SplitRing writes
// descriptor tables and available rings into guest memory and reads the used ring back;
// MmioDriver drives a virtio-mmio window through IoDevice::read/write as a guest's accesses would.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "virtio/virtio_device.hpp"
#include "virtio/virtio_mmio.hpp"
#include "virtio/virtqueue.hpp"
#include "vm/guest_memory.hpp"
#include "vm/io_device.hpp"

namespace hv::virtio_test {

// Where the tests put one queue's rings unless a test says otherwise.
inline constexpr uint64_t kDescTable = 0x10000;
inline constexpr uint64_t kAvailRing = 0x18000;
inline constexpr uint64_t kUsedRing = 0x19000;
inline constexpr uint64_t kBuffers = 0x40000;  // data buffers and indirect tables from here on

inline VirtqueueLayout test_layout(uint32_t size) {
  return VirtqueueLayout{
      .size = size, .desc_table = kDescTable, .avail_ring = kAvailRing, .used_ring = kUsedRing};
}

struct TestDescriptor {
  uint64_t addr = 0;
  uint32_t len = 0;
  uint16_t flags = 0;
  uint16_t next = 0;
};
static_assert(sizeof(TestDescriptor) == 16);

struct UsedElement {
  uint32_t id = 0;
  uint32_t len = 0;
};

class SplitRing {
 public:
  SplitRing(GuestMemory& memory, const VirtqueueLayout& layout)
      : memory_(memory), layout_(layout) {}

  void set_descriptor(uint32_t index, const TestDescriptor& d) {
    put(layout_.desc_table + 16ull * index, d);
  }
  // An entry of an indirect table at `table`.
  void set_table_entry(uint64_t table, uint32_t index, const TestDescriptor& d) {
    put(table + 16ull * index, d);
  }
  // Puts `head` in the next available slot and publishes it.
  void offer(uint16_t head) {
    const uint16_t idx = avail_idx();
    put<uint16_t>(layout_.avail_ring + 4 + 2ull * (idx % layout_.size), head);
    set_avail_idx(static_cast<uint16_t>(idx + 1));
  }
  void set_avail_idx(uint16_t idx) { put<uint16_t>(layout_.avail_ring + 2, idx); }
  void set_avail_flags(uint16_t flags) { put<uint16_t>(layout_.avail_ring, flags); }
  void set_used_event(uint16_t event) {
    put<uint16_t>(layout_.avail_ring + 4 + 2ull * layout_.size, event);
  }

  uint16_t avail_idx() const { return get<uint16_t>(layout_.avail_ring + 2); }
  uint16_t used_flags() const { return get<uint16_t>(layout_.used_ring); }
  uint16_t used_idx() const { return get<uint16_t>(layout_.used_ring + 2); }
  UsedElement used(uint32_t slot) const {
    return get<UsedElement>(layout_.used_ring + 4 + 8ull * (slot % layout_.size));
  }
  uint16_t avail_event() const {
    return get<uint16_t>(layout_.used_ring + 4 + 8ull * layout_.size);
  }
  const VirtqueueLayout& layout() const { return layout_; }

 private:
  template <typename T>
  void put(uint64_t gpa, const T& value) {
    Status written = memory_.write_object(gpa, value);
    ASSERT_TRUE(written.ok()) << written.error().to_string();
  }
  template <typename T>
  T get(uint64_t gpa) const {
    Result<T> value = memory_.read_object<T>(gpa);
    EXPECT_TRUE(value.ok()) << value.error().to_string();
    return value.ok() ? *value : T{};
  }

  GuestMemory& memory_;
  VirtqueueLayout layout_;
};

class MmioDriver {
 public:
  explicit MmioDriver(IoDevice& transport) : transport_(transport) {}

  uint32_t read32(uint64_t offset) {
    uint8_t data[4] = {};
    transport_.read(offset, data);
    return static_cast<uint32_t>(io_value(data));
  }
  void write32(uint64_t offset, uint32_t value) {
    uint8_t data[4] = {};
    set_io_value(data, value);
    transport_.write(offset, data);
  }
  uint32_t status() { return read32(virtio_mmio::kStatus); }

  uint64_t device_features() {
    write32(virtio_mmio::kDeviceFeaturesSel, 1);
    uint64_t features = uint64_t{read32(virtio_mmio::kDeviceFeatures)} << 32;
    write32(virtio_mmio::kDeviceFeaturesSel, 0);
    return features | read32(virtio_mmio::kDeviceFeatures);
  }
  // ACKNOWLEDGE, DRIVER, the driver's features, FEATURES_OK; returns the status read back.
  uint32_t negotiate(uint64_t features) {
    write32(virtio_mmio::kStatus, kVirtioStatusAcknowledge);
    write32(virtio_mmio::kStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver);
    write32(virtio_mmio::kDriverFeaturesSel, 0);
    write32(virtio_mmio::kDriverFeatures, static_cast<uint32_t>(features));
    write32(virtio_mmio::kDriverFeaturesSel, 1);
    write32(virtio_mmio::kDriverFeatures, static_cast<uint32_t>(features >> 32));
    write32(virtio_mmio::kStatus,
            kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk);
    return status();
  }
  // Programs queue `index` and sets QueueReady; returns QueueReady read back.
  bool setup_queue(uint32_t index, const VirtqueueLayout& layout) {
    write32(virtio_mmio::kQueueSel, index);
    write32(virtio_mmio::kQueueNum, layout.size);
    write32(virtio_mmio::kQueueDescLow, static_cast<uint32_t>(layout.desc_table));
    write32(virtio_mmio::kQueueDescHigh, static_cast<uint32_t>(layout.desc_table >> 32));
    write32(virtio_mmio::kQueueDriverLow, static_cast<uint32_t>(layout.avail_ring));
    write32(virtio_mmio::kQueueDriverHigh, static_cast<uint32_t>(layout.avail_ring >> 32));
    write32(virtio_mmio::kQueueDeviceLow, static_cast<uint32_t>(layout.used_ring));
    write32(virtio_mmio::kQueueDeviceHigh, static_cast<uint32_t>(layout.used_ring >> 32));
    write32(virtio_mmio::kQueueReady, 1);
    return read32(virtio_mmio::kQueueReady) == 1;
  }
  void driver_ok() { write32(virtio_mmio::kStatus, status() | kVirtioStatusDriverOk); }
  void kick(uint32_t queue) { write32(virtio_mmio::kQueueNotify, queue); }
  uint32_t interrupt_status() { return read32(virtio_mmio::kInterruptStatus); }
  void acknowledge(uint32_t bits) { write32(virtio_mmio::kInterruptAck, bits); }
  void reset() { write32(virtio_mmio::kStatus, 0); }

 private:
  IoDevice& transport_;
};

// A copy of all guest RAM, to prove a failed request touched nothing.
inline std::vector<uint8_t> snapshot(const GuestMemory& memory) {
  std::vector<uint8_t> bytes(memory.size());
  Status read = memory.read(0, bytes);
  EXPECT_TRUE(read.ok());
  return bytes;
}

}  // namespace hv::virtio_test
