// The system side of the software CPU: segment loads, interrupt delivery in every mode with
// double and triple fault, control registers, MSRs, CPUID and the fast system calls.
#include <gtest/gtest.h>

#include <optional>

#include "emu/cpu.hpp"
#include "emu/cpuid.hpp"
#include "emu/decoder.hpp"
#include "emu/ops_system.hpp"

namespace hv::emu {
namespace {

constexpr uint64_t kMemory = 16ull << 20;
constexpr uint64_t kGdt = 0x1000, kIdt = 0x2000, kTss = 0x3000;

// Flat descriptors.
constexpr uint64_t kCode32R0 = 0x00cf9b000000ffff, kData32R0 = 0x00cf93000000ffff,
                   kCode32R3 = 0x00cffb000000ffff, kData32R3 = 0x00cff3000000ffff,
                   kCode64R0 = 0x00af9b000000ffff, kCode64R3 = 0x00affb000000ffff,
                   kDataNotPresent = 0x00cf13000000ffff;

class SystemCpuTest : public ::testing::Test {
 protected:
  SystemCpuTest()
      : machine_(std::move(*Machine::create({.memory_bytes = kMemory, .cpu_count = 2}))),
        pages_(kMemory),
        cpu_(*machine_, pages_, 0) {
    // GDT: 0x08 code32 r0, 0x10 data r0, 0x18 code32 r3, 0x20 data r3, 0x28 code64 r0,
    // 0x30 data r3, 0x38 code64 r3, 0x40 TSS (16 bytes), 0x50 not-present data.
    const uint64_t gdt[] = {0,         kCode32R0, kData32R0, kCode32R3, kData32R3,      kCode64R0,
                            kData32R3, kCode64R3, 0,         0,         kDataNotPresent};
    for (size_t i = 0; i < std::size(gdt); ++i) {
      put64(kGdt + i * 8, gdt[i]);
    }
    cpu_.gdtr_base = kGdt;
    cpu_.gdtr_limit = 0xff;
    cpu_.idtr_base = kIdt;
    cpu_.idtr_limit = 0xfff;
  }

  GuestMemory& memory() { return machine_->memory(); }
  void put64(uint64_t pa, uint64_t v) { ASSERT_TRUE(memory().write_object(pa, v).ok()); }
  void put32(uint64_t pa, uint32_t v) { ASSERT_TRUE(memory().write_object(pa, v).ok()); }
  void put16(uint64_t pa, uint16_t v) { ASSERT_TRUE(memory().write_object(pa, v).ok()); }
  uint64_t get64(uint64_t pa) { return *memory().read_object<uint64_t>(pa); }
  uint32_t get32(uint64_t pa) { return *memory().read_object<uint32_t>(pa); }
  uint16_t get16(uint64_t pa) { return *memory().read_object<uint16_t>(pa); }

  SegmentCache cache(uint16_t selector, uint64_t descriptor) {
    SegmentCache c = cache_from_descriptor(selector, descriptor);
    c.attributes |= 1;
    return c;
  }

  // 32-bit protected mode, no paging, ring `ring`.
  void enter_protected(uint8_t ring) {
    cpu_.cr0 = cr0::kPE | cr0::kET;
    cpu_.seg[kCs] = ring == 0 ? cache(0x08, kCode32R0) : cache(0x1b, kCode32R3);
    for (uint8_t s : {kDs, kEs, kSs, kFs, kGs}) {
      cpu_.seg[s] = ring == 0 ? cache(0x10, kData32R0) : cache(0x23, kData32R3);
    }
    cpu_.update_mode();
  }

  // 32-bit TSS at kTss with SS0:ESP0.
  void set_tss32(uint16_t ss0, uint32_t esp0) {
    put32(kTss + 4, esp0);
    put32(kTss + 8, ss0);
    cpu_.tr = SegmentCache{kTss, 0x67, 0x40, 0x8b};
  }

  void set_gate32(uint8_t vector, uint16_t selector, uint32_t offset, uint8_t type, uint8_t dpl) {
    const uint64_t g = (offset & 0xffff) | (uint64_t{selector} << 16) |
                       (uint64_t{0x80u | (dpl << 5) | type} << 40) | (uint64_t{offset >> 16} << 48);
    put64(kIdt + vector * 8u, g);
  }

  // Long mode with the first 2 MiB identity-mapped (user-accessible), ring `ring`.
  void enter_long_mode(uint8_t ring) {
    put64(0x10000, 0x11000 | 7);
    put64(0x11000, 0x12000 | 7);
    put64(0x12000, 0x87);  // 2 MiB page, present, writable, user
    cpu_.cr3 = 0x10000;
    cpu_.cr4 = cr4::kPAE;
    cpu_.efer = efer::kLME | efer::kLMA | efer::kSCE;
    cpu_.cr0 = cr0::kPE | cr0::kPG | cr0::kET;
    cpu_.seg[kCs] = ring == 0 ? cache(0x28, kCode64R0) : cache(0x3b, kCode64R3);
    for (uint8_t s : {kDs, kEs, kSs, kFs, kGs}) {
      cpu_.seg[s] = ring == 0 ? cache(0x10, kData32R0) : cache(0x33, kData32R3);
    }
    cpu_.update_mode();
    cpu_.flush_tlb(true);
    cpu_.tr = SegmentCache{kTss, 0x67, 0x40, 0x8b};
  }

  void set_gate64(uint8_t vector, uint64_t offset, uint8_t type, uint8_t dpl, uint8_t ist) {
    const uint64_t low = (offset & 0xffff) | (uint64_t{0x28} << 16) | (uint64_t{ist} << 32) |
                         (uint64_t{0x80u | (dpl << 5) | type} << 40) |
                         (((offset >> 16) & 0xffff) << 48);
    put64(kIdt + vector * 16u, low);
    put64(kIdt + vector * 16u + 8, offset >> 32);
  }

  // Decodes `bytes` at cpu.rip and runs the instruction; returns the fault if it raised one.
  std::optional<GuestFault> run(std::initializer_list<uint8_t> bytes) {
    Decoder decoder(cpu_.code_size());
    Insn insn;
    std::vector<uint8_t> b(bytes);
    EXPECT_TRUE(decoder.decode(b, insn));
    cpu_.next_rip = cpu_.rip + insn.length;
    try {
      insn.handler(cpu_, insn);
    } catch (const GuestFault& f) {
      return f;
    }
    cpu_.rip = cpu_.next_rip;
    return std::nullopt;
  }

  template <typename F>
  std::optional<GuestFault> fault_of(F&& f) {
    try {
      f();
    } catch (const GuestFault& fault) {
      return fault;
    }
    return std::nullopt;
  }

  std::unique_ptr<Machine> machine_;
  CodePages pages_;
  Cpu cpu_;
};

// --- segments ---

TEST_F(SystemCpuTest, SegmentNullSsFaults) {
  enter_protected(0);
  auto f = fault_of([&] { cpu_.load_segment(kSs, 0); });
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, kGeneralProtection);
  EXPECT_EQ(f->error_code, 0u);
}

TEST_F(SystemCpuTest, SegmentDplMismatchFaultsWithSelector) {
  enter_protected(3);
  auto f = fault_of([&] { cpu_.load_segment(kDs, 0x13); });  // ring-0 data from ring 3
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, kGeneralProtection);
  EXPECT_EQ(f->error_code, 0x10u);
  f = fault_of([&] { cpu_.load_segment(kSs, 0x10); });  // RPL != CPL
  ASSERT_TRUE(f);
  EXPECT_EQ(f->error_code, 0x10u);
  f = fault_of([&] { cpu_.load_segment(kDs, 0x1b); });  // non-conforming code is not readable?
  EXPECT_FALSE(f);                                      // readable ring-3 code is fine for DS
}

TEST_F(SystemCpuTest, SegmentNotPresentRaisesNp) {
  enter_protected(0);
  auto f = fault_of([&] { cpu_.load_segment(kDs, 0x50); });
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, kSegmentNotPresent);
  EXPECT_EQ(f->error_code, 0x50u);
  f = fault_of([&] { cpu_.load_segment(kDs, 0x400); });  // beyond the GDT limit
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, kGeneralProtection);
  EXPECT_EQ(f->error_code, 0x400u);
}

TEST_F(SystemCpuTest, SegmentLoadFillsCacheAndSetsAccessed) {
  enter_protected(0);
  cpu_.load_segment(kEs, 0x10);
  EXPECT_EQ(cpu_.seg[kEs].base, 0u);
  EXPECT_EQ(cpu_.seg[kEs].limit, 0xffffffffu);
  EXPECT_EQ(cpu_.seg[kEs].selector, 0x10);
  EXPECT_TRUE(get64(kGdt + 0x10) & (1ull << 40));
  cpu_.load_segment(kFs, 0);  // null data segment is allowed
  EXPECT_FALSE(cpu_.seg[kFs].present());
}

TEST_F(SystemCpuTest, SegmentRealModeShiftsSelector) {
  cpu_.load_segment(kDs, 0x1234);
  EXPECT_EQ(cpu_.seg[kDs].base, 0x12340u);
}

// --- interrupts ---

TEST_F(SystemCpuTest, InterruptRealModeUsesIvt) {
  cpu_.idtr_base = 0;
  cpu_.idtr_limit = 0x3ff;
  put32(0x10 * 4, 0x12345678);  // 1234:5678
  cpu_.load_segment(kSs, 0);
  cpu_.gpr[kRsp] = 0x1000;
  cpu_.seg[kCs].selector = 0x0100;
  cpu_.seg[kCs].base = 0x1000;
  cpu_.rflags |= flag::kIF | flag::kTF;
  cpu_.rip = 0x20;
  cpu_.next_rip = 0x22;
  cpu_.deliver_interrupt(0x10, false, 0, /*software=*/true, false);
  EXPECT_EQ(cpu_.seg[kCs].selector, 0x1234);
  EXPECT_EQ(cpu_.seg[kCs].base, 0x12340u);
  EXPECT_EQ(cpu_.rip, 0x5678u);
  EXPECT_EQ(cpu_.gpr[kRsp], 0xffau);
  EXPECT_EQ(get16(0xffa), 0x22);   // IP after INT
  EXPECT_EQ(get16(0xffc), 0x100);  // CS
  EXPECT_TRUE(get16(0xffe) & flag::kIF);
  EXPECT_FALSE(cpu_.rflags & (flag::kIF | flag::kTF));
}

TEST_F(SystemCpuTest, InterruptProtected32SamePrivilege) {
  enter_protected(0);
  set_gate32(13, 0x08, 0x4000, 0xe, 0);
  cpu_.gpr[kRsp] = 0x8000;
  cpu_.rflags |= flag::kIF;
  cpu_.rip = 0x1234;
  cpu_.deliver_interrupt(kGeneralProtection, true, 0x18, false, false);
  EXPECT_EQ(cpu_.rip, 0x4000u);
  EXPECT_EQ(cpu_.gpr[kRsp], 0x8000u - 16);
  EXPECT_EQ(get32(0x8000 - 16), 0x18u);    // error code
  EXPECT_EQ(get32(0x8000 - 12), 0x1234u);  // faulting EIP
  EXPECT_EQ(get32(0x8000 - 8), 0x08u);
  EXPECT_TRUE(get32(0x8000 - 4) & flag::kIF);
  EXPECT_FALSE(cpu_.rflags & flag::kIF);
}

TEST_F(SystemCpuTest, InterruptProtected32Ring3ToRing0SwitchesStack) {
  enter_protected(3);
  set_tss32(0x10, 0x8000);
  set_gate32(0x80, 0x08, 0x5000, 0xf, 3);  // trap gate callable from ring 3
  cpu_.gpr[kRsp] = 0x9000;
  cpu_.rflags |= flag::kIF;
  cpu_.rip = 0x700;
  ASSERT_FALSE(run({0xcd, 0x80}));
  EXPECT_EQ(cpu_.cpl, 0);
  EXPECT_EQ(cpu_.rip, 0x5000u);
  EXPECT_EQ(cpu_.seg[kSs].selector, 0x10);
  EXPECT_EQ(cpu_.gpr[kRsp], 0x8000u - 20);
  EXPECT_EQ(get32(0x8000 - 20), 0x702u);  // return past INT 0x80
  EXPECT_EQ(get32(0x8000 - 16), 0x1bu);
  EXPECT_EQ(get32(0x8000 - 8), 0x9000u);
  EXPECT_EQ(get32(0x8000 - 4), 0x23u);
  EXPECT_TRUE(cpu_.rflags & flag::kIF);  // trap gate keeps IF
}

TEST_F(SystemCpuTest, InterruptSoftwareGateDplFaults) {
  enter_protected(3);
  set_tss32(0x10, 0x8000);
  set_gate32(0x81, 0x08, 0x5000, 0xe, 0);  // DPL 0: INT from ring 3 → #GP(vector*8+2)
  set_gate32(13, 0x08, 0x6000, 0xe, 0);
  cpu_.gpr[kRsp] = 0x9000;
  cpu_.rip = 0x700;
  ASSERT_FALSE(run({0xcd, 0x81}));
  EXPECT_EQ(cpu_.rip, 0x6000u);
  EXPECT_EQ(get32(0x8000 - 24), 0x81u * 8 + 2);
  EXPECT_EQ(get32(0x8000 - 20), 0x700u);  // the #GP points at the INT itself
}

TEST_F(SystemCpuTest, InterruptLongModeIstAligned) {
  enter_long_mode(0);
  put64(kTss + 0x24, 0xa008);  // IST1, deliberately misaligned
  set_gate64(2, 0x4000, 0xe, 0, 1);
  cpu_.gpr[kRsp] = 0x8000;
  cpu_.rip = 0x1000;
  cpu_.deliver_interrupt(kNmi, false, 0, false, true);
  EXPECT_EQ(cpu_.rip, 0x4000u);
  EXPECT_EQ(cpu_.gpr[kRsp], 0xa000u - 40);
  EXPECT_EQ(get64(0xa000 - 40), 0x1000u);
  EXPECT_EQ(get64(0xa000 - 32), 0x28u);
  EXPECT_EQ(get64(0xa000 - 16), 0x8000u);
  EXPECT_EQ(get64(0xa000 - 8), 0x10u);
}

TEST_F(SystemCpuTest, InterruptLongModeInt80FromRing3UsesRsp0AndIretqReturns) {
  enter_long_mode(3);
  put64(kTss + 4, 0x8000);  // RSP0
  set_gate64(0x80, 0x4000, 0xe, 3, 0);
  cpu_.gpr[kRsp] = 0x9000;
  cpu_.rflags |= flag::kIF;
  cpu_.rip = 0x1000;
  ASSERT_FALSE(run({0xcd, 0x80}));
  EXPECT_EQ(cpu_.cpl, 0);
  EXPECT_EQ(cpu_.seg[kCs].selector, 0x28);
  EXPECT_EQ(cpu_.seg[kSs].selector, 0);
  EXPECT_EQ(cpu_.rip, 0x4000u);
  EXPECT_EQ(cpu_.gpr[kRsp], 0x8000u - 40);
  EXPECT_EQ(get64(0x8000 - 40), 0x1002u);
  EXPECT_EQ(get64(0x8000 - 32), 0x3bu);
  EXPECT_EQ(get64(0x8000 - 16), 0x9000u);
  EXPECT_EQ(get64(0x8000 - 8), 0x33u);
  EXPECT_FALSE(cpu_.rflags & flag::kIF);

  ASSERT_FALSE(run({0x48, 0xcf}));  // IRETQ
  EXPECT_EQ(cpu_.cpl, 3);
  EXPECT_EQ(cpu_.seg[kCs].selector, 0x3b);
  EXPECT_EQ(cpu_.seg[kSs].selector, 0x33);
  EXPECT_EQ(cpu_.gpr[kRsp], 0x9000u);
  EXPECT_EQ(cpu_.rip, 0x1002u);
  EXPECT_TRUE(cpu_.rflags & flag::kIF);
  EXPECT_EQ(cpu_.code_size(), 8);
}

TEST_F(SystemCpuTest, InterruptContributoryPairEscalatesToDoubleFault) {
  enter_protected(0);
  // #GP's gate is not present (#NP, contributory): #GP + #NP → #DF.
  put64(kIdt + 13 * 8, 0);
  set_gate32(kDoubleFault, 0x08, 0x7000, 0xe, 0);
  cpu_.gpr[kRsp] = 0x8000;
  cpu_.rip = 0x100;
  cpu_.deliver_interrupt(kGeneralProtection, true, 0, false, false);
  EXPECT_FALSE(cpu_.triple_faulted);
  EXPECT_EQ(cpu_.rip, 0x7000u);
  EXPECT_EQ(get32(0x8000 - 16), 0u);  // #DF error code
}

TEST_F(SystemCpuTest, InterruptBenignThenContributoryIsSerial) {
  enter_protected(0);
  set_gate32(6, 0x08, 0x7000, 0xe, 0);
  put64(kIdt + 6 * 8, get64(kIdt + 6 * 8) & ~(1ull << 47));  // #UD gate not present
  // → #NP(6*8+2+EXT), delivered normally since #UD is benign.
  set_gate32(kSegmentNotPresent, 0x08, 0x7100, 0xe, 0);
  cpu_.gpr[kRsp] = 0x8000;
  cpu_.deliver_interrupt(kInvalidOpcode, false, 0, false, false);
  EXPECT_EQ(cpu_.rip, 0x7100u);
  EXPECT_EQ(get32(0x8000 - 16), 6u * 8 + 3);
}

TEST_F(SystemCpuTest, InterruptTripleFault) {
  enter_protected(0);
  cpu_.idtr_limit = 0;  // every gate is beyond the limit
  cpu_.rip = 0x100;
  cpu_.deliver_interrupt(kPageFault, true, 2, false, false);
  EXPECT_TRUE(cpu_.triple_faulted);
  EXPECT_EQ(cpu_.rip, 0x100u);
}

TEST_F(SystemCpuTest, InterruptPageFaultOnStackEscalates) {
  enter_long_mode(0);
  set_gate64(14, 0x4000, 0xe, 0, 0);
  set_gate64(kDoubleFault, 0x4800, 0xe, 0, 1);
  put64(kTss + 0x24, 0x6000);
  cpu_.gpr[kRsp] = 0x400000;  // unmapped: pushing the #PF frame faults again (#PF + #PF)
  cpu_.deliver_interrupt(kPageFault, true, 0, false, false);
  EXPECT_FALSE(cpu_.triple_faulted);
  EXPECT_EQ(cpu_.rip, 0x4800u);
  EXPECT_EQ(cpu_.gpr[kRsp], 0x6000u - 48);
}

// --- control registers and MSRs ---

TEST_F(SystemCpuTest, SystemCr0EnablesLongMode) {
  enter_protected(0);
  put64(0x10000, 0x11000 | 7);
  put64(0x11000, 0x12000 | 7);
  put64(0x12000, 0x87);
  cpu_.write_cr3(0x10000);
  cpu_.write_efer(efer::kLME);
  auto f = fault_of([&] { cpu_.write_cr0(cpu_.cr0 | cr0::kPG); });  // no PAE
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, kGeneralProtection);
  cpu_.write_cr4(cr4::kPAE);
  cpu_.write_cr0(cpu_.cr0 | cr0::kPG);
  EXPECT_TRUE(cpu_.long_mode());
  EXPECT_EQ(cpu_.code_size(), 4);  // compatibility mode until a 64-bit CS is loaded
  // LME cannot change while paging is on; LMA is read-only.
  EXPECT_TRUE(fault_of([&] { cpu_.write_efer(0); }));
  cpu_.write_efer(efer::kLME | efer::kNXE);
  EXPECT_TRUE(cpu_.efer & efer::kLMA);
  // Far jump to the 64-bit code segment.
  cpu_.rip = 0x1000;
  ASSERT_FALSE(run({0xea, 0x00, 0x20, 0x00, 0x00, 0x28, 0x00}));  // jmp 0x28:0x2000
  EXPECT_EQ(cpu_.code_size(), 8);
  EXPECT_EQ(cpu_.rip, 0x2000u);
  // Paging cannot be switched off from 64-bit code.
  EXPECT_TRUE(fault_of([&] { cpu_.write_cr0(cpu_.cr0 & ~cr0::kPG); }));
}

TEST_F(SystemCpuTest, SystemCr0ReservedCombinationsFault) {
  EXPECT_TRUE(fault_of([&] { cpu_.write_cr0(cr0::kPG); }));             // PG without PE
  EXPECT_TRUE(fault_of([&] { cpu_.write_cr0(cr0::kPE | cr0::kNW); }));  // NW without CD
  EXPECT_TRUE(fault_of([&] { cpu_.write_cr0(1ull << 32); }));
  EXPECT_TRUE(fault_of([&] { cpu_.write_cr4(1u << 20); }));  // SMEP not offered
  cpu_.write_cr0(cr0::kPE);
  EXPECT_TRUE(cpu_.protected_mode());
}

TEST_F(SystemCpuTest, SystemMovCrFromRing3Faults) {
  enter_protected(3);
  cpu_.rip = 0x100;
  auto f = run({0x0f, 0x22, 0xc0});  // mov cr0, eax
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, kGeneralProtection);
}

TEST_F(SystemCpuTest, MsrReadWrite) {
  uint64_t v = 0;
  EXPECT_TRUE(cpu_.write_msr(0xc0000081, 0x0023001000000000));
  EXPECT_TRUE(cpu_.read_msr(0xc0000081, v));
  EXPECT_EQ(v, 0x0023001000000000u);
  EXPECT_FALSE(cpu_.write_msr(0xc0000082, 0x8000000000000000));  // LSTAR non-canonical
  EXPECT_TRUE(cpu_.write_msr(0xc0000100, 0x7000));
  EXPECT_EQ(cpu_.seg[kFs].base, 0x7000u);
  EXPECT_FALSE(cpu_.read_msr(0x12345, v));
  // SPEC_CTRL holds IBRS only; PRED_CMD takes IBPB and cannot be read; ARCH_CAPABILITIES is
  // read-only and says the CPU is immune to Meltdown, MDS and the rest.
  EXPECT_TRUE(cpu_.write_msr(0x48, 1));
  EXPECT_TRUE(cpu_.read_msr(0x48, v));
  EXPECT_EQ(v, 1u);
  EXPECT_FALSE(cpu_.write_msr(0x48, 4));  // SSBD: not advertised
  EXPECT_TRUE(cpu_.write_msr(0x49, 1));
  EXPECT_FALSE(cpu_.write_msr(0x49, 2));
  EXPECT_FALSE(cpu_.read_msr(0x49, v));
  EXPECT_TRUE(cpu_.read_msr(0x10a, v));
  EXPECT_EQ(v & 0x21, 0x21u);  // RDCL_NO and MDS_NO
  EXPECT_FALSE(cpu_.write_msr(0x10a, 0));
  EXPECT_TRUE(cpu_.write_msr(0x2ff, 0xc06));
  EXPECT_TRUE(cpu_.read_msr(0x2ff, v));
  EXPECT_EQ(v, 0xc06u);
  EXPECT_TRUE(cpu_.read_msr(0xfe, v));
  EXPECT_EQ(v & 0xff, 8u);
  EXPECT_FALSE(cpu_.write_msr(0x277, 0x02));  // PAT type 2 is reserved
  EXPECT_TRUE(cpu_.write_msr(0x10, 1'000'000));
  EXPECT_TRUE(cpu_.read_msr(0x10, v));
  EXPECT_GE(v, 1'000'000u);
  EXPECT_LT(v, 1'000'000u + kTscHz);  // less than a second later
}

TEST_F(SystemCpuTest, TscAdjustFollowsTscWritesAndMovesTheTsc) {
  uint64_t adjust = 0, tsc = 0;
  ASSERT_TRUE(cpu_.read_msr(0x3b, adjust));
  EXPECT_EQ(adjust, 0u);
  // Moving the TSC back by 10^12 ticks shows in TSC_ADJUST, plus the ticks between the read
  // and the write.
  ASSERT_TRUE(cpu_.read_msr(0x10, tsc));
  ASSERT_TRUE(cpu_.write_msr(0x10, tsc - 1'000'000'000'000));
  ASSERT_TRUE(cpu_.read_msr(0x3b, adjust));
  EXPECT_LE(static_cast<int64_t>(adjust), -1'000'000'000'000);
  EXPECT_GT(static_cast<int64_t>(adjust), -1'000'000'000'000 - static_cast<int64_t>(kTscHz));
  // Writing TSC_ADJUST back to 0 undoes the move.
  ASSERT_TRUE(cpu_.write_msr(0x3b, 0));
  uint64_t after = 0;
  ASSERT_TRUE(cpu_.read_msr(0x10, after));
  EXPECT_GE(after, tsc);
  EXPECT_LT(after - tsc, 1'000'000'000u);  // less than half a second of 2 GHz ticks later
}

TEST_F(SystemCpuTest, MsrRdmsrUnknownRaisesGp) {
  enter_protected(0);
  cpu_.gpr[kRcx] = 0x12345;
  auto f = run({0x0f, 0x32});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, kGeneralProtection);
  cpu_.gpr[kRcx] = 0xc0000080;
  cpu_.gpr[kRax] = efer::kSCE;
  cpu_.gpr[kRdx] = 0;
  ASSERT_FALSE(run({0x0f, 0x30}));
  EXPECT_EQ(cpu_.efer, efer::kSCE);
}

// --- CPUID ---

TEST_F(SystemCpuTest, CpuidVendorAndFeatures) {
  uint32_t a, b, c, d;
  cpuid(cpu_, 0, 0, a, b, c, d);
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  EXPECT_STREQ(vendor, "GenuineIntel");
  cpuid(cpu_, 1, 0, a, b, c, d);
  EXPECT_EQ((a >> 8) & 0xf, 6u);
  EXPECT_TRUE(d & cpuid_bits::kSse2);
  EXPECT_TRUE(d & cpuid_bits::kHtt);  // two CPUs
  EXPECT_EQ((b >> 16) & 0xff, 2u);
  EXPECT_TRUE(c & cpuid_bits::kHypervisor);
  EXPECT_FALSE(c & 1u);  // no SSE3
  cpuid(cpu_, 0x80000001, 0, a, b, c, d);
  EXPECT_TRUE(d & cpuid_bits::kLm);
  EXPECT_TRUE(d & cpuid_bits::kNx);
  cpuid(cpu_, 0x40000000, 0, a, b, c, d);
  EXPECT_EQ(b, 0x76687668u);  // "hvhv"
  cpuid(cpu_, 0x80000002, 0, a, b, c, d);
  char brand[5] = {};
  std::memcpy(brand, &a, 4);
  EXPECT_STREQ(brand, "hv e");
  cpuid(cpu_, 0xb, 1, a, b, c, d);
  EXPECT_EQ(b, 2u);
}

// --- fast system calls ---

TEST_F(SystemCpuTest, SystemSyscallSysret) {
  enter_long_mode(3);
  cpu_.msr.star = (uint64_t{0x23} << 48) | (uint64_t{0x28} << 32);
  cpu_.msr.lstar = 0xffffffff81000000;
  cpu_.msr.sfmask = flag::kIF | flag::kDF;
  cpu_.rflags |= flag::kIF | flag::kDF;
  cpu_.rip = 0x1000;
  ASSERT_FALSE(run({0x0f, 0x05}));
  EXPECT_EQ(cpu_.gpr[kRcx], 0x1002u);
  EXPECT_TRUE(cpu_.gpr[kR11] & flag::kIF);
  EXPECT_FALSE(cpu_.rflags & (flag::kIF | flag::kDF));
  EXPECT_EQ(cpu_.seg[kCs].selector, 0x28);
  EXPECT_EQ(cpu_.seg[kSs].selector, 0x30);
  EXPECT_EQ(cpu_.cpl, 0);
  EXPECT_EQ(cpu_.rip, 0xffffffff81000000u);

  cpu_.rip = 0x2000;                            // pretend the kernel runs here
  ASSERT_FALSE(run({0x48, 0x0f, 0x07}));        // SYSRETQ
  EXPECT_EQ(cpu_.seg[kCs].selector, 0x33 + 0);  // STAR[63:48] + 16 | 3
  EXPECT_EQ(cpu_.seg[kSs].selector, 0x2b);
  EXPECT_EQ(cpu_.cpl, 3);
  EXPECT_EQ(cpu_.rip, 0x1002u);
  EXPECT_TRUE(cpu_.rflags & flag::kIF);
  EXPECT_EQ(cpu_.code_size(), 8);
}

TEST_F(SystemCpuTest, SystemIoAndInterruptFlagPrivilege) {
  enter_protected(3);
  cpu_.rip = 0x100;
  auto f = run({0xfa});  // CLI at CPL 3, IOPL 0
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, kGeneralProtection);
  f = run({0xe4, 0x60});  // IN AL, 0x60 without a TSS bitmap
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, kGeneralProtection);
  // A TSS whose I/O bitmap allows port 0x60 only.
  cpu_.tr = SegmentCache{kTss, 0x2000, 0x40, 0x8b};
  put16(kTss + 0x66, 0x68);
  for (uint32_t i = 0; i < 0x2000 / 8; i += 8) {
    put64(kTss + 0x68 + i, ~0ull);
  }
  ASSERT_TRUE(memory().write_object<uint8_t>(kTss + 0x68 + 0x60 / 8, 0xfe).ok());
  EXPECT_TRUE(cpu_.io_permitted(0x60, 1));
  EXPECT_FALSE(cpu_.io_permitted(0x60, 2));
  EXPECT_FALSE(cpu_.io_permitted(0x61, 1));
  cpu_.rflags |= flag::kIOPL;
  EXPECT_FALSE(run({0xfa}));
  EXPECT_FALSE(cpu_.rflags & flag::kIF);
}

TEST_F(SystemCpuTest, SystemPopfRespectsPrivilege) {
  enter_protected(3);
  cpu_.gpr[kRsp] = 0x9000;
  put32(0x9000 - 4, static_cast<uint32_t>(flag::kIF | flag::kIOPL | flag::kCF | 2));
  cpu_.gpr[kRsp] = 0x9000 - 4;
  cpu_.rip = 0x100;
  ASSERT_FALSE(run({0x9d}));  // POPFD at CPL 3, IOPL 0: IF and IOPL unchanged
  EXPECT_FALSE(cpu_.rflags & flag::kIF);
  EXPECT_FALSE(cpu_.rflags & flag::kIOPL);
  EXPECT_TRUE(cpu_.flags() & flag::kCF);
  EXPECT_EQ(cpu_.gpr[kRsp], 0x9000u);
}

TEST_F(SystemCpuTest, SystemHltNeedsRing0) {
  cpu_.rip = 0x100;
  ASSERT_FALSE(run({0xf4}));
  EXPECT_TRUE(cpu_.halted);
}

}  // namespace
}  // namespace hv::emu
