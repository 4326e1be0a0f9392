// Lazy arithmetic flags. An ALU instruction records what it computed (operation, width, operands
// and result); CF/PF/AF/ZF/SF/OF are derived only when something reads them (a Jcc, PUSHF, an
// ADC). Most results are never looked at, so most instructions never pay for flag computation.
#pragma once

#include <bit>
#include <cstdint>

namespace hv::emu {

namespace flag {
constexpr uint64_t kCF = 1u << 0, kPF = 1u << 2, kAF = 1u << 4, kZF = 1u << 6, kSF = 1u << 7,
                   kTF = 1u << 8, kIF = 1u << 9, kDF = 1u << 10, kOF = 1u << 11, kIOPL = 3u << 12,
                   kNT = 1u << 14, kRF = 1u << 16, kVM = 1u << 17, kAC = 1u << 18, kVIF = 1u << 19,
                   kVIP = 1u << 20, kID = 1u << 21;
constexpr uint64_t kArithmetic = kCF | kPF | kAF | kZF | kSF | kOF;
constexpr uint64_t kFixedOne = 1u << 1;
}  // namespace flag

// How the six arithmetic flags follow from (dst, src, result) for each kind of operation.
// dst is the first (destination) operand before the operation, src the second.
enum class FlagOp : uint8_t {
  kMaterialized,  // the flags are in LazyFlags::materialized, nothing to compute
  kAdd,           // ADD, XADD
  kAdc,           // ADD with carry in (carry_in holds it)
  kSub,           // SUB, CMP, NEG (dst = 0), CMPXCHG, SCAS, CMPS
  kSbb,
  kLogic,  // AND, OR, XOR, TEST: CF = OF = 0, AF undefined (0)
  kInc,    // CF preserved in carry_in
  kDec,    // CF preserved in carry_in
  kShl,    // src = count (1..size*8-1 after masking; 0 never recorded)
  kShr,
  kSar,
};

struct LazyFlags {
  uint64_t dst = 0;
  uint64_t src = 0;
  uint64_t result = 0;
  uint64_t materialized = 0;  // arithmetic flag bits when op == kMaterialized
  FlagOp op = FlagOp::kMaterialized;
  uint8_t size = 4;  // operand width in bytes
  bool carry_in = false;

  void set(FlagOp operation, uint8_t width, uint64_t d, uint64_t s, uint64_t r) {
    op = operation;
    size = width;
    dst = d;
    src = s;
    result = r;
  }
  void set_with_carry(FlagOp operation, uint8_t width, uint64_t d, uint64_t s, uint64_t r,
                      bool carry) {
    set(operation, width, d, s, r);
    carry_in = carry;
  }
  // Replaces all six flags with explicit values (POPF, SAHF, instructions with custom flags).
  void set_materialized(uint64_t arithmetic_bits) {
    op = FlagOp::kMaterialized;
    materialized = arithmetic_bits & flag::kArithmetic;
  }

  uint64_t mask() const { return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1; }
  uint64_t sign_bit() const { return 1ull << (size * 8 - 1); }

  [[gnu::always_inline]] bool cf() const {
    switch (op) {
      case FlagOp::kMaterialized:
        return materialized & flag::kCF;
      case FlagOp::kAdd:
        return (result & mask()) < (dst & mask());
      case FlagOp::kAdc:
        return carry_in ? (result & mask()) <= (dst & mask()) : (result & mask()) < (dst & mask());
      case FlagOp::kSub:
        return (dst & mask()) < (src & mask());
      case FlagOp::kSbb:
        return carry_in ? (dst & mask()) <= (src & mask()) : (dst & mask()) < (src & mask());
      case FlagOp::kLogic:
        return false;
      case FlagOp::kInc:
      case FlagOp::kDec:
        return carry_in;
      case FlagOp::kShl:
        return (dst >> (size * 8 - src)) & 1;
      case FlagOp::kShr:
        return (dst >> (src - 1)) & 1;
      case FlagOp::kSar: {
        int64_t v = sign_extend(dst);
        return (v >> (src - 1)) & 1;
      }
    }
    return false;
  }
  [[gnu::always_inline]] bool zf() const {
    return op == FlagOp::kMaterialized ? (materialized & flag::kZF) : (result & mask()) == 0;
  }
  [[gnu::always_inline]] bool sf() const {
    return op == FlagOp::kMaterialized ? (materialized & flag::kSF) : (result & sign_bit()) != 0;
  }
  [[gnu::always_inline]] bool pf() const {
    if (op == FlagOp::kMaterialized) {
      return materialized & flag::kPF;
    }
    return (std::popcount(static_cast<uint8_t>(result)) & 1) == 0;
  }
  [[gnu::always_inline]] bool af() const {
    switch (op) {
      case FlagOp::kMaterialized:
        return materialized & flag::kAF;
      case FlagOp::kLogic:
      case FlagOp::kShl:
      case FlagOp::kShr:
      case FlagOp::kSar:
        return false;  // undefined by the ISA; 0 as most hardware
      case FlagOp::kInc:
        return (result & 0xf) == 0;
      case FlagOp::kDec:
        return (result & 0xf) == 0xf;
      default:
        return ((dst ^ src ^ result) & 0x10) != 0;
    }
  }
  [[gnu::always_inline]] bool of() const {
    const uint64_t sb = sign_bit();
    switch (op) {
      case FlagOp::kMaterialized:
        return materialized & flag::kOF;
      case FlagOp::kAdd:
      case FlagOp::kAdc:
        return ((dst ^ result) & (src ^ result) & sb) != 0;
      case FlagOp::kSub:
      case FlagOp::kSbb:
        return ((dst ^ src) & (dst ^ result) & sb) != 0;
      case FlagOp::kLogic:
        return false;
      case FlagOp::kInc:
        return (result & mask()) == sb;
      case FlagOp::kDec:
        return (result & mask()) == sb - 1;
      case FlagOp::kShl:
        return (((result & sb) != 0) != cf());  // defined for count 1
      case FlagOp::kShr:
        return src == 1 ? (dst & sb) != 0 : false;
      case FlagOp::kSar:
        return false;
    }
    return false;
  }

  [[gnu::always_inline]] uint64_t arithmetic_bits() const {
    if (op == FlagOp::kMaterialized) {
      return materialized;
    }
    return (cf() ? flag::kCF : 0) | (pf() ? flag::kPF : 0) | (af() ? flag::kAF : 0) |
           (zf() ? flag::kZF : 0) | (sf() ? flag::kSF : 0) | (of() ? flag::kOF : 0);
  }

  // x86 condition codes 0-15 (the low nibble of Jcc/SETcc/CMOVcc).
  [[gnu::always_inline]] bool condition(uint8_t cc) const {
    bool r;
    switch (cc >> 1) {
      case 0:
        r = of();
        break;
      case 1:
        r = cf();
        break;
      case 2:
        r = zf();
        break;
      case 3:
        r = cf() || zf();
        break;
      case 4:
        r = sf();
        break;
      case 5:
        r = pf();
        break;
      case 6:
        r = sf() != of();
        break;
      default:
        r = zf() || (sf() != of());
        break;
    }
    return (cc & 1) ? !r : r;
  }

 private:
  int64_t sign_extend(uint64_t v) const {
    const int shift = 64 - size * 8;
    return static_cast<int64_t>(v << shift) >> shift;
  }
};

}  // namespace hv::emu
