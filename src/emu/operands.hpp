// Generic operand access for handlers: read or write operand i of an instruction whatever its
// kind. Handlers specialised for one form may bypass these and touch cpu.gpr / cpu.read directly.
#pragma once

#include "emu/cpu.hpp"

namespace hv::emu {

inline uint64_t read_operand(Cpu& cpu, const Insn& insn, int i) {
  const Operand& op = insn.operands[i];
  switch (op.kind) {
    case OperandKind::kReg:
      return cpu.reg(op.reg, op.size);
    case OperandKind::kMem:
      return cpu.read_sized(insn.mem.segment, cpu.effective_address(insn), op.size);
    case OperandKind::kImm: {
      // The first immediate operand is in `immediate`, a second one in `immediate2`.
      bool earlier_immediate = false;
      for (int j = 0; j < i; ++j) {
        earlier_immediate |= insn.operands[j].kind == OperandKind::kImm;
      }
      return earlier_immediate ? insn.immediate2 : insn.immediate;
    }
    case OperandKind::kSeg:
      return cpu.seg[op.reg].selector;
    default:
      raise_fault(kInvalidOpcode);
  }
}

inline void write_operand(Cpu& cpu, const Insn& insn, int i, uint64_t value) {
  const Operand& op = insn.operands[i];
  switch (op.kind) {
    case OperandKind::kReg:
      cpu.set_reg(op.reg, op.size, value);
      return;
    case OperandKind::kMem:
      cpu.write_sized(insn.mem.segment, cpu.effective_address(insn), op.size, value);
      return;
    default:
      raise_fault(kInvalidOpcode);
  }
}

inline uint64_t size_mask(uint8_t size) {
  return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

inline int64_t sign_extend(uint64_t value, uint8_t size) {
  const int shift = 64 - size * 8;
  return static_cast<int64_t>(value << shift) >> shift;
}

// Writes RIP for a taken branch, truncated to the operand size as the ISA does (IP wraps at
// 64 KiB in 16-bit code, EIP at 4 GiB).
inline void branch_to(Cpu& cpu, uint64_t target, uint8_t operand_size) {
  cpu.next_rip = operand_size == 8 ? target : (target & size_mask(operand_size));
}

}  // namespace hv::emu
