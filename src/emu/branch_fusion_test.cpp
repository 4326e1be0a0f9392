// The fused compare-and-branch handlers and the specialised Jcc handlers must behave exactly as
// the two instructions run one by one through their generic handlers (which the differential
// tests check against the host CPU): same registers, flags, memory, next RIP and faults, for
// every condition code, operand size and form, over operand values chosen to hit every edge.
#include <gtest/gtest.h>

#include <initializer_list>
#include <random>
#include <vector>

#include "emu/branch_fusion.hpp"
#include "emu/cpu.hpp"
#include "emu/decoder.hpp"

namespace hv::emu {
namespace {

constexpr uint64_t kMemory = 4ull << 20;
constexpr uint64_t kCodeAddress = 0x10000;
constexpr uint64_t kDataAddress = 0x20000;       // RSI points here
constexpr uint64_t kUnmappedAddress = 0x300000;  // beyond the 2 MiB identity map

struct Outcome {
  int vector = -1;
  uint64_t rip = 0;
  uint64_t flags = 0;
  std::array<uint64_t, 16> gpr{};
  uint64_t data = 0;
  uint64_t instructions = 0;
  bool operator==(const Outcome&) const = default;
};

class BranchFusionTest : public ::testing::Test {
 protected:
  BranchFusionTest()
      : machine_(std::move(*Machine::create({.memory_bytes = kMemory}))),
        pages_(kMemory),
        cpu_(*machine_, pages_, 0) {
    // 64-bit flat mode, the first 2 MiB identity-mapped with one large page.
    GuestMemory& m = machine_->memory();
    EXPECT_TRUE(m.write_object<uint64_t>(0x1000, 0x2000 | 3).ok());
    EXPECT_TRUE(m.write_object<uint64_t>(0x2000, 0x3000 | 3).ok());
    EXPECT_TRUE(m.write_object<uint64_t>(0x3000, 0x83).ok());
    cpu_.cr3 = 0x1000;
    cpu_.cr4 = cr4::kPAE;
    cpu_.efer = efer::kLME | efer::kLMA;
    cpu_.cr0 = cr0::kPE | cr0::kPG | cr0::kET;
    cpu_.seg[kCs] = SegmentCache{0, 0xffffffff, 0x10, 0xa09b};
    for (uint8_t s : {kDs, kEs, kSs, kFs, kGs}) {
      cpu_.seg[s] = SegmentCache{0, 0xffffffff, 0x18, 0xc093};
    }
    cpu_.update_mode();
    cpu_.flush_tlb(true);
  }

  // Decodes the instructions of `code` one after another, as the block decoder does.
  std::vector<Insn> decode(const std::vector<uint8_t>& code, uint8_t code_size = 8) {
    Decoder decoder(code_size);
    std::vector<Insn> insns;
    size_t offset = 0;
    while (offset < code.size()) {
      Insn insn;
      EXPECT_TRUE(decoder.decode(
          std::span<const uint8_t>(code.data() + offset, code.size() - offset), insn));
      offset += insn.length;
      insns.push_back(insn);
    }
    return insns;
  }

  void set_state(uint64_t a, uint64_t b, uint64_t memory_value, uint64_t flags_in) {
    cpu_.gpr = {};
    cpu_.gpr[0] = a;  // rax
    cpu_.gpr[1] = b;  // rcx
    cpu_.gpr[2] = b;  // rdx
    cpu_.gpr[3] = b;  // rbx
    cpu_.gpr[6] = kDataAddress;
    cpu_.lazy.set_materialized(flags_in);
    EXPECT_TRUE(machine_->memory().write_object(kDataAddress, memory_value).ok());
  }

  // Runs `insns` as the run loop does (RIP, next RIP, fault restart point).
  Outcome run(const std::vector<Insn>& insns, uint32_t instruction_count) {
    Outcome out;
    uint64_t rip = kCodeAddress;
    uint64_t retired = 0;
    try {
      for (const Insn& insn : insns) {
        cpu_.rip = rip;
        cpu_.next_rip = rip + insn.length;
        insn.handler(cpu_, insn);
        rip = cpu_.next_rip;
        ++retired;
      }
      retired = instruction_count;
    } catch (const GuestFault& fault) {
      out.vector = fault.vector;
      rip = cpu_.rip;
    }
    out.rip = rip;
    out.flags = cpu_.flags() & flag::kArithmetic;
    out.gpr = cpu_.gpr;
    out.data = *machine_->memory().read_object<uint64_t>(kDataAddress);
    out.instructions = retired;
    return out;
  }

  // Runs producer + Jcc unfused and through fuse_block_end from the same state; they must agree.
  // Returns how many Insns the optimized block kept (1 when fused).
  size_t check(const std::vector<uint8_t>& producer, uint64_t a, uint64_t b, uint64_t memory_value,
               uint64_t flags_in, bool long_branch) {
    size_t kept = 0;
    for (uint8_t cc = 0; cc < 16; ++cc) {
      std::vector<uint8_t> code = producer;
      if (long_branch) {
        code.insert(code.end(), {0x0f, static_cast<uint8_t>(0x80 | cc), 0x00, 0xff, 0xff, 0xff});
      } else {
        code.insert(code.end(), {static_cast<uint8_t>(0x70 | cc), 0x40});
      }
      const std::vector<Insn> plain = decode(code);
      std::vector<Insn> optimized = plain;
      const uint32_t count = fuse_block_end(optimized);
      EXPECT_EQ(count, 2u);
      EXPECT_NE(optimized.back().handler, plain.back().handler);
      kept = optimized.size();

      set_state(a, b, memory_value, flags_in);
      const Outcome expected = run(plain, 2);
      set_state(a, b, memory_value, flags_in);
      const Outcome actual = run(optimized, count);
      EXPECT_EQ(actual, expected) << "condition " << int(cc) << " a=" << std::hex << a << " b=" << b
                                  << " mem=" << memory_value << " producer byte 0 "
                                  << int(producer[0]) << " long=" << long_branch;
    }
    return kept;
  }

  std::unique_ptr<Machine> machine_;
  CodePages pages_;
  Cpu cpu_;
};

std::vector<uint64_t> edge_values() {
  std::vector<uint64_t> values = {0,
                                  1,
                                  2,
                                  0x7f,
                                  0x80,
                                  0xff,
                                  0x7fff,
                                  0x8000,
                                  0xffff,
                                  0x7fffffff,
                                  0x80000000,
                                  0xffffffff,
                                  0x7fffffffffffffff,
                                  0x8000000000000000,
                                  0xffffffffffffffff};
  std::mt19937_64 random(7);
  for (int i = 0; i < 6; ++i) {
    values.push_back(random());
  }
  return values;
}

struct Producer {
  std::vector<uint8_t> bytes;
  bool fuses;  // CMP/TEST: one fused Insn
};

// rax = a; rcx = rdx = rbx = b; rsi -> memory holding `memory_value`.
const std::vector<Producer>& producers() {
  static const std::vector<Producer> list = {
      {{0x48, 0x39, 0xd8}, true},                    // cmp rax, rbx
      {{0x39, 0xd8}, true},                          // cmp eax, ebx
      {{0x66, 0x39, 0xd8}, true},                    // cmp ax, bx
      {{0x38, 0xd8}, true},                          // cmp al, bl
      {{0x38, 0xfc}, true},                          // cmp ah, bh
      {{0x83, 0xf8, 0x80}, true},                    // cmp eax, -128
      {{0x48, 0x3d, 0x00, 0x00, 0x00, 0x80}, true},  // cmp rax, -2^31
      {{0x3c, 0x7f}, true},                          // cmp al, 0x7f
      {{0x3b, 0x06}, true},                          // cmp eax, [rsi]
      {{0x48, 0x39, 0x06}, true},                    // cmp [rsi], rax
      {{0x80, 0x3e, 0x80}, true},                    // cmp byte [rsi], 0x80
      {{0x48, 0x83, 0x3e, 0x01}, true},              // cmp qword [rsi], 1
      // cmp eax, [rip + disp]: the disp reaches kDataAddress from the end of the compare.
      {{0x3b, 0x05, 0xfa, 0xff, 0x00, 0x00}, true},
      {{0x48, 0x85, 0xd8}, true},         // test rax, rbx
      {{0x85, 0xc0}, true},               // test eax, eax
      {{0x84, 0xdb}, true},               // test bl, bl
      {{0xa8, 0x81}, true},               // test al, 0x81
      {{0x85, 0x06}, true},               // test [rsi], eax
      {{0xf6, 0x06, 0x80}, true},         // test byte [rsi], 0x80
      {{0x48, 0x29, 0xd8}, false},        // sub rax, rbx
      {{0x01, 0xd8}, false},              // add eax, ebx
      {{0x48, 0x83, 0xc0, 0x01}, false},  // add rax, 1
      {{0x21, 0xd1}, false},              // and ecx, edx
      {{0x30, 0xd8}, false},              // xor al, bl
      {{0x48, 0x09, 0xd8}, false},        // or rax, rbx
      {{0x66, 0x29, 0x06}, false},        // sub [rsi], ax
      {{0xff, 0xc1}, false},              // inc ecx
      {{0x48, 0xff, 0xc9}, false},        // dec rcx
      {{0xfe, 0xc9}, false},              // dec cl
      {{0x66, 0xff, 0xc0}, false},        // inc ax
  };
  return list;
}

TEST_F(BranchFusionTest, FusedAndSpecialisedBranchesMatchTheInstructionsRunOneByOne) {
  const std::vector<uint64_t> values = edge_values();
  // Carry in set and clear: INC/DEC keep CF, so the branch on it must see the old one.
  for (const uint64_t flags_in : {uint64_t{0}, flag::kArithmetic}) {
    for (const Producer& producer : producers()) {
      for (size_t i = 0; i < values.size(); i += 2) {
        for (size_t j = 0; j < values.size(); j += 3) {
          const bool long_branch = (i + j) % 2 == 1;
          const size_t kept = check(producer.bytes, values[i], values[j],
                                    values[(i + j) % values.size()], flags_in, long_branch);
          ASSERT_EQ(kept, producer.fuses ? 1u : 2u);
        }
        // Equal operands: the boundary of every unsigned and signed comparison.
        check(producer.bytes, values[i], values[i], values[i], flags_in, false);
      }
    }
  }
}

TEST_F(BranchFusionTest, FusedCompareFaultsAtTheCompareWithNothingChanged) {
  const std::vector<Insn> plain = decode({0x3b, 0x06, 0x74, 0x10});  // cmp eax, [rsi]; jz
  std::vector<Insn> fused = plain;
  ASSERT_EQ(fuse_block_end(fused), 2u);
  ASSERT_EQ(fused.size(), 1u);
  set_state(5, 5, 5, 0);
  cpu_.gpr[6] = kUnmappedAddress;
  const Outcome outcome = run(fused, 2);
  EXPECT_EQ(outcome.vector, kPageFault);
  EXPECT_EQ(outcome.rip, kCodeAddress);
  EXPECT_EQ(outcome.instructions, 0u);
  EXPECT_EQ(cpu_.cr2, kUnmappedAddress);
}

TEST_F(BranchFusionTest, SpecialisedBranchFallsBackWhenFlagsWereNotRecordedByItsProducer) {
  // The specialisation assumes the SUB recorded its flags; if something else left them (here a
  // materialized value, as an interrupt return would), the generic evaluation must be used.
  std::vector<Insn> insns = decode({0x48, 0x29, 0xd8, 0x74, 0x10});  // sub rax, rbx; jz
  ASSERT_EQ(fuse_block_end(insns), 2u);
  ASSERT_EQ(insns.size(), 2u);
  cpu_.lazy.set_materialized(flag::kZF);
  cpu_.rip = kCodeAddress + 3;
  cpu_.next_rip = kCodeAddress + 5;
  insns[1].handler(cpu_, insns[1]);
  EXPECT_EQ(cpu_.next_rip, kCodeAddress + 5 + 0x10);
}

TEST_F(BranchFusionTest, SixteenBitBranchesAndOtherBlockEndsAreLeftAlone) {
  // cmp eax, ebx; jz rel8 with an operand-size prefix, in 32-bit code: IP wraps at 64 KiB.
  std::vector<Insn> insns = decode({0x39, 0xd8, 0x66, 0x74, 0x10}, 4);
  ASSERT_EQ(insns[1].operand_size, 2);
  const std::vector<Insn> before = insns;
  EXPECT_EQ(fuse_block_end(insns), 2u);
  ASSERT_EQ(insns.size(), 2u);
  EXPECT_EQ(insns[0].handler, before[0].handler);
  EXPECT_EQ(insns[1].handler, before[1].handler);

  insns = decode({0x39, 0xd8, 0x90});  // cmp; nop
  const Handler nop = insns[1].handler;
  EXPECT_EQ(fuse_block_end(insns), 2u);
  EXPECT_EQ(insns.size(), 2u);
  EXPECT_EQ(insns[1].handler, nop);
}

}  // namespace
}  // namespace hv::emu
