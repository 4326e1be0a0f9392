// Integer arithmetic and logic: ADD..CMP, TEST, INC/DEC/NOT/NEG, MUL/IMUL/DIV/IDIV, sign
// extensions, shifts and rotates, SHLD/SHRD, bit tests and scans, BSWAP, XADD, CMPXCHG(8B/16B),
// flag instructions and BCD adjustments.
//
// Flags for undefined cases (documented per instruction below) follow what Intel hardware
// does where it is well known; otherwise undefined flags are left unchanged.
#include <bit>
#include <limits>

#include "emu/ops_integer_alu.hpp"

namespace hv::emu::integer {
namespace {

__extension__ typedef unsigned __int128 u128;
__extension__ typedef __int128 s128;

template <Alu Op>
Handler bind_alu(const Insn& insn) {
  Form form;
  if (insn.operand_count < 2 || !two_operand_form(insn, form)) {
    return nullptr;
  }
  const bool lock = has_lock(insn);
  constexpr bool kLockable = Op != Alu::kCmp && Op != Alu::kTest;
  if (lock && (!kLockable || (form != Form::kMR && form != Form::kMI))) {
    return nullptr;
  }
  if (Op == Alu::kTest && form == Form::kRM) {
    form = Form::kMR;  // TEST is commutative; Zydis may list either order
  }
  const uint8_t size = insn.operands[0].size;
  switch (form) {
    case Form::kRR:
      HV_INT_BY_SIZE(size, &alu<Op, T, Form::kRR, false>)
    case Form::kRM:
      HV_INT_BY_SIZE(size, &alu<Op, T, Form::kRM, false>)
    case Form::kRI:
      HV_INT_BY_SIZE(size, &alu<Op, T, Form::kRI, false>)
    case Form::kMR:
      if (lock) {
        HV_INT_BY_SIZE(size, &alu<Op, T, Form::kMR, true>)
      }
      HV_INT_BY_SIZE(size, &alu<Op, T, Form::kMR, false>)
    case Form::kMI:
      if (lock) {
        HV_INT_BY_SIZE(size, &alu<Op, T, Form::kMI, true>)
      }
      HV_INT_BY_SIZE(size, &alu<Op, T, Form::kMI, false>)
  }
  return nullptr;
}

// TEST reg, mem is encoded as TEST mem, reg; handle Zydis' operand order either way.
template <typename T>
void test_reg_mem(Cpu& cpu, const Insn& insn) {
  const T a = cpu.read<T>(insn.mem.segment, cpu.effective_address(insn));
  const T b = get_reg<T>(cpu, insn.operands[0].reg);
  cpu.lazy.set(FlagOp::kLogic, sizeof(T), a, b, static_cast<T>(a & b));
}

Handler bind_test(const Insn& insn) {
  Form form;
  if (has_lock(insn) || insn.operand_count < 2 || !two_operand_form(insn, form)) {
    return nullptr;
  }
  if (form == Form::kRM) {
    HV_INT_BY_SIZE(insn.operands[0].size, &test_reg_mem<T>)
  }
  return bind_alu<Alu::kTest>(insn);
}

// ---------------------------------------------------------------------------------------------
// INC DEC NOT NEG
// ---------------------------------------------------------------------------------------------

enum class Unary : uint8_t { kInc, kDec, kNot, kNeg };

template <Unary Op, typename T>
inline T unary_compute(T d) {
  switch (Op) {
    case Unary::kInc:
      return static_cast<T>(d + 1);
    case Unary::kDec:
      return static_cast<T>(d - 1);
    case Unary::kNot:
      return static_cast<T>(~d);
    case Unary::kNeg:
      return static_cast<T>(T{0} - d);
  }
  return 0;
}

template <Unary Op, typename T, bool Mem, bool Lock>
void unary(Cpu& cpu, const Insn& insn) {
  const bool cf = (Op == Unary::kInc || Op == Unary::kDec) ? cpu.lazy.cf() : false;
  T d;
  T r;
  if constexpr (Mem) {
    const uint64_t ea = cpu.effective_address(insn);
    if constexpr (Lock) {
      d = locked_rmw<T>(cpu, insn.mem.segment, ea, [](T old) { return unary_compute<Op, T>(old); });
      r = unary_compute<Op, T>(d);
    } else {
      d = cpu.read<T>(insn.mem.segment, ea);
      r = unary_compute<Op, T>(d);
      cpu.write<T>(insn.mem.segment, ea, r);
    }
  } else {
    d = get_reg<T>(cpu, insn.operands[0].reg);
    r = unary_compute<Op, T>(d);
    put_reg<T>(cpu, insn.operands[0].reg, r);
  }
  switch (Op) {
    case Unary::kInc:
      cpu.lazy.set_with_carry(FlagOp::kInc, sizeof(T), d, 1, r, cf);
      break;
    case Unary::kDec:
      cpu.lazy.set_with_carry(FlagOp::kDec, sizeof(T), d, 1, r, cf);
      break;
    case Unary::kNeg:
      cpu.lazy.set(FlagOp::kSub, sizeof(T), 0, d, r);
      break;
    case Unary::kNot:
      break;
  }
}

template <Unary Op>
Handler bind_unary(const Insn& insn) {
  const Operand& o = insn.operands[0];
  const bool lock = has_lock(insn);
  if (o.kind == OperandKind::kReg) {
    if (lock) {
      return nullptr;
    }
    HV_INT_BY_SIZE(o.size, &unary<Op, T, false, false>)
  }
  if (o.kind == OperandKind::kMem) {
    if (lock) {
      HV_INT_BY_SIZE(o.size, &unary<Op, T, true, true>)
    }
    HV_INT_BY_SIZE(o.size, &unary<Op, T, true, false>)
  }
  return nullptr;
}

// Reads operand 0 (or `index`) as T, register or memory form chosen at compile time.
template <typename T, bool Mem>
inline T read_rm(Cpu& cpu, const Insn& insn, int index) {
  if constexpr (Mem) {
    return cpu.read<T>(insn.mem.segment, cpu.effective_address(insn));
  } else {
    return get_reg<T>(cpu, insn.operands[index].reg);
  }
}

template <typename T, bool Mem>
inline void write_rm(Cpu& cpu, const Insn& insn, int index, T value) {
  if constexpr (Mem) {
    cpu.write<T>(insn.mem.segment, cpu.effective_address(insn), value);
  } else {
    put_reg<T>(cpu, insn.operands[index].reg, value);
  }
}

// Picks <T, Mem> from operand `index`.
#define HV_INT_BY_SIZE_RM(insn, index, NAME)    \
  do {                                          \
    const Operand& o_ = (insn).operands[index]; \
    if (o_.kind == OperandKind::kMem) {         \
      HV_INT_BY_SIZE(o_.size, &NAME<T, true>)   \
    }                                           \
    if (o_.kind == OperandKind::kReg) {         \
      HV_INT_BY_SIZE(o_.size, &NAME<T, false>)  \
    }                                           \
    return nullptr;                             \
  } while (0)

// ---------------------------------------------------------------------------------------------
// MUL IMUL DIV IDIV
// ---------------------------------------------------------------------------------------------

template <typename T>
struct Wide;
template <>
struct Wide<uint8_t> {
  using U = uint16_t;
  using S = int16_t;
};
template <>
struct Wide<uint16_t> {
  using U = uint32_t;
  using S = int32_t;
};
template <>
struct Wide<uint32_t> {
  using U = uint64_t;
  using S = int64_t;
};
template <>
struct Wide<uint64_t> {
  using U = u128;
  using S = s128;
};

template <typename T>
using Signed = std::make_signed_t<T>;

// Multiply flags: CF = OF = `overflow`; SF/ZF/PF from the low half of the result and AF = 0, as
// recent Intel cores produce (the ISA leaves SF/ZF/AF/PF undefined).
template <typename T>
inline void mul_flags(Cpu& cpu, T low, bool overflow) {
  cpu.lazy.set_materialized(szp_bits(low) | (overflow ? (flag::kCF | flag::kOF) : 0));
}

// Stores the double-width product: AX for 8-bit, DX:AX / EDX:EAX / RDX:RAX otherwise.
template <typename T>
inline void store_acc_pair(Cpu& cpu, T low, T high) {
  if constexpr (sizeof(T) == 1) {
    put_reg<uint16_t>(cpu, 0, static_cast<uint16_t>(low | (high << 8)));
  } else {
    put_reg<T>(cpu, 0, low);
    put_reg<T>(cpu, 2, high);
  }
}

template <typename T, bool Mem>
void mul1(Cpu& cpu, const Insn& insn) {
  using U = typename Wide<T>::U;
  const T s = read_rm<T, Mem>(cpu, insn, 0);
  const U p = static_cast<U>(get_reg<T>(cpu, 0)) * static_cast<U>(s);
  const T low = static_cast<T>(p);
  const T high = static_cast<T>(p >> (sizeof(T) * 8));
  store_acc_pair<T>(cpu, low, high);
  mul_flags<T>(cpu, low, high != 0);
}

template <typename T, bool Mem>
void imul1(Cpu& cpu, const Insn& insn) {
  using S = typename Wide<T>::S;
  const T s = read_rm<T, Mem>(cpu, insn, 0);
  const S p = static_cast<S>(static_cast<Signed<T>>(get_reg<T>(cpu, 0))) *
              static_cast<S>(static_cast<Signed<T>>(s));
  const T low = static_cast<T>(p);
  const T high = static_cast<T>(p >> (sizeof(T) * 8));
  store_acc_pair<T>(cpu, low, high);
  mul_flags<T>(cpu, low, p != static_cast<S>(static_cast<Signed<T>>(low)));
}

// IMUL r, r/m (Imm = false) and IMUL r, r/m, imm (Imm = true).
template <typename T, bool Mem, bool Imm>
void imul_n(Cpu& cpu, const Insn& insn) {
  using S = typename Wide<T>::S;
  const T a = read_rm<T, Mem>(cpu, insn, 1);
  const T b = Imm ? static_cast<T>(insn.immediate) : get_reg<T>(cpu, insn.operands[0].reg);
  const S p = static_cast<S>(static_cast<Signed<T>>(a)) * static_cast<S>(static_cast<Signed<T>>(b));
  const T low = static_cast<T>(p);
  put_reg<T>(cpu, insn.operands[0].reg, low);
  mul_flags<T>(cpu, low, p != static_cast<S>(static_cast<Signed<T>>(low)));
}

Handler bind_mul(const Insn& insn) {
  HV_INT_BY_SIZE_RM(insn, 0, mul1);
}

Handler bind_imul(const Insn& insn) {
  if (has_lock(insn)) {
    return nullptr;
  }
  if (insn.operand_count <= 1) {
    HV_INT_BY_SIZE_RM(insn, 0, imul1);
  }
  const bool imm = insn.operand_count >= 3 && insn.operands[2].kind == OperandKind::kImm;
  const bool mem = insn.operands[1].kind == OperandKind::kMem;
  if (insn.operands[0].kind != OperandKind::kReg) {
    return nullptr;
  }
  const uint8_t size = insn.operands[0].size;
  if (imm) {
    if (mem) {
      HV_INT_BY_SIZE_WIDE(size, &imul_n<T, true, true>)
    }
    HV_INT_BY_SIZE_WIDE(size, &imul_n<T, false, true>)
  }
  if (mem) {
    HV_INT_BY_SIZE_WIDE(size, &imul_n<T, true, false>)
  }
  HV_INT_BY_SIZE_WIDE(size, &imul_n<T, false, false>)
}

// DIV/IDIV leave the flags unchanged (all six are undefined by the ISA).
template <typename T, bool Mem>
void div1(Cpu& cpu, const Insn& insn) {
  using U = typename Wide<T>::U;
  const T s = read_rm<T, Mem>(cpu, insn, 0);
  if (s == 0) {
    raise_fault(kDivideError);
  }
  U dividend;
  if constexpr (sizeof(T) == 1) {
    dividend = get_reg<uint16_t>(cpu, 0);
  } else {
    dividend = (static_cast<U>(get_reg<T>(cpu, 2)) << (sizeof(T) * 8)) | get_reg<T>(cpu, 0);
  }
  const U q = dividend / s;
  const U r = dividend % s;
  if (q > static_cast<U>(static_cast<T>(~T{0}))) {
    raise_fault(kDivideError);
  }
  if constexpr (sizeof(T) == 1) {
    put_reg<uint16_t>(cpu, 0, static_cast<uint16_t>(static_cast<uint8_t>(q) | (r << 8)));
  } else {
    put_reg<T>(cpu, 0, static_cast<T>(q));
    put_reg<T>(cpu, 2, static_cast<T>(r));
  }
}

template <typename T, bool Mem>
void idiv1(Cpu& cpu, const Insn& insn) {
  using U = typename Wide<T>::U;
  using S = typename Wide<T>::S;
  const S s = static_cast<Signed<T>>(read_rm<T, Mem>(cpu, insn, 0));
  if (s == 0) {
    raise_fault(kDivideError);
  }
  U raw;
  if constexpr (sizeof(T) == 1) {
    raw = get_reg<uint16_t>(cpu, 0);
  } else {
    raw = (static_cast<U>(get_reg<T>(cpu, 2)) << (sizeof(T) * 8)) | get_reg<T>(cpu, 0);
  }
  const S dividend = static_cast<S>(raw);
  constexpr S kMinWide = static_cast<S>(static_cast<U>(1) << (sizeof(U) * 8 - 1));
  if (s == -1 && dividend == kMinWide) {
    raise_fault(kDivideError);
  }
  const S q = dividend / s;
  const S r = dividend % s;
  constexpr S kMin = std::numeric_limits<Signed<T>>::min();
  constexpr S kMax = std::numeric_limits<Signed<T>>::max();
  if (q < kMin || q > kMax) {
    raise_fault(kDivideError);
  }
  if constexpr (sizeof(T) == 1) {
    put_reg<uint16_t>(
        cpu, 0, static_cast<uint16_t>(static_cast<uint8_t>(q) | (static_cast<uint8_t>(r) << 8)));
  } else {
    put_reg<T>(cpu, 0, static_cast<T>(q));
    put_reg<T>(cpu, 2, static_cast<T>(r));
  }
}

Handler bind_div(const Insn& insn) {
  HV_INT_BY_SIZE_RM(insn, 0, div1);
}
Handler bind_idiv(const Insn& insn) {
  HV_INT_BY_SIZE_RM(insn, 0, idiv1);
}

// ---------------------------------------------------------------------------------------------
// CBW/CWDE/CDQE, CWD/CDQ/CQO
// ---------------------------------------------------------------------------------------------

template <typename T>
void sign_extend_acc(Cpu& cpu, const Insn&) {
  using H =
      std::conditional_t<sizeof(T) == 2, uint8_t,
                         std::conditional_t<sizeof(T) == 4, uint16_t, uint32_t>>;  // the half being
                                                                                   // extended
  const H h = get_reg<H>(cpu, 0);
  put_reg<T>(cpu, 0, static_cast<T>(static_cast<Signed<T>>(static_cast<Signed<H>>(h))));
}

template <typename T>
void sign_extend_acc_pair(Cpu& cpu, const Insn&) {
  put_reg<T>(cpu, 2, msb(get_reg<T>(cpu, 0)) ? static_cast<T>(~T{0}) : T{0});
}

Handler bind_cbw(const Insn&) {
  return &sign_extend_acc<uint16_t>;
}
Handler bind_cwde(const Insn&) {
  return &sign_extend_acc<uint32_t>;
}
Handler bind_cdqe(const Insn&) {
  return &sign_extend_acc<uint64_t>;
}
Handler bind_cwd(const Insn&) {
  return &sign_extend_acc_pair<uint16_t>;
}
Handler bind_cdq(const Insn&) {
  return &sign_extend_acc_pair<uint32_t>;
}
Handler bind_cqo(const Insn&) {
  return &sign_extend_acc_pair<uint64_t>;
}

// ---------------------------------------------------------------------------------------------
// Shifts and rotates
// ---------------------------------------------------------------------------------------------

enum class Sh : uint8_t { kShl, kShr, kSar, kRol, kRor, kRcl, kRcr };

inline unsigned shift_count(const Cpu& cpu, const Insn& insn, int index) {
  if (insn.operand_count <= index) {
    return 1;
  }
  const Operand& o = insn.operands[index];
  if (o.kind == OperandKind::kImm) {
    return static_cast<unsigned>(insn.immediate & 0xff);
  }
  return static_cast<unsigned>(cpu.gpr[1] & 0xff);  // CL
}

// Shift/rotate by a masked count (5 bits, 6 for 64-bit). A masked count of 0 changes neither
// the destination nor the flags (a 32-bit register destination is still zero-extended, as
// hardware writes it back).
//
// Flags: SHL/SHR/SAR use LazyFlags (OF defined for count 1; for larger counts SHL gives
// MSB(result) ^ CF, SHR MSB(original) only for 1, SAR 0). When an 8/16-bit count reaches the
// width, the result and CF are computed here (CF = last bit shifted out, 0 beyond it) with SF/ZF/
// PF from the result, AF = 0 and OF as for count 1 applied to the final result.
// Rotates change only CF and OF; OF is computed with the count-1 formula for every count (as
// Intel hardware does); RCL/RCR rotate through CF by count mod (width + 1) for 8/16-bit.
template <Sh Op, typename T, bool Mem>
void shift(Cpu& cpu, const Insn& insn) {
  constexpr unsigned kWidth = sizeof(T) * 8;
  const unsigned count = shift_count(cpu, insn, 1) & (kWidth == 64 ? 63 : 31);
  uint64_t ea = 0;
  T d;
  if constexpr (Mem) {
    ea = cpu.effective_address(insn);
    d = cpu.read<T>(insn.mem.segment, ea);
  } else {
    d = get_reg<T>(cpu, insn.operands[0].reg);
  }
  if (count == 0) {
    if constexpr (!Mem) {
      put_reg<T>(cpu, insn.operands[0].reg, d);
    }
    return;
  }
  T r = 0;
  bool materialize = false;
  uint64_t bits = 0;  // for materialized cases: new CF/OF (rotates) or all six flags
  switch (Op) {
    case Sh::kShl:
      if (count < kWidth) {
        r = static_cast<T>(d << count);
      } else {
        r = 0;
        const bool cf = count == kWidth ? (d & 1) != 0 : false;
        bits = szp_bits<T>(r) | (cf ? flag::kCF : 0) | (cf ? flag::kOF : 0);
        materialize = true;
      }
      break;
    case Sh::kShr:
      if (count < kWidth) {
        r = static_cast<T>(d >> count);
      } else {
        r = 0;
        const bool cf = count == kWidth ? msb(d) : false;
        bits = szp_bits<T>(r) | (cf ? flag::kCF : 0);
        materialize = true;
      }
      break;
    case Sh::kSar:
      if (count < kWidth) {
        r = static_cast<T>(static_cast<Signed<T>>(d) >> count);
      } else {
        r = msb(d) ? static_cast<T>(~T{0}) : T{0};
        bits = szp_bits<T>(r) | (msb(d) ? flag::kCF : 0);
        materialize = true;
      }
      break;
    case Sh::kRol: {
      const unsigned c = count % kWidth;
      r = c == 0 ? d : static_cast<T>((d << c) | (d >> (kWidth - c)));
      const bool cf = (r & 1) != 0;
      bits = (cf ? flag::kCF : 0) | ((msb(r) != cf) ? flag::kOF : 0);
      break;
    }
    case Sh::kRor: {
      const unsigned c = count % kWidth;
      r = c == 0 ? d : static_cast<T>((d >> c) | (d << (kWidth - c)));
      const bool cf = msb(r);
      bits = (cf ? flag::kCF : 0) | ((msb(r) != msb(static_cast<T>(r << 1))) ? flag::kOF : 0);
      break;
    }
    case Sh::kRcl:
    case Sh::kRcr: {
      const unsigned c = kWidth < 32 ? count % (kWidth + 1) : count;
      bool cf = cpu.lazy.cf();
      r = d;
      if (c != 0) {
        // Rotate the (width+1)-bit value CF:r.
        using U = typename Wide<T>::U;
        U v = static_cast<U>(r) | (static_cast<U>(cf) << kWidth);
        constexpr unsigned n = kWidth + 1;
        const U all = (static_cast<U>(1) << n) - 1;
        if (Op == Sh::kRcl) {
          v = ((v << c) | (v >> (n - c))) & all;
        } else {
          v = ((v >> c) | (v << (n - c))) & all;
        }
        r = static_cast<T>(v);
        cf = ((v >> kWidth) & 1) != 0;
      }
      bool of;
      if (Op == Sh::kRcl) {
        of = msb(r) != cf;
      } else {
        of = msb(r) != msb(static_cast<T>(r << 1));
      }
      bits = (cf ? flag::kCF : 0) | (of ? flag::kOF : 0);
      break;
    }
  }
  if constexpr (Mem) {
    cpu.write<T>(insn.mem.segment, ea, r);
  } else {
    put_reg<T>(cpu, insn.operands[0].reg, r);
  }
  switch (Op) {
    case Sh::kShl:
    case Sh::kShr:
    case Sh::kSar:
      if (materialize) {
        cpu.lazy.set_materialized(bits);
      } else {
        const FlagOp f = Op == Sh::kShl   ? FlagOp::kShl
                         : Op == Sh::kShr ? FlagOp::kShr
                                          : FlagOp::kSar;
        cpu.lazy.set(f, sizeof(T), d, count, r);
      }
      break;
    default:
      update_flags(cpu, flag::kCF | flag::kOF, bits);
      break;
  }
}

template <Sh Op>
Handler bind_shift(const Insn& insn) {
  if (has_lock(insn)) {
    return nullptr;
  }
  if (insn.operand_count >= 2 && insn.operands[1].kind != OperandKind::kImm &&
      insn.operands[1].kind != OperandKind::kReg) {
    return nullptr;
  }
  const Operand& o = insn.operands[0];
  if (o.kind == OperandKind::kMem) {
    HV_INT_BY_SIZE(o.size, &shift<Op, T, true>)
  }
  if (o.kind == OperandKind::kReg) {
    HV_INT_BY_SIZE(o.size, &shift<Op, T, false>)
  }
  return nullptr;
}

// SHLD/SHRD r/m, reg, imm8/CL. Count masked to 5 (6) bits; 0 = no change. 16-bit counts above
// 16 shift through the 32-bit concatenation dst:src:dst as Intel hardware does. Flags: CF = last
// bit shifted out, SF/ZF/PF from the result, AF = 0, OF = sign change (defined for count 1;
// computed the same way for others).
template <typename T, bool Mem, bool Left>
void shxd(Cpu& cpu, const Insn& insn) {
  constexpr unsigned kWidth = sizeof(T) * 8;
  const unsigned count = shift_count(cpu, insn, 2) & (kWidth == 64 ? 63 : 31);
  uint64_t ea = 0;
  T d;
  if constexpr (Mem) {
    ea = cpu.effective_address(insn);
    d = cpu.read<T>(insn.mem.segment, ea);
  } else {
    d = get_reg<T>(cpu, insn.operands[0].reg);
  }
  const T s = get_reg<T>(cpu, insn.operands[1].reg);
  if (count == 0) {
    if constexpr (!Mem) {
      put_reg<T>(cpu, insn.operands[0].reg, d);
    }
    return;
  }
  T r;
  bool cf;
  if constexpr (sizeof(T) == 2) {
    // 48-bit pattern d:s:d (left) or d:s:d read the other way (right).
    if (Left) {
      const uint64_t v = (static_cast<uint64_t>(d) << 32) | (static_cast<uint64_t>(s) << 16) | d;
      r = static_cast<T>((v << count) >> 32);
      cf = ((v >> (48 - count)) & 1) != 0;
    } else {
      const uint64_t v = (static_cast<uint64_t>(d) << 32) | (static_cast<uint64_t>(s) << 16) | d;
      r = static_cast<T>(v >> count);
      cf = ((v >> (count - 1)) & 1) != 0;
    }
  } else {
    if (Left) {
      r = static_cast<T>((d << count) | (s >> (kWidth - count)));
      cf = ((d >> (kWidth - count)) & 1) != 0;
    } else {
      r = static_cast<T>((d >> count) | (s << (kWidth - count)));
      cf = ((d >> (count - 1)) & 1) != 0;
    }
  }
  if constexpr (Mem) {
    cpu.write<T>(insn.mem.segment, ea, r);
  } else {
    put_reg<T>(cpu, insn.operands[0].reg, r);
  }
  const bool of = msb(r) != msb(d);
  cpu.lazy.set_materialized(szp_bits<T>(r) | (cf ? flag::kCF : 0) | (of ? flag::kOF : 0));
}

template <bool Left>
Handler bind_shxd(const Insn& insn) {
  if (has_lock(insn) || insn.operand_count < 2 || insn.operands[1].kind != OperandKind::kReg) {
    return nullptr;
  }
  const Operand& o = insn.operands[0];
  if (o.kind == OperandKind::kMem) {
    HV_INT_BY_SIZE_WIDE(o.size, &shxd<T, true, Left>)
  }
  if (o.kind == OperandKind::kReg) {
    HV_INT_BY_SIZE_WIDE(o.size, &shxd<T, false, Left>)
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// BT BTS BTR BTC
// ---------------------------------------------------------------------------------------------

enum class Bt : uint8_t { kTest, kSet, kReset, kComplement };

template <Bt Op, typename T>
inline T bt_apply(T v, T mask) {
  switch (Op) {
    case Bt::kTest:
      return v;
    case Bt::kSet:
      return static_cast<T>(v | mask);
    case Bt::kReset:
      return static_cast<T>(v & ~mask);
    case Bt::kComplement:
      return static_cast<T>(v ^ mask);
  }
  return v;
}

// CF = the bit; OF/SF/AF/PF (undefined) and ZF are left unchanged.
inline void bt_flags(Cpu& cpu, bool bit) {
  update_flags(cpu, flag::kCF, bit ? flag::kCF : 0);
}

// Register destination, or memory destination with an immediate bit offset (taken modulo the
// operand width).
template <Bt Op, typename T, bool Mem, bool Imm, bool Lock>
void bt_op(Cpu& cpu, const Insn& insn) {
  constexpr unsigned kWidth = sizeof(T) * 8;
  const unsigned bit = static_cast<unsigned>(
      (Imm ? insn.immediate : get_reg<T>(cpu, insn.operands[1].reg)) & (kWidth - 1));
  const T mask = static_cast<T>(T{1} << bit);
  T old;
  if constexpr (!Mem) {
    old = get_reg<T>(cpu, insn.operands[0].reg);
    if constexpr (Op != Bt::kTest) {
      put_reg<T>(cpu, insn.operands[0].reg, bt_apply<Op, T>(old, mask));
    }
  } else {
    uint64_t ea = cpu.effective_address(insn);
    if constexpr (!Imm) {
      // Register bit offset: signed, addresses memory beyond the operand.
      const int64_t offset = static_cast<Signed<T>>(get_reg<T>(cpu, insn.operands[1].reg));
      const int64_t unit = offset >> (sizeof(T) == 2 ? 4 : sizeof(T) == 4 ? 5 : 6);
      ea = Cpu::truncate_address(ea + static_cast<uint64_t>(unit) * sizeof(T), insn.address_size);
    }
    if constexpr (Op == Bt::kTest) {
      old = cpu.read<T>(insn.mem.segment, ea);
    } else if constexpr (Lock) {
      old = locked_rmw<T>(cpu, insn.mem.segment, ea,
                          [mask](T v) { return bt_apply<Op, T>(v, mask); });
    } else {
      old = cpu.read<T>(insn.mem.segment, ea);
      cpu.write<T>(insn.mem.segment, ea, bt_apply<Op, T>(old, mask));
    }
  }
  bt_flags(cpu, (old & mask) != 0);
}

template <Bt Op>
Handler bind_bt(const Insn& insn) {
  if (insn.operand_count < 2) {
    return nullptr;
  }
  const Operand& o = insn.operands[0];
  const bool imm = insn.operands[1].kind == OperandKind::kImm;
  const bool lock = has_lock(insn);
  if (lock && (Op == Bt::kTest || o.kind != OperandKind::kMem)) {
    return nullptr;
  }
  if (o.kind == OperandKind::kReg) {
    if (imm) {
      HV_INT_BY_SIZE_WIDE(o.size, &bt_op<Op, T, false, true, false>)
    }
    HV_INT_BY_SIZE_WIDE(o.size, &bt_op<Op, T, false, false, false>)
  }
  if (o.kind != OperandKind::kMem) {
    return nullptr;
  }
  if (lock) {
    if (imm) {
      HV_INT_BY_SIZE_WIDE(o.size, &bt_op<Op, T, true, true, true>)
    }
    HV_INT_BY_SIZE_WIDE(o.size, &bt_op<Op, T, true, false, true>)
  }
  if (imm) {
    HV_INT_BY_SIZE_WIDE(o.size, &bt_op<Op, T, true, true, false>)
  }
  HV_INT_BY_SIZE_WIDE(o.size, &bt_op<Op, T, true, false, false>)
}

// ---------------------------------------------------------------------------------------------
// BSF BSR TZCNT LZCNT POPCNT
// ---------------------------------------------------------------------------------------------

// BSF/BSR: source 0 sets ZF and leaves the destination unchanged (what Intel and AMD hardware
// do); otherwise ZF = 0. CF/OF/SF/AF/PF (undefined) are left unchanged.
template <typename T, bool Mem, bool Reverse>
void bit_scan(Cpu& cpu, const Insn& insn) {
  const T s = read_rm<T, Mem>(cpu, insn, 1);
  if (s == 0) {
    update_flags(cpu, flag::kZF, flag::kZF);
    return;
  }
  const unsigned idx = Reverse ? sizeof(T) * 8 - 1 - static_cast<unsigned>(std::countl_zero(s))
                               : static_cast<unsigned>(std::countr_zero(s));
  put_reg<T>(cpu, insn.operands[0].reg, static_cast<T>(idx));
  update_flags(cpu, flag::kZF, 0);
}

// TZCNT/LZCNT: CF = (source == 0), ZF = (result == 0); OF/SF/AF/PF left unchanged (undefined).
template <typename T, bool Mem, bool Leading>
void bit_count(Cpu& cpu, const Insn& insn) {
  const T s = read_rm<T, Mem>(cpu, insn, 1);
  const T r = static_cast<T>(Leading ? std::countl_zero(s) : std::countr_zero(s));
  put_reg<T>(cpu, insn.operands[0].reg, r);
  update_flags(cpu, flag::kCF | flag::kZF, (s == 0 ? flag::kCF : 0) | (r == 0 ? flag::kZF : 0));
}

// POPCNT: ZF = (source == 0), the other five flags cleared.
template <typename T, bool Mem>
void popcnt(Cpu& cpu, const Insn& insn) {
  const T s = read_rm<T, Mem>(cpu, insn, 1);
  put_reg<T>(cpu, insn.operands[0].reg, static_cast<T>(std::popcount(s)));
  cpu.lazy.set_materialized(s == 0 ? flag::kZF : 0);
}

#define HV_INT_REG_RM(insn, ...)                                    \
  do {                                                              \
    if (has_lock(insn) || (insn).operand_count < 2 ||               \
        (insn).operands[0].kind != OperandKind::kReg) {             \
      return nullptr;                                               \
    }                                                               \
    const bool mem_ = (insn).operands[1].kind == OperandKind::kMem; \
    if (mem_) {                                                     \
      constexpr bool M = true;                                      \
      HV_INT_BY_SIZE_WIDE((insn).operands[0].size, __VA_ARGS__)     \
    }                                                               \
    constexpr bool M = false;                                       \
    HV_INT_BY_SIZE_WIDE((insn).operands[0].size, __VA_ARGS__)       \
  } while (0)

Handler bind_bsf(const Insn& insn) {
  HV_INT_REG_RM(insn, &bit_scan<T, M, false>);
}
Handler bind_bsr(const Insn& insn) {
  HV_INT_REG_RM(insn, &bit_scan<T, M, true>);
}
Handler bind_tzcnt(const Insn& insn) {
  HV_INT_REG_RM(insn, &bit_count<T, M, false>);
}
Handler bind_lzcnt(const Insn& insn) {
  HV_INT_REG_RM(insn, &bit_count<T, M, true>);
}
Handler bind_popcnt(const Insn& insn) {
  HV_INT_REG_RM(insn, &popcnt<T, M>);
}

// ---------------------------------------------------------------------------------------------
// BSWAP
// ---------------------------------------------------------------------------------------------

template <typename T>
void bswap(Cpu& cpu, const Insn& insn) {
  const uint8_t r = insn.operands[0].reg;
  if constexpr (sizeof(T) == 2) {
    put_reg<uint16_t>(cpu, r, 0);  // undefined by the ISA; hardware gives 0
  } else {
    put_reg<T>(cpu, r, std::byteswap(get_reg<T>(cpu, r)));
  }
}

Handler bind_bswap(const Insn& insn) {
  if (has_lock(insn) || insn.operands[0].kind != OperandKind::kReg) {
    return nullptr;
  }
  HV_INT_BY_SIZE_WIDE(insn.operands[0].size, &bswap<T>)
}

// ---------------------------------------------------------------------------------------------
// XADD CMPXCHG CMPXCHG8B CMPXCHG16B
// ---------------------------------------------------------------------------------------------

template <typename T, bool Mem, bool Lock>
void xadd(Cpu& cpu, const Insn& insn) {
  const uint8_t src_reg = insn.operands[1].reg;
  const T s = get_reg<T>(cpu, src_reg);
  T d;
  if constexpr (Mem) {
    const uint64_t ea = cpu.effective_address(insn);
    if constexpr (Lock) {
      d = locked_rmw<T>(cpu, insn.mem.segment, ea, [s](T old) { return static_cast<T>(old + s); });
    } else {
      d = cpu.read<T>(insn.mem.segment, ea);
      cpu.write<T>(insn.mem.segment, ea, static_cast<T>(d + s));
    }
    put_reg<T>(cpu, src_reg, d);
  } else {
    d = get_reg<T>(cpu, insn.operands[0].reg);
    put_reg<T>(cpu, src_reg, d);
    put_reg<T>(cpu, insn.operands[0].reg, static_cast<T>(d + s));
  }
  cpu.lazy.set(FlagOp::kAdd, sizeof(T), d, s, static_cast<T>(d + s));
}

// CMPXCHG r/m, reg: flags as CMP accumulator, destination. Equal: destination = source.
// Not equal: accumulator = destination (a memory destination is written back unchanged, as the
// ISA says; a register destination is left alone).
template <typename T, bool Mem, bool Lock>
void cmpxchg(Cpu& cpu, const Insn& insn) {
  const T acc = get_reg<T>(cpu, 0);
  const T s = get_reg<T>(cpu, insn.operands[1].reg);
  T d;
  if constexpr (Mem) {
    const uint64_t ea = cpu.effective_address(insn);
    uint8_t* p = Lock ? cpu.host_pointer_for_rmw(insn.mem.segment, ea, sizeof(T)) : nullptr;
    if (p != nullptr) {
      d = acc;
      __atomic_compare_exchange_n(reinterpret_cast<T*>(p), &d, s, false, __ATOMIC_SEQ_CST,
                                  __ATOMIC_SEQ_CST);
    } else {
      d = cpu.read<T>(insn.mem.segment, ea);
      cpu.write<T>(insn.mem.segment, ea, d == acc ? s : d);
    }
  } else {
    d = get_reg<T>(cpu, insn.operands[0].reg);
    if (d == acc) {
      put_reg<T>(cpu, insn.operands[0].reg, s);
    }
  }
  if (d != acc) {
    put_reg<T>(cpu, 0, d);
  }
  cpu.lazy.set(FlagOp::kSub, sizeof(T), acc, d, static_cast<T>(acc - d));
}

Handler bind_xadd_like(const Insn& insn, bool is_xadd) {
  if (insn.operand_count < 2 || insn.operands[1].kind != OperandKind::kReg) {
    return nullptr;
  }
  const Operand& o = insn.operands[0];
  const bool lock = has_lock(insn);
  if (o.kind == OperandKind::kReg) {
    if (lock) {
      return nullptr;
    }
    if (is_xadd) {
      HV_INT_BY_SIZE(o.size, &xadd<T, false, false>)
    }
    HV_INT_BY_SIZE(o.size, &cmpxchg<T, false, false>)
  }
  if (o.kind != OperandKind::kMem) {
    return nullptr;
  }
  if (is_xadd) {
    if (lock) {
      HV_INT_BY_SIZE(o.size, &xadd<T, true, true>)
    }
    HV_INT_BY_SIZE(o.size, &xadd<T, true, false>)
  }
  if (lock) {
    HV_INT_BY_SIZE(o.size, &cmpxchg<T, true, true>)
  }
  HV_INT_BY_SIZE(o.size, &cmpxchg<T, true, false>)
}

Handler bind_xadd(const Insn& insn) {
  return bind_xadd_like(insn, true);
}
Handler bind_cmpxchg(const Insn& insn) {
  return bind_xadd_like(insn, false);
}

// CMPXCHG8B m64: EDX:EAX vs m64; equal: m64 = ECX:EBX, ZF = 1; else EDX:EAX = m64, ZF = 0.
// Other flags unchanged. The memory operand is always written (back) as the ISA says.
template <bool Lock>
void cmpxchg8b(Cpu& cpu, const Insn& insn) {
  const uint64_t ea = cpu.effective_address(insn);
  const uint64_t expected = (cpu.gpr[2] & 0xffffffff) << 32 | (cpu.gpr[0] & 0xffffffff);
  const uint64_t desired = (cpu.gpr[1] & 0xffffffff) << 32 | (cpu.gpr[3] & 0xffffffff);
  uint64_t old;
  uint8_t* p = Lock ? cpu.host_pointer_for_rmw(insn.mem.segment, ea, 8) : nullptr;
  if (p != nullptr) {
    old = expected;
    __atomic_compare_exchange_n(reinterpret_cast<uint64_t*>(p), &old, desired, false,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  } else {
    old = cpu.read<uint64_t>(insn.mem.segment, ea);
    cpu.write<uint64_t>(insn.mem.segment, ea, old == expected ? desired : old);
  }
  const bool equal = old == expected;
  if (!equal) {
    cpu.set_reg(0, 4, old);
    cpu.set_reg(2, 4, old >> 32);
  }
  update_flags(cpu, flag::kZF, equal ? flag::kZF : 0);
}

inline bool host_cmpxchg16b(uint8_t* p, uint64_t& lo, uint64_t& hi, uint64_t new_lo,
                            uint64_t new_hi) {
  bool ok;
  asm volatile("lock cmpxchg16b %1"
               : "=@ccz"(ok), "+m"(*reinterpret_cast<u128*>(p)), "+a"(lo), "+d"(hi)
               : "b"(new_lo), "c"(new_hi)
               : "memory");
  return ok;
}

// CMPXCHG16B m128: as CMPXCHG8B with RDX:RAX / RCX:RBX; #GP(0) unless 16-byte aligned.
template <bool Lock>
void cmpxchg16b(Cpu& cpu, const Insn& insn) {
  const uint64_t ea = cpu.effective_address(insn);
  const uint64_t la = cpu.linear_address(insn.mem.segment, ea, 16, Access::kWrite);
  if ((la & 15) != 0) {
    raise_fault(kGeneralProtection, 0);
  }
  uint64_t lo = cpu.gpr[0];
  uint64_t hi = cpu.gpr[2];
  bool equal;
  uint8_t* p = Lock ? cpu.host_pointer_for_rmw(insn.mem.segment, ea, 16) : nullptr;
  if (p != nullptr && (reinterpret_cast<uintptr_t>(p) & 15) == 0) {
    equal = host_cmpxchg16b(p, lo, hi, cpu.gpr[3], cpu.gpr[1]);
  } else {
    const uint64_t old_lo = cpu.read<uint64_t>(insn.mem.segment, ea);
    const uint64_t old_hi = cpu.read<uint64_t>(insn.mem.segment, ea + 8);
    equal = old_lo == lo && old_hi == hi;
    // Both halves are checked for writability before either is written.
    cpu.write<uint64_t>(insn.mem.segment, ea + 8, equal ? cpu.gpr[1] : old_hi);
    cpu.write<uint64_t>(insn.mem.segment, ea, equal ? cpu.gpr[3] : old_lo);
    lo = old_lo;
    hi = old_hi;
  }
  if (!equal) {
    cpu.gpr[0] = lo;
    cpu.gpr[2] = hi;
  }
  update_flags(cpu, flag::kZF, equal ? flag::kZF : 0);
}

Handler bind_cmpxchg8b(const Insn& insn) {
  if (insn.operands[0].kind != OperandKind::kMem) {
    return nullptr;
  }
  return has_lock(insn) ? &cmpxchg8b<true> : &cmpxchg8b<false>;
}

Handler bind_cmpxchg16b(const Insn& insn) {
  if (insn.operands[0].kind != OperandKind::kMem) {
    return nullptr;
  }
  return has_lock(insn) ? &cmpxchg16b<true> : &cmpxchg16b<false>;
}

// ---------------------------------------------------------------------------------------------
// Flag instructions: LAHF SAHF CLC STC CMC CLD STD
// ---------------------------------------------------------------------------------------------

void lahf(Cpu& cpu, const Insn&) {
  const uint64_t f =
      cpu.lazy.arithmetic_bits() & (flag::kSF | flag::kZF | flag::kAF | flag::kPF | flag::kCF);
  cpu.set_reg(kHighByteBase + 0, 1, f | flag::kFixedOne);
}

void sahf(Cpu& cpu, const Insn&) {
  constexpr uint64_t kMask = flag::kSF | flag::kZF | flag::kAF | flag::kPF | flag::kCF;
  update_flags(cpu, kMask, cpu.reg(kHighByteBase + 0, 1));
}

void clc(Cpu& cpu, const Insn&) {
  update_flags(cpu, flag::kCF, 0);
}
void stc(Cpu& cpu, const Insn&) {
  update_flags(cpu, flag::kCF, flag::kCF);
}
void cmc(Cpu& cpu, const Insn&) {
  update_flags(cpu, flag::kCF, cpu.lazy.cf() ? 0 : flag::kCF);
}
void cld(Cpu& cpu, const Insn&) {
  cpu.rflags &= ~flag::kDF;
}
void std_(Cpu& cpu, const Insn&) {
  cpu.rflags |= flag::kDF;
}

template <Handler H>
Handler bind_fixed(const Insn& insn) {
  return has_lock(insn) ? nullptr : H;
}

// ---------------------------------------------------------------------------------------------
// BCD: DAA DAS AAA AAS AAM AAD (not in 64-bit mode; the decoder rejects them there)
// ---------------------------------------------------------------------------------------------

// DAA/DAS per the SDM pseudocode; OF (undefined) is cleared.
template <bool Subtract>
void daa_das(Cpu& cpu, const Insn&) {
  const uint8_t old_al = static_cast<uint8_t>(cpu.gpr[0]);
  const bool old_cf = cpu.lazy.cf();
  uint8_t al = old_al;
  bool cf = false;
  bool af = false;
  if ((al & 0xf) > 9 || cpu.lazy.af()) {
    if (Subtract) {
      cf = old_cf || al < 6;
      al = static_cast<uint8_t>(al - 6);
    } else {
      cf = old_cf || al > 0xf9;
      al = static_cast<uint8_t>(al + 6);
    }
    af = true;
  }
  if (old_al > 0x99 || old_cf) {
    al = static_cast<uint8_t>(Subtract ? al - 0x60 : al + 0x60);
    cf = true;
  }
  cpu.set_reg(0, 1, al);
  cpu.lazy.set_materialized(szp_bits<uint8_t>(al) | (cf ? flag::kCF : 0) | (af ? flag::kAF : 0));
}

// AAA/AAS: AF = CF = adjust; OF/SF/ZF/PF (undefined) from the resulting AL, OF = 0.
template <bool Subtract>
void aaa_aas(Cpu& cpu, const Insn&) {
  uint16_t ax = static_cast<uint16_t>(cpu.gpr[0]);
  const bool adjust = (ax & 0xf) > 9 || cpu.lazy.af();
  if (adjust) {
    if (Subtract) {
      ax = static_cast<uint16_t>(ax - 6);
      ax = static_cast<uint16_t>(ax - 0x100);
    } else {
      ax = static_cast<uint16_t>(ax + 0x106);
    }
  }
  ax &= 0xff0f;
  cpu.set_reg(0, 2, ax);
  cpu.lazy.set_materialized(szp_bits<uint8_t>(static_cast<uint8_t>(ax)) |
                            (adjust ? (flag::kAF | flag::kCF) : 0));
}

// AAM imm8: AH = AL / imm8, AL = AL % imm8 (#DE for 0); SF/ZF/PF from AL; OF/AF/CF = 0.
void aam(Cpu& cpu, const Insn& insn) {
  const uint8_t base = static_cast<uint8_t>(insn.immediate);
  if (base == 0) {
    raise_fault(kDivideError);
  }
  const uint8_t al = static_cast<uint8_t>(cpu.gpr[0]);
  const uint8_t q = static_cast<uint8_t>(al / base);
  const uint8_t r = static_cast<uint8_t>(al % base);
  cpu.set_reg(0, 2, static_cast<uint16_t>(q << 8 | r));
  cpu.lazy.set_materialized(szp_bits<uint8_t>(r));
}

// AAD imm8: AL = AL + AH * imm8, AH = 0; SF/ZF/PF from AL; OF/AF/CF = 0.
void aad(Cpu& cpu, const Insn& insn) {
  const uint8_t base = static_cast<uint8_t>(insn.immediate);
  const uint8_t al = static_cast<uint8_t>(cpu.gpr[0]);
  const uint8_t ah = static_cast<uint8_t>(cpu.gpr[0] >> 8);
  const uint8_t r = static_cast<uint8_t>(al + ah * base);
  cpu.set_reg(0, 2, r);
  cpu.lazy.set_materialized(szp_bits<uint8_t>(r));
}

}  // namespace

void register_alu_ops(HandlerRegistry& registry) {
  registry.add(ZYDIS_MNEMONIC_ADD, &bind_alu<Alu::kAdd>);
  registry.add(ZYDIS_MNEMONIC_OR, &bind_alu<Alu::kOr>);
  registry.add(ZYDIS_MNEMONIC_ADC, &bind_alu<Alu::kAdc>);
  registry.add(ZYDIS_MNEMONIC_SBB, &bind_alu<Alu::kSbb>);
  registry.add(ZYDIS_MNEMONIC_AND, &bind_alu<Alu::kAnd>);
  registry.add(ZYDIS_MNEMONIC_SUB, &bind_alu<Alu::kSub>);
  registry.add(ZYDIS_MNEMONIC_XOR, &bind_alu<Alu::kXor>);
  registry.add(ZYDIS_MNEMONIC_CMP, &bind_alu<Alu::kCmp>);
  registry.add(ZYDIS_MNEMONIC_TEST, &bind_test);

  registry.add(ZYDIS_MNEMONIC_INC, &bind_unary<Unary::kInc>);
  registry.add(ZYDIS_MNEMONIC_DEC, &bind_unary<Unary::kDec>);
  registry.add(ZYDIS_MNEMONIC_NOT, &bind_unary<Unary::kNot>);
  registry.add(ZYDIS_MNEMONIC_NEG, &bind_unary<Unary::kNeg>);

  registry.add(ZYDIS_MNEMONIC_MUL, &no_lock<&bind_mul>);
  registry.add(ZYDIS_MNEMONIC_IMUL, &bind_imul);
  registry.add(ZYDIS_MNEMONIC_DIV, &no_lock<&bind_div>);
  registry.add(ZYDIS_MNEMONIC_IDIV, &no_lock<&bind_idiv>);

  registry.add(ZYDIS_MNEMONIC_CBW, &no_lock<&bind_cbw>);
  registry.add(ZYDIS_MNEMONIC_CWDE, &no_lock<&bind_cwde>);
  registry.add(ZYDIS_MNEMONIC_CDQE, &no_lock<&bind_cdqe>);
  registry.add(ZYDIS_MNEMONIC_CWD, &no_lock<&bind_cwd>);
  registry.add(ZYDIS_MNEMONIC_CDQ, &no_lock<&bind_cdq>);
  registry.add(ZYDIS_MNEMONIC_CQO, &no_lock<&bind_cqo>);

  registry.add(ZYDIS_MNEMONIC_SHL, &bind_shift<Sh::kShl>);
  registry.add(ZYDIS_MNEMONIC_SHR, &bind_shift<Sh::kShr>);
  registry.add(ZYDIS_MNEMONIC_SAR, &bind_shift<Sh::kSar>);
  registry.add(ZYDIS_MNEMONIC_ROL, &bind_shift<Sh::kRol>);
  registry.add(ZYDIS_MNEMONIC_ROR, &bind_shift<Sh::kRor>);
  registry.add(ZYDIS_MNEMONIC_RCL, &bind_shift<Sh::kRcl>);
  registry.add(ZYDIS_MNEMONIC_RCR, &bind_shift<Sh::kRcr>);
  registry.add(ZYDIS_MNEMONIC_SHLD, &bind_shxd<true>);
  registry.add(ZYDIS_MNEMONIC_SHRD, &bind_shxd<false>);

  registry.add(ZYDIS_MNEMONIC_BT, &bind_bt<Bt::kTest>);
  registry.add(ZYDIS_MNEMONIC_BTS, &bind_bt<Bt::kSet>);
  registry.add(ZYDIS_MNEMONIC_BTR, &bind_bt<Bt::kReset>);
  registry.add(ZYDIS_MNEMONIC_BTC, &bind_bt<Bt::kComplement>);
  registry.add(ZYDIS_MNEMONIC_BSF, &bind_bsf);
  registry.add(ZYDIS_MNEMONIC_BSR, &bind_bsr);
  registry.add(ZYDIS_MNEMONIC_TZCNT, &bind_tzcnt);
  registry.add(ZYDIS_MNEMONIC_LZCNT, &bind_lzcnt);
  registry.add(ZYDIS_MNEMONIC_POPCNT, &bind_popcnt);
  registry.add(ZYDIS_MNEMONIC_BSWAP, &bind_bswap);

  registry.add(ZYDIS_MNEMONIC_XADD, &bind_xadd);
  registry.add(ZYDIS_MNEMONIC_CMPXCHG, &bind_cmpxchg);
  registry.add(ZYDIS_MNEMONIC_CMPXCHG8B, &bind_cmpxchg8b);
  registry.add(ZYDIS_MNEMONIC_CMPXCHG16B, &bind_cmpxchg16b);

  registry.add(ZYDIS_MNEMONIC_LAHF, &bind_fixed<&lahf>);
  registry.add(ZYDIS_MNEMONIC_SAHF, &bind_fixed<&sahf>);
  registry.add(ZYDIS_MNEMONIC_CLC, &bind_fixed<&clc>);
  registry.add(ZYDIS_MNEMONIC_STC, &bind_fixed<&stc>);
  registry.add(ZYDIS_MNEMONIC_CMC, &bind_fixed<&cmc>);
  registry.add(ZYDIS_MNEMONIC_CLD, &bind_fixed<&cld>);
  registry.add(ZYDIS_MNEMONIC_STD, &bind_fixed<&std_>);

  registry.add(ZYDIS_MNEMONIC_DAA, &bind_fixed<&daa_das<false>>);
  registry.add(ZYDIS_MNEMONIC_DAS, &bind_fixed<&daa_das<true>>);
  registry.add(ZYDIS_MNEMONIC_AAA, &bind_fixed<&aaa_aas<false>>);
  registry.add(ZYDIS_MNEMONIC_AAS, &bind_fixed<&aaa_aas<true>>);
  registry.add(ZYDIS_MNEMONIC_AAM, &bind_fixed<&aam>);
  registry.add(ZYDIS_MNEMONIC_AAD, &bind_fixed<&aad>);
}

}  // namespace hv::emu::integer
