// The parts of the KVM ABI that <linux/kvm.h> gets wrong for C++.
//
// The header declares variable-length structs (kvm_cpuid2, kvm_irq_routing, kvm_msrs) with
// __DECLARE_FLEX_ARRAY, which wraps the array in a struct holding an empty struct. An empty struct
// has size 0 in GNU C but 1 in C++, so in C++ the entries move from offset 8 to 12 or 16 and the
// ioctl numbers, which encode sizeof(struct), no longer match the kernel's: the kernel answers
// ENOTTY. hv therefore builds these buffers with the C layout (an 8-byte header, then the
// entries) and uses ioctl numbers computed from it.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace hv::kvm {

constexpr size_t kFlexHeaderSize = 8;  // two __u32 before the entries in every such struct

constexpr unsigned long kGetSupportedCpuid =
    _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, kFlexHeaderSize);
constexpr unsigned long kSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, kFlexHeaderSize);
constexpr unsigned long kSetGsiRouting = _IOC(_IOC_WRITE, KVMIO, 0x6a, kFlexHeaderSize);
constexpr unsigned long kSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, kFlexHeaderSize);

// A buffer holding { u32 count; u32 second; Entry entries[capacity]; } in the C layout, 8-byte
// aligned (every entry type here needs at most that).
template <typename Entry>
class FlexBuffer {
 public:
  explicit FlexBuffer(size_t capacity)
      : storage_((kFlexHeaderSize + capacity * sizeof(Entry) + 7) / 8) {
    set_count(static_cast<uint32_t>(capacity));
  }
  explicit FlexBuffer(std::span<const Entry> entries) : FlexBuffer(entries.size()) {
    std::memcpy(entries_pointer(), entries.data(), entries.size_bytes());
  }

  void* data() { return storage_.data(); }
  uint32_t count() const {
    uint32_t n;
    std::memcpy(&n, storage_.data(), sizeof(n));
    return n;
  }
  void set_count(uint32_t n) { std::memcpy(storage_.data(), &n, sizeof(n)); }
  std::vector<Entry> entries() const {
    std::vector<Entry> out(count());
    std::memcpy(out.data(), reinterpret_cast<const uint8_t*>(storage_.data()) + kFlexHeaderSize,
                out.size() * sizeof(Entry));
    return out;
  }

 private:
  uint8_t* entries_pointer() {
    return reinterpret_cast<uint8_t*>(storage_.data()) + kFlexHeaderSize;
  }
  std::vector<uint64_t> storage_;
};

}  // namespace hv::kvm
