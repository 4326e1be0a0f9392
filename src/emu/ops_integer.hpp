// Private helpers shared by the general-purpose integer instruction handlers (ops_integer_*.cpp).
//
// Handlers are templates specialised on operand type T (uint8_t..uint64_t) and operand form
// (register / memory / immediate); binders pick the specialisation once at decode time, so the
// handler itself contains no size or form dispatch.
#pragma once

#include <Zydis/Zydis.h>

#include <cstdint>
#include <type_traits>

#include "emu/cpu.hpp"
#include "emu/decoder.hpp"
#include "emu/operands.hpp"

namespace hv::emu::integer {

// Register access with a compile-time width (the switch in Cpu::reg folds away).
template <typename T>
inline T get_reg(const Cpu& cpu, uint8_t r) {
  return static_cast<T>(cpu.reg(r, sizeof(T)));
}
template <typename T>
inline void put_reg(Cpu& cpu, uint8_t r, T v) {
  cpu.set_reg(r, sizeof(T), v);
}

template <typename T>
constexpr T kSignBit = static_cast<T>(T{1} << (sizeof(T) * 8 - 1));

template <typename T>
inline bool msb(T v) {
  return (v & kSignBit<T>) != 0;
}

// Two-operand forms: destination, source.
enum class Form : uint8_t {
  kRR,  // reg, reg
  kRM,  // reg, mem
  kMR,  // mem, reg
  kRI,  // reg, imm
  kMI,  // mem, imm
};

// Classifies operands[0] / operands[1]; false when the combination is not one of the forms.
inline bool two_operand_form(const Insn& insn, Form& form) {
  const OperandKind a = insn.operands[0].kind;
  const OperandKind b = insn.operands[1].kind;
  if (a == OperandKind::kReg) {
    if (b == OperandKind::kReg) {
      form = Form::kRR;
    } else if (b == OperandKind::kMem) {
      form = Form::kRM;
    } else if (b == OperandKind::kImm) {
      form = Form::kRI;
    } else {
      return false;
    }
    return true;
  }
  if (a == OperandKind::kMem) {
    if (b == OperandKind::kReg) {
      form = Form::kMR;
    } else if (b == OperandKind::kImm) {
      form = Form::kMI;
    } else {
      return false;
    }
    return true;
  }
  return false;
}

inline bool has_lock(const Insn& insn) {
  return (insn.prefixes & kPrefixLock) != 0;
}

// ZF, SF, PF of a result of type T.
template <typename T>
inline uint64_t szp_bits(T r) {
  uint64_t bits = 0;
  if (r == 0) {
    bits |= flag::kZF;
  }
  if (msb(r)) {
    bits |= flag::kSF;
  }
  if ((std::popcount(static_cast<uint8_t>(r)) & 1) == 0) {
    bits |= flag::kPF;
  }
  return bits;
}

// Replaces the arithmetic flags in `mask` with those in `bits`, keeping the others.
inline void update_flags(Cpu& cpu, uint64_t mask, uint64_t bits) {
  cpu.lazy.set_materialized((cpu.lazy.arithmetic_bits() & ~mask) | (bits & mask));
}

// Atomic read-modify-write of a T at seg:offset (LOCK prefix, XCHG with memory): `f(old)` gives
// the new value; returns the old value. Falls back to a plain read and write for MMIO or
// page-crossing locations (host_pointer_for_rmw returns null).
template <typename T, typename F>
inline T locked_rmw(Cpu& cpu, uint8_t segment, uint64_t offset, F&& f) {
  uint8_t* p = cpu.host_pointer_for_rmw(segment, offset, sizeof(T));
  if (p == nullptr) {
    const T old = cpu.read<T>(segment, offset);
    cpu.write<T>(segment, offset, f(old));
    return old;
  }
  T* tp = reinterpret_cast<T*>(p);
  T old = __atomic_load_n(tp, __ATOMIC_RELAXED);
  while (
      !__atomic_compare_exchange_n(tp, &old, f(old), false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
  }
  return old;
}

// Size dispatch in binders: `HV_INT_BY_SIZE(size, &handler<T, ...>)` returns the handler
// specialised on T = uint8_t/uint16_t/uint32_t/uint64_t, or nullptr for other sizes.
#define HV_INT_BY_SIZE(size, ...) \
  switch (size) {                 \
    case 1: {                     \
      using T = uint8_t;          \
      return __VA_ARGS__;         \
    }                             \
    case 2: {                     \
      using T = uint16_t;         \
      return __VA_ARGS__;         \
    }                             \
    case 4: {                     \
      using T = uint32_t;         \
      return __VA_ARGS__;         \
    }                             \
    case 8: {                     \
      using T = uint64_t;         \
      return __VA_ARGS__;         \
    }                             \
    default:                      \
      return nullptr;             \
  }

// Same without 8-bit (instructions with 16/32/64-bit forms only).
#define HV_INT_BY_SIZE_WIDE(size, ...) \
  switch (size) {                      \
    case 2: {                          \
      using T = uint16_t;              \
      return __VA_ARGS__;              \
    }                                  \
    case 4: {                          \
      using T = uint32_t;              \
      return __VA_ARGS__;              \
    }                                  \
    case 8: {                          \
      using T = uint64_t;              \
      return __VA_ARGS__;              \
    }                                  \
    default:                           \
      return nullptr;                  \
  }

// Binder wrapper for instructions that do not accept LOCK: LOCK gives #UD (nullptr).
template <Binder B>
Handler no_lock(const Insn& insn) {
  return has_lock(insn) ? nullptr : B(insn);
}

// Some mnemonics are shared with other groups (far JMP/CALL/RET and MOV CRn/DRn with the system
// group, MOVSD/CMPSD with SSE). When another group registered a binder for such a mnemonic
// before us, it is kept here and consulted for the forms this group does not handle.
Handler chain_to_other_group(const Insn& insn);

void register_alu_ops(HandlerRegistry& registry);
void register_move_ops(HandlerRegistry& registry);
void register_branch_ops(HandlerRegistry& registry);
void register_string_ops(HandlerRegistry& registry);

}  // namespace hv::emu::integer
