#include "boot/flat_loader.hpp"

#include "boot/layout.hpp"
#include "boot/load_range.hpp"

namespace hv::boot {

namespace {

constexpr uint64_t kRealModeSegmentReach = 0x10000;  // what IP alone can address with CS = 0
constexpr uint64_t kParagraph = 16;

}  // namespace

Result<BootPlan> load_flat_kernel(GuestMemory& memory, const BootConfig& config) {
  const uint64_t address = config.flat_load_address;
  const uint64_t size = config.kernel.size();
  if (address >= layout::kHighMemoryStart) {
    return make_error(ExitStatus::Usage,
                      "flat load address {:#x} is not below 1 MiB, which real mode cannot reach",
                      address);
  }
  if (address >= kRealModeSegmentReach && address % kParagraph != 0) {
    return make_error(ExitStatus::Usage,
                      "flat load address {:#x} is above 64 KiB and not 16-byte aligned, so no "
                      "CS:0 reaches it",
                      address);
  }
  // The EBDA is reserved in e820 and holds the MP table; above it lies the legacy VGA/BIOS area.
  if (size > layout::kEbdaStart || address > layout::kEbdaStart - size) {
    return make_error(ExitStatus::BadImage,
                      "flat binary '{}' ({} bytes at {:#x}) runs into the EBDA and legacy area at "
                      "{:#x}",
                      config.kernel_path, size, address, layout::kEbdaStart);
  }
  if (!memory.contains(address, size)) {
    return make_error(ExitStatus::BadMemorySize,
                      "flat binary '{}' ({} bytes at {:#x}) does not fit in guest RAM ({})",
                      config.kernel_path, size, address, describe_ram(memory));
  }
  HV_TRY(memory.write(address, config.kernel));

  const auto code_segment =
      static_cast<uint16_t>(address < kRealModeSegmentReach ? 0 : address >> 4);
  const auto ip = static_cast<uint16_t>(address - (uint64_t{code_segment} << 4));
  return BootPlan{KernelFormat::Flat, CpuState::real_mode(code_segment, ip),
                  fmt::format("flat binary of {} bytes at {:#x} in real mode, CS:IP {:04x}:{:04x}",
                              size, address, code_segment, ip)};
}

}  // namespace hv::boot
