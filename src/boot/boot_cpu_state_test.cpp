#include "boot/boot_cpu_state.hpp"

#include <gtest/gtest.h>

#include "boot/boot_test_support.hpp"
#include "boot/layout.hpp"

namespace hv::boot {
namespace {

using namespace hv::boot::testing;

// Walks the 4-level page tables as the CPU would for a 2 MiB page; returns UINT64_MAX when
// the address is not mapped.
uint64_t translate(const GuestMemory& memory, uint64_t cr3, uint64_t address) {
  constexpr uint64_t kAddressMask = 0x000f'ffff'ffff'f000;
  const auto pml4e = peek<uint64_t>(memory, (cr3 & kAddressMask) + ((address >> 39) & 511) * 8);
  if ((pml4e & 1) == 0) {
    return UINT64_MAX;
  }
  const auto pdpte = peek<uint64_t>(memory, (pml4e & kAddressMask) + ((address >> 30) & 511) * 8);
  if ((pdpte & 1) == 0 || (pdpte & 0x80) != 0) {
    return UINT64_MAX;  // absent, or a 1 GiB page hv must not use
  }
  const auto pde = peek<uint64_t>(memory, (pdpte & kAddressMask) + ((address >> 21) & 511) * 8);
  if ((pde & 1) == 0 || (pde & 0x80) == 0) {
    return UINT64_MAX;
  }
  return (pde & 0x000f'ffff'ffe0'0000) | (address & 0x1f'ffff);
}

TEST(BootCpuState, SelectorsSatisfyTheLinuxBootProtocol) {
  EXPECT_EQ(layout::kBootCode32Selector, 0x08);
  EXPECT_EQ(layout::kBootCode64Selector, 0x10);  // __BOOT_CS
  EXPECT_EQ(layout::kBootDataSelector, 0x18);    // __BOOT_DS
}

TEST(BootCpuState, GdtHoldsFlatDescriptors) {
  GuestMemory memory = make_memory(16 * kMiB);
  ASSERT_TRUE(write_boot_gdt(memory).ok());
  EXPECT_EQ(peek<uint64_t>(memory, 0x500), 0u);
  EXPECT_EQ(peek<uint64_t>(memory, 0x508), 0x00cf9b000000ffffu);  // 32-bit code, 4 GiB
  EXPECT_EQ(peek<uint64_t>(memory, 0x510), 0x00af9b000000ffffu);  // 64-bit code
  EXPECT_EQ(peek<uint64_t>(memory, 0x518), 0x00cf93000000ffffu);  // data, 4 GiB
}

TEST(BootCpuState, PageTablesIdentityMapFirst4GiBWith2MiBPages) {
  GuestMemory memory = make_memory(16 * kMiB);
  ASSERT_TRUE(write_identity_page_tables(memory).ok());
  EXPECT_EQ(peek<uint64_t>(memory, 0x9000), 0xa003u);
  EXPECT_EQ(peek<uint64_t>(memory, 0x9008), 0u);
  EXPECT_EQ(peek<uint64_t>(memory, 0xa000), 0xb003u);
  EXPECT_EQ(peek<uint64_t>(memory, 0xa008), 0xc003u);
  EXPECT_EQ(peek<uint64_t>(memory, 0xa010), 0xd003u);
  EXPECT_EQ(peek<uint64_t>(memory, 0xa018), 0xe003u);
  EXPECT_EQ(peek<uint64_t>(memory, 0xa020), 0u);  // nothing above 4 GiB
  EXPECT_EQ(peek<uint64_t>(memory, 0xb000), 0x83u);
  EXPECT_EQ(peek<uint64_t>(memory, 0xb008), 0x200083u);
  EXPECT_EQ(peek<uint64_t>(memory, 0xeff8), 0xffe00083u);
  for (uint64_t address : {0x0ull, 0x100200ull, 0x3fffffffull, 0x40000000ull, 0xfec00000ull,
                           0xfee00abcull, 0xffffffffull}) {
    EXPECT_EQ(translate(memory, 0x9000, address), address) << std::hex << address;
  }
  EXPECT_EQ(translate(memory, 0x9000, 0x100000000ull), UINT64_MAX);
}

TEST(BootCpuState, ProtectedModeState) {
  GuestMemory memory = make_memory(16 * kMiB);
  Result<CpuState> state = enter_protected_mode(memory, 0x123456);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->rip, 0x123456u);
  EXPECT_EQ(state->cr0, 0x31u);
  EXPECT_EQ(state->cr3, 0u);
  EXPECT_EQ(state->cr4, 0u);
  EXPECT_EQ(state->efer, 0u);
  EXPECT_EQ(state->rflags, 0x2u);
  EXPECT_EQ(state->gpr[kRsp], 0x7000u);
  EXPECT_EQ(state->cs.selector, 0x08);
  EXPECT_EQ(state->cs.type, 0xb);
  EXPECT_TRUE(state->cs.system_or_code_data);
  EXPECT_TRUE(state->cs.present);
  EXPECT_TRUE(state->cs.default_big);
  EXPECT_FALSE(state->cs.long_mode);
  EXPECT_EQ(state->ds.selector, 0x18);
  EXPECT_EQ(state->ds.type, 0x3);
  EXPECT_EQ(state->gdt.base, 0x500u);
  EXPECT_EQ(state->gdt.limit, 31);
  EXPECT_EQ(state->idt.limit, 0);
  EXPECT_EQ(peek<uint64_t>(memory, 0x508), 0x00cf9b000000ffffu);  // GDT written
}

TEST(BootCpuState, LongModeState) {
  GuestMemory memory = make_memory(16 * kMiB);
  Result<CpuState> state = enter_long_mode(memory, 0x100200);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->rip, 0x100200u);
  EXPECT_EQ(state->cr0, 0x80000031u);
  EXPECT_EQ(state->cr3, 0x9000u);
  EXPECT_EQ(state->cr4, 0x20u);
  EXPECT_EQ(state->efer, 0x500u);
  EXPECT_EQ(state->rflags, 0x2u);
  EXPECT_EQ(state->cs.selector, 0x10);
  EXPECT_TRUE(state->cs.long_mode);
  EXPECT_FALSE(state->cs.default_big);
  EXPECT_EQ(state->ss.selector, 0x18);
  EXPECT_EQ(peek<uint64_t>(memory, 0x9000), 0xa003u);  // page tables written
}

TEST(BootCpuState, TablesNeedLowRam) {
  GuestMemory memory = make_memory(0x8000);  // ends inside the page-table area
  EXPECT_TRUE(write_boot_gdt(memory).ok());
  EXPECT_FALSE(enter_long_mode(memory, 0).ok());
}

}  // namespace
}  // namespace hv::boot
