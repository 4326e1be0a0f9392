// Raw binaries: the file's bytes at a load address below 1 MiB, started in real mode.
#pragma once

#include "boot/kernel_loader.hpp"
#include "common/error.hpp"
#include "vm/guest_memory.hpp"

namespace hv::boot {

// --format flat: CS:IP = 0:address below 64 KiB, (address >> 4):0 above (16-byte aligned).
Result<BootPlan> load_flat_kernel(GuestMemory& memory, const BootConfig& config);

}  // namespace hv::boot
