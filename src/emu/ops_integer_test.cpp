// Integer instruction handlers, run through the real decoder: a differential check of the ALU,
// shift/rotate and multiply flags against the host CPU, plus targeted tests of moves, stack,
// branches, strings (REP, DF, restart after a fault), division faults and atomics.
#include <gtest/gtest.h>

#include <initializer_list>
#include <random>
#include <vector>

#include "emu/cpu.hpp"
#include "emu/decoder.hpp"
#include "emu/operands.hpp"

namespace hv::emu {
namespace {

constexpr uint64_t kMemory = 4ull << 20;
constexpr uint64_t kArith = flag::kArithmetic;

class IntegerOpsTest : public ::testing::Test {
 protected:
  IntegerOpsTest()
      : machine_(std::move(*Machine::create({.memory_bytes = kMemory}))),
        pages_(kMemory),
        cpu_(*machine_, pages_, 0) {
    enter_long_mode();
  }

  GuestMemory& memory() { return machine_->memory(); }
  template <typename T>
  void put(uint64_t pa, T v) {
    ASSERT_TRUE(memory().write_object(pa, v).ok());
  }
  template <typename T>
  T get(uint64_t pa) {
    return *memory().read_object<T>(pa);
  }

  // 64-bit flat mode; the first 2 MiB identity-mapped with one large page (the rest unmapped).
  void enter_long_mode() {
    put<uint64_t>(0x1000, 0x2000 | 3);
    put<uint64_t>(0x2000, 0x3000 | 3);
    put<uint64_t>(0x3000, 0x0 | 0x83);
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
    code_size_ = 8;
  }

  // 32-bit flat protected mode without paging.
  void enter_protected_mode() {
    cpu_.efer = 0;
    cpu_.cr4 = 0;
    cpu_.cr0 = cr0::kPE | cr0::kET;
    cpu_.seg[kCs] = SegmentCache{0, 0xffffffff, 0x08, 0xc09b};
    for (uint8_t s : {kDs, kEs, kSs, kFs, kGs}) {
      cpu_.seg[s] = SegmentCache{0, 0xffffffff, 0x10, 0xc093};
    }
    cpu_.update_mode();
    cpu_.flush_tlb(true);
    code_size_ = 4;
  }

  Insn decode(std::initializer_list<uint8_t> bytes) {
    const std::vector<uint8_t> v(bytes);
    Decoder decoder(code_size_);
    Insn insn;
    EXPECT_TRUE(decoder.decode(v, insn));
    return insn;
  }

  // Runs one instruction as the run loop does; returns the fault vector or -1.
  int run(std::initializer_list<uint8_t> bytes, uint64_t rip = 0x10000) {
    const Insn insn = decode(bytes);
    return run(insn, rip);
  }
  int run(const Insn& insn, uint64_t rip = 0x10000) {
    cpu_.rip = rip;
    cpu_.next_rip = rip + insn.length;
    try {
      insn.handler(cpu_, insn);
    } catch (const GuestFault& f) {
      return f.vector;
    }
    cpu_.rip = cpu_.next_rip;
    return -1;
  }

  std::unique_ptr<Machine> machine_;
  CodePages pages_;
  Cpu cpu_;
  uint8_t code_size_ = 8;
};

// ---------------------------------------------------------------------------------------------
// Differential tests against the host CPU
// ---------------------------------------------------------------------------------------------

// Host execution: flags in via POPF, flags out via PUSHF (below the red zone).
#define HOST_BINOP(NAME, MNEMONIC)                                          \
  template <typename T>                                                     \
  uint64_t host_##NAME(T& a, T b, uint64_t fin) {                           \
    uint64_t fout;                                                          \
    asm volatile("sub $128, %%rsp\n\tpushq %[fin]\n\tpopfq\n\t" MNEMONIC    \
                 " %[b], %[a]\n\tpushfq\n\tpopq %[fout]\n\tadd $128, %%rsp" \
                 : [a] "+r"(a), [fout] "=&r"(fout)                          \
                 : [b] "r"(b), [fin] "r"(fin)                               \
                 : "cc");                                                   \
    return fout;                                                            \
  }

HOST_BINOP(add, "add")
HOST_BINOP(or, "or")
HOST_BINOP(adc, "adc")
HOST_BINOP(sbb, "sbb")
HOST_BINOP(and, "and")
HOST_BINOP(sub, "sub")
HOST_BINOP(xor, "xor")
HOST_BINOP(cmp, "cmp")
HOST_BINOP(test, "test")
HOST_BINOP(imul, "imul")

#define HOST_UNOP(NAME, MNEMONIC)                                        \
  template <typename T>                                                  \
  uint64_t host_##NAME(T& a, T, uint64_t fin) {                          \
    uint64_t fout;                                                       \
    asm volatile("sub $128, %%rsp\n\tpushq %[fin]\n\tpopfq\n\t" MNEMONIC \
                 " %[a]\n\tpushfq\n\tpopq %[fout]\n\tadd $128, %%rsp"    \
                 : [a] "+r"(a), [fout] "=&r"(fout)                       \
                 : [fin] "r"(fin)                                        \
                 : "cc");                                                \
    return fout;                                                         \
  }

HOST_UNOP(inc, "inc")
HOST_UNOP(dec, "dec")
HOST_UNOP(neg, "neg")
HOST_UNOP(not, "not")

#define HOST_SHIFT(NAME, MNEMONIC)                                          \
  template <typename T>                                                     \
  uint64_t host_##NAME(T& a, T count, uint64_t fin) {                       \
    uint64_t fout;                                                          \
    const uint8_t c = static_cast<uint8_t>(count);                          \
    asm volatile("sub $128, %%rsp\n\tpushq %[fin]\n\tpopfq\n\t" MNEMONIC    \
                 " %%cl, %[a]\n\tpushfq\n\tpopq %[fout]\n\tadd $128, %%rsp" \
                 : [a] "+r"(a), [fout] "=&r"(fout)                          \
                 : [c] "c"(c), [fin] "r"(fin)                               \
                 : "cc");                                                   \
    return fout;                                                            \
  }

HOST_SHIFT(rol, "rol")
HOST_SHIFT(ror, "ror")
HOST_SHIFT(rcl, "rcl")
HOST_SHIFT(rcr, "rcr")
HOST_SHIFT(shl, "shl")
HOST_SHIFT(shr, "shr")
HOST_SHIFT(sar, "sar")

enum class Kind { kBinary, kUnary, kShift, kImul2 };

template <typename T>
std::vector<T> interesting_values() {
  const T sign = static_cast<T>(T{1} << (sizeof(T) * 8 - 1));
  std::vector<T> v = {0,
                      1,
                      2,
                      static_cast<T>(~T{0}),
                      sign,
                      static_cast<T>(sign - 1),
                      static_cast<T>(sign + 1),
                      static_cast<T>(0x5555555555555555ull),
                      static_cast<T>(0xaaaaaaaaaaaaaaaaull),
                      static_cast<T>(0x0f),
                      static_cast<T>(0x10)};
  std::mt19937_64 rng(12345 + sizeof(T));
  for (int i = 0; i < 40; ++i) {
    v.push_back(static_cast<T>(rng()));
  }
  return v;
}

// Encodes `op eax-sized, ecx-sized` (or the one-operand / CL-count forms) for width T.
template <typename T>
std::vector<uint8_t> encode(uint8_t opcode8, uint8_t modrm, bool two_byte = false) {
  std::vector<uint8_t> b;
  if (sizeof(T) == 2) {
    b.push_back(0x66);
  }
  if (sizeof(T) == 8) {
    b.push_back(0x48);
  }
  if (two_byte) {
    b.push_back(0x0f);
  }
  b.push_back(static_cast<uint8_t>(opcode8 + (sizeof(T) == 1 || two_byte ? 0 : 1)));
  b.push_back(modrm);
  return b;
}

template <typename T, typename HostFn>
void differential(IntegerOpsTest* t, Cpu& cpu, const char* name, Kind kind, uint8_t opcode8,
                  uint8_t modrm, HostFn host, bool writes_result, uint64_t defined_flags,
                  bool two_byte = false) {
  const std::vector<uint8_t> bytes = encode<T>(opcode8, modrm, two_byte);
  Decoder decoder(8);
  Insn insn;
  ASSERT_TRUE(decoder.decode(bytes, insn)) << name;
  const auto values = interesting_values<T>();
  constexpr unsigned kWidth = sizeof(T) * 8;
  std::vector<T> seconds = values;
  if (kind == Kind::kShift) {
    seconds.clear();
    for (unsigned c = 0; c < 2 * kWidth + 3 && c < 70; ++c) {
      seconds.push_back(static_cast<T>(c));
    }
  }
  int checked = 0;
  for (T a : values) {
    for (T b : seconds) {
      for (uint64_t fin : {uint64_t{0x2}, uint64_t{0x2 | kArith}}) {
        T host_result = a;
        const uint64_t host_flags = host(host_result, b, fin);
        cpu.gpr[0] = 0x1111111111111111ull;
        cpu.set_reg(0, sizeof(T), a);
        cpu.gpr[1] = 0x2222222222222222ull;
        cpu.set_reg(1, sizeof(T), b);
        cpu.lazy.set_materialized(fin);
        cpu.rip = 0x1000;
        cpu.next_rip = cpu.rip + insn.length;
        insn.handler(cpu, insn);
        uint64_t mask = defined_flags;
        if (kind == Kind::kShift) {
          const unsigned c = b & (kWidth == 64 ? 63 : 31);
          const bool rotate = opcode8 <= 0xd2 && ((modrm >> 3) & 7) <= 3;
          if (c != 1) {
            mask &= ~flag::kOF;
          }
          if (!rotate && c >= kWidth) {
            mask &= ~flag::kCF;  // undefined beyond the width
          }
          if (rotate) {
            mask &= flag::kCF | flag::kOF;
          }
        }
        const uint64_t expect_flags = host_flags & mask;
        const uint64_t got_flags = cpu.flags() & mask;
        if (writes_result) {
          const uint64_t expect =
              (0x1111111111111111ull & ~size_mask(sizeof(T)) & (sizeof(T) == 4 ? 0 : ~0ull)) |
              host_result;
          ASSERT_EQ(cpu.gpr[0], expect)
              << name << " width " << kWidth << " a=" << +a << " b=" << +b << " fin=" << fin;
        } else {
          ASSERT_EQ(cpu.reg(0, sizeof(T)), static_cast<uint64_t>(a)) << name;
        }
        ASSERT_EQ(got_flags, expect_flags)
            << name << " width " << kWidth << " a=" << +a << " b=" << +b << " fin=" << fin
            << std::hex << " got=" << cpu.flags() << " host=" << host_flags;
        ++checked;
      }
    }
  }
  (void)t;
  EXPECT_GT(checked, 0);
}

constexpr uint64_t kAll = kArith;
constexpr uint64_t kLogicDefined = kArith & ~flag::kAF;
constexpr uint64_t kShiftDefined = kArith & ~flag::kAF;

template <typename T>
void differential_width(IntegerOpsTest* t, Cpu& cpu) {
  // op eAX, eCX: modrm 0xC8 (reg = ecx, rm = eax).
  differential<T>(t, cpu, "add", Kind::kBinary, 0x00, 0xc8, host_add<T>, true, kAll);
  differential<T>(t, cpu, "or", Kind::kBinary, 0x08, 0xc8, host_or<T>, true, kLogicDefined);
  differential<T>(t, cpu, "adc", Kind::kBinary, 0x10, 0xc8, host_adc<T>, true, kAll);
  differential<T>(t, cpu, "sbb", Kind::kBinary, 0x18, 0xc8, host_sbb<T>, true, kAll);
  differential<T>(t, cpu, "and", Kind::kBinary, 0x20, 0xc8, host_and<T>, true, kLogicDefined);
  differential<T>(t, cpu, "sub", Kind::kBinary, 0x28, 0xc8, host_sub<T>, true, kAll);
  differential<T>(t, cpu, "xor", Kind::kBinary, 0x30, 0xc8, host_xor<T>, true, kLogicDefined);
  differential<T>(t, cpu, "cmp", Kind::kBinary, 0x38, 0xc8, host_cmp<T>, false, kAll);
  differential<T>(t, cpu, "test", Kind::kBinary, 0x84, 0xc8, host_test<T>, false, kLogicDefined);
  // Group 3 / 4-5: F6/F7 /2 NOT, /3 NEG; FE/FF /0 INC, /1 DEC (rm = eax).
  differential<T>(t, cpu, "not", Kind::kUnary, 0xf6, 0xd0, host_not<T>, true, 0);
  differential<T>(t, cpu, "neg", Kind::kUnary, 0xf6, 0xd8, host_neg<T>, true, kAll);
  differential<T>(t, cpu, "inc", Kind::kUnary, 0xfe, 0xc0, host_inc<T>, true, kAll);
  differential<T>(t, cpu, "dec", Kind::kUnary, 0xfe, 0xc8, host_dec<T>, true, kAll);
  // Group 2 with CL: D2/D3 /0 ROL /1 ROR /2 RCL /3 RCR /4 SHL /5 SHR /7 SAR.
  differential<T>(t, cpu, "rol", Kind::kShift, 0xd2, 0xc0, host_rol<T>, true, kShiftDefined);
  differential<T>(t, cpu, "ror", Kind::kShift, 0xd2, 0xc8, host_ror<T>, true, kShiftDefined);
  differential<T>(t, cpu, "rcl", Kind::kShift, 0xd2, 0xd0, host_rcl<T>, true, kShiftDefined);
  differential<T>(t, cpu, "rcr", Kind::kShift, 0xd2, 0xd8, host_rcr<T>, true, kShiftDefined);
  differential<T>(t, cpu, "shl", Kind::kShift, 0xd2, 0xe0, host_shl<T>, true, kShiftDefined);
  differential<T>(t, cpu, "shr", Kind::kShift, 0xd2, 0xe8, host_shr<T>, true, kShiftDefined);
  differential<T>(t, cpu, "sar", Kind::kShift, 0xd2, 0xf8, host_sar<T>, true, kShiftDefined);
  if constexpr (sizeof(T) > 1) {
    // IMUL eAX, eCX: 0F AF /r with reg = eax, rm = ecx.
    differential<T>(t, cpu, "imul", Kind::kImul2, 0xaf, 0xc1, host_imul<T>, true,
                    flag::kCF | flag::kOF, true);
  }
}

TEST_F(IntegerOpsTest, IntegerDifferentialAluFlags8) {
  differential_width<uint8_t>(this, cpu_);
}
TEST_F(IntegerOpsTest, IntegerDifferentialAluFlags16) {
  differential_width<uint16_t>(this, cpu_);
}
TEST_F(IntegerOpsTest, IntegerDifferentialAluFlags32) {
  differential_width<uint32_t>(this, cpu_);
}
TEST_F(IntegerOpsTest, IntegerDifferentialAluFlags64) {
  differential_width<uint64_t>(this, cpu_);
}

// ---------------------------------------------------------------------------------------------
// Targeted tests
// ---------------------------------------------------------------------------------------------

TEST_F(IntegerOpsTest, IntegerMovForms) {
  cpu_.gpr[0] = 0x1122334455667788ull;
  ASSERT_EQ(run({0x88, 0xc4}), -1);  // mov ah, al
  EXPECT_EQ(cpu_.gpr[0], 0x1122334455668888ull);
  ASSERT_EQ(run({0x89, 0xc3}), -1);  // mov ebx, eax: zero-extends
  EXPECT_EQ(cpu_.gpr[3], 0x55668888ull);
  ASSERT_EQ(run({0x48, 0xb9, 1, 2, 3, 4, 5, 6, 7, 8}), -1);  // mov rcx, imm64
  EXPECT_EQ(cpu_.gpr[1], 0x0807060504030201ull);
  ASSERT_EQ(run({0x48, 0xc7, 0xc2, 0xff, 0xff, 0xff, 0xff}), -1);  // mov rdx, -1 (imm32)
  EXPECT_EQ(cpu_.gpr[2], ~0ull);
  cpu_.gpr[3] = 0x5000;
  ASSERT_EQ(run({0x48, 0x89, 0x4b, 0x08}), -1);  // mov [rbx+8], rcx
  EXPECT_EQ(get<uint64_t>(0x5008), 0x0807060504030201ull);
  ASSERT_EQ(run({0x8a, 0x7b, 0x09}), -1);  // mov bh, [rbx+9]
  EXPECT_EQ(cpu_.gpr[3], 0x0200ull);       // bh replaced
  // moffs: mov eax, [0x5008] (A1 with 64-bit address)
  ASSERT_EQ(run({0xa1, 0x08, 0x50, 0, 0, 0, 0, 0, 0}), -1);
  EXPECT_EQ(cpu_.gpr[0], 0x04030201ull);
  // movzx / movsx / movsxd
  cpu_.gpr[1] = 0x80;
  ASSERT_EQ(run({0x0f, 0xb6, 0xc1}), -1);  // movzx eax, cl
  EXPECT_EQ(cpu_.gpr[0], 0x80u);
  ASSERT_EQ(run({0x48, 0x0f, 0xbe, 0xc1}), -1);  // movsx rax, cl
  EXPECT_EQ(cpu_.gpr[0], 0xffffffffffffff80ull);
  cpu_.gpr[1] = 0x80000000;
  ASSERT_EQ(run({0x48, 0x63, 0xc1}), -1);  // movsxd rax, ecx
  EXPECT_EQ(cpu_.gpr[0], 0xffffffff80000000ull);
  // lea with operand-size truncation: lea eax, [rcx + rcx*2 + 5]
  cpu_.gpr[1] = 0x100000000ull;
  ASSERT_EQ(run({0x8d, 0x44, 0x49, 0x05}), -1);
  EXPECT_EQ(cpu_.gpr[0], 5u);
}

TEST_F(IntegerOpsTest, IntegerCmovSetccXchg) {
  cpu_.gpr[0] = 0xffffffff00000001ull;
  cpu_.gpr[1] = 7;
  cpu_.lazy.set_materialized(0);           // ZF = 0
  ASSERT_EQ(run({0x0f, 0x44, 0xc1}), -1);  // cmovz eax, ecx: not taken, still zero-extends
  EXPECT_EQ(cpu_.gpr[0], 1u);
  ASSERT_EQ(run({0x0f, 0x45, 0xc1}), -1);  // cmovnz eax, ecx
  EXPECT_EQ(cpu_.gpr[0], 7u);
  ASSERT_EQ(run({0x0f, 0x95, 0xc3}), -1);  // setnz bl
  EXPECT_EQ(cpu_.gpr[3] & 0xff, 1u);
  cpu_.gpr[3] = 0x5000;
  put<uint32_t>(0x5000, 0xabcd);
  ASSERT_EQ(run({0x87, 0x03}), -1);  // xchg [rbx], eax
  EXPECT_EQ(cpu_.gpr[0], 0xabcdu);
  EXPECT_EQ(get<uint32_t>(0x5000), 7u);
}

TEST_F(IntegerOpsTest, IntegerStackAndBranches) {
  cpu_.gpr[4] = 0x8000;
  cpu_.gpr[0] = 0x1234;
  ASSERT_EQ(run({0x50}), -1);  // push rax
  EXPECT_EQ(cpu_.gpr[4], 0x7ff8u);
  EXPECT_EQ(get<uint64_t>(0x7ff8), 0x1234u);
  ASSERT_EQ(run({0x6a, 0xff}), -1);  // push -1 (imm8 sign-extended)
  EXPECT_EQ(get<uint64_t>(0x7ff0), ~0ull);
  ASSERT_EQ(run({0x66, 0x6a, 0x05}), -1);  // push word 5
  EXPECT_EQ(cpu_.gpr[4], 0x7feeu);
  EXPECT_EQ(get<uint16_t>(0x7fee), 5u);
  ASSERT_EQ(run({0x66, 0x5b}), -1);  // pop bx
  EXPECT_EQ(cpu_.gpr[3] & 0xffff, 5u);
  ASSERT_EQ(run({0x59}), -1);  // pop rcx
  EXPECT_EQ(cpu_.gpr[1], ~0ull);
  // call rel32 / ret
  ASSERT_EQ(run({0xe8, 0x10, 0, 0, 0}, 0x20000), -1);
  EXPECT_EQ(cpu_.rip, 0x20015u);
  EXPECT_EQ(get<uint64_t>(cpu_.gpr[4]), 0x20005u);
  ASSERT_EQ(run({0xc2, 0x08, 0x00}, 0x20015), -1);  // ret 8
  EXPECT_EQ(cpu_.rip, 0x20005u);
  EXPECT_EQ(cpu_.gpr[4], 0x7ff8u + 8);
  // jcc
  cpu_.lazy.set(FlagOp::kSub, 4, 1, 2, static_cast<uint32_t>(1 - 2));  // 1 < 2: CF, SF
  ASSERT_EQ(run({0x72, 0x10}, 0x3000), -1);                            // jb +16
  EXPECT_EQ(cpu_.rip, 0x3012u);
  ASSERT_EQ(run({0x0f, 0x8d, 0x00, 0x01, 0, 0}, 0x3000), -1);  // jge: not taken
  EXPECT_EQ(cpu_.rip, 0x3006u);
  ASSERT_EQ(run({0xeb, 0xfe}, 0x3000), -1);  // jmp $
  EXPECT_EQ(cpu_.rip, 0x3000u);
  cpu_.gpr[0] = 0x4444;
  ASSERT_EQ(run({0xff, 0xe0}, 0x3000), -1);  // jmp rax
  EXPECT_EQ(cpu_.rip, 0x4444u);
  // loop
  cpu_.gpr[1] = 2;
  ASSERT_EQ(run({0xe2, 0xfe}, 0x3000), -1);
  EXPECT_EQ(cpu_.rip, 0x3000u);
  ASSERT_EQ(run({0xe2, 0xfe}, 0x3000), -1);
  EXPECT_EQ(cpu_.rip, 0x3002u);
  EXPECT_EQ(cpu_.gpr[1], 0u);
  ASSERT_EQ(run({0xe3, 0x05}, 0x3000), -1);  // jrcxz
  EXPECT_EQ(cpu_.rip, 0x3007u);
  // enter 16, 0 / leave
  cpu_.gpr[5] = 0xdead;
  const uint64_t sp = cpu_.gpr[4];
  ASSERT_EQ(run({0xc8, 0x10, 0x00, 0x00}), -1);
  EXPECT_EQ(cpu_.gpr[5], sp - 8);
  EXPECT_EQ(cpu_.gpr[4], sp - 8 - 16);
  ASSERT_EQ(run({0xc9}), -1);
  EXPECT_EQ(cpu_.gpr[5], 0xdeadu);
  EXPECT_EQ(cpu_.gpr[4], sp);
}

TEST_F(IntegerOpsTest, IntegerStringOps) {
  for (int i = 0; i < 32; ++i) {
    put<uint8_t>(0x6000 + i, static_cast<uint8_t>(i + 1));
  }
  cpu_.gpr[6] = 0x6000;
  cpu_.gpr[7] = 0x7000;
  cpu_.gpr[1] = 32;
  ASSERT_EQ(run({0xf3, 0xa4}), -1);  // rep movsb
  EXPECT_EQ(cpu_.gpr[1], 0u);
  EXPECT_EQ(cpu_.gpr[6], 0x6020u);
  EXPECT_EQ(cpu_.gpr[7], 0x7020u);
  EXPECT_EQ(get<uint8_t>(0x701f), 32u);
  // repe cmpsb finds the first difference
  put<uint8_t>(0x7010, 0);
  cpu_.gpr[6] = 0x6000;
  cpu_.gpr[7] = 0x7000;
  cpu_.gpr[1] = 32;
  ASSERT_EQ(run({0xf3, 0xa6}), -1);
  EXPECT_EQ(cpu_.gpr[1], 32u - 17);
  EXPECT_EQ(cpu_.gpr[6], 0x6011u);
  EXPECT_FALSE(cpu_.lazy.zf());
  // repne scasb finds a byte
  cpu_.gpr[0] = 5;
  cpu_.gpr[7] = 0x6000;
  cpu_.gpr[1] = 100;
  ASSERT_EQ(run({0xf2, 0xae}), -1);
  EXPECT_EQ(cpu_.gpr[7], 0x6005u);
  EXPECT_TRUE(cpu_.lazy.zf());
  // std; rep stosd backwards
  cpu_.rflags |= flag::kDF;
  cpu_.gpr[0] = 0xaabbccdd;
  cpu_.gpr[7] = 0x8008;
  cpu_.gpr[1] = 3;
  ASSERT_EQ(run({0xf3, 0xab}), -1);
  EXPECT_EQ(cpu_.gpr[7], 0x8008u - 12);
  EXPECT_EQ(get<uint32_t>(0x8000), 0xaabbccddu);
  EXPECT_EQ(get<uint32_t>(0x8008), 0xaabbccddu);
  cpu_.rflags &= ~flag::kDF;
  // lodsw
  cpu_.gpr[6] = 0x6000;
  ASSERT_EQ(run({0x66, 0xad}), -1);
  EXPECT_EQ(cpu_.gpr[0] & 0xffff, 0x0201u);
  // long rep: runs at most 4096 elements per call and re-executes itself
  cpu_.gpr[7] = 0x10000;
  cpu_.gpr[1] = 5000;
  cpu_.gpr[0] = 0;
  ASSERT_EQ(run({0xf3, 0xaa}, 0x4000), -1);
  EXPECT_EQ(cpu_.rip, 0x4000u);
  EXPECT_EQ(cpu_.gpr[1], 5000u - 4096);
  ASSERT_EQ(run({0xf3, 0xaa}, 0x4000), -1);
  EXPECT_EQ(cpu_.rip, 0x4002u);
  EXPECT_EQ(cpu_.gpr[1], 0u);
  // a fault part-way leaves a restartable state: the destination runs off the mapped 2 MiB
  cpu_.gpr[6] = 0x6000;
  cpu_.gpr[7] = 0x200000 - 4;
  cpu_.gpr[1] = 10;
  EXPECT_EQ(run({0xf3, 0xa4}), kPageFault);
  EXPECT_EQ(cpu_.gpr[1], 6u);
  EXPECT_EQ(cpu_.gpr[7], 0x200000u);
  EXPECT_EQ(cpu_.gpr[6], 0x6004u);
}

TEST_F(IntegerOpsTest, IntegerMulDiv) {
  cpu_.gpr[0] = 0xffffffffffffffffull;
  cpu_.gpr[1] = 2;
  ASSERT_EQ(run({0x48, 0xf7, 0xe1}), -1);  // mul rcx
  EXPECT_EQ(cpu_.gpr[0], 0xfffffffffffffffeull);
  EXPECT_EQ(cpu_.gpr[2], 1u);
  EXPECT_TRUE(cpu_.flags() & flag::kCF);
  ASSERT_EQ(run({0x48, 0xf7, 0xf1}), -1);  // div rcx: (1:fff..fe) / 2
  EXPECT_EQ(cpu_.gpr[0], 0xffffffffffffffffull);
  EXPECT_EQ(cpu_.gpr[2], 0u);
  cpu_.gpr[1] = 0;
  EXPECT_EQ(run({0x48, 0xf7, 0xf1}), kDivideError);
  cpu_.gpr[2] = 5;
  cpu_.gpr[1] = 2;
  EXPECT_EQ(run({0x48, 0xf7, 0xf1}), kDivideError);  // quotient overflow
  EXPECT_EQ(cpu_.gpr[2], 5u);                        // unchanged
  cpu_.gpr[0] = 0x80000000;
  cpu_.gpr[2] = 0xffffffff;
  cpu_.gpr[1] = 0xffffffff;
  EXPECT_EQ(run({0xf7, 0xf9}), kDivideError);  // idiv ecx: INT_MIN / -1
  cpu_.gpr[0] = static_cast<uint64_t>(-7);
  cpu_.gpr[2] = ~0ull;
  cpu_.gpr[1] = 2;
  ASSERT_EQ(run({0x48, 0xf7, 0xf9}), -1);  // idiv rcx
  EXPECT_EQ(cpu_.gpr[0], static_cast<uint64_t>(-3));
  EXPECT_EQ(cpu_.gpr[2], static_cast<uint64_t>(-1));
  cpu_.gpr[0] = 200;
  cpu_.gpr[1] = 3;
  ASSERT_EQ(run({0xf6, 0xe1}), -1);  // mul cl
  EXPECT_EQ(cpu_.gpr[0] & 0xffff, 600u);
  ASSERT_EQ(run({0x6b, 0xc1, 0xfd}), -1);  // imul eax, ecx, -3
  EXPECT_EQ(cpu_.gpr[0], static_cast<uint32_t>(-9));
}

TEST_F(IntegerOpsTest, IntegerBitOps) {
  cpu_.gpr[3] = 0x5000;
  put<uint64_t>(0x5000, 0);
  put<uint64_t>(0x5008, 0);
  cpu_.gpr[1] = 67;                              // bit 3 of the qword at +8
  ASSERT_EQ(run({0x48, 0x0f, 0xab, 0x0b}), -1);  // bts [rbx], rcx
  EXPECT_EQ(get<uint64_t>(0x5008), 8u);
  EXPECT_FALSE(cpu_.flags() & flag::kCF);
  ASSERT_EQ(run({0x48, 0x0f, 0xa3, 0x0b}), -1);  // bt [rbx], rcx
  EXPECT_TRUE(cpu_.flags() & flag::kCF);
  cpu_.gpr[1] = static_cast<uint64_t>(-1);  // bit 7 of the byte below: dword at -4, bit 31
  put<uint32_t>(0x4ffc, 0x80000000u);
  ASSERT_EQ(run({0x0f, 0xb3, 0x0b}), -1);  // btr [rbx], ecx
  EXPECT_EQ(get<uint32_t>(0x4ffc), 0u);
  EXPECT_TRUE(cpu_.flags() & flag::kCF);
  cpu_.gpr[1] = 0x00f0;
  ASSERT_EQ(run({0x0f, 0xbc, 0xc1}), -1);  // bsf eax, ecx
  EXPECT_EQ(cpu_.gpr[0], 4u);
  ASSERT_EQ(run({0x0f, 0xbd, 0xc1}), -1);  // bsr eax, ecx
  EXPECT_EQ(cpu_.gpr[0], 7u);
  cpu_.gpr[1] = 0;
  ASSERT_EQ(run({0x0f, 0xbc, 0xc1}), -1);  // bsf eax, 0: ZF, unchanged
  EXPECT_EQ(cpu_.gpr[0], 7u);
  EXPECT_TRUE(cpu_.flags() & flag::kZF);
  ASSERT_EQ(run({0xf3, 0x0f, 0xbc, 0xc1}), -1);  // tzcnt eax, 0
  EXPECT_EQ(cpu_.gpr[0], 32u);
  EXPECT_TRUE(cpu_.flags() & flag::kCF);
  cpu_.gpr[1] = 0xff00ff;
  ASSERT_EQ(run({0xf3, 0x0f, 0xb8, 0xc1}), -1);  // popcnt eax, ecx
  EXPECT_EQ(cpu_.gpr[0], 16u);
  cpu_.gpr[0] = 0x11223344;
  ASSERT_EQ(run({0x0f, 0xc8}), -1);  // bswap eax
  EXPECT_EQ(cpu_.gpr[0], 0x44332211u);
  // shld eax, ecx, 8
  cpu_.gpr[0] = 0x11223344;
  cpu_.gpr[1] = 0xaabbccdd;
  ASSERT_EQ(run({0x0f, 0xa4, 0xc8, 0x08}), -1);
  EXPECT_EQ(cpu_.gpr[0], 0x223344aau);
  ASSERT_EQ(run({0x0f, 0xac, 0xc8, 0x08}), -1);  // shrd eax, ecx, 8
  EXPECT_EQ(cpu_.gpr[0], 0xdd223344u);
}

TEST_F(IntegerOpsTest, IntegerAtomics) {
  cpu_.gpr[3] = 0x5000;
  put<uint32_t>(0x5000, 10);
  cpu_.gpr[1] = 5;
  ASSERT_EQ(run({0xf0, 0x0f, 0xc1, 0x0b}), -1);  // lock xadd [rbx], ecx
  EXPECT_EQ(get<uint32_t>(0x5000), 15u);
  EXPECT_EQ(cpu_.gpr[1], 10u);
  cpu_.gpr[0] = 15;
  cpu_.gpr[1] = 99;
  ASSERT_EQ(run({0xf0, 0x0f, 0xb1, 0x0b}), -1);  // lock cmpxchg [rbx], ecx
  EXPECT_EQ(get<uint32_t>(0x5000), 99u);
  EXPECT_TRUE(cpu_.flags() & flag::kZF);
  ASSERT_EQ(run({0xf0, 0x0f, 0xb1, 0x0b}), -1);  // fails now: eax = 99
  EXPECT_EQ(cpu_.gpr[0], 99u);
  EXPECT_FALSE(cpu_.flags() & flag::kZF);
  ASSERT_EQ(run({0xf0, 0x83, 0x03, 0x01}), -1);  // lock add dword [rbx], 1
  EXPECT_EQ(get<uint32_t>(0x5000), 100u);
  ASSERT_EQ(run({0xf0, 0xff, 0x0b}), -1);  // lock dec dword [rbx]
  EXPECT_EQ(get<uint32_t>(0x5000), 99u);
  // cmpxchg16b
  cpu_.gpr[3] = 0x5010;
  put<uint64_t>(0x5010, 1);
  put<uint64_t>(0x5018, 2);
  cpu_.gpr[0] = 1;
  cpu_.gpr[2] = 2;
  cpu_.gpr[3] = 0x5010;
  cpu_.gpr[1] = 4;
  cpu_.gpr[6] = 0x5010;
  // lock cmpxchg16b [rsi] with rcx:rbx = 4:0x5010
  ASSERT_EQ(run({0xf0, 0x48, 0x0f, 0xc7, 0x0e}), -1);
  EXPECT_TRUE(cpu_.flags() & flag::kZF);
  EXPECT_EQ(get<uint64_t>(0x5010), 0x5010u);
  EXPECT_EQ(get<uint64_t>(0x5018), 4u);
  cpu_.gpr[6] = 0x5018;
  EXPECT_EQ(run({0xf0, 0x48, 0x0f, 0xc7, 0x0e}), kGeneralProtection);  // misaligned
  // LOCK on a register form is #UD
  Decoder decoder(8);
  Insn insn;
  const uint8_t bad[] = {0xf0, 0x01, 0xc8};
  EXPECT_FALSE(decoder.decode(bad, insn));
}

TEST_F(IntegerOpsTest, IntegerProtectedModeBcdAndPusha) {
  enter_protected_mode();
  cpu_.gpr[0] = 0x0f;
  ASSERT_EQ(run({0x37}), -1);  // aaa
  EXPECT_EQ(cpu_.gpr[0] & 0xffff, 0x0105u);
  cpu_.gpr[0] = 0x79;
  cpu_.lazy.set(FlagOp::kAdd, 1, 0x35, 0x44, 0x79);
  ASSERT_EQ(run({0x27}), -1);  // daa
  EXPECT_EQ(cpu_.gpr[0] & 0xff, 0x79u);
  cpu_.gpr[0] = 0x9b;  // after 0x48 + 0x53 binary add: daa -> 0x01 with CF
  cpu_.lazy.set(FlagOp::kAdd, 1, 0x48, 0x53, 0x9b);
  ASSERT_EQ(run({0x27}), -1);
  EXPECT_EQ(cpu_.gpr[0] & 0xff, 0x01u);
  EXPECT_TRUE(cpu_.flags() & flag::kCF);
  cpu_.gpr[0] = 123;
  ASSERT_EQ(run({0xd4, 0x0a}), -1);  // aam
  EXPECT_EQ(cpu_.gpr[0] & 0xffff, 0x0c03u);
  ASSERT_EQ(run({0xd5, 0x0a}), -1);  // aad
  EXPECT_EQ(cpu_.gpr[0] & 0xffff, 123u);
  EXPECT_EQ(run({0xd4, 0x00}), kDivideError);
  cpu_.gpr[4] = 0x9000;
  for (uint8_t r = 0; r < 8; ++r) {
    if (r != 4) {
      cpu_.gpr[r] = 0x100 + r;
    }
  }
  ASSERT_EQ(run({0x60}), -1);  // pushad
  EXPECT_EQ(cpu_.gpr[4], 0x9000u - 32);
  EXPECT_EQ(get<uint32_t>(0x9000 - 20), 0x9000u);  // original ESP
  for (uint8_t r = 0; r < 8; ++r) {
    if (r != 4) {
      cpu_.gpr[r] = 0;
    }
  }
  ASSERT_EQ(run({0x61}), -1);  // popad
  EXPECT_EQ(cpu_.gpr[4], 0x9000u);
  EXPECT_EQ(cpu_.gpr[7], 0x107u);
  EXPECT_EQ(cpu_.gpr[0], 0x100u);
  // call/ret with 32-bit operand size
  ASSERT_EQ(run({0xe8, 0x00, 0x01, 0, 0}, 0x1000), -1);
  EXPECT_EQ(cpu_.rip, 0x1105u);
  EXPECT_EQ(cpu_.gpr[4], 0x9000u - 4);
  ASSERT_EQ(run({0xc3}, 0x1105), -1);
  EXPECT_EQ(cpu_.rip, 0x1005u);
  // loop with a 16-bit counter (67h)
  cpu_.gpr[1] = 0x10000;
  ASSERT_EQ(run({0x67, 0xe2, 0xfd}, 0x1000), -1);
  EXPECT_EQ(cpu_.gpr[1], 0x1ffffu);
  EXPECT_EQ(cpu_.rip, 0x1000u);
}

}  // namespace
}  // namespace hv::emu
