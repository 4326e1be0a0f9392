#include "boot/linux_boot.hpp"

#include <gtest/gtest.h>

#include "boot/boot_test_support.hpp"
#include "boot/kernel_loader.hpp"

namespace hv::boot {
namespace {

using namespace hv::boot::testing;

constexpr uint64_t kMemorySize = 64 * kMiB;
constexpr uint64_t kZeroPage = 0x7000;

BootConfig linux_config(const BzImageSpec& spec = {}) {
  BootConfig config = config_for(build_bzimage(spec), "/boot/bzImage");
  config.cmdline = "console=ttyS0 panic=-1";
  return config;
}

template <typename T>
T zero_page_field(const GuestMemory& memory, uint64_t offset) {
  return peek<T>(memory, kZeroPage + offset);
}

TEST(LinuxBoot, LoadsProtectedModeKernelAndEntersAt64BitEntry) {
  GuestMemory memory = make_memory(kMemorySize);
  BzImageSpec spec;
  Result<BootPlan> plan = load_kernel(memory, linux_config(spec));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->format, KernelFormat::Linux);
  EXPECT_EQ(plan->summary, "Linux bzImage (boot protocol 2.15) entry 0x100200 in long mode");
  EXPECT_EQ(peek_bytes(memory, 0x100000, spec.payload.size()), spec.payload);

  const CpuState& cpu = plan->bsp;
  EXPECT_EQ(cpu.rip, 0x100200u);
  EXPECT_EQ(cpu.gpr[kRsi], 0x7000u);
  EXPECT_EQ(cpu.gpr[kRbx], 0u);
  EXPECT_EQ(cpu.gpr[kRdi], 0u);
  EXPECT_EQ(cpu.gpr[kRbp], 0u);
  EXPECT_EQ(cpu.rflags & rflags::kIF, 0u);
  EXPECT_EQ(cpu.cs.selector, 0x10);  // __BOOT_CS
  EXPECT_TRUE(cpu.cs.long_mode);
  EXPECT_EQ(cpu.ds.selector, 0x18);  // __BOOT_DS
  EXPECT_EQ(cpu.es.selector, 0x18);
  EXPECT_EQ(cpu.ss.selector, 0x18);
  EXPECT_EQ(cpu.efer, efer::kLME | efer::kLMA);
  EXPECT_EQ(cpu.cr3, 0x9000u);
  // The GDT really holds a 64-bit code descriptor at 0x10 and flat data at 0x18.
  EXPECT_EQ(peek<uint64_t>(memory, cpu.gdt.base + 0x10), 0x00af9b000000ffffu);
  EXPECT_EQ(peek<uint64_t>(memory, cpu.gdt.base + 0x18), 0x00cf93000000ffffu);
}

TEST(LinuxBoot, ZeroPageCarriesTheSetupHeaderAndLoaderFields) {
  GuestMemory memory = make_memory(kMemorySize);
  ASSERT_TRUE(load_kernel(memory, linux_config()).ok());
  EXPECT_EQ(zero_page_field<uint16_t>(memory, 0x1fc), kTestRootDev);  // copied from the image
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x202), 0x53726448u);   // "HdrS"
  EXPECT_EQ(zero_page_field<uint16_t>(memory, 0x206), 0x020fu);
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x260), 0x40000u);        // init_size
  EXPECT_EQ(zero_page_field<uint8_t>(memory, kBeyondHeaderMarker), 0);  // past the header end
  EXPECT_EQ(zero_page_field<uint8_t>(memory, 0x1ef), 0);                // sentinel
  EXPECT_EQ(zero_page_field<uint8_t>(memory, 0x210), 0xff);             // type_of_loader
  EXPECT_EQ(zero_page_field<uint8_t>(memory, 0x211), 0x81);       // LOADED_HIGH | CAN_USE_HEAP
  EXPECT_EQ(zero_page_field<uint16_t>(memory, 0x224), 0xde00u);   // heap_end_ptr
  EXPECT_EQ(zero_page_field<uint16_t>(memory, 0x1fa), 0xffffu);   // vid_mode: normal
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x228), 0x20000u);  // cmd_line_ptr
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x0c8), 0u);        // ext_cmd_line_ptr
  EXPECT_EQ(peek_string(memory, 0x20000), "console=ttyS0 panic=-1");
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x218), 0u);  // no initrd
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x21c), 0u);
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x000), 0u);  // screen_info left empty
}

TEST(LinuxBoot, ZeroPageHoldsTheE820Map) {
  GuestMemory memory = make_memory(kMemorySize);
  ASSERT_TRUE(load_kernel(memory, linux_config()).ok());
  ASSERT_EQ(zero_page_field<uint8_t>(memory, 0x1e8), 4);
  struct Expected {
    uint64_t address;
    uint64_t size;
    uint32_t type;
  };
  const Expected expected[] = {
      {0, 0x9fc00, 1}, {0x9fc00, 0x400, 2}, {0xe0000, 0x20000, 2}, {0x100000, 63 * kMiB, 1}};
  for (uint64_t i = 0; i < 4; ++i) {
    const uint64_t entry = 0x2d0 + i * 20;
    EXPECT_EQ(zero_page_field<uint64_t>(memory, entry), expected[i].address) << i;
    EXPECT_EQ(zero_page_field<uint64_t>(memory, entry + 8), expected[i].size) << i;
    EXPECT_EQ(zero_page_field<uint32_t>(memory, entry + 16), expected[i].type) << i;
  }
  EXPECT_EQ(zero_page_field<uint64_t>(memory, 0x2d0 + 4 * 20), 0u);
}

TEST(LinuxBoot, ZeroPageE820MapCoversHighMemory) {
  GuestMemory memory = make_memory(4 * kGiB);
  ASSERT_TRUE(load_kernel(memory, linux_config()).ok());
  ASSERT_EQ(zero_page_field<uint8_t>(memory, 0x1e8), 5);
  EXPECT_EQ(zero_page_field<uint64_t>(memory, 0x2d0 + 3 * 20 + 8), 0xc0000000u - 0x100000);
  EXPECT_EQ(zero_page_field<uint64_t>(memory, 0x2d0 + 4 * 20), 0x100000000u);
  EXPECT_EQ(zero_page_field<uint64_t>(memory, 0x2d0 + 4 * 20 + 8), 0x40000000u);
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x2d0 + 4 * 20 + 16), 1u);
}

TEST(LinuxBoot, InitrdIsPlacedAsHighAsPossibleInLowRam) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = linux_config();
  config.initrds.push_back({"/boot/initrd", pattern(10000, 9)});
  Result<BootPlan> plan = load_kernel(memory, config);
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  const uint64_t expected_address = (kMemorySize - 10000) & ~uint64_t{0xfff};  // 0x3ffd000
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x218), expected_address);
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x21c), 10000u);
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x0c0), 0u);
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x0c4), 0u);
  EXPECT_EQ(peek_bytes(memory, expected_address, 10000), pattern(10000, 9));
  EXPECT_EQ(plan->summary,
            "Linux bzImage (boot protocol 2.15) entry 0x100200 in long mode, initrd of 10000 "
            "bytes at 0x3ffd000");
}

TEST(LinuxBoot, InitrdStaysBelowInitrdAddrMax) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = linux_config({.initrd_addr_max = 0x1ffffff});  // last byte below 32 MiB
  config.initrds.push_back({"/boot/initrd", pattern(0x2000, 9)});
  ASSERT_TRUE(load_kernel(memory, config).ok());
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x218), 0x2000000u - 0x2000);
}

TEST(LinuxBoot, InitrdStaysBelowThe32BitHole) {
  GuestMemory memory = make_memory(4 * kGiB);
  BootConfig config = linux_config({.initrd_addr_max = 0xffffffff});
  config.initrds.push_back({"/boot/initrd", pattern(0x1000, 9)});
  ASSERT_TRUE(load_kernel(memory, config).ok());
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x218), 0xc0000000u - 0x1000);
}

TEST(LinuxBoot, InitrdTooBigIsBadMemorySize) {
  GuestMemory memory = make_memory(16 * kMiB);
  BootConfig config = linux_config();
  config.initrds.push_back({"/boot/initrd", std::vector<uint8_t>(15 * kMiB, 1)});
  EXPECT_TRUE(
      fails_with(load_kernel(memory, config), ExitStatus::BadMemorySize, "initrd '/boot/initrd'"));
  config.initrds.front().data.resize(20 * kMiB);  // bigger than RAM itself
  EXPECT_TRUE(
      fails_with(load_kernel(memory, config), ExitStatus::BadMemorySize, "initrd '/boot/initrd'"));
}

TEST(LinuxBoot, InitrdMayNotOverlapTheKernelsInitSize) {
  GuestMemory memory = make_memory(16 * kMiB);
  BootConfig config = linux_config({.init_size = 0xe00000});  // kernel needs up to 15 MiB
  config.initrds.push_back({"/boot/initrd", std::vector<uint8_t>(0x200000, 1)});
  EXPECT_TRUE(
      fails_with(load_kernel(memory, config), ExitStatus::BadMemorySize, "kernel's end 0xf00000"));
  config.initrds.front().data.resize(0x100000);
  EXPECT_TRUE(load_kernel(memory, config).ok());
}

TEST(LinuxBoot, KernelFootprintRunsFromPrefAddress) {
  // Loaded at 1 MiB, the kernel moves itself to pref_address and decompresses into init_size
  // bytes there: it needs RAM up to 24 MiB.
  const BzImageSpec spec{.init_size = 0x800000, .pref_address = 0x1000000};
  GuestMemory small = make_memory(24 * kMiB - 4096);
  EXPECT_TRUE(fails_with(load_kernel(small, linux_config(spec)), ExitStatus::BadMemorySize,
                         "[0x100000, 0x1800000) does not fit in guest RAM"));

  GuestMemory memory = make_memory(32 * kMiB);
  BootConfig config = linux_config(spec);
  config.initrds.push_back({"/boot/initrd", std::vector<uint8_t>(8 * kMiB + 1, 1)});
  EXPECT_TRUE(
      fails_with(load_kernel(memory, config), ExitStatus::BadMemorySize, "kernel's end 0x1800000"));
  config.initrds.front().data.resize(8 * kMiB);
  ASSERT_TRUE(load_kernel(memory, config).ok());
  EXPECT_EQ(zero_page_field<uint32_t>(memory, 0x218), 0x1800000u);
  EXPECT_EQ(peek_bytes(memory, 0x100000, spec.payload.size()), spec.payload);  // still at 1 MiB
}

TEST(LinuxBoot, ImpossiblePrefAddressIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  EXPECT_TRUE(fails_with(load_kernel(memory, linux_config({.pref_address = UINT64_MAX - 4096})),
                         ExitStatus::BadImage, "impossible pref_address"));
}

TEST(LinuxBoot, MoreThanOneInitrdIsUsageError) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = linux_config();
  config.initrds.push_back({"/a", {1}});
  config.initrds.push_back({"/b", {2}});
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::Usage, "one initrd, not 2"));
}

TEST(LinuxBoot, CommandLineLongerThanCmdlineSizeIsUsageError) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = linux_config({.cmdline_size = 16});
  config.cmdline = std::string(16, 'a');
  ASSERT_TRUE(load_kernel(memory, config).ok());
  EXPECT_EQ(peek_string(memory, 0x20000), std::string(16, 'a'));
  config.cmdline = std::string(17, 'a');
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::Usage,
                         "is 17 bytes; '/boot/bzImage' accepts at most 16"));
}

TEST(LinuxBoot, CommandLineIsCappedByHvsArea) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = linux_config({.cmdline_size = 0xffffffff});
  config.cmdline = std::string(0x10000, 'a');
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::Usage, "at most 65535"));
}

TEST(LinuxBoot, OldBootProtocolIsBadImageNamingTheVersion) {
  GuestMemory memory = make_memory(kMemorySize);
  EXPECT_TRUE(fails_with(load_kernel(memory, linux_config({.version = 0x020b})),
                         ExitStatus::BadImage, "boot protocol 2.11; hv needs 2.12 or newer"));
  EXPECT_TRUE(fails_with(detect_kernel_format(build_bzimage({.version = 0x0204}), "/old"),
                         ExitStatus::BadImage, "'/old' uses boot protocol 2.04"));
}

TEST(LinuxBoot, KernelWithout64BitEntryIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  EXPECT_TRUE(fails_with(load_kernel(memory, linux_config({.xloadflags = 0x2})),
                         ExitStatus::BadImage, "XLF_KERNEL_64"));
}

TEST(LinuxBoot, ZImageIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  EXPECT_TRUE(fails_with(load_kernel(memory, linux_config({.loadflags = 0})), ExitStatus::BadImage,
                         "zImage"));
}

TEST(LinuxBoot, OversizedSetupIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  EXPECT_TRUE(load_kernel(memory, linux_config({.setup_sects = 63})).ok());
  EXPECT_TRUE(fails_with(load_kernel(memory, linux_config({.setup_sects = 64})),
                         ExitStatus::BadImage, "64 setup sectors"));
}

TEST(LinuxBoot, ZeroSetupSectsMeansFour) {
  GuestMemory memory = make_memory(kMemorySize);
  BzImageSpec spec{.setup_sects = 0};
  ASSERT_TRUE(load_kernel(memory, linux_config(spec)).ok());
  EXPECT_EQ(peek_bytes(memory, 0x100000, spec.payload.size()), spec.payload);
}

TEST(LinuxBoot, InconsistentHeaderIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  EXPECT_TRUE(fails_with(load_kernel(memory, linux_config({.header_length = 0x20})),
                         ExitStatus::BadImage, "inconsistent setup header (it ends at 0x222"));

  BootConfig config = linux_config();
  config.kernel[0x1fe] = 0;  // boot flag
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadImage, "0xaa55"));
}

TEST(LinuxBoot, TruncatedKernelIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = linux_config();
  config.kernel.resize(config.kernel.size() - 0x100);  // syssize now exceeds the file
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadImage,
                         "declares 12288 bytes of protected-mode code, the file holds 12032"));
  config.kernel.resize(5 * 512);  // setup only
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadImage,
                         "its setup code alone takes 2560"));
}

TEST(LinuxBoot, KernelTooBigForRamIsBadMemorySize) {
  GuestMemory memory = make_memory(16 * kMiB);
  EXPECT_TRUE(fails_with(load_kernel(memory, linux_config({.init_size = 0x1000000})),
                         ExitStatus::BadMemorySize, "does not fit in guest RAM"));
}

TEST(LinuxBoot, ForcedLinuxOnElfIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config =
      config_for(build_elf(true, 0x100000, {{0x100000, pattern(0x10, 1), 0x10}}), "/k.elf");
  config.format = KernelFormat::Linux;
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadImage,
                         "'/k.elf' is not a Linux bzImage"));
}

}  // namespace
}  // namespace hv::boot
