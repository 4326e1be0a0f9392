// ELF32 and ELF64 executables: PT_LOAD segments copied to their physical addresses.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "boot/kernel_loader.hpp"
#include "common/error.hpp"
#include "vm/guest_memory.hpp"

namespace hv::boot {

struct ElfSegment {
  uint64_t file_offset;
  uint64_t file_size;
  uint64_t address;  // p_paddr
  uint64_t memory_size;
};

struct ElfImage {
  bool is_64bit;
  uint64_t entry;  // physical: a virtual e_entry inside a segment is translated to p_paddr
  std::vector<ElfSegment> segments;
  uint64_t end_address;  // one past the highest byte any segment occupies
};

bool has_elf_magic(std::span<const uint8_t> image);

// Checks the ELF header alone: class, byte order, machine, ET_EXEC.
Status validate_elf_header(std::span<const uint8_t> image, std::string_view path);

// Validates the header and every program header against the file; touches no guest memory.
Result<ElfImage> parse_elf(std::span<const uint8_t> image, std::string_view path);

// Checks every segment against guest RAM and hv's reserved areas, then copies the segments
// and zeroes their bss.
Status load_elf_segments(GuestMemory& memory, std::span<const uint8_t> image, const ElfImage& elf);

// --format elf: ELF32 entered in 32-bit protected mode, ELF64 in long mode.
Result<BootPlan> load_elf_kernel(GuestMemory& memory, const BootConfig& config);

}  // namespace hv::boot
