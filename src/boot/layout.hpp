// Where hv puts things in guest physical memory before the guest runs. The low 1 MiB follows the
// PC: conventional memory up to the EBDA at 0x9fc00, then the legacy video/BIOS area.
//
//   0x00000 - 0x004ff  real-mode IVT and BIOS data area (hv writes the EBDA segment at 0x40e)
//   0x00500 - 0x0051f  boot GDT
//   0x01000 - 0x01fff  multiboot info block, memory map and module list
//   0x02000 - 0x03fff  multiboot strings
//   0x04000 - 0x06fff  initial stack (grows down from 0x7000)
//   0x07000 - 0x07fff  Linux zero page
//   0x09000 - 0x0efff  identity page tables (PML4, PDPT, four page directories)
//   0x20000 - 0x2ffff  Linux command line
//   0x9fc00 - 0x9ffff  EBDA: MP floating pointer and MP configuration table
//   0xe0000 - 0xeffff  ACPI tables, the RSDP first (OSes scan 0xe0000-0xfffff for it)
//   0xf0000 - 0xfffff  system BIOS area: MP configuration table when it outgrows the EBDA
//
// 0xe0000 - 0xfffff is reserved in e820 as a whole.
//
// Protected- and long-mode kernels may not load below kBootDataEnd nor into [kEbdaStart, 1 MiB).
#pragma once

#include <cstdint>

namespace hv::layout {

constexpr uint64_t kBootGdt = 0x500;         // GDT used for protected/long-mode entry
constexpr uint64_t kMultibootInfo = 0x1000;  // multiboot info block, mmap, module list (4 KiB)
constexpr uint64_t kMultibootInfoSize = 0x1000;
constexpr uint64_t kMultibootStrings = 0x2000;  // multiboot command lines (8 KiB)
constexpr uint64_t kMultibootStringsSize = 0x2000;
constexpr uint64_t kBootStackTop = 0x7000;     // initial RSP for protected/long-mode entry
constexpr uint64_t kBootParams = 0x7000;       // Linux zero page (4 KiB)
constexpr uint64_t kPml4 = 0x9000;             // identity page tables for 64-bit entry:
constexpr uint64_t kPdpt = 0xa000;             //   PML4, PDPT and four PDs of 2 MiB pages
constexpr uint64_t kPageDirectories = 0xb000;  //   mapping the first 4 GiB (0xb000..0xefff)
constexpr uint64_t kBootDataEnd = 0xf000;      // end of the BIOS data area and hv's boot tables
constexpr uint64_t kKernelCmdline = 0x20000;   // Linux command line
constexpr uint64_t kCmdlineMax = 0x10000;
constexpr uint64_t kEbdaStart = 0x9fc00;  // MP table lives here (reserved in e820)
constexpr uint64_t kEbdaSize = 0x400;
constexpr uint64_t kLegacyHoleStart = 0xa0000;
constexpr uint64_t kBiosAreaStart = 0xe0000;      // BIOS areas up to 1 MiB, reserved in e820
constexpr uint64_t kAcpiTables = kBiosAreaStart;  // RSDP and the tables it leads to (64 KiB)
constexpr uint64_t kAcpiTablesSize = 0x10000;
constexpr uint64_t kMpTableOverflow = 0xf0000;   // MP table too large for the EBDA
constexpr uint64_t kHighMemoryStart = 0x100000;  // 1 MiB: where kernels load
constexpr uint64_t kDefaultFlatLoadAddress = 0x7c00;
static_assert(kAcpiTables + kAcpiTablesSize <= kMpTableOverflow, "ACPI and MP tables overlap");

// Fixed MMIO addresses of the x86 interrupt controllers.
constexpr uint64_t kIoApicBase = 0xfec0'0000;
constexpr uint64_t kLocalApicBase = 0xfee0'0000;

// GDT selectors hv's boot GDT provides. Linux's 64-bit boot protocol requires CS = __BOOT_CS =
// 0x10 holding a 64-bit code descriptor and DS/ES/SS = __BOOT_DS = 0x18, so the 64-bit code
// descriptor sits at 0x10 and the 32-bit one (ELF32 and multiboot entry) at 0x08.
constexpr uint16_t kBootCode32Selector = 0x08;
constexpr uint16_t kBootCode64Selector = 0x10;
constexpr uint16_t kBootDataSelector = 0x18;
constexpr uint64_t kBootGdtEntries = 4;  // null, code32, code64, data

}  // namespace hv::layout
