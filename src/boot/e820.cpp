#include <algorithm>

#include "boot/layout.hpp"
#include "boot/machine_tables.hpp"

namespace hv {

std::vector<E820Entry> e820_map(const GuestMemory& memory) {
  const uint64_t low_end = memory.low_memory_end();
  std::vector<E820Entry> map;
  // Conventional memory stops at the EBDA even in a guest smaller than 640 KiB would need.
  map.push_back({0, std::min(low_end, layout::kEbdaStart), kE820Ram});
  map.push_back({layout::kEbdaStart, layout::kLegacyHoleStart - layout::kEbdaStart, kE820Reserved});
  map.push_back(
      {layout::kBiosAreaStart, layout::kHighMemoryStart - layout::kBiosAreaStart, kE820Reserved});
  if (low_end > layout::kHighMemoryStart) {
    map.push_back({layout::kHighMemoryStart, low_end - layout::kHighMemoryStart, kE820Ram});
  }
  // RAM that did not fit below the 32-bit MMIO hole, relocated above 4 GiB.
  for (const GuestMemory::Region& region : memory.regions().subspan(1)) {
    map.push_back({region.guest_address, region.size, kE820Ram});
  }
  return map;
}

}  // namespace hv
