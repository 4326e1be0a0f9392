#include "emu/decoder.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "vm/cpu_state.hpp"

namespace hv::emu {
namespace {

Insn decode(uint8_t code_size, std::vector<uint8_t> bytes) {
  Insn insn;
  Decoder(code_size).decode(bytes, insn);
  return insn;
}

TEST(Decoder, FillsOperandsOfAMemoryForm) {
  // add dword [rbx + rcx*4 + 0x10], 7  (83 44 8b 10 07)
  Insn insn = decode(8, {0x83, 0x44, 0x8b, 0x10, 0x07});
  EXPECT_EQ(insn.length, 5);
  EXPECT_EQ(insn.operand_size, 4);
  EXPECT_EQ(insn.address_size, 8);
  ASSERT_EQ(insn.operand_count, 2);
  EXPECT_EQ(insn.operands[0].kind, OperandKind::kMem);
  EXPECT_EQ(insn.operands[1].kind, OperandKind::kImm);
  EXPECT_EQ(insn.mem.base, hv::kRbx);
  EXPECT_EQ(insn.mem.index, hv::kRcx);
  EXPECT_EQ(insn.mem.scale, 4);
  EXPECT_EQ(insn.mem.displacement, 0x10);
  EXPECT_EQ(insn.mem.segment, kDs);
  EXPECT_EQ(insn.immediate, 7u);
  EXPECT_NE(insn.handler, &invalid_opcode);
  EXPECT_FALSE(insn.ends_block);
}

TEST(Decoder, MapsHighByteRegistersAndRipRelative) {
  // mov ah, [rip + 0x100]  (8a 25 00 01 00 00)
  Insn insn = decode(8, {0x8a, 0x25, 0x00, 0x01, 0x00, 0x00});
  EXPECT_EQ(insn.operands[0].reg, kHighByteBase + 0);
  EXPECT_EQ(insn.mem.base, kRipBase);
  EXPECT_EQ(insn.mem.displacement, 0x100);
}

TEST(Decoder, SegmentOverrideAndRepStringEndsItsBlock) {
  // rep movsb with an FS override: the source segment is FS, and the instruction re-executes
  // itself in slices, so it must be the last of its block.
  Insn insn = decode(8, {0x64, 0xf3, 0xa4});
  EXPECT_EQ(insn.mem.segment, kFs);
  EXPECT_TRUE(insn.prefixes & kPrefixRep);
  EXPECT_TRUE(insn.ends_block);
  Insn plain = decode(8, {0xa4});
  EXPECT_FALSE(plain.ends_block);
}

TEST(Decoder, BranchesAndModeChangesEndBlocks) {
  EXPECT_TRUE(decode(8, {0x75, 0x02}).ends_block);                    // jnz
  EXPECT_TRUE(decode(8, {0xe8, 0, 0, 0, 0}).ends_block);              // call
  EXPECT_TRUE(decode(8, {0xc3}).ends_block);                          // ret
  EXPECT_TRUE(decode(8, {0x0f, 0x22, 0xc0}).ends_block);              // mov cr0, rax
  EXPECT_TRUE(decode(4, {0x8e, 0xd8}).ends_block);                    // mov ds, ax
  EXPECT_TRUE(decode(8, {0xf4}).ends_block);                          // hlt
  EXPECT_TRUE(decode(4, {0xea, 0, 0, 0x10, 0, 0x08, 0}).ends_block);  // jmp far
  EXPECT_FALSE(decode(8, {0x48, 0x01, 0xd8}).ends_block);             // add rax, rbx
}

TEST(Decoder, SameBytesDecodeByMode) {
  // 0x40 is INC EAX in 32-bit code and a REX prefix in 64-bit code.
  EXPECT_EQ(decode(4, {0x40}).length, 1);
  EXPECT_EQ(decode(8, {0x40, 0x01, 0xd8}).length, 3);
  // 66 b8 imm16 in 32-bit code, b8 imm16 in 16-bit code.
  EXPECT_EQ(decode(2, {0xb8, 0x34, 0x12}).operand_size, 2);
  EXPECT_EQ(decode(4, {0xb8, 0x78, 0x56, 0x34, 0x12}).operand_size, 4);
}

TEST(Decoder, CetAndMpxEncodingsAreTheReservedNops) {
  // Without CET and MPX advertised these run as NOPs of their full length, as on such CPUs.
  const std::vector<std::vector<uint8_t>> nops = {
      {0xf3, 0x0f, 0x1e, 0xfa},        // endbr64
      {0xf3, 0x0f, 0x1e, 0xfb},        // endbr32
      {0xf3, 0x48, 0x0f, 0x1e, 0xc8},  // rdsspq rax
      {0x66, 0x0f, 0x1b, 0x04, 0x24},  // bndmov [rsp], bnd0
      {0xf2, 0x0f, 0x1a, 0xc0},        // bndcu bnd0, rax
  };
  for (const auto& bytes : nops) {
    Insn insn = decode(8, bytes);
    EXPECT_EQ(insn.mnemonic, ZYDIS_MNEMONIC_NOP) << "first byte " << int(bytes[0]);
    EXPECT_EQ(insn.length, bytes.size());
    EXPECT_NE(insn.handler, &invalid_opcode);
  }
}

TEST(Decoder, InvalidBytesGiveTheInvalidOpcodeHandler) {
  Insn insn;
  std::vector<uint8_t> bytes = {0x0f, 0x0b};  // ud2 is valid; use a truncated instruction
  EXPECT_TRUE(Decoder(8).decode(bytes, insn));
  std::vector<uint8_t> truncated = {0x48, 0x8b};
  EXPECT_FALSE(Decoder(8).decode(truncated, insn));
  EXPECT_EQ(insn.handler, &invalid_opcode);
  EXPECT_TRUE(insn.ends_block);
}

}  // namespace
}  // namespace hv::emu
