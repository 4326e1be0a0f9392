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
// Leaf 0x80000007 EDX.
constexpr uint32_t kInvariantTsc = 1u << 8;
}  // namespace cpuid_bits

struct CpuidResult {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// The table itself, independent of a Cpu (the KVM engine or tests may compare against it).
CpuidResult cpuid(uint32_t leaf, uint32_t subleaf, uint32_t cpu_index, uint32_t cpu_count);

// CPUID as the instruction executes it on `cpu`.
void cpuid(Cpu& cpu, uint32_t leaf, uint32_t subleaf, uint32_t& eax, uint32_t& ebx, uint32_t& ecx,
           uint32_t& edx);

}  // namespace hv::emu
