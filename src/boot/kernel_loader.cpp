// Format detection and dispatch to the loader of each format.
#include "boot/kernel_loader.hpp"

#include "boot/acpi.hpp"
#include "boot/elf_loader.hpp"
#include "boot/flat_loader.hpp"
#include "boot/layout.hpp"
#include "boot/linux_boot.hpp"
#include "boot/machine_tables.hpp"
#include "boot/multiboot.hpp"

namespace hv {

std::string_view to_string(KernelFormat format) {
  switch (format) {
    case KernelFormat::Auto:
      return "auto";
    case KernelFormat::Multiboot:
      return "multiboot";
    case KernelFormat::Elf:
      return "elf";
    case KernelFormat::Linux:
      return "linux";
    case KernelFormat::Flat:
      return "flat";
  }
  return "unknown";
}

Result<KernelFormat> parse_kernel_format(std::string_view name) {
  for (KernelFormat format : {KernelFormat::Auto, KernelFormat::Multiboot, KernelFormat::Elf,
                              KernelFormat::Linux, KernelFormat::Flat}) {
    if (name == to_string(format)) {
      return format;
    }
  }
  return make_error(ExitStatus::Usage,
                    "unknown kernel format '{}' (expected auto, multiboot, elf, linux or flat)",
                    name);
}

Result<KernelFormat> detect_kernel_format(std::span<const uint8_t> image, std::string_view path) {
  // A multiboot header wins over the ELF header around it, as with QEMU's -kernel: the kernel
  // asked for multiboot's info block.
  const boot::MultibootScan multiboot = boot::scan_multiboot_header(image);
  if (multiboot.header) {
    return KernelFormat::Multiboot;
  }
  // A file with an ELF or bzImage signature is that format; a flaw in it is reported as such
  // rather than as an unrecognised file.
  if (boot::has_elf_magic(image)) {
    HV_TRY(boot::validate_elf_header(image, path));
    return KernelFormat::Elf;
  }
  if (boot::has_linux_header(image)) {
    HV_TRY(boot::validate_linux_header(image, path));
    return KernelFormat::Linux;
  }
  std::string hint;
  if (multiboot.bad_checksum_offset) {
    hint = fmt::format("; the multiboot magic at offset {:#x} has a bad checksum",
                       *multiboot.bad_checksum_offset);
  }
  return make_error(ExitStatus::BadImage,
                    "unrecognised kernel format in '{}' (use --format flat for a raw binary){}",
                    path, hint);
}

Result<BootPlan> load_kernel(GuestMemory& memory, const BootConfig& config) {
  if (config.kernel.empty()) {
    return make_error(ExitStatus::BadImage, "kernel '{}' is empty", config.kernel_path);
  }
  const KernelFormat format = config.format == KernelFormat::Auto
                                  ? HV_TRY(detect_kernel_format(config.kernel, config.kernel_path))
                                  : config.format;
  if (!config.initrds.empty() && (format == KernelFormat::Elf || format == KernelFormat::Flat)) {
    return make_error(ExitStatus::Usage,
                      "'{}' is loaded as {}, which has no way to receive an initrd; use a "
                      "multiboot or Linux kernel",
                      config.kernel_path, to_string(format));
  }

  BootPlan plan{};
  switch (format) {
    case KernelFormat::Multiboot:
      plan = HV_TRY(boot::load_multiboot_kernel(memory, config));
      break;
    case KernelFormat::Elf:
      plan = HV_TRY(boot::load_elf_kernel(memory, config));
      break;
    case KernelFormat::Linux:
      plan = HV_TRY(boot::load_linux_kernel(memory, config));
      break;
    case KernelFormat::Flat:
      plan = HV_TRY(boot::load_flat_kernel(memory, config));
      break;
    case KernelFormat::Auto:
      break;  // resolved above
  }
  // A flat binary may run in a guest too small for the EBDA; it then has no MP table, which only
  // matters when there are other vCPUs to describe.
  const bool has_ebda = memory.contains(layout::kEbdaStart, layout::kEbdaSize);
  if (format != KernelFormat::Flat || has_ebda || config.cpu_count > 1) {
    HV_TRY(write_mp_table(memory, config.cpu_count));
  }
  // Kernels without MP table support (Linux without CONFIG_X86_MPPARSE) find their CPUs, the
  // IOAPIC, the PM timer and power-off only here. A flat binary in a guest too small for the
  // area goes without, as without the MP table.
  if (has_acpi_area(memory)) {
    HV_TRY(write_acpi_tables(memory, config.cpu_count, config.acpi_devices));
  }
  return plan;
}

}  // namespace hv
