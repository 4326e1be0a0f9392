#include "boot/acpi.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <numeric>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "boot/boot_test_support.hpp"

namespace hv {
namespace {

using namespace hv::boot::testing;

constexpr uint64_t kRsdp = 0xe0000;
constexpr uint64_t kAreaEnd = 0xf0000;
constexpr uint64_t kHeaderSize = 36;

uint8_t checksum(const GuestMemory& memory, uint64_t address, uint64_t size) {
  std::vector<uint8_t> bytes = peek_bytes(memory, address, size);
  return static_cast<uint8_t>(std::accumulate(bytes.begin(), bytes.end(), 0u));
}

std::string text(const GuestMemory& memory, uint64_t address, uint64_t size) {
  std::vector<uint8_t> bytes = peek_bytes(memory, address, size);
  return std::string(bytes.begin(), bytes.end());
}

template <typename T>
void poke(GuestMemory& memory, uint64_t address, T value) {
  ASSERT_TRUE(memory.write_object(address, value).ok());
}

// Makes the table's bytes sum to zero again after a test changed one of them, so that only the
// change itself can be caught.
void fix_checksum(GuestMemory& memory, uint64_t address, uint64_t size, uint64_t checksum_offset) {
  poke<uint8_t>(memory, address + checksum_offset, 0);
  poke<uint8_t>(memory, address + checksum_offset,
                static_cast<uint8_t>(-checksum(memory, address, size)));
}

struct Tables {
  uint64_t rsdt = 0;
  uint64_t xsdt = 0;
  uint64_t fadt = 0;
  uint64_t madt = 0;
  uint64_t dsdt = 0;
  uint64_t facs = 0;
};

// Checks a system description table's header where an OS would: signature, a length that keeps
// it inside the ACPI area, a zero byte sum and hv's IDs.
::testing::AssertionResult check_table(const GuestMemory& memory, uint64_t address,
                                       std::string_view signature) {
  if (address < kRsdp || address + kHeaderSize > kAreaEnd) {
    return ::testing::AssertionFailure()
           << signature << " pointer " << std::hex << address << " is outside the ACPI area";
  }
  if (text(memory, address, 4) != signature) {
    return ::testing::AssertionFailure() << "expected " << signature << " at " << std::hex
                                         << address << ", found " << text(memory, address, 4);
  }
  const auto length = peek<uint32_t>(memory, address + 4);
  if (length < kHeaderSize || address + length > kAreaEnd) {
    return ::testing::AssertionFailure() << signature << " has length " << length;
  }
  if (checksum(memory, address, length) != 0) {
    return ::testing::AssertionFailure() << signature << " checksum is wrong";
  }
  if (text(memory, address + 10, 6) != "HV    " || text(memory, address + 16, 8) != "HVMACHIN" ||
      text(memory, address + 28, 4) != "HV  ") {
    return ::testing::AssertionFailure() << signature << " has foreign OEM or creator IDs";
  }
  return ::testing::AssertionSuccess();
}

// Finds every table from the RSDP by following pointers, as an OS does, and fails on the first
// bad signature, length, checksum or pointer, or on tables that overlap.
::testing::AssertionResult find_tables(const GuestMemory& memory, Tables& tables) {
  if (text(memory, kRsdp, 8) != "RSD PTR ") {
    return ::testing::AssertionFailure() << "no RSDP signature at 0xe0000";
  }
  if (checksum(memory, kRsdp, 20) != 0 || checksum(memory, kRsdp, 36) != 0) {
    return ::testing::AssertionFailure() << "RSDP checksum is wrong";
  }
  if (peek<uint8_t>(memory, kRsdp + 15) != 2 || peek<uint32_t>(memory, kRsdp + 20) != 36) {
    return ::testing::AssertionFailure() << "RSDP is not revision 2 with length 36";
  }
  tables.rsdt = peek<uint32_t>(memory, kRsdp + 16);
  tables.xsdt = peek<uint64_t>(memory, kRsdp + 24);
  for (auto [address, signature, entry_size] :
       {std::tuple{tables.rsdt, "RSDT", 4u}, std::tuple{tables.xsdt, "XSDT", 8u}}) {
    if (auto result = check_table(memory, address, signature); !result) {
      return result;
    }
    if (peek<uint32_t>(memory, address + 4) != kHeaderSize + 2 * entry_size ||
        peek<uint8_t>(memory, address + 8) != 1) {
      return ::testing::AssertionFailure() << signature << " does not hold two entries";
    }
  }
  tables.fadt = peek<uint64_t>(memory, tables.xsdt + kHeaderSize);
  tables.madt = peek<uint64_t>(memory, tables.xsdt + kHeaderSize + 8);
  if (peek<uint32_t>(memory, tables.rsdt + kHeaderSize) != tables.fadt ||
      peek<uint32_t>(memory, tables.rsdt + kHeaderSize + 4) != tables.madt) {
    return ::testing::AssertionFailure() << "RSDT and XSDT list different tables";
  }
  if (auto result = check_table(memory, tables.fadt, "FACP"); !result) {
    return result;
  }
  if (auto result = check_table(memory, tables.madt, "APIC"); !result) {
    return result;
  }
  if (peek<uint32_t>(memory, tables.fadt + 4) != 276) {
    return ::testing::AssertionFailure() << "FADT is not 276 bytes long";
  }
  tables.facs = peek<uint64_t>(memory, tables.fadt + 132);
  tables.dsdt = peek<uint64_t>(memory, tables.fadt + 140);
  if (peek<uint32_t>(memory, tables.fadt + 36) != tables.facs ||
      peek<uint32_t>(memory, tables.fadt + 40) != tables.dsdt) {
    return ::testing::AssertionFailure() << "FADT's 32- and 64-bit FACS or DSDT pointers differ";
  }
  if (auto result = check_table(memory, tables.dsdt, "DSDT"); !result) {
    return result;
  }
  if (tables.facs < kRsdp || tables.facs + 64 > kAreaEnd || tables.facs % 64 != 0 ||
      text(memory, tables.facs, 4) != "FACS" || peek<uint32_t>(memory, tables.facs + 4) != 64) {
    return ::testing::AssertionFailure()
           << "no 64-byte aligned FACS at " << std::hex << tables.facs;
  }

  std::vector<std::pair<uint64_t, uint64_t>> ranges = {{kRsdp, kRsdp + 36},
                                                       {tables.facs, tables.facs + 64}};
  for (uint64_t table : {tables.rsdt, tables.xsdt, tables.fadt, tables.madt, tables.dsdt}) {
    ranges.emplace_back(table, table + peek<uint32_t>(memory, table + 4));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      return ::testing::AssertionFailure() << "tables overlap at " << std::hex << ranges[i].first;
    }
  }
  return ::testing::AssertionSuccess();
}

Tables written_tables(GuestMemory& memory, uint32_t cpu_count) {
  Result<uint64_t> rsdp = write_acpi_tables(memory, cpu_count);
  EXPECT_TRUE(rsdp.ok()) << rsdp.error().to_string();
  EXPECT_EQ(rsdp.ok() ? *rsdp : 0, kRsdp);
  Tables tables;
  EXPECT_TRUE(find_tables(memory, tables));
  return tables;
}

void expect_io_address(const GuestMemory& memory, uint64_t address, uint8_t bit_width,
                       uint8_t access_size, uint64_t port) {
  EXPECT_EQ(peek<uint8_t>(memory, address), 1);  // system I/O
  EXPECT_EQ(peek<uint8_t>(memory, address + 1), bit_width);
  EXPECT_EQ(peek<uint8_t>(memory, address + 2), 0);
  EXPECT_EQ(peek<uint8_t>(memory, address + 3), access_size);
  EXPECT_EQ(peek<uint64_t>(memory, address + 4), port);
}

TEST(Acpi, RsdpSitsAtTheStartOfTheScannedArea) {
  GuestMemory memory = make_memory(16 * kMiB);
  Tables tables = written_tables(memory, 1);
  EXPECT_EQ(text(memory, kRsdp + 9, 6), "HV    ");
  EXPECT_EQ(kRsdp % 16, 0u);
  EXPECT_EQ(acpi::kRsdpAddress, kRsdp);
  EXPECT_EQ(peek<uint32_t>(memory, kRsdp + 16), tables.rsdt);
  EXPECT_EQ(peek<uint64_t>(memory, kRsdp + 24), tables.xsdt);
  EXPECT_EQ(peek<uint32_t>(memory, kRsdp + 33) & 0xffffff, 0u);  // reserved
}

TEST(Acpi, RsdtAndXsdtListTheFadtAndTheMadt) {
  GuestMemory memory = make_memory(16 * kMiB);
  Tables tables = written_tables(memory, 2);
  EXPECT_EQ(peek<uint32_t>(memory, tables.rsdt + 4), 44u);
  EXPECT_EQ(peek<uint32_t>(memory, tables.xsdt + 4), 52u);
  EXPECT_EQ(peek<uint32_t>(memory, tables.rsdt + 36), tables.fadt);
  EXPECT_EQ(peek<uint32_t>(memory, tables.rsdt + 40), tables.madt);
  EXPECT_EQ(text(memory, tables.fadt, 4), "FACP");
  EXPECT_EQ(text(memory, tables.madt, 4), "APIC");
  EXPECT_EQ(tables.madt, 0xe0610u);  // the MADT last, where it can grow
}

TEST(Acpi, FadtDescribesTheFixedHardware) {
  GuestMemory memory = make_memory(16 * kMiB);
  const uint64_t fadt = written_tables(memory, 1).fadt;
  EXPECT_EQ(peek<uint8_t>(memory, fadt + 8), 6);         // revision
  EXPECT_EQ(peek<uint8_t>(memory, fadt + 131), 0);       // minor version
  EXPECT_EQ(peek<uint16_t>(memory, fadt + 46), 9);       // SCI_INT
  EXPECT_EQ(peek<uint32_t>(memory, fadt + 48), 0u);      // SMI_CMD: always in ACPI mode
  EXPECT_EQ(peek<uint16_t>(memory, fadt + 52), 0);       // ACPI_ENABLE, ACPI_DISABLE
  EXPECT_EQ(peek<uint32_t>(memory, fadt + 56), 0x600u);  // PM1a_EVT_BLK
  EXPECT_EQ(peek<uint32_t>(memory, fadt + 60), 0u);      // PM1b_EVT_BLK
  EXPECT_EQ(peek<uint32_t>(memory, fadt + 64), 0x604u);  // PM1a_CNT_BLK
  EXPECT_EQ(peek<uint32_t>(memory, fadt + 68), 0u);      // PM1b_CNT_BLK
  EXPECT_EQ(peek<uint32_t>(memory, fadt + 72), 0u);      // PM2_CNT_BLK
  EXPECT_EQ(peek<uint32_t>(memory, fadt + 76), 0x608u);  // PM_TMR_BLK
  EXPECT_EQ(peek<uint64_t>(memory, fadt + 80), 0u);      // GPE0_BLK, GPE1_BLK
  EXPECT_EQ(peek<uint8_t>(memory, fadt + 88), 4);        // PM1_EVT_LEN
  EXPECT_EQ(peek<uint8_t>(memory, fadt + 89), 2);        // PM1_CNT_LEN
  EXPECT_EQ(peek<uint8_t>(memory, fadt + 90), 0);        // PM2_CNT_LEN
  EXPECT_EQ(peek<uint8_t>(memory, fadt + 91), 4);        // PM_TMR_LEN
  EXPECT_EQ(peek<uint16_t>(memory, fadt + 92), 0);       // GPE0/1_BLK_LEN
  EXPECT_EQ(peek<uint16_t>(memory, fadt + 96), 101);     // P_LVL2_LAT: no C2
  EXPECT_EQ(peek<uint16_t>(memory, fadt + 98), 1001);    // P_LVL3_LAT: no C3
  EXPECT_EQ(peek<uint8_t>(memory, fadt + 108), 0x32);    // CENTURY
  EXPECT_EQ(peek<uint16_t>(memory, fadt + 109), 0x7);    // legacy devices, 8042, no VGA
  // WBINVD, PROC_C1, PWR_BUTTON, SLP_BUTTON, TMR_VAL_EXT, RESET_REG_SUP.
  EXPECT_EQ(peek<uint32_t>(memory, fadt + 112), 0x535u);
  expect_io_address(memory, fadt + 116, 8, 1, 0xcf9);   // RESET_REG
  EXPECT_EQ(peek<uint8_t>(memory, fadt + 128), 0x06);   // RESET_VALUE
  expect_io_address(memory, fadt + 148, 32, 2, 0x600);  // X_PM1a_EVT_BLK
  expect_io_address(memory, fadt + 172, 16, 2, 0x604);  // X_PM1a_CNT_BLK
  expect_io_address(memory, fadt + 208, 32, 3, 0x608);  // X_PM_TMR_BLK
  // X_PM1b_EVT_BLK, X_PM1b_CNT_BLK, X_PM2_CNT_BLK; X_GPE0/1, SLEEP_CONTROL/STATUS, vendor ID.
  for (uint64_t offset = 160; offset < 208; ++offset) {
    if (offset < 172 || offset >= 184) {
      EXPECT_EQ(peek<uint8_t>(memory, fadt + offset), 0) << offset;
    }
  }
  for (uint64_t offset = 220; offset < 276; ++offset) {
    EXPECT_EQ(peek<uint8_t>(memory, fadt + offset), 0) << offset;
  }
  // The ports device code uses are the ones announced.
  EXPECT_EQ(acpi::kPm1aEventBlock, 0x600);
  EXPECT_EQ(acpi::kPm1aControlBlock, 0x604);
  EXPECT_EQ(acpi::kPmTimerBlock, 0x608);
  EXPECT_EQ(acpi::kSciIrq, 9);
}

TEST(Acpi, FacsAndDsdtHangOffTheFadt) {
  GuestMemory memory = make_memory(16 * kMiB);
  Tables tables = written_tables(memory, 1);
  EXPECT_EQ(peek<uint32_t>(memory, tables.fadt + 36), tables.facs);
  EXPECT_EQ(peek<uint64_t>(memory, tables.fadt + 132), tables.facs);
  EXPECT_EQ(peek<uint32_t>(memory, tables.fadt + 40), tables.dsdt);
  EXPECT_EQ(peek<uint64_t>(memory, tables.fadt + 140), tables.dsdt);
  EXPECT_EQ(peek<uint8_t>(memory, tables.facs + 32), 2);    // FACS version
  EXPECT_EQ(peek<uint32_t>(memory, tables.facs + 8), 0u);   // hardware signature
  EXPECT_EQ(peek<uint32_t>(memory, tables.facs + 12), 0u);  // no waking vector
}

TEST(Acpi, DsdtAnnouncesMmioDevicesUnderSb) {
  GuestMemory memory = make_memory(16 * kMiB);
  const std::array<acpi::MmioDevice, 2> devices = {
      {{"LNRO0005", 0xd0000000, 0x200, 5}, {"LNRO0005", 0xd0001000, 0x200, 6}}};
  ASSERT_TRUE(write_acpi_tables(memory, 1, devices).ok());
  Tables tables;
  ASSERT_TRUE(find_tables(memory, tables));  // checksums and pointers hold
  const uint32_t length = peek<uint32_t>(memory, tables.dsdt + 4);
  const std::vector<uint8_t> dsdt = peek_bytes(memory, tables.dsdt, length);
  auto find = [&](const std::vector<uint8_t>& needle, size_t from = 0) {
    return std::search(dsdt.begin() + static_cast<ptrdiff_t>(from), dsdt.end(), needle.begin(),
                       needle.end()) -
           dsdt.begin();
  };
  const std::vector<uint8_t> sb = {'\\', '_', 'S', 'B', '_'};
  EXPECT_LT(static_cast<size_t>(find(sb)), dsdt.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    const std::vector<uint8_t> name = {'V', 'R', '0', static_cast<uint8_t>('0' + i)};
    const size_t at = static_cast<size_t>(find(name));
    ASSERT_LT(at, dsdt.size()) << "device VR0" << i;
    const std::vector<uint8_t> hid = {0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N',
                                      'R',  'O', '0', '0', '0', '5',  0x00};
    EXPECT_EQ(static_cast<size_t>(find(hid, at)), at + 4);
    // Memory32Fixed (ReadWrite, base, 0x200) then Interrupt (Consumer, Edge, ActiveHigh) { irq }.
    const uint32_t base = static_cast<uint32_t>(devices[i].base);
    const std::vector<uint8_t> resources = {0x86,
                                            0x09,
                                            0x00,
                                            0x01,
                                            static_cast<uint8_t>(base),
                                            static_cast<uint8_t>(base >> 8),
                                            static_cast<uint8_t>(base >> 16),
                                            static_cast<uint8_t>(base >> 24),
                                            0x00,
                                            0x02,
                                            0x00,
                                            0x00,
                                            0x89,
                                            0x06,
                                            0x00,
                                            0x03,
                                            0x01,
                                            static_cast<uint8_t>(devices[i].irq),
                                            0x00,
                                            0x00,
                                            0x00,
                                            0x79,
                                            0x00};
    EXPECT_LT(static_cast<size_t>(find(resources, at)), dsdt.size()) << "resources of VR0" << i;
  }
}

TEST(Acpi, DsdtDefinesOnlyTheS5Package) {
  GuestMemory memory = make_memory(16 * kMiB);
  const uint64_t dsdt = written_tables(memory, 1).dsdt;
  EXPECT_EQ(peek<uint8_t>(memory, dsdt + 8), 2);                       // 64-bit AML integers
  const std::vector<uint8_t> expected = {0x08, '_',  'S',  '5',  '_',  // Name (_S5, ...
                                         0x12, 0x08, 0x04,  // Package, PkgLength 8, 4 elements
                                         0x0a, 0x05, 0x0a, 0x05,  // BytePrefix 5, BytePrefix 5
                                         0x00, 0x00};             // Zero, Zero
  ASSERT_EQ(peek<uint32_t>(memory, dsdt + 4), kHeaderSize + expected.size());
  EXPECT_EQ(peek_bytes(memory, dsdt + kHeaderSize, expected.size()), expected);
  EXPECT_EQ(acpi::kSleepTypeS5, 5);
}

void expect_madt(const GuestMemory& memory, uint64_t madt, uint32_t cpu_count) {
  EXPECT_EQ(peek<uint32_t>(memory, madt + 36), 0xfee00000u);
  EXPECT_EQ(peek<uint32_t>(memory, madt + 40), 1u);  // PCAT_COMPAT
  const uint64_t end = madt + peek<uint32_t>(memory, madt + 4);
  EXPECT_EQ(end - madt, 44 + 8 * cpu_count + 12 + 2 * 10 + 6);

  std::vector<uint8_t> apic_ids;
  int io_apics = 0;
  std::vector<std::tuple<uint8_t, uint32_t, uint16_t>> overrides;
  int nmis = 0;
  uint64_t entry = madt + 44;
  while (entry < end) {
    const auto type = peek<uint8_t>(memory, entry);
    const auto length = peek<uint8_t>(memory, entry + 1);
    ASSERT_GE(length, 2) << "entry at " << entry;
    switch (type) {
      case 0:  // processor local APIC
        EXPECT_EQ(length, 8);
        EXPECT_EQ(peek<uint8_t>(memory, entry + 2), peek<uint8_t>(memory, entry + 3));  // UID
        EXPECT_EQ(peek<uint32_t>(memory, entry + 4), 1u);                               // enabled
        apic_ids.push_back(peek<uint8_t>(memory, entry + 3));
        break;
      case 1:  // IOAPIC
        EXPECT_EQ(length, 12);
        EXPECT_EQ(peek<uint8_t>(memory, entry + 2), cpu_count);
        EXPECT_EQ(peek<uint32_t>(memory, entry + 4), 0xfec00000u);
        EXPECT_EQ(peek<uint32_t>(memory, entry + 8), 0u);
        ++io_apics;
        break;
      case 2:  // interrupt source override
        EXPECT_EQ(length, 10);
        EXPECT_EQ(peek<uint8_t>(memory, entry + 2), 0);  // ISA
        overrides.emplace_back(peek<uint8_t>(memory, entry + 3), peek<uint32_t>(memory, entry + 4),
                               peek<uint16_t>(memory, entry + 8));
        break;
      case 4:  // local APIC NMI
        EXPECT_EQ(length, 6);
        EXPECT_EQ(peek<uint8_t>(memory, entry + 2), 0xff);  // all processors
        EXPECT_EQ(peek<uint16_t>(memory, entry + 3), 0);
        EXPECT_EQ(peek<uint8_t>(memory, entry + 5), 1);  // LINT1
        ++nmis;
        break;
      default:
        ADD_FAILURE() << "unexpected MADT entry type " << int{type};
    }
    entry += length;
  }
  EXPECT_EQ(entry, end);
  std::vector<uint8_t> expected_ids(cpu_count);
  std::iota(expected_ids.begin(), expected_ids.end(), uint8_t{0});
  EXPECT_EQ(apic_ids, expected_ids);
  EXPECT_EQ(io_apics, 1);
  using Override = std::tuple<uint8_t, uint32_t, uint16_t>;
  EXPECT_EQ(overrides, (std::vector<Override>{{0, 2, 0}, {9, 9, 0x000d}}));
  EXPECT_EQ(nmis, 1);
}

TEST(Acpi, MadtListsEveryCpuTheIoApicAndTheIsaOverrides) {
  for (uint32_t cpus : {1u, 2u, 64u, acpi::kMaxCpus}) {
    SCOPED_TRACE(cpus);
    GuestMemory memory = make_memory(16 * kMiB);
    const uint64_t madt = written_tables(memory, cpus).madt;
    EXPECT_EQ(peek<uint8_t>(memory, madt + 8), 3);  // ACPI 6.0 MADT
    expect_madt(memory, madt, cpus);
  }
}

TEST(Acpi, RewritingWithFewerCpusLeavesNoStaleEntries) {
  GuestMemory memory = make_memory(16 * kMiB);
  written_tables(memory, 64);
  const uint64_t madt = written_tables(memory, 2).madt;
  expect_madt(memory, madt, 2);
  const uint64_t end = madt + peek<uint32_t>(memory, madt + 4);
  const std::vector<uint8_t> rest = peek_bytes(memory, end, kAreaEnd - end);
  EXPECT_TRUE(std::all_of(rest.begin(), rest.end(), [](uint8_t b) { return b == 0; }));
}

// The checks above would notice a wrong checksum or pointer: each corruption, with the
// checksums around it repaired, makes find_tables fail.
TEST(Acpi, CorruptedChecksumsAndPointersAreNoticed) {
  const std::vector<std::pair<std::string, void (*)(GuestMemory&, const Tables&)>> corruptions = {
      {"RSDP checksum",
       [](GuestMemory& m, const Tables&) {
         poke<uint8_t>(m, kRsdp + 8, peek<uint8_t>(m, kRsdp + 8) + 1);
       }},
      {"RSDP extended checksum",
       [](GuestMemory& m, const Tables&) {
         poke<uint8_t>(m, kRsdp + 32, peek<uint8_t>(m, kRsdp + 32) + 1);
       }},
      {"FADT checksum",
       [](GuestMemory& m, const Tables& t) { poke<uint16_t>(m, t.fadt + 46, 10); }},
      {"MADT checksum",
       [](GuestMemory& m, const Tables& t) { poke<uint8_t>(m, t.madt + 44 + 3, 7); }},
      {"DSDT checksum",
       [](GuestMemory& m, const Tables& t) { poke<uint8_t>(m, t.dsdt + 36 + 9, 4); }},
      {"XSDT pointer in the RSDP",
       [](GuestMemory& m, const Tables& t) {
         poke<uint64_t>(m, kRsdp + 24, t.xsdt + 16);
         fix_checksum(m, kRsdp, 36, 32);
       }},
      {"RSDT pointer in the RSDP",
       [](GuestMemory& m, const Tables& t) {
         poke<uint32_t>(m, kRsdp + 16, static_cast<uint32_t>(t.madt));
         fix_checksum(m, kRsdp, 20, 8);
         fix_checksum(m, kRsdp, 36, 32);
       }},
      {"MADT pointer in the XSDT",
       [](GuestMemory& m, const Tables& t) {
         poke<uint64_t>(m, t.xsdt + 44, t.madt + 8);
         fix_checksum(m, t.xsdt, 52, 9);
       }},
      {"FADT pointer in the RSDT",
       [](GuestMemory& m, const Tables& t) {
         poke<uint32_t>(m, t.rsdt + 36, static_cast<uint32_t>(t.dsdt));
         fix_checksum(m, t.rsdt, 44, 9);
       }},
      {"DSDT pointers in the FADT",
       [](GuestMemory& m, const Tables& t) {
         poke<uint32_t>(m, t.fadt + 40, static_cast<uint32_t>(t.madt));
         poke<uint64_t>(m, t.fadt + 140, t.madt);
         fix_checksum(m, t.fadt, 276, 9);
       }},
      {"FACS pointers in the FADT",
       [](GuestMemory& m, const Tables& t) {
         poke<uint32_t>(m, t.fadt + 36, static_cast<uint32_t>(t.facs + 16));
         poke<uint64_t>(m, t.fadt + 132, t.facs + 16);
         fix_checksum(m, t.fadt, 276, 9);
       }},
  };
  for (const auto& [what, corrupt] : corruptions) {
    GuestMemory memory = make_memory(16 * kMiB);
    const Tables tables = written_tables(memory, 4);
    corrupt(memory, tables);
    Tables found;
    EXPECT_FALSE(find_tables(memory, found)) << what;
  }
}

TEST(Acpi, CpuCountOutsideTheMadtsRangeIsUsageError) {
  GuestMemory memory = make_memory(16 * kMiB);
  EXPECT_TRUE(fails_with(write_acpi_tables(memory, 0), ExitStatus::Usage,
                         "0 vCPUs cannot be described: the ACPI MADT holds 1 to 254"));
  EXPECT_TRUE(fails_with(write_acpi_tables(memory, 255), ExitStatus::Usage,
                         "255 vCPUs cannot be described"));
  EXPECT_EQ(peek<uint64_t>(memory, kRsdp), 0u);  // nothing written
}

TEST(Acpi, AreaOutsideRamIsBadMemorySize) {
  for (uint64_t size : {uint64_t{512 * 1024}, uint64_t{0xef000}}) {
    GuestMemory memory = make_memory(size);
    EXPECT_TRUE(fails_with(write_acpi_tables(memory, 1), ExitStatus::BadMemorySize,
                           "does not reach [0xe0000, 0xf0000)"))
        << size;
    EXPECT_FALSE(has_acpi_area(memory));
  }
  GuestMemory just_enough = make_memory(0xf0000);
  EXPECT_TRUE(has_acpi_area(just_enough));
  written_tables(just_enough, 1);
}

TEST(AcpiKernelLoader, LinuxBootParamsPointAtTheRsdp) {
  GuestMemory memory = make_memory(64 * kMiB);
  BootConfig config = config_for(build_bzimage({}), "/boot/bzImage");
  config.cpu_count = 4;
  Result<BootPlan> plan = load_kernel(memory, config);
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(peek<uint64_t>(memory, 0x7000 + 0x070), kRsdp);  // boot_params.acpi_rsdp_addr
  Tables tables;
  ASSERT_TRUE(find_tables(memory, tables));
  expect_madt(memory, tables.madt, 4);
}

TEST(AcpiKernelLoader, EveryFormatGetsTablesWhenRamHoldsTheArea) {
  GuestMemory memory = make_memory(16 * kMiB);
  BootConfig config =
      config_for(build_elf(true, 0x100000, {{0x100000, pattern(0x400, 1), 0x400}}), "/kernel.elf");
  config.cpu_count = 2;
  ASSERT_TRUE(load_kernel(memory, config).ok());
  Tables tables;
  ASSERT_TRUE(find_tables(memory, tables));
  expect_madt(memory, tables.madt, 2);

  GuestMemory flat_memory = make_memory(1 * kMiB);
  BootConfig flat = config_for(pattern(0x200, 3), "/boot.bin");
  flat.format = KernelFormat::Flat;
  ASSERT_TRUE(load_kernel(flat_memory, flat).ok());
  ASSERT_TRUE(find_tables(flat_memory, tables));
}

TEST(AcpiKernelLoader, FlatBinaryInATinyGuestGoesWithout) {
  GuestMemory memory = make_memory(512 * 1024);
  BootConfig config = config_for(pattern(0x200, 3), "/boot.bin");
  config.format = KernelFormat::Flat;
  Result<BootPlan> plan = load_kernel(memory, config);
  EXPECT_TRUE(plan.ok()) << plan.error().to_string();
}

}  // namespace
}  // namespace hv
