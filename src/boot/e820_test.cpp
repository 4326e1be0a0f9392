#include <gtest/gtest.h>

#include "boot/boot_test_support.hpp"
#include "boot/machine_tables.hpp"

namespace hv {
namespace {

using namespace hv::boot::testing;

void expect_entry(const E820Entry& entry, uint64_t address, uint64_t size, uint32_t type) {
  EXPECT_EQ(entry.address, address);
  EXPECT_EQ(entry.size, size);
  EXPECT_EQ(entry.type, type);
}

TEST(E820Map, SmallGuest) {
  GuestMemory memory = make_memory(64 * kMiB);
  std::vector<E820Entry> map = e820_map(memory);
  ASSERT_EQ(map.size(), 4u);
  expect_entry(map[0], 0, 0x9fc00, kE820Ram);
  expect_entry(map[1], 0x9fc00, 0x400, kE820Reserved);
  expect_entry(map[2], 0xe0000, 0x20000, kE820Reserved);
  expect_entry(map[3], 0x100000, 63 * kMiB, kE820Ram);
}

TEST(E820Map, GuestAbove3GiBSplitsAroundThe32BitHole) {
  GuestMemory memory = make_memory(5 * kGiB);
  std::vector<E820Entry> map = e820_map(memory);
  ASSERT_EQ(map.size(), 5u);
  expect_entry(map[0], 0, 0x9fc00, kE820Ram);
  expect_entry(map[1], 0x9fc00, 0x400, kE820Reserved);
  expect_entry(map[2], 0xe0000, 0x20000, kE820Reserved);
  expect_entry(map[3], 0x100000, 0xc0000000 - 0x100000, kE820Ram);
  expect_entry(map[4], 0x100000000, 2 * kGiB, kE820Ram);
}

TEST(E820Map, ExactlyThreeGiBHasNoHighRegion) {
  GuestMemory memory = make_memory(3 * kGiB);
  std::vector<E820Entry> map = e820_map(memory);
  ASSERT_EQ(map.size(), 4u);
  expect_entry(map[3], 0x100000, 3 * kGiB - kMiB, kE820Ram);
}

TEST(E820Map, GuestBelow1MiBHasOnlyConventionalMemory) {
  GuestMemory memory = make_memory(512 * 1024);
  std::vector<E820Entry> map = e820_map(memory);
  ASSERT_EQ(map.size(), 3u);
  expect_entry(map[0], 0, 0x80000, kE820Ram);
  expect_entry(map[1], 0x9fc00, 0x400, kE820Reserved);
  expect_entry(map[2], 0xe0000, 0x20000, kE820Reserved);
}

}  // namespace
}  // namespace hv
