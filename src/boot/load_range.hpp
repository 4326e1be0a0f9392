// Where a protected- or long-mode kernel and its modules may be placed in guest RAM.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "vm/guest_memory.hpp"

namespace hv::boot {

// Checks that [address, address + size) can receive part of a kernel image: it must not wrap
// around (BadImage), must stay clear of the BIOS data area, hv's boot tables and the
// EBDA/legacy area below 1 MiB (BadImage: the image asks for memory hv needs), and must be RAM
// (BadMemorySize: the guest is too small). `what` names the range in messages.
Status check_load_range(const GuestMemory& memory, uint64_t address, uint64_t size,
                        std::string_view what);

// "[0x0, 0x4000000)" or "[0x0, 0xc0000000) and [0x100000000, 0x140000000)", for messages.
std::string describe_ram(const GuestMemory& memory);

}  // namespace hv::boot
