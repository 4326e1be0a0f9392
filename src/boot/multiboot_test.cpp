#include "boot/multiboot.hpp"

#include <gtest/gtest.h>

#include "boot/boot_test_support.hpp"
#include "boot/kernel_loader.hpp"

namespace hv::boot {
namespace {

using namespace hv::boot::testing;

constexpr uint64_t kMemorySize = 64 * kMiB;
constexpr uint32_t kAddressFlags = (1u << 16) | (1u << 1) | (1u << 0);  // addresses, mem, align
constexpr uint64_t kHeaderOffset = 0x40;
constexpr uint32_t kLoadAddress = 0x100000;

// A raw (a.out-kludge) kernel: 0x40 bytes of code, the header at 0x40, code after it; loaded
// from file offset 0 at 1 MiB, image 0x2000 bytes, bss to 0x104000.
std::vector<uint8_t> address_field_kernel(MultibootFields fields = {.header_addr = 0x100040,
                                                                    .load_addr = 0x100000,
                                                                    .load_end_addr = 0,
                                                                    .bss_end_addr = 0x104000,
                                                                    .entry_addr = 0x100080}) {
  std::vector<uint8_t> image = pattern(0x2000, 0x11);
  patch_bytes(image, kHeaderOffset, multiboot_header(kAddressFlags, fields));
  return image;
}

// An ELF32 whose first segment starts with a multiboot header without address fields.
std::vector<uint8_t> multiboot_elf(bool is_64bit,
                                   std::vector<uint8_t> header = multiboot_header((1u << 1) |
                                                                                  (1u << 0))) {
  std::vector<uint8_t> text = pattern(0x800, 0x22);
  std::copy(header.begin(), header.end(), text.begin());
  return build_elf(is_64bit, 0x100100,
                   {{0x100000, text, 0x800}, {0x180000, pattern(0x40, 3), 0x5000}});
}

BootConfig multiboot_config(std::vector<uint8_t> image) {
  BootConfig config = config_for(std::move(image), "/boot/kernel.mb");
  config.cmdline = "console=ttyS0 debug";
  return config;
}

TEST(Multiboot, AddressFieldsLoadTheImageAndZeroTheBss) {
  GuestMemory memory = make_memory(kMemorySize);
  ASSERT_TRUE(memory.fill(0x100000, 0xcc, 0x8000).ok());
  std::vector<uint8_t> image = address_field_kernel();
  Result<BootPlan> plan = load_kernel(memory, multiboot_config(image));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->format, KernelFormat::Multiboot);
  EXPECT_EQ(peek_bytes(memory, kLoadAddress, image.size()), image);
  EXPECT_EQ(peek_bytes(memory, 0x102000, 0x2000), std::vector<uint8_t>(0x2000, 0));
  EXPECT_EQ(peek<uint8_t>(memory, 0x104000), 0xcc);

  const CpuState& cpu = plan->bsp;
  EXPECT_EQ(cpu.rip, 0x100080u);
  EXPECT_EQ(cpu.gpr[kRax], 0x2BADB002u);
  EXPECT_EQ(cpu.gpr[kRbx], 0x1000u);
  EXPECT_EQ(cpu.rflags, 0x2u);
  EXPECT_EQ(cpu.cr0 & (cr0::kPE | cr0::kPG), cr0::kPE);
  EXPECT_EQ(cpu.efer, 0u);
  EXPECT_EQ(cpu.cs.selector, 0x08);
  EXPECT_TRUE(cpu.cs.default_big);
  EXPECT_EQ(cpu.cs.limit, 0xffffffffu);
  EXPECT_EQ(cpu.ds.selector, 0x18);
  EXPECT_EQ(plan->summary, "multiboot entry 0x100080 in protected mode, 0 modules");
}

TEST(Multiboot, AddressFieldsHonourLoadEndAndHeaderOffset) {
  GuestMemory memory = make_memory(kMemorySize);
  // The loaded part starts 0x20 bytes into the file and stops 0x1000 bytes later.
  std::vector<uint8_t> image = address_field_kernel({.header_addr = 0x200020,
                                                     .load_addr = 0x200000,
                                                     .load_end_addr = 0x201000,
                                                     .bss_end_addr = 0,
                                                     .entry_addr = 0x200000});
  Result<BootPlan> plan = load_kernel(memory, multiboot_config(image));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(peek_bytes(memory, 0x200000, 0x1000),
            std::vector<uint8_t>(image.begin() + 0x20, image.begin() + 0x1020));
  EXPECT_EQ(peek<uint8_t>(memory, 0x201000), 0);
}

TEST(Multiboot, ElfWithoutAddressFieldsLoadsAsElf32) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = multiboot_elf(false);
  Result<BootPlan> plan = load_kernel(memory, multiboot_config(image));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->format, KernelFormat::Multiboot);
  EXPECT_EQ(plan->bsp.rip, 0x100100u);
  EXPECT_EQ(plan->bsp.gpr[kRax], 0x2BADB002u);
  EXPECT_EQ(peek<uint32_t>(memory, 0x100000), 0x1BADB002u);
  EXPECT_EQ(peek_bytes(memory, 0x180000, 0x40), pattern(0x40, 3));
}

TEST(Multiboot, Elf64WithoutAddressFieldsIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  EXPECT_TRUE(fails_with(load_kernel(memory, multiboot_config(multiboot_elf(true))),
                         ExitStatus::BadImage, "is ELF64"));
}

TEST(Multiboot, RawFileWithoutAddressFieldsIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = pattern(0x1000, 5);
  patch_bytes(image, 0x100, multiboot_header(1u << 1));
  EXPECT_TRUE(fails_with(load_kernel(memory, multiboot_config(image)), ExitStatus::BadImage,
                         "must be an ELF32 file"));
}

TEST(Multiboot, BadChecksumIsBadImageWhenForced) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = address_field_kernel();
  patch<uint32_t>(image, kHeaderOffset + 8, 0x12345678);
  BootConfig config = multiboot_config(image);
  config.format = KernelFormat::Multiboot;
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadImage,
                         "magic at offset 0x40 has a bad checksum"));
}

TEST(Multiboot, HeaderBeyondFirst8KiBIsNotFound) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = pattern(0x3000, 5);
  patch_bytes(image, 0x2000, multiboot_header(kAddressFlags));
  BootConfig config = multiboot_config(image);
  config.format = KernelFormat::Multiboot;
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadImage, "no multiboot header"));
  // A header whose address fields cross the 8 KiB line is cut off.
  image = pattern(0x3000, 5);
  patch_bytes(image, 0x1ff0, multiboot_header(kAddressFlags));
  EXPECT_TRUE(
      fails_with(load_kernel(memory, multiboot_config(image)), ExitStatus::BadImage, "cut off"));
}

TEST(Multiboot, UnsupportedRequiredFlagsAreBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = address_field_kernel();
  std::vector<uint8_t> header = multiboot_header(kAddressFlags | (1u << 3));
  std::copy(header.begin(), header.begin() + 12, image.begin() + kHeaderOffset);
  EXPECT_TRUE(
      fails_with(load_kernel(memory, multiboot_config(image)), ExitStatus::BadImage, "flags 0x8"));
}

TEST(Multiboot, VideoModeAndUnknownOptionalFlagsAreAccepted) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = address_field_kernel();
  std::vector<uint8_t> header = multiboot_header(kAddressFlags | (1u << 2) | (1u << 20));
  std::copy(header.begin(), header.begin() + 12, image.begin() + kHeaderOffset);
  EXPECT_TRUE(load_kernel(memory, multiboot_config(image)).ok());
}

TEST(Multiboot, InconsistentAddressFieldsAreBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  struct Case {
    MultibootFields fields;
    std::string_view message;
  };
  const Case cases[] = {
      {{0x100040, 0x100080, 0, 0, 0x100080}, "load_addr 0x100080 is above header_addr"},
      {{0x100080, 0x100000, 0, 0, 0x100000}, "reaches before the start of the file"},
      {{0x100040, 0x100000, 0xff000, 0, 0x100000}, "load_end_addr 0xff000 is below load_addr"},
      {{0x100040, 0x100000, 0x103000, 0, 0x100000}, "truncated"},
      {{0x100040, 0x100000, 0, 0x101000, 0x100000}, "bss_end_addr 0x101000 is below"},
      {{0x100040, 0x100000, 0, 0, 0x102000}, "entry_addr 0x102000 is outside the kernel"},
      {{0x100040, 0x100000, 0, 0xffffffff, 0x100000}, "does not fit in guest RAM"},
  };
  for (const Case& c : cases) {
    Result<BootPlan> plan = load_kernel(memory, multiboot_config(address_field_kernel(c.fields)));
    const ExitStatus expected =
        c.message == "does not fit in guest RAM" ? ExitStatus::BadMemorySize : ExitStatus::BadImage;
    EXPECT_TRUE(fails_with(plan, expected, c.message)) << c.message;
  }
}

TEST(Multiboot, InfoBlockDescribesMemoryAndCommandLine) {
  GuestMemory memory = make_memory(kMemorySize);
  Result<BootPlan> plan = load_kernel(memory, multiboot_config(address_field_kernel()));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  const auto info = peek<MultibootInfo>(memory, 0x1000);
  EXPECT_EQ(info.flags, 0x24du);  // mem, cmdline, mods, mmap, boot loader name
  EXPECT_EQ(info.mem_lower, 639u);
  EXPECT_EQ(info.mem_upper, 63u * 1024);
  EXPECT_EQ(peek_string(memory, info.cmdline), "/boot/kernel.mb console=ttyS0 debug");
  EXPECT_EQ(peek_string(memory, info.boot_loader_name), "hv");
  EXPECT_GE(info.cmdline, 0x2000u);
  EXPECT_LT(info.cmdline, 0x4000u);
  EXPECT_EQ(info.mods_count, 0u);

  ASSERT_EQ(info.mmap_length, 4u * 24);
  EXPECT_EQ(info.mmap_addr, 0x1060u);
  struct Expected {
    uint64_t base;
    uint64_t length;
    uint32_t type;
  };
  const Expected expected[] = {
      {0, 0x9fc00, 1}, {0x9fc00, 0x400, 2}, {0xe0000, 0x20000, 2}, {0x100000, 63 * kMiB, 1}};
  for (uint32_t i = 0; i < 4; ++i) {
    const uint64_t entry = info.mmap_addr + i * 24;
    EXPECT_EQ(peek<uint32_t>(memory, entry), 20u);
    EXPECT_EQ(peek<uint64_t>(memory, entry + 4), expected[i].base);
    EXPECT_EQ(peek<uint64_t>(memory, entry + 12), expected[i].length);
    EXPECT_EQ(peek<uint32_t>(memory, entry + 20), expected[i].type);
  }
}

TEST(Multiboot, CommandLineWithoutArgumentsIsThePath) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = multiboot_config(address_field_kernel());
  config.cmdline.clear();
  ASSERT_TRUE(load_kernel(memory, config).ok());
  EXPECT_EQ(peek_string(memory, peek<MultibootInfo>(memory, 0x1000).cmdline), "/boot/kernel.mb");
}

TEST(Multiboot, ModulesArePageAlignedAfterTheKernel) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = multiboot_config(address_field_kernel());  // kernel ends at 0x104000
  config.initrds.push_back({"/mods/first", pattern(0x1801, 1)});
  config.initrds.push_back({"/mods/second", pattern(0x20, 2)});
  Result<BootPlan> plan = load_kernel(memory, config);
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->summary, "multiboot entry 0x100080 in protected mode, 2 modules");

  const auto info = peek<MultibootInfo>(memory, 0x1000);
  ASSERT_EQ(info.mods_count, 2u);
  EXPECT_EQ(info.mods_addr, 0x10c0u);  // after the 4-entry memory map
  const auto first = peek<MultibootModule>(memory, info.mods_addr);
  const auto second = peek<MultibootModule>(memory, info.mods_addr + 16);
  EXPECT_EQ(first.mod_start, 0x104000u);
  EXPECT_EQ(first.mod_end, 0x105801u);
  EXPECT_EQ(second.mod_start, 0x106000u);
  EXPECT_EQ(second.mod_end, 0x106020u);
  EXPECT_EQ(peek_string(memory, first.string), "/mods/first");
  EXPECT_EQ(peek_string(memory, second.string), "/mods/second");
  EXPECT_EQ(peek_bytes(memory, first.mod_start, 0x1801), pattern(0x1801, 1));
  EXPECT_EQ(peek_bytes(memory, second.mod_start, 0x20), pattern(0x20, 2));
}

TEST(Multiboot, ModuleBeyondRamIsBadMemorySize) {
  GuestMemory memory = make_memory(4 * kMiB);
  BootConfig config = multiboot_config(address_field_kernel());
  config.initrds.push_back({"/mods/big", std::vector<uint8_t>(3 * kMiB, 1)});
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadMemorySize,
                         "multiboot module '/mods/big'"));
}

TEST(Multiboot, TooManyModulesIsUsageError) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = multiboot_config(address_field_kernel());
  config.initrds.assign(244, BootModule{"m", {}});
  EXPECT_TRUE(load_kernel(memory, config).ok());
  config.initrds.assign(245, BootModule{"m", {}});
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::Usage,
                         "too many multiboot modules (245)"));
}

TEST(Multiboot, StringsBeyondTheirAreaAreUsageError) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = multiboot_config(address_field_kernel());
  config.cmdline = std::string(0x2000, 'x');
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::Usage, "hv has room for 8192"));
}

TEST(Multiboot, KernelInSmallGuestIsBadMemorySize) {
  GuestMemory memory = make_memory(1 * kMiB);
  EXPECT_TRUE(fails_with(load_kernel(memory, multiboot_config(address_field_kernel())),
                         ExitStatus::BadMemorySize, "multiboot kernel"));
}

}  // namespace
}  // namespace hv::boot
