// Firmware tables a guest reads to find its memory and its CPUs.
#pragma once

#include <cstdint>
#include <vector>

#include "common/error.hpp"
#include "vm/guest_memory.hpp"

namespace hv {

struct E820Entry {
  uint64_t address;
  uint64_t size;
  uint32_t type;  // 1 = RAM, 2 = reserved
};
constexpr uint32_t kE820Ram = 1;
constexpr uint32_t kE820Reserved = 2;

// The PC memory map of this guest: low RAM, the EBDA and the BIOS area (0xe0000-0xfffff: ACPI
// tables, MP table overflow) reserved, RAM from 1 MiB, RAM above 4 GiB when the guest is larger
// than the 32-bit hole allows.
std::vector<E820Entry> e820_map(const GuestMemory& memory);

// The MP floating pointer (16 bytes) always sits at the start of the 1 KiB EBDA. The
// configuration table follows it there when it fits: 44 bytes of header, 20 bytes per processor
// and 8 bytes each for the ISA bus, the IOAPIC, 15 ISA IRQ routes (IRQ 2 has none) and 2 local
// interrupt entries, which leaves room for 40 processors. A larger table goes to the start of
// the system BIOS area (layout::kMpTableOverflow, reserved in e820 and unused by hv otherwise).
constexpr uint32_t kMaxEbdaMpTableCpus = (1024 - 16 - 44 - 8 * (1 + 1 + 15 + 2)) / 20;
// xAPIC IDs are 8 bits and 0xff means "all"; the IOAPIC takes the ID after the last CPU's.
constexpr uint32_t kMaxMpTableCpus = 254;

// Intel MultiProcessor Specification 1.4 tables: one processor entry per vCPU (APIC ID = vCPU
// index, vCPU 0 the BSP), an ISA bus, the IOAPIC (ID = cpu_count) and the ISA IRQ routing. Also
// stores the EBDA segment at 0x40e and the base memory size at 0x413 of the BIOS data area.
// Usage error for 0 or more than kMaxMpTableCpus vCPUs; BadMemorySize when the tables' area is
// not RAM.
Status write_mp_table(GuestMemory& memory, uint32_t cpu_count);

}  // namespace hv
