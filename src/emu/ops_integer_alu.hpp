// The two-operand ALU core (ADD OR ADC SBB AND SUB XOR CMP TEST), shared by the ALU handlers
// and by the fused compare-and-branch handlers (branch_fusion.cpp).
#pragma once

#include "emu/ops_integer.hpp"

namespace hv::emu::integer {

// ---------------------------------------------------------------------------------------------
// Two-operand ALU: ADD OR ADC SBB AND SUB XOR CMP TEST
// ---------------------------------------------------------------------------------------------

enum class Alu : uint8_t { kAdd, kOr, kAdc, kSbb, kAnd, kSub, kXor, kCmp, kTest };

template <Alu Op, typename T>
inline T alu_compute(T d, T s, bool cf) {
  switch (Op) {
    case Alu::kAdd:
      return static_cast<T>(d + s);
    case Alu::kOr:
      return static_cast<T>(d | s);
    case Alu::kAdc:
      return static_cast<T>(d + s + (cf ? 1 : 0));
    case Alu::kSbb:
      return static_cast<T>(d - s - (cf ? 1 : 0));
    case Alu::kAnd:
    case Alu::kTest:
      return static_cast<T>(d & s);
    case Alu::kSub:
    case Alu::kCmp:
      return static_cast<T>(d - s);
    case Alu::kXor:
      return static_cast<T>(d ^ s);
  }
  return 0;
}

template <Alu Op, typename T>
inline void alu_flags(Cpu& cpu, T d, T s, T r, bool cf) {
  constexpr uint8_t w = sizeof(T);
  switch (Op) {
    case Alu::kAdd:
      cpu.lazy.set(FlagOp::kAdd, w, d, s, r);
      break;
    case Alu::kAdc:
      cpu.lazy.set_with_carry(FlagOp::kAdc, w, d, s, r, cf);
      break;
    case Alu::kSbb:
      cpu.lazy.set_with_carry(FlagOp::kSbb, w, d, s, r, cf);
      break;
    case Alu::kSub:
    case Alu::kCmp:
      cpu.lazy.set(FlagOp::kSub, w, d, s, r);
      break;
    default:
      cpu.lazy.set(FlagOp::kLogic, w, d, s, r);
      break;
  }
}

template <Alu Op, typename T, Form F, bool Lock>
void alu(Cpu& cpu, const Insn& insn) {
  constexpr bool kWrites = Op != Alu::kCmp && Op != Alu::kTest;
  const bool cf = (Op == Alu::kAdc || Op == Alu::kSbb) ? cpu.lazy.cf() : false;
  T s;
  if constexpr (F == Form::kRR || F == Form::kMR) {
    s = get_reg<T>(cpu, insn.operands[1].reg);
  } else if constexpr (F == Form::kRM) {
    s = cpu.read<T>(insn.mem.segment, cpu.effective_address(insn));
  } else {
    s = static_cast<T>(insn.immediate);
  }
  T d;
  T r;
  if constexpr (F == Form::kMR || F == Form::kMI) {
    const uint64_t ea = cpu.effective_address(insn);
    if constexpr (Lock) {
      d = locked_rmw<T>(cpu, insn.mem.segment, ea,
                        [&](T old) { return alu_compute<Op, T>(old, s, cf); });
      r = alu_compute<Op, T>(d, s, cf);
    } else {
      d = cpu.read<T>(insn.mem.segment, ea);
      r = alu_compute<Op, T>(d, s, cf);
      if constexpr (kWrites) {
        cpu.write<T>(insn.mem.segment, ea, r);
      }
    }
  } else {
    d = get_reg<T>(cpu, insn.operands[0].reg);
    r = alu_compute<Op, T>(d, s, cf);
    if constexpr (kWrites) {
      put_reg<T>(cpu, insn.operands[0].reg, r);
    }
  }
  alu_flags<Op, T>(cpu, d, s, r, cf);
}

}  // namespace hv::emu::integer
