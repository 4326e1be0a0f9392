// Architectural x86-64 CPU state in a form neither engine owns: loaders build the boot state in
// it, the KVM engine translates it to kvm_regs/kvm_sregs, the emulator runs on it directly.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace hv {

// General-purpose registers in instruction-encoding order.
enum Gpr : uint8_t {
  kRax,
  kRcx,
  kRdx,
  kRbx,
  kRsp,
  kRbp,
  kRsi,
  kRdi,
  kR8,
  kR9,
  kR10,
  kR11,
  kR12,
  kR13,
  kR14,
  kR15,
};

struct Segment {
  uint64_t base = 0;
  uint32_t limit = 0xffff;
  uint16_t selector = 0;
  uint8_t type = 0;                 // descriptor type field (bits 8..11 of the high dword)
  bool system_or_code_data = true;  // descriptor "S" bit: 1 = code/data
  uint8_t dpl = 0;
  bool present = true;
  bool avl = false;
  bool long_mode = false;    // L
  bool default_big = false;  // D/B
  bool granularity = false;  // G
  bool unusable = false;
};

struct DescriptorTable {
  uint64_t base = 0;
  uint16_t limit = 0xffff;
};

namespace cr0 {
constexpr uint64_t kPE = 1u << 0, kMP = 1u << 1, kEM = 1u << 2, kTS = 1u << 3, kET = 1u << 4,
                   kNE = 1u << 5, kWP = 1u << 16, kAM = 1u << 18, kNW = 1u << 29, kCD = 1u << 30,
                   kPG = 1u << 31;
}
namespace cr4 {
constexpr uint64_t kPSE = 1u << 4, kPAE = 1u << 5, kPGE = 1u << 7, kOSFXSR = 1u << 9,
                   kOSXMMEXCPT = 1u << 10;
}
namespace efer {
constexpr uint64_t kSCE = 1u << 0, kLME = 1u << 8, kLMA = 1u << 10, kNXE = 1u << 11;
}
namespace rflags {
constexpr uint64_t kCF = 1u << 0, kFixed = 1u << 1, kPF = 1u << 2, kAF = 1u << 4, kZF = 1u << 6,
                   kSF = 1u << 7, kTF = 1u << 8, kIF = 1u << 9, kDF = 1u << 10, kOF = 1u << 11,
                   kIOPL = 3u << 12, kNT = 1u << 14, kRF = 1u << 16, kVM = 1u << 17, kAC = 1u << 18,
                   kID = 1u << 21;
}

struct CpuState {
  std::array<uint64_t, 16> gpr{};
  uint64_t rip = 0xfff0;
  uint64_t rflags = rflags::kFixed;
  Segment cs, ds, es, fs, gs, ss, tr, ldt;
  DescriptorTable gdt, idt;
  uint64_t cr0 = cr0::kET | cr0::kNW | cr0::kCD;
  uint64_t cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0;
  uint64_t efer = 0;

  // Real-mode state with CS:IP = cs_selector:ip, all data segments 0 and a 64 KiB limit.
  static CpuState real_mode(uint16_t cs_selector, uint16_t ip);

  // Multi-line human-readable dump for crash reports.
  std::string dump() const;
};

}  // namespace hv
