#include "emu/decoder.hpp"

#include "emu/cpu.hpp"

namespace hv::emu {

namespace {

uint8_t map_register(ZydisRegister r) {
  if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_BL) {
    return static_cast<uint8_t>(r - ZYDIS_REGISTER_AL);
  }
  if (r >= ZYDIS_REGISTER_AH && r <= ZYDIS_REGISTER_BH) {
    return static_cast<uint8_t>(kHighByteBase + (r - ZYDIS_REGISTER_AH));
  }
  if (r >= ZYDIS_REGISTER_SPL && r <= ZYDIS_REGISTER_DIL) {
    return static_cast<uint8_t>(4 + (r - ZYDIS_REGISTER_SPL));
  }
  if (r >= ZYDIS_REGISTER_R8B && r <= ZYDIS_REGISTER_R15B) {
    return static_cast<uint8_t>(8 + (r - ZYDIS_REGISTER_R8B));
  }
  if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_R15W) {
    return static_cast<uint8_t>(r - ZYDIS_REGISTER_AX);
  }
  if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_R15D) {
    return static_cast<uint8_t>(r - ZYDIS_REGISTER_EAX);
  }
  if (r >= ZYDIS_REGISTER_RAX && r <= ZYDIS_REGISTER_R15) {
    return static_cast<uint8_t>(r - ZYDIS_REGISTER_RAX);
  }
  if (r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS) {
    return static_cast<uint8_t>(r - ZYDIS_REGISTER_ES);
  }
  if (r >= ZYDIS_REGISTER_CR0 && r <= ZYDIS_REGISTER_CR15) {
    return static_cast<uint8_t>(r - ZYDIS_REGISTER_CR0);
  }
  if (r >= ZYDIS_REGISTER_DR0 && r <= ZYDIS_REGISTER_DR15) {
    return static_cast<uint8_t>(r - ZYDIS_REGISTER_DR0);
  }
  if (r >= ZYDIS_REGISTER_XMM0 && r <= ZYDIS_REGISTER_XMM15) {
    return static_cast<uint8_t>(r - ZYDIS_REGISTER_XMM0);
  }
  if (r >= ZYDIS_REGISTER_ST0 && r <= ZYDIS_REGISTER_ST7) {
    return static_cast<uint8_t>(r - ZYDIS_REGISTER_ST0);
  }
  if (r == ZYDIS_REGISTER_RIP || r == ZYDIS_REGISTER_EIP || r == ZYDIS_REGISTER_IP) {
    return kRipBase;
  }
  return kNoRegister;
}

OperandKind register_kind(ZydisRegister r) {
  switch (ZydisRegisterGetClass(r)) {
    case ZYDIS_REGCLASS_GPR8:
    case ZYDIS_REGCLASS_GPR16:
    case ZYDIS_REGCLASS_GPR32:
    case ZYDIS_REGCLASS_GPR64:
      return OperandKind::kReg;
    case ZYDIS_REGCLASS_SEGMENT:
      return OperandKind::kSeg;
    case ZYDIS_REGCLASS_CONTROL:
      return OperandKind::kCr;
    case ZYDIS_REGCLASS_DEBUG:
      return OperandKind::kDr;
    case ZYDIS_REGCLASS_XMM:
      return OperandKind::kXmm;
    case ZYDIS_REGCLASS_X87:
      return OperandKind::kFpu;
    default:
      return OperandKind::kNone;
  }
}

uint8_t segment_override(ZyanU64 attributes, bool& present) {
  present = true;
  if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_ES)
    return kEs;
  if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_CS)
    return kCs;
  if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_SS)
    return kSs;
  if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_FS)
    return kFs;
  if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_GS)
    return kGs;
  if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_DS)
    return kDs;
  present = false;
  return kDs;
}

// Instructions after which the next instruction's decoding or address may differ from the
// straight-line successor: the block ends there.
bool ends_block(const ZydisDecodedInstruction& zi) {
  if (zi.meta.branch_type != ZYDIS_BRANCH_TYPE_NONE) {
    return true;
  }
  switch (zi.meta.category) {
    case ZYDIS_CATEGORY_COND_BR:
    case ZYDIS_CATEGORY_UNCOND_BR:
    case ZYDIS_CATEGORY_CALL:
    case ZYDIS_CATEGORY_RET:
    case ZYDIS_CATEGORY_INTERRUPT:
    case ZYDIS_CATEGORY_SYSCALL:
    case ZYDIS_CATEGORY_SYSRET:
    case ZYDIS_CATEGORY_SYSTEM:
    case ZYDIS_CATEGORY_IO:
    case ZYDIS_CATEGORY_IOSTRINGOP:
      return true;
    default:
      break;
  }
  switch (zi.mnemonic) {
    case ZYDIS_MNEMONIC_MOV:
    case ZYDIS_MNEMONIC_POP:
      return false;  // MOV to CR/Sreg and POP SS are handled below through their operands
    case ZYDIS_MNEMONIC_POPF:
    case ZYDIS_MNEMONIC_POPFD:
    case ZYDIS_MNEMONIC_POPFQ:
    case ZYDIS_MNEMONIC_STI:
    case ZYDIS_MNEMONIC_CLI:
    case ZYDIS_MNEMONIC_HLT:
    case ZYDIS_MNEMONIC_LOOP:
    case ZYDIS_MNEMONIC_LOOPE:
    case ZYDIS_MNEMONIC_LOOPNE:
    case ZYDIS_MNEMONIC_JCXZ:
    case ZYDIS_MNEMONIC_JECXZ:
    case ZYDIS_MNEMONIC_JRCXZ:
    case ZYDIS_MNEMONIC_WRMSR:
    case ZYDIS_MNEMONIC_LSS:
    case ZYDIS_MNEMONIC_VMCALL:  // a hypercall may stop the machine (POWER_OFF)
      return true;
    default:
      return false;
  }
}

}  // namespace

void invalid_opcode(Cpu&, const Insn&) {
  raise_fault(kInvalidOpcode);
}

const HandlerRegistry& HandlerRegistry::instance() {
  static const HandlerRegistry registry = [] {
    HandlerRegistry r;
    register_integer_ops(r);
    register_system_ops(r);
    register_fpu_sse_ops(r);
    return r;
  }();
  return registry;
}

Decoder::Decoder(uint8_t code_size) : code_size_(code_size) {
  const ZydisMachineMode mode = code_size == 8   ? ZYDIS_MACHINE_MODE_LONG_64
                                : code_size == 4 ? ZYDIS_MACHINE_MODE_LEGACY_32
                                                 : ZYDIS_MACHINE_MODE_LEGACY_16;
  const ZydisStackWidth stack = code_size == 8   ? ZYDIS_STACK_WIDTH_64
                                : code_size == 4 ? ZYDIS_STACK_WIDTH_32
                                                 : ZYDIS_STACK_WIDTH_16;
  ZydisDecoderInit(&decoder_, mode, stack);
  // The CPU model advertises neither MPX nor CET, and on such CPUs their encodings (ENDBR64 at
  // the top of every function of a CET-built program, BNDMOV, RDSSP ...) are the reserved NOPs
  // of 0F 18-1F. Zydis decodes them as NOP once these modes are off.
  ZydisDecoderEnableMode(&decoder_, ZYDIS_DECODER_MODE_MPX, ZYAN_FALSE);
  ZydisDecoderEnableMode(&decoder_, ZYDIS_DECODER_MODE_CET, ZYAN_FALSE);
}

bool Decoder::decode(std::span<const uint8_t> bytes, Insn& insn) const {
  ZydisDecodedInstruction zi;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  insn = Insn{};
  if (ZYAN_FAILED(ZydisDecoderDecodeFull(&decoder_, bytes.data(), bytes.size(), &zi, ops))) {
    insn.handler = invalid_opcode;
    insn.length = 1;
    insn.ends_block = true;
    return false;
  }
  insn.length = zi.length;
  insn.mnemonic = static_cast<uint16_t>(zi.mnemonic);
  insn.operand_size = static_cast<uint8_t>(zi.operand_width / 8 == 0 ? 1 : zi.operand_width / 8);
  insn.address_size = static_cast<uint8_t>(zi.address_width / 8);
  insn.opcode = static_cast<uint16_t>(zi.opcode | (zi.opcode_map == ZYDIS_OPCODE_MAP_0F     ? 0x100
                                                   : zi.opcode_map == ZYDIS_OPCODE_MAP_0F38 ? 0x200
                                                   : zi.opcode_map == ZYDIS_OPCODE_MAP_0F3A ? 0x300
                                                                                            : 0));
  insn.modrm_reg = zi.raw.modrm.reg;
  insn.condition = static_cast<uint8_t>(zi.opcode & 0xf);
  if (zi.attributes & ZYDIS_ATTRIB_HAS_LOCK)
    insn.prefixes |= kPrefixLock;
  if (zi.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE))
    insn.prefixes |= kPrefixRep;
  if (zi.attributes & ZYDIS_ATTRIB_HAS_REPNE)
    insn.prefixes |= kPrefixRepne;
  bool has_override = false;
  insn.mem.segment = segment_override(zi.attributes, has_override);
  insn.has_segment_override = has_override;

  int immediates = 0;
  const int visible = zi.operand_count_visible < 3 ? zi.operand_count_visible : 3;
  for (int i = 0; i < visible; ++i) {
    const ZydisDecodedOperand& op = ops[i];
    Operand& out = insn.operands[i];
    out.size = static_cast<uint8_t>(op.size / 8);
    switch (op.type) {
      case ZYDIS_OPERAND_TYPE_REGISTER:
        out.kind = register_kind(op.reg.value);
        out.reg = map_register(op.reg.value);
        break;
      case ZYDIS_OPERAND_TYPE_MEMORY:
        out.kind = OperandKind::kMem;
        if (op.mem.segment != ZYDIS_REGISTER_NONE) {
          insn.mem.segment = map_register(op.mem.segment);
        }
        insn.mem.base = map_register(op.mem.base);
        insn.mem.index = map_register(op.mem.index);
        insn.mem.scale = op.mem.scale == 0 ? 1 : op.mem.scale;
        insn.mem.displacement = op.mem.disp.has_displacement ? op.mem.disp.value : 0;
        break;
      case ZYDIS_OPERAND_TYPE_IMMEDIATE:
        out.kind = OperandKind::kImm;
        (immediates++ == 0 ? insn.immediate : insn.immediate2) = op.imm.value.u;
        insn.relative |= op.imm.is_relative;
        break;
      case ZYDIS_OPERAND_TYPE_POINTER:
        out.kind = OperandKind::kImm;
        insn.immediate = op.ptr.offset;
        insn.immediate2 = op.ptr.segment;
        immediates = 2;
        break;
      default:
        break;
    }
  }
  insn.operand_count = static_cast<uint8_t>(visible);
  // A string instruction's source segment (DS or the override) sits in mem.segment even though
  // Zydis lists its memory operands as hidden.
  if (!has_override && (zi.meta.category == ZYDIS_CATEGORY_STRINGOP ||
                        zi.meta.category == ZYDIS_CATEGORY_IOSTRINGOP)) {
    insn.mem.segment = kDs;
  }

  insn.ends_block = ends_block(zi);
  // A REP string instruction runs in slices and re-executes itself (next_rip = rip) until the
  // count is exhausted: nothing may follow it in its block.
  if ((insn.prefixes & (kPrefixRep | kPrefixRepne)) &&
      zi.meta.category == ZYDIS_CATEGORY_STRINGOP) {
    insn.ends_block = true;
  }
  // MOV to a control or segment register (and POP SS) changes how code runs or is interrupted.
  if ((zi.mnemonic == ZYDIS_MNEMONIC_MOV || zi.mnemonic == ZYDIS_MNEMONIC_POP) &&
      (insn.operands[0].kind == OperandKind::kCr || insn.operands[0].kind == OperandKind::kSeg)) {
    insn.ends_block = true;
  }

  Binder binder = HandlerRegistry::instance().find(insn.mnemonic);
  Handler handler = binder != nullptr ? binder(insn) : nullptr;
  insn.handler = handler != nullptr ? handler : invalid_opcode;
  if (handler == nullptr) {
    insn.ends_block = true;
  }
  return handler != nullptr;
}

}  // namespace hv::emu
