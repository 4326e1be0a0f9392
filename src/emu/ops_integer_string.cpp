// String instructions: MOVS LODS STOS SCAS CMPS (byte/word/dword/qword) with REP/REPE/REPNE.
//
// The address size picks SI/ESI/RSI, DI/EDI/RDI and CX/ECX/RCX; DF the direction. The source
// segment is insn.mem.segment (DS or the override), the destination always ES. Registers are
// updated after every element, so a fault part-way leaves a restartable state; a REP instruction
// runs at most kMaxIterations elements per call and then re-executes itself (next_rip = rip) so
// the run loop can take interrupts in between.
#include "emu/ops_integer.hpp"

namespace hv::emu::integer {
namespace {

constexpr int kMaxIterations = 4096;

enum class Rep : uint8_t { kNone, kRepe, kRepne };

template <typename T>
inline uint64_t step(const Cpu& cpu) {
  return (cpu.rflags & flag::kDF) ? static_cast<uint64_t>(-static_cast<int64_t>(sizeof(T)))
                                  : sizeof(T);
}

template <typename T, uint8_t A>
inline void movs_one(Cpu& cpu, uint8_t seg, uint64_t delta) {
  const uint64_t si = cpu.reg(6, A);
  const uint64_t di = cpu.reg(7, A);
  cpu.write<T>(kEs, di, cpu.read<T>(seg, si));
  cpu.set_reg(6, A, si + delta);
  cpu.set_reg(7, A, di + delta);
}

template <typename T, uint8_t A>
inline void stos_one(Cpu& cpu, uint64_t delta) {
  const uint64_t di = cpu.reg(7, A);
  cpu.write<T>(kEs, di, static_cast<T>(cpu.gpr[0]));
  cpu.set_reg(7, A, di + delta);
}

template <typename T, uint8_t A>
inline void lods_one(Cpu& cpu, uint8_t seg, uint64_t delta) {
  const uint64_t si = cpu.reg(6, A);
  const T v = cpu.read<T>(seg, si);
  put_reg<T>(cpu, 0, v);
  cpu.set_reg(6, A, si + delta);
}

template <typename T, uint8_t A>
inline void scas_one(Cpu& cpu, uint64_t delta) {
  const uint64_t di = cpu.reg(7, A);
  const T b = cpu.read<T>(kEs, di);
  const T a = get_reg<T>(cpu, 0);
  cpu.set_reg(7, A, di + delta);
  cpu.lazy.set(FlagOp::kSub, sizeof(T), a, b, static_cast<T>(a - b));
}

template <typename T, uint8_t A>
inline void cmps_one(Cpu& cpu, uint8_t seg, uint64_t delta) {
  const uint64_t si = cpu.reg(6, A);
  const uint64_t di = cpu.reg(7, A);
  const T a = cpu.read<T>(seg, si);
  const T b = cpu.read<T>(kEs, di);
  cpu.set_reg(6, A, si + delta);
  cpu.set_reg(7, A, di + delta);
  cpu.lazy.set(FlagOp::kSub, sizeof(T), a, b, static_cast<T>(a - b));
}

enum class Str : uint8_t { kMovs, kStos, kLods, kScas, kCmps };

template <Str Op, typename T, uint8_t A>
inline void string_one(Cpu& cpu, uint8_t seg, uint64_t delta) {
  switch (Op) {
    case Str::kMovs:
      movs_one<T, A>(cpu, seg, delta);
      break;
    case Str::kStos:
      stos_one<T, A>(cpu, delta);
      break;
    case Str::kLods:
      lods_one<T, A>(cpu, seg, delta);
      break;
    case Str::kScas:
      scas_one<T, A>(cpu, delta);
      break;
    case Str::kCmps:
      cmps_one<T, A>(cpu, seg, delta);
      break;
  }
}

// R: kNone (no prefix), kRepe (F3; plain REP for MOVS/STOS/LODS), kRepne (F2; REP for those).
template <Str Op, typename T, uint8_t A, Rep R>
void string_op(Cpu& cpu, const Insn& insn) {
  const uint8_t seg = insn.mem.segment;
  const uint64_t delta = step<T>(cpu);
  if constexpr (R == Rep::kNone) {
    string_one<Op, T, A>(cpu, seg, delta);
  } else {
    constexpr bool kCompares = Op == Str::kScas || Op == Str::kCmps;
    uint64_t count = cpu.reg(1, A);
    for (int n = 0; count != 0; ++n) {
      if (n == kMaxIterations) {
        cpu.next_rip = cpu.rip;  // continue on the next run of this instruction
        return;
      }
      string_one<Op, T, A>(cpu, seg, delta);
      --count;
      cpu.set_reg(1, A, count);
      if constexpr (kCompares) {
        if (R == Rep::kRepe ? !cpu.lazy.zf() : cpu.lazy.zf()) {
          return;
        }
      }
    }
  }
}

template <Str Op, typename T, Rep R>
Handler bind_string_as(uint8_t address_size) {
  switch (address_size) {
    case 2:
      return &string_op<Op, T, 2, R>;
    case 4:
      return &string_op<Op, T, 4, R>;
    case 8:
      return &string_op<Op, T, 8, R>;
    default:
      return nullptr;
  }
}

template <Str Op, typename T>
Handler bind_string_typed(const Insn& insn) {
  if (has_lock(insn)) {
    return nullptr;
  }
  if (insn.prefixes & kPrefixRepne) {
    return bind_string_as<Op, T, Rep::kRepne>(insn.address_size);
  }
  if (insn.prefixes & kPrefixRep) {
    return bind_string_as<Op, T, Rep::kRepe>(insn.address_size);
  }
  return bind_string_as<Op, T, Rep::kNone>(insn.address_size);
}

// MOVSD and CMPSD are also SSE2 mnemonics: their xmm forms go to the SSE group.
template <Str Op, typename T>
Handler bind_string_or_sse(const Insn& insn) {
  for (int i = 0; i < insn.operand_count; ++i) {
    if (insn.operands[i].kind == OperandKind::kXmm) {
      return chain_to_other_group(insn);
    }
  }
  return bind_string_typed<Op, T>(insn);
}

}  // namespace

void register_string_ops(HandlerRegistry& registry) {
  registry.add(ZYDIS_MNEMONIC_MOVSB, &bind_string_typed<Str::kMovs, uint8_t>);
  registry.add(ZYDIS_MNEMONIC_MOVSW, &bind_string_typed<Str::kMovs, uint16_t>);
  registry.add(ZYDIS_MNEMONIC_MOVSD, &bind_string_or_sse<Str::kMovs, uint32_t>);
  registry.add(ZYDIS_MNEMONIC_MOVSQ, &bind_string_typed<Str::kMovs, uint64_t>);
  registry.add(ZYDIS_MNEMONIC_STOSB, &bind_string_typed<Str::kStos, uint8_t>);
  registry.add(ZYDIS_MNEMONIC_STOSW, &bind_string_typed<Str::kStos, uint16_t>);
  registry.add(ZYDIS_MNEMONIC_STOSD, &bind_string_typed<Str::kStos, uint32_t>);
  registry.add(ZYDIS_MNEMONIC_STOSQ, &bind_string_typed<Str::kStos, uint64_t>);
  registry.add(ZYDIS_MNEMONIC_LODSB, &bind_string_typed<Str::kLods, uint8_t>);
  registry.add(ZYDIS_MNEMONIC_LODSW, &bind_string_typed<Str::kLods, uint16_t>);
  registry.add(ZYDIS_MNEMONIC_LODSD, &bind_string_typed<Str::kLods, uint32_t>);
  registry.add(ZYDIS_MNEMONIC_LODSQ, &bind_string_typed<Str::kLods, uint64_t>);
  registry.add(ZYDIS_MNEMONIC_SCASB, &bind_string_typed<Str::kScas, uint8_t>);
  registry.add(ZYDIS_MNEMONIC_SCASW, &bind_string_typed<Str::kScas, uint16_t>);
  registry.add(ZYDIS_MNEMONIC_SCASD, &bind_string_typed<Str::kScas, uint32_t>);
  registry.add(ZYDIS_MNEMONIC_SCASQ, &bind_string_typed<Str::kScas, uint64_t>);
  registry.add(ZYDIS_MNEMONIC_CMPSB, &bind_string_typed<Str::kCmps, uint8_t>);
  registry.add(ZYDIS_MNEMONIC_CMPSW, &bind_string_typed<Str::kCmps, uint16_t>);
  registry.add(ZYDIS_MNEMONIC_CMPSD, &bind_string_or_sse<Str::kCmps, uint32_t>);
  registry.add(ZYDIS_MNEMONIC_CMPSQ, &bind_string_typed<Str::kCmps, uint64_t>);
}

}  // namespace hv::emu::integer
