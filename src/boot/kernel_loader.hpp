// Loads a kernel image into guest memory and says how the bootstrap CPU must start.
//
// Formats (detected from the file, or forced with --format):
//  - multiboot: Multiboot v1 header in the first 8 KiB (takes precedence over ELF, as QEMU does)
//  - elf:       ELF32 entered in 32-bit protected mode, ELF64 entered in 64-bit long mode
//  - linux:     bzImage, Linux x86 boot protocol 2.12+, 64-bit entry
//  - flat:      raw bytes at a load address, started in real mode (never auto-detected: a file
//               with no recognisable header is an error unless --format flat is given)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "boot/acpi.hpp"
#include "common/error.hpp"
#include "vm/cpu_state.hpp"
#include "vm/guest_memory.hpp"

namespace hv {

enum class KernelFormat { Auto, Multiboot, Elf, Linux, Flat };

std::string_view to_string(KernelFormat format);
Result<KernelFormat> parse_kernel_format(std::string_view name);  // "auto", "elf", ...

struct BootModule {
  std::string path;
  std::vector<uint8_t> data;
};

struct BootConfig {
  std::string kernel_path;  // for messages
  std::vector<uint8_t> kernel;
  // Linux: at most one initrd. Multiboot: each is a module, its path as the module string.
  std::vector<BootModule> initrds;
  std::string cmdline;
  KernelFormat format = KernelFormat::Auto;
  uint64_t flat_load_address = 0x7c00;
  uint32_t cpu_count = 1;
  std::vector<acpi::MmioDevice> acpi_devices;  // announced in the DSDT (virtio-mmio)
};

struct BootPlan {
  KernelFormat format;
  CpuState bsp;         // initial state of vCPU 0
  std::string summary;  // e.g. "ELF64 entry 0x100000 in long mode"
};

// Errors use ExitStatus::BadImage for anything wrong with the image itself,
// ExitStatus::BadMemorySize when it does not fit the guest's memory and ExitStatus::Usage when the
// configuration cannot be honoured (command line too long, initrd given to an ELF kernel, ...).
//
// Never returns KernelFormat::Flat or KernelFormat::Auto. `path` only names the file in messages.
Result<KernelFormat> detect_kernel_format(std::span<const uint8_t> image,
                                          std::string_view path = "kernel");

// Loads the kernel (and initrds/modules), writes the boot tables the format needs, the MP table
// for config.cpu_count vCPUs (skipped for a flat binary in a guest too small to hold the EBDA
// when there is one vCPU) and the ACPI tables (skipped when guest RAM does not reach their area
// at 0xe0000), and returns the bootstrap CPU's initial state. A forced format is validated like
// a detected one. The cmdline is ignored by ELF and flat kernels; initrds are an error for them.
Result<BootPlan> load_kernel(GuestMemory& memory, const BootConfig& config);

}  // namespace hv
