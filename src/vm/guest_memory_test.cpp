#include "vm/guest_memory.hpp"

#include <gtest/gtest.h>

#include <array>

namespace hv {
namespace {

TEST(GuestMemory, SmallGuestIsOneRegionFromZero) {
  auto memory = GuestMemory::create(64ull << 20);
  ASSERT_TRUE(memory.ok());
  ASSERT_EQ(memory->regions().size(), 1u);
  EXPECT_EQ(memory->regions()[0].guest_address, 0u);
  EXPECT_EQ(memory->regions()[0].size, 64ull << 20);
  EXPECT_EQ(memory->low_memory_end(), 64ull << 20);
}

TEST(GuestMemory, LargeGuestSkipsThe32BitHole) {
  auto memory = GuestMemory::create(5ull << 30);
  ASSERT_TRUE(memory.ok());
  ASSERT_EQ(memory->regions().size(), 2u);
  EXPECT_EQ(memory->regions()[0].size, GuestMemory::kLowMemoryLimit);
  EXPECT_EQ(memory->regions()[1].guest_address, GuestMemory::kHighMemoryStart);
  EXPECT_EQ(memory->regions()[1].size, (5ull << 30) - GuestMemory::kLowMemoryLimit);
  EXPECT_FALSE(memory->contains(GuestMemory::kLowMemoryLimit, 1));
  EXPECT_FALSE(memory->contains(0xfee00000, 4));
  EXPECT_TRUE(memory->contains(GuestMemory::kHighMemoryStart, 4096));
  // The two regions are not contiguous in the guest: a range across the hole is not RAM.
  EXPECT_FALSE(memory->contains(GuestMemory::kLowMemoryLimit - 4, 8));
}

TEST(GuestMemory, ChecksEveryRangeAgainstRam) {
  auto memory = GuestMemory::create(1ull << 20);
  ASSERT_TRUE(memory.ok());
  EXPECT_TRUE(memory->contains(0, 1ull << 20));
  EXPECT_TRUE(memory->contains((1ull << 20) - 1, 1));
  EXPECT_TRUE(memory->contains(1ull << 20, 0));
  EXPECT_FALSE(memory->contains((1ull << 20) - 1, 2));
  EXPECT_FALSE(memory->contains(1ull << 20, 1));
  EXPECT_FALSE(memory->contains(~0ull, 2));       // wraps around
  EXPECT_FALSE(memory->contains(16, ~0ull - 8));  // length overflows
  EXPECT_EQ(memory->host_pointer(~0ull - 1, 4), nullptr);
}

TEST(GuestMemory, ReadsBackWhatWasWritten) {
  auto memory = GuestMemory::create(1ull << 20);
  ASSERT_TRUE(memory.ok());
  std::array<uint8_t, 5> bytes = {1, 2, 3, 4, 5};
  ASSERT_TRUE(memory->write(0x1234, bytes).ok());
  std::array<uint8_t, 5> back{};
  ASSERT_TRUE(memory->read(0x1234, back).ok());
  EXPECT_EQ(back, bytes);
  ASSERT_TRUE(memory->write_object<uint32_t>(0x2000, 0xdeadbeef).ok());
  EXPECT_EQ(*memory->read_object<uint32_t>(0x2000), 0xdeadbeefu);
  ASSERT_TRUE(memory->fill(0x2000, 0xaa, 2).ok());
  EXPECT_EQ(*memory->read_object<uint32_t>(0x2000), 0xdeadaaaau);
  EXPECT_TRUE(memory->write(0x100, std::span<const uint8_t>()).ok());
}

TEST(GuestMemory, OutOfRangeAccessIsAnErrorNotACrash) {
  auto memory = GuestMemory::create(1ull << 20);
  ASSERT_TRUE(memory.ok());
  std::array<uint8_t, 8> bytes{};
  auto w = memory->write((1ull << 20) - 4, bytes);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().status, ExitStatus::BadMemorySize);
  EXPECT_FALSE(memory->read(~0ull - 3, bytes).ok());
  EXPECT_FALSE(memory->fill(1ull << 20, 0, 1).ok());
  EXPECT_FALSE(memory->read_object<uint64_t>((1ull << 20) - 7).ok());
}

TEST(GuestMemory, RejectsUnalignedOrZeroSizes) {
  EXPECT_FALSE(GuestMemory::create(0).ok());
  EXPECT_FALSE(GuestMemory::create(4097).ok());
}

}  // namespace
}  // namespace hv
