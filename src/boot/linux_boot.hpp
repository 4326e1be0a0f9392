// Linux bzImage through the x86 64-bit boot protocol (Documentation/arch/x86/boot.rst): the
// protected-mode kernel at 1 MiB, the zero page, the command line and the initrd, entered at
// the 64-bit entry point with identity paging.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "boot/kernel_loader.hpp"
#include "common/error.hpp"
#include "vm/guest_memory.hpp"

namespace hv::boot {

// Offsets in the image and in struct boot_params (the zero page), which share the setup header.
namespace zero_page {
constexpr uint64_t kAcpiRsdpAddr = 0x070;  // u64, read by Linux 5.0+ (boot protocol 2.14+)
constexpr uint64_t kExtRamdiskImage = 0x0c0;
constexpr uint64_t kExtRamdiskSize = 0x0c4;
constexpr uint64_t kExtCmdLinePtr = 0x0c8;
constexpr uint64_t kE820Entries = 0x1e8;
constexpr uint64_t kSetupHeader = 0x1f1;  // start of struct setup_header
constexpr uint64_t kSetupSects = 0x1f1;
constexpr uint64_t kSysSize = 0x1f4;
constexpr uint64_t kVidMode = 0x1fa;
constexpr uint64_t kBootFlag = 0x1fe;
constexpr uint64_t kJump = 0x200;
constexpr uint64_t kHeaderMagic = 0x202;  // "HdrS"
constexpr uint64_t kVersion = 0x206;
constexpr uint64_t kTypeOfLoader = 0x210;
constexpr uint64_t kLoadFlags = 0x211;
constexpr uint64_t kCode32Start = 0x214;
constexpr uint64_t kRamdiskImage = 0x218;
constexpr uint64_t kRamdiskSize = 0x21c;
constexpr uint64_t kHeapEndPtr = 0x224;
constexpr uint64_t kCmdLinePtr = 0x228;
constexpr uint64_t kInitrdAddrMax = 0x22c;
constexpr uint64_t kXLoadFlags = 0x236;
constexpr uint64_t kCmdlineSize = 0x238;
constexpr uint64_t kPrefAddress = 0x258;
constexpr uint64_t kInitSize = 0x260;
constexpr uint64_t kSetupHeaderMinEnd = 0x268;  // through handover_offset (protocol 2.12)
constexpr uint64_t kE820Table = 0x2d0;
constexpr uint64_t kE820MaxEntries = 128;
constexpr uint64_t kSize = 0x1000;
}  // namespace zero_page

constexpr uint16_t kLinuxBootFlag = 0xaa55;
constexpr uint16_t kMinBootProtocol = 0x020c;   // 2.12: xloadflags, the 64-bit entry point
constexpr uint8_t kLoadedHigh = 1u << 0;        // loadflags: protected-mode code at 1 MiB
constexpr uint8_t kCanUseHeap = 1u << 7;        // loadflags: heap_end_ptr is valid
constexpr uint16_t kXlfKernel64 = 1u << 0;      // xloadflags: 64-bit entry at +0x200
constexpr uint8_t kLoaderTypeUndefined = 0xff;  // type_of_loader for loaders without an ID
constexpr uint16_t kVidModeNormal = 0xffff;     // "normal" VGA text mode
constexpr uint64_t kLinuxLoadAddress = 0x100000;
constexpr uint64_t kLinux64BitEntryOffset = 0x200;

// "HdrS" at 0x202.
bool has_linux_header(std::span<const uint8_t> image);

// Boot protocol 2.12+, a 64-bit entry point, a consistent setup header.
Status validate_linux_header(std::span<const uint8_t> image, std::string_view path);

// --format linux.
Result<BootPlan> load_linux_kernel(GuestMemory& memory, const BootConfig& config);

}  // namespace hv::boot
