// x87 floating point and FXSAVE/FXRSTOR. Values live in cpu.fpu.st as the host's 80-bit long
// double and every rounding operation runs on the host's own x87 unit with the guest's control
// word loaded (all exceptions masked), so precision control, rounding control, C1 (rounded up),
// FPREM's quotient bits and the exception flags are bit-exact with hardware.
//
// Limitations (documented for the ISA reference): an unmasked exception sets ES/B and leaves the
// destination unwritten (hardware stores a scaled result for unmasked OE/UE); the pending
// exception is raised as #MF at the next waiting x87 instruction when CR0.NE, and ignored when
// CR0.NE is clear (no FERR#/IRQ 13). FCS/FDS are stored as 0 and FOP holds the opcode's low
// three bits and ModRM.reg (plus mod=3 and the register for register forms), not ModRM.rm of
// memory forms. FNSTENV/FNSAVE always use the protected-mode layouts (also in real mode).
#include <cstring>

#include "emu/operands.hpp"
#include "emu/ops_fpu_sse.hpp"

namespace hv::emu::fpu {
namespace {

constexpr uint16_t kIE = 1, kDE = 2, kZE = 4, kOE = 8, kUE = 0x10, kPE = 0x20, kSF = 0x40,
                   kES = 0x80, kC0 = 0x100, kC1 = 0x200, kC2 = 0x400, kC3 = 0x4000, kB = 0x8000;
constexpr uint16_t kExceptions = kIE | kDE | kZE | kOE | kUE | kPE;
constexpr uint16_t kConditions = kC0 | kC1 | kC2 | kC3;

struct F80 {
  uint8_t b[10];
};
F80 to_f80(long double v) {
  F80 f;
  std::memcpy(f.b, &v, 10);
  return f;
}
long double from_f80(F80 f) {
  long double v = 0;
  std::memcpy(&v, f.b, 10);
  return v;
}

// The "real indefinite" QNaN of masked invalid operations.
long double indefinite() {
  return from_f80(F80{{0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff}});
}

unsigned top(const Cpu& cpu) {
  return (cpu.fpu.fsw >> 11) & 7;
}
void set_top(Cpu& cpu, unsigned t) {
  cpu.fpu.fsw = static_cast<uint16_t>((cpu.fpu.fsw & ~0x3800) | ((t & 7) << 11));
}
unsigned phys(const Cpu& cpu, unsigned i) {
  return (top(cpu) + i) & 7;
}
bool is_empty(const Cpu& cpu, unsigned i) {
  return !(cpu.fpu.ftw & (1u << phys(cpu, i)));
}
long double& st(Cpu& cpu, unsigned i) {
  return cpu.fpu.st[phys(cpu, i)];
}
void set_c(Cpu& cpu, uint16_t mask, uint16_t bits) {
  cpu.fpu.fsw = static_cast<uint16_t>((cpu.fpu.fsw & ~mask) | (bits & mask));
}

// Records exceptions; false when one of them is unmasked (the destination must stay as is).
bool record(Cpu& cpu, uint16_t exceptions) {
  cpu.fpu.fsw |= exceptions & (kExceptions | kSF);
  if (exceptions & ~cpu.fpu.fcw & kExceptions) {
    cpu.fpu.fsw |= kES | kB;
    return false;
  }
  return true;
}
// Stack underflow (an empty register read): IE|SF with C1 = 0.
bool underflow(Cpu& cpu) {
  set_c(cpu, kC1, 0);
  return record(cpu, kIE | kSF);
}

void push(Cpu& cpu, long double v) {
  const unsigned t = (top(cpu) - 1) & 7;
  if (cpu.fpu.ftw & (1u << t)) {
    set_c(cpu, kC1, kC1);  // overflow: C1 = 1
    if (!record(cpu, kIE | kSF)) {
      return;
    }
    v = indefinite();
  }
  set_top(cpu, t);
  cpu.fpu.st[t] = v;
  cpu.fpu.ftw |= static_cast<uint8_t>(1u << t);
}
void pop(Cpu& cpu) {
  cpu.fpu.ftw &= static_cast<uint8_t>(~(1u << top(cpu)));
  set_top(cpu, top(cpu) + 1);
}

// Entry of every x87 instruction: #NM, then a pending unmasked exception (#MF) for waiting
// instructions, then the last-instruction pointers for non-control ones.
void enter(Cpu& cpu, const Insn& insn, bool waiting = true, bool control = false) {
  check_x87(cpu);
  if (waiting && (cpu.fpu.fsw & kES) && (cpu.cr0 & cr0::kNE)) {
    raise_fault(kFpuError);
  }
  if (!control) {
    cpu.fpu.fip = cpu.rip;
    const bool reg_form = insn.operand_count == 0 || insn.operands[0].kind != OperandKind::kMem;
    cpu.fpu.fop = static_cast<uint16_t>(((insn.opcode & 7) << 8) | (insn.modrm_reg << 3) |
                                        (reg_form ? 0xc0 : 0));
    if (!reg_form) {
      cpu.fpu.fdp = cpu.effective_address(insn);
    }
  }
}

// ---- host x87 execution ----

uint16_t host_cw(const Cpu& cpu) {
  return static_cast<uint16_t>(cpu.fpu.fcw | 0x3f);
}
uint16_t saved_cw() {
  uint16_t cw;
  asm volatile("fnstcw %0" : "=m"(cw));
  return cw;
}

#define HV_X87(body, outputs, ...)                                                              \
  do {                                                                                          \
    const uint16_t old_cw = saved_cw();                                                         \
    const uint16_t new_cw = host_cw(cpu);                                                       \
    asm volatile("fnclex\n\tfldcw %[ncw]\n\t" body "\n\tfnstsw %[sw]\n\tfnclex\n\tfldcw %[ocw]" \
                 : outputs, [sw] "=m"(sw)                                                       \
                 : __VA_ARGS__, [ncw] "m"(new_cw), [ocw] "m"(old_cw));                          \
  } while (0)

enum class Op2 { kAdd, kSub, kMul, kDiv, kScale, kPrem, kPrem1, kCom, kUcom };
// st0 = a op b on the host (a in st(0), b in st(1)); sw receives the host status word.
long double host2(const Cpu& cpu, Op2 op, long double a, long double b, uint16_t& sw) {
  long double r;
  switch (op) {
    case Op2::kAdd:
      HV_X87("fadd %%st(1), %%st", "=t"(r), "0"(a), "u"(b));
      break;
    case Op2::kSub:
      HV_X87("fsub %%st(1), %%st", "=t"(r), "0"(a), "u"(b));
      break;
    case Op2::kMul:
      HV_X87("fmul %%st(1), %%st", "=t"(r), "0"(a), "u"(b));
      break;
    case Op2::kDiv:
      HV_X87("fdiv %%st(1), %%st", "=t"(r), "0"(a), "u"(b));
      break;
    case Op2::kScale:
      HV_X87("fscale", "=t"(r), "0"(a), "u"(b));
      break;
    case Op2::kPrem:
      HV_X87("fprem", "=t"(r), "0"(a), "u"(b));
      break;
    case Op2::kPrem1:
      HV_X87("fprem1", "=t"(r), "0"(a), "u"(b));
      break;
    case Op2::kCom:
      HV_X87("fcom %%st(1)", "=t"(r), "0"(a), "u"(b));
      break;
    case Op2::kUcom:
      HV_X87("fucom %%st(1)", "=t"(r), "0"(a), "u"(b));
      break;
  }
  return r;
}

enum class Op1 { kSqrt, kRndint, kTst, kXam };
long double host1(const Cpu& cpu, Op1 op, long double a, uint16_t& sw) {
  long double r;
  switch (op) {
    case Op1::kSqrt:
      HV_X87("fsqrt", "=t"(r), "0"(a));
      break;
    case Op1::kRndint:
      HV_X87("frndint", "=t"(r), "0"(a));
      break;
    case Op1::kTst:
      HV_X87("ftst", "=t"(r), "0"(a));
      break;
    case Op1::kXam:
      HV_X87("fxam", "=t"(r), "0"(a));
      break;
  }
  return r;
}

// Loads a memory operand (m32/m64 real with the conversion's exceptions, m80 as is, or an
// integer for the FI* forms) as an 80-bit value.
long double load_mem(Cpu& cpu, const Insn& insn, bool integer, uint16_t& sw) {
  const uint64_t ea = cpu.effective_address(insn);
  const uint8_t s = insn.mem.segment;
  sw = 0;
  long double r;
  if (integer) {
    switch (insn.operands[0].size) {
      case 2:
        return static_cast<int16_t>(cpu.read<uint16_t>(s, ea));
      case 4:
        return static_cast<int32_t>(cpu.read<uint32_t>(s, ea));
      default:
        return static_cast<long double>(static_cast<int64_t>(cpu.read<uint64_t>(s, ea)));
    }
  }
  switch (insn.operands[0].size) {
    case 4: {
      const float f = cpu.read<float>(s, ea);
      HV_X87("flds %[m]", "=t"(r), [m] "m"(f));
      return r;
    }
    case 8: {
      const double d = cpu.read<double>(s, ea);
      HV_X87("fldl %[m]", "=t"(r), [m] "m"(d));
      return r;
    }
    default:
      return from_f80(cpu.read<F80>(s, ea));
  }
}

// ---- arithmetic ----

template <Op2 kOp, bool kReverse, bool kPop, bool kInteger>
void arith(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  unsigned dst = 0, src = 0;
  long double b;
  uint16_t sw = 0;
  bool empty;
  if (insn.operand_count >= 1 && insn.operands[0].kind == OperandKind::kMem) {
    b = load_mem(cpu, insn, kInteger, sw);
    empty = is_empty(cpu, 0);
  } else {
    dst = insn.operand_count >= 2 ? insn.operands[0].reg : 1;
    src = insn.operand_count >= 2 ? insn.operands[1].reg : 0;
    empty = is_empty(cpu, dst) || is_empty(cpu, src);
    b = st(cpu, src);
  }
  long double r;
  if (empty) {
    if (!underflow(cpu)) {
      return;
    }
    r = indefinite();
  } else {
    const long double a = st(cpu, dst);
    uint16_t op_sw;
    r = kReverse ? host2(cpu, kOp, b, a, op_sw) : host2(cpu, kOp, a, b, op_sw);
    set_c(cpu, kC1, op_sw);
    if (!record(cpu, static_cast<uint16_t>((op_sw | sw) & kExceptions))) {
      return;
    }
  }
  st(cpu, dst) = r;
  if (kPop) {
    pop(cpu);
  }
}

template <Op2 kOp, bool kReverse, bool kPop, bool kInteger>
Handler bind_arith(const Insn& insn) {
  if (insn.operand_count == 1 && insn.operands[0].kind == OperandKind::kMem) {
    return kPop ? nullptr : arith<kOp, kReverse, false, kInteger>;
  }
  if (kInteger) {
    return nullptr;
  }
  if (insn.operand_count == 0 && kPop) {
    return arith<kOp, kReverse, true, false>;
  }
  if (insn.operand_count == 2 && insn.operands[0].kind == OperandKind::kFpu &&
      insn.operands[1].kind == OperandKind::kFpu) {
    return arith<kOp, kReverse, kPop, false>;
  }
  return nullptr;
}

// FSQRT/FRNDINT on ST0.
template <Op1 kOp>
void unary(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  if (is_empty(cpu, 0)) {
    if (underflow(cpu)) {
      st(cpu, 0) = indefinite();
    }
    return;
  }
  uint16_t sw;
  const long double r = host1(cpu, kOp, st(cpu, 0), sw);
  set_c(cpu, kC1, sw);
  if (record(cpu, sw & kExceptions)) {
    st(cpu, 0) = r;
  }
}

// FSCALE/FPREM/FPREM1: ST0 = f(ST0, ST1); FPREM's C0/C1/C2/C3 come from the host.
template <Op2 kOp>
void binary01(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  if (is_empty(cpu, 0) || is_empty(cpu, 1)) {
    if (underflow(cpu)) {
      st(cpu, 0) = indefinite();
    }
    return;
  }
  uint16_t sw;
  const long double r = host2(cpu, kOp, st(cpu, 0), st(cpu, 1), sw);
  set_c(cpu, kOp == Op2::kScale ? kC1 : kConditions, sw);
  if (record(cpu, sw & kExceptions)) {
    st(cpu, 0) = r;
  }
}

template <bool kAbs>
void sign_op(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  if (is_empty(cpu, 0)) {
    if (underflow(cpu)) {
      st(cpu, 0) = indefinite();
    }
    return;
  }
  // Sign-bit manipulation only: no exceptions, NaNs keep their payload.
  F80 f = to_f80(st(cpu, 0));
  f.b[9] = kAbs ? (f.b[9] & 0x7f) : (f.b[9] ^ 0x80);
  st(cpu, 0) = from_f80(f);
  set_c(cpu, kC1, 0);
}

// ---- loads and stores ----

void fld(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  long double v;
  if (insn.operands[0].kind == OperandKind::kMem) {
    uint16_t sw;
    v = load_mem(cpu, insn, false, sw);
    if (!record(cpu, sw & kExceptions)) {
      return;
    }
  } else {
    const unsigned i = insn.operands[0].reg;
    if (is_empty(cpu, i)) {
      if (!underflow(cpu)) {
        return;
      }
      v = indefinite();
    } else {
      v = st(cpu, i);
    }
  }
  set_c(cpu, kC1, 0);
  push(cpu, v);
}
void fild(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  uint16_t sw;
  const long double v = load_mem(cpu, insn, true, sw);
  set_c(cpu, kC1, 0);
  push(cpu, v);
}

enum class Const { kOne, kZero, kPi, kL2e, kL2t, kLg2, kLn2 };
template <Const kC>
void fld_const(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  long double r;
  uint16_t sw;
  // The host instruction rounds the constant per RC, as hardware does.
  switch (kC) {
    case Const::kOne:
      HV_X87("fld1", "=t"(r), "i"(0));
      break;
    case Const::kZero:
      HV_X87("fldz", "=t"(r), "i"(0));
      break;
    case Const::kPi:
      HV_X87("fldpi", "=t"(r), "i"(0));
      break;
    case Const::kL2e:
      HV_X87("fldl2e", "=t"(r), "i"(0));
      break;
    case Const::kL2t:
      HV_X87("fldl2t", "=t"(r), "i"(0));
      break;
    case Const::kLg2:
      HV_X87("fldlg2", "=t"(r), "i"(0));
      break;
    case Const::kLn2:
      HV_X87("fldln2", "=t"(r), "i"(0));
      break;
  }
  set_c(cpu, kC1, 0);
  push(cpu, r);
}

// FST/FSTP (kInt false) and FIST/FISTP/FISTTP to memory or (FST only) a register.
enum class Store { kReal, kInt, kIntTruncate };
template <Store kKind, bool kPop>
void fst(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  long double v = st(cpu, 0);
  if (is_empty(cpu, 0)) {
    if (!underflow(cpu)) {
      return;
    }
    v = indefinite();
  }
  if (insn.operands[0].kind == OperandKind::kFpu) {
    const unsigned i = insn.operands[0].reg;
    cpu.fpu.st[phys(cpu, i)] = v;
    cpu.fpu.ftw |= static_cast<uint8_t>(1u << phys(cpu, i));
    if (kPop) {
      pop(cpu);
    }
    return;
  }
  const uint64_t ea = cpu.effective_address(insn);
  const uint8_t s = insn.mem.segment;
  const uint8_t size = insn.operands[0].size;
  uint16_t sw = 0;
  uint64_t bits = 0;
  if constexpr (kKind == Store::kReal) {
    if (size == 4) {
      float f;
      HV_X87("fsts %[m]", [m] "=m"(f), "t"(v));
      std::memcpy(&bits, &f, 4);
    } else if (size == 8) {
      double d;
      HV_X87("fstl %[m]", [m] "=m"(d), "t"(v));
      std::memcpy(&bits, &d, 8);
    }
  } else if constexpr (kKind == Store::kInt) {
    if (size == 2) {
      int16_t x;
      HV_X87("fists %[m]", [m] "=m"(x), "t"(v));
      bits = static_cast<uint16_t>(x);
    } else if (size == 4) {
      int32_t x;
      HV_X87("fistl %[m]", [m] "=m"(x), "t"(v));
      bits = static_cast<uint32_t>(x);
    } else {
      int64_t x;
      HV_X87("fld %%st(0)\n\tfistpll %[m]", [m] "=m"(x), "t"(v));
      bits = static_cast<uint64_t>(x);
    }
  } else {
    if (size == 2) {
      int16_t x;
      HV_X87("fld %%st(0)\n\tfisttps %[m]", [m] "=m"(x), "t"(v));
      bits = static_cast<uint16_t>(x);
    } else if (size == 4) {
      int32_t x;
      HV_X87("fld %%st(0)\n\tfisttpl %[m]", [m] "=m"(x), "t"(v));
      bits = static_cast<uint32_t>(x);
    } else {
      int64_t x;
      HV_X87("fld %%st(0)\n\tfisttpll %[m]", [m] "=m"(x), "t"(v));
      bits = static_cast<uint64_t>(x);
    }
  }
  if (kKind == Store::kReal && size == 10) {
    cpu.write<F80>(s, ea, to_f80(v));
  } else {
    // The store may fault: flags are recorded only after it.
    cpu.linear_address(s, ea, size, Access::kWrite);
    if (!(sw & ~cpu.fpu.fcw & (kIE | kOE | kUE))) {  // unmasked: no store
      cpu.write_sized(s, ea, size, bits);
    }
    set_c(cpu, kC1, sw);
    if (!record(cpu, sw & kExceptions)) {
      return;
    }
  }
  if (kPop) {
    pop(cpu);
  }
}
template <Store kKind, bool kPop>
Handler bind_fst(const Insn& insn) {
  if (insn.operand_count != 1) {
    return nullptr;
  }
  if (insn.operands[0].kind == OperandKind::kMem) {
    return fst<kKind, kPop>;
  }
  return kKind == Store::kReal && insn.operands[0].kind == OperandKind::kFpu ? fst<kKind, kPop>
                                                                             : nullptr;
}

void fxch(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  const unsigned i = insn.operand_count ? insn.operands[0].reg : 1;
  if (is_empty(cpu, 0) || is_empty(cpu, i)) {
    if (!underflow(cpu)) {
      return;
    }
    for (unsigned j : {0u, i}) {
      if (is_empty(cpu, j)) {
        st(cpu, j) = indefinite();
        cpu.fpu.ftw |= static_cast<uint8_t>(1u << phys(cpu, j));
      }
    }
  }
  std::swap(st(cpu, 0), st(cpu, i));
  set_c(cpu, kC1, 0);
}

// ---- compares ----

// FCOM/FUCOM family: C0/C2/C3 as the host computes them; pops 0, 1 or 2 times.
template <Op2 kOp, int kPops, bool kInteger>
void fcom(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  long double b;
  uint16_t load_sw = 0;
  bool empty = is_empty(cpu, 0);
  if (insn.operand_count == 1 && insn.operands[0].kind == OperandKind::kMem) {
    b = load_mem(cpu, insn, kInteger, load_sw);
  } else {
    const unsigned i = insn.operand_count == 2   ? insn.operands[1].reg
                       : insn.operand_count == 1 ? insn.operands[0].reg
                                                 : 1;
    empty |= is_empty(cpu, i);
    b = st(cpu, i);
  }
  if (empty) {
    if (!underflow(cpu)) {
      return;
    }
    set_c(cpu, kC0 | kC2 | kC3, kC0 | kC2 | kC3);
  } else {
    uint16_t sw;
    host2(cpu, kOp, st(cpu, 0), b, sw);
    if (!record(cpu, static_cast<uint16_t>((sw | load_sw) & kExceptions))) {
      return;
    }
    set_c(cpu, kConditions, sw & (kC0 | kC2 | kC3));
  }
  for (int k = 0; k < kPops; ++k) {
    pop(cpu);
  }
}
template <Op2 kOp, int kPops, bool kInteger>
Handler bind_fcom(const Insn& insn) {
  if (insn.operand_count == 1 && insn.operands[0].kind == OperandKind::kMem) {
    return kPops <= 1 ? fcom<kOp, kPops, kInteger> : nullptr;
  }
  return kInteger ? nullptr : fcom<kOp, kPops, false>;
}

// FCOMI/FUCOMI(P): ZF/PF/CF = C3/C2/C0, OF/SF/AF cleared.
template <Op2 kOp, bool kPop>
void fcomi(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  const unsigned i = insn.operands[1].reg;
  uint64_t flags;
  if (is_empty(cpu, 0) || is_empty(cpu, i)) {
    if (!underflow(cpu)) {
      return;
    }
    flags = flag::kZF | flag::kPF | flag::kCF;
  } else {
    uint16_t sw;
    host2(cpu, kOp, st(cpu, 0), st(cpu, i), sw);
    if (!record(cpu, sw & kExceptions)) {
      return;
    }
    flags =
        ((sw & kC3) ? flag::kZF : 0) | ((sw & kC2) ? flag::kPF : 0) | ((sw & kC0) ? flag::kCF : 0);
  }
  set_c(cpu, kC1, 0);
  cpu.lazy.set_materialized(flags);
  if (kPop) {
    pop(cpu);
  }
}

template <Op1 kOp>  // FTST, FXAM
void examine(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  if (is_empty(cpu, 0)) {
    if (kOp == Op1::kXam) {
      const bool sign = to_f80(st(cpu, 0)).b[9] & 0x80;
      set_c(cpu, kConditions, kC3 | kC0 | (sign ? kC1 : 0));
    } else if (underflow(cpu)) {
      set_c(cpu, kC0 | kC2 | kC3, kC0 | kC2 | kC3);
    }
    return;
  }
  uint16_t sw;
  host1(cpu, kOp, st(cpu, 0), sw);
  if (kOp == Op1::kXam || record(cpu, sw & kExceptions)) {
    set_c(cpu, kOp == Op1::kXam ? kConditions : (kC0 | kC2 | kC3), sw);
  }
}

// FCMOVcc: the condition from opcode DA/DB and ModRM.reg: B, E, BE, U and their negations.
void fcmov(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  const unsigned i = insn.operands[1].reg;
  bool cond;
  switch (insn.modrm_reg & 3) {
    case 0:
      cond = cpu.lazy.cf();
      break;
    case 1:
      cond = cpu.lazy.zf();
      break;
    case 2:
      cond = cpu.lazy.cf() || cpu.lazy.zf();
      break;
    default:
      cond = cpu.lazy.pf();
      break;
  }
  if ((insn.opcode & 0xff) == 0xdb) {
    cond = !cond;
  }
  if (is_empty(cpu, 0) || is_empty(cpu, i)) {
    if (underflow(cpu)) {
      st(cpu, 0) = indefinite();
      cpu.fpu.ftw |= static_cast<uint8_t>(1u << phys(cpu, 0));
    }
    return;
  }
  if (cond) {
    st(cpu, 0) = st(cpu, i);
  }
}

// ---- control ----

void fninit(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn, false, true);
  cpu.fpu.fcw = 0x37f;
  cpu.fpu.fsw = 0;
  cpu.fpu.ftw = 0;
  cpu.fpu.fop = 0;
  cpu.fpu.fip = cpu.fpu.fdp = 0;
}
void fldcw(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn, true, true);
  const uint16_t cw = cpu.read<uint16_t>(insn.mem.segment, cpu.effective_address(insn));
  cpu.fpu.fcw = static_cast<uint16_t>(cw | 0x40);  // bit 6 reads as 1
  // Unmasking a flagged exception makes it pending.
  if (cpu.fpu.fsw & ~cpu.fpu.fcw & kExceptions) {
    cpu.fpu.fsw |= kES | kB;
  } else {
    cpu.fpu.fsw &= static_cast<uint16_t>(~(kES | kB));
  }
}
void fnstcw(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn, false, true);
  cpu.write<uint16_t>(insn.mem.segment, cpu.effective_address(insn), cpu.fpu.fcw);
}
void fnstsw(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn, false, true);
  if (insn.operands[0].kind == OperandKind::kReg) {
    cpu.set_reg(0, 2, cpu.fpu.fsw);
  } else {
    cpu.write<uint16_t>(insn.mem.segment, cpu.effective_address(insn), cpu.fpu.fsw);
  }
}
void fnclex(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn, false, true);
  cpu.fpu.fsw &= 0x7f00;
}
void fwait(Cpu& cpu, const Insn&) {
  if ((cpu.cr0 & (cr0::kTS | cr0::kMP)) == (cr0::kTS | cr0::kMP)) {
    raise_fault(kDeviceNotAvailable);
  }
  if ((cpu.fpu.fsw & kES) && (cpu.cr0 & cr0::kNE)) {
    raise_fault(kFpuError);
  }
}
void fnop(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
}
void ffree(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  cpu.fpu.ftw &= static_cast<uint8_t>(~(1u << phys(cpu, insn.operands[0].reg)));
}
template <int kDelta>
void fincdec(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn);
  set_top(cpu, top(cpu) + kDelta);
  set_c(cpu, kC1, 0);
}

// ---- environment and state images ----

// Full two-bit tag of a physical register: 0 valid, 1 zero, 2 special, 3 empty.
unsigned full_tag(const Cpu& cpu, unsigned p) {
  if (!(cpu.fpu.ftw & (1u << p))) {
    return 3;
  }
  const F80 f = to_f80(cpu.fpu.st[p]);
  uint64_t mantissa;
  std::memcpy(&mantissa, f.b, 8);
  const unsigned exponent = (f.b[8] | (f.b[9] << 8)) & 0x7fff;
  if (exponent == 0 && mantissa == 0) {
    return 1;
  }
  if (exponent == 0 || exponent == 0x7fff || !(mantissa >> 63)) {
    return 2;
  }
  return 0;
}
uint16_t full_tag_word(const Cpu& cpu) {
  uint16_t tw = 0;
  for (unsigned p = 0; p < 8; ++p) {
    tw = static_cast<uint16_t>(tw | (full_tag(cpu, p) << (2 * p)));
  }
  return tw;
}
uint8_t abridged_tags(uint16_t full) {
  uint8_t t = 0;
  for (unsigned p = 0; p < 8; ++p) {
    if (((full >> (2 * p)) & 3) != 3) {
      t = static_cast<uint8_t>(t | (1u << p));
    }
  }
  return t;
}

// Protected-mode environment image: 28 bytes (32-bit operand size) or 14 (16-bit).
void store_env(Cpu& cpu, uint8_t s, uint64_t ea, bool wide) {
  const uint16_t words[7] = {cpu.fpu.fcw,
                             cpu.fpu.fsw,
                             full_tag_word(cpu),
                             static_cast<uint16_t>(cpu.fpu.fip),
                             0,
                             static_cast<uint16_t>(cpu.fpu.fdp),
                             0};
  if (!wide) {
    for (int i = 0; i < 7; ++i) {
      cpu.write<uint16_t>(s, ea + 2 * i, words[i]);
    }
    return;
  }
  const uint32_t dwords[7] = {cpu.fpu.fcw | 0xffff0000u,
                              cpu.fpu.fsw | 0xffff0000u,
                              full_tag_word(cpu) | 0xffff0000u,
                              static_cast<uint32_t>(cpu.fpu.fip),
                              static_cast<uint32_t>(cpu.fpu.fop & 0x7ff) << 16,
                              static_cast<uint32_t>(cpu.fpu.fdp),
                              0xffff0000u};
  for (int i = 0; i < 7; ++i) {
    cpu.write<uint32_t>(s, ea + 4 * i, dwords[i]);
  }
}
struct Env {
  uint16_t fcw, fsw, ftw, fop;
  uint64_t fip, fdp;
};
Env load_env(Cpu& cpu, uint8_t s, uint64_t ea, bool wide) {
  Env e{};
  if (!wide) {
    e.fcw = cpu.read<uint16_t>(s, ea);
    e.fsw = cpu.read<uint16_t>(s, ea + 2);
    e.ftw = cpu.read<uint16_t>(s, ea + 4);
    e.fip = cpu.read<uint16_t>(s, ea + 6);
    e.fdp = cpu.read<uint16_t>(s, ea + 10);
    return e;
  }
  e.fcw = cpu.read<uint16_t>(s, ea);
  e.fsw = cpu.read<uint16_t>(s, ea + 4);
  e.ftw = cpu.read<uint16_t>(s, ea + 8);
  e.fip = cpu.read<uint32_t>(s, ea + 12);
  e.fop = static_cast<uint16_t>((cpu.read<uint32_t>(s, ea + 16) >> 16) & 0x7ff);
  e.fdp = cpu.read<uint32_t>(s, ea + 20);
  return e;
}
void apply_env(Cpu& cpu, const Env& e) {
  cpu.fpu.fcw = static_cast<uint16_t>(e.fcw | 0x40);
  cpu.fpu.fsw = e.fsw;
  cpu.fpu.ftw = abridged_tags(e.ftw);
  cpu.fpu.fop = e.fop;
  cpu.fpu.fip = e.fip;
  cpu.fpu.fdp = e.fdp;
}
bool wide_env(const Insn& insn) {
  return insn.operand_size != 2;
}

void fnstenv(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn, false, true);
  store_env(cpu, insn.mem.segment, cpu.effective_address(insn), wide_env(insn));
  cpu.fpu.fcw |= kExceptions;  // FNSTENV masks all exceptions after storing
}
void fldenv(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn, true, true);
  apply_env(cpu, load_env(cpu, insn.mem.segment, cpu.effective_address(insn), wide_env(insn)));
}
void fnsave(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn, false, true);
  const uint64_t ea = cpu.effective_address(insn);
  const uint64_t regs = ea + (wide_env(insn) ? 28 : 14);
  cpu.linear_address(insn.mem.segment, ea, wide_env(insn) ? 108 : 94, Access::kWrite);
  store_env(cpu, insn.mem.segment, ea, wide_env(insn));
  for (unsigned i = 0; i < 8; ++i) {
    cpu.write<F80>(insn.mem.segment, regs + 10 * i, to_f80(st(cpu, i)));
  }
  fninit(cpu, insn);
}
void frstor(Cpu& cpu, const Insn& insn) {
  enter(cpu, insn, true, true);
  const uint64_t ea = cpu.effective_address(insn);
  const Env e = load_env(cpu, insn.mem.segment, ea, wide_env(insn));
  const uint64_t regs = ea + (wide_env(insn) ? 28 : 14);
  F80 values[8];
  for (unsigned i = 0; i < 8; ++i) {
    values[i] = cpu.read<F80>(insn.mem.segment, regs + 10 * i);
  }
  apply_env(cpu, e);
  for (unsigned i = 0; i < 8; ++i) {
    st(cpu, i) = from_f80(values[i]);
  }
}

// FXSAVE/FXRSTOR 512-byte image. The 64-bit forms (REX.W) store 64-bit FIP/FDP; XMM8-15 only
// exist in 64-bit mode. Bytes 464-511 are left to software.
bool in_64bit_mode(const Cpu& cpu) {
  return cpu.code_size() == 8;
}
void fxsave(Cpu& cpu, const Insn& insn) {
  check_x87(cpu);
  const uint64_t la = memory_linear(cpu, insn, 512, Access::kWrite, true);
  uint8_t img[416] = {};
  auto put = [&img](size_t off, const void* p, size_t n) { std::memcpy(img + off, p, n); };
  put(0, &cpu.fpu.fcw, 2);
  put(2, &cpu.fpu.fsw, 2);
  put(4, &cpu.fpu.ftw, 1);
  put(6, &cpu.fpu.fop, 2);
  if (insn.operand_size == 8) {
    put(8, &cpu.fpu.fip, 8);
    put(16, &cpu.fpu.fdp, 8);
  } else {
    const uint32_t fip = static_cast<uint32_t>(cpu.fpu.fip),
                   fdp = static_cast<uint32_t>(cpu.fpu.fdp);
    put(8, &fip, 4);
    put(16, &fdp, 4);
  }
  const uint32_t mask = 0xffff;
  put(24, &cpu.fpu.mxcsr, 4);
  put(28, &mask, 4);
  for (unsigned i = 0; i < 8; ++i) {
    put(32 + 16 * i, to_f80(st(cpu, i)).b, 10);
  }
  const unsigned xmm_count = in_64bit_mode(cpu) ? 16 : 8;
  for (unsigned i = 0; i < xmm_count; ++i) {
    put(160 + 16 * i, cpu.fpu.xmm[i].data(), 16);
  }
  const size_t len = 160 + 16 * xmm_count;
  // Idempotent stores: a page fault part-way leaves a partial image the restart rewrites.
  for (size_t off = 0; off < len; off += 8) {
    uint64_t q;
    std::memcpy(&q, img + off, 8);
    cpu.write_linear<uint64_t>(la + off, q);
  }
}
void fxrstor(Cpu& cpu, const Insn& insn) {
  check_x87(cpu);
  const uint64_t la = memory_linear(cpu, insn, 512, Access::kRead, true);
  uint8_t img[416];
  const unsigned xmm_count = in_64bit_mode(cpu) ? 16 : 8;
  const size_t len = 160 + 16 * xmm_count;
  for (size_t off = 0; off < len; off += 8) {
    const uint64_t q = cpu.read_linear<uint64_t>(la + off);
    std::memcpy(img + off, &q, 8);
  }
  uint32_t mxcsr;
  std::memcpy(&mxcsr, img + 24, 4);
  if (mxcsr & ~0xffffu) {
    raise_fault(kGeneralProtection, 0);
  }
  FpuState& f = cpu.fpu;
  std::memcpy(&f.fcw, img, 2);
  std::memcpy(&f.fsw, img + 2, 2);
  f.ftw = img[4];
  std::memcpy(&f.fop, img + 6, 2);
  f.fop &= 0x7ff;
  if (insn.operand_size == 8) {
    std::memcpy(&f.fip, img + 8, 8);
    std::memcpy(&f.fdp, img + 16, 8);
  } else {
    uint32_t fip, fdp;
    std::memcpy(&fip, img + 8, 4);
    std::memcpy(&fdp, img + 16, 4);
    f.fip = fip;
    f.fdp = fdp;
  }
  f.mxcsr = mxcsr;
  for (unsigned i = 0; i < 8; ++i) {
    F80 v;
    std::memcpy(v.b, img + 32 + 16 * i, 10);
    st(cpu, i) = from_f80(v);
  }
  for (unsigned i = 0; i < xmm_count; ++i) {
    std::memcpy(f.xmm[i].data(), img + 160 + 16 * i, 16);
  }
}

template <Handler H>
Handler always(const Insn&) {
  return H;
}
template <Handler H>
Handler mem_form(const Insn& insn) {
  return insn.operand_count == 1 && insn.operands[0].kind == OperandKind::kMem ? H : nullptr;
}
template <Handler H>
Handler fpu_form(const Insn& insn) {
  return insn.operand_count >= 1 && insn.operands[0].kind == OperandKind::kFpu ? H : nullptr;
}
Handler bind_fld(const Insn& insn) {
  return insn.operand_count == 1 ? fld : nullptr;
}
Handler bind_fnstsw(const Insn& insn) {
  return insn.operand_count == 1 ? fnstsw : nullptr;
}
template <Op2 kOp, bool kPop>
Handler bind_fcomi(const Insn& insn) {
  return insn.operand_count == 2 && insn.operands[1].kind == OperandKind::kFpu ? fcomi<kOp, kPop>
                                                                               : nullptr;
}

}  // namespace

void register_x87_ops(HandlerRegistry& r) {
  auto add = [&r](ZydisMnemonic m, Binder b) { add_chained(r, m, b); };
  add(ZYDIS_MNEMONIC_FNINIT, always<fninit>);
  add(ZYDIS_MNEMONIC_FLDCW, mem_form<fldcw>);
  add(ZYDIS_MNEMONIC_FNSTCW, mem_form<fnstcw>);
  add(ZYDIS_MNEMONIC_FNSTSW, bind_fnstsw);
  add(ZYDIS_MNEMONIC_FNCLEX, always<fnclex>);
  add(ZYDIS_MNEMONIC_FWAIT, always<fwait>);
  add(ZYDIS_MNEMONIC_FNOP, always<fnop>);
  add(ZYDIS_MNEMONIC_FNSTENV, mem_form<fnstenv>);
  add(ZYDIS_MNEMONIC_FLDENV, mem_form<fldenv>);
  add(ZYDIS_MNEMONIC_FNSAVE, mem_form<fnsave>);
  add(ZYDIS_MNEMONIC_FRSTOR, mem_form<frstor>);
  add(ZYDIS_MNEMONIC_FXSAVE, mem_form<fxsave>);
  add(ZYDIS_MNEMONIC_FXSAVE64, mem_form<fxsave>);
  add(ZYDIS_MNEMONIC_FXRSTOR, mem_form<fxrstor>);
  add(ZYDIS_MNEMONIC_FXRSTOR64, mem_form<fxrstor>);

  add(ZYDIS_MNEMONIC_FLD, bind_fld);
  add(ZYDIS_MNEMONIC_FILD, mem_form<fild>);
  add(ZYDIS_MNEMONIC_FLD1, always<fld_const<Const::kOne>>);
  add(ZYDIS_MNEMONIC_FLDZ, always<fld_const<Const::kZero>>);
  add(ZYDIS_MNEMONIC_FLDPI, always<fld_const<Const::kPi>>);
  add(ZYDIS_MNEMONIC_FLDL2E, always<fld_const<Const::kL2e>>);
  add(ZYDIS_MNEMONIC_FLDL2T, always<fld_const<Const::kL2t>>);
  add(ZYDIS_MNEMONIC_FLDLG2, always<fld_const<Const::kLg2>>);
  add(ZYDIS_MNEMONIC_FLDLN2, always<fld_const<Const::kLn2>>);
  add(ZYDIS_MNEMONIC_FST, bind_fst<Store::kReal, false>);
  add(ZYDIS_MNEMONIC_FSTP, bind_fst<Store::kReal, true>);
  add(ZYDIS_MNEMONIC_FIST, bind_fst<Store::kInt, false>);
  add(ZYDIS_MNEMONIC_FISTP, bind_fst<Store::kInt, true>);
  add(ZYDIS_MNEMONIC_FISTTP, bind_fst<Store::kIntTruncate, true>);
  add(ZYDIS_MNEMONIC_FXCH, always<fxch>);

  add(ZYDIS_MNEMONIC_FADD, bind_arith<Op2::kAdd, false, false, false>);
  add(ZYDIS_MNEMONIC_FADDP, bind_arith<Op2::kAdd, false, true, false>);
  add(ZYDIS_MNEMONIC_FIADD, bind_arith<Op2::kAdd, false, false, true>);
  add(ZYDIS_MNEMONIC_FSUB, bind_arith<Op2::kSub, false, false, false>);
  add(ZYDIS_MNEMONIC_FSUBP, bind_arith<Op2::kSub, false, true, false>);
  add(ZYDIS_MNEMONIC_FISUB, bind_arith<Op2::kSub, false, false, true>);
  add(ZYDIS_MNEMONIC_FSUBR, bind_arith<Op2::kSub, true, false, false>);
  add(ZYDIS_MNEMONIC_FSUBRP, bind_arith<Op2::kSub, true, true, false>);
  add(ZYDIS_MNEMONIC_FISUBR, bind_arith<Op2::kSub, true, false, true>);
  add(ZYDIS_MNEMONIC_FMUL, bind_arith<Op2::kMul, false, false, false>);
  add(ZYDIS_MNEMONIC_FMULP, bind_arith<Op2::kMul, false, true, false>);
  add(ZYDIS_MNEMONIC_FIMUL, bind_arith<Op2::kMul, false, false, true>);
  add(ZYDIS_MNEMONIC_FDIV, bind_arith<Op2::kDiv, false, false, false>);
  add(ZYDIS_MNEMONIC_FDIVP, bind_arith<Op2::kDiv, false, true, false>);
  add(ZYDIS_MNEMONIC_FIDIV, bind_arith<Op2::kDiv, false, false, true>);
  add(ZYDIS_MNEMONIC_FDIVR, bind_arith<Op2::kDiv, true, false, false>);
  add(ZYDIS_MNEMONIC_FDIVRP, bind_arith<Op2::kDiv, true, true, false>);
  add(ZYDIS_MNEMONIC_FIDIVR, bind_arith<Op2::kDiv, true, false, true>);

  add(ZYDIS_MNEMONIC_FCHS, always<sign_op<false>>);
  add(ZYDIS_MNEMONIC_FABS, always<sign_op<true>>);
  add(ZYDIS_MNEMONIC_FSQRT, always<unary<Op1::kSqrt>>);
  add(ZYDIS_MNEMONIC_FRNDINT, always<unary<Op1::kRndint>>);
  add(ZYDIS_MNEMONIC_FSCALE, always<binary01<Op2::kScale>>);
  add(ZYDIS_MNEMONIC_FPREM, always<binary01<Op2::kPrem>>);
  add(ZYDIS_MNEMONIC_FPREM1, always<binary01<Op2::kPrem1>>);
  add(ZYDIS_MNEMONIC_FXAM, always<examine<Op1::kXam>>);
  add(ZYDIS_MNEMONIC_FTST, always<examine<Op1::kTst>>);

  add(ZYDIS_MNEMONIC_FCOM, bind_fcom<Op2::kCom, 0, false>);
  add(ZYDIS_MNEMONIC_FCOMP, bind_fcom<Op2::kCom, 1, false>);
  add(ZYDIS_MNEMONIC_FCOMPP, bind_fcom<Op2::kCom, 2, false>);
  add(ZYDIS_MNEMONIC_FICOM, bind_fcom<Op2::kCom, 0, true>);
  add(ZYDIS_MNEMONIC_FICOMP, bind_fcom<Op2::kCom, 1, true>);
  add(ZYDIS_MNEMONIC_FUCOM, bind_fcom<Op2::kUcom, 0, false>);
  add(ZYDIS_MNEMONIC_FUCOMP, bind_fcom<Op2::kUcom, 1, false>);
  add(ZYDIS_MNEMONIC_FUCOMPP, bind_fcom<Op2::kUcom, 2, false>);
  add(ZYDIS_MNEMONIC_FCOMI, bind_fcomi<Op2::kCom, false>);
  add(ZYDIS_MNEMONIC_FCOMIP, bind_fcomi<Op2::kCom, true>);
  add(ZYDIS_MNEMONIC_FUCOMI, bind_fcomi<Op2::kUcom, false>);
  add(ZYDIS_MNEMONIC_FUCOMIP, bind_fcomi<Op2::kUcom, true>);
  for (ZydisMnemonic m : {ZYDIS_MNEMONIC_FCMOVB, ZYDIS_MNEMONIC_FCMOVE, ZYDIS_MNEMONIC_FCMOVBE,
                          ZYDIS_MNEMONIC_FCMOVU, ZYDIS_MNEMONIC_FCMOVNB, ZYDIS_MNEMONIC_FCMOVNE,
                          ZYDIS_MNEMONIC_FCMOVNBE, ZYDIS_MNEMONIC_FCMOVNU}) {
    add(m, fpu_form<fcmov>);
  }
  add(ZYDIS_MNEMONIC_FFREE, fpu_form<ffree>);
  add(ZYDIS_MNEMONIC_FINCSTP, always<fincdec<1>>);
  add(ZYDIS_MNEMONIC_FDECSTP, always<fincdec<-1>>);
}

}  // namespace hv::emu::fpu
