// Rewrites the conditional branch that ends a decoded block into a cheaper form.
//
// Nearly every block of ordinary code ends in "flag producer; Jcc". Executing that pair through
// the generic handlers costs two dispatches plus a lazy-flag evaluation that switches on the
// producing operation and on the condition. At decode time both are known, so:
//  - CMP or TEST followed by Jcc becomes one fused handler (one dispatch; the condition is
//    evaluated from the operands directly). The fused Insn keeps the compare's operands; its
//    length covers both instructions, `immediate2` holds the branch displacement and
//    `condition` the branch's operand size.
//  - Any other Jcc gets a handler specialised on its condition code and, when the instruction
//    before it in the block is an ADD/SUB/AND/OR/XOR/INC/DEC, on the flag operation and width
//    that instruction records (checked at run time, falling back to the generic evaluation).
// Flags are recorded exactly as the unfused instructions would record them.
#pragma once

#include <cstdint>
#include <vector>

#include "emu/insn.hpp"

namespace hv::emu {

// Optimizes the end of `insns` in place; may remove the last element (fused into the one
// before). Returns the number of guest instructions the block still represents.
uint32_t fuse_block_end(std::vector<Insn>& insns);

}  // namespace hv::emu
