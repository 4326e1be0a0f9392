#include "virtio/virtqueue.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>

namespace hv {
namespace {

// The rings are little-endian (virtio 1.x); fields are read in host order.
static_assert(std::endian::native == std::endian::little);

constexpr uint64_t kDescriptorSize = 16;
constexpr uint64_t kRingHeaderSize = 4;  // flags, idx
constexpr uint64_t kUsedElementSize = 8;
constexpr uint64_t kEventFieldSize = 2;  // used_event / avail_event

uint64_t avail_ring_bytes(uint32_t size, bool event_idx) {
  return kRingHeaderSize + 2ull * size + (event_idx ? kEventFieldSize : 0);
}

uint64_t used_ring_bytes(uint32_t size, bool event_idx) {
  return kRingHeaderSize + kUsedElementSize * size + (event_idx ? kEventFieldSize : 0);
}

// Guest-shared 16-bit fields; the ring layout checks guarantee their 2-byte alignment.
std::atomic_ref<uint16_t> shared_u16(uint8_t* p) {
  return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p));
}

}  // namespace

void DescriptorChain::clear() {
  head_ = 0;
  readable_.clear();
  writable_.clear();
  readable_length_ = 0;
  writable_length_ = 0;
}

size_t DescriptorChain::read_from_chain(uint64_t offset, std::span<uint8_t> out) const {
  size_t copied = 0;
  for (std::span<const uint8_t> buffer : readable_) {
    if (copied == out.size()) {
      break;
    }
    if (offset >= buffer.size()) {
      offset -= buffer.size();
      continue;
    }
    const size_t n = std::min<size_t>(buffer.size() - offset, out.size() - copied);
    std::memcpy(out.data() + copied, buffer.data() + offset, n);
    copied += n;
    offset = 0;
  }
  return copied;
}

size_t DescriptorChain::write_to_chain(uint64_t offset, std::span<const uint8_t> in) const {
  size_t copied = 0;
  for (std::span<uint8_t> buffer : writable_) {
    if (copied == in.size()) {
      break;
    }
    if (offset >= buffer.size()) {
      offset -= buffer.size();
      continue;
    }
    const size_t n = std::min<size_t>(buffer.size() - offset, in.size() - copied);
    std::memcpy(buffer.data() + offset, in.data() + copied, n);
    copied += n;
    offset = 0;
  }
  return copied;
}

Virtqueue::Virtqueue(const GuestMemory& memory, uint16_t index, uint32_t max_size)
    : memory_(memory), index_(index), max_size_(std::min(max_size, kMaxSize)) {}

Error Virtqueue::malformed(std::string message) const {
  return make_error(ExitStatus::GuestCrashed, "virtqueue {}: {}", index_, message);
}

Status Virtqueue::validate_layout(const VirtqueueLayout& layout, uint64_t features) const {
  const uint32_t size = layout.size;
  if (size == 0 || size > max_size_ || !std::has_single_bit(size)) {
    return malformed(
        fmt::format("queue size {} is not a power of two between 1 and {}", size, max_size_));
  }
  const bool event_idx = (features >> kVirtioRingFeatureEventIdx) & 1;
  struct Part {
    const char* name;
    uint64_t address;
    uint64_t alignment;
    uint64_t bytes;
  };
  const Part parts[] = {
      {"descriptor table", layout.desc_table, kDescTableAlign, kDescriptorSize * size},
      {"available ring", layout.avail_ring, kAvailRingAlign, avail_ring_bytes(size, event_idx)},
      {"used ring", layout.used_ring, kUsedRingAlign, used_ring_bytes(size, event_idx)},
  };
  for (const Part& part : parts) {
    if (part.address % part.alignment != 0) {
      return malformed(fmt::format("{} at {:#x} is not aligned to {} bytes", part.name,
                                   part.address, part.alignment));
    }
    if (!memory_.contains(part.address, part.bytes)) {
      return malformed(fmt::format("{} at {:#x}+{:#x} is not entirely in guest RAM", part.name,
                                   part.address, part.bytes));
    }
  }
  return {};
}

Status Virtqueue::enable(const VirtqueueLayout& layout, uint64_t features) {
  disable();
  HV_TRY(validate_layout(layout, features));
  event_idx_ = (features >> kVirtioRingFeatureEventIdx) & 1;
  indirect_allowed_ = (features >> kVirtioRingFeatureIndirectDesc) & 1;
  layout_ = layout;
  desc_table_ = memory_.host_pointer(layout.desc_table, kDescriptorSize * layout.size);
  avail_ring_ = memory_.host_pointer(layout.avail_ring, avail_ring_bytes(layout.size, event_idx_));
  used_ring_ = memory_.host_pointer(layout.used_ring, used_ring_bytes(layout.size, event_idx_));
  ready_ = true;
  return {};
}

void Virtqueue::disable() {
  ready_ = false;
  event_idx_ = false;
  indirect_allowed_ = false;
  layout_ = {};
  desc_table_ = avail_ring_ = used_ring_ = nullptr;
  last_avail_idx_ = 0;
  used_idx_ = 0;
  signalled_used_ = 0;
}

uint16_t Virtqueue::load_avail_idx() const {
  // Acquire: the ring entries and descriptors the driver wrote before publishing idx are seen.
  return shared_u16(avail_ring_ + 2).load(std::memory_order_acquire);
}

Result<bool> Virtqueue::has_available() const {
  if (!ready_) {
    return false;
  }
  const uint16_t avail_idx = load_avail_idx();
  const uint16_t pending = static_cast<uint16_t>(avail_idx - last_avail_idx_);
  if (pending > layout_.size) {
    return malformed(fmt::format(
        "available index {} is {} entries ahead of the device's {}, more than the queue size {}",
        avail_idx, pending, last_avail_idx_, layout_.size));
  }
  return pending != 0;
}

Result<bool> Virtqueue::pop(DescriptorChain& chain) {
  chain.clear();
  if (!HV_TRY(has_available())) {
    return false;
  }
  const uint32_t size = layout_.size;
  // Reserved once per chain object: the walk below never allocates for a ring-sized chain.
  if (chain.readable_.capacity() < size) {
    chain.readable_.reserve(size);
    chain.writable_.reserve(size);
  }
  const uint32_t slot = last_avail_idx_ % size;
  uint16_t head = 0;
  std::memcpy(&head, avail_ring_ + kRingHeaderSize + 2ull * slot, sizeof(head));
  if (head >= size) {
    return malformed(fmt::format("available ring entry {} names descriptor {} >= queue size {}",
                                 last_avail_idx_, head, size));
  }
  chain.head_ = head;
  HV_TRY(walk_table(desc_table_, size, head, false, chain));
  ++last_avail_idx_;
  return true;
}

Status Virtqueue::walk_table(const uint8_t* table, uint32_t table_entries, uint16_t first,
                             bool indirect, DescriptorChain& chain) {
  const char* where = indirect ? "indirect descriptor" : "descriptor";
  uint32_t position = first;
  // Each step visits one descriptor; more steps than the table has entries means a loop.
  for (uint32_t steps = 1;; ++steps) {
    if (steps > table_entries) {
      return malformed(fmt::format(
          "descriptor chain from head {} is longer than its table's {} entries (a loop?)",
          chain.head_, table_entries));
    }
    Descriptor descriptor;
    std::memcpy(&descriptor, table + kDescriptorSize * position, sizeof(descriptor));
    if ((descriptor.flags & kVirtqDescIndirect) != 0) {
      if (indirect) {
        return malformed(fmt::format(
            "indirect descriptor {} points to another indirect table (nesting is not allowed)",
            position));
      }
      if (!indirect_allowed_) {
        return malformed(fmt::format(
            "descriptor {} is indirect but VIRTIO_RING_F_INDIRECT_DESC was not negotiated",
            position));
      }
      if ((descriptor.flags & kVirtqDescNext) != 0) {
        return malformed(fmt::format("descriptor {} is indirect and also has NEXT set", position));
      }
      if (descriptor.len == 0 || descriptor.len % kDescriptorSize != 0 ||
          descriptor.len / kDescriptorSize > kMaxIndirectEntries) {
        return malformed(fmt::format(
            "descriptor {} has an indirect table of {} bytes (must be a nonzero multiple of {} "
            "and at most {} entries)",
            position, descriptor.len, kDescriptorSize, kMaxIndirectEntries));
      }
      const uint8_t* indirect_table = memory_.host_pointer(descriptor.addr, descriptor.len);
      if (indirect_table == nullptr) {
        return malformed(
            fmt::format("descriptor {} has an indirect table at {:#x}+{:#x} outside "
                        "guest RAM",
                        position, descriptor.addr, descriptor.len));
      }
      // Without NEXT the indirect table is the end of the chain.
      return walk_table(indirect_table, static_cast<uint32_t>(descriptor.len / kDescriptorSize), 0,
                        true, chain);
    }
    HV_TRY(add_buffer(descriptor, position, indirect, chain));
    if ((descriptor.flags & kVirtqDescNext) == 0) {
      return {};
    }
    if (descriptor.next >= table_entries) {
      return malformed(fmt::format("{} {} next index {} >= {} {}", where, position, descriptor.next,
                                   indirect ? "indirect table size" : "queue size", table_entries));
    }
    position = descriptor.next;
  }
}

Status Virtqueue::add_buffer(const Descriptor& descriptor, uint32_t position, bool indirect,
                             DescriptorChain& chain) {
  const char* where = indirect ? "indirect descriptor" : "descriptor";
  const bool writable = (descriptor.flags & kVirtqDescWrite) != 0;
  if (!writable && !chain.writable_.empty()) {
    return malformed(
        fmt::format("{} {} is device-readable but follows a device-writable one", where, position));
  }
  if (descriptor.len == 0) {
    return {};
  }
  if (descriptor.addr + descriptor.len < descriptor.addr) {
    return malformed(fmt::format("{} {} buffer {:#x}+{:#x} wraps around the address space", where,
                                 position, descriptor.addr, descriptor.len));
  }
  uint8_t* host = memory_.host_pointer(descriptor.addr, descriptor.len);
  if (host == nullptr) {
    return malformed(fmt::format("{} {} buffer {:#x}+{:#x} is not entirely in guest RAM", where,
                                 position, descriptor.addr, descriptor.len));
  }
  if (chain.readable_length_ + chain.writable_length_ + descriptor.len > kMaxChainBytes) {
    return malformed(fmt::format("descriptor chain from head {} is longer than {} bytes",
                                 chain.head_, kMaxChainBytes));
  }
  if (writable) {
    chain.writable_.emplace_back(host, descriptor.len);
    chain.writable_length_ += descriptor.len;
  } else {
    chain.readable_.emplace_back(host, descriptor.len);
    chain.readable_length_ += descriptor.len;
  }
  return {};
}

Status Virtqueue::push_used(uint16_t head, uint32_t written) {
  if (!ready_) {
    return malformed("used buffer pushed while the queue is not ready");
  }
  if (head >= layout_.size) {
    return malformed(fmt::format("used buffer head {} >= queue size {}", head, layout_.size));
  }
  const uint32_t element[2] = {head, written};
  const uint64_t slot = used_idx_ % layout_.size;
  std::memcpy(used_ring_ + kRingHeaderSize + kUsedElementSize * slot, element, sizeof(element));
  ++used_idx_;
  // Release: the element (and the data written into the buffers) is visible before the index.
  shared_u16(used_ring_ + 2).store(used_idx_, std::memory_order_release);
  return {};
}

bool Virtqueue::should_notify() {
  if (!ready_) {
    return false;
  }
  // Full fence: used->idx must be visible before the driver's flags / used_event are read, or a
  // driver that re-enables interrupts in between could be missed (the driver fences likewise).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t old_idx = signalled_used_;
  const uint16_t new_idx = used_idx_;
  signalled_used_ = new_idx;
  if (old_idx == new_idx) {
    return false;
  }
  if (!event_idx_) {
    const uint16_t flags = shared_u16(avail_ring_).load(std::memory_order_relaxed);
    return (flags & kVirtqAvailNoInterrupt) == 0;
  }
  const uint16_t used_event = shared_u16(avail_ring_ + kRingHeaderSize + 2ull * layout_.size)
                                  .load(std::memory_order_relaxed);
  // vring_need_event(): notify when used_event lies in [old_idx, new_idx).
  return static_cast<uint16_t>(new_idx - used_event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

void Virtqueue::disable_notification() {
  if (!ready_ || event_idx_) {
    // With EVENT_IDX the device simply does not advance avail_event while it is busy.
    return;
  }
  shared_u16(used_ring_).store(kVirtqUsedNoNotify, std::memory_order_relaxed);
}

Result<bool> Virtqueue::enable_notification() {
  if (!ready_) {
    return false;
  }
  if (event_idx_) {
    shared_u16(used_ring_ + kRingHeaderSize + kUsedElementSize * layout_.size)
        .store(last_avail_idx_, std::memory_order_relaxed);
  } else {
    shared_u16(used_ring_).store(0, std::memory_order_relaxed);
  }
  // Full fence: the re-armed notification is visible before avail->idx is read again; with the
  // driver's own fence between publishing idx and reading our flag, one of the two sees the other.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return has_available();
}

}  // namespace hv
