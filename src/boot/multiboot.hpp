// Multiboot v1 kernels: the header in the first 8 KiB, the info block the kernel receives in
// EBX, and modules loaded after the kernel.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "boot/kernel_loader.hpp"
#include "common/error.hpp"
#include "vm/guest_memory.hpp"

namespace hv::boot {

constexpr uint32_t kMultibootHeaderMagic = 0x1BADB002;
constexpr uint32_t kMultibootBootloaderMagic = 0x2BADB002;
constexpr uint64_t kMultibootSearchLimit = 8192;

// Header flags.
constexpr uint32_t kMultibootPageAlign = 1u << 0;
constexpr uint32_t kMultibootMemoryInfo = 1u << 1;
constexpr uint32_t kMultibootVideoMode = 1u << 2;
constexpr uint32_t kMultibootAddressFields = 1u << 16;

// Info block flags.
constexpr uint32_t kMultibootInfoMemory = 1u << 0;
constexpr uint32_t kMultibootInfoCmdline = 1u << 2;
constexpr uint32_t kMultibootInfoModules = 1u << 3;
constexpr uint32_t kMultibootInfoMemoryMap = 1u << 6;
constexpr uint32_t kMultibootInfoBootLoaderName = 1u << 9;

// The Multiboot 0.6.96 info block up to the VBE fields, which hv leaves zero.
struct MultibootInfo {
  uint32_t flags;
  uint32_t mem_lower;  // KiB from 0
  uint32_t mem_upper;  // KiB from 1 MiB to the first hole
  uint32_t boot_device;
  uint32_t cmdline;
  uint32_t mods_count;
  uint32_t mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length;
  uint32_t mmap_addr;
  uint32_t drives_length;
  uint32_t drives_addr;
  uint32_t config_table;
  uint32_t boot_loader_name;
  uint32_t apm_table;
  uint32_t vbe_control_info;
  uint32_t vbe_mode_info;
  uint16_t vbe_mode;
  uint16_t vbe_interface_seg;
  uint16_t vbe_interface_off;
  uint16_t vbe_interface_len;
};
static_assert(sizeof(MultibootInfo) == 88);

struct [[gnu::packed]] MultibootMemoryMapEntry {
  uint32_t size;  // of the rest of the entry: 20
  uint64_t base_addr;
  uint64_t length;
  uint32_t type;
};
static_assert(sizeof(MultibootMemoryMapEntry) == 24);

struct MultibootModule {
  uint32_t mod_start;
  uint32_t mod_end;  // exclusive
  uint32_t string;
  uint32_t reserved;
};
static_assert(sizeof(MultibootModule) == 16);

struct MultibootHeader {
  uint64_t file_offset;
  uint32_t flags;
  // Valid when flags has kMultibootAddressFields.
  uint32_t header_addr;
  uint32_t load_addr;
  uint32_t load_end_addr;
  uint32_t bss_end_addr;
  uint32_t entry_addr;
};

struct MultibootScan {
  std::optional<MultibootHeader> header;        // the first magic with a valid checksum
  std::optional<uint64_t> bad_checksum_offset;  // the first magic with an invalid one
};

// Looks for the magic at 4-byte aligned offsets in the first 8 KiB, as QEMU does.
MultibootScan scan_multiboot_header(std::span<const uint8_t> image);

// --format multiboot.
Result<BootPlan> load_multiboot_kernel(GuestMemory& memory, const BootConfig& config);

}  // namespace hv::boot
