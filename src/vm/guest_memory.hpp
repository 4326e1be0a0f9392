// Guest physical memory: one object that both engines and every device address.
//
// RAM is one anonymous host mapping. Guests larger than kLowMemoryLimit get the PC layout: RAM
// below the 32-bit device hole, the rest above 4 GiB. Every accessor checks that the whole
// [gpa, gpa + len) range lies inside one RAM region before touching host memory, because guest
// physical addresses come from the guest and are hostile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "common/error.hpp"

namespace hv {

class GuestMemory {
 public:
  // Start of the 32-bit hole for MMIO (LAPIC, IOAPIC, KVM's TSS) when RAM reaches it.
  static constexpr uint64_t kLowMemoryLimit = 0xC000'0000;
  static constexpr uint64_t kHighMemoryStart = 0x1'0000'0000;

  struct Region {
    uint64_t guest_address;
    uint64_t size;
    uint8_t* host;
  };

  static Result<GuestMemory> create(uint64_t size);

  GuestMemory(GuestMemory&& other) noexcept;
  GuestMemory& operator=(GuestMemory&& other) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  uint64_t size() const { return size_; }
  std::span<const Region> regions() const { return regions_; }
  uint64_t low_memory_end() const { return regions_.front().size; }

  // Host pointer to [gpa, gpa + len), or nullptr when any byte of it is not RAM.
  uint8_t* host_pointer(uint64_t gpa, uint64_t len) const {
    for (const Region& r : regions_) {
      if (gpa >= r.guest_address && gpa - r.guest_address <= r.size &&
          len <= r.size - (gpa - r.guest_address)) {
        return r.host + (gpa - r.guest_address);
      }
    }
    return nullptr;
  }

  bool contains(uint64_t gpa, uint64_t len) const { return host_pointer(gpa, len) != nullptr; }

  Status write(uint64_t gpa, std::span<const uint8_t> data);
  Status read(uint64_t gpa, std::span<uint8_t> data) const;
  Status fill(uint64_t gpa, uint8_t value, uint64_t len);

  template <typename T>
  Status write_object(uint64_t gpa, const T& object) {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(gpa, std::span(reinterpret_cast<const uint8_t*>(&object), sizeof(T)));
  }
  template <typename T>
  Result<T> read_object(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T object{};
    HV_TRY(read(gpa, std::span(reinterpret_cast<uint8_t*>(&object), sizeof(T))));
    return object;
  }

 private:
  GuestMemory(uint8_t* mapping, uint64_t size, std::vector<Region> regions);

  uint8_t* mapping_ = nullptr;
  uint64_t mapping_size_ = 0;
  uint64_t size_ = 0;
  std::vector<Region> regions_;
};

}  // namespace hv
