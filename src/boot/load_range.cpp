#include "boot/load_range.hpp"

#include <array>

#include "boot/layout.hpp"

namespace hv::boot {

namespace {

struct ReservedArea {
  uint64_t start;
  uint64_t end;
  std::string_view name;
};

// Memory below 1 MiB that hv or the PC platform owns before the guest runs.
constexpr std::array<ReservedArea, 2> kReservedAreas{{
    {0, layout::kBootDataEnd, "the BIOS data area and hv's boot tables"},
    {layout::kEbdaStart, layout::kHighMemoryStart, "the EBDA and the legacy VGA/BIOS area"},
}};

}  // namespace

std::string describe_ram(const GuestMemory& memory) {
  std::string out;
  for (const GuestMemory::Region& region : memory.regions()) {
    if (!out.empty()) {
      out += " and ";
    }
    out += fmt::format("[{:#x}, {:#x})", region.guest_address, region.guest_address + region.size);
  }
  return out;
}

Status check_load_range(const GuestMemory& memory, uint64_t address, uint64_t size,
                        std::string_view what) {
  uint64_t end = 0;
  if (__builtin_add_overflow(address, size, &end)) {
    return make_error(ExitStatus::BadImage,
                      "{} at {:#x} of {:#x} bytes wraps around the address space", what, address,
                      size);
  }
  if (size == 0) {
    return {};
  }
  for (const ReservedArea& area : kReservedAreas) {
    if (address < area.end && end > area.start) {
      return make_error(ExitStatus::BadImage, "{} [{:#x}, {:#x}) overlaps {} at [{:#x}, {:#x})",
                        what, address, end, area.name, area.start, area.end);
    }
  }
  if (!memory.contains(address, size)) {
    return make_error(ExitStatus::BadMemorySize,
                      "{} [{:#x}, {:#x}) does not fit in guest RAM ({} MiB: {})", what, address,
                      end, memory.size() >> 20, describe_ram(memory));
  }
  return {};
}

}  // namespace hv::boot
