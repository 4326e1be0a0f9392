// The correctness oracle for the software CPU: instruction sequences run natively on the host
// CPU and in the emulator from the same registers, flags and memory, and everything the ISA
// defines must come out the same. Sequences are generated from a fixed seed with Zydis's encoder
// (random operands over a curated list of instruction forms), so every run tests the same
// thousands of cases and a failure names the exact bytes.
#include <Zydis/Zydis.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "emu/cpu.hpp"
#include "emu/decoder.hpp"

namespace hv::emu {
namespace {

// Fixed host addresses, so the same numeric addresses work natively and in the identity-mapped
// guest.
constexpr uint64_t kStateBase = 0x0f00'0000;  // register images in and out
constexpr uint64_t kDataBase = 0x1000'0000;   // memory operands point here (64 KiB)
constexpr uint64_t kDataSize = 0x10000;
constexpr uint64_t kGuestCode = 0x0e00'0000;
constexpr uint64_t kGuestMemory = 512ull << 20;

struct RegisterImage {
  uint64_t gpr[16];
  uint64_t rflags;
};

struct Layout {
  RegisterImage in;
  RegisterImage out;
  uint64_t saved_rsp;
  uint64_t scratch_stack[64];
};
Layout* layout() {
  return reinterpret_cast<Layout*>(kStateBase);
}

// --- native execution ------------------------------------------------------------------

void emit(std::vector<uint8_t>& code, std::initializer_list<uint8_t> bytes) {
  code.insert(code.end(), bytes);
}
void emit32(std::vector<uint8_t>& code, uint64_t value) {
  for (int i = 0; i < 4; ++i) {
    code.push_back(static_cast<uint8_t>(value >> (8 * i)));
  }
}
// mov [abs32], reg64  or  mov reg64, [abs32]
void emit_move_absolute(std::vector<uint8_t>& code, int reg, uint64_t address, bool load) {
  emit(code, {static_cast<uint8_t>(0x48 | (reg >= 8 ? 4 : 0)), load ? uint8_t{0x8b} : uint8_t{0x89},
              static_cast<uint8_t>(0x04 | ((reg & 7) << 3)), 0x25});
  emit32(code, address);
}

class NativeRunner {
 public:
  NativeRunner() {
    void* p =
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    code_ = static_cast<uint8_t*>(p);
  }
  ~NativeRunner() { munmap(code_, 4096); }

  void run(const std::vector<uint8_t>& test) {
    std::vector<uint8_t> c;
    emit(c, {0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57});  // push callee-saved
    const uint64_t base = kStateBase;
    emit_move_absolute(c, 4, base + offsetof(Layout, saved_rsp), false);
    const uint64_t stack_top = base + offsetof(Layout, scratch_stack) + sizeof(uint64_t) * 60;
    emit(c, {0x48, 0xc7, 0xc4});  // mov rsp, imm32
    emit32(c, stack_top);
    emit(c, {0xff, 0x34, 0x25});  // push qword [in.rflags]
    emit32(c, base + offsetof(Layout, in.rflags));
    emit(c, {0x9d});  // popfq
    for (int r = 0; r < 16; ++r) {
      if (r != 4) {
        emit_move_absolute(c, r, base + offsetof(Layout, in.gpr) + 8 * r, true);
      }
    }
    emit_move_absolute(c, 4, base + offsetof(Layout, in.gpr) + 8 * 4, true);
    c.insert(c.end(), test.begin(), test.end());
    for (int r = 0; r < 16; ++r) {
      emit_move_absolute(c, r, base + offsetof(Layout, out.gpr) + 8 * r, false);
    }
    emit(c, {0x48, 0xc7, 0xc4});
    emit32(c, stack_top);
    emit(c, {0x9c, 0x8f, 0x04, 0x25});  // pushfq; pop qword [out.rflags]
    emit32(c, base + offsetof(Layout, out.rflags));
    emit_move_absolute(c, 4, base + offsetof(Layout, saved_rsp), true);
    emit(c, {0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3});
    std::memcpy(code_, c.data(), c.size());
    __builtin___clear_cache(reinterpret_cast<char*>(code_),
                            reinterpret_cast<char*>(code_ + c.size()));
    reinterpret_cast<void (*)()>(code_)();
  }

 private:
  uint8_t* code_ = nullptr;
};

// --- emulated execution -----------------------------------------------------------------

class EmulatedRunner {
 public:
  EmulatedRunner()
      : machine_(std::move(*Machine::create({.memory_bytes = kGuestMemory}))),
        pages_(kGuestMemory),
        cpu_(*machine_, pages_, 0),
        decoder_(8) {
    GuestMemory& m = machine_->memory();
    // Identity map of the first GiB with 2 MiB pages.
    (void)m.write_object<uint64_t>(0x1000, 0x2000 | 7);
    (void)m.write_object<uint64_t>(0x2000, 0x3000 | 7);
    for (uint64_t i = 0; i < 512; ++i) {
      (void)m.write_object<uint64_t>(0x3000 + i * 8, (i << 21) | 0x87);
    }
  }

  // Returns an empty string on success, else why it could not run.
  std::string run(const std::vector<uint8_t>& test, const RegisterImage& in, RegisterImage& out,
                  const uint8_t* data_in, uint8_t* data_out) {
    GuestMemory& m = machine_->memory();
    (void)m.write(kDataBase, std::span<const uint8_t>(data_in, kDataSize));
    (void)m.write(kGuestCode, test);
    CpuState s;
    s.cr0 = cr0::kPE | cr0::kPG | cr0::kET | cr0::kNE | cr0::kWP;
    s.cr3 = 0x1000;
    s.cr4 = cr4::kPAE | cr4::kOSFXSR;
    s.efer = efer::kLME | efer::kLMA | efer::kSCE | efer::kNXE;
    s.cs = Segment{.base = 0,
                   .limit = 0xffffffff,
                   .selector = 0x10,
                   .type = 0xb,
                   .long_mode = true,
                   .granularity = true};
    Segment data{.base = 0,
                 .limit = 0xffffffff,
                 .selector = 0x18,
                 .type = 0x3,
                 .default_big = true,
                 .granularity = true};
    s.ds = s.es = s.ss = s.fs = s.gs = data;
    std::memcpy(s.gpr.data(), in.gpr, sizeof(in.gpr));
    s.rflags = in.rflags;
    s.rip = kGuestCode;
    cpu_.load_state(s);
    pages_.invalidate(kGuestCode >> 12);
    const uint64_t end = kGuestCode + test.size();
    try {
      while (cpu_.rip != end) {
        uint8_t bytes[15];
        cpu_.fetch(cpu_.rip, bytes, 15);
        Insn insn;
        if (!decoder_.decode(bytes, insn)) {
          return "emulator cannot decode";
        }
        cpu_.next_rip = cpu_.rip + insn.length;
        insn.handler(cpu_, insn);
        cpu_.rip = cpu_.next_rip;
      }
    } catch (const GuestFault& f) {
      return "emulator raised vector " + std::to_string(f.vector);
    }
    std::memcpy(out.gpr, cpu_.gpr.data(), sizeof(out.gpr));
    out.rflags = cpu_.flags();
    (void)m.read(kDataBase, std::span<uint8_t>(data_out, kDataSize));
    return {};
  }

 private:
  std::unique_ptr<Machine> machine_;
  CodePages pages_;
  Cpu cpu_;
  Decoder decoder_;
};

// --- generation ---------------------------------------------------------------------------

enum Form { kRR, kRI, kMR, kRM, kMI, kR, kM, kRRI, kRCl, kMCl };

struct Template {
  ZydisMnemonic mnemonic;
  std::vector<Form> forms;
  uint64_t undefined_flags;  // ISA-undefined: ignored in the comparison
  bool reads_flags;          // consumes flags (ADC, CMOVcc ...)
  std::vector<int> sizes = {1, 2, 4, 8};
};

constexpr uint64_t kAF = flag::kAF, kOF = flag::kOF, kSF = flag::kSF, kZF = flag::kZF,
                   kPF = flag::kPF, kCF = flag::kCF;

const std::vector<Template>& templates() {
  static const std::vector<Template> list = {
      {ZYDIS_MNEMONIC_ADD, {kRR, kRI, kMR, kRM, kMI}, 0, false},
      {ZYDIS_MNEMONIC_ADC, {kRR, kRI, kMR, kRM, kMI}, 0, true},
      {ZYDIS_MNEMONIC_SUB, {kRR, kRI, kMR, kRM, kMI}, 0, false},
      {ZYDIS_MNEMONIC_SBB, {kRR, kRI, kMR, kRM, kMI}, 0, true},
      {ZYDIS_MNEMONIC_CMP, {kRR, kRI, kMR, kRM, kMI}, 0, false},
      {ZYDIS_MNEMONIC_AND, {kRR, kRI, kMR, kRM, kMI}, kAF, false},
      {ZYDIS_MNEMONIC_OR, {kRR, kRI, kMR, kRM, kMI}, kAF, false},
      {ZYDIS_MNEMONIC_XOR, {kRR, kRI, kMR, kRM, kMI}, kAF, false},
      {ZYDIS_MNEMONIC_TEST, {kRR, kRI, kMR, kMI}, kAF, false},
      {ZYDIS_MNEMONIC_INC, {kR, kM}, 0, false},
      {ZYDIS_MNEMONIC_DEC, {kR, kM}, 0, false},
      {ZYDIS_MNEMONIC_NEG, {kR, kM}, 0, false},
      {ZYDIS_MNEMONIC_NOT, {kR, kM}, 0, false},
      {ZYDIS_MNEMONIC_MOV, {kRR, kRI, kMR, kRM, kMI}, 0, false},
      {ZYDIS_MNEMONIC_XCHG, {kRR, kMR}, 0, false},
      {ZYDIS_MNEMONIC_XADD, {kRR, kMR}, 0, false},
      {ZYDIS_MNEMONIC_CMPXCHG, {kRR, kMR}, 0, false},
      {ZYDIS_MNEMONIC_SHL, {kRI, kMI, kRCl, kMCl}, kAF | kOF, false},
      {ZYDIS_MNEMONIC_SHR, {kRI, kMI, kRCl, kMCl}, kAF | kOF, false},
      {ZYDIS_MNEMONIC_SAR, {kRI, kMI, kRCl, kMCl}, kAF | kOF, false},
      {ZYDIS_MNEMONIC_ROL, {kRI, kMI, kRCl, kMCl}, kOF, false},
      {ZYDIS_MNEMONIC_ROR, {kRI, kMI, kRCl, kMCl}, kOF, false},
      {ZYDIS_MNEMONIC_RCL, {kRI, kRCl}, kOF, true},
      {ZYDIS_MNEMONIC_RCR, {kRI, kRCl}, kOF, true},
      {ZYDIS_MNEMONIC_IMUL, {kRR, kRM, kRRI}, kSF | kZF | kAF | kPF, false, {2, 4, 8}},
      {ZYDIS_MNEMONIC_MUL, {kR}, kSF | kZF | kAF | kPF, false},
      {ZYDIS_MNEMONIC_BSF, {kRR}, kCF | kOF | kSF | kAF | kPF, false, {2, 4, 8}},
      {ZYDIS_MNEMONIC_BSR, {kRR}, kCF | kOF | kSF | kAF | kPF, false, {2, 4, 8}},
      {ZYDIS_MNEMONIC_BT, {kRR, kRI, kMI}, kOF | kSF | kAF | kPF, false, {2, 4, 8}},
      {ZYDIS_MNEMONIC_BTS, {kRR, kRI, kMI}, kOF | kSF | kAF | kPF, false, {2, 4, 8}},
      {ZYDIS_MNEMONIC_BTR, {kRR, kRI, kMI}, kOF | kSF | kAF | kPF, false, {2, 4, 8}},
      {ZYDIS_MNEMONIC_BTC, {kRR, kRI, kMI}, kOF | kSF | kAF | kPF, false, {2, 4, 8}},
      {ZYDIS_MNEMONIC_MOVZX, {kRR, kRM}, 0, false, {2, 4, 8}},
      {ZYDIS_MNEMONIC_MOVSX, {kRR, kRM}, 0, false, {2, 4, 8}},
      {ZYDIS_MNEMONIC_BSWAP, {kR}, 0, false, {4, 8}},
      {ZYDIS_MNEMONIC_CMOVNZ, {kRR, kRM}, 0, true, {2, 4, 8}},
      {ZYDIS_MNEMONIC_CMOVL, {kRR, kRM}, 0, true, {2, 4, 8}},
      {ZYDIS_MNEMONIC_CMOVBE, {kRR, kRM}, 0, true, {2, 4, 8}},
      {ZYDIS_MNEMONIC_SETNLE, {kR, kM}, 0, true, {1}},
      {ZYDIS_MNEMONIC_SETB, {kR, kM}, 0, true, {1}},
      {ZYDIS_MNEMONIC_SETP, {kR, kM}, 0, true, {1}},
      {ZYDIS_MNEMONIC_LEA, {kRM}, 0, false, {2, 4, 8}},
      {ZYDIS_MNEMONIC_POPCNT, {kRR}, 0, false, {2, 4, 8}},
  };
  return list;
}

// Registers a generated instruction may name: not RSP (the stack) nor R15 (the memory base).
constexpr int kMemoryBase = 15;
ZydisRegister gpr(int index, int size) {
  if (size == 1) {
    return static_cast<ZydisRegister>(index < 4 ? ZYDIS_REGISTER_AL + index
                                                : ZYDIS_REGISTER_SPL + (index - 4));
  }
  const ZydisRegister first = size == 2   ? ZYDIS_REGISTER_AX
                              : size == 4 ? ZYDIS_REGISTER_EAX
                                          : ZYDIS_REGISTER_RAX;
  return static_cast<ZydisRegister>(first + index);
}

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  int pick_register() {
    for (;;) {
      int r = static_cast<int>(rng_() % 15);
      if (r != 4) {
        return r;
      }
    }
  }
  uint64_t random_value() {
    switch (rng_() % 6) {
      case 0:
        return 0;
      case 1:
        return ~0ull;
      case 2:
        return 1ull << (rng_() % 64);
      case 3:
        return rng_() % 64;
      default:
        return (static_cast<uint64_t>(rng_()) << 32) | rng_();
    }
  }

  // Encodes one instruction from a template; false when Zydis has no such form.
  bool encode(const Template& t, std::vector<uint8_t>& out) {
    ZydisEncoderRequest req{};
    req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
    req.mnemonic = t.mnemonic;
    const Form form = t.forms[rng_() % t.forms.size()];
    const int size = t.sizes[rng_() % t.sizes.size()];
    auto reg_op = [&](ZydisEncoderOperand& op, int sz) {
      op.type = ZYDIS_OPERAND_TYPE_REGISTER;
      op.reg.value = gpr(pick_register(), sz);
    };
    auto mem_op = [&](ZydisEncoderOperand& op, int sz) {
      op.type = ZYDIS_OPERAND_TYPE_MEMORY;
      op.mem.base = ZYDIS_REGISTER_R15;
      op.mem.displacement = static_cast<int64_t>(rng_() % 0x2000) - 0x1000;
      op.mem.size = static_cast<uint16_t>(sz);
    };
    auto imm_op = [&](ZydisEncoderOperand& op) {
      op.type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
      op.imm.s = static_cast<int64_t>(static_cast<int8_t>(rng_()));
      if (rng_() % 2) {
        op.imm.s = static_cast<int32_t>(rng_());
      }
    };
    // Narrow source for MOVZX/MOVSX.
    const int source_size =
        (t.mnemonic == ZYDIS_MNEMONIC_MOVZX || t.mnemonic == ZYDIS_MNEMONIC_MOVSX)
            ? (size == 2 ? 1 : static_cast<int>(1 + rng_() % 2))
            : size;
    switch (form) {
      case kRR:
        req.operand_count = 2;
        reg_op(req.operands[0], size);
        reg_op(req.operands[1], source_size);
        break;
      case kRI:
        req.operand_count = 2;
        reg_op(req.operands[0], size);
        imm_op(req.operands[1]);
        break;
      case kMR:
        req.operand_count = 2;
        mem_op(req.operands[0], size);
        reg_op(req.operands[1], size);
        break;
      case kRM:
        req.operand_count = 2;
        reg_op(req.operands[0], size);
        mem_op(req.operands[1], t.mnemonic == ZYDIS_MNEMONIC_LEA ? 0 : source_size);
        break;
      case kMI:
        req.operand_count = 2;
        mem_op(req.operands[0], size);
        imm_op(req.operands[1]);
        break;
      case kR:
        req.operand_count = 1;
        reg_op(req.operands[0], size);
        break;
      case kM:
        req.operand_count = 1;
        mem_op(req.operands[0], size);
        break;
      case kRRI:
        req.operand_count = 3;
        reg_op(req.operands[0], size);
        reg_op(req.operands[1], size);
        imm_op(req.operands[2]);
        break;
      case kRCl:
      case kMCl:
        req.operand_count = 2;
        if (form == kRCl) {
          reg_op(req.operands[0], size);
        } else {
          mem_op(req.operands[0], size);
        }
        req.operands[1].type = ZYDIS_OPERAND_TYPE_REGISTER;
        req.operands[1].reg.value = ZYDIS_REGISTER_CL;
        break;
    }
    if ((t.mnemonic == ZYDIS_MNEMONIC_SHL || t.mnemonic == ZYDIS_MNEMONIC_SHR ||
         t.mnemonic == ZYDIS_MNEMONIC_SAR || t.mnemonic == ZYDIS_MNEMONIC_ROL ||
         t.mnemonic == ZYDIS_MNEMONIC_ROR || t.mnemonic == ZYDIS_MNEMONIC_RCL ||
         t.mnemonic == ZYDIS_MNEMONIC_RCR || t.mnemonic == ZYDIS_MNEMONIC_BT ||
         t.mnemonic == ZYDIS_MNEMONIC_BTS || t.mnemonic == ZYDIS_MNEMONIC_BTR ||
         t.mnemonic == ZYDIS_MNEMONIC_BTC) &&
        req.operands[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
      req.operands[1].imm.u = rng_() % 256;
    }
    uint8_t buffer[ZYDIS_MAX_INSTRUCTION_LENGTH];
    ZyanUSize length = sizeof(buffer);
    if (ZYAN_FAILED(ZydisEncoderEncodeInstruction(&req, buffer, &length))) {
      return false;
    }
    out.insert(out.end(), buffer, buffer + length);
    return true;
  }

  std::mt19937& rng() { return rng_; }

 private:
  std::mt19937 rng_;
};

std::string hex(const std::vector<uint8_t>& bytes) {
  std::string s;
  for (uint8_t b : bytes) {
    s += fmt::format("{:02x} ", b);
  }
  return s;
}

std::string disassemble(const std::vector<uint8_t>& bytes) {
  ZydisDecoder decoder;
  ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  ZydisFormatter formatter;
  ZydisFormatterInit(&formatter, ZYDIS_FORMATTER_STYLE_INTEL);
  std::string out;
  size_t offset = 0;
  while (offset < bytes.size()) {
    ZydisDecodedInstruction insn;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (ZYAN_FAILED(ZydisDecoderDecodeFull(&decoder, bytes.data() + offset, bytes.size() - offset,
                                           &insn, ops))) {
      break;
    }
    char text[128];
    ZydisFormatterFormatInstruction(&formatter, &insn, ops, insn.operand_count_visible, text,
                                    sizeof(text), 0, nullptr);
    out += text;
    out += "; ";
    offset += insn.length;
  }
  return out;
}

class DifferentialTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    void* state = mmap(reinterpret_cast<void*>(kStateBase), 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    void* data = mmap(reinterpret_cast<void*>(kDataBase), kDataSize, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    mapped_ =
        state == reinterpret_cast<void*>(kStateBase) && data == reinterpret_cast<void*>(kDataBase);
  }
  void SetUp() override {
    if (!mapped_) {
      GTEST_SKIP() << "cannot map the fixed test addresses in this process";
    }
  }

  // Runs `count` cases; each a sequence of 1..max_length instructions from `pool`.
  void run_cases(uint32_t seed, int count, int max_length, bool single_partial) {
    Generator gen(seed);
    NativeRunner native;
    EmulatedRunner emulated;
    std::vector<uint8_t> data(kDataSize), native_data(kDataSize), emulated_data(kDataSize);
    int checked = 0;
    for (int n = 0; n < count; ++n) {
      std::vector<uint8_t> code;
      uint64_t ignored = 0;
      const int length = single_partial ? 1 : 1 + static_cast<int>(gen.rng()() % max_length);
      for (int i = 0; i < length; ++i) {
        const auto& list = templates();
        const Template& t = list[gen.rng()() % list.size()];
        // In sequences, an instruction that leaves flags undefined must not be followed by one
        // that reads them: keep sequences to fully defined instructions.
        if (!single_partial && t.undefined_flags != 0) {
          --i;
          continue;
        }
        if (!gen.encode(t, code)) {
          --i;
          continue;
        }
        ignored |= t.undefined_flags;
      }
      RegisterImage in{};
      for (int r = 0; r < 16; ++r) {
        in.gpr[r] = gen.random_value();
      }
      in.gpr[4] = kDataBase + 0xe000;  // a valid stack
      in.gpr[kMemoryBase] = kDataBase + 0x8000;
      in.rflags = (gen.rng()() & flag::kArithmetic) | flag::kFixedOne | flag::kIF;
      for (auto& b : data) {
        b = static_cast<uint8_t>(gen.rng()());
      }
      std::memcpy(reinterpret_cast<void*>(kDataBase), data.data(), kDataSize);
      layout()->in = in;
      native.run(code);
      const RegisterImage expected = layout()->out;
      std::memcpy(native_data.data(), reinterpret_cast<void*>(kDataBase), kDataSize);

      RegisterImage actual{};
      const std::string problem = emulated.run(code, in, actual, data.data(), emulated_data.data());
      const std::string where =
          "case " + std::to_string(n) + ": " + disassemble(code) + " [" + hex(code) + "]";
      ASSERT_EQ(problem, "") << where;
      for (int r = 0; r < 16; ++r) {
        ASSERT_EQ(actual.gpr[r], expected.gpr[r]) << "register " << r << " after " << where;
      }
      const uint64_t compared = flag::kArithmetic & ~ignored;
      ASSERT_EQ(actual.rflags & compared, expected.rflags & compared)
          << fmt::format("flags (compared {:#x}) after {}", compared, where);
      ASSERT_TRUE(native_data == emulated_data) << "memory differs after " << where;
      ++checked;
    }
    EXPECT_EQ(checked, count);
  }

  static bool mapped_;
};
bool DifferentialTest::mapped_ = false;

TEST_F(DifferentialTest, SingleInstructionsIncludingPartlyUndefinedFlags) {
  run_cases(1, 4000, 1, true);
}

TEST_F(DifferentialTest, RandomSequencesOfFullyDefinedInstructions) {
  run_cases(2, 3000, 8, false);
}

}  // namespace
}  // namespace hv::emu
