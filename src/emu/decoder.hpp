// Turns guest bytes into Insn (insn.hpp) with Zydis, once per instruction; the executor caches
// the result in blocks.
//
// The decoder fills every generic field of Insn (operands, memory operand, immediates, sizes,
// prefixes, condition code). Choosing the handler is left to a Binder registered per Zydis
// mnemonic by each instruction group (ops_*.cpp): it looks at the operand kinds and sizes and
// returns the specialised handler, or nullptr when that form is not implemented (#UD).
#pragma once

#include <Zydis/Zydis.h>

#include <array>
#include <cstdint>
#include <span>

#include "emu/insn.hpp"

namespace hv::emu {

using Binder = Handler (*)(const Insn& insn);

class HandlerRegistry {
 public:
  void add(ZydisMnemonic mnemonic, Binder binder) { binders_[mnemonic] = binder; }
  Binder find(uint16_t mnemonic) const {
    return mnemonic < binders_.size() ? binders_[mnemonic] : nullptr;
  }
  // All groups registered once (the registry is immutable afterwards).
  static const HandlerRegistry& instance();

 private:
  std::array<Binder, ZYDIS_MNEMONIC_MAX_VALUE + 1> binders_{};
};

// Instruction groups; each lives in its own ops_*.cpp file.
void register_integer_ops(HandlerRegistry& registry);  // ALU, moves, stack, branches, strings
void register_system_ops(HandlerRegistry& registry);   // privileged, segments, I/O, interrupts
void register_fpu_sse_ops(HandlerRegistry& registry);  // x87, SSE, SSE2

class Decoder {
 public:
  // code_size: 2, 4 or 8 (16-bit, 32-bit, 64-bit code segment).
  explicit Decoder(uint8_t code_size);
  // Decodes one instruction from `bytes` (up to 15). Returns false when the bytes are not a
  // valid instruction; insn then holds a #UD handler and the length the CPU would fault on.
  bool decode(std::span<const uint8_t> bytes, Insn& insn) const;

 private:
  ZydisDecoder decoder_{};
  uint8_t code_size_;
};

// The handler for invalid or unimplemented instructions: raises #UD.
void invalid_opcode(Cpu& cpu, const Insn& insn);

}  // namespace hv::emu
