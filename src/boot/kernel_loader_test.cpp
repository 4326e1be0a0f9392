#include "boot/kernel_loader.hpp"

#include <gtest/gtest.h>

#include <random>

#include "boot/boot_test_support.hpp"

namespace hv::boot {
namespace {

using namespace hv::boot::testing;

std::vector<uint8_t> simple_elf(bool is_64bit) {
  return build_elf(is_64bit, 0x100000, {{0x100000, pattern(0x400, 1), 0x400}});
}

std::vector<uint8_t> multiboot_in_elf(bool bad_checksum = false) {
  std::vector<uint8_t> text = pattern(0x400, 1);
  std::vector<uint8_t> header = multiboot_header(1u << 1);
  if (bad_checksum) {
    header[8] ^= 1;
  }
  std::copy(header.begin(), header.end(), text.begin() + 0x10);
  return build_elf(false, 0x100000, {{0x100000, text, 0x400}});
}

TEST(BootFormat, NamesRoundTrip) {
  for (KernelFormat format : {KernelFormat::Auto, KernelFormat::Multiboot, KernelFormat::Elf,
                              KernelFormat::Linux, KernelFormat::Flat}) {
    Result<KernelFormat> parsed = parse_kernel_format(to_string(format));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, format);
  }
  EXPECT_EQ(to_string(KernelFormat::Multiboot), "multiboot");
  EXPECT_EQ(to_string(KernelFormat::Linux), "linux");
  EXPECT_TRUE(fails_with(parse_kernel_format("bzimage"), ExitStatus::Usage,
                         "unknown kernel format 'bzimage'"));
}

TEST(BootFormat, MultibootHeaderInsideElfWins) {
  Result<KernelFormat> format = detect_kernel_format(multiboot_in_elf());
  ASSERT_TRUE(format.ok()) << format.error().to_string();
  EXPECT_EQ(*format, KernelFormat::Multiboot);
}

TEST(BootFormat, MultibootMagicWithBadChecksumIsIgnored) {
  Result<KernelFormat> format = detect_kernel_format(multiboot_in_elf(true));
  ASSERT_TRUE(format.ok()) << format.error().to_string();
  EXPECT_EQ(*format, KernelFormat::Elf);

  std::vector<uint8_t> raw = pattern(0x400, 1);
  std::vector<uint8_t> header = multiboot_header(0);
  header[8] ^= 1;
  patch_bytes(raw, 0x20, header);
  EXPECT_TRUE(fails_with(detect_kernel_format(raw, "/raw"), ExitStatus::BadImage,
                         "the multiboot magic at offset 0x20 has a bad checksum"));
}

TEST(BootFormat, MultibootMagicMustBeAlignedAndInFirst8KiB) {
  std::vector<uint8_t> raw = pattern(0x4000, 1);
  patch_bytes(raw, 0x22, multiboot_header(0));  // not 4-byte aligned
  EXPECT_FALSE(detect_kernel_format(raw).ok());
  raw = pattern(0x4000, 1);
  patch_bytes(raw, 0x2000, multiboot_header(0));  // beyond 8 KiB
  EXPECT_FALSE(detect_kernel_format(raw).ok());
  raw = pattern(0x4000, 1);
  patch_bytes(raw, 0x1ff4, multiboot_header(0));  // last slot where the 12 bytes fit
  Result<KernelFormat> format = detect_kernel_format(raw);
  ASSERT_TRUE(format.ok()) << format.error().to_string();
  EXPECT_EQ(*format, KernelFormat::Multiboot);
}

TEST(BootFormat, ElfAndLinuxAreDetected) {
  EXPECT_EQ(detect_kernel_format(simple_elf(true)).value(), KernelFormat::Elf);
  EXPECT_EQ(detect_kernel_format(simple_elf(false)).value(), KernelFormat::Elf);
  EXPECT_EQ(detect_kernel_format(build_bzimage({})).value(), KernelFormat::Linux);
}

TEST(BootFormat, FlawedElfIsReportedAsElf) {
  std::vector<uint8_t> image = simple_elf(true);
  patch<uint16_t>(image, offsetof(Elf64_Ehdr, e_type), ET_DYN);
  EXPECT_TRUE(fails_with(detect_kernel_format(image, "/pie"), ExitStatus::BadImage,
                         "ELF file '/pie' is not an executable"));
}

TEST(BootFormat, UnknownFileNamesThePathAndFlat) {
  EXPECT_TRUE(fails_with(detect_kernel_format(pattern(100, 1), "/x.bin"), ExitStatus::BadImage,
                         "unrecognised kernel format in '/x.bin' (use --format flat for a raw "
                         "binary)"));
  EXPECT_FALSE(detect_kernel_format({}).ok());
}

TEST(BootFormat, EmptyKernelIsBadImage) {
  GuestMemory memory = make_memory(16 * kMiB);
  BootConfig config = config_for({}, "/empty");
  config.format = KernelFormat::Flat;
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadImage, "'/empty' is empty"));
}

TEST(BootFormat, ForcedFormatIsValidated) {
  GuestMemory memory = make_memory(16 * kMiB);
  BootConfig config = config_for(simple_elf(false), "/plain.elf");
  config.format = KernelFormat::Multiboot;
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadImage,
                         "'/plain.elf' has no multiboot header"));
  config = config_for(build_bzimage({}), "/bzImage");
  config.format = KernelFormat::Elf;
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::BadImage, "not an ELF file"));
}

TEST(BootFormat, ForcedElfLoadsAMultibootElfAsPlainElf) {
  GuestMemory memory = make_memory(16 * kMiB);
  BootConfig config = config_for(multiboot_in_elf());
  config.format = KernelFormat::Elf;
  Result<BootPlan> plan = load_kernel(memory, config);
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->format, KernelFormat::Elf);
  EXPECT_EQ(plan->bsp.gpr[kRax], 0u);
}

TEST(BootFormat, AutoDetectionDispatchesToTheLoader) {
  GuestMemory memory = make_memory(16 * kMiB);
  Result<BootPlan> plan = load_kernel(memory, config_for(multiboot_in_elf()));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->format, KernelFormat::Multiboot);
  EXPECT_EQ(plan->bsp.gpr[kRax], 0x2BADB002u);
}

TEST(BootFormat, LoadKernelWritesTheMpTable) {
  GuestMemory memory = make_memory(16 * kMiB);
  BootConfig config = config_for(simple_elf(true));
  config.cpu_count = 3;
  ASSERT_TRUE(load_kernel(memory, config).ok());
  EXPECT_EQ(peek<uint32_t>(memory, 0x9fc00), 0x5f504d5fu);   // "_MP_"
  EXPECT_EQ(peek<uint16_t>(memory, 0x9fc10 + 34), 3u + 19);  // entry count
  config.cpu_count = 0;
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::Usage, "0 vCPUs"));
}

// Hostile images: random byte changes in the headers and random truncation must end in a clean
// error or a successful load, never a crash (run under the sanitizers to catch stray accesses).
TEST(BootFormat, CorruptedImagesFailCleanly) {
  GuestMemory memory = make_memory(16 * kMiB);
  const std::vector<std::vector<uint8_t>> originals = {simple_elf(true), simple_elf(false),
                                                       multiboot_in_elf(), build_bzimage({})};
  std::mt19937 random(12345);
  for (int iteration = 0; iteration < 4000; ++iteration) {
    std::vector<uint8_t> image = originals[iteration % originals.size()];
    const int changes = 1 + static_cast<int>(random() % 8);
    for (int i = 0; i < changes; ++i) {
      const size_t offset = random() % std::min<size_t>(image.size(), 0x300);
      image[offset] = static_cast<uint8_t>(random());
    }
    if (random() % 4 == 0) {
      image.resize(random() % image.size());
    }
    BootConfig config = config_for(image, "/fuzz");
    config.format = static_cast<KernelFormat>(random() % 4);  // Auto, Multiboot, Elf, Linux
    Result<BootPlan> plan = load_kernel(memory, config);
    if (!plan.ok()) {
      const ExitStatus status = plan.error().status;
      EXPECT_TRUE(status == ExitStatus::BadImage || status == ExitStatus::BadMemorySize ||
                  status == ExitStatus::Usage)
          << plan.error().to_string();
    }
  }
}

}  // namespace
}  // namespace hv::boot
