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

// The PC memory map of this guest: low RAM, EBDA and BIOS area reserved, RAM from 1 MiB, RAM
// above 4 GiB when the guest is larger than the 32-bit hole allows.
std::vector<E820Entry> e820_map(const GuestMemory& memory);

// Intel MultiProcessor Specification 1.4 tables in the EBDA: one processor entry per vCPU
// (APIC ID = vCPU index, vCPU 0 the BSP), an ISA bus, the IOAPIC and the ISA IRQ routing.
Status write_mp_table(GuestMemory& memory, uint32_t cpu_count);

}  // namespace hv
