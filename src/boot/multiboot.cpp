#include "boot/multiboot.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "boot/boot_cpu_state.hpp"
#include "boot/elf_loader.hpp"
#include "boot/image_bytes.hpp"
#include "boot/layout.hpp"
#include "boot/load_range.hpp"
#include "boot/machine_tables.hpp"

namespace hv::boot {

namespace {

constexpr uint64_t k4GiB = 0x1'0000'0000;
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kHeaderSize = 12;               // magic, flags, checksum
constexpr uint64_t kHeaderWithAddressesSize = 32;  // ... and the five address fields
// Bits 0-15 are requirements a loader must honour or refuse; bits 16-31 are optional.
constexpr uint32_t kRequiredFlagsMask = 0xffff;
constexpr uint32_t kSupportedRequiredFlags =
    kMultibootPageAlign | kMultibootMemoryInfo | kMultibootVideoMode;  // video: ignored

// Where the kernel ended up: its entry point and one past its highest byte.
struct LoadedKernel {
  uint32_t entry;
  uint64_t end;
};

Result<LoadedKernel> load_with_address_fields(GuestMemory& memory, std::span<const uint8_t> image,
                                              const MultibootHeader& header,
                                              std::string_view path) {
  const uint64_t searched = std::min<uint64_t>(image.size(), kMultibootSearchLimit);
  if (!range_within(header.file_offset, kHeaderWithAddressesSize, searched)) {
    return make_error(ExitStatus::BadImage,
                      "multiboot header of '{}' at offset {:#x} is cut off before its address "
                      "fields",
                      path, header.file_offset);
  }
  if (header.load_addr > header.header_addr) {
    return make_error(ExitStatus::BadImage,
                      "multiboot header of '{}': load_addr {:#x} is above header_addr {:#x}", path,
                      header.load_addr, header.header_addr);
  }
  const uint64_t header_distance = header.header_addr - header.load_addr;
  if (header_distance > header.file_offset) {
    return make_error(ExitStatus::BadImage,
                      "multiboot header of '{}': header_addr - load_addr = {:#x} reaches before "
                      "the start of the file (header at offset {:#x})",
                      path, header_distance, header.file_offset);
  }
  const uint64_t load_offset = header.file_offset - header_distance;
  const uint64_t available = image.size() - load_offset;
  uint64_t load_size = available;
  if (header.load_end_addr != 0) {
    if (header.load_end_addr < header.load_addr) {
      return make_error(ExitStatus::BadImage,
                        "multiboot header of '{}': load_end_addr {:#x} is below load_addr {:#x}",
                        path, header.load_end_addr, header.load_addr);
    }
    load_size = header.load_end_addr - header.load_addr;
    if (load_size > available) {
      return make_error(ExitStatus::BadImage,
                        "multiboot kernel '{}' is truncated: it loads {:#x} bytes from offset "
                        "{:#x} but the file has {} bytes",
                        path, load_size, load_offset, image.size());
    }
  }
  const uint64_t load_end = uint64_t{header.load_addr} + load_size;
  uint64_t end = load_end;
  if (header.bss_end_addr != 0) {
    if (header.bss_end_addr < load_end) {
      return make_error(ExitStatus::BadImage,
                        "multiboot header of '{}': bss_end_addr {:#x} is below the end of the "
                        "loaded image {:#x}",
                        path, header.bss_end_addr, load_end);
    }
    end = header.bss_end_addr;
  }
  if (end > k4GiB) {
    return make_error(ExitStatus::BadImage, "multiboot kernel '{}' extends past 4 GiB to {:#x}",
                      path, end);
  }
  if (header.entry_addr < header.load_addr || header.entry_addr >= end) {
    return make_error(ExitStatus::BadImage,
                      "multiboot header of '{}': entry_addr {:#x} is outside the kernel [{:#x}, "
                      "{:#x})",
                      path, header.entry_addr, header.load_addr, end);
  }
  HV_TRY(check_load_range(memory, header.load_addr, end - header.load_addr, "multiboot kernel"));
  HV_TRY(memory.write(header.load_addr, image.subspan(load_offset, load_size)));
  HV_TRY(memory.fill(load_end, 0, end - load_end));
  return LoadedKernel{header.entry_addr, end};
}

Result<LoadedKernel> load_elf_image(GuestMemory& memory, std::span<const uint8_t> image,
                                    std::string_view path) {
  if (!has_elf_magic(image)) {
    return make_error(ExitStatus::BadImage,
                      "multiboot kernel '{}' has no address fields (header flag 16), so it must "
                      "be an ELF32 file, and it is not ELF",
                      path);
  }
  ElfImage elf = HV_TRY(parse_elf(image, path));
  if (elf.is_64bit) {
    return make_error(ExitStatus::BadImage,
                      "multiboot kernel '{}' is ELF64: Multiboot v1 loads ELF32 files, or any "
                      "file whose header has address fields (flag 16)",
                      path);
  }
  HV_TRY(load_elf_segments(memory, image, elf));
  return LoadedKernel{static_cast<uint32_t>(elf.entry), elf.end_address};
}

// The multiboot strings area: NUL-terminated strings addressed from the guest.
class StringArea {
 public:
  uint32_t add(std::string_view text) {
    const auto address = static_cast<uint32_t>(layout::kMultibootStrings + bytes_.size());
    bytes_.append(text);
    bytes_.push_back('\0');
    return address;
  }
  std::span<const uint8_t> bytes() const {
    return {reinterpret_cast<const uint8_t*>(bytes_.data()), bytes_.size()};
  }

 private:
  std::string bytes_;
};

uint32_t kib(uint64_t bytes) {
  return static_cast<uint32_t>(bytes >> 10);
}

}  // namespace

MultibootScan scan_multiboot_header(std::span<const uint8_t> image) {
  MultibootScan scan;
  const uint64_t searched = std::min<uint64_t>(image.size(), kMultibootSearchLimit);
  for (uint64_t offset = 0; offset + kHeaderSize <= searched; offset += 4) {
    if (load_le<uint32_t>(image, offset) != kMultibootHeaderMagic) {
      continue;
    }
    const auto flags = load_le<uint32_t>(image, offset + 4);
    const auto checksum = load_le<uint32_t>(image, offset + 8);
    if (static_cast<uint32_t>(kMultibootHeaderMagic + flags + checksum) != 0) {
      if (!scan.bad_checksum_offset) {
        scan.bad_checksum_offset = offset;
      }
      continue;
    }
    MultibootHeader header{offset, flags, 0, 0, 0, 0, 0};
    if (range_within(offset, kHeaderWithAddressesSize, searched)) {
      header.header_addr = load_le<uint32_t>(image, offset + 12);
      header.load_addr = load_le<uint32_t>(image, offset + 16);
      header.load_end_addr = load_le<uint32_t>(image, offset + 20);
      header.bss_end_addr = load_le<uint32_t>(image, offset + 24);
      header.entry_addr = load_le<uint32_t>(image, offset + 28);
    }
    scan.header = header;
    break;
  }
  return scan;
}

Result<BootPlan> load_multiboot_kernel(GuestMemory& memory, const BootConfig& config) {
  const std::span<const uint8_t> image = config.kernel;
  const std::string& path = config.kernel_path;
  const MultibootScan scan = scan_multiboot_header(image);
  if (!scan.header) {
    if (scan.bad_checksum_offset) {
      return make_error(ExitStatus::BadImage,
                        "'{}' has no valid multiboot header: the magic at offset {:#x} has a bad "
                        "checksum",
                        path, *scan.bad_checksum_offset);
    }
    return make_error(ExitStatus::BadImage,
                      "'{}' has no multiboot header (magic {:#x}) in its first 8 KiB", path,
                      kMultibootHeaderMagic);
  }
  const MultibootHeader& header = *scan.header;
  const uint32_t unsupported = header.flags & kRequiredFlagsMask & ~kSupportedRequiredFlags;
  if (unsupported != 0) {
    return make_error(ExitStatus::BadImage,
                      "multiboot kernel '{}' requires features hv does not provide (header flags "
                      "{:#x})",
                      path, unsupported);
  }

  const LoadedKernel kernel = (header.flags & kMultibootAddressFields) != 0
                                  ? HV_TRY(load_with_address_fields(memory, image, header, path))
                                  : HV_TRY(load_elf_image(memory, image, path));

  // Modules go page-aligned after the kernel, and never below 1 MiB where hv keeps its tables.
  std::vector<MultibootModule> modules;
  StringArea strings;
  const std::string cmdline =
      config.cmdline.empty() ? path : fmt::format("{} {}", path, config.cmdline);
  const uint32_t cmdline_address = strings.add(cmdline);
  uint64_t next_module = std::max(align_up(kernel.end, kPageSize), layout::kHighMemoryStart);
  for (const BootModule& module : config.initrds) {
    HV_TRY(check_load_range(memory, next_module, module.data.size(),
                            fmt::format("multiboot module '{}'", module.path)));
    const uint64_t module_end = next_module + module.data.size();
    if (module_end > k4GiB) {
      return make_error(ExitStatus::BadMemorySize,
                        "multiboot module '{}' would end at {:#x}, above 4 GiB", module.path,
                        module_end);
    }
    if (!module.data.empty()) {  // an empty vector's data() may be null: no memcpy for it
      HV_TRY(memory.write(next_module, module.data));
    }
    modules.push_back({static_cast<uint32_t>(next_module), static_cast<uint32_t>(module_end),
                       strings.add(module.path), 0});
    next_module = align_up(module_end, kPageSize);
  }
  const uint32_t loader_name_address = strings.add("hv");
  if (strings.bytes().size() > layout::kMultibootStringsSize) {
    return make_error(ExitStatus::Usage,
                      "the multiboot command line and module paths take {} bytes; hv has room "
                      "for {}",
                      strings.bytes().size(), layout::kMultibootStringsSize);
  }

  std::vector<MultibootMemoryMapEntry> memory_map;
  MultibootInfo info{};
  for (const E820Entry& entry : e820_map(memory)) {
    memory_map.push_back({sizeof(MultibootMemoryMapEntry) - sizeof(uint32_t), entry.address,
                          entry.size, entry.type});
    if (entry.type == kE820Ram && entry.address == 0) {
      info.mem_lower = kib(entry.size);
    }
    if (entry.type == kE820Ram && entry.address == layout::kHighMemoryStart) {
      info.mem_upper = kib(entry.size);
    }
  }
  const uint64_t memory_map_address = layout::kMultibootInfo + align_up(sizeof(MultibootInfo), 16);
  const uint64_t memory_map_bytes = memory_map.size() * sizeof(MultibootMemoryMapEntry);
  const uint64_t modules_address = align_up(memory_map_address + memory_map_bytes, 16);
  const uint64_t modules_bytes = modules.size() * sizeof(MultibootModule);
  if (modules_address + modules_bytes > layout::kMultibootInfo + layout::kMultibootInfoSize) {
    return make_error(ExitStatus::Usage,
                      "too many multiboot modules ({}): the info area has room for {}",
                      modules.size(),
                      (layout::kMultibootInfo + layout::kMultibootInfoSize - modules_address) /
                          sizeof(MultibootModule));
  }

  info.flags = kMultibootInfoMemory | kMultibootInfoCmdline | kMultibootInfoModules |
               kMultibootInfoMemoryMap | kMultibootInfoBootLoaderName;
  info.cmdline = cmdline_address;
  info.mods_count = static_cast<uint32_t>(modules.size());
  info.mods_addr = static_cast<uint32_t>(modules_address);
  info.mmap_length = static_cast<uint32_t>(memory_map_bytes);
  info.mmap_addr = static_cast<uint32_t>(memory_map_address);
  info.boot_loader_name = loader_name_address;

  HV_TRY(memory.fill(layout::kMultibootInfo, 0, layout::kMultibootInfoSize));
  HV_TRY(memory.write_object(layout::kMultibootInfo, info));
  HV_TRY(memory.write(
      memory_map_address,
      std::span(reinterpret_cast<const uint8_t*>(memory_map.data()), memory_map_bytes)));
  if (!modules.empty()) {
    HV_TRY(memory.write(modules_address, std::span(reinterpret_cast<const uint8_t*>(modules.data()),
                                                   modules_bytes)));
  }
  HV_TRY(memory.write(layout::kMultibootStrings, strings.bytes()));

  CpuState cpu = HV_TRY(enter_protected_mode(memory, kernel.entry));
  cpu.gpr[kRax] = kMultibootBootloaderMagic;
  cpu.gpr[kRbx] = layout::kMultibootInfo;
  return BootPlan{KernelFormat::Multiboot, cpu,
                  fmt::format("multiboot entry {:#x} in protected mode, {} module{}", kernel.entry,
                              modules.size(), modules.size() == 1 ? "" : "s")};
}

}  // namespace hv::boot
