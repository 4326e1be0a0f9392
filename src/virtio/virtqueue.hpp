// A split virtqueue (virtio 1.x, section 2.6 "Split Virtqueues"), device side, bound to guest
// memory. Everything in the rings is written by the guest and hostile: every index, length and
// address is checked before it is used, each guest address is resolved through
// GuestMemory::host_pointer for its whole length, and a malformed ring yields an Error that names
// the queue and the descriptor at fault. The transport then sets DEVICE_NEEDS_RESET and the
// device stops using the queue until the driver resets it.
//
// Limits the device enforces (the spec's driver requirements, checked rather than trusted):
//  - a chain has at most `size` descriptors in the descriptor table (so a loop ends as an error),
//    and an indirect table at most kMaxIndirectEntries (its own length bounds the walk in it);
//  - an indirect descriptor carries no NEXT flag, is not inside an indirect table, and its table
//    length is a nonzero multiple of 16;
//  - all device-readable descriptors come before all device-writable ones;
//  - the chain's buffers total at most kMaxChainBytes (2^32, the spec's bound);
//  - the available index is at most `size` entries ahead of the device's.
// Zero-length descriptors are accepted and skipped (their address is never used).
//
// Threading: a Virtqueue is not locked. One thread at a time uses it: the transport while the
// device is inactive (configuration), the device under its own lock while active. The index
// fields the guest reads or writes concurrently are accessed through std::atomic_ref with
// acquire/release ordering; the full fences the notification-suppression protocol needs are
// explicit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/error.hpp"
#include "vm/guest_memory.hpp"

namespace hv {

// Feature bits the queue itself interprets.
inline constexpr int kVirtioRingFeatureIndirectDesc = 28;  // VIRTIO_RING_F_INDIRECT_DESC
inline constexpr int kVirtioRingFeatureEventIdx = 29;      // VIRTIO_RING_F_EVENT_IDX

// Descriptor flags (struct virtq_desc).
inline constexpr uint16_t kVirtqDescNext = 1;
inline constexpr uint16_t kVirtqDescWrite = 2;
inline constexpr uint16_t kVirtqDescIndirect = 4;
inline constexpr uint16_t kVirtqAvailNoInterrupt = 1;  // avail->flags
inline constexpr uint16_t kVirtqUsedNoNotify = 1;      // used->flags

// Where the driver put a queue's three parts, as it wrote them to the transport's registers.
struct VirtqueueLayout {
  uint32_t size = 0;  // 32 bits: the register is, and an oversized value must be reported
  uint64_t desc_table = 0;
  uint64_t avail_ring = 0;  // the "driver area"
  uint64_t used_ring = 0;   // the "device area"
};

// One available buffer, resolved to host memory: the readable (driver-to-device) buffers, then
// the writable (device-to-driver) ones, each a span inside guest RAM. Owned by the device and
// refilled by Virtqueue::pop, so its vectors keep their capacity from one request to the next.
// The guest can change the bytes under these spans at any moment: a device copies a request
// header out (read_from_chain) before checking it, and uses the copy.
class DescriptorChain {
 public:
  uint16_t head() const { return head_; }
  std::span<const std::span<const uint8_t>> readable() const { return readable_; }
  std::span<const std::span<uint8_t>> writable() const { return writable_; }
  uint64_t readable_length() const { return readable_length_; }
  uint64_t writable_length() const { return writable_length_; }

  // Gathers readable bytes starting `offset` bytes into the readable buffers; returns how many
  // were copied (fewer than out.size() when the buffers end first).
  size_t read_from_chain(uint64_t offset, std::span<uint8_t> out) const;
  // Scatters `in` into the writable buffers starting `offset` bytes in; returns how many bytes
  // were written.
  size_t write_to_chain(uint64_t offset, std::span<const uint8_t> in) const;

 private:
  friend class Virtqueue;
  void clear();

  uint16_t head_ = 0;
  std::vector<std::span<const uint8_t>> readable_;
  std::vector<std::span<uint8_t>> writable_;
  uint64_t readable_length_ = 0;
  uint64_t writable_length_ = 0;
};

class Virtqueue {
 public:
  static constexpr uint32_t kMaxSize = 32768;
  static constexpr uint32_t kMaxIndirectEntries = kMaxSize;
  static constexpr uint64_t kMaxChainBytes = 1ull << 32;
  // Spec alignments (2.6 table "Virtqueue Part Alignment").
  static constexpr uint64_t kDescTableAlign = 16;
  static constexpr uint64_t kAvailRingAlign = 2;
  static constexpr uint64_t kUsedRingAlign = 4;

  // `max_size` is the device's QueueNumMax (at most kMaxSize).
  Virtqueue(const GuestMemory& memory, uint16_t index, uint32_t max_size);

  uint16_t index() const { return index_; }
  uint32_t max_size() const { return max_size_; }
  bool ready() const { return ready_; }
  uint32_t size() const { return layout_.size; }
  const VirtqueueLayout& layout() const { return layout_; }

  // Checks that `layout` describes a usable queue: size a power of two no larger than the
  // device's maximum, each ring aligned and entirely in guest RAM. `features` are the driver's
  // features; with EVENT_IDX the rings have their trailing event fields.
  Status validate_layout(const VirtqueueLayout& layout, uint64_t features) const;

  // Validates `layout` and binds the queue to it with fresh indices (the driver's rings start
  // zeroed). On failure the queue is left disabled.
  Status enable(const VirtqueueLayout& layout, uint64_t features);
  void disable();

  // Takes the next available chain into `chain` and returns true; false when the ring is empty or
  // the queue is not ready. The chain's spans stay valid as long as the guest memory does.
  Result<bool> pop(DescriptorChain& chain);
  // Whether the driver has made buffers available that pop() has not taken yet.
  Result<bool> has_available() const;

  // Returns chain `head` to the driver with `written` bytes written into its writable buffers.
  Status push_used(uint16_t head, uint32_t written);

  // Whether the driver wants a used-buffer notification for what was pushed since the last call
  // (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). Call after a batch of push_used.
  bool should_notify();

  // Notification suppression for the driver's kicks. A device loop is:
  //   do { disable_notification(); while (pop(chain)) { ...; push_used(...); } }
  //   while (enable_notification());
  // enable_notification() re-arms kicks (used->flags, or avail_event with EVENT_IDX) and then
  // looks at the available index again, returning true when buffers arrived in between: a kick
  // the driver skipped because notifications were off is never lost.
  void disable_notification();
  Result<bool> enable_notification();

 private:
  struct Descriptor {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
  };
  static_assert(sizeof(Descriptor) == 16);

  uint16_t load_avail_idx() const;
  Status walk_table(const uint8_t* table, uint32_t table_entries, uint16_t first, bool indirect,
                    DescriptorChain& chain);
  Status add_buffer(const Descriptor& descriptor, uint32_t position, bool indirect,
                    DescriptorChain& chain);
  Error malformed(std::string message) const;

  const GuestMemory& memory_;
  const uint16_t index_;
  const uint32_t max_size_;

  bool ready_ = false;
  bool event_idx_ = false;
  bool indirect_allowed_ = false;
  VirtqueueLayout layout_;
  uint8_t* desc_table_ = nullptr;
  uint8_t* avail_ring_ = nullptr;
  uint8_t* used_ring_ = nullptr;

  uint16_t last_avail_idx_ = 0;  // the next available entry the device takes
  uint16_t used_idx_ = 0;        // the device's copy of used->idx
  uint16_t signalled_used_ = 0;  // used->idx when should_notify() last ran
};

}  // namespace hv
