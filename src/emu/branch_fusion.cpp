#include "emu/branch_fusion.hpp"

#include <array>
#include <utility>

#include "emu/ops_integer_alu.hpp"

namespace hv::emu {
namespace {

using integer::Alu;
using integer::Form;

// Condition `Cc` of flags recorded by operation `Op` on width `W`: with both known at compile
// time, LazyFlags' switches fold to the one comparison the condition needs.
template <FlagOp Op, uint8_t W, uint8_t Cc>
[[gnu::always_inline]] inline bool known_condition(const LazyFlags& recorded) {
  LazyFlags flags;
  flags.op = Op;
  flags.size = W;
  flags.dst = recorded.dst;
  flags.src = recorded.src;
  flags.result = recorded.result;
  flags.carry_in = recorded.carry_in;
  return flags.condition(Cc);
}

// `condition` of a fused or specialised branch holds its operand size (4 or 8).
[[gnu::always_inline]] inline void take_branch(Cpu& cpu, uint64_t displacement,
                                               uint8_t operand_size) {
  const uint64_t target = cpu.next_rip + displacement;
  cpu.next_rip = operand_size == 8 ? target : (target & 0xffffffff);
}

template <Alu Op, typename T, Form F, uint8_t Cc>
void compare_and_branch(Cpu& cpu, const Insn& insn) {
  integer::alu<Op, T, F, false>(cpu, insn);
  constexpr FlagOp kFlagOp = Op == Alu::kCmp ? FlagOp::kSub : FlagOp::kLogic;
  if (known_condition<kFlagOp, sizeof(T), Cc>(cpu.lazy)) {
    take_branch(cpu, insn.immediate2, insn.condition);
  }
}

template <uint8_t Cc>
void jcc_generic(Cpu& cpu, const Insn& insn) {
  if (cpu.lazy.condition(Cc)) {
    take_branch(cpu, insn.immediate, insn.operand_size);
  }
}

template <FlagOp Op, uint8_t W, uint8_t Cc>
void jcc_after(Cpu& cpu, const Insn& insn) {
  const LazyFlags& recorded = cpu.lazy;
  const bool taken = recorded.op == Op && recorded.size == W ? known_condition<Op, W, Cc>(recorded)
                                                             : recorded.condition(Cc);
  if (taken) {
    take_branch(cpu, insn.immediate, insn.operand_size);
  }
}

using ConditionRow = std::array<Handler, 16>;

template <Alu Op, typename T, Form F, size_t... Cc>
constexpr ConditionRow fused_row(std::index_sequence<Cc...>) {
  return {&compare_and_branch<Op, T, F, static_cast<uint8_t>(Cc)>...};
}
template <FlagOp Op, uint8_t W, size_t... Cc>
constexpr ConditionRow jcc_after_row(std::index_sequence<Cc...>) {
  return {&jcc_after<Op, W, static_cast<uint8_t>(Cc)>...};
}
template <size_t... Cc>
constexpr ConditionRow jcc_generic_row(std::index_sequence<Cc...>) {
  return {&jcc_generic<static_cast<uint8_t>(Cc)>...};
}
constexpr auto kConditions = std::make_index_sequence<16>{};

template <Alu Op, typename T>
Handler fused_handler(Form form, uint8_t cc) {
  static constexpr ConditionRow kRR = fused_row<Op, T, Form::kRR>(kConditions);
  static constexpr ConditionRow kRM = fused_row<Op, T, Form::kRM>(kConditions);
  static constexpr ConditionRow kMR = fused_row<Op, T, Form::kMR>(kConditions);
  static constexpr ConditionRow kRI = fused_row<Op, T, Form::kRI>(kConditions);
  static constexpr ConditionRow kMI = fused_row<Op, T, Form::kMI>(kConditions);
  switch (form) {
    case Form::kRR:
      return kRR[cc];
    case Form::kRM:
      return kRM[cc];
    case Form::kMR:
      return kMR[cc];
    case Form::kRI:
      return kRI[cc];
    case Form::kMI:
      return kMI[cc];
  }
  return nullptr;
}

template <Alu Op>
Handler fused_handler(uint8_t size, Form form, uint8_t cc) {
  switch (size) {
    case 1:
      return fused_handler<Op, uint8_t>(form, cc);
    case 2:
      return fused_handler<Op, uint16_t>(form, cc);
    case 4:
      return fused_handler<Op, uint32_t>(form, cc);
    case 8:
      return fused_handler<Op, uint64_t>(form, cc);
    default:
      return nullptr;
  }
}

template <FlagOp Op>
Handler jcc_after_handler(uint8_t width, uint8_t cc) {
  static constexpr ConditionRow k1 = jcc_after_row<Op, 1>(kConditions);
  static constexpr ConditionRow k2 = jcc_after_row<Op, 2>(kConditions);
  static constexpr ConditionRow k4 = jcc_after_row<Op, 4>(kConditions);
  static constexpr ConditionRow k8 = jcc_after_row<Op, 8>(kConditions);
  switch (width) {
    case 1:
      return k1[cc];
    case 2:
      return k2[cc];
    case 4:
      return k4[cc];
    case 8:
      return k8[cc];
    default:
      return nullptr;
  }
}

bool is_conditional_branch(const Insn& insn) {
  const uint16_t row = insn.opcode & 0xff0;
  return (row == 0x70 || row == 0x180) && insn.handler != invalid_opcode &&
         insn.operands[0].kind == OperandKind::kImm;
}

// The flag operation the instruction records, if it is one of the common producers.
bool flag_producer(const Insn& insn, FlagOp& op) {
  switch (insn.mnemonic) {
    case ZYDIS_MNEMONIC_CMP:
    case ZYDIS_MNEMONIC_SUB:
      op = FlagOp::kSub;
      return true;
    case ZYDIS_MNEMONIC_ADD:
      op = FlagOp::kAdd;
      return true;
    case ZYDIS_MNEMONIC_AND:
    case ZYDIS_MNEMONIC_OR:
    case ZYDIS_MNEMONIC_XOR:
    case ZYDIS_MNEMONIC_TEST:
      op = FlagOp::kLogic;
      return true;
    case ZYDIS_MNEMONIC_INC:
      op = FlagOp::kInc;
      return true;
    case ZYDIS_MNEMONIC_DEC:
      op = FlagOp::kDec;
      return true;
    default:
      return false;
  }
}

Handler jcc_after_handler(FlagOp op, uint8_t width, uint8_t cc) {
  switch (op) {
    case FlagOp::kSub:
      return jcc_after_handler<FlagOp::kSub>(width, cc);
    case FlagOp::kAdd:
      return jcc_after_handler<FlagOp::kAdd>(width, cc);
    case FlagOp::kLogic:
      return jcc_after_handler<FlagOp::kLogic>(width, cc);
    case FlagOp::kInc:
      return jcc_after_handler<FlagOp::kInc>(width, cc);
    case FlagOp::kDec:
      return jcc_after_handler<FlagOp::kDec>(width, cc);
    default:
      return nullptr;
  }
}

// CMP/TEST in a form the fused handlers cover: the operand forms of the ALU binder, no LOCK
// (which is #UD for them anyway) and a valid handler.
bool fusable_form(const Insn& insn, Form& form) {
  if ((insn.mnemonic != ZYDIS_MNEMONIC_CMP && insn.mnemonic != ZYDIS_MNEMONIC_TEST) ||
      insn.handler == invalid_opcode || (insn.prefixes & kPrefixLock) || insn.operand_count < 2 ||
      !integer::two_operand_form(insn, form)) {
    return false;
  }
  if (insn.mnemonic == ZYDIS_MNEMONIC_TEST && form == Form::kRM) {
    form = Form::kMR;  // as bind_alu: TEST is commutative
  }
  return true;
}

}  // namespace

uint32_t fuse_block_end(std::vector<Insn>& insns) {
  const auto count = static_cast<uint32_t>(insns.size());
  if (insns.empty()) {
    return count;
  }
  Insn& branch = insns.back();
  // 16-bit branches wrap IP at 64 KiB; they keep the generic handler.
  if (!is_conditional_branch(branch) || (branch.operand_size != 4 && branch.operand_size != 8)) {
    return count;
  }
  const uint8_t cc = branch.condition;
  static constexpr ConditionRow kGeneric = jcc_generic_row(kConditions);
  branch.handler = kGeneric[cc];
  if (insns.size() < 2) {
    return count;
  }
  Insn& producer = insns[insns.size() - 2];
  Form form;
  if (fusable_form(producer, form)) {
    const uint8_t size = producer.operands[0].size;
    const Handler fused = producer.mnemonic == ZYDIS_MNEMONIC_CMP
                              ? fused_handler<Alu::kCmp>(size, form, cc)
                              : fused_handler<Alu::kTest>(size, form, cc);
    if (fused != nullptr) {
      producer.handler = fused;
      producer.immediate2 = branch.immediate;
      producer.condition = branch.operand_size;
      // RIP-relative operands are relative to the end of the compare, which is now the end of
      // the fused pair minus the branch.
      if (producer.mem.base == kRipBase) {
        producer.mem.displacement -= branch.length;
      }
      producer.length = static_cast<uint8_t>(producer.length + branch.length);
      producer.ends_block = true;
      insns.pop_back();
      return count;
    }
  }
  FlagOp op;
  if (flag_producer(producer, op) && producer.handler != invalid_opcode) {
    if (Handler specialised = jcc_after_handler(op, producer.operands[0].size, cc)) {
      branch.handler = specialised;
    }
  }
  return count;
}

}  // namespace hv::emu
