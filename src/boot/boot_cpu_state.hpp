// The initial CPU states hv enters protected- and long-mode kernels with, and the guest tables
// they depend on: a flat boot GDT and identity page tables for the first 4 GiB.
#pragma once

#include <cstdint>

#include "common/error.hpp"
#include "vm/cpu_state.hpp"
#include "vm/guest_memory.hpp"

namespace hv::boot {

constexpr uint64_t kIdentityMappedLimit = 0x1'0000'0000;  // page tables map [0, 4 GiB)

// Writes the GDT of layout.hpp: null, flat 32-bit code, 64-bit code, flat data.
Status write_boot_gdt(GuestMemory& memory);

// Writes PML4, PDPT and four page directories mapping [0, 4 GiB) to itself with 2 MiB pages
// (1 GiB pages would need a CPU feature not every host has).
Status write_identity_page_tables(GuestMemory& memory);

// 32-bit protected mode, paging off, flat 4 GiB segments, interrupts off, RIP = entry.
// Writes the boot GDT the segment registers refer to.
Result<CpuState> enter_protected_mode(GuestMemory& memory, uint32_t entry);

// 64-bit long mode with the identity page tables, CS = 64-bit code, flat data segments,
// interrupts off, RIP = entry. Writes the boot GDT and the page tables.
Result<CpuState> enter_long_mode(GuestMemory& memory, uint64_t entry);

}  // namespace hv::boot
