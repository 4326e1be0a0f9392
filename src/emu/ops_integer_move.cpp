// Data movement: MOV (incl. moffs, imm64, segment registers), MOVZX/MOVSX/MOVSXD, LEA, XLAT,
// XCHG, SETcc, CMOVcc, MOVBE, PUSH/POP, PUSHA/POPA, ENTER/LEAVE, NOP.
#include <bit>

#include "emu/ops_integer.hpp"

namespace hv::emu::integer {
namespace {

template <typename T>
using Signed = std::make_signed_t<T>;

// ---------------------------------------------------------------------------------------------
// MOV
// ---------------------------------------------------------------------------------------------

template <typename T, Form F>
void mov(Cpu& cpu, const Insn& insn) {
  if constexpr (F == Form::kRR) {
    put_reg<T>(cpu, insn.operands[0].reg, get_reg<T>(cpu, insn.operands[1].reg));
  } else if constexpr (F == Form::kRM) {
    put_reg<T>(cpu, insn.operands[0].reg,
               cpu.read<T>(insn.mem.segment, cpu.effective_address(insn)));
  } else if constexpr (F == Form::kMR) {
    cpu.write<T>(insn.mem.segment, cpu.effective_address(insn),
                 get_reg<T>(cpu, insn.operands[1].reg));
  } else if constexpr (F == Form::kRI) {
    put_reg<T>(cpu, insn.operands[0].reg, static_cast<T>(insn.immediate));
  } else {
    cpu.write<T>(insn.mem.segment, cpu.effective_address(insn), static_cast<T>(insn.immediate));
  }
}

// MOV Sreg, r/m16.
template <bool Mem>
void mov_to_seg(Cpu& cpu, const Insn& insn) {
  const uint16_t sel = Mem ? cpu.read<uint16_t>(insn.mem.segment, cpu.effective_address(insn))
                           : get_reg<uint16_t>(cpu, insn.operands[1].reg);
  const uint8_t s = insn.operands[0].reg;
  cpu.load_segment(s, sel);
  if (s == kSs) {
    cpu.interrupt_shadow = true;
  }
}

// MOV r/m, Sreg: a memory destination is always 16 bits; a register one gets the selector
// zero-extended to the operand size.
template <bool Mem>
void mov_from_seg(Cpu& cpu, const Insn& insn) {
  const uint16_t sel = cpu.seg[insn.operands[1].reg].selector;
  if constexpr (Mem) {
    cpu.write<uint16_t>(insn.mem.segment, cpu.effective_address(insn), sel);
  } else {
    const Operand& o = insn.operands[0];
    cpu.set_reg(o.reg, o.size, sel);
  }
}

Handler bind_mov(const Insn& insn) {
  const OperandKind a = insn.operands[0].kind;
  const OperandKind b = insn.operands[1].kind;
  if (a == OperandKind::kCr || a == OperandKind::kDr || b == OperandKind::kCr ||
      b == OperandKind::kDr) {
    return chain_to_other_group(insn);
  }
  if (has_lock(insn)) {
    return nullptr;
  }
  if (a == OperandKind::kSeg) {
    if (insn.operands[0].reg == kCs || insn.operands[0].reg > kGs) {
      return nullptr;
    }
    return b == OperandKind::kMem ? &mov_to_seg<true> : &mov_to_seg<false>;
  }
  if (b == OperandKind::kSeg) {
    if (insn.operands[1].reg > kGs) {
      return nullptr;
    }
    return a == OperandKind::kMem ? &mov_from_seg<true> : &mov_from_seg<false>;
  }
  Form form;
  if (!two_operand_form(insn, form)) {
    return chain_to_other_group(insn);
  }
  const uint8_t size = insn.operands[0].size;
  switch (form) {
    case Form::kRR:
      HV_INT_BY_SIZE(size, &mov<T, Form::kRR>)
    case Form::kRM:
      HV_INT_BY_SIZE(size, &mov<T, Form::kRM>)
    case Form::kMR:
      HV_INT_BY_SIZE(size, &mov<T, Form::kMR>)
    case Form::kRI:
      HV_INT_BY_SIZE(size, &mov<T, Form::kRI>)
    case Form::kMI:
      HV_INT_BY_SIZE(size, &mov<T, Form::kMI>)
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// MOVZX MOVSX MOVSXD
// ---------------------------------------------------------------------------------------------

template <typename D, typename S, bool Mem, bool Sx>
void movx(Cpu& cpu, const Insn& insn) {
  const S v = Mem ? cpu.read<S>(insn.mem.segment, cpu.effective_address(insn))
                  : get_reg<S>(cpu, insn.operands[1].reg);
  D r;
  if constexpr (Sx) {
    r = static_cast<D>(static_cast<Signed<D>>(static_cast<Signed<S>>(v)));
  } else {
    r = static_cast<D>(v);
  }
  put_reg<D>(cpu, insn.operands[0].reg, r);
}

template <typename D, bool Sx>
Handler bind_movx_src(const Insn& insn) {
  const bool mem = insn.operands[1].kind == OperandKind::kMem;
  switch (insn.operands[1].size) {
    case 1:
      return mem ? &movx<D, uint8_t, true, Sx> : &movx<D, uint8_t, false, Sx>;
    case 2:
      return mem ? &movx<D, uint16_t, true, Sx> : &movx<D, uint16_t, false, Sx>;
    case 4:
      return mem ? &movx<D, uint32_t, true, Sx> : &movx<D, uint32_t, false, Sx>;
    default:
      return nullptr;
  }
}

template <bool Sx>
Handler bind_movx(const Insn& insn) {
  if (has_lock(insn) || insn.operands[0].kind != OperandKind::kReg ||
      (insn.operands[1].kind != OperandKind::kReg && insn.operands[1].kind != OperandKind::kMem)) {
    return nullptr;
  }
  switch (insn.operands[0].size) {
    case 2:
      return bind_movx_src<uint16_t, Sx>(insn);
    case 4:
      return bind_movx_src<uint32_t, Sx>(insn);
    case 8:
      return bind_movx_src<uint64_t, Sx>(insn);
    default:
      return nullptr;
  }
}

// ---------------------------------------------------------------------------------------------
// LEA XLAT
// ---------------------------------------------------------------------------------------------

// The effective address is computed with the address size, then truncated (or zero-extended)
// to the operand size.
template <typename T>
void lea(Cpu& cpu, const Insn& insn) {
  put_reg<T>(cpu, insn.operands[0].reg, static_cast<T>(cpu.effective_address(insn)));
}

Handler bind_lea(const Insn& insn) {
  if (has_lock(insn) || insn.operands[0].kind != OperandKind::kReg ||
      insn.operands[1].kind != OperandKind::kMem) {
    return nullptr;
  }
  HV_INT_BY_SIZE_WIDE(insn.operands[0].size, &lea<T>)
}

void xlat(Cpu& cpu, const Insn& insn) {
  const uint64_t ea = Cpu::truncate_address(cpu.gpr[3] + (cpu.gpr[0] & 0xff), insn.address_size);
  cpu.set_reg(0, 1, cpu.read<uint8_t>(insn.mem.segment, ea));
}

// ---------------------------------------------------------------------------------------------
// XCHG (always atomic with a memory operand)
// ---------------------------------------------------------------------------------------------

template <typename T>
void xchg_rr(Cpu& cpu, const Insn& insn) {
  const T a = get_reg<T>(cpu, insn.operands[0].reg);
  const T b = get_reg<T>(cpu, insn.operands[1].reg);
  put_reg<T>(cpu, insn.operands[0].reg, b);
  put_reg<T>(cpu, insn.operands[1].reg, a);
}

// Reg operand index R, memory operand 1 - R.
template <typename T, int R>
void xchg_mem(Cpu& cpu, const Insn& insn) {
  const uint8_t r = insn.operands[R].reg;
  const T v = get_reg<T>(cpu, r);
  const T old =
      locked_rmw<T>(cpu, insn.mem.segment, cpu.effective_address(insn), [v](T) { return v; });
  put_reg<T>(cpu, r, old);
}

Handler bind_xchg(const Insn& insn) {
  const OperandKind a = insn.operands[0].kind;
  const OperandKind b = insn.operands[1].kind;
  const uint8_t size = insn.operands[0].size;
  if (a == OperandKind::kReg && b == OperandKind::kReg) {
    if (has_lock(insn)) {
      return nullptr;
    }
    HV_INT_BY_SIZE(size, &xchg_rr<T>)
  }
  if (a == OperandKind::kMem && b == OperandKind::kReg) {
    HV_INT_BY_SIZE(size, &xchg_mem<T, 1>)
  }
  if (a == OperandKind::kReg && b == OperandKind::kMem) {
    HV_INT_BY_SIZE(size, &xchg_mem<T, 0>)
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// SETcc CMOVcc MOVBE
// ---------------------------------------------------------------------------------------------

template <bool Mem>
void setcc(Cpu& cpu, const Insn& insn) {
  const uint8_t v = cpu.lazy.condition(insn.condition) ? 1 : 0;
  if constexpr (Mem) {
    cpu.write<uint8_t>(insn.mem.segment, cpu.effective_address(insn), v);
  } else {
    cpu.set_reg(insn.operands[0].reg, 1, v);
  }
}

Handler bind_setcc(const Insn& insn) {
  if (has_lock(insn)) {
    return nullptr;
  }
  switch (insn.operands[0].kind) {
    case OperandKind::kReg:
      return &setcc<false>;
    case OperandKind::kMem:
      return &setcc<true>;
    default:
      return nullptr;
  }
}

// The source is read (and may fault) whatever the condition; a 32-bit destination is
// zero-extended even when the condition is false.
template <typename T, bool Mem>
void cmovcc(Cpu& cpu, const Insn& insn) {
  const T v = Mem ? cpu.read<T>(insn.mem.segment, cpu.effective_address(insn))
                  : get_reg<T>(cpu, insn.operands[1].reg);
  const uint8_t d = insn.operands[0].reg;
  if (cpu.lazy.condition(insn.condition)) {
    put_reg<T>(cpu, d, v);
  } else if constexpr (sizeof(T) == 4) {
    put_reg<T>(cpu, d, get_reg<T>(cpu, d));
  }
}

Handler bind_cmovcc(const Insn& insn) {
  if (has_lock(insn) || insn.operands[0].kind != OperandKind::kReg) {
    return nullptr;
  }
  if (insn.operands[1].kind == OperandKind::kMem) {
    HV_INT_BY_SIZE_WIDE(insn.operands[0].size, &cmovcc<T, true>)
  }
  HV_INT_BY_SIZE_WIDE(insn.operands[0].size, &cmovcc<T, false>)
}

template <typename T, bool Load>
void movbe(Cpu& cpu, const Insn& insn) {
  if constexpr (Load) {
    put_reg<T>(cpu, insn.operands[0].reg,
               std::byteswap(cpu.read<T>(insn.mem.segment, cpu.effective_address(insn))));
  } else {
    cpu.write<T>(insn.mem.segment, cpu.effective_address(insn),
                 std::byteswap(get_reg<T>(cpu, insn.operands[1].reg)));
  }
}

Handler bind_movbe(const Insn& insn) {
  if (has_lock(insn)) {
    return nullptr;
  }
  if (insn.operands[0].kind == OperandKind::kReg && insn.operands[1].kind == OperandKind::kMem) {
    HV_INT_BY_SIZE_WIDE(insn.operands[0].size, &movbe<T, true>)
  }
  if (insn.operands[0].kind == OperandKind::kMem && insn.operands[1].kind == OperandKind::kReg) {
    HV_INT_BY_SIZE_WIDE(insn.operands[0].size, &movbe<T, false>)
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// PUSH POP PUSHA POPA ENTER LEAVE
// ---------------------------------------------------------------------------------------------

// Restores RSP when a multi-step stack operation faults part-way.
struct StackRollback {
  Cpu& cpu;
  uint64_t rsp;
  uint64_t rbp;
  bool done = false;
  explicit StackRollback(Cpu& c) : cpu(c), rsp(c.gpr[4]), rbp(c.gpr[5]) {}
  ~StackRollback() {
    if (!done) {
      cpu.gpr[4] = rsp;
      cpu.gpr[5] = rbp;
    }
  }
  StackRollback(const StackRollback&) = delete;
  StackRollback& operator=(const StackRollback&) = delete;
};

void push_reg(Cpu& cpu, const Insn& insn) {
  const Operand& o = insn.operands[0];
  cpu.push(cpu.reg(o.reg, o.size), o.size);
}

void push_mem(Cpu& cpu, const Insn& insn) {
  const uint8_t size = insn.operands[0].size;
  cpu.push(cpu.read_sized(insn.mem.segment, cpu.effective_address(insn), size), size);
}

// PUSH imm8/imm16/imm32: the immediate is already sign-extended.
void push_imm(Cpu& cpu, const Insn& insn) {
  cpu.push(insn.immediate & size_mask(insn.operand_size), insn.operand_size);
}

void push_seg(Cpu& cpu, const Insn& insn) {
  cpu.push(cpu.seg[insn.operands[0].reg].selector, insn.operand_size);
}

void pop_reg(Cpu& cpu, const Insn& insn) {
  const Operand& o = insn.operands[0];
  const uint64_t v = cpu.pop(o.size);
  cpu.set_reg(o.reg, o.size, v);
}

// POP m: the address is computed after RSP is incremented (POP [RSP+n] sees the new RSP).
void pop_mem(Cpu& cpu, const Insn& insn) {
  const uint8_t size = insn.operands[0].size;
  StackRollback rollback(cpu);
  const uint64_t v = cpu.pop(size);
  cpu.write_sized(insn.mem.segment, cpu.effective_address(insn), size, v);
  rollback.done = true;
}

void pop_seg(Cpu& cpu, const Insn& insn) {
  const uint8_t s = insn.operands[0].reg;
  StackRollback rollback(cpu);
  const uint64_t v = cpu.pop(insn.operand_size);
  cpu.load_segment(s, static_cast<uint16_t>(v));
  rollback.done = true;
  if (s == kSs) {
    cpu.interrupt_shadow = true;
  }
}

Handler bind_push(const Insn& insn) {
  if (has_lock(insn)) {
    return nullptr;
  }
  switch (insn.operands[0].kind) {
    case OperandKind::kReg:
      return &push_reg;
    case OperandKind::kMem:
      return &push_mem;
    case OperandKind::kImm:
      return &push_imm;
    case OperandKind::kSeg:
      return &push_seg;
    default:
      return chain_to_other_group(insn);
  }
}

Handler bind_pop(const Insn& insn) {
  if (has_lock(insn)) {
    return nullptr;
  }
  switch (insn.operands[0].kind) {
    case OperandKind::kReg:
      return &pop_reg;
    case OperandKind::kMem:
      return &pop_mem;
    case OperandKind::kSeg:
      return insn.operands[0].reg == kCs ? nullptr : &pop_seg;
    default:
      return chain_to_other_group(insn);
  }
}

template <uint8_t Size>
void pusha(Cpu& cpu, const Insn&) {
  if (cpu.long_mode() && cpu.code_size() == 8) {
    raise_fault(kInvalidOpcode);
  }
  StackRollback rollback(cpu);
  const uint64_t sp = cpu.gpr[4];
  for (uint8_t r = 0; r < 8; ++r) {
    cpu.push((r == 4 ? sp : cpu.gpr[r]) & size_mask(Size), Size);  // original SP
  }
  rollback.done = true;
}

template <uint8_t Size>
void popa(Cpu& cpu, const Insn&) {
  if (cpu.long_mode() && cpu.code_size() == 8) {
    raise_fault(kInvalidOpcode);
  }
  StackRollback rollback(cpu);
  uint64_t v[8];
  for (int r = 7; r >= 0; --r) {
    v[r] = cpu.pop(Size);  // the value for SP is discarded
  }
  rollback.done = true;
  for (uint8_t r = 0; r < 8; ++r) {
    if (r != 4) {
      cpu.set_reg(r, Size, v[r]);
    }
  }
}

// ENTER imm16, imm8: nesting level taken modulo 32.
void enter(Cpu& cpu, const Insn& insn) {
  const uint8_t os = insn.operand_size;
  const uint8_t ss = cpu.stack_size();
  const uint64_t alloc = insn.immediate & 0xffff;
  const unsigned level = static_cast<unsigned>(insn.immediate2 & 31);
  StackRollback rollback(cpu);
  cpu.push(cpu.reg(5, os), os);
  const uint64_t frame = cpu.reg(4, ss);
  if (level > 0) {
    uint64_t bp = cpu.reg(5, ss);
    for (unsigned i = 1; i < level; ++i) {
      bp = Cpu::truncate_address(bp - os, ss);
      cpu.push(cpu.read_sized(kSs, bp, os), os);
    }
    cpu.push(frame, os);
  }
  cpu.set_reg(4, ss, cpu.reg(4, ss) - alloc);
  cpu.set_reg(5, os, frame);
  rollback.done = true;
}

// LEAVE: RSP = RBP (stack size), then pop RBP (operand size).
void leave(Cpu& cpu, const Insn& insn) {
  const uint8_t ss = cpu.stack_size();
  StackRollback rollback(cpu);
  cpu.set_reg(4, ss, cpu.reg(5, ss));
  const uint64_t v = cpu.pop(insn.operand_size);
  cpu.set_reg(5, insn.operand_size, v);
  rollback.done = true;
}

void nop(Cpu&, const Insn&) {}

template <Handler H>
Handler bind_fixed(const Insn& insn) {
  return has_lock(insn) ? nullptr : H;
}

}  // namespace

void register_move_ops(HandlerRegistry& registry) {
  registry.add(ZYDIS_MNEMONIC_MOV, &bind_mov);
  registry.add(ZYDIS_MNEMONIC_MOVZX, &bind_movx<false>);
  registry.add(ZYDIS_MNEMONIC_MOVSX, &bind_movx<true>);
  registry.add(ZYDIS_MNEMONIC_MOVSXD, &bind_movx<true>);
  registry.add(ZYDIS_MNEMONIC_LEA, &bind_lea);
  registry.add(ZYDIS_MNEMONIC_XLAT, &bind_fixed<&xlat>);
  registry.add(ZYDIS_MNEMONIC_XCHG, &bind_xchg);
  registry.add(ZYDIS_MNEMONIC_MOVBE, &bind_movbe);
  for (ZydisMnemonic m :
       {ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETNB,
        ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE,
        ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETNP,
        ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE}) {
    registry.add(m, &bind_setcc);
  }
  for (ZydisMnemonic m :
       {ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVNB,
        ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE,
        ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVNP,
        ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE,
        ZYDIS_MNEMONIC_CMOVNLE}) {
    registry.add(m, &bind_cmovcc);
  }
  registry.add(ZYDIS_MNEMONIC_PUSH, &bind_push);
  registry.add(ZYDIS_MNEMONIC_POP, &bind_pop);
  registry.add(ZYDIS_MNEMONIC_PUSHA, &bind_fixed<&pusha<2>>);
  registry.add(ZYDIS_MNEMONIC_PUSHAD, &bind_fixed<&pusha<4>>);
  registry.add(ZYDIS_MNEMONIC_POPA, &bind_fixed<&popa<2>>);
  registry.add(ZYDIS_MNEMONIC_POPAD, &bind_fixed<&popa<4>>);
  registry.add(ZYDIS_MNEMONIC_ENTER, &bind_fixed<&enter>);
  registry.add(ZYDIS_MNEMONIC_LEAVE, &bind_fixed<&leave>);
  registry.add(ZYDIS_MNEMONIC_NOP, &bind_fixed<&nop>);
}

}  // namespace hv::emu::integer
