#include "boot/flat_loader.hpp"

#include <gtest/gtest.h>

#include "boot/boot_test_support.hpp"
#include "boot/kernel_loader.hpp"

namespace hv::boot {
namespace {

using namespace hv::boot::testing;

BootConfig flat_config(std::vector<uint8_t> image, uint64_t address) {
  BootConfig config = config_for(std::move(image), "/boot.bin");
  config.format = KernelFormat::Flat;
  config.flat_load_address = address;
  return config;
}

TEST(FlatLoader, LoadsAtBootSectorAddressInRealMode) {
  GuestMemory memory = make_memory(16 * kMiB);
  std::vector<uint8_t> image = pattern(512, 3);
  Result<BootPlan> plan = load_kernel(memory, flat_config(image, 0x7c00));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->format, KernelFormat::Flat);
  EXPECT_EQ(peek_bytes(memory, 0x7c00, 512), image);
  const CpuState& cpu = plan->bsp;
  EXPECT_EQ(cpu.cs.selector, 0);
  EXPECT_EQ(cpu.cs.base, 0u);
  EXPECT_EQ(cpu.rip, 0x7c00u);
  EXPECT_EQ(cpu.cr0 & cr0::kPE, 0u);
  EXPECT_EQ(cpu.efer, 0u);
  EXPECT_EQ(cpu.cs.limit, 0xffffu);
  EXPECT_EQ(plan->summary, "flat binary of 512 bytes at 0x7c00 in real mode, CS:IP 0000:7c00");
}

TEST(FlatLoader, AddressAbove64KiBUsesTheCodeSegment) {
  GuestMemory memory = make_memory(16 * kMiB);
  Result<BootPlan> plan = load_kernel(memory, flat_config(pattern(64, 3), 0x10000));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->bsp.cs.selector, 0x1000);
  EXPECT_EQ(plan->bsp.cs.base, 0x10000u);
  EXPECT_EQ(plan->bsp.rip, 0u);

  plan = load_kernel(memory, flat_config(pattern(64, 3), 0x80010));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->bsp.cs.selector, 0x8001);
  EXPECT_EQ(plan->bsp.rip, 0u);
  EXPECT_EQ(peek_bytes(memory, 0x80010, 64), pattern(64, 3));
}

TEST(FlatLoader, AddressZeroIsAllowed) {
  GuestMemory memory = make_memory(16 * kMiB);
  Result<BootPlan> plan = load_kernel(memory, flat_config(pattern(64, 3), 0));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->bsp.rip, 0u);
}

TEST(FlatLoader, UnalignedAddressAbove64KiBIsUsageError) {
  GuestMemory memory = make_memory(16 * kMiB);
  EXPECT_TRUE(fails_with(load_kernel(memory, flat_config(pattern(64, 3), 0x10008)),
                         ExitStatus::Usage, "not 16-byte aligned"));
}

TEST(FlatLoader, AddressAtOrAbove1MiBIsUsageError) {
  GuestMemory memory = make_memory(16 * kMiB);
  EXPECT_TRUE(fails_with(load_kernel(memory, flat_config(pattern(64, 3), 0x100000)),
                         ExitStatus::Usage, "not below 1 MiB"));
}

TEST(FlatLoader, ImageRunningIntoEbdaIsBadImage) {
  GuestMemory memory = make_memory(16 * kMiB);
  EXPECT_TRUE(load_kernel(memory, flat_config(pattern(0x9fc00 - 0x90000, 3), 0x90000)).ok());
  EXPECT_TRUE(fails_with(load_kernel(memory, flat_config(pattern(0x9fc01 - 0x90000, 3), 0x90000)),
                         ExitStatus::BadImage, "runs into the EBDA"));
  EXPECT_TRUE(fails_with(load_kernel(memory, flat_config(pattern(0xa0000, 3), 0)),
                         ExitStatus::BadImage, "runs into the EBDA"));
}

TEST(FlatLoader, ImageBeyondSmallRamIsBadMemorySize) {
  GuestMemory memory = make_memory(64 * 1024);
  EXPECT_TRUE(fails_with(load_kernel(memory, flat_config(pattern(0x9000, 3), 0x7c00)),
                         ExitStatus::BadMemorySize, "does not fit in guest RAM"));
}

TEST(FlatLoader, SmallGuestWithOneCpuNeedsNoMpTable) {
  GuestMemory memory = make_memory(64 * 1024);
  BootConfig config = flat_config(pattern(512, 3), 0x7c00);
  EXPECT_TRUE(load_kernel(memory, config).ok());
  config.cpu_count = 2;
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadMemorySize, "EBDA"));
}

TEST(FlatLoader, WritesMpTableWhenRamReachesTheEbda) {
  GuestMemory memory = make_memory(1 * kMiB);
  BootConfig config = flat_config(pattern(512, 3), 0x7c00);
  config.cpu_count = 2;
  ASSERT_TRUE(load_kernel(memory, config).ok());
  EXPECT_EQ(peek<uint32_t>(memory, 0x9fc00), 0x5f504d5fu);  // "_MP_"
}

TEST(FlatLoader, RawBinaryIsNotAutoDetected) {
  GuestMemory memory = make_memory(16 * kMiB);
  BootConfig config = flat_config(pattern(512, 3), 0x7c00);
  config.format = KernelFormat::Auto;
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadImage,
                         "unrecognised kernel format in '/boot.bin' (use --format flat for a raw "
                         "binary)"));
}

}  // namespace
}  // namespace hv::boot
