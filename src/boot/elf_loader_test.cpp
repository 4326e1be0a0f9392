#include "boot/elf_loader.hpp"

#include <gtest/gtest.h>

#include "boot/boot_test_support.hpp"
#include "boot/kernel_loader.hpp"

namespace hv::boot {
namespace {

using namespace hv::boot::testing;

constexpr uint64_t kMemorySize = 64 * kMiB;

std::vector<TestSegment> two_segments() {
  return {
      {0x100000, pattern(0x1234, 1), 0x1234},                          // text, no bss
      {0x200000, pattern(0x100, 2), 0x3000, UINT64_MAX, PF_R | PF_W},  // data + bss
  };
}

Result<BootPlan> load_elf_file(GuestMemory& memory, std::vector<uint8_t> image) {
  BootConfig config = config_for(std::move(image), "/k.elf");
  config.format = KernelFormat::Elf;
  return load_kernel(memory, config);
}

TEST(ElfLoader, Elf64CopiesSegmentsAndZeroesBss) {
  GuestMemory memory = make_memory(kMemorySize);
  ASSERT_TRUE(memory.fill(0x200000, 0xcc, 0x4000).ok());  // stale bytes the bss must clear
  auto segments = two_segments();
  Result<BootPlan> plan = load_elf_file(memory, build_elf(true, 0x100010, segments));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();

  EXPECT_EQ(peek_bytes(memory, 0x100000, 0x1234), segments[0].data);
  EXPECT_EQ(peek_bytes(memory, 0x200000, 0x100), segments[1].data);
  EXPECT_EQ(peek_bytes(memory, 0x200100, 0x3000 - 0x100), std::vector<uint8_t>(0x2f00, 0));
  EXPECT_EQ(peek<uint8_t>(memory, 0x203000), 0xcc);  // one past p_memsz: untouched
  EXPECT_EQ(plan->format, KernelFormat::Elf);
  EXPECT_EQ(plan->summary, "ELF64 entry 0x100010 in long mode");
}

TEST(ElfLoader, Elf64EntersLongModeWithIdentityPaging) {
  GuestMemory memory = make_memory(kMemorySize);
  Result<BootPlan> plan = load_elf_file(memory, build_elf(true, 0x100010, two_segments()));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  const CpuState& cpu = plan->bsp;
  EXPECT_EQ(cpu.rip, 0x100010u);
  EXPECT_EQ(cpu.rflags, 0x2u);
  EXPECT_EQ(cpu.cr0, 0x80000031u);  // PG | NE | ET | PE
  EXPECT_EQ(cpu.cr3, 0x9000u);
  EXPECT_EQ(cpu.cr4, 0x20u);    // PAE
  EXPECT_EQ(cpu.efer, 0x500u);  // LMA | LME
  EXPECT_EQ(cpu.cs.selector, 0x10);
  EXPECT_TRUE(cpu.cs.long_mode);
  EXPECT_FALSE(cpu.cs.default_big);
  EXPECT_EQ(cpu.cs.type, 0xb);
  for (const Segment* s : {&cpu.ds, &cpu.es, &cpu.ss, &cpu.fs, &cpu.gs}) {
    EXPECT_EQ(s->selector, 0x18);
    EXPECT_EQ(s->base, 0u);
    EXPECT_EQ(s->limit, 0xffffffffu);
    EXPECT_EQ(s->type, 0x3);
  }
  EXPECT_EQ(cpu.gdt.base, 0x500u);
  EXPECT_EQ(cpu.gdt.limit, 31);
  EXPECT_EQ(peek<uint64_t>(memory, 0x500 + 0x10), 0x00af9b000000ffffu);
  EXPECT_EQ(peek<uint64_t>(memory, 0x9000), 0xa003u);  // PML4[0] -> PDPT
}

TEST(ElfLoader, Elf32EntersProtectedModeWithoutPaging) {
  GuestMemory memory = make_memory(kMemorySize);
  Result<BootPlan> plan = load_elf_file(memory, build_elf(false, 0x100000, two_segments()));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  const CpuState& cpu = plan->bsp;
  EXPECT_EQ(plan->summary, "ELF32 entry 0x100000 in protected mode");
  EXPECT_EQ(cpu.rip, 0x100000u);
  EXPECT_EQ(cpu.rflags, 0x2u);
  EXPECT_EQ(cpu.cr0, 0x31u);  // NE | ET | PE, no PG
  EXPECT_EQ(cpu.cr4, 0u);
  EXPECT_EQ(cpu.efer, 0u);
  EXPECT_EQ(cpu.cs.selector, 0x08);
  EXPECT_FALSE(cpu.cs.long_mode);
  EXPECT_TRUE(cpu.cs.default_big);
  EXPECT_TRUE(cpu.cs.granularity);
  EXPECT_EQ(cpu.cs.limit, 0xffffffffu);
  EXPECT_EQ(cpu.ss.selector, 0x18);
  EXPECT_TRUE(cpu.ss.default_big);
  EXPECT_EQ(peek<uint64_t>(memory, 0x500 + 0x08), 0x00cf9b000000ffffu);
  EXPECT_EQ(peek_bytes(memory, 0x200000, 0x100), pattern(0x100, 2));
}

TEST(ElfLoader, VirtualEntryIsTranslatedThroughItsSegment) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<TestSegment> segments = {
      {0x100000, pattern(0x100, 3), 0x100, 0xffffffff80100000, PF_R | PF_X}};
  Result<BootPlan> plan = load_elf_file(memory, build_elf(true, 0xffffffff80100040, segments));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->bsp.rip, 0x100040u);
}

TEST(ElfLoader, SkipsNonLoadSegments) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<TestSegment> segments = two_segments();
  segments.push_back({0x40000000, pattern(16, 4), 16, UINT64_MAX, PF_R, PT_NOTE});
  EXPECT_TRUE(load_elf_file(memory, build_elf(true, 0x100000, segments)).ok());
}

TEST(ElfLoader, TruncatedHeaderIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = build_elf(true, 0x100000, two_segments());
  image.resize(0x30);
  EXPECT_TRUE(fails_with(load_elf_file(memory, image), ExitStatus::BadImage, "truncated"));
}

TEST(ElfLoader, ProgramHeadersOutsideFileAreBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = build_elf(true, 0x100000, two_segments());
  patch<uint64_t>(image, offsetof(Elf64_Ehdr, e_phoff), image.size() - 0x38);
  EXPECT_TRUE(
      fails_with(load_elf_file(memory, image), ExitStatus::BadImage, "lie outside the file"));
  patch<uint64_t>(image, offsetof(Elf64_Ehdr, e_phoff), UINT64_MAX - 8);  // offset + size wraps
  EXPECT_TRUE(
      fails_with(load_elf_file(memory, image), ExitStatus::BadImage, "lie outside the file"));
}

TEST(ElfLoader, TooManyProgramHeadersForTheFileAreBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = build_elf(false, 0x100000, two_segments());
  patch<uint16_t>(image, offsetof(Elf32_Ehdr, e_phnum), 0x7fff);
  EXPECT_TRUE(
      fails_with(load_elf_file(memory, image), ExitStatus::BadImage, "lie outside the file"));
}

TEST(ElfLoader, ShortProgramHeaderEntrySizeIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = build_elf(true, 0x100000, two_segments());
  patch<uint16_t>(image, offsetof(Elf64_Ehdr, e_phentsize), 0x20);
  EXPECT_TRUE(fails_with(load_elf_file(memory, image), ExitStatus::BadImage, "e_phentsize 32"));
}

TEST(ElfLoader, NoProgramHeadersIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = build_elf(true, 0x100000, two_segments());
  patch<uint16_t>(image, offsetof(Elf64_Ehdr, e_phnum), 0);
  EXPECT_TRUE(fails_with(load_elf_file(memory, image), ExitStatus::BadImage, "no program headers"));
  patch<uint16_t>(image, offsetof(Elf64_Ehdr, e_phnum), PN_XNUM);
  EXPECT_TRUE(fails_with(load_elf_file(memory, image), ExitStatus::BadImage, "PN_XNUM"));
}

TEST(ElfLoader, SegmentDataBeyondEndOfFileIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<TestSegment> segments = two_segments();
  std::vector<uint8_t> image = build_elf(true, 0x100000, segments);
  image.resize(elf_data_offset(segments, 1) + 0x80);  // the data segment is cut in half
  EXPECT_TRUE(fails_with(load_elf_file(memory, image), ExitStatus::BadImage, "truncated"));
}

TEST(ElfLoader, SegmentFileOffsetOverflowIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = build_elf(true, 0x100000, two_segments());
  patch<uint64_t>(image, kElfPhdrOffset + offsetof(Elf64_Phdr, p_offset), UINT64_MAX - 0x10);
  EXPECT_TRUE(fails_with(load_elf_file(memory, image), ExitStatus::BadImage, "truncated"));
}

TEST(ElfLoader, FileSizeAboveMemorySizeIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = build_elf(true, 0x100000, two_segments());
  patch<uint64_t>(image, kElfPhdrOffset + offsetof(Elf64_Phdr, p_memsz), 0x1000);
  EXPECT_TRUE(fails_with(load_elf_file(memory, image), ExitStatus::BadImage,
                         "p_filesz 0x1234 larger than p_memsz 0x1000"));
}

TEST(ElfLoader, SegmentOutsideRamIsBadMemorySize) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<TestSegment> segments = {
      {0x3fff000, pattern(0x100, 5), 0x2000}};  // ends at 64 MiB + 4 KiB
  EXPECT_TRUE(fails_with(load_elf_file(memory, build_elf(true, 0x3fff000, segments)),
                         ExitStatus::BadMemorySize, "does not fit in guest RAM"));
  // Nothing was written: the check precedes the copy.
  EXPECT_EQ(peek<uint8_t>(memory, 0x3fff000), 0);
}

TEST(ElfLoader, Elf32SegmentWrappingPast4GiBIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<TestSegment> segments = {{0xfffff000, pattern(0x10, 5), 0x2000}};
  EXPECT_TRUE(fails_with(load_elf_file(memory, build_elf(false, 0xfffff000, segments)),
                         ExitStatus::BadImage, "wraps around the 32-bit address space"));
}

TEST(ElfLoader, SegmentOverBootTablesIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<TestSegment> segments = {{0x8000, pattern(0x100, 5), 0x2000}};
  EXPECT_TRUE(fails_with(load_elf_file(memory, build_elf(true, 0x8000, segments)),
                         ExitStatus::BadImage, "hv's boot tables"));
  segments = {{0x9f000, pattern(0x100, 5), 0x1000}};  // reaches into the EBDA
  EXPECT_TRUE(fails_with(load_elf_file(memory, build_elf(true, 0x9f000, segments)),
                         ExitStatus::BadImage, "EBDA"));
}

TEST(ElfLoader, HeaderErrorsAreBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<uint8_t> image = build_elf(true, 0x100000, two_segments());

  std::vector<uint8_t> shared_object = image;
  patch<uint16_t>(shared_object, offsetof(Elf64_Ehdr, e_type), ET_DYN);
  EXPECT_TRUE(fails_with(load_elf_file(memory, shared_object), ExitStatus::BadImage,
                         "not an executable (e_type 3"));

  std::vector<uint8_t> arm = image;
  patch<uint16_t>(arm, offsetof(Elf64_Ehdr, e_machine), EM_AARCH64);
  EXPECT_TRUE(fails_with(load_elf_file(memory, arm), ExitStatus::BadImage, "not for x86"));

  std::vector<uint8_t> big_endian = image;
  big_endian[EI_DATA] = ELFDATA2MSB;
  EXPECT_TRUE(
      fails_with(load_elf_file(memory, big_endian), ExitStatus::BadImage, "not little-endian"));

  std::vector<uint8_t> bad_class = image;
  bad_class[EI_CLASS] = 3;
  EXPECT_TRUE(
      fails_with(load_elf_file(memory, bad_class), ExitStatus::BadImage, "invalid class 3"));

  std::vector<uint8_t> i386_elf64 = image;
  patch<uint16_t>(i386_elf64, offsetof(Elf64_Ehdr, e_machine), EM_386);
  EXPECT_TRUE(fails_with(load_elf_file(memory, i386_elf64), ExitStatus::BadImage, "not for x86"));
}

TEST(ElfLoader, EntryOutsideEverySegmentIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  EXPECT_TRUE(fails_with(load_elf_file(memory, build_elf(true, 0x300000, two_segments())),
                         ExitStatus::BadImage, "entry point 0x300000 is not inside"));
}

TEST(ElfLoader, Elf64EntryAbove4GiBIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<TestSegment> segments = {{0x100000000, pattern(0x100, 6), 0x100}};
  EXPECT_TRUE(fails_with(load_elf_file(memory, build_elf(true, 0x100000000, segments)),
                         ExitStatus::BadImage, "above 4 GiB"));
}

TEST(ElfLoader, NoLoadableSegmentsIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  std::vector<TestSegment> segments = {
      {0x100000, pattern(0x10, 6), 0x10, UINT64_MAX, PF_R, PT_NOTE}};
  EXPECT_TRUE(fails_with(load_elf_file(memory, build_elf(true, 0x100000, segments)),
                         ExitStatus::BadImage, "no loadable"));
}

TEST(ElfLoader, ForcedElfOnOtherFileIsBadImage) {
  GuestMemory memory = make_memory(kMemorySize);
  EXPECT_TRUE(fails_with(load_elf_file(memory, pattern(4096, 9)), ExitStatus::BadImage,
                         "'/k.elf' is not an ELF file"));
}

TEST(ElfLoader, InitrdForElfIsUsageError) {
  GuestMemory memory = make_memory(kMemorySize);
  BootConfig config = config_for(build_elf(true, 0x100000, two_segments()));
  config.initrds.push_back({"/initrd", pattern(16, 1)});
  EXPECT_TRUE(fails_with(load_kernel(memory, config), ExitStatus::Usage, "initrd"));
}

TEST(ElfLoader, Elf64SegmentAbove4GiBLoadsIntoHighRam) {
  GuestMemory memory = make_memory(4 * kGiB);  // 3 GiB low, 1 GiB from 4 GiB
  std::vector<TestSegment> segments = two_segments();
  segments.push_back({0x100001000, pattern(0x80, 7), 0x100});
  Result<BootPlan> plan = load_elf_file(memory, build_elf(true, 0x100000, segments));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(peek_bytes(memory, 0x100001000, 0x80), pattern(0x80, 7));

  segments.back().address = 0xbffff000;  // straddles the start of the 32-bit hole
  segments.back().memory_size = 0x2000;
  EXPECT_TRUE(fails_with(load_elf_file(memory, build_elf(true, 0x100000, segments)),
                         ExitStatus::BadMemorySize, "does not fit in guest RAM"));
}

}  // namespace
}  // namespace hv::boot
