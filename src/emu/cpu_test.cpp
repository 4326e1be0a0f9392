// The software CPU's memory path: page walks in every paging mode, permission faults with their
// error codes, accessed/dirty bits, the TLB, MMIO, segment limits and code-page invalidation.
#include "emu/cpu.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace hv::emu {
namespace {

class RecordingMmio final : public IoDevice {
 public:
  std::string_view name() const override { return "mmio"; }
  void read(uint64_t offset, std::span<uint8_t> data) override {
    set_io_value(data, 0xabcd0000 | offset);
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    writes.push_back({offset, io_value(data)});
  }
  std::vector<std::pair<uint64_t, uint64_t>> writes;
};

constexpr uint64_t kMemory = 16ull << 20;

class EmuCpuTest : public ::testing::Test {
 protected:
  EmuCpuTest()
      : machine_(std::move(*Machine::create({.memory_bytes = kMemory}))),
        pages_(kMemory),
        cpu_(*machine_, pages_, 0) {}

  GuestMemory& memory() { return machine_->memory(); }
  void put64(uint64_t pa, uint64_t v) { ASSERT_TRUE(memory().write_object(pa, v).ok()); }
  void put32(uint64_t pa, uint32_t v) { ASSERT_TRUE(memory().write_object(pa, v).ok()); }
  uint64_t get64(uint64_t pa) { return *memory().read_object<uint64_t>(pa); }

  // Flat 64-bit long mode with 4-level paging rooted at 0x10000.
  void enter_long_mode() {
    cpu_.cr3 = 0x10000;
    cpu_.cr4 = cr4::kPAE;
    cpu_.efer = efer::kLME | efer::kLMA | efer::kNXE;
    cpu_.cr0 = cr0::kPE | cr0::kPG | cr0::kWP | cr0::kET;
    cpu_.seg[kCs] = SegmentCache{0, 0xffffffff, 0x10, 0xa09b};  // 64-bit code, DPL 0
    for (uint8_t s : {kDs, kEs, kSs, kFs, kGs}) {
      cpu_.seg[s] = SegmentCache{0, 0xffffffff, 0x18, 0xc093};
    }
    cpu_.update_mode();
    cpu_.flush_tlb(true);
  }
  // Maps linear `la` to physical `pa` with a 4 KiB page and the given PTE flags.
  void map4k(uint64_t la, uint64_t pa, uint64_t flags) {
    const uint64_t pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
    put64(pml4 + ((la >> 39) & 511) * 8, pdpt | 7);
    put64(pdpt + ((la >> 30) & 511) * 8, pd | 7);
    put64(pd + ((la >> 21) & 511) * 8, pt | 7);
    put64(pt + ((la >> 12) & 511) * 8, pa | flags);
  }
  uint32_t page_fault_code(auto&& access) {
    try {
      access();
    } catch (const GuestFault& f) {
      EXPECT_EQ(f.vector, kPageFault);
      EXPECT_TRUE(f.has_error_code);
      return f.error_code;
    }
    ADD_FAILURE() << "no page fault";
    return ~0u;
  }

  std::unique_ptr<Machine> machine_;
  CodePages pages_;
  Cpu cpu_;
};

TEST_F(EmuCpuTest, RealModeAddsSegmentBase) {
  cpu_.seg[kDs] = SegmentCache{0x12340, 0xffff, 0x1234, 0x93};
  put32(0x12340 + 0x10, 0xdeadbeef);
  EXPECT_EQ(cpu_.read<uint32_t>(kDs, 0x10), 0xdeadbeefu);
  cpu_.write<uint16_t>(kDs, 0x20, 0x5566);
  EXPECT_EQ(*memory().read_object<uint16_t>(0x12360), 0x5566);
  // Beyond the 64 KiB limit: #GP (and #SS for the stack segment).
  EXPECT_THROW(cpu_.read<uint32_t>(kDs, 0xfffe), GuestFault);
}

TEST_F(EmuCpuTest, FourLevelPagingTranslatesAndSetsAccessedDirty) {
  enter_long_mode();
  map4k(0x400000, 0x200000, 3);
  put64(0x200008, 0x1122334455667788);
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, 0x400008), 0x1122334455667788u);
  EXPECT_NE(get64(0x13000 + (0x400000 >> 12 & 511) * 8) & 0x20, 0u);  // accessed
  EXPECT_EQ(get64(0x13000 + (0x400000 >> 12 & 511) * 8) & 0x40, 0u);  // not yet dirty
  cpu_.write<uint32_t>(kDs, 0x400010, 7);
  EXPECT_NE(get64(0x13000 + (0x400000 >> 12 & 511) * 8) & 0x40, 0u);  // dirty
  EXPECT_EQ(*memory().read_object<uint32_t>(0x200010), 7u);
}

TEST_F(EmuCpuTest, LargePagesIn4LevelMode) {
  enter_long_mode();
  put64(0x10000, 0x11000 | 7);
  put64(0x11000 + 1 * 8, 0x0 | 0x83);  // 1 GiB page: la 1G -> pa 0
  put64(0x11000, 0x12000 | 7);
  put64(0x12000 + 2 * 8, 0x200000 | 0x83);  // 2 MiB page: la 4M -> pa 2M
  put64(0x300000, 42);
  put64(0x500, 43);
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, 0x500000), 42u);
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, (1ull << 30) + 0x500), 43u);
}

TEST_F(EmuCpuTest, PageFaultErrorCodesAndCr2) {
  enter_long_mode();
  map4k(0x400000, 0x200000, 1);  // present, read-only, supervisor
  EXPECT_EQ(page_fault_code([&] { cpu_.read<uint32_t>(kDs, 0x401000); }), 0u);  // not present
  EXPECT_EQ(cpu_.cr2, 0x401000u);
  EXPECT_EQ(page_fault_code([&] { cpu_.write<uint32_t>(kDs, 0x400000, 1); }), 3u);  // WP
  cpu_.cpl = 3;
  EXPECT_EQ(page_fault_code([&] { cpu_.read<uint32_t>(kDs, 0x400000); }), 5u);  // user
  cpu_.cpl = 0;
  map4k(0x402000, 0x202000, 1ull << 63 | 1);  // no-execute
  uint8_t byte;
  EXPECT_EQ(page_fault_code([&] { cpu_.fetch(0x402000, &byte, 1); }), 0x11u);
}

TEST_F(EmuCpuTest, WriteProtectOffLetsSupervisorWriteReadOnlyPages) {
  enter_long_mode();
  cpu_.cr0 &= ~cr0::kWP;
  map4k(0x400000, 0x200000, 1);
  cpu_.write<uint32_t>(kDs, 0x400000, 9);
  EXPECT_EQ(*memory().read_object<uint32_t>(0x200000), 9u);
}

TEST_F(EmuCpuTest, TlbKeepsTranslationsUntilFlushed) {
  enter_long_mode();
  map4k(0x400000, 0x200000, 3);
  put64(0x200000, 1);
  put64(0x300000, 2);
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, 0x400000), 1u);
  map4k(0x400000, 0x300000, 3);  // as hardware, the old translation stays until INVLPG
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, 0x400000), 1u);
  cpu_.flush_tlb_page(0x400000);
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, 0x400000), 2u);
}

TEST_F(EmuCpuTest, GlobalPagesSurviveNonGlobalFlush) {
  enter_long_mode();
  cpu_.cr4 |= cr4::kPGE;
  map4k(0x400000, 0x200000, 3 | 0x100);
  map4k(0x401000, 0x201000, 3);
  put64(0x200000, 1);
  put64(0x201000, 2);
  put64(0x300000, 3);
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, 0x400000), 1u);
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, 0x401000), 2u);
  map4k(0x400000, 0x300000, 3 | 0x100);
  map4k(0x401000, 0x300000, 3);
  cpu_.flush_tlb(false);
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, 0x400000), 1u);  // global: kept
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, 0x401000), 3u);  // flushed
}

TEST_F(EmuCpuTest, LegacyPagingWith4MiBPages) {
  cpu_.cr3 = 0x10000;
  cpu_.cr4 = cr4::kPSE;
  cpu_.cr0 = cr0::kPE | cr0::kPG | cr0::kET;
  cpu_.seg[kCs] = SegmentCache{0, 0xffffffff, 0x08, 0xc09b};
  cpu_.seg[kDs] = SegmentCache{0, 0xffffffff, 0x10, 0xc093};
  cpu_.update_mode();
  put32(0x10000 + 2 * 4, 0x400000 | 0x83);  // la 8M -> pa 4M, 4 MiB page
  put32(0x10000 + 0 * 4, 0x11000 | 3);      // la 0..4M through a page table
  put32(0x11000 + 0x10 * 4, 0x5000 | 3);    // la 0x10000 -> pa 0x5000
  put32(0x400000 + 0x44, 0x77);
  put32(0x5000 + 0x8, 0x88);
  EXPECT_EQ(cpu_.read<uint32_t>(kDs, 0x800044), 0x77u);
  EXPECT_EQ(cpu_.read<uint32_t>(kDs, 0x10008), 0x88u);
}

TEST_F(EmuCpuTest, PaePagingThroughPdptes) {
  cpu_.cr3 = 0x10000;
  cpu_.cr4 = cr4::kPAE;
  cpu_.cr0 = cr0::kPE | cr0::kPG | cr0::kET;
  cpu_.seg[kCs] = SegmentCache{0, 0xffffffff, 0x08, 0xc09b};
  cpu_.seg[kDs] = SegmentCache{0, 0xffffffff, 0x10, 0xc093};
  cpu_.update_mode();
  put64(0x10000 + 1 * 8, 0x11000 | 1);      // PDPTE for 1..2 GiB
  put64(0x11000 + 3 * 8, 0x600000 | 0x83);  // 2 MiB page at 1G + 6M
  put64(0x600000 + 0x18, 0x99);
  EXPECT_EQ(cpu_.read<uint64_t>(kDs, (1ull << 30) + (6ull << 20) + 0x18), 0x99u);
}

TEST_F(EmuCpuTest, AccessesOutsideRamGoToTheMmioBus) {
  RecordingMmio device;
  ASSERT_TRUE(machine_->mmio().add(0xfec00000, 0x1000, &device).ok());
  cpu_.seg[kDs] = SegmentCache{0, 0xffffffff, 0x10, 0xc093};
  cpu_.cr0 |= cr0::kPE;
  cpu_.update_mode();
  EXPECT_EQ(cpu_.read<uint32_t>(kDs, 0xfec00010), 0xabcd0010u);
  cpu_.write<uint32_t>(kDs, 0xfec00020, 5);
  ASSERT_EQ(device.writes.size(), 1u);
  EXPECT_EQ(device.writes[0], (std::pair<uint64_t, uint64_t>{0x20, 5}));
}

TEST_F(EmuCpuTest, AccessesAcrossAPageBoundarySplit) {
  enter_long_mode();
  map4k(0x400000, 0x200000, 3);
  map4k(0x401000, 0x500000, 3);  // not physically contiguous
  cpu_.write<uint32_t>(kDs, 0x400ffe, 0xaabbccdd);
  EXPECT_EQ(*memory().read_object<uint16_t>(0x200ffe), 0xccdd);
  EXPECT_EQ(*memory().read_object<uint16_t>(0x500000), 0xaabb);
  EXPECT_EQ(cpu_.read<uint32_t>(kDs, 0x400ffe), 0xaabbccddu);
}

TEST_F(EmuCpuTest, WritesToCodePagesBumpTheirVersion) {
  enter_long_mode();
  map4k(0x400000, 0x200000, 3);
  pages_.mark_code(0x200);
  const uint32_t before = pages_.version(0x200);
  cpu_.sync_code_generation();
  cpu_.write<uint8_t>(kDs, 0x400123, 0x90);
  EXPECT_EQ(pages_.version(0x200), before + 1);
  EXPECT_FALSE(pages_.has_code(0x200));
}

TEST_F(EmuCpuTest, StackPushPopUsesStackWidth) {
  enter_long_mode();
  map4k(0x400000, 0x200000, 3);
  cpu_.gpr[kRsp] = 0x401000;
  cpu_.push(0x1122334455667788, 8);
  EXPECT_EQ(cpu_.gpr[kRsp], 0x400ff8u);
  EXPECT_EQ(get64(0x200ff8), 0x1122334455667788u);
  EXPECT_EQ(cpu_.pop(8), 0x1122334455667788u);
  EXPECT_EQ(cpu_.gpr[kRsp], 0x401000u);
}

TEST_F(EmuCpuTest, NonCanonicalAddressesFault) {
  enter_long_mode();
  // Vector of a read of `size` bytes at `la`: #GP when any byte is non-canonical, else #PF
  // (nothing is mapped up there), with SS-relative accesses giving #SS instead of #GP.
  auto vector_of = [&](uint8_t segment, uint64_t la, int size) {
    try {
      if (size == 1) {
        cpu_.read<uint8_t>(segment, la);
      } else {
        cpu_.read<uint64_t>(segment, la);
      }
    } catch (const GuestFault& f) {
      return static_cast<int>(f.vector);
    }
    return -1;
  };
  EXPECT_EQ(vector_of(kDs, 0x0000800000000000ull, 1), kGeneralProtection);
  EXPECT_EQ(vector_of(kDs, 0x00007fffffffffffull, 1), kPageFault);
  EXPECT_EQ(vector_of(kDs, 0x00007ffffffffff8ull, 8), kPageFault);
  EXPECT_EQ(vector_of(kDs, 0x00007ffffffffff9ull, 8), kGeneralProtection);  // last byte crosses
  EXPECT_EQ(vector_of(kDs, 0xffff800000000000ull, 8), kPageFault);
  EXPECT_EQ(vector_of(kDs, 0xffff7ffffffffff8ull, 8), kGeneralProtection);
  EXPECT_EQ(vector_of(kDs, 0xfffffffffffffff8ull, 8), kPageFault);
  EXPECT_EQ(vector_of(kSs, 0x0000800000000000ull, 1), kStackFault);
}

}  // namespace
}  // namespace hv::emu
