#include "boot/linux_boot.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "boot/acpi.hpp"
#include "boot/boot_cpu_state.hpp"
#include "boot/image_bytes.hpp"
#include "boot/layout.hpp"
#include "boot/load_range.hpp"
#include "boot/machine_tables.hpp"

namespace hv::boot {

namespace {

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kSectorSize = 512;
// The boot sector and setup code must fit below the real-mode heap: 0x8000 bytes.
constexpr uint64_t kMaxSetupBytes = 0x8000;
constexpr uint64_t kShortJumpOpcode = 0xeb;
// The real-mode heap end a 16-bit loader would use; meaningless for the 64-bit entry but the
// kernel sanity-checks it when CAN_USE_HEAP is set.
constexpr uint16_t kHeapEnd = 0xe000 - 0x200;

struct [[gnu::packed]] BootE820Entry {
  uint64_t address;
  uint64_t size;
  uint32_t type;
};
static_assert(sizeof(BootE820Entry) == 20);

// Boot sector plus setup sectors; setup_sects 0 means 4 for historical reasons.
uint64_t setup_bytes(std::span<const uint8_t> image) {
  const uint64_t sectors = image[zero_page::kSetupSects] == 0 ? 4 : image[zero_page::kSetupSects];
  return (sectors + 1) * kSectorSize;
}

uint64_t setup_header_end(std::span<const uint8_t> image) {
  return zero_page::kHeaderMagic + image[zero_page::kJump + 1];
}

std::string protocol_version(uint16_t version) {
  return fmt::format("{}.{:02}", version >> 8, version & 0xff);
}

}  // namespace

bool has_linux_header(std::span<const uint8_t> image) {
  return image.size() >= zero_page::kHeaderMagic + 4 &&
         std::memcmp(image.data() + zero_page::kHeaderMagic, "HdrS", 4) == 0;
}

Status validate_linux_header(std::span<const uint8_t> image, std::string_view path) {
  if (!has_linux_header(image)) {
    return make_error(ExitStatus::BadImage, "'{}' is not a Linux bzImage (no \"HdrS\" at 0x202)",
                      path);
  }
  if (image.size() < zero_page::kVersion + 2) {
    return make_error(ExitStatus::BadImage, "Linux kernel '{}' is truncated ({} bytes)", path,
                      image.size());
  }
  const auto version = load_le<uint16_t>(image, zero_page::kVersion);
  if (version < kMinBootProtocol) {
    return make_error(ExitStatus::BadImage,
                      "Linux kernel '{}' uses boot protocol {}; hv needs {} or newer (Linux 3.8+) "
                      "for the 64-bit entry point",
                      path, protocol_version(version), protocol_version(kMinBootProtocol));
  }
  const uint64_t setup_size = setup_bytes(image);
  if (setup_size > kMaxSetupBytes) {
    return make_error(ExitStatus::BadImage,
                      "Linux kernel '{}' has {} setup sectors; the setup code may take at most "
                      "{:#x} bytes",
                      path, image[zero_page::kSetupSects], kMaxSetupBytes);
  }
  if (image.size() <= setup_size) {
    return make_error(ExitStatus::BadImage,
                      "Linux kernel '{}' is truncated: {} bytes, but its setup code alone takes {}",
                      path, image.size(), setup_size);
  }
  // From here on the whole setup header (at most 0x301 bytes in) lies inside the image.
  if (image[zero_page::kJump] != kShortJumpOpcode ||
      setup_header_end(image) < zero_page::kSetupHeaderMinEnd) {
    return make_error(ExitStatus::BadImage,
                      "Linux kernel '{}' has an inconsistent setup header (it ends at {:#x}; "
                      "protocol {} needs at least {:#x})",
                      path, setup_header_end(image), protocol_version(version),
                      zero_page::kSetupHeaderMinEnd);
  }
  if (load_le<uint16_t>(image, zero_page::kBootFlag) != kLinuxBootFlag) {
    return make_error(ExitStatus::BadImage, "Linux kernel '{}' lacks the 0xaa55 boot flag", path);
  }
  if ((image[zero_page::kLoadFlags] & kLoadedHigh) == 0) {
    return make_error(ExitStatus::BadImage,
                      "Linux kernel '{}' is a zImage (loaded below 1 MiB); hv loads bzImages",
                      path);
  }
  if ((load_le<uint16_t>(image, zero_page::kXLoadFlags) & kXlfKernel64) == 0) {
    return make_error(ExitStatus::BadImage,
                      "Linux kernel '{}' has no 64-bit entry point (XLF_KERNEL_64 clear in "
                      "xloadflags): hv boots only 64-bit kernels",
                      path);
  }
  const uint64_t declared_size = uint64_t{load_le<uint32_t>(image, zero_page::kSysSize)} * 16;
  if (declared_size > image.size() - setup_size) {
    return make_error(ExitStatus::BadImage,
                      "Linux kernel '{}' is truncated: its header declares {} bytes of "
                      "protected-mode code, the file holds {}",
                      path, declared_size, image.size() - setup_size);
  }
  return {};
}

Result<BootPlan> load_linux_kernel(GuestMemory& memory, const BootConfig& config) {
  const std::span<const uint8_t> image = config.kernel;
  const std::string& path = config.kernel_path;
  HV_TRY(validate_linux_header(image, path));
  if (config.initrds.size() > 1) {
    return make_error(ExitStatus::Usage, "a Linux kernel takes one initrd, not {}",
                      config.initrds.size());
  }

  const uint64_t setup_size = setup_bytes(image);
  const std::span<const uint8_t> payload = image.subspan(setup_size);
  // A kernel loaded below pref_address (its LOAD_PHYSICAL_ADDR, 16 MiB for distribution kernels)
  // first moves itself up there, then decompresses into init_size bytes from there
  // (arch/x86/boot/compressed/head_64.S): all of it must be RAM, and the initrd must stay clear.
  const uint64_t run_address =
      std::max(kLinuxLoadAddress, load_le<uint64_t>(image, zero_page::kPrefAddress));
  uint64_t kernel_end = 0;
  if (__builtin_add_overflow(run_address, uint64_t{load_le<uint32_t>(image, zero_page::kInitSize)},
                             &kernel_end)) {
    return make_error(ExitStatus::BadImage,
                      "Linux kernel '{}' has an impossible pref_address {:#x}", path, run_address);
  }
  kernel_end = std::max(kernel_end, kLinuxLoadAddress + payload.size());
  HV_TRY(check_load_range(memory, kLinuxLoadAddress, kernel_end - kLinuxLoadAddress,
                          fmt::format("Linux kernel '{}' (to pref_address + init_size)", path)));

  const uint32_t cmdline_limit = load_le<uint32_t>(image, zero_page::kCmdlineSize);
  if (config.cmdline.size() > cmdline_limit || config.cmdline.size() >= layout::kCmdlineMax) {
    return make_error(
        ExitStatus::Usage, "the kernel command line is {} bytes; '{}' accepts at most {}",
        config.cmdline.size(), path, std::min<uint64_t>(cmdline_limit, layout::kCmdlineMax - 1));
  }

  uint64_t ramdisk_address = 0;
  uint64_t ramdisk_size = 0;
  if (!config.initrds.empty()) {
    const BootModule& initrd = config.initrds.front();
    ramdisk_size = initrd.data.size();
    // As high as possible, so the kernel's early allocations below it have room.
    const uint64_t top = std::min(uint64_t{load_le<uint32_t>(image, zero_page::kInitrdAddrMax)} + 1,
                                  memory.low_memory_end());
    const uint64_t lowest = align_up(kernel_end, kPageSize);
    if (ramdisk_size > top || align_down(top - ramdisk_size, kPageSize) < lowest) {
      return make_error(ExitStatus::BadMemorySize,
                        "initrd '{}' ({} bytes) does not fit between the kernel's end {:#x} and "
                        "{:#x}, the lower of its initrd_addr_max and the end of low guest RAM",
                        initrd.path, ramdisk_size, lowest, top);
    }
    ramdisk_address = align_down(top - ramdisk_size, kPageSize);
  }

  std::array<uint8_t, zero_page::kSize> boot_params{};
  const uint64_t header_end = setup_header_end(image);
  std::memcpy(boot_params.data() + zero_page::kSetupHeader, image.data() + zero_page::kSetupHeader,
              header_end - zero_page::kSetupHeader);
  boot_params[zero_page::kTypeOfLoader] = kLoaderTypeUndefined;
  boot_params[zero_page::kLoadFlags] |= kLoadedHigh | kCanUseHeap;
  store_le<uint16_t>(boot_params, zero_page::kHeapEndPtr, kHeapEnd);
  store_le<uint16_t>(boot_params, zero_page::kVidMode, kVidModeNormal);
  store_le<uint32_t>(boot_params, zero_page::kCode32Start, kLinuxLoadAddress);
  store_le<uint32_t>(boot_params, zero_page::kCmdLinePtr, layout::kKernelCmdline);
  store_le<uint32_t>(boot_params, zero_page::kExtCmdLinePtr, 0);
  // Low RAM ends below 4 GiB, so the ext_ halves stay zero.
  store_le<uint32_t>(boot_params, zero_page::kRamdiskImage, static_cast<uint32_t>(ramdisk_address));
  store_le<uint32_t>(boot_params, zero_page::kRamdiskSize, static_cast<uint32_t>(ramdisk_size));
  store_le<uint32_t>(boot_params, zero_page::kExtRamdiskImage, 0);
  store_le<uint32_t>(boot_params, zero_page::kExtRamdiskSize, 0);
  const std::vector<E820Entry> map = e820_map(memory);
  const uint64_t entry_count = std::min<uint64_t>(map.size(), zero_page::kE820MaxEntries);
  boot_params[zero_page::kE820Entries] = static_cast<uint8_t>(entry_count);
  for (uint64_t i = 0; i < entry_count; ++i) {
    const BootE820Entry entry{map[i].address, map[i].size, map[i].type};
    std::memcpy(boot_params.data() + zero_page::kE820Table + i * sizeof(BootE820Entry), &entry,
                sizeof(entry));
  }
  // load_kernel writes the ACPI tables on the same condition. Kernels that predate the field
  // ignore it and find the RSDP by scanning the BIOS area, where it also is.
  if (has_acpi_area(memory)) {
    store_le<uint64_t>(boot_params, zero_page::kAcpiRsdpAddr, acpi::kRsdpAddress);
  }

  HV_TRY(memory.write(kLinuxLoadAddress, payload));
  HV_TRY(memory.write_object(layout::kBootParams, boot_params));
  const std::string terminated_cmdline = config.cmdline + '\0';
  HV_TRY(memory.write(layout::kKernelCmdline,
                      std::span(reinterpret_cast<const uint8_t*>(terminated_cmdline.data()),
                                terminated_cmdline.size())));
  // An empty vector's data() may be null, which memcpy must not see even for 0 bytes.
  if (ramdisk_size != 0) {
    HV_TRY(memory.write(ramdisk_address, config.initrds.front().data));
  }

  CpuState cpu = HV_TRY(enter_long_mode(memory, kLinuxLoadAddress + kLinux64BitEntryOffset));
  cpu.gpr[kRsi] = layout::kBootParams;
  std::string summary =
      fmt::format("Linux bzImage (boot protocol {}) entry {:#x} in long mode",
                  protocol_version(load_le<uint16_t>(image, zero_page::kVersion)), cpu.rip);
  if (!config.initrds.empty()) {
    summary += fmt::format(", initrd of {} bytes at {:#x}", ramdisk_size, ramdisk_address);
  }
  return BootPlan{KernelFormat::Linux, cpu, std::move(summary)};
}

}  // namespace hv::boot
