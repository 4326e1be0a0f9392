#include "boot/elf_loader.hpp"

#include <elf.h>

#include <algorithm>
#include <cstring>

#include "boot/boot_cpu_state.hpp"
#include "boot/image_bytes.hpp"
#include "boot/load_range.hpp"

namespace hv::boot {

namespace {

constexpr uint64_t k4GiB = 0x1'0000'0000;

// The fields hv needs, independent of the ELF class.
struct ElfHeader {
  bool is_64bit;
  uint16_t type;
  uint16_t machine;
  uint64_t entry;
  uint64_t program_header_offset;
  uint16_t program_header_size;
  uint16_t program_header_count;
};

struct ProgramHeader {
  uint32_t type;
  uint32_t flags;
  uint64_t offset;
  uint64_t virtual_address;
  uint64_t physical_address;
  uint64_t file_size;
  uint64_t memory_size;
};

std::string_view elf_type_name(uint16_t type) {
  switch (type) {
    case ET_NONE:
      return "no file type";
    case ET_REL:
      return "relocatable object";
    case ET_DYN:
      return "shared object or position-independent executable";
    case ET_CORE:
      return "core dump";
    default:
      return "unknown type";
  }
}

// Only after validate_elf_header: the header is known to be inside the image.
ElfHeader read_elf_header(std::span<const uint8_t> image) {
  if (image[EI_CLASS] == ELFCLASS64) {
    auto h = load_le<Elf64_Ehdr>(image, 0);
    return {true, h.e_type, h.e_machine, h.e_entry, h.e_phoff, h.e_phentsize, h.e_phnum};
  }
  auto h = load_le<Elf32_Ehdr>(image, 0);
  return {false, h.e_type, h.e_machine, h.e_entry, h.e_phoff, h.e_phentsize, h.e_phnum};
}

ProgramHeader read_program_header(std::span<const uint8_t> image, bool is_64bit, uint64_t offset) {
  if (is_64bit) {
    auto p = load_le<Elf64_Phdr>(image, offset);
    return {p.p_type, p.p_flags, p.p_offset, p.p_vaddr, p.p_paddr, p.p_filesz, p.p_memsz};
  }
  auto p = load_le<Elf32_Phdr>(image, offset);
  return {p.p_type, p.p_flags, p.p_offset, p.p_vaddr, p.p_paddr, p.p_filesz, p.p_memsz};
}

// Kernels linked for a higher-half virtual address give a virtual e_entry; hv starts them with
// paging off (or identity-mapped), so translate it through the executable segment holding it,
// as QEMU does.
uint64_t physical_entry(uint64_t entry, const std::vector<ProgramHeader>& loads) {
  for (const ProgramHeader& p : loads) {
    if ((p.flags & PF_X) != 0 && p.virtual_address != p.physical_address &&
        entry >= p.virtual_address && entry - p.virtual_address < p.file_size) {
      return entry - p.virtual_address + p.physical_address;
    }
  }
  return entry;
}

}  // namespace

bool has_elf_magic(std::span<const uint8_t> image) {
  return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

Status validate_elf_header(std::span<const uint8_t> image, std::string_view path) {
  if (!has_elf_magic(image)) {
    return make_error(ExitStatus::BadImage, "'{}' is not an ELF file (no \\x7fELF magic)", path);
  }
  if (image.size() < EI_NIDENT) {
    return make_error(ExitStatus::BadImage, "ELF file '{}' is truncated ({} bytes)", path,
                      image.size());
  }
  const uint8_t elf_class = image[EI_CLASS];
  if (elf_class != ELFCLASS32 && elf_class != ELFCLASS64) {
    return make_error(ExitStatus::BadImage, "ELF file '{}' has an invalid class {}", path,
                      elf_class);
  }
  if (image[EI_DATA] != ELFDATA2LSB) {
    return make_error(ExitStatus::BadImage, "ELF file '{}' is not little-endian", path);
  }
  const bool is_64bit = elf_class == ELFCLASS64;
  const size_t header_size = is_64bit ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
  if (image.size() < header_size) {
    return make_error(ExitStatus::BadImage, "ELF file '{}' is truncated: {} bytes, header needs {}",
                      path, image.size(), header_size);
  }
  const ElfHeader header = read_elf_header(image);
  // An ELF32 may be i386 or x32 (elf32-x86-64); either is entered in 32-bit mode.
  const bool machine_ok = header.machine == EM_X86_64 || (!is_64bit && header.machine == EM_386);
  if (!machine_ok) {
    return make_error(ExitStatus::BadImage, "ELF{} file '{}' is not for x86 (e_machine {})",
                      is_64bit ? 64 : 32, path, header.machine);
  }
  if (header.type != ET_EXEC) {
    return make_error(ExitStatus::BadImage,
                      "ELF file '{}' is not an executable (e_type {}: {}); link it with a fixed "
                      "load address",
                      path, header.type, elf_type_name(header.type));
  }
  return {};
}

Result<ElfImage> parse_elf(std::span<const uint8_t> image, std::string_view path) {
  HV_TRY(validate_elf_header(image, path));
  const ElfHeader header = read_elf_header(image);
  const size_t min_entry_size = header.is_64bit ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);

  if (header.program_header_count == 0) {
    return make_error(ExitStatus::BadImage, "ELF file '{}' has no program headers", path);
  }
  if (header.program_header_count == PN_XNUM) {
    return make_error(ExitStatus::BadImage,
                      "ELF file '{}' uses extended program header numbering (PN_XNUM)", path);
  }
  if (header.program_header_size < min_entry_size) {
    return make_error(ExitStatus::BadImage,
                      "ELF file '{}' has e_phentsize {}, smaller than a program header ({})", path,
                      header.program_header_size, min_entry_size);
  }
  const uint64_t table_size =
      uint64_t{header.program_header_count} * uint64_t{header.program_header_size};
  if (!range_within(header.program_header_offset, table_size, image.size())) {
    return make_error(ExitStatus::BadImage,
                      "ELF file '{}': program headers at offset {:#x} ({} x {} bytes) lie outside "
                      "the file ({} bytes)",
                      path, header.program_header_offset, header.program_header_count,
                      header.program_header_size, image.size());
  }

  std::vector<ProgramHeader> loads;
  for (uint16_t i = 0; i < header.program_header_count; ++i) {
    ProgramHeader p = read_program_header(
        image, header.is_64bit,
        header.program_header_offset + uint64_t{i} * header.program_header_size);
    if (p.type != PT_LOAD) {
      continue;
    }
    if (p.file_size > p.memory_size) {
      return make_error(ExitStatus::BadImage,
                        "ELF file '{}': segment {} has p_filesz {:#x} larger than p_memsz {:#x}",
                        path, i, p.file_size, p.memory_size);
    }
    if (!range_within(p.offset, p.file_size, image.size())) {
      return make_error(ExitStatus::BadImage,
                        "ELF file '{}' is truncated: segment {} needs file bytes [{:#x}, +{:#x}) "
                        "but the file has {}",
                        path, i, p.offset, p.file_size, image.size());
    }
    uint64_t end = 0;
    const uint64_t address_limit = header.is_64bit ? UINT64_MAX : k4GiB;
    if (__builtin_add_overflow(p.physical_address, p.memory_size, &end) || end > address_limit) {
      return make_error(ExitStatus::BadImage,
                        "ELF file '{}': segment {} at {:#x} of {:#x} bytes wraps around the {} "
                        "address space",
                        path, i, p.physical_address, p.memory_size,
                        header.is_64bit ? "64-bit" : "32-bit");
    }
    if (p.memory_size != 0) {
      loads.push_back(p);
    }
  }
  if (loads.empty()) {
    return make_error(ExitStatus::BadImage, "ELF file '{}' has no loadable (PT_LOAD) segments",
                      path);
  }

  ElfImage elf{header.is_64bit, physical_entry(header.entry, loads), {}, 0};
  bool entry_loaded = false;
  for (const ProgramHeader& p : loads) {
    elf.segments.push_back({p.offset, p.file_size, p.physical_address, p.memory_size});
    elf.end_address = std::max(elf.end_address, p.physical_address + p.memory_size);
    entry_loaded |=
        elf.entry >= p.physical_address && elf.entry - p.physical_address < p.memory_size;
  }
  if (!entry_loaded) {
    return make_error(ExitStatus::BadImage,
                      "ELF file '{}': entry point {:#x} is not inside any loadable segment", path,
                      elf.entry);
  }
  return elf;
}

Status load_elf_segments(GuestMemory& memory, std::span<const uint8_t> image, const ElfImage& elf) {
  // Check every segment before writing any, so a failed load leaves guest memory untouched.
  for (size_t i = 0; i < elf.segments.size(); ++i) {
    const ElfSegment& s = elf.segments[i];
    HV_TRY(check_load_range(memory, s.address, s.memory_size, fmt::format("ELF segment {}", i)));
  }
  for (const ElfSegment& s : elf.segments) {
    HV_TRY(memory.write(s.address, image.subspan(s.file_offset, s.file_size)));
    HV_TRY(memory.fill(s.address + s.file_size, 0, s.memory_size - s.file_size));
  }
  return {};
}

Result<BootPlan> load_elf_kernel(GuestMemory& memory, const BootConfig& config) {
  const std::span<const uint8_t> image = config.kernel;
  ElfImage elf = HV_TRY(parse_elf(image, config.kernel_path));
  if (elf.is_64bit && elf.entry >= kIdentityMappedLimit) {
    return make_error(ExitStatus::BadImage,
                      "ELF64 file '{}': entry point {:#x} is above 4 GiB, outside the identity "
                      "map hv starts long-mode kernels with",
                      config.kernel_path, elf.entry);
  }
  HV_TRY(load_elf_segments(memory, image, elf));
  if (elf.is_64bit) {
    CpuState cpu = HV_TRY(enter_long_mode(memory, elf.entry));
    return BootPlan{KernelFormat::Elf, cpu,
                    fmt::format("ELF64 entry {:#x} in long mode", elf.entry)};
  }
  CpuState cpu = HV_TRY(enter_protected_mode(memory, static_cast<uint32_t>(elf.entry)));
  return BootPlan{KernelFormat::Elf, cpu,
                  fmt::format("ELF32 entry {:#x} in protected mode", elf.entry)};
}

}  // namespace hv::boot
