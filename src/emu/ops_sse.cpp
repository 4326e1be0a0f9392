// SSE and SSE2 instructions (XMM registers, MXCSR). Floating-point operations run on the host's
// own SSE unit with the guest's MXCSR loaded (all exceptions masked), so rounding modes, DAZ/FTZ,
// NaN propagation and the sticky exception flags are bit-exact with hardware; an exception the
// guest left unmasked then raises #XM (or #UD without CR4.OSXMMEXCPT) before any register is
// written. Integer operations use the host's SSE2 intrinsics for the same reason.
//
// Limitations: MMX forms (mm registers) decode to #UD; on an unmasked exception the flags
// reported are those of the whole masked operation (hardware reports only the pre-computation
// ones when IE/DE/ZE are unmasked); MASKMOVDQU writes byte by byte, so a page fault in its
// middle leaves the earlier bytes written (they are rewritten on restart).
#include <emmintrin.h>

#include <cstring>

#include "emu/operands.hpp"
#include "emu/ops_fpu_sse.hpp"

namespace hv::emu::fpu {
namespace {

constexpr uint32_t kMxcsrFlags = 0x3f;
constexpr uint32_t kMxcsrMask = 0xffff;  // writable MXCSR bits (DAZ supported)

bool is_xmm(const Insn& insn, int i) {
  return insn.operands[i].kind == OperandKind::kXmm;
}
bool is_mem(const Insn& insn, int i) {
  return insn.operands[i].kind == OperandKind::kMem;
}
bool is_gpr(const Insn& insn, int i) {
  return insn.operands[i].kind == OperandKind::kReg;
}
bool is_imm(const Insn& insn, int i) {
  return insn.operands[i].kind == OperandKind::kImm;
}
bool xmm_or_mem(const Insn& insn, int i) {
  return is_xmm(insn, i) || is_mem(insn, i);
}

__m128i xget(const Cpu& cpu, uint8_t r) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(cpu.fpu.xmm[r].data()));
}
void xset(Cpu& cpu, uint8_t r, __m128i v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(cpu.fpu.xmm[r].data()), v);
}
U128 to_u128(__m128i v) {
  U128 u;
  std::memcpy(&u, &v, sizeof(u));
  return u;
}
__m128i from_u128(U128 u) {
  __m128i v;
  std::memcpy(&v, &u, sizeof(v));
  return v;
}

// Operand i as a vector: an XMM register, or memory of the operand's size loaded into the low
// lanes (scalar and 64-bit forms have no alignment requirement; 16-byte ones do unless the
// instruction is one of the unaligned moves).
__m128i source(Cpu& cpu, const Insn& insn, int i, bool aligned = true) {
  const Operand& op = insn.operands[i];
  if (op.kind == OperandKind::kXmm) {
    return xget(cpu, op.reg);
  }
  const uint64_t ea = cpu.effective_address(insn);
  switch (op.size) {
    case 16:
      return from_u128(read_m128(cpu, insn, aligned));
    case 8:
      return _mm_cvtsi64_si128(static_cast<long long>(cpu.read<uint64_t>(insn.mem.segment, ea)));
    case 4:
      return _mm_cvtsi32_si128(static_cast<int>(cpu.read<uint32_t>(insn.mem.segment, ea)));
    default:
      return _mm_cvtsi32_si128(cpu.read<uint16_t>(insn.mem.segment, ea));
  }
}

// Keeps the compiler from moving floating-point work across the MXCSR switch: the value must
// be (re)computed between the two barriers.
template <typename T>
[[gnu::always_inline]] inline void barrier(T& v) {
  if constexpr (sizeof(T) == 16) {
    asm volatile("" : "+x"(v));
  } else {
    asm volatile("" : "+r"(v));
  }
}

// Folds the host's exception flags into the guest MXCSR and faults for unmasked ones.
void fold_flags(Cpu& cpu, uint32_t flags) {
  cpu.fpu.mxcsr |= flags;
  if (flags & ~(cpu.fpu.mxcsr >> 7) & kMxcsrFlags) [[unlikely]] {
    raise_fault((cpu.cr4 & cr4::kOSXMMEXCPT) ? kSimdError : kInvalidOpcode);
  }
}

// Runs f(a, b) on the host SSE unit under the guest's rounding/DAZ/FTZ with every exception
// masked, then folds the exception flags.
template <typename R, typename A, typename B, typename F>
R simd_fp(Cpu& cpu, A a, B b, F f) {
  const uint32_t host = _mm_getcsr();
  _mm_setcsr((cpu.fpu.mxcsr & 0xffc0) | 0x1f80);
  barrier(a);
  barrier(b);
  R r = f(a, b);
  barrier(r);
  const uint32_t flags = _mm_getcsr() & kMxcsrFlags;
  _mm_setcsr(host);
  fold_flags(cpu, flags);
  return r;
}

using VecOp = __m128i (*)(__m128i, __m128i);

// dst = F(dst, src) for every two-operand packed or scalar form (src: xmm or memory).
template <VecOp F, bool kFloat>
void packed_op(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const __m128i b = source(cpu, insn, 1);
  const __m128i a = xget(cpu, insn.operands[0].reg);
  __m128i r;
  if constexpr (kFloat) {
    r = simd_fp<__m128i>(cpu, a, b, F);
  } else {
    r = F(a, b);
  }
  xset(cpu, insn.operands[0].reg, r);
}
template <VecOp F, bool kFloat>
Handler bind_packed(const Insn& insn) {
  return insn.operand_count == 2 && is_xmm(insn, 0) && xmm_or_mem(insn, 1) ? packed_op<F, kFloat>
                                                                           : nullptr;
}

template <Handler H>
Handler bind_packed_form(const Insn& insn) {
  return insn.operand_count == 2 && is_xmm(insn, 0) && xmm_or_mem(insn, 1) ? H : nullptr;
}

__m128 ps(__m128i v) {
  return _mm_castsi128_ps(v);
}
__m128d pd(__m128i v) {
  return _mm_castsi128_pd(v);
}
__m128i vi(__m128 v) {
  return _mm_castps_si128(v);
}
__m128i vi(__m128d v) {
  return _mm_castpd_si128(v);
}

// ---- moves ----

template <bool kAligned>
void mov_load(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  xset(cpu, insn.operands[0].reg, source(cpu, insn, 1, kAligned));
}
template <bool kAligned>
void mov_store(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  write_m128(cpu, insn, to_u128(xget(cpu, insn.operands[1].reg)), kAligned);
}
template <bool kAligned>
Handler bind_mov128(const Insn& insn) {
  if (is_xmm(insn, 0) && xmm_or_mem(insn, 1)) {
    return mov_load<kAligned>;
  }
  if (is_mem(insn, 0) && is_xmm(insn, 1)) {
    return mov_store<kAligned>;
  }
  return nullptr;
}
Handler bind_movnt(const Insn& insn) {
  return is_mem(insn, 0) && is_xmm(insn, 1) ? mov_store<true> : nullptr;
}

// MOVSS/MOVSD: register to register merges the low lane; a load zeroes the upper lanes.
template <int kBytes>
void movs_load(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const __m128i v = source(cpu, insn, 1);
  if (is_xmm(insn, 1)) {
    __m128i d = xget(cpu, insn.operands[0].reg);
    std::memcpy(&d, &v, kBytes);
    xset(cpu, insn.operands[0].reg, d);
  } else {
    xset(cpu, insn.operands[0].reg, v);
  }
}
template <int kBytes>
void movs_store(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const auto& x = cpu.fpu.xmm[insn.operands[1].reg];
  const uint64_t ea = cpu.effective_address(insn);
  if constexpr (kBytes == 4) {
    cpu.write<uint32_t>(insn.mem.segment, ea, static_cast<uint32_t>(x[0]));
  } else {
    cpu.write<uint64_t>(insn.mem.segment, ea, x[0]);
  }
}
template <int kBytes>
Handler bind_movs(const Insn& insn) {
  if (is_xmm(insn, 0) && xmm_or_mem(insn, 1)) {
    return movs_load<kBytes>;
  }
  if (is_mem(insn, 0) && is_xmm(insn, 1)) {
    return movs_store<kBytes>;
  }
  return nullptr;
}

// MOVLPS/MOVLPD (kHalf 0) and MOVHPS/MOVHPD (kHalf 1): one 64-bit half to or from memory.
template <int kHalf>
void movhalf_load(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const uint64_t v = cpu.read<uint64_t>(insn.mem.segment, cpu.effective_address(insn));
  cpu.fpu.xmm[insn.operands[0].reg][kHalf] = v;
}
template <int kHalf>
void movhalf_store(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  cpu.write<uint64_t>(insn.mem.segment, cpu.effective_address(insn),
                      cpu.fpu.xmm[insn.operands[1].reg][kHalf]);
}
template <int kHalf>
Handler bind_movhalf(const Insn& insn) {
  if (is_xmm(insn, 0) && is_mem(insn, 1)) {
    return movhalf_load<kHalf>;
  }
  if (is_mem(insn, 0) && is_xmm(insn, 1)) {
    return movhalf_store<kHalf>;
  }
  return nullptr;
}
// MOVHLPS (dst.lo = src.hi) and MOVLHPS (dst.hi = src.lo).
template <int kDst, int kSrc>
void movhl(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  cpu.fpu.xmm[insn.operands[0].reg][kDst] = cpu.fpu.xmm[insn.operands[1].reg][kSrc];
}
template <int kDst, int kSrc>
Handler bind_movhl(const Insn& insn) {
  return is_xmm(insn, 0) && is_xmm(insn, 1) ? movhl<kDst, kSrc> : nullptr;
}

// MOVD/MOVQ: into an XMM register zero-extended (from a GPR, memory or the low quadword of an
// XMM register); out of one into a GPR or memory of the destination's size.
void movdq_in(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const uint64_t v = is_xmm(insn, 1)
                         ? cpu.fpu.xmm[insn.operands[1].reg][0]
                         : read_operand(cpu, insn, 1) & size_mask(insn.operands[1].size);
  cpu.fpu.xmm[insn.operands[0].reg] = {v, 0};
}
void movdq_out(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const uint64_t v = cpu.fpu.xmm[insn.operands[1].reg][0];
  write_operand(cpu, insn, 0, v & size_mask(insn.operands[0].size));
}
Handler bind_movdq(const Insn& insn) {
  if (is_xmm(insn, 0) && (is_xmm(insn, 1) || is_mem(insn, 1) || is_gpr(insn, 1))) {
    return movdq_in;
  }
  if ((is_gpr(insn, 0) || is_mem(insn, 0)) && is_xmm(insn, 1)) {
    return movdq_out;
  }
  return nullptr;
}

template <int (*F)(__m128i)>
void movmsk(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  cpu.set_reg(insn.operands[0].reg, insn.operands[0].size,
              static_cast<uint32_t>(F(xget(cpu, insn.operands[1].reg))));
}
template <int (*F)(__m128i)>
Handler bind_movmsk(const Insn& insn) {
  return is_gpr(insn, 0) && is_xmm(insn, 1) ? movmsk<F> : nullptr;
}
int msk_ps(__m128i v) {
  return _mm_movemask_ps(ps(v));
}
int msk_pd(__m128i v) {
  return _mm_movemask_pd(pd(v));
}
int msk_b(__m128i v) {
  return _mm_movemask_epi8(v);
}

void movnti(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  write_operand(cpu, insn, 0, cpu.reg(insn.operands[1].reg, insn.operands[1].size));
}
Handler bind_movnti(const Insn& insn) {
  return is_mem(insn, 0) && is_gpr(insn, 1) ? movnti : nullptr;
}

// MASKMOVDQU: bytes of src selected by the mask's top bits go to DS:rDI (segment overridable).
void maskmovdqu(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const auto& data = cpu.fpu.xmm[insn.operands[0].reg];
  const auto& mask = cpu.fpu.xmm[insn.operands[1].reg];
  const uint64_t base = Cpu::truncate_address(cpu.gpr[7], insn.address_size);
  for (int i = 0; i < 16; ++i) {
    if ((mask[i / 8] >> ((i % 8) * 8 + 7)) & 1) {
      cpu.write<uint8_t>(insn.mem.segment, Cpu::truncate_address(base + i, insn.address_size),
                         static_cast<uint8_t>(data[i / 8] >> ((i % 8) * 8)));
    }
  }
}
Handler bind_maskmovdqu(const Insn& insn) {
  return is_xmm(insn, 0) && is_xmm(insn, 1) ? maskmovdqu : nullptr;
}

// ---- MXCSR ----

void ldmxcsr(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const uint32_t v = cpu.read<uint32_t>(insn.mem.segment, cpu.effective_address(insn));
  if (v & ~kMxcsrMask) {
    raise_fault(kGeneralProtection, 0);
  }
  cpu.fpu.mxcsr = v;
}
void stmxcsr(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  cpu.write<uint32_t>(insn.mem.segment, cpu.effective_address(insn), cpu.fpu.mxcsr);
}
template <Handler H>
Handler bind_mem_only(const Insn& insn) {
  return is_mem(insn, 0) ? H : nullptr;
}

// ---- shifts ----

// Shift by an immediate count: the same operation as by a register count.
template <VecOp F>
void shift_imm(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const uint8_t r = insn.operands[0].reg;
  xset(cpu, r, F(xget(cpu, r), _mm_cvtsi32_si128(static_cast<int>(insn.immediate & 0xff))));
}
template <VecOp F>
Handler bind_shift(const Insn& insn) {
  if (is_xmm(insn, 0) && is_imm(insn, 1)) {
    return shift_imm<F>;
  }
  return bind_packed<F, false>(insn);
}

// PSLLDQ / PSRLDQ: whole-register byte shifts (counts above 15 clear the register).
template <bool kLeft>
void byte_shift(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const uint8_t r = insn.operands[0].reg;
  uint8_t in[16], out[16] = {};
  std::memcpy(in, cpu.fpu.xmm[r].data(), 16);
  const unsigned n = insn.immediate & 0xff;
  for (unsigned i = 0; i < 16; ++i) {
    if (kLeft && i >= n) {
      out[i] = in[i - n];
    } else if (!kLeft && i + n < 16) {
      out[i] = in[i + n];
    }
  }
  std::memcpy(cpu.fpu.xmm[r].data(), out, 16);
}
template <bool kLeft>
Handler bind_byte_shift(const Insn& insn) {
  return is_xmm(insn, 0) && is_imm(insn, 1) ? byte_shift<kLeft> : nullptr;
}

// ---- shuffles and word insert/extract (immediate operand) ----

void pshufd(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  uint32_t s[4], d[4];
  const __m128i v = source(cpu, insn, 1);
  std::memcpy(s, &v, 16);
  for (int i = 0; i < 4; ++i) {
    d[i] = s[(insn.immediate >> (2 * i)) & 3];
  }
  std::memcpy(cpu.fpu.xmm[insn.operands[0].reg].data(), d, 16);
}
template <int kHalf>  // PSHUFLW (0) / PSHUFHW (1): shuffle words of one half, copy the other
void pshufw(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  uint16_t s[8], d[8];
  const __m128i v = source(cpu, insn, 1);
  std::memcpy(s, &v, 16);
  std::memcpy(d, s, 16);
  for (int i = 0; i < 4; ++i) {
    d[kHalf * 4 + i] = s[kHalf * 4 + ((insn.immediate >> (2 * i)) & 3)];
  }
  std::memcpy(cpu.fpu.xmm[insn.operands[0].reg].data(), d, 16);
}
void shufps(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  uint32_t a[4], b[4], d[4];
  const __m128i vb = source(cpu, insn, 1);
  std::memcpy(b, &vb, 16);
  std::memcpy(a, cpu.fpu.xmm[insn.operands[0].reg].data(), 16);
  const unsigned imm = insn.immediate & 0xff;
  d[0] = a[imm & 3];
  d[1] = a[(imm >> 2) & 3];
  d[2] = b[(imm >> 4) & 3];
  d[3] = b[(imm >> 6) & 3];
  std::memcpy(cpu.fpu.xmm[insn.operands[0].reg].data(), d, 16);
}
void shufpd(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const U128 b = to_u128(source(cpu, insn, 1));
  auto& a = cpu.fpu.xmm[insn.operands[0].reg];
  const uint64_t lo = a[insn.immediate & 1];
  const uint64_t hi = (insn.immediate & 2) ? b.hi : b.lo;
  a = {lo, hi};
}
template <Handler H>
Handler bind_xmm_imm3(const Insn& insn) {
  return insn.operand_count == 3 && is_xmm(insn, 0) && xmm_or_mem(insn, 1) && is_imm(insn, 2)
             ? H
             : nullptr;
}

void pextrw(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const auto& x = cpu.fpu.xmm[insn.operands[1].reg];
  const unsigned i = insn.immediate & 7;
  cpu.set_reg(insn.operands[0].reg, insn.operands[0].size, (x[i / 4] >> ((i % 4) * 16)) & 0xffff);
}
Handler bind_pextrw(const Insn& insn) {
  return is_gpr(insn, 0) && is_xmm(insn, 1) && is_imm(insn, 2) ? pextrw : nullptr;
}
void pinsrw(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const uint64_t w = read_operand(cpu, insn, 1) & 0xffff;
  auto& x = cpu.fpu.xmm[insn.operands[0].reg];
  const unsigned i = insn.immediate & 7;
  const int shift = (i % 4) * 16;
  x[i / 4] = (x[i / 4] & ~(0xffffull << shift)) | (w << shift);
}
Handler bind_pinsrw(const Insn& insn) {
  return is_xmm(insn, 0) && (is_gpr(insn, 1) || is_mem(insn, 1)) && is_imm(insn, 2) ? pinsrw
                                                                                    : nullptr;
}

// ---- floating-point compares ----

#define HV_PRED(fn) +[](__m128i a, __m128i b) { return vi(fn(ps(a), ps(b))); }
#define HV_PREDD(fn) +[](__m128i a, __m128i b) { return vi(fn(pd(a), pd(b))); }
// Predicates 0-7: EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD.
constexpr VecOp kCmpPs[8] = {HV_PRED(_mm_cmpeq_ps),  HV_PRED(_mm_cmplt_ps),
                             HV_PRED(_mm_cmple_ps),  HV_PRED(_mm_cmpunord_ps),
                             HV_PRED(_mm_cmpneq_ps), HV_PRED(_mm_cmpnlt_ps),
                             HV_PRED(_mm_cmpnle_ps), HV_PRED(_mm_cmpord_ps)};
constexpr VecOp kCmpSs[8] = {HV_PRED(_mm_cmpeq_ss),  HV_PRED(_mm_cmplt_ss),
                             HV_PRED(_mm_cmple_ss),  HV_PRED(_mm_cmpunord_ss),
                             HV_PRED(_mm_cmpneq_ss), HV_PRED(_mm_cmpnlt_ss),
                             HV_PRED(_mm_cmpnle_ss), HV_PRED(_mm_cmpord_ss)};
constexpr VecOp kCmpPd[8] = {HV_PREDD(_mm_cmpeq_pd),  HV_PREDD(_mm_cmplt_pd),
                             HV_PREDD(_mm_cmple_pd),  HV_PREDD(_mm_cmpunord_pd),
                             HV_PREDD(_mm_cmpneq_pd), HV_PREDD(_mm_cmpnlt_pd),
                             HV_PREDD(_mm_cmpnle_pd), HV_PREDD(_mm_cmpord_pd)};
constexpr VecOp kCmpSd[8] = {HV_PREDD(_mm_cmpeq_sd),  HV_PREDD(_mm_cmplt_sd),
                             HV_PREDD(_mm_cmple_sd),  HV_PREDD(_mm_cmpunord_sd),
                             HV_PREDD(_mm_cmpneq_sd), HV_PREDD(_mm_cmpnlt_sd),
                             HV_PREDD(_mm_cmpnle_sd), HV_PREDD(_mm_cmpord_sd)};
#undef HV_PRED
#undef HV_PREDD

template <const VecOp* kTable>
void cmp_op(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const __m128i b = source(cpu, insn, 1);
  const __m128i a = xget(cpu, insn.operands[0].reg);
  xset(cpu, insn.operands[0].reg, simd_fp<__m128i>(cpu, a, b, kTable[insn.immediate & 7]));
}

// COMISS/UCOMISS/COMISD/UCOMISD: ZF/PF/CF from the host instruction itself (its exception
// behaviour differs: COMI signals invalid on any NaN, UCOMI only on signalling NaNs).
enum class Comi { kComiss, kUcomiss, kComisd, kUcomisd };
template <Comi kKind>
void comi(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const __m128i b = source(cpu, insn, 1);
  const __m128i a = xget(cpu, insn.operands[0].reg);
  const uint64_t bits = simd_fp<uint64_t>(cpu, a, b, [](__m128i x, __m128i y) -> uint64_t {
    bool z, p, c;
    if constexpr (kKind == Comi::kComiss) {
      asm volatile("comiss %[y], %[x]"
                   : "=@ccz"(z), "=@ccp"(p), "=@ccc"(c)
                   : [x] "x"(x), [y] "x"(y));
    } else if constexpr (kKind == Comi::kUcomiss) {
      asm volatile("ucomiss %[y], %[x]"
                   : "=@ccz"(z), "=@ccp"(p), "=@ccc"(c)
                   : [x] "x"(x), [y] "x"(y));
    } else if constexpr (kKind == Comi::kComisd) {
      asm volatile("comisd %[y], %[x]"
                   : "=@ccz"(z), "=@ccp"(p), "=@ccc"(c)
                   : [x] "x"(x), [y] "x"(y));
    } else {
      asm volatile("ucomisd %[y], %[x]"
                   : "=@ccz"(z), "=@ccp"(p), "=@ccc"(c)
                   : [x] "x"(x), [y] "x"(y));
    }
    return (z ? flag::kZF : 0) | (p ? flag::kPF : 0) | (c ? flag::kCF : 0);
  });
  cpu.lazy.set_materialized(bits);
}

// ---- conversions with a general-purpose register ----

template <bool kDouble>
void cvtsi2s(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const int64_t v = sign_extend(read_operand(cpu, insn, 1), insn.operands[1].size);
  const bool wide = insn.operands[1].size == 8;
  const __m128i a = xget(cpu, insn.operands[0].reg);
  const __m128i r = simd_fp<__m128i>(cpu, a, v, [wide](__m128i x, int64_t n) {
    if constexpr (kDouble) {
      return wide ? vi(_mm_cvtsi64_sd(pd(x), n)) : vi(_mm_cvtsi32_sd(pd(x), static_cast<int>(n)));
    } else {
      return wide ? vi(_mm_cvtsi64_ss(ps(x), n)) : vi(_mm_cvtsi32_ss(ps(x), static_cast<int>(n)));
    }
  });
  xset(cpu, insn.operands[0].reg, r);
}
template <bool kDouble>
Handler bind_cvtsi2s(const Insn& insn) {
  return is_xmm(insn, 0) && (is_gpr(insn, 1) || is_mem(insn, 1)) ? cvtsi2s<kDouble> : nullptr;
}

// CVT(T)SS2SI / CVT(T)SD2SI; out-of-range and NaN give the "integer indefinite" (host behaviour).
template <bool kDouble, bool kTruncate>
void cvts2si(Cpu& cpu, const Insn& insn) {
  check_sse(cpu);
  const __m128i b = source(cpu, insn, 1);
  const bool wide = insn.operands[0].size == 8;
  const int64_t zero = 0;
  const int64_t r = simd_fp<int64_t>(cpu, b, zero, [wide](__m128i x, int64_t) -> int64_t {
    if constexpr (kDouble && kTruncate) {
      return wide ? _mm_cvttsd_si64(pd(x)) : static_cast<uint32_t>(_mm_cvttsd_si32(pd(x)));
    } else if constexpr (kDouble) {
      return wide ? _mm_cvtsd_si64(pd(x)) : static_cast<uint32_t>(_mm_cvtsd_si32(pd(x)));
    } else if constexpr (kTruncate) {
      return wide ? _mm_cvttss_si64(ps(x)) : static_cast<uint32_t>(_mm_cvttss_si32(ps(x)));
    } else {
      return wide ? _mm_cvtss_si64(ps(x)) : static_cast<uint32_t>(_mm_cvtss_si32(ps(x)));
    }
  });
  cpu.set_reg(insn.operands[0].reg, insn.operands[0].size, static_cast<uint64_t>(r));
}
template <bool kDouble, bool kTruncate>
Handler bind_cvts2si(const Insn& insn) {
  return is_gpr(insn, 0) && xmm_or_mem(insn, 1) ? cvts2si<kDouble, kTruncate> : nullptr;
}

// The packed and scalar two-operand operations: one function per mnemonic.
__m128i op_PAND(__m128i a, __m128i b) {
  return _mm_and_si128(a, b);
}
__m128i op_ANDPS(__m128i a, __m128i b) {
  return _mm_and_si128(a, b);
}
__m128i op_ANDPD(__m128i a, __m128i b) {
  return _mm_and_si128(a, b);
}
__m128i op_PANDN(__m128i a, __m128i b) {
  return _mm_andnot_si128(a, b);
}
__m128i op_ANDNPS(__m128i a, __m128i b) {
  return _mm_andnot_si128(a, b);
}
__m128i op_ANDNPD(__m128i a, __m128i b) {
  return _mm_andnot_si128(a, b);
}
__m128i op_POR(__m128i a, __m128i b) {
  return _mm_or_si128(a, b);
}
__m128i op_ORPS(__m128i a, __m128i b) {
  return _mm_or_si128(a, b);
}
__m128i op_ORPD(__m128i a, __m128i b) {
  return _mm_or_si128(a, b);
}
__m128i op_PXOR(__m128i a, __m128i b) {
  return _mm_xor_si128(a, b);
}
__m128i op_XORPS(__m128i a, __m128i b) {
  return _mm_xor_si128(a, b);
}
__m128i op_XORPD(__m128i a, __m128i b) {
  return _mm_xor_si128(a, b);
}
__m128i op_PADDB(__m128i a, __m128i b) {
  return _mm_add_epi8(a, b);
}
__m128i op_PADDW(__m128i a, __m128i b) {
  return _mm_add_epi16(a, b);
}
__m128i op_PADDD(__m128i a, __m128i b) {
  return _mm_add_epi32(a, b);
}
__m128i op_PADDQ(__m128i a, __m128i b) {
  return _mm_add_epi64(a, b);
}
__m128i op_PSUBB(__m128i a, __m128i b) {
  return _mm_sub_epi8(a, b);
}
__m128i op_PSUBW(__m128i a, __m128i b) {
  return _mm_sub_epi16(a, b);
}
__m128i op_PSUBD(__m128i a, __m128i b) {
  return _mm_sub_epi32(a, b);
}
__m128i op_PSUBQ(__m128i a, __m128i b) {
  return _mm_sub_epi64(a, b);
}
__m128i op_PADDSB(__m128i a, __m128i b) {
  return _mm_adds_epi8(a, b);
}
__m128i op_PADDSW(__m128i a, __m128i b) {
  return _mm_adds_epi16(a, b);
}
__m128i op_PADDUSB(__m128i a, __m128i b) {
  return _mm_adds_epu8(a, b);
}
__m128i op_PADDUSW(__m128i a, __m128i b) {
  return _mm_adds_epu16(a, b);
}
__m128i op_PSUBSB(__m128i a, __m128i b) {
  return _mm_subs_epi8(a, b);
}
__m128i op_PSUBSW(__m128i a, __m128i b) {
  return _mm_subs_epi16(a, b);
}
__m128i op_PSUBUSB(__m128i a, __m128i b) {
  return _mm_subs_epu8(a, b);
}
__m128i op_PSUBUSW(__m128i a, __m128i b) {
  return _mm_subs_epu16(a, b);
}
__m128i op_PMULLW(__m128i a, __m128i b) {
  return _mm_mullo_epi16(a, b);
}
__m128i op_PMULHW(__m128i a, __m128i b) {
  return _mm_mulhi_epi16(a, b);
}
__m128i op_PMULHUW(__m128i a, __m128i b) {
  return _mm_mulhi_epu16(a, b);
}
__m128i op_PMULUDQ(__m128i a, __m128i b) {
  return _mm_mul_epu32(a, b);
}
__m128i op_PMADDWD(__m128i a, __m128i b) {
  return _mm_madd_epi16(a, b);
}
__m128i op_PAVGB(__m128i a, __m128i b) {
  return _mm_avg_epu8(a, b);
}
__m128i op_PAVGW(__m128i a, __m128i b) {
  return _mm_avg_epu16(a, b);
}
__m128i op_PMINUB(__m128i a, __m128i b) {
  return _mm_min_epu8(a, b);
}
__m128i op_PMAXUB(__m128i a, __m128i b) {
  return _mm_max_epu8(a, b);
}
__m128i op_PMINSW(__m128i a, __m128i b) {
  return _mm_min_epi16(a, b);
}
__m128i op_PMAXSW(__m128i a, __m128i b) {
  return _mm_max_epi16(a, b);
}
__m128i op_PSADBW(__m128i a, __m128i b) {
  return _mm_sad_epu8(a, b);
}
__m128i op_PCMPEQB(__m128i a, __m128i b) {
  return _mm_cmpeq_epi8(a, b);
}
__m128i op_PCMPEQW(__m128i a, __m128i b) {
  return _mm_cmpeq_epi16(a, b);
}
__m128i op_PCMPEQD(__m128i a, __m128i b) {
  return _mm_cmpeq_epi32(a, b);
}
__m128i op_PCMPGTB(__m128i a, __m128i b) {
  return _mm_cmpgt_epi8(a, b);
}
__m128i op_PCMPGTW(__m128i a, __m128i b) {
  return _mm_cmpgt_epi16(a, b);
}
__m128i op_PCMPGTD(__m128i a, __m128i b) {
  return _mm_cmpgt_epi32(a, b);
}
__m128i op_PUNPCKLBW(__m128i a, __m128i b) {
  return _mm_unpacklo_epi8(a, b);
}
__m128i op_PUNPCKLWD(__m128i a, __m128i b) {
  return _mm_unpacklo_epi16(a, b);
}
__m128i op_PUNPCKLDQ(__m128i a, __m128i b) {
  return _mm_unpacklo_epi32(a, b);
}
__m128i op_PUNPCKLQDQ(__m128i a, __m128i b) {
  return _mm_unpacklo_epi64(a, b);
}
__m128i op_PUNPCKHBW(__m128i a, __m128i b) {
  return _mm_unpackhi_epi8(a, b);
}
__m128i op_PUNPCKHWD(__m128i a, __m128i b) {
  return _mm_unpackhi_epi16(a, b);
}
__m128i op_PUNPCKHDQ(__m128i a, __m128i b) {
  return _mm_unpackhi_epi32(a, b);
}
__m128i op_PUNPCKHQDQ(__m128i a, __m128i b) {
  return _mm_unpackhi_epi64(a, b);
}
__m128i op_UNPCKLPS(__m128i a, __m128i b) {
  return _mm_unpacklo_epi32(a, b);
}
__m128i op_UNPCKHPS(__m128i a, __m128i b) {
  return _mm_unpackhi_epi32(a, b);
}
__m128i op_UNPCKLPD(__m128i a, __m128i b) {
  return _mm_unpacklo_epi64(a, b);
}
__m128i op_UNPCKHPD(__m128i a, __m128i b) {
  return _mm_unpackhi_epi64(a, b);
}
__m128i op_PACKSSWB(__m128i a, __m128i b) {
  return _mm_packs_epi16(a, b);
}
__m128i op_PACKSSDW(__m128i a, __m128i b) {
  return _mm_packs_epi32(a, b);
}
__m128i op_PACKUSWB(__m128i a, __m128i b) {
  return _mm_packus_epi16(a, b);
}
__m128i op_PSLLW(__m128i a, __m128i b) {
  return _mm_sll_epi16(a, b);
}
__m128i op_PSLLD(__m128i a, __m128i b) {
  return _mm_sll_epi32(a, b);
}
__m128i op_PSLLQ(__m128i a, __m128i b) {
  return _mm_sll_epi64(a, b);
}
__m128i op_PSRLW(__m128i a, __m128i b) {
  return _mm_srl_epi16(a, b);
}
__m128i op_PSRLD(__m128i a, __m128i b) {
  return _mm_srl_epi32(a, b);
}
__m128i op_PSRLQ(__m128i a, __m128i b) {
  return _mm_srl_epi64(a, b);
}
__m128i op_PSRAW(__m128i a, __m128i b) {
  return _mm_sra_epi16(a, b);
}
__m128i op_PSRAD(__m128i a, __m128i b) {
  return _mm_sra_epi32(a, b);
}
__m128i op_ADDPS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_add_ps(a, b));
}
__m128i op_ADDSS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_add_ss(a, b));
}
__m128i op_ADDPD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_add_pd(a, b));
}
__m128i op_ADDSD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_add_sd(a, b));
}
__m128i op_SUBPS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_sub_ps(a, b));
}
__m128i op_SUBSS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_sub_ss(a, b));
}
__m128i op_SUBPD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_sub_pd(a, b));
}
__m128i op_SUBSD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_sub_sd(a, b));
}
__m128i op_MULPS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_mul_ps(a, b));
}
__m128i op_MULSS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_mul_ss(a, b));
}
__m128i op_MULPD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_mul_pd(a, b));
}
__m128i op_MULSD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_mul_sd(a, b));
}
__m128i op_DIVPS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_div_ps(a, b));
}
__m128i op_DIVSS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_div_ss(a, b));
}
__m128i op_DIVPD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_div_pd(a, b));
}
__m128i op_DIVSD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_div_sd(a, b));
}
__m128i op_MINPS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_min_ps(a, b));
}
__m128i op_MINSS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_min_ss(a, b));
}
__m128i op_MINPD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_min_pd(a, b));
}
__m128i op_MINSD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_min_sd(a, b));
}
__m128i op_MAXPS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_max_ps(a, b));
}
__m128i op_MAXSS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_max_ss(a, b));
}
__m128i op_MAXPD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_max_pd(a, b));
}
__m128i op_MAXSD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_max_sd(a, b));
}
__m128i op_SQRTPS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_sqrt_ps(b));
}
__m128i op_SQRTSS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_move_ss(a, _mm_sqrt_ss(b)));
}
__m128i op_SQRTPD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_sqrt_pd(b));
}
__m128i op_SQRTSD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_sqrt_sd(a, b));
}
__m128i op_RCPPS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_rcp_ps(b));
}
__m128i op_RCPSS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_move_ss(a, _mm_rcp_ss(b)));
}
__m128i op_RSQRTPS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_rsqrt_ps(b));
}
__m128i op_RSQRTSS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_move_ss(a, _mm_rsqrt_ss(b)));
}
__m128i op_CVTPS2PD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_cvtps_pd(b));
}
__m128i op_CVTPD2PS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_cvtpd_ps(b));
}
__m128i op_CVTSS2SD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_cvtss_sd(a, ps(bi)));
}
__m128i op_CVTSD2SS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_cvtsd_ss(a, pd(bi)));
}
__m128i op_CVTDQ2PS(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_cvtepi32_ps(bi));
}
__m128i op_CVTPS2DQ(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_castsi128_ps(_mm_cvtps_epi32(b)));
}
__m128i op_CVTTPS2DQ(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128 a = ps(ai), b = ps(bi);
  return vi(_mm_castsi128_ps(_mm_cvttps_epi32(b)));
}
__m128i op_CVTDQ2PD(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_cvtepi32_pd(bi));
}
__m128i op_CVTPD2DQ(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_castsi128_pd(_mm_cvtpd_epi32(b)));
}
__m128i op_CVTTPD2DQ(__m128i ai, __m128i bi) {
  [[maybe_unused]] const __m128d a = pd(ai), b = pd(bi);
  return vi(_mm_castsi128_pd(_mm_cvttpd_epi32(b)));
}

}  // namespace

void register_sse_ops(HandlerRegistry& r) {
  auto add = [&r](ZydisMnemonic m, Binder b) { add_chained(r, m, b); };
#define HV_REG_INT(mn) add(ZYDIS_MNEMONIC_##mn, bind_packed<op_##mn, false>)
#define HV_REG_PS(mn) add(ZYDIS_MNEMONIC_##mn, bind_packed<op_##mn, true>)
#define HV_REG_PD(mn) add(ZYDIS_MNEMONIC_##mn, bind_packed<op_##mn, true>)
#define HV_REG_SHIFT(mn) add(ZYDIS_MNEMONIC_##mn, bind_shift<op_##mn>)

  // Moves.
  add(ZYDIS_MNEMONIC_MOVAPS, bind_mov128<true>);
  add(ZYDIS_MNEMONIC_MOVAPD, bind_mov128<true>);
  add(ZYDIS_MNEMONIC_MOVDQA, bind_mov128<true>);
  add(ZYDIS_MNEMONIC_MOVUPS, bind_mov128<false>);
  add(ZYDIS_MNEMONIC_MOVUPD, bind_mov128<false>);
  add(ZYDIS_MNEMONIC_MOVDQU, bind_mov128<false>);
  add(ZYDIS_MNEMONIC_MOVNTPS, bind_movnt);
  add(ZYDIS_MNEMONIC_MOVNTPD, bind_movnt);
  add(ZYDIS_MNEMONIC_MOVNTDQ, bind_movnt);
  add(ZYDIS_MNEMONIC_MOVSS, bind_movs<4>);
  add(ZYDIS_MNEMONIC_MOVSD, bind_movs<8>);
  add(ZYDIS_MNEMONIC_MOVLPS, bind_movhalf<0>);
  add(ZYDIS_MNEMONIC_MOVLPD, bind_movhalf<0>);
  add(ZYDIS_MNEMONIC_MOVHPS, bind_movhalf<1>);
  add(ZYDIS_MNEMONIC_MOVHPD, bind_movhalf<1>);
  add(ZYDIS_MNEMONIC_MOVHLPS, bind_movhl<0, 1>);
  add(ZYDIS_MNEMONIC_MOVLHPS, bind_movhl<1, 0>);
  add(ZYDIS_MNEMONIC_MOVD, bind_movdq);
  add(ZYDIS_MNEMONIC_MOVQ, bind_movdq);
  add(ZYDIS_MNEMONIC_MOVMSKPS, bind_movmsk<msk_ps>);
  add(ZYDIS_MNEMONIC_MOVMSKPD, bind_movmsk<msk_pd>);
  add(ZYDIS_MNEMONIC_PMOVMSKB, bind_movmsk<msk_b>);
  add(ZYDIS_MNEMONIC_MOVNTI, bind_movnti);
  add(ZYDIS_MNEMONIC_MASKMOVDQU, bind_maskmovdqu);
  add(ZYDIS_MNEMONIC_LDMXCSR, bind_mem_only<ldmxcsr>);
  add(ZYDIS_MNEMONIC_STMXCSR, bind_mem_only<stmxcsr>);

  // Bitwise (no floating-point exceptions, so the PS/PD forms are plain integer operations).
  HV_REG_INT(PAND);
  HV_REG_INT(ANDPS);
  HV_REG_INT(ANDPD);
  HV_REG_INT(PANDN);
  HV_REG_INT(ANDNPS);
  HV_REG_INT(ANDNPD);
  HV_REG_INT(POR);
  HV_REG_INT(ORPS);
  HV_REG_INT(ORPD);
  HV_REG_INT(PXOR);
  HV_REG_INT(XORPS);
  HV_REG_INT(XORPD);

  // Integer arithmetic and compares.
  HV_REG_INT(PADDB);
  HV_REG_INT(PADDW);
  HV_REG_INT(PADDD);
  HV_REG_INT(PADDQ);
  HV_REG_INT(PSUBB);
  HV_REG_INT(PSUBW);
  HV_REG_INT(PSUBD);
  HV_REG_INT(PSUBQ);
  HV_REG_INT(PADDSB);
  HV_REG_INT(PADDSW);
  HV_REG_INT(PADDUSB);
  HV_REG_INT(PADDUSW);
  HV_REG_INT(PSUBSB);
  HV_REG_INT(PSUBSW);
  HV_REG_INT(PSUBUSB);
  HV_REG_INT(PSUBUSW);
  HV_REG_INT(PMULLW);
  HV_REG_INT(PMULHW);
  HV_REG_INT(PMULHUW);
  HV_REG_INT(PMULUDQ);
  HV_REG_INT(PMADDWD);
  HV_REG_INT(PAVGB);
  HV_REG_INT(PAVGW);
  HV_REG_INT(PMINUB);
  HV_REG_INT(PMAXUB);
  HV_REG_INT(PMINSW);
  HV_REG_INT(PMAXSW);
  HV_REG_INT(PSADBW);
  HV_REG_INT(PCMPEQB);
  HV_REG_INT(PCMPEQW);
  HV_REG_INT(PCMPEQD);
  HV_REG_INT(PCMPGTB);
  HV_REG_INT(PCMPGTW);
  HV_REG_INT(PCMPGTD);
  HV_REG_INT(PUNPCKLBW);
  HV_REG_INT(PUNPCKLWD);
  HV_REG_INT(PUNPCKLDQ);
  HV_REG_INT(PUNPCKLQDQ);
  HV_REG_INT(PUNPCKHBW);
  HV_REG_INT(PUNPCKHWD);
  HV_REG_INT(PUNPCKHDQ);
  HV_REG_INT(PUNPCKHQDQ);
  HV_REG_INT(UNPCKLPS);
  HV_REG_INT(UNPCKHPS);
  HV_REG_INT(UNPCKLPD);
  HV_REG_INT(UNPCKHPD);
  HV_REG_INT(PACKSSWB);
  HV_REG_INT(PACKSSDW);
  HV_REG_INT(PACKUSWB);

  // Shifts: count from an XMM register, memory or an immediate.
  HV_REG_SHIFT(PSLLW);
  HV_REG_SHIFT(PSLLD);
  HV_REG_SHIFT(PSLLQ);
  HV_REG_SHIFT(PSRLW);
  HV_REG_SHIFT(PSRLD);
  HV_REG_SHIFT(PSRLQ);
  HV_REG_SHIFT(PSRAW);
  HV_REG_SHIFT(PSRAD);
  add(ZYDIS_MNEMONIC_PSLLDQ, bind_byte_shift<true>);
  add(ZYDIS_MNEMONIC_PSRLDQ, bind_byte_shift<false>);
  add(ZYDIS_MNEMONIC_PSHUFD, bind_xmm_imm3<pshufd>);
  add(ZYDIS_MNEMONIC_PSHUFLW, bind_xmm_imm3<pshufw<0>>);
  add(ZYDIS_MNEMONIC_PSHUFHW, bind_xmm_imm3<pshufw<1>>);
  add(ZYDIS_MNEMONIC_SHUFPS, bind_xmm_imm3<shufps>);
  add(ZYDIS_MNEMONIC_SHUFPD, bind_xmm_imm3<shufpd>);
  add(ZYDIS_MNEMONIC_PEXTRW, bind_pextrw);
  add(ZYDIS_MNEMONIC_PINSRW, bind_pinsrw);

  // Floating-point arithmetic (the scalar intrinsics keep the destination's upper lanes).
  HV_REG_PS(ADDPS);
  HV_REG_PS(ADDSS);
  HV_REG_PD(ADDPD);
  HV_REG_PD(ADDSD);
  HV_REG_PS(SUBPS);
  HV_REG_PS(SUBSS);
  HV_REG_PD(SUBPD);
  HV_REG_PD(SUBSD);
  HV_REG_PS(MULPS);
  HV_REG_PS(MULSS);
  HV_REG_PD(MULPD);
  HV_REG_PD(MULSD);
  HV_REG_PS(DIVPS);
  HV_REG_PS(DIVSS);
  HV_REG_PD(DIVPD);
  HV_REG_PD(DIVSD);
  HV_REG_PS(MINPS);
  HV_REG_PS(MINSS);
  HV_REG_PD(MINPD);
  HV_REG_PD(MINSD);
  HV_REG_PS(MAXPS);
  HV_REG_PS(MAXSS);
  HV_REG_PD(MAXPD);
  HV_REG_PD(MAXSD);
  HV_REG_PS(SQRTPS);
  HV_REG_PS(SQRTSS);
  HV_REG_PD(SQRTPD);
  HV_REG_PD(SQRTSD);
  HV_REG_PS(RCPPS);
  HV_REG_PS(RCPSS);
  HV_REG_PS(RSQRTPS);
  HV_REG_PS(RSQRTSS);

  // Conversions between floating-point formats and packed integers.
  HV_REG_PS(CVTPS2PD);
  HV_REG_PD(CVTPD2PS);
  HV_REG_PD(CVTSS2SD);
  HV_REG_PS(CVTSD2SS);
  HV_REG_PS(CVTDQ2PS);
  HV_REG_PS(CVTPS2DQ);
  HV_REG_PS(CVTTPS2DQ);
  HV_REG_PD(CVTDQ2PD);
  HV_REG_PD(CVTPD2DQ);
  HV_REG_PD(CVTTPD2DQ);
  add(ZYDIS_MNEMONIC_CVTSI2SS, bind_cvtsi2s<false>);
  add(ZYDIS_MNEMONIC_CVTSI2SD, bind_cvtsi2s<true>);
  add(ZYDIS_MNEMONIC_CVTSS2SI, bind_cvts2si<false, false>);
  add(ZYDIS_MNEMONIC_CVTTSS2SI, bind_cvts2si<false, true>);
  add(ZYDIS_MNEMONIC_CVTSD2SI, bind_cvts2si<true, false>);
  add(ZYDIS_MNEMONIC_CVTTSD2SI, bind_cvts2si<true, true>);

#undef HV_REG_INT
#undef HV_REG_PS
#undef HV_REG_PD
#undef HV_REG_SHIFT

  // Compares.
  add(ZYDIS_MNEMONIC_CMPPS, bind_xmm_imm3<cmp_op<kCmpPs>>);
  add(ZYDIS_MNEMONIC_CMPSS, bind_xmm_imm3<cmp_op<kCmpSs>>);
  add(ZYDIS_MNEMONIC_CMPPD, bind_xmm_imm3<cmp_op<kCmpPd>>);
  add(ZYDIS_MNEMONIC_CMPSD, bind_xmm_imm3<cmp_op<kCmpSd>>);
  add(ZYDIS_MNEMONIC_COMISS, bind_packed_form<comi<Comi::kComiss>>);
  add(ZYDIS_MNEMONIC_UCOMISS, bind_packed_form<comi<Comi::kUcomiss>>);
  add(ZYDIS_MNEMONIC_COMISD, bind_packed_form<comi<Comi::kComisd>>);
  add(ZYDIS_MNEMONIC_UCOMISD, bind_packed_form<comi<Comi::kUcomisd>>);
}

}  // namespace hv::emu::fpu
