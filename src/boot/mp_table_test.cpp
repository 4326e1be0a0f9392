#include <gtest/gtest.h>

#include <numeric>

#include "boot/boot_test_support.hpp"
#include "boot/machine_tables.hpp"

namespace hv {
namespace {

using namespace hv::boot::testing;

constexpr uint64_t kFloatingPointer = 0x9fc00;
constexpr uint64_t kEbdaConfigTable = 0x9fc10;
constexpr uint64_t kOverflowConfigTable = 0xf0000;

uint8_t checksum(const GuestMemory& memory, uint64_t address, uint64_t size) {
  std::vector<uint8_t> bytes = peek_bytes(memory, address, size);
  return static_cast<uint8_t>(std::accumulate(bytes.begin(), bytes.end(), 0u));
}

std::string text(const GuestMemory& memory, uint64_t address, uint64_t size) {
  std::vector<uint8_t> bytes = peek_bytes(memory, address, size);
  return std::string(bytes.begin(), bytes.end());
}

// Reads the table back byte by byte, independently of the writer's structs.
void expect_valid_tables(const GuestMemory& memory, uint32_t cpu_count,
                         uint64_t config_table = kEbdaConfigTable) {
  EXPECT_EQ(text(memory, kFloatingPointer, 4), "_MP_");
  EXPECT_EQ(peek<uint32_t>(memory, kFloatingPointer + 4), config_table);
  EXPECT_EQ(peek<uint8_t>(memory, kFloatingPointer + 8), 1);   // 16 bytes
  EXPECT_EQ(peek<uint8_t>(memory, kFloatingPointer + 9), 4);   // MP spec 1.4
  EXPECT_EQ(peek<uint8_t>(memory, kFloatingPointer + 11), 0);  // config table present
  EXPECT_EQ(checksum(memory, kFloatingPointer, 16), 0);

  const uint32_t entry_count = cpu_count + 1 + 1 + 15 + 2;
  const uint16_t length = static_cast<uint16_t>(44 + 20 * cpu_count + 8 * 19);
  EXPECT_EQ(text(memory, config_table, 4), "PCMP");
  EXPECT_EQ(peek<uint16_t>(memory, config_table + 4), length);
  EXPECT_EQ(peek<uint8_t>(memory, config_table + 6), 4);
  EXPECT_EQ(text(memory, config_table + 8, 8), "HV      ");
  EXPECT_EQ(text(memory, config_table + 16, 12), "HV VM       ");
  EXPECT_EQ(peek<uint16_t>(memory, config_table + 34), entry_count);
  EXPECT_EQ(peek<uint32_t>(memory, config_table + 36), 0xfee00000u);
  EXPECT_EQ(checksum(memory, config_table, length), 0);
  EXPECT_LE(config_table + length, config_table == kEbdaConfigTable ? 0xa0000u : 0x100000u);

  uint64_t entry = config_table + 44;
  for (uint32_t cpu = 0; cpu < cpu_count; ++cpu, entry += 20) {
    EXPECT_EQ(peek<uint8_t>(memory, entry), 0);        // processor
    EXPECT_EQ(peek<uint8_t>(memory, entry + 1), cpu);  // APIC ID
    EXPECT_EQ(peek<uint8_t>(memory, entry + 2), 0x14);
    EXPECT_EQ(peek<uint8_t>(memory, entry + 3), cpu == 0 ? 3 : 1);  // enabled, BSP
    EXPECT_EQ(peek<uint32_t>(memory, entry + 4), 0x6f1u);
    EXPECT_EQ(peek<uint32_t>(memory, entry + 8), 0x078bfbffu);
  }
  EXPECT_EQ(peek<uint8_t>(memory, entry), 1);  // bus
  EXPECT_EQ(peek<uint8_t>(memory, entry + 1), 0);
  EXPECT_EQ(text(memory, entry + 2, 6), "ISA   ");
  entry += 8;
  EXPECT_EQ(peek<uint8_t>(memory, entry), 2);  // IOAPIC
  EXPECT_EQ(peek<uint8_t>(memory, entry + 1), cpu_count);
  EXPECT_EQ(peek<uint8_t>(memory, entry + 2), 0x11);
  EXPECT_EQ(peek<uint8_t>(memory, entry + 3), 1);
  EXPECT_EQ(peek<uint32_t>(memory, entry + 4), 0xfec00000u);
  entry += 8;
  const uint8_t expected_irqs[] = {0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  for (uint8_t irq : expected_irqs) {
    EXPECT_EQ(peek<uint8_t>(memory, entry), 3);       // I/O interrupt
    EXPECT_EQ(peek<uint8_t>(memory, entry + 1), 0);   // INT
    EXPECT_EQ(peek<uint16_t>(memory, entry + 2), 0);  // conforms to the ISA bus
    EXPECT_EQ(peek<uint8_t>(memory, entry + 4), 0);   // ISA
    EXPECT_EQ(peek<uint8_t>(memory, entry + 5), irq);
    EXPECT_EQ(peek<uint8_t>(memory, entry + 6), cpu_count);
    EXPECT_EQ(peek<uint8_t>(memory, entry + 7), irq == 0 ? 2 : irq) << int{irq};
    entry += 8;
  }
  for (uint8_t lint : {0, 1}) {
    EXPECT_EQ(peek<uint8_t>(memory, entry), 4);                      // local interrupt
    EXPECT_EQ(peek<uint8_t>(memory, entry + 1), lint == 0 ? 3 : 1);  // ExtINT, NMI
    EXPECT_EQ(peek<uint8_t>(memory, entry + 6), 0xff);               // all local APICs
    EXPECT_EQ(peek<uint8_t>(memory, entry + 7), lint);
    entry += 8;
  }
  EXPECT_EQ(entry, config_table + length);

  EXPECT_EQ(peek<uint16_t>(memory, 0x40e), 0x9fc0u);  // EBDA segment in the BDA
  EXPECT_EQ(peek<uint16_t>(memory, 0x413), 639u);     // base memory in KiB
}

TEST(MpTable, OneCpu) {
  GuestMemory memory = make_memory(16 * kMiB);
  ASSERT_TRUE(write_mp_table(memory, 1).ok());
  expect_valid_tables(memory, 1);
}

TEST(MpTable, FourCpus) {
  GuestMemory memory = make_memory(16 * kMiB);
  ASSERT_TRUE(write_mp_table(memory, 4).ok());
  expect_valid_tables(memory, 4);
}

TEST(MpTable, RewritingWithFewerCpusLeavesNoStaleEntries) {
  GuestMemory memory = make_memory(16 * kMiB);
  ASSERT_TRUE(write_mp_table(memory, 8).ok());
  ASSERT_TRUE(write_mp_table(memory, 2).ok());
  expect_valid_tables(memory, 2);
  EXPECT_EQ(peek<uint8_t>(memory, kEbdaConfigTable + 44 + 40 + 8 * 19), 0);
}

TEST(MpTable, FortyCpusFitInTheEbda) {
  static_assert(kMaxEbdaMpTableCpus >= 32);
  EXPECT_EQ(kMaxEbdaMpTableCpus, 40u);
  GuestMemory memory = make_memory(16 * kMiB);
  ASSERT_TRUE(write_mp_table(memory, 40).ok());
  expect_valid_tables(memory, 40);
}

TEST(MpTable, LargerTablesMoveToTheBiosArea) {
  GuestMemory memory = make_memory(16 * kMiB);
  for (uint32_t cpus : {41u, 64u, 254u}) {
    ASSERT_TRUE(write_mp_table(memory, cpus).ok()) << cpus;
    expect_valid_tables(memory, cpus, kOverflowConfigTable);
  }
  EXPECT_TRUE(
      fails_with(write_mp_table(memory, 255), ExitStatus::Usage, "255 vCPUs cannot be described"));
  EXPECT_TRUE(fails_with(write_mp_table(memory, 0), ExitStatus::Usage, "holds 1 to 254"));
}

TEST(MpTable, EbdaOutsideRamIsBadMemorySize) {
  GuestMemory memory = make_memory(512 * 1024);
  EXPECT_TRUE(fails_with(write_mp_table(memory, 1), ExitStatus::BadMemorySize, "EBDA"));
  GuestMemory below_bios_area = make_memory(0xf0000);
  EXPECT_TRUE(write_mp_table(below_bios_area, 40).ok());
  EXPECT_TRUE(fails_with(write_mp_table(below_bios_area, 41), ExitStatus::BadMemorySize,
                         "does not reach 0xf0000"));
}

}  // namespace
}  // namespace hv
