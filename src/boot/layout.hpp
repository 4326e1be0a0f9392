// Where hv puts things in guest physical memory before the guest runs. The low 1 MiB follows the
// PC: conventional memory up to the EBDA at 0x9fc00, then the legacy video/BIOS area.
#pragma once

#include <cstdint>

namespace hv::layout {

constexpr uint64_t kBootGdt = 0x500;           // GDT used for protected/long-mode entry
constexpr uint64_t kMultibootInfo = 0x1000;    // multiboot info block, mmap, module list (4 KiB)
constexpr uint64_t kMultibootStrings = 0x2000; // multiboot command lines (8 KiB)
constexpr uint64_t kBootParams = 0x7000;       // Linux zero page (4 KiB)
constexpr uint64_t kPml4 = 0x9000;             // identity page tables for 64-bit entry:
constexpr uint64_t kPdpt = 0xa000;             //   PML4, PDPT and four PDs of 2 MiB pages
constexpr uint64_t kPageDirectories = 0xb000;  //   mapping the first 4 GiB (0xb000..0xefff)
constexpr uint64_t kKernelCmdline = 0x20000;   // Linux command line
constexpr uint64_t kCmdlineMax = 0x10000;
constexpr uint64_t kEbdaStart = 0x9fc00;       // MP table lives here (reserved in e820)
constexpr uint64_t kLegacyHoleStart = 0xa0000;
constexpr uint64_t kHighMemoryStart = 0x100000;  // 1 MiB: where kernels load
constexpr uint64_t kDefaultFlatLoadAddress = 0x7c00;

// Fixed MMIO addresses of the x86 interrupt controllers.
constexpr uint64_t kIoApicBase = 0xfec0'0000;
constexpr uint64_t kLocalApicBase = 0xfee0'0000;

// GDT selectors hv's boot GDT provides (the Linux boot protocol wants 0x10/0x18).
constexpr uint16_t kBootCode64Selector = 0x08;
constexpr uint16_t kBootCode32Selector = 0x10;
constexpr uint16_t kBootDataSelector = 0x18;

}  // namespace hv::layout
