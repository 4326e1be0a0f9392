// Near control flow: JMP, Jcc, JCXZ/JECXZ/JRCXZ, LOOP/LOOPE/LOOPNE, CALL, RET (imm16).
// Far JMP/CALL/RET belong to the system group (chained through chain_to_other_group).
#include "emu/ops_integer.hpp"

namespace hv::emu::integer {
namespace {

template <uint8_t Os>
inline void jump_relative(Cpu& cpu, const Insn& insn) {
  branch_to(cpu, cpu.next_rip + insn.immediate, Os);
}

template <uint8_t Os>
void jmp_rel(Cpu& cpu, const Insn& insn) {
  jump_relative<Os>(cpu, insn);
}

template <uint8_t Os, bool Mem>
void jmp_rm(Cpu& cpu, const Insn& insn) {
  const uint64_t target = Mem ? cpu.read_sized(insn.mem.segment, cpu.effective_address(insn), Os)
                              : cpu.reg(insn.operands[0].reg, Os);
  branch_to(cpu, target, Os);
}

template <uint8_t Os>
void jcc(Cpu& cpu, const Insn& insn) {
  if (cpu.lazy.condition(insn.condition)) {
    jump_relative<Os>(cpu, insn);
  }
}

template <uint8_t Os, uint8_t As>
void jcxz(Cpu& cpu, const Insn& insn) {
  if (cpu.reg(1, As) == 0) {
    jump_relative<Os>(cpu, insn);
  }
}

// Kind: 0 LOOP, 1 LOOPE, 2 LOOPNE. The counter is CX/ECX/RCX by address size.
template <uint8_t Os, uint8_t As, int Kind>
void loop(Cpu& cpu, const Insn& insn) {
  const uint64_t count = (cpu.reg(1, As) - 1) & size_mask(As);
  cpu.set_reg(1, As, count);
  bool taken = count != 0;
  if (Kind == 1) {
    taken = taken && cpu.lazy.zf();
  } else if (Kind == 2) {
    taken = taken && !cpu.lazy.zf();
  }
  if (taken) {
    jump_relative<Os>(cpu, insn);
  }
}

template <uint8_t Os>
void call_rel(Cpu& cpu, const Insn& insn) {
  cpu.push(cpu.next_rip & size_mask(Os), Os);
  jump_relative<Os>(cpu, insn);
}

template <uint8_t Os, bool Mem>
void call_rm(Cpu& cpu, const Insn& insn) {
  const uint64_t target = Mem ? cpu.read_sized(insn.mem.segment, cpu.effective_address(insn), Os)
                              : cpu.reg(insn.operands[0].reg, Os);
  cpu.push(cpu.next_rip & size_mask(Os), Os);
  branch_to(cpu, target, Os);
}

template <uint8_t Os, bool Imm>
void ret(Cpu& cpu, const Insn& insn) {
  const uint64_t target = cpu.pop(Os);
  if constexpr (Imm) {
    const uint8_t ss = cpu.stack_size();
    cpu.set_reg(4, ss, cpu.reg(4, ss) + (insn.immediate & 0xffff));
  }
  branch_to(cpu, target, Os);
}

#define HV_INT_BY_OS(os, ...)  \
  switch (os) {                \
    case 2: {                  \
      constexpr uint8_t O = 2; \
      return __VA_ARGS__;      \
    }                          \
    case 4: {                  \
      constexpr uint8_t O = 4; \
      return __VA_ARGS__;      \
    }                          \
    case 8: {                  \
      constexpr uint8_t O = 8; \
      return __VA_ARGS__;      \
    }                          \
    default:                   \
      return nullptr;          \
  }

#define HV_INT_BY_OS_AS(os, as, ...) \
  switch (as) {                      \
    case 2: {                        \
      constexpr uint8_t A = 2;       \
      HV_INT_BY_OS(os, __VA_ARGS__)  \
    }                                \
    case 4: {                        \
      constexpr uint8_t A = 4;       \
      HV_INT_BY_OS(os, __VA_ARGS__)  \
    }                                \
    case 8: {                        \
      constexpr uint8_t A = 8;       \
      HV_INT_BY_OS(os, __VA_ARGS__)  \
    }                                \
    default:                         \
      return nullptr;                \
  }

bool is_far(const Insn& insn) {
  switch (insn.opcode) {
    case 0xea:  // JMP ptr16:16/32
    case 0x9a:  // CALL ptr16:16/32
    case 0xca:  // RETF imm16
    case 0xcb:
      return true;  // RETF
    case 0xff:
      return insn.modrm_reg == 3 || insn.modrm_reg == 5;  // CALL/JMP m16:16/32/64
    default:
      return false;
  }
}

Handler bind_jmp(const Insn& insn) {
  if (is_far(insn)) {
    return chain_to_other_group(insn);
  }
  if (has_lock(insn)) {
    return nullptr;
  }
  const Operand& o = insn.operands[0];
  switch (o.kind) {
    case OperandKind::kImm:
      HV_INT_BY_OS(insn.operand_size, &jmp_rel<O>)
    case OperandKind::kReg:
      HV_INT_BY_OS(o.size, &jmp_rm<O, false>)
    case OperandKind::kMem:
      HV_INT_BY_OS(o.size, &jmp_rm<O, true>)
    default:
      return nullptr;
  }
}

Handler bind_call(const Insn& insn) {
  if (is_far(insn)) {
    return chain_to_other_group(insn);
  }
  if (has_lock(insn)) {
    return nullptr;
  }
  const Operand& o = insn.operands[0];
  switch (o.kind) {
    case OperandKind::kImm:
      HV_INT_BY_OS(insn.operand_size, &call_rel<O>)
    case OperandKind::kReg:
      HV_INT_BY_OS(o.size, &call_rm<O, false>)
    case OperandKind::kMem:
      HV_INT_BY_OS(o.size, &call_rm<O, true>)
    default:
      return nullptr;
  }
}

Handler bind_ret(const Insn& insn) {
  if (is_far(insn)) {
    return chain_to_other_group(insn);
  }
  if (has_lock(insn)) {
    return nullptr;
  }
  if (insn.opcode == 0xc2) {
    HV_INT_BY_OS(insn.operand_size, &ret<O, true>)
  }
  HV_INT_BY_OS(insn.operand_size, &ret<O, false>)
}

Handler bind_jcc(const Insn& insn) {
  if (has_lock(insn) || insn.operands[0].kind != OperandKind::kImm) {
    return nullptr;
  }
  HV_INT_BY_OS(insn.operand_size, &jcc<O>)
}

Handler bind_jcxz(const Insn& insn) {
  if (has_lock(insn)) {
    return nullptr;
  }
  HV_INT_BY_OS_AS(insn.operand_size, insn.address_size, &jcxz<O, A>)
}

template <int Kind>
Handler bind_loop(const Insn& insn) {
  if (has_lock(insn)) {
    return nullptr;
  }
  HV_INT_BY_OS_AS(insn.operand_size, insn.address_size, &loop<O, A, Kind>)
}

}  // namespace

void register_branch_ops(HandlerRegistry& registry) {
  registry.add(ZYDIS_MNEMONIC_JMP, &bind_jmp);
  registry.add(ZYDIS_MNEMONIC_CALL, &bind_call);
  registry.add(ZYDIS_MNEMONIC_RET, &bind_ret);
  for (ZydisMnemonic m :
       {ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB, ZYDIS_MNEMONIC_JNB,
        ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
        ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP, ZYDIS_MNEMONIC_JNP,
        ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE}) {
    registry.add(m, &bind_jcc);
  }
  registry.add(ZYDIS_MNEMONIC_JCXZ, &bind_jcxz);
  registry.add(ZYDIS_MNEMONIC_JECXZ, &bind_jcxz);
  registry.add(ZYDIS_MNEMONIC_JRCXZ, &bind_jcxz);
  registry.add(ZYDIS_MNEMONIC_LOOP, &bind_loop<0>);
  registry.add(ZYDIS_MNEMONIC_LOOPE, &bind_loop<1>);
  registry.add(ZYDIS_MNEMONIC_LOOPNE, &bind_loop<2>);
}

}  // namespace hv::emu::integer
