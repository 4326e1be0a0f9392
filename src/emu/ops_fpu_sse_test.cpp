// x87, SSE and SSE2 handlers, mostly differential: the same operation runs on the host and the
// results (bits, flags, MXCSR) must match exactly.
#include <emmintrin.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "emu/cpu.hpp"
#include "emu/decoder.hpp"
#include "emu/ops_system.hpp"

namespace hv::emu {
namespace {

constexpr uint64_t kMemory = 2 << 20;
constexpr uint64_t kData = 0x10000;  // 16-byte aligned scratch area (ECX points here)

class FpuSseTest : public ::testing::Test {
 protected:
  FpuSseTest()
      : machine_(std::move(*Machine::create({.memory_bytes = kMemory}))),
        pages_(kMemory),
        cpu_(*machine_, pages_, 0) {
    // 32-bit flat protected mode without paging, SSE enabled by the "OS".
    cpu_.cr0 = cr0::kPE | cr0::kET | cr0::kNE | cr0::kMP;
    cpu_.cr4 = cr4::kOSFXSR | cr4::kOSXMMEXCPT;
    cpu_.seg[kCs] = flat(0x08, 0x00cf9b000000ffff);
    for (uint8_t s : {kDs, kEs, kSs, kFs, kGs}) {
      cpu_.seg[s] = flat(0x10, 0x00cf93000000ffff);
    }
    cpu_.update_mode();
    cpu_.gpr[1] = kData;
  }
  static SegmentCache flat(uint16_t selector, uint64_t descriptor) {
    SegmentCache c = cache_from_descriptor(selector, descriptor);
    c.attributes |= 1;
    return c;
  }

  // Decodes and runs one instruction; returns the fault vector or -1.
  int run(std::vector<uint8_t> bytes) {
    Insn insn;
    EXPECT_TRUE(Decoder(4).decode(bytes, insn)) << "decode failed";
    cpu_.rip = 0x1000;
    cpu_.next_rip = cpu_.rip + insn.length;
    try {
      insn.handler(cpu_, insn);
    } catch (const GuestFault& f) {
      return f.vector;
    }
    return -1;
  }
  template <typename T>
  void put(uint64_t pa, T v) {
    ASSERT_TRUE(machine_->memory().write_object(pa, v).ok());
  }
  template <typename T>
  T get(uint64_t pa) {
    return *machine_->memory().read_object<T>(pa);
  }
  void set_xmm(int r, __m128i v) { std::memcpy(cpu_.fpu.xmm[r].data(), &v, 16); }
  __m128i xmm(int r) {
    __m128i v;
    std::memcpy(&v, cpu_.fpu.xmm[r].data(), 16);
    return v;
  }
  static bool same(__m128i a, __m128i b) { return std::memcmp(&a, &b, 16) == 0; }

  std::unique_ptr<Machine> machine_;
  CodePages pages_;
  Cpu cpu_;
};

// Fixed-seed random bit patterns mixed with the special values of each format.
std::vector<uint32_t> float_inputs() {
  std::vector<uint32_t> v = {0,          0x80000000, 0x3f800000, 0xbf800000, 0x7f800000,
                             0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x00000001,
                             0x807fffff, 0x7f7fffff, 0x4f000000, 0xcf000000, 0x5f000000,
                             0x3f000000, 0x3fc00000, 0x40200000, 0xc0200000, 0x4effffff};
  std::mt19937 rng(42);
  for (int i = 0; i < 200; ++i) {
    v.push_back(rng());
  }
  return v;
}
std::vector<uint64_t> double_inputs() {
  std::vector<uint64_t> v = {0,
                             0x8000000000000000,
                             0x3ff0000000000000,
                             0x7ff0000000000000,
                             0xfff0000000000000,
                             0x7ff8000000000000,
                             0x7ff0000000000001,
                             0x0000000000000001,
                             0x41e0000000000000,  // 2^31
                             0xc1e0000000000000,
                             0x43e0000000000000,  // 2^63
                             0x3fe0000000000000,  // 0.5
                             0x3ff8000000000000,  // 1.5
                             0x4004000000000000,  // 2.5
                             0x7fefffffffffffff};
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    v.push_back(rng());
  }
  return v;
}

// Runs `host` under the given MXCSR and returns the host MXCSR flags after it.
template <typename F>
uint32_t on_host(uint32_t mxcsr, F host) {
  const uint32_t saved = _mm_getcsr();
  _mm_setcsr(mxcsr);
  host();
  const uint32_t flags = _mm_getcsr() & 0x3f;
  _mm_setcsr(saved);
  return flags;
}

TEST_F(FpuSseTest, SseMovesAndAlignment) {
  put<uint64_t>(kData, 0x1122334455667788);
  put<uint64_t>(kData + 8, 0x99aabbccddeeff00);
  EXPECT_EQ(run({0x66, 0x0f, 0x6f, 0x01}), -1);  // movdqa xmm0, [ecx]
  EXPECT_EQ(cpu_.fpu.xmm[0][0], 0x1122334455667788u);
  EXPECT_EQ(cpu_.fpu.xmm[0][1], 0x99aabbccddeeff00u);
  EXPECT_EQ(run({0x66, 0x0f, 0x7f, 0x41, 0x20}), -1);  // movdqa [ecx+0x20], xmm0
  EXPECT_EQ(get<uint64_t>(kData + 0x28), 0x99aabbccddeeff00u);
  cpu_.gpr[1] = kData + 1;
  EXPECT_EQ(run({0x66, 0x0f, 0x6f, 0x01}), kGeneralProtection);  // misaligned movdqa
  EXPECT_EQ(run({0x0f, 0x28, 0x01}), kGeneralProtection);        // misaligned movaps
  EXPECT_EQ(run({0x66, 0x0f, 0xef, 0x01}), kGeneralProtection);  // misaligned pxor m128
  EXPECT_EQ(run({0xf3, 0x0f, 0x6f, 0x09}), -1);                  // movdqu xmm1, [ecx]
  EXPECT_EQ(cpu_.fpu.xmm[1][0], 0x0011223344556677u);
  // movd xmm2, eax zero-extends; movd ecx?, xmm: movd edx, xmm0 takes the low dword.
  cpu_.fpu.xmm[2] = {~0ull, ~0ull};
  cpu_.gpr[0] = 0xdeadbeef;
  EXPECT_EQ(run({0x66, 0x0f, 0x6e, 0xd0}), -1);
  EXPECT_EQ(cpu_.fpu.xmm[2][0], 0xdeadbeefu);
  EXPECT_EQ(cpu_.fpu.xmm[2][1], 0u);
  EXPECT_EQ(run({0x66, 0x0f, 0x7e, 0xc2}), -1);  // movd edx, xmm0
  EXPECT_EQ(cpu_.gpr[2], 0x55667788u);
  EXPECT_EQ(run({0xf3, 0x0f, 0x7e, 0xd8}), -1);  // movq xmm3, xmm0
  EXPECT_EQ(cpu_.fpu.xmm[3][0], 0x1122334455667788u);
  EXPECT_EQ(cpu_.fpu.xmm[3][1], 0u);
  cpu_.gpr[1] = kData;
  EXPECT_EQ(run({0x66, 0x0f, 0xd6, 0x41, 0x40}), -1);  // movq [ecx+0x40], xmm0
  EXPECT_EQ(get<uint64_t>(kData + 0x40), 0x1122334455667788u);
  // movss xmm3, xmm2 merges; movss xmm3, [ecx] zeroes the upper lanes.
  cpu_.fpu.xmm[3] = {0xaaaaaaaabbbbbbbb, 0xcccccccc};
  EXPECT_EQ(run({0xf3, 0x0f, 0x10, 0xda}), -1);
  EXPECT_EQ(cpu_.fpu.xmm[3][0], 0xaaaaaaaadeadbeefu);
  EXPECT_EQ(run({0xf3, 0x0f, 0x10, 0x19}), -1);
  EXPECT_EQ(cpu_.fpu.xmm[3][0], 0x55667788u);
  EXPECT_EQ(cpu_.fpu.xmm[3][1], 0u);
  EXPECT_EQ(run({0x0f, 0x16, 0x19}), -1);  // movhps xmm3, [ecx]
  EXPECT_EQ(cpu_.fpu.xmm[3][1], 0x1122334455667788u);
  EXPECT_EQ(run({0x0f, 0x12, 0xc3}), -1);  // movhlps xmm0, xmm3
  EXPECT_EQ(cpu_.fpu.xmm[0][0], 0x1122334455667788u);
}

TEST_F(FpuSseTest, SseAvailabilityChecks) {
  cpu_.cr4 = 0;
  EXPECT_EQ(run({0x66, 0x0f, 0xef, 0xc0}), kInvalidOpcode);  // pxor without OSFXSR
  cpu_.cr4 = cr4::kOSFXSR;
  cpu_.cr0 |= cr0::kTS;
  EXPECT_EQ(run({0x66, 0x0f, 0xef, 0xc0}), kDeviceNotAvailable);
  EXPECT_EQ(run({0xd9, 0xe8}), kDeviceNotAvailable);  // fld1
  EXPECT_EQ(run({0x9b}), kDeviceNotAvailable);        // fwait with TS and MP
  cpu_.cr0 &= ~cr0::kTS;
  cpu_.cr0 |= cr0::kEM;
  EXPECT_EQ(run({0x66, 0x0f, 0xef, 0xc0}), kInvalidOpcode);
  EXPECT_EQ(run({0xd9, 0xe8}), kDeviceNotAvailable);
}

// The integer operations string functions use, against the host on random data.
TEST_F(FpuSseTest, SseIntegerDifferential) {
  struct Case {
    std::vector<uint8_t> code;  // op xmm0, xmm1
    __m128i (*host)(__m128i, __m128i);
  };
  const Case cases[] = {
      {{0x66, 0x0f, 0x74, 0xc1}, [](__m128i a, __m128i b) { return _mm_cmpeq_epi8(a, b); }},
      {{0x66, 0x0f, 0xda, 0xc1}, [](__m128i a, __m128i b) { return _mm_min_epu8(a, b); }},
      {{0x66, 0x0f, 0xef, 0xc1}, [](__m128i a, __m128i b) { return _mm_xor_si128(a, b); }},
      {{0x66, 0x0f, 0xdb, 0xc1}, [](__m128i a, __m128i b) { return _mm_and_si128(a, b); }},
      {{0x66, 0x0f, 0xeb, 0xc1}, [](__m128i a, __m128i b) { return _mm_or_si128(a, b); }},
      {{0x66, 0x0f, 0xdf, 0xc1}, [](__m128i a, __m128i b) { return _mm_andnot_si128(a, b); }},
      {{0x66, 0x0f, 0xfc, 0xc1}, [](__m128i a, __m128i b) { return _mm_add_epi8(a, b); }},
      {{0x66, 0x0f, 0xd4, 0xc1}, [](__m128i a, __m128i b) { return _mm_add_epi64(a, b); }},
      {{0x66, 0x0f, 0xe9, 0xc1}, [](__m128i a, __m128i b) { return _mm_subs_epi16(a, b); }},
      {{0x66, 0x0f, 0xd8, 0xc1}, [](__m128i a, __m128i b) { return _mm_subs_epu8(a, b); }},
      {{0x66, 0x0f, 0xe5, 0xc1}, [](__m128i a, __m128i b) { return _mm_mulhi_epi16(a, b); }},
      {{0x66, 0x0f, 0xf4, 0xc1}, [](__m128i a, __m128i b) { return _mm_mul_epu32(a, b); }},
      {{0x66, 0x0f, 0xf5, 0xc1}, [](__m128i a, __m128i b) { return _mm_madd_epi16(a, b); }},
      {{0x66, 0x0f, 0xf6, 0xc1}, [](__m128i a, __m128i b) { return _mm_sad_epu8(a, b); }},
      {{0x66, 0x0f, 0x64, 0xc1}, [](__m128i a, __m128i b) { return _mm_cmpgt_epi8(a, b); }},
      {{0x66, 0x0f, 0x60, 0xc1}, [](__m128i a, __m128i b) { return _mm_unpacklo_epi8(a, b); }},
      {{0x66, 0x0f, 0x6d, 0xc1}, [](__m128i a, __m128i b) { return _mm_unpackhi_epi64(a, b); }},
      {{0x66, 0x0f, 0x63, 0xc1}, [](__m128i a, __m128i b) { return _mm_packs_epi16(a, b); }},
      {{0x66, 0x0f, 0x67, 0xc1}, [](__m128i a, __m128i b) { return _mm_packus_epi16(a, b); }},
      {{0x66, 0x0f, 0xf1, 0xc1}, [](__m128i a, __m128i b) { return _mm_sll_epi16(a, b); }},
      {{0x66, 0x0f, 0xe2, 0xc1}, [](__m128i a, __m128i b) { return _mm_sra_epi32(a, b); }},
  };
  std::mt19937_64 rng(1);
  for (int iter = 0; iter < 100; ++iter) {
    const __m128i a = _mm_set_epi64x(static_cast<long long>(rng()), static_cast<long long>(rng()));
    __m128i b = _mm_set_epi64x(static_cast<long long>(rng()), static_cast<long long>(rng()));
    if (iter % 3 == 0) {
      b = a;  // equal bytes for the compares
    }
    if (iter % 5 == 0) {
      b = _mm_set_epi64x(0, iter % 40);  // small shift counts
    }
    for (const Case& c : cases) {
      set_xmm(0, a);
      set_xmm(1, b);
      ASSERT_EQ(run(c.code), -1);
      ASSERT_TRUE(same(xmm(0), c.host(a, b))) << "opcode " << int(c.code[2]) << " iter " << iter;
    }
    // pmovmskb eax, xmm0
    set_xmm(0, a);
    ASSERT_EQ(run({0x66, 0x0f, 0xd7, 0xc0}), -1);
    EXPECT_EQ(cpu_.gpr[0], static_cast<uint32_t>(_mm_movemask_epi8(a)));
    // psrldq xmm0, 3 / pslldq xmm0, 5 / psrlw xmm0, 3 / pshufd xmm0, xmm0, 0x1b
    ASSERT_EQ(run({0x66, 0x0f, 0x73, 0xd8, 0x03}), -1);
    EXPECT_TRUE(same(xmm(0), _mm_srli_si128(a, 3)));
    set_xmm(0, a);
    ASSERT_EQ(run({0x66, 0x0f, 0x73, 0xf8, 0x05}), -1);
    EXPECT_TRUE(same(xmm(0), _mm_slli_si128(a, 5)));
    set_xmm(0, a);
    ASSERT_EQ(run({0x66, 0x0f, 0x71, 0xd0, 0x03}), -1);
    EXPECT_TRUE(same(xmm(0), _mm_srli_epi16(a, 3)));
    set_xmm(1, a);
    ASSERT_EQ(run({0x66, 0x0f, 0x70, 0xc1, 0x1b}), -1);
    EXPECT_TRUE(same(xmm(0), _mm_shuffle_epi32(a, 0x1b)));
    ASSERT_EQ(run({0xf2, 0x0f, 0x70, 0xc1, 0x6c}), -1);
    EXPECT_TRUE(same(xmm(0), _mm_shufflelo_epi16(a, 0x6c)));
    ASSERT_EQ(run({0x0f, 0xc6, 0xc1, 0x4e}), -1);  // shufps xmm0, xmm1, 0x4e
    EXPECT_TRUE(
        same(xmm(0), _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(_mm_shufflelo_epi16(a, 0x6c)),
                                                     _mm_castsi128_ps(a), 0x4e))));
    set_xmm(1, a);
    ASSERT_EQ(run({0x66, 0x0f, 0xc5, 0xc1, 0x05}), -1);  // pextrw eax, xmm1, 5
    EXPECT_EQ(cpu_.gpr[0], static_cast<uint32_t>(_mm_extract_epi16(a, 5)));
  }
}

// Floating-point ops against the host on special and random inputs, including MXCSR flags,
// under every rounding mode.
TEST_F(FpuSseTest, SseFloatDifferential) {
  struct Case {
    std::vector<uint8_t> code;  // op xmm0, xmm1
    __m128i (*host)(__m128i, __m128i);
  };
  const Case cases[] = {
      {{0x0f, 0x58, 0xc1},
       [](__m128i a, __m128i b) {
         return _mm_castps_si128(_mm_add_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b)));
       }},
      {{0xf3, 0x0f, 0x5e, 0xc1},
       [](__m128i a, __m128i b) {
         return _mm_castps_si128(_mm_div_ss(_mm_castsi128_ps(a), _mm_castsi128_ps(b)));
       }},
      {{0x66, 0x0f, 0x59, 0xc1},
       [](__m128i a, __m128i b) {
         return _mm_castpd_si128(_mm_mul_pd(_mm_castsi128_pd(a), _mm_castsi128_pd(b)));
       }},
      {{0xf2, 0x0f, 0x5c, 0xc1},
       [](__m128i a, __m128i b) {
         return _mm_castpd_si128(_mm_sub_sd(_mm_castsi128_pd(a), _mm_castsi128_pd(b)));
       }},
      {{0xf2, 0x0f, 0x51, 0xc1},
       [](__m128i a, __m128i b) {
         return _mm_castpd_si128(_mm_sqrt_sd(_mm_castsi128_pd(a), _mm_castsi128_pd(b)));
       }},
      {{0x0f, 0x5d, 0xc1},
       [](__m128i a, __m128i b) {
         return _mm_castps_si128(_mm_min_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b)));
       }},
      {{0x66, 0x0f, 0x5f, 0xc1},
       [](__m128i a, __m128i b) {
         return _mm_castpd_si128(_mm_max_pd(_mm_castsi128_pd(a), _mm_castsi128_pd(b)));
       }},
      {{0x0f, 0xc2, 0xc1, 0x01},
       [](__m128i a, __m128i b) {
         return _mm_castps_si128(_mm_cmplt_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b)));
       }},
      {{0x0f, 0xc2, 0xc1, 0x03},
       [](__m128i a, __m128i b) {
         return _mm_castps_si128(_mm_cmpunord_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b)));
       }},
      {{0x66, 0x0f, 0xc2, 0xc1, 0x06},
       [](__m128i a, __m128i b) {
         return _mm_castpd_si128(_mm_cmpnle_pd(_mm_castsi128_pd(a), _mm_castsi128_pd(b)));
       }},
      {{0xf2, 0x0f, 0xc2, 0xc1, 0x04},
       [](__m128i a, __m128i b) {
         return _mm_castpd_si128(_mm_cmpneq_sd(_mm_castsi128_pd(a), _mm_castsi128_pd(b)));
       }},
      {{0x0f, 0x5a, 0xc1},
       [](__m128i, __m128i b) { return _mm_castpd_si128(_mm_cvtps_pd(_mm_castsi128_ps(b))); }},
      {{0x66, 0x0f, 0x5a, 0xc1},
       [](__m128i, __m128i b) { return _mm_castps_si128(_mm_cvtpd_ps(_mm_castsi128_pd(b))); }},
      {{0xf2, 0x0f, 0x5a, 0xc1},
       [](__m128i a, __m128i b) {
         return _mm_castps_si128(_mm_cvtsd_ss(_mm_castsi128_ps(a), _mm_castsi128_pd(b)));
       }},
      {{0x66, 0x0f, 0x5b, 0xc1},
       [](__m128i, __m128i b) { return _mm_cvtps_epi32(_mm_castsi128_ps(b)); }},
      {{0xf3, 0x0f, 0x5b, 0xc1},
       [](__m128i, __m128i b) { return _mm_cvttps_epi32(_mm_castsi128_ps(b)); }},
      {{0x0f, 0x5b, 0xc1}, [](__m128i, __m128i b) { return _mm_castps_si128(_mm_cvtepi32_ps(b)); }},
      {{0xf2, 0x0f, 0xe6, 0xc1},
       [](__m128i, __m128i b) { return _mm_cvtpd_epi32(_mm_castsi128_pd(b)); }},
      {{0x66, 0x0f, 0xe6, 0xc1},
       [](__m128i, __m128i b) { return _mm_cvttpd_epi32(_mm_castsi128_pd(b)); }},
  };
  const auto fl = float_inputs();
  const auto db = double_inputs();
  std::mt19937 rng(3);
  for (uint32_t rc = 0; rc < 4; ++rc) {
    for (uint32_t daz_ftz : {0u, 0x8040u}) {
      const uint32_t mxcsr = 0x1f80 | (rc << 13) | daz_ftz;
      for (size_t i = 0; i < fl.size(); ++i) {
        const bool as_double = i % 2;
        __m128i a, b;
        if (as_double) {
          a = _mm_set_epi64x(static_cast<long long>(db[rng() % db.size()]),
                             static_cast<long long>(db[i % db.size()]));
          b = _mm_set_epi64x(static_cast<long long>(db[rng() % db.size()]),
                             static_cast<long long>(db[rng() % db.size()]));
        } else {
          a = _mm_set_epi32(static_cast<int>(fl[rng() % fl.size()]), static_cast<int>(fl[i]),
                            static_cast<int>(fl[rng() % fl.size()]),
                            static_cast<int>(fl[rng() % fl.size()]));
          b = _mm_set_epi32(static_cast<int>(fl[rng() % fl.size()]),
                            static_cast<int>(fl[rng() % fl.size()]),
                            static_cast<int>(fl[rng() % fl.size()]), static_cast<int>(fl[i]));
        }
        for (const Case& c : cases) {
          set_xmm(0, a);
          set_xmm(1, b);
          cpu_.fpu.mxcsr = mxcsr;
          ASSERT_EQ(run(c.code), -1);
          __m128i expect;
          const uint32_t flags = on_host(mxcsr, [&] {
            __m128i x = a, y = b;
            asm volatile("" : "+x"(x), "+x"(y));
            expect = c.host(x, y);
            asm volatile("" : "+x"(expect));
          });
          ASSERT_TRUE(same(xmm(0), expect))
              << "opcode " << int(c.code[c.code.size() - 2]) << " input " << i;
          ASSERT_EQ(cpu_.fpu.mxcsr, mxcsr | flags) << "opcode " << int(c.code[c.code.size() - 2]);
        }
        // Scalar conversions to integers and COMISD/UCOMISS flags.
        set_xmm(1, b);
        cpu_.fpu.mxcsr = mxcsr;
        ASSERT_EQ(run({0xf2, 0x0f, 0x2c, 0xc1}), -1);  // cvttsd2si eax, xmm1
        int32_t host_i = 0;
        on_host(mxcsr, [&] {
          host_i = _mm_cvttsd_si32(_mm_castsi128_pd(b));
          asm volatile("" : "+r"(host_i));
        });
        EXPECT_EQ(static_cast<uint32_t>(cpu_.gpr[0]), static_cast<uint32_t>(host_i));
        ASSERT_EQ(run({0xf3, 0x0f, 0x2d, 0xc1}), -1);  // cvtss2si eax, xmm1
        on_host(mxcsr, [&] {
          host_i = _mm_cvtss_si32(_mm_castsi128_ps(b));
          asm volatile("" : "+r"(host_i));
        });
        EXPECT_EQ(static_cast<uint32_t>(cpu_.gpr[0]), static_cast<uint32_t>(host_i));
        set_xmm(0, a);
        ASSERT_EQ(run({0x66, 0x0f, 0x2f, 0xc1}), -1);  // comisd xmm0, xmm1
        const double da = _mm_cvtsd_f64(_mm_castsi128_pd(a)),
                     dbv = _mm_cvtsd_f64(_mm_castsi128_pd(b));
        // Relation as the host sees it under the same MXCSR (DAZ turns denormals into zero).
        int lt = 0, eq = 0;
        on_host(mxcsr, [&] {
          lt = _mm_comilt_sd(_mm_castsi128_pd(a), _mm_castsi128_pd(b));
          eq = _mm_comieq_sd(_mm_castsi128_pd(a), _mm_castsi128_pd(b));
          asm volatile("" : "+r"(lt), "+r"(eq));
        });
        const uint64_t expect_flags = std::isunordered(da, dbv)
                                          ? (flag::kZF | flag::kPF | flag::kCF)
                                      : lt ? flag::kCF
                                      : eq ? flag::kZF
                                           : 0;
        EXPECT_EQ(cpu_.flags() & flag::kArithmetic, expect_flags);
      }
    }
  }
}

TEST_F(FpuSseTest, SseGprConversionsAndMxcsr) {
  cpu_.gpr[0] = static_cast<uint32_t>(-7);
  EXPECT_EQ(run({0xf2, 0x0f, 0x2a, 0xc0}), -1);  // cvtsi2sd xmm0, eax
  double d;
  std::memcpy(&d, &cpu_.fpu.xmm[0][0], 8);
  EXPECT_EQ(d, -7.0);
  // Integer indefinite on overflow and NaN.
  const double big = 3e10;
  std::memcpy(&cpu_.fpu.xmm[1][0], &big, 8);
  EXPECT_EQ(run({0xf2, 0x0f, 0x2c, 0xc1}), -1);
  EXPECT_EQ(cpu_.gpr[0], 0x80000000u);
  EXPECT_TRUE(cpu_.fpu.mxcsr & 1);  // IE sticky
  // Rounding mode honoured: 2.5 rounds to 2 (nearest even) or 3 (up).
  const double two_and_half = 2.5;
  std::memcpy(&cpu_.fpu.xmm[1][0], &two_and_half, 8);
  cpu_.fpu.mxcsr = 0x1f80;
  EXPECT_EQ(run({0xf2, 0x0f, 0x2d, 0xc1}), -1);
  EXPECT_EQ(cpu_.gpr[0], 2u);
  cpu_.fpu.mxcsr = 0x1f80 | (2 << 13);
  EXPECT_EQ(run({0xf2, 0x0f, 0x2d, 0xc1}), -1);
  EXPECT_EQ(cpu_.gpr[0], 3u);
  // LDMXCSR / STMXCSR, reserved bits fault.
  put<uint32_t>(kData, 0x1f80 | 0x6000);
  EXPECT_EQ(run({0x0f, 0xae, 0x11}), -1);
  EXPECT_EQ(cpu_.fpu.mxcsr, 0x7f80u);
  EXPECT_EQ(run({0x0f, 0xae, 0x59, 0x04}), -1);  // stmxcsr [ecx+4]
  EXPECT_EQ(get<uint32_t>(kData + 4), 0x7f80u);
  put<uint32_t>(kData, 0x10000);
  EXPECT_EQ(run({0x0f, 0xae, 0x11}), kGeneralProtection);
  // Unmasked divide-by-zero: #XM, destination unchanged, flag set.
  cpu_.fpu.mxcsr = 0x1f80 & ~0x200u;
  set_xmm(0, _mm_castps_si128(_mm_set1_ps(1.0f)));
  set_xmm(1, _mm_setzero_si128());
  EXPECT_EQ(run({0x0f, 0x5e, 0xc1}), kSimdError);
  EXPECT_TRUE(same(xmm(0), _mm_castps_si128(_mm_set1_ps(1.0f))));
  EXPECT_TRUE(cpu_.fpu.mxcsr & 4);
  cpu_.cr4 = cr4::kOSFXSR;
  EXPECT_EQ(run({0x0f, 0x5e, 0xc1}), kInvalidOpcode);
}

long double st_value(Cpu& cpu, int i) {
  return cpu.fpu.st[((cpu.fpu.fsw >> 11) + i) & 7];
}

TEST_F(FpuSseTest, X87BasicArithmetic) {
  ASSERT_EQ(run({0xdb, 0xe3}), -1);  // fninit
  EXPECT_EQ(cpu_.fpu.fcw, 0x37f);
  put<double>(kData, 1.5);
  put<float>(kData + 8, 4.0f);
  EXPECT_EQ(run({0xdd, 0x01}), -1);        // fld qword [ecx]
  EXPECT_EQ(run({0xd9, 0x41, 0x08}), -1);  // fld dword [ecx+8]
  EXPECT_EQ(st_value(cpu_, 0), 4.0L);
  EXPECT_EQ(st_value(cpu_, 1), 1.5L);
  EXPECT_EQ(run({0xde, 0xf9}), -1);  // fdivp st1, st0: st1 = 1.5 / 4
  EXPECT_EQ(st_value(cpu_, 0), 0.375L);
  EXPECT_EQ(run({0xd9, 0xe8}), -1);  // fld1
  EXPECT_EQ(run({0xde, 0xe9}), -1);  // fsubp st1, st0: 0.375 - 1
  EXPECT_EQ(st_value(cpu_, 0), -0.625L);
  EXPECT_EQ(run({0xd9, 0xe1}), -1);  // fabs
  EXPECT_EQ(run({0xd9, 0xeb}), -1);  // fldpi
  long double host_pi;
  asm("fldpi" : "=t"(host_pi));
  EXPECT_EQ(st_value(cpu_, 0), host_pi);
  EXPECT_EQ(run({0xde, 0xc9}), -1);  // fmulp
  EXPECT_EQ(st_value(cpu_, 0), host_pi * 0.625L);
  EXPECT_EQ(run({0xd9, 0xfa}), -1);  // fsqrt
  EXPECT_EQ(st_value(cpu_, 0), sqrtl(host_pi * 0.625L));
  EXPECT_EQ(run({0xdd, 0x59, 0x10}), -1);  // fstp qword [ecx+0x10]
  EXPECT_EQ(get<double>(kData + 0x10), static_cast<double>(sqrtl(host_pi * 0.625L)));
  EXPECT_EQ((cpu_.fpu.fsw >> 11) & 7, 0);
  EXPECT_EQ(cpu_.fpu.ftw, 0);
  // fild / fistp with rounding control: 2.5 -> 2 (nearest), 3 (up via fldcw).
  put<int32_t>(kData, 5);
  EXPECT_EQ(run({0xdb, 0x01}), -1);  // fild dword [ecx]
  put<float>(kData, 0.5f);
  EXPECT_EQ(run({0xd8, 0x09}), -1);        // fmul dword [ecx]
  EXPECT_EQ(run({0xd9, 0xc0}), -1);        // fld st0
  EXPECT_EQ(run({0xdf, 0x59, 0x20}), -1);  // fistp word [ecx+0x20]
  EXPECT_EQ(get<int16_t>(kData + 0x20), 2);
  put<uint16_t>(kData + 0x30, 0x37f | 0x800);  // RC = up
  EXPECT_EQ(run({0xd9, 0x69, 0x30}), -1);      // fldcw [ecx+0x30]
  EXPECT_EQ(run({0xd9, 0xc0}), -1);
  EXPECT_EQ(run({0xdf, 0x79, 0x20}), -1);  // fistp qword [ecx+0x20]
  EXPECT_EQ(get<int64_t>(kData + 0x20), 3);
  EXPECT_EQ(run({0xdb, 0x49, 0x20}), -1);  // fisttp dword [ecx+0x20]
  EXPECT_EQ(get<int32_t>(kData + 0x20), 2);
  EXPECT_EQ(run({0xd9, 0x79, 0x24}), -1);  // fnstcw [ecx+0x24]
  EXPECT_EQ(get<uint16_t>(kData + 0x24), 0xb7f);
}

TEST_F(FpuSseTest, X87CompareStatusAndStackFaults) {
  ASSERT_EQ(run({0xdb, 0xe3}), -1);
  EXPECT_EQ(run({0xd9, 0xe8}), -1);  // fld1
  EXPECT_EQ(run({0xd9, 0xee}), -1);  // fldz: st0 = 0, st1 = 1
  EXPECT_EQ(run({0xdb, 0xf1}), -1);  // fcomi st0, st1: 0 < 1 -> CF
  EXPECT_EQ(cpu_.flags() & flag::kArithmetic, flag::kCF);
  EXPECT_EQ(run({0xd8, 0xd1}), -1);  // fcom st1 -> C0
  EXPECT_EQ(run({0xdf, 0xe0}), -1);  // fnstsw ax
  EXPECT_EQ(cpu_.gpr[0] & 0x4500, 0x100u);
  EXPECT_EQ(run({0xd9, 0xc9}), -1);  // fxch st1
  EXPECT_EQ(st_value(cpu_, 0), 1.0L);
  EXPECT_EQ(run({0xd9, 0xe5}), -1);  // fxam: normal positive -> C2
  EXPECT_EQ(cpu_.fpu.fsw & 0x4700, 0x400);
  EXPECT_EQ(run({0xde, 0xd9}), -1);  // fcompp: equal? 1 vs 0 -> greater, pops twice
  EXPECT_EQ(cpu_.fpu.fsw & 0x4500, 0);
  EXPECT_EQ(cpu_.fpu.ftw, 0);
  // Underflow: fadd with an empty stack gives the indefinite with IE|SF, masked.
  EXPECT_EQ(run({0xd8, 0xc1}), -1);
  EXPECT_EQ(cpu_.fpu.fsw & 0x41, 0x41);
  EXPECT_TRUE(std::isnan(st_value(cpu_, 0)));
  EXPECT_EQ(run({0xdb, 0xe2}), -1);  // fnclex
  EXPECT_EQ(cpu_.fpu.fsw & 0xff, 0);
  // Overflow: nine pushes.
  ASSERT_EQ(run({0xdb, 0xe3}), -1);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(run({0xd9, 0xe8}), -1);
  }
  EXPECT_EQ(cpu_.fpu.fsw & 0x241, 0);
  EXPECT_EQ(run({0xd9, 0xe8}), -1);
  EXPECT_EQ(cpu_.fpu.fsw & 0x241, 0x241);  // C1 | SF | IE
  // Unmasked invalid (IM clear): ES set, then the next waiting instruction raises #MF.
  ASSERT_EQ(run({0xdb, 0xe3}), -1);
  put<uint16_t>(kData, 0x37e);
  EXPECT_EQ(run({0xd9, 0x29}), -1);  // fldcw
  EXPECT_EQ(run({0xd9, 0xfa}), -1);  // fsqrt on empty -> unmasked stack fault
  EXPECT_TRUE(cpu_.fpu.fsw & 0x80);
  EXPECT_EQ(run({0xd9, 0xe8}), kFpuError);
  EXPECT_EQ(run({0x9b}), kFpuError);
  EXPECT_EQ(run({0xdb, 0xe2}), -1);  // fnclex is non-waiting
  EXPECT_EQ(run({0x9b}), -1);
}

TEST_F(FpuSseTest, FxsaveFxrstorAndFnsave) {
  ASSERT_EQ(run({0xdb, 0xe3}), -1);
  EXPECT_EQ(run({0xd9, 0xe8}), -1);  // fld1
  EXPECT_EQ(run({0xd9, 0xeb}), -1);  // fldpi
  cpu_.fpu.mxcsr = 0x1f81;
  for (int i = 0; i < 8; ++i) {
    cpu_.fpu.xmm[i] = {0x1111111111111111ull * i, ~0ull - i};
  }
  const FpuState before = cpu_.fpu;
  EXPECT_EQ(run({0x0f, 0xae, 0x01}), -1);  // fxsave [ecx]
  EXPECT_EQ(get<uint16_t>(kData), 0x37f);
  EXPECT_EQ(get<uint16_t>(kData + 2), cpu_.fpu.fsw);
  EXPECT_EQ(get<uint8_t>(kData + 4), 0xc0);  // R6, R7 valid
  EXPECT_EQ(get<uint32_t>(kData + 24), 0x1f81u);
  EXPECT_EQ(get<uint32_t>(kData + 28), 0xffffu);
  long double pi;
  asm("fldpi" : "=t"(pi));
  long double saved_st0 = 0;
  for (int i = 0; i < 10; ++i) {
    reinterpret_cast<uint8_t*>(&saved_st0)[i] = get<uint8_t>(kData + 32 + i);
  }
  EXPECT_EQ(saved_st0, pi);
  EXPECT_EQ(get<uint64_t>(kData + 160 + 16 * 3), 0x3333333333333333u);
  ASSERT_EQ(run({0xdb, 0xe3}), -1);
  cpu_.fpu.xmm = {};
  cpu_.fpu.mxcsr = 0x1f80;
  EXPECT_EQ(run({0x0f, 0xae, 0x09}), -1);  // fxrstor [ecx]
  EXPECT_EQ(cpu_.fpu.fsw, before.fsw);
  EXPECT_EQ(cpu_.fpu.ftw, before.ftw);
  EXPECT_EQ(cpu_.fpu.mxcsr, 0x1f81u);
  EXPECT_EQ(st_value(cpu_, 0), pi);
  EXPECT_EQ(st_value(cpu_, 1), 1.0L);
  EXPECT_EQ(cpu_.fpu.xmm[5], before.xmm[5]);
  cpu_.gpr[1] = kData + 8;
  EXPECT_EQ(run({0x0f, 0xae, 0x01}), kGeneralProtection);  // misaligned
  cpu_.gpr[1] = kData;
  put<uint32_t>(kData + 24, 0x12345678);
  EXPECT_EQ(run({0x0f, 0xae, 0x09}), kGeneralProtection);  // reserved MXCSR bits
  // FNSAVE stores then reinitialises; FRSTOR brings it back.
  EXPECT_EQ(run({0xdd, 0x71, 0x00}), -1);  // fnsave [ecx]
  EXPECT_EQ(cpu_.fpu.ftw, 0);
  EXPECT_EQ(get<uint16_t>(kData + 8) >> 12, 0u);        // R6 valid (00), R7 valid (00)
  EXPECT_EQ(get<uint16_t>(kData + 8) & 0xfff, 0xfffu);  // R0-R5 empty
  EXPECT_EQ(run({0xdd, 0x61, 0x00}), -1);               // frstor [ecx]
  EXPECT_EQ(st_value(cpu_, 0), pi);
  EXPECT_EQ(cpu_.fpu.ftw, 0xc0);
}

}  // namespace
}  // namespace hv::emu
