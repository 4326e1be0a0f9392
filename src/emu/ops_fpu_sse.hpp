// Private to the x87/SSE group (ops_fpu_sse.cpp, ops_x87*.cpp, ops_sse*.cpp): availability
// checks, XMM and 128-bit memory access, and the registration helper that lets an SSE form
// share a mnemonic with an integer string instruction (MOVSD, CMPSD).
#pragma once

#include <Zydis/Zydis.h>

#include <cstdint>

#include "emu/cpu.hpp"
#include "emu/decoder.hpp"

namespace hv::emu::fpu {

// x87 (and FXSAVE/FXRSTOR): #NM when CR0.EM or CR0.TS, so an OS can trap first use and switch
// FPU state lazily.
inline void check_x87(const Cpu& cpu) {
  if (cpu.cr0 & (cr0::kEM | cr0::kTS)) [[unlikely]] {
    raise_fault(kDeviceNotAvailable);
  }
}

// SSE/SSE2: #UD unless the OS declared FXSAVE support (CR4.OSFXSR) and no emulation (CR0.EM);
// #NM when the task switched (CR0.TS) for lazy state switching.
inline void check_sse(const Cpu& cpu) {
  if ((cpu.cr0 & cr0::kEM) || !(cpu.cr4 & cr4::kOSFXSR)) [[unlikely]] {
    raise_fault(kInvalidOpcode);
  }
  if (cpu.cr0 & cr0::kTS) [[unlikely]] {
    raise_fault(kDeviceNotAvailable);
  }
}

struct U128 {
  uint64_t lo, hi;
};

// Linear address of the instruction's memory operand, with the 16-byte alignment check of
// legacy SSE packed operands (#GP(0), checked before any page fault as hardware does).
inline uint64_t memory_linear(Cpu& cpu, const Insn& insn, uint32_t size, Access access,
                              bool aligned) {
  const uint64_t la =
      cpu.linear_address(insn.mem.segment, cpu.effective_address(insn), size, access);
  if (aligned && (la & 15)) [[unlikely]] {
    raise_fault(kGeneralProtection, 0);
  }
  return la;
}

inline U128 read_m128(Cpu& cpu, const Insn& insn, bool aligned) {
  return cpu.read_linear<U128>(memory_linear(cpu, insn, 16, Access::kRead, aligned));
}

inline void write_m128(Cpu& cpu, const Insn& insn, U128 v, bool aligned) {
  cpu.write_linear<U128>(memory_linear(cpu, insn, 16, Access::kWrite, aligned), v);
}

// Registers `binder` for `mnemonic`; when it declines a form (nullptr), the binder another
// group registered earlier for the same mnemonic gets it (MOVSD/CMPSD are also string ops).
void add_chained(HandlerRegistry& registry, ZydisMnemonic mnemonic, Binder binder);

void register_x87_ops(HandlerRegistry& registry);
void register_sse_ops(HandlerRegistry& registry);

}  // namespace hv::emu::fpu
