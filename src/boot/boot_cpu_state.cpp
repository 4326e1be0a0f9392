#include "boot/boot_cpu_state.hpp"

#include <array>

#include "boot/layout.hpp"

namespace hv::boot {

namespace {

// Descriptor access types with the accessed bit already set, so the CPU never writes the GDT.
constexpr uint8_t kCodeExecuteRead = 0xb;
constexpr uint8_t kDataReadWrite = 0x3;

// Packs a code/data descriptor with a 4 GiB limit (0xfffff in 4 KiB units).
constexpr uint64_t flat_descriptor(uint8_t type, bool long_mode, bool default_big) {
  constexpr uint64_t kLimitLow = 0xffff;
  constexpr uint64_t kLimitHigh = 0xfull << 48;
  constexpr uint64_t kCodeOrData = 1ull << 44;
  constexpr uint64_t kPresent = 1ull << 47;
  constexpr uint64_t kGranularity = 1ull << 55;
  return kLimitLow | kLimitHigh | (static_cast<uint64_t>(type) << 40) | kCodeOrData | kPresent |
         (long_mode ? 1ull << 53 : 0) | (default_big ? 1ull << 54 : 0) | kGranularity;
}

// The cached form of the descriptors above, as the CPU holds it after loading the selector.
Segment flat_segment(uint16_t selector, uint8_t type, bool long_mode) {
  Segment segment;
  segment.base = 0;
  segment.limit = 0xffff'ffff;
  segment.selector = selector;
  segment.type = type;
  segment.system_or_code_data = true;
  segment.present = true;
  segment.long_mode = long_mode;
  segment.default_big = !long_mode;  // D must be clear in a 64-bit code segment
  segment.granularity = true;
  return segment;
}

CpuState flat_cpu_state(uint16_t code_selector, bool long_mode, uint64_t entry) {
  // Start from the reset state for the system segments (TR, LDTR) KVM accepts in every mode.
  CpuState state = CpuState::real_mode(0, 0);
  state.cs = flat_segment(code_selector, kCodeExecuteRead, long_mode);
  Segment data = flat_segment(layout::kBootDataSelector, kDataReadWrite, false);
  state.ds = state.es = state.fs = state.gs = state.ss = data;
  state.gdt = {layout::kBootGdt, static_cast<uint16_t>(layout::kBootGdtEntries * 8 - 1)};
  // An empty IDT: an exception before the kernel installs its own is a clean triple fault
  // instead of a jump through the real-mode IVT.
  state.idt = {0, 0};
  state.rip = entry;
  state.rflags = rflags::kFixed;
  state.gpr[kRsp] = layout::kBootStackTop;
  return state;
}

}  // namespace

Status write_boot_gdt(GuestMemory& memory) {
  std::array<uint64_t, layout::kBootGdtEntries> gdt{};
  gdt[layout::kBootCode32Selector / 8] = flat_descriptor(kCodeExecuteRead, false, true);
  gdt[layout::kBootCode64Selector / 8] = flat_descriptor(kCodeExecuteRead, true, false);
  gdt[layout::kBootDataSelector / 8] = flat_descriptor(kDataReadWrite, false, true);
  return memory.write_object(layout::kBootGdt, gdt);
}

Status write_identity_page_tables(GuestMemory& memory) {
  constexpr uint64_t kPresent = 1u << 0;
  constexpr uint64_t kWritable = 1u << 1;
  constexpr uint64_t kLargePage = 1u << 7;
  constexpr uint64_t kTableEntries = 512;
  constexpr uint64_t kDirectoryCount = kIdentityMappedLimit >> 30;  // one per GiB
  constexpr uint64_t kLargePageSize = 2ull << 20;

  std::array<uint64_t, kTableEntries> table{};
  table[0] = layout::kPdpt | kPresent | kWritable;
  HV_TRY(memory.write_object(layout::kPml4, table));

  table = {};
  for (uint64_t i = 0; i < kDirectoryCount; ++i) {
    table[i] = (layout::kPageDirectories + i * 0x1000) | kPresent | kWritable;
  }
  HV_TRY(memory.write_object(layout::kPdpt, table));

  for (uint64_t directory = 0; directory < kDirectoryCount; ++directory) {
    for (uint64_t i = 0; i < kTableEntries; ++i) {
      uint64_t address = (directory * kTableEntries + i) * kLargePageSize;
      table[i] = address | kPresent | kWritable | kLargePage;
    }
    HV_TRY(memory.write_object(layout::kPageDirectories + directory * 0x1000, table));
  }
  return {};
}

Result<CpuState> enter_protected_mode(GuestMemory& memory, uint32_t entry) {
  HV_TRY(write_boot_gdt(memory));
  CpuState state = flat_cpu_state(layout::kBootCode32Selector, false, entry);
  state.cr0 = cr0::kPE | cr0::kET | cr0::kNE;
  return state;
}

Result<CpuState> enter_long_mode(GuestMemory& memory, uint64_t entry) {
  HV_TRY(write_boot_gdt(memory));
  HV_TRY(write_identity_page_tables(memory));
  CpuState state = flat_cpu_state(layout::kBootCode64Selector, true, entry);
  state.cr0 = cr0::kPE | cr0::kET | cr0::kNE | cr0::kPG;
  state.cr3 = layout::kPml4;
  state.cr4 = cr4::kPAE;
  state.efer = efer::kLME | efer::kLMA;
  return state;
}

}  // namespace hv::boot
