// The emulated CPU's identity and feature table. Every bit set here is a promise: the guest
// (Linux above all) picks code paths from it, so it lists only what the interpreter implements.
#include "emu/cpuid.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>

#include "devices/hypercalls.hpp"
#include "emu/cpu.hpp"

namespace hv::emu {
namespace {

constexpr uint32_t kMaxBasicLeaf = 0x16;
constexpr uint32_t kMaxExtendedLeaf = 0x80000008;
constexpr uint32_t kHypervisorLeaf = 0x40000000;

// Four characters of a string as CPUID returns them in one register (little-endian).
constexpr uint32_t chars(const char* s) {
  return static_cast<uint32_t>(static_cast<uint8_t>(s[0])) |
         static_cast<uint32_t>(static_cast<uint8_t>(s[1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[3])) << 24;
}

// 48 bytes, NUL-padded.
constexpr char kBrand[49] = "hv emulated x86-64 CPU";

uint32_t brand_word(uint32_t leaf, uint32_t reg) {
  const uint32_t index = (leaf - 0x80000002) * 16 + reg * 4;
  uint32_t w;
  std::memcpy(&w, kBrand + index, 4);
  return w;
}

// Deterministic cache description (leaf 4): type 1 data, 2 instruction, 3 unified.
CpuidResult cache_leaf(uint32_t subleaf, uint32_t cpu_count) {
  struct Cache {
    uint32_t type, level, ways, sets;
    bool shared;
  };
  static constexpr Cache kCaches[] = {
      {1, 1, 8, 64, false},    // 32 KiB L1d
      {2, 1, 8, 64, false},    // 32 KiB L1i
      {3, 2, 8, 512, false},   // 256 KiB L2
      {3, 3, 16, 8192, true},  // 8 MiB L3 shared by the package
  };
  CpuidResult r;
  if (subleaf >= std::size(kCaches)) {
    return r;  // type 0: no more caches
  }
  const Cache& c = kCaches[subleaf];
  const uint32_t sharing = c.shared ? cpu_count : 1;
  r.eax = c.type | (c.level << 5) | (1u << 8) /* self-initialising */ | ((sharing - 1) << 14) |
          ((cpu_count - 1) << 26);
  r.ebx = (63u) | (0u << 12) | ((c.ways - 1) << 22);  // 64-byte lines, 1 partition
  r.ecx = c.sets - 1;
  return r;
}

}  // namespace

CpuidResult cpuid(uint32_t leaf, uint32_t subleaf, uint32_t cpu_index, uint32_t cpu_count) {
  using namespace cpuid_bits;
  if (cpu_count == 0) {
    cpu_count = 1;
  }
  CpuidResult r;
  switch (leaf) {
    case 0:
      r.eax = kMaxBasicLeaf;
      r.ebx = chars("Genu");
      r.edx = chars("ineI");
      r.ecx = chars("ntel");
      break;
    case 1:
      // Family 6, model 0x3A (Ivy Bridge), stepping 9: a common model without quirk paths.
      r.eax = (0x3u << 16) | (6u << 8) | (0xAu << 4) | 9u;
      r.ebx = (cpu_index << 24) | (std::min<uint32_t>(cpu_count, 255) << 16) | (8u << 8);
      r.ecx = kCx16 | kMovbe | kPopcnt | kHypervisor;
      r.edx = kFpu | kDe | kPse | kTsc | kMsr | kPae | kCx8 | kApic | kSep | kMtrr | kPge | kCmov |
              kPat | kClfsh | kFxsr | kSse | kSse2 | (cpu_count > 1 ? kHtt : 0);
      break;
    case 4:
      r = cache_leaf(subleaf, cpu_count);
      break;
    case 7:
      // Otherwise no structured extended features (no SMEP/SMAP/FSGSBASE/BMI/ERMS).
      if (subleaf == 0) {
        r.ebx = kTscAdjust;
        r.edx = kSpecCtrl | kArchCapabilities;
      }
      break;
    case 0xb: {
      // One package of cpu_count cores, one thread each. x2APIC ID = APIC ID = cpu index.
      const uint32_t core_bits = std::bit_width(cpu_count - 1);
      r.ecx = subleaf & 0xff;
      r.edx = cpu_index;
      if (subleaf == 0) {
        r.eax = 0;
        r.ebx = 1;
        r.ecx |= 1u << 8;  // SMT level
      } else if (subleaf == 1) {
        r.eax = core_bits;
        r.ebx = cpu_count;
        r.ecx |= 2u << 8;  // core level
      }
      break;
    }
    case 0x15:
      // TSC = crystal * 1/1 with the crystal at the TSC rate: Linux takes the frequency as
      // known and skips calibration.
      r.eax = 1;
      r.ebx = 1;
      r.ecx = static_cast<uint32_t>(kTscHz);
      break;
    case 0x16:
      r.eax = static_cast<uint32_t>(kTscHz / 1'000'000);
      r.ebx = r.eax;
      r.ecx = 100;
      break;
    case kHypervisorLeaf:
      r.eax = kHypervisorLeaf;
      r.ebx = r.ecx = r.edx = chars("hvhv");
      break;
    case 0x80000000:
      r.eax = kMaxExtendedLeaf;
      break;
    case 0x80000001:
      r.ecx = kLahfLm;
      r.edx = kSyscall | kNx | kPage1G | kRdtscp | kLm;
      break;
    case 0x80000002:
    case 0x80000003:
    case 0x80000004:
      r.eax = brand_word(leaf, 0);
      r.ebx = brand_word(leaf, 1);
      r.ecx = brand_word(leaf, 2);
      r.edx = brand_word(leaf, 3);
      break;
    case 0x80000006:
      r.ecx = (256u << 16) | (6u << 12) | 64u;
      break;  // L2: 256 KiB, 8-way
    case 0x80000007:
      r.edx = kInvariantTsc;
      break;
    case 0x80000008:
      r.eax = kPhysicalAddressBits | (kLinearAddressBits << 8);
      break;
    default:
      break;  // reserved or absent leaves read as zero
  }
  return r;
}

void cpuid(Cpu& cpu, uint32_t leaf, uint32_t subleaf, uint32_t& eax, uint32_t& ebx, uint32_t& ecx,
           uint32_t& edx) {
  CpuidResult r = cpuid(leaf, subleaf, cpu.index(), cpu.machine().config().cpu_count);
  // hv's hypercall leaves, only where there is a service to call. This engine takes VMCALL too.
  if (cpu.machine().hypercalls() != nullptr) {
    if (auto hv = hypercall::cpuid_leaf(leaf, true)) {
      r = {hv->eax, hv->ebx, hv->ecx, hv->edx};
    }
  }
  eax = r.eax;
  ebx = r.ebx;
  ecx = r.ecx;
  edx = r.edx;
}

}  // namespace hv::emu
