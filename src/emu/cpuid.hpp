// CPUID of the emulated CPU: one table advertising exactly what the interpreter implements, so a
// guest never takes a path through an instruction or MSR that would #UD/#GP here.
#pragma once

#include <cstdint>

namespace hv::emu {

class Cpu;

// The TSC runs at this fixed rate (derived from the host's steady clock); CPUID leaf 0x15
// reports it so guests need no calibration.
constexpr uint64_t kTscHz = 2'000'000'000;
constexpr uint8_t kPhysicalAddressBits = 40;
constexpr uint8_t kLinearAddressBits = 48;

// Feature bits advertised (and so implemented somewhere in the interpreter).
namespace cpuid_bits {
// Leaf 1 EDX.
constexpr uint32_t kFpu = 1u << 0, kDe = 1u << 2, kPse = 1u << 3, kTsc = 1u << 4, kMsr = 1u << 5,
                   kPae = 1u << 6, kCx8 = 1u << 8, kApic = 1u << 9, kSep = 1u << 11,
                   kMtrr = 1u << 12, kPge = 1u << 13, kCmov = 1u << 15, kPat = 1u << 16,
                   kClfsh = 1u << 19, kFxsr = 1u << 24, kSse = 1u << 25, kSse2 = 1u << 26,
                   kHtt = 1u << 28;
// Leaf 1 ECX.
constexpr uint32_t kCx16 = 1u << 13, kMovbe = 1u << 22, kPopcnt = 1u << 23, kHypervisor = 1u << 31;
// Leaf 0x80000001 EDX / ECX.
constexpr uint32_t kSyscall = 1u << 11, kNx = 1u << 20, kPage1G = 1u << 26, kRdtscp = 1u << 27,
                   kLm = 1u << 29;
constexpr uint32_t kLahfLm = 1u << 0;
// Leaf 7 EBX: the TSC_ADJUST MSR. With the invariant TSC it tells Linux the TSC is reliable
// enough to run without the clocksource watchdog, which would otherwise compare it against
// jiffies early in boot and, on a loaded host where timer ticks are late, declare it unstable.
constexpr uint32_t kTscAdjust = 1u << 1;
// Leaf 7 EDX: IBRS/IBPB (SPEC_CTRL and PRED_CMD MSRs) and the ARCH_CAPABILITIES MSR.
constexpr uint32_t kSpecCtrl = 1u << 26, kArchCapabilities = 1u << 29;
// Leaf 0x80000007 EDX.
constexpr uint32_t kInvariantTsc = 1u << 8;
}  // namespace cpuid_bits

// IA32_ARCH_CAPABILITIES. An interpreter has no speculative execution, no shared fill or store
// buffers and no branch predictor to poison, so it is immune to every attack the MSR has a
// "not affected" bit for, and IBRS is trivially always on (IBRS_ALL). Saying so spares guests the
// mitigations that cost most in emulation: page-table isolation (a TLB flush at every kernel
// entry), retpolines and return thunks, buffer clearing on every return to user space.
namespace arch_capabilities {
constexpr uint64_t kRdclNo = 1ull << 0, kIbrsAll = 1ull << 1, kSsbNo = 1ull << 4,
                   kMdsNo = 1ull << 5, kPschangeMcNo = 1ull << 6, kTaaNo = 1ull << 8,
                   kSbdrSsdpNo = 1ull << 13, kFbsdpNo = 1ull << 14, kPsdpNo = 1ull << 15,
                   kBhiNo = 1ull << 20, kPbrsbNo = 1ull << 24, kGdsNo = 1ull << 26,
                   kRfdsNo = 1ull << 27, kItsNo = 1ull << 62;
constexpr uint64_t kValue = kRdclNo | kIbrsAll | kSsbNo | kMdsNo | kPschangeMcNo | kTaaNo |
                            kSbdrSsdpNo | kFbsdpNo | kPsdpNo | kBhiNo | kPbrsbNo | kGdsNo |
                            kRfdsNo | kItsNo;
}  // namespace arch_capabilities

struct CpuidResult {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// The table itself, independent of a Cpu (the KVM engine or tests may compare against it).
CpuidResult cpuid(uint32_t leaf, uint32_t subleaf, uint32_t cpu_index, uint32_t cpu_count);

// CPUID as the instruction executes it on `cpu`.
void cpuid(Cpu& cpu, uint32_t leaf, uint32_t subleaf, uint32_t& eax, uint32_t& ebx, uint32_t& ecx,
           uint32_t& edx);

}  // namespace hv::emu
