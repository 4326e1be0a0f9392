// Bounds-checked helpers for reading little-endian fields out of an untrusted kernel image and
// for composing guest tables in host buffers.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>

namespace hv::boot {

static_assert(std::endian::native == std::endian::little,
              "boot images and guest tables are little-endian and copied in place");

// True when [offset, offset + length) lies inside a buffer of `size` bytes, without overflowing.
constexpr bool range_within(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

// The caller has checked range_within(offset, sizeof(T), bytes.size()).
template <typename T>
T load_le(std::span<const uint8_t> bytes, uint64_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

// The caller has checked range_within(offset, sizeof(T), bytes.size()).
template <typename T>
void store_le(std::span<uint8_t> bytes, uint64_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

constexpr uint64_t align_down(uint64_t value, uint64_t alignment) {
  return value & ~(alignment - 1);
}

// The caller keeps value far enough below 2^64 (guest addresses always are).
constexpr uint64_t align_up(uint64_t value, uint64_t alignment) {
  return align_down(value + alignment - 1, alignment);
}

// Sum of all bytes modulo 256: MP tables are valid when their bytes sum to zero.
inline uint8_t byte_sum(std::span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) {
    sum = static_cast<uint8_t>(sum + b);
  }
  return sum;
}

}  // namespace hv::boot
