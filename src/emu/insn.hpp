// A decoded instruction as the interpreter runs it. Decoding (Zydis) happens once per guest
// instruction and the result is cached in a block; executing is one indirect call to `handler`
// with everything the handler needs already resolved here (no decoding at run time).
#pragma once

#include <cstdint>

namespace hv::emu {

class Cpu;
struct Insn;

// Handlers run the instruction on the CPU. They fault by throwing GuestFault (cpu.hpp); they must
// not change architectural state before the last point where they can fault, so a faulting
// instruction can be restarted.
using Handler = void (*)(Cpu& cpu, const Insn& insn);

// Register numbering in Insn: 0-15 are the general-purpose registers in encoding order
// (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8-r15). For 8-bit operands, 0-15 are the low bytes
// (al, cl, dl, bl, spl, bpl, sil, dil, r8b-r15b) and kHighByteBase + n (n = 0..3) are ah, ch,
// dh, bh. Segment registers use the SegReg numbering below; xmm registers 0-15.
constexpr uint8_t kHighByteBase = 16;
constexpr uint8_t kNoRegister = 0xff;
constexpr uint8_t kRipBase = 0xfe;  // base register of a RIP-relative memory operand

enum SegReg : uint8_t { kEs = 0, kCs = 1, kSs = 2, kDs = 3, kFs = 4, kGs = 5 };

enum InsnPrefix : uint8_t {
  kPrefixLock = 1 << 0,
  kPrefixRep = 1 << 1,    // F3: REP / REPE / REPZ
  kPrefixRepne = 1 << 2,  // F2: REPNE / REPNZ
};

enum class OperandKind : uint8_t { kNone, kReg, kMem, kImm, kSeg, kCr, kDr, kXmm, kFpu };

struct Operand {
  OperandKind kind = OperandKind::kNone;
  uint8_t reg = kNoRegister;  // kReg/kSeg/kCr/kDr/kXmm/kFpu: register number
  uint8_t size = 0;           // bytes (operand width as the instruction uses it)
};

struct MemOperand {
  // Effective segment after overrides. For string instructions (no explicit memory operand)
  // this is the source segment: DS or the override; the destination is always ES.
  uint8_t segment = kDs;
  uint8_t base = kNoRegister;  // 0-15, kRipBase, or none
  uint8_t index = kNoRegister;
  uint8_t scale = 1;
  int64_t displacement = 0;
};

struct Insn {
  Handler handler = nullptr;
  uint8_t length = 0;
  uint8_t operand_size = 4;   // bytes: 1, 2, 4, 8 (the instruction's main operand width)
  uint8_t address_size = 4;   // bytes: 2, 4, 8
  uint8_t prefixes = 0;       // InsnPrefix bits
  uint8_t condition = 0;      // Jcc/SETcc/CMOVcc condition code (low nibble of the opcode)
  uint8_t operand_count = 0;  // visible operands, up to 3
  Operand operands[3];
  MemOperand mem;  // valid when some operand is kMem
  // First immediate, sign-extended to 64 bits where the ISA says so. For relative branches
  // (JMP/Jcc/CALL rel, LOOP, JCXZ) it is the signed displacement: target = next_rip + immediate.
  // For far pointers (JMP/CALL ptr16:16/32) it is the offset and immediate2 the selector.
  uint64_t immediate = 0;
  uint64_t immediate2 = 0;  // second immediate (ENTER, far pointers: the selector)
  uint16_t mnemonic = 0;    // ZydisMnemonic, for traces and error messages
  uint16_t opcode = 0;      // primary opcode byte (| 0x100 for 0F xx, 0x200 for 0F 38, 0x300 0F 3A)
  uint8_t modrm_reg = 0;    // ModRM.reg field (group opcode extension)
  bool ends_block = false;  // branches, mode changes, anything after which decode may differ
  bool relative = false;    // the immediate is a branch displacement
  bool has_segment_override = false;
};

}  // namespace hv::emu
