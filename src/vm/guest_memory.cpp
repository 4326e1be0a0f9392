#include "vm/guest_memory.hpp"

#include <sys/mman.h>

#include <utility>

namespace hv {

Result<GuestMemory> GuestMemory::create(uint64_t size) {
  if (size == 0 || size % 4096 != 0) {
    return make_error(ExitStatus::BadMemorySize,
                      "memory size {} is not a positive multiple of 4 KiB", size);
  }
  // MAP_NORESERVE: a guest only costs the host the pages it touches.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Error::from_errno(fmt::format("cannot map {} MiB of guest memory", size >> 20),
                             ExitStatus::BadMemorySize);
  }
  auto* host = static_cast<uint8_t*>(p);
  // Transparent huge pages cut TLB misses for both engines; failure only costs speed.
  ::madvise(p, size, MADV_HUGEPAGE);
  std::vector<Region> regions;
  if (size <= kLowMemoryLimit) {
    regions.push_back({0, size, host});
  } else {
    regions.push_back({0, kLowMemoryLimit, host});
    regions.push_back({kHighMemoryStart, size - kLowMemoryLimit, host + kLowMemoryLimit});
  }
  return GuestMemory(host, size, std::move(regions));
}

GuestMemory::GuestMemory(uint8_t* mapping, uint64_t size, std::vector<Region> regions)
    : mapping_(mapping), mapping_size_(size), size_(size), regions_(std::move(regions)) {}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_size_(std::exchange(other.mapping_size_, 0)),
      size_(std::exchange(other.size_, 0)),
      regions_(std::move(other.regions_)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
  if (this != &other) {
    if (mapping_ != nullptr) {
      ::munmap(mapping_, mapping_size_);
    }
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_size_ = std::exchange(other.mapping_size_, 0);
    size_ = std::exchange(other.size_, 0);
    regions_ = std::move(other.regions_);
  }
  return *this;
}

GuestMemory::~GuestMemory() {
  if (mapping_ != nullptr) {
    ::munmap(mapping_, mapping_size_);
  }
}

Status GuestMemory::write(uint64_t gpa, std::span<const uint8_t> data) {
  uint8_t* dst = host_pointer(gpa, data.size());
  if (dst == nullptr) {
    return make_error(ExitStatus::BadMemorySize,
                      "guest range {:#x}+{:#x} is outside guest RAM ({} MiB)", gpa, data.size(),
                      size_ >> 20);
  }
  if (!data.empty()) {
    std::memcpy(dst, data.data(), data.size());
  }
  return {};
}

Status GuestMemory::read(uint64_t gpa, std::span<uint8_t> data) const {
  const uint8_t* src = host_pointer(gpa, data.size());
  if (src == nullptr) {
    return make_error(ExitStatus::BadMemorySize,
                      "guest range {:#x}+{:#x} is outside guest RAM ({} MiB)", gpa, data.size(),
                      size_ >> 20);
  }
  if (!data.empty()) {
    std::memcpy(data.data(), src, data.size());
  }
  return {};
}

Status GuestMemory::fill(uint64_t gpa, uint8_t value, uint64_t len) {
  uint8_t* dst = host_pointer(gpa, len);
  if (dst == nullptr) {
    return make_error(ExitStatus::BadMemorySize, "guest range {:#x}+{:#x} is outside guest RAM",
                      gpa, len);
  }
  std::memset(dst, value, len);
  return {};
}

}  // namespace hv
