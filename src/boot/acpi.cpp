// ACPI 6.0 tables, written from scratch because hv has no firmware to build them. Everything
// lives in the 64 KiB at layout::kAcpiTables, the RSDP at its start where OSes scan for it (and
// where Linux's boot_params.acpi_rsdp_addr points), the other tables behind it:
//
//   +0x000  RSDP (36 bytes)
//   +0x040  FACS (64 bytes; must be 64-byte aligned)
//   +0x080  RSDT, +0x0b0 XSDT: both list the FADT and the MADT
//   +0x0f0  FADT (276 bytes), +0x210 DSDT (up to 1 KiB: \_S5 and the MMIO devices),
//   +0x610  MADT (grows with the vCPU count)
//
// The tables describe the PC hv emulates: the fixed-hardware registers of acpi.hpp, the IOAPIC
// and ISA interrupt routing the MP table also gives, an i8042 and no VGA.
#include "boot/acpi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "boot/image_bytes.hpp"

namespace hv {

namespace {

struct [[gnu::packed]] Rsdp {
  char signature[8];  // "RSD PTR "
  uint8_t checksum;   // over the first 20 bytes, the ACPI 1.0 structure
  char oem_id[6];
  uint8_t revision;  // 2: ACPI 2.0+, with the fields below
  uint32_t rsdt_address;
  uint32_t length;
  uint64_t xsdt_address;
  uint8_t extended_checksum;  // over all 36 bytes
  uint8_t reserved[3];
};

struct [[gnu::packed]] TableHeader {
  char signature[4];
  uint32_t length;
  uint8_t revision;
  uint8_t checksum;
  char oem_id[6];
  char oem_table_id[8];
  uint32_t oem_revision;
  char creator_id[4];
  uint32_t creator_revision;
};

struct [[gnu::packed]] GenericAddress {
  uint8_t space_id;
  uint8_t bit_width;
  uint8_t bit_offset;
  uint8_t access_size;  // 1 byte, 2 word, 3 dword, 4 qword
  uint64_t address;
};

struct [[gnu::packed]] Fadt {
  TableHeader header;
  uint32_t firmware_ctrl;
  uint32_t dsdt;
  uint8_t reserved0;
  uint8_t preferred_pm_profile;
  uint16_t sci_int;
  uint32_t smi_cmd;
  uint8_t acpi_enable;
  uint8_t acpi_disable;
  uint8_t s4bios_req;
  uint8_t pstate_cnt;
  uint32_t pm1a_evt_blk;
  uint32_t pm1b_evt_blk;
  uint32_t pm1a_cnt_blk;
  uint32_t pm1b_cnt_blk;
  uint32_t pm2_cnt_blk;
  uint32_t pm_tmr_blk;
  uint32_t gpe0_blk;
  uint32_t gpe1_blk;
  uint8_t pm1_evt_len;
  uint8_t pm1_cnt_len;
  uint8_t pm2_cnt_len;
  uint8_t pm_tmr_len;
  uint8_t gpe0_blk_len;
  uint8_t gpe1_blk_len;
  uint8_t gpe1_base;
  uint8_t cst_cnt;
  uint16_t p_lvl2_lat;
  uint16_t p_lvl3_lat;
  uint16_t flush_size;
  uint16_t flush_stride;
  uint8_t duty_offset;
  uint8_t duty_width;
  uint8_t day_alrm;
  uint8_t mon_alrm;
  uint8_t century;
  uint16_t iapc_boot_arch;
  uint8_t reserved1;
  uint32_t flags;
  GenericAddress reset_reg;
  uint8_t reset_value;
  uint16_t arm_boot_arch;
  uint8_t minor_version;
  uint64_t x_firmware_ctrl;
  uint64_t x_dsdt;
  GenericAddress x_pm1a_evt_blk;
  GenericAddress x_pm1b_evt_blk;
  GenericAddress x_pm1a_cnt_blk;
  GenericAddress x_pm1b_cnt_blk;
  GenericAddress x_pm2_cnt_blk;
  GenericAddress x_pm_tmr_blk;
  GenericAddress x_gpe0_blk;
  GenericAddress x_gpe1_blk;
  GenericAddress sleep_control_reg;
  GenericAddress sleep_status_reg;
  uint64_t hypervisor_vendor_identity;
};

struct [[gnu::packed]] Facs {
  char signature[4];  // "FACS"; the FACS has no checksum
  uint32_t length;
  uint32_t hardware_signature;
  uint32_t firmware_waking_vector;
  uint32_t global_lock;
  uint32_t flags;
  uint64_t x_firmware_waking_vector;
  uint8_t version;
  uint8_t reserved0[3];
  uint32_t ospm_flags;
  uint8_t reserved1[24];
};

struct [[gnu::packed]] Rsdt {
  TableHeader header;
  uint32_t entries[2];  // FADT, MADT
};

struct [[gnu::packed]] Xsdt {
  TableHeader header;
  uint64_t entries[2];  // FADT, MADT
};

struct [[gnu::packed]] MadtHeader {
  TableHeader header;
  uint32_t local_apic_address;
  uint32_t flags;
};

struct [[gnu::packed]] MadtLocalApic {
  uint8_t type;  // 0
  uint8_t length;
  uint8_t processor_uid;
  uint8_t apic_id;
  uint32_t flags;
};

struct [[gnu::packed]] MadtIoApic {
  uint8_t type;  // 1
  uint8_t length;
  uint8_t io_apic_id;
  uint8_t reserved;
  uint32_t address;
  uint32_t gsi_base;
};

struct [[gnu::packed]] MadtInterruptOverride {
  uint8_t type;  // 2
  uint8_t length;
  uint8_t bus;  // 0: ISA
  uint8_t source;
  uint32_t gsi;
  uint16_t flags;
};

struct [[gnu::packed]] MadtLocalApicNmi {
  uint8_t type;  // 4
  uint8_t length;
  uint8_t processor_uid;
  uint16_t flags;
  uint8_t lint;
};

static_assert(sizeof(Rsdp) == 36);
static_assert(sizeof(TableHeader) == 36);
static_assert(sizeof(GenericAddress) == 12);
static_assert(sizeof(Fadt) == 276);
static_assert(offsetof(Fadt, reset_reg) == 116 && offsetof(Fadt, x_pm1a_evt_blk) == 148);
static_assert(sizeof(Facs) == 64);
static_assert(sizeof(MadtHeader) == 44);
static_assert(sizeof(MadtLocalApic) == 8);
static_assert(sizeof(MadtIoApic) == 12);
static_assert(sizeof(MadtInterruptOverride) == 10);
static_assert(sizeof(MadtLocalApicNmi) == 6);

// \_S5 is all the DSDT holds: Name (_S5, Package () { kSleepTypeS5, kSleepTypeS5, 0, 0 }), the
// SLP_TYP values for PM1a and PM1b control and two reserved ones. Without \_S5 Linux does not
// offer power-off through ACPI.
constexpr uint8_t kAmlNameOp = 0x08;
constexpr uint8_t kAmlPackageOp = 0x12;
constexpr uint8_t kAmlBytePrefix = 0x0a;
constexpr uint8_t kAmlZeroOp = 0x00;

struct [[gnu::packed]] S5Object {
  uint8_t name_op = kAmlNameOp;
  char name[4] = {'_', 'S', '5', '_'};
  uint8_t package_op = kAmlPackageOp;
  // A one-byte PkgLength (below 64) counts itself and the rest of the package.
  uint8_t package_length = sizeof(S5Object) - offsetof(S5Object, package_length);
  uint8_t element_count = 4;
  uint8_t slp_typa_prefix = kAmlBytePrefix;
  uint8_t slp_typa = acpi::kSleepTypeS5;
  uint8_t slp_typb_prefix = kAmlBytePrefix;
  uint8_t slp_typb = acpi::kSleepTypeS5;
  uint8_t reserved[2] = {kAmlZeroOp, kAmlZeroOp};
};
static_assert(sizeof(S5Object) == 14 && S5Object{}.package_length == 8);

// Offsets in the area. Tables are 16-byte aligned for tidiness; only the FACS must be (to 64).
constexpr uint64_t kRsdpOffset = 0;
constexpr uint64_t kFacsOffset = 0x40;
constexpr uint64_t kRsdtOffset = kFacsOffset + sizeof(Facs);
constexpr uint64_t kXsdtOffset = boot::align_up(kRsdtOffset + sizeof(Rsdt), 16);
constexpr uint64_t kFadtOffset = boot::align_up(kXsdtOffset + sizeof(Xsdt), 16);
constexpr uint64_t kDsdtOffset = boot::align_up(kFadtOffset + sizeof(Fadt), 16);
constexpr uint64_t kDsdtMaxSize = 0x400;
constexpr uint64_t kMadtOffset = kDsdtOffset + kDsdtMaxSize;
static_assert(kRsdpOffset + sizeof(Rsdp) <= kFacsOffset && kFacsOffset % 64 == 0);
static_assert(kRsdtOffset == 0x80 && kXsdtOffset == 0xb0 && kFadtOffset == 0xf0 &&
              kDsdtOffset == 0x210 && kMadtOffset == 0x610);  // as the comment at the top says

constexpr uint64_t madt_size(uint64_t cpu_count) {
  return sizeof(MadtHeader) + cpu_count * sizeof(MadtLocalApic) + sizeof(MadtIoApic) +
         2 * sizeof(MadtInterruptOverride) + sizeof(MadtLocalApicNmi);
}
constexpr uint64_t kCpusThatFit =
    (layout::kAcpiTablesSize - kMadtOffset - madt_size(0)) / sizeof(MadtLocalApic);
static_assert(acpi::kMaxCpus <= kCpusThatFit);

constexpr uint8_t kRsdpRevision = 2;
constexpr uint8_t kRsdtRevision = 1;
constexpr uint8_t kXsdtRevision = 1;
constexpr uint8_t kFadtRevision = 6;
constexpr uint8_t kFadtMinorVersion = 0;
constexpr uint8_t kDsdtRevision = 2;  // 2+: AML integers are 64 bits
constexpr uint8_t kMadtRevision = 3;  // ACPI 6.0
constexpr uint8_t kFacsVersion = 2;
constexpr uint32_t kOemRevision = 1;
constexpr uint32_t kCreatorRevision = 1;

constexpr uint8_t kSpaceSystemIo = 1;
constexpr uint8_t kAccessByte = 1;
constexpr uint8_t kAccessWord = 2;
constexpr uint8_t kAccessDword = 3;

// Latencies above 100 and 1000 microseconds say C2 and C3 are not supported.
constexpr uint16_t kNoC2Latency = 101;
constexpr uint16_t kNoC3Latency = 1001;
constexpr uint8_t kCmosCenturyRegister = 0x32;

constexpr uint16_t kBootArchLegacyDevices = 1u << 0;  // ISA devices: serial, PIT, RTC, ...
constexpr uint16_t kBootArch8042 = 1u << 1;           // Linux probes 0x60/0x64 without PNP0303
constexpr uint16_t kBootArchVgaNotPresent = 1u << 2;

constexpr uint32_t kFadtWbinvd = 1u << 0;
constexpr uint32_t kFadtProcC1 = 1u << 2;
// Power and sleep buttons are not fixed features; hv has neither button.
constexpr uint32_t kFadtPowerButton = 1u << 4;
constexpr uint32_t kFadtSleepButton = 1u << 5;
constexpr uint32_t kFadtTimerValueExtended = 1u << 8;  // the PM timer counts 32 bits, not 24
constexpr uint32_t kFadtResetRegisterSupported = 1u << 10;

constexpr uint32_t kMadtPcatCompat = 1u << 0;  // dual 8259s present: the OS must mask them
constexpr uint8_t kMadtLocalApic = 0;
constexpr uint8_t kMadtIoApic = 1;
constexpr uint8_t kMadtInterruptOverride = 2;
constexpr uint8_t kMadtLocalApicNmi = 4;
constexpr uint32_t kLocalApicEnabled = 1u << 0;
constexpr uint8_t kAllProcessors = 0xff;
constexpr uint8_t kIsaBus = 0;
// MPS INTI flags: 0 conforms to the bus (ISA: edge, active-high); 0x000d is level, active-high.
constexpr uint16_t kIntiConforming = 0;
constexpr uint16_t kIntiLevelActiveHigh = 0x000d;
// The IOAPIC pin the 8254 timer (ISA IRQ 0) is wired to, as in the MP table.
constexpr uint32_t kTimerGsi = 2;
constexpr uint8_t kNmiLint = 1;

template <size_t N>
void copy_text(char (&field)[N], std::string_view text) {
  std::memset(field, ' ', N);  // ACPI IDs are space-padded, not NUL-terminated
  std::memcpy(field, text.data(), std::min(N, text.size()));
}

template <typename T>
std::span<const uint8_t> bytes_of(const T& object) {
  return {reinterpret_cast<const uint8_t*>(&object), sizeof(T)};
}

constexpr uint32_t address32(uint64_t offset) {
  return static_cast<uint32_t>(layout::kAcpiTables + offset);
}

TableHeader make_header(std::string_view signature, uint64_t length, uint8_t revision) {
  TableHeader header{};
  std::memcpy(header.signature, signature.data(), sizeof(header.signature));
  header.length = static_cast<uint32_t>(length);
  header.revision = revision;
  copy_text(header.oem_id, "HV");
  copy_text(header.oem_table_id, "HVMACHIN");
  header.oem_revision = kOemRevision;
  copy_text(header.creator_id, "HV");
  header.creator_revision = kCreatorRevision;
  return header;
}

// Sets the header checksum of a table held in a struct so that all its bytes sum to zero.
template <typename T>
T sealed(T table) {
  table.header.checksum = 0;
  table.header.checksum = static_cast<uint8_t>(-boot::byte_sum(bytes_of(table)));
  return table;
}

GenericAddress io_register(uint16_t port, uint8_t bytes, uint8_t access_size) {
  return GenericAddress{kSpaceSystemIo, static_cast<uint8_t>(bytes * 8), 0, access_size, port};
}

Rsdp build_rsdp() {
  Rsdp rsdp{};
  std::memcpy(rsdp.signature, "RSD PTR ", sizeof(rsdp.signature));
  copy_text(rsdp.oem_id, "HV");
  rsdp.revision = kRsdpRevision;
  rsdp.rsdt_address = address32(kRsdtOffset);
  rsdp.length = sizeof(Rsdp);
  rsdp.xsdt_address = layout::kAcpiTables + kXsdtOffset;
  rsdp.checksum = static_cast<uint8_t>(-boot::byte_sum(bytes_of(rsdp).first(20)));
  rsdp.extended_checksum = static_cast<uint8_t>(-boot::byte_sum(bytes_of(rsdp)));
  return rsdp;
}

Facs build_facs() {
  Facs facs{};
  std::memcpy(facs.signature, "FACS", sizeof(facs.signature));
  facs.length = sizeof(Facs);
  facs.version = kFacsVersion;
  return facs;
}

Rsdt build_rsdt() {
  Rsdt rsdt{};
  rsdt.header = make_header("RSDT", sizeof(Rsdt), kRsdtRevision);
  rsdt.entries[0] = address32(kFadtOffset);
  rsdt.entries[1] = address32(kMadtOffset);
  return sealed(rsdt);
}

Xsdt build_xsdt() {
  Xsdt xsdt{};
  xsdt.header = make_header("XSDT", sizeof(Xsdt), kXsdtRevision);
  xsdt.entries[0] = layout::kAcpiTables + kFadtOffset;
  xsdt.entries[1] = layout::kAcpiTables + kMadtOffset;
  return sealed(xsdt);
}

Fadt build_fadt() {
  Fadt fadt{};
  fadt.header = make_header("FACP", sizeof(Fadt), kFadtRevision);
  // Both pointer widths, equal: ACPICA only complains when they differ, and older OSes read
  // only the 32-bit ones.
  fadt.firmware_ctrl = address32(kFacsOffset);
  fadt.dsdt = address32(kDsdtOffset);
  fadt.x_firmware_ctrl = layout::kAcpiTables + kFacsOffset;
  fadt.x_dsdt = layout::kAcpiTables + kDsdtOffset;
  fadt.sci_int = acpi::kSciIrq;
  fadt.smi_cmd = 0;  // no SMI command port: the machine is always in ACPI mode
  fadt.pm1a_evt_blk = acpi::kPm1aEventBlock;
  fadt.pm1a_cnt_blk = acpi::kPm1aControlBlock;
  fadt.pm_tmr_blk = acpi::kPmTimerBlock;
  fadt.pm1_evt_len = acpi::kPm1EventLength;
  fadt.pm1_cnt_len = acpi::kPm1ControlLength;
  fadt.pm_tmr_len = acpi::kPmTimerLength;
  fadt.p_lvl2_lat = kNoC2Latency;
  fadt.p_lvl3_lat = kNoC3Latency;
  fadt.century = kCmosCenturyRegister;
  fadt.iapc_boot_arch = kBootArchLegacyDevices | kBootArch8042 | kBootArchVgaNotPresent;
  fadt.flags = kFadtWbinvd | kFadtProcC1 | kFadtPowerButton | kFadtSleepButton |
               kFadtTimerValueExtended | kFadtResetRegisterSupported;
  fadt.reset_reg = io_register(acpi::kResetRegister, 1, kAccessByte);
  fadt.reset_value = acpi::kResetValue;
  fadt.minor_version = kFadtMinorVersion;
  // The generic addresses must repeat the 32-bit blocks' lengths, or ACPICA warns of a length
  // mismatch. The event block is two 16-bit registers (status, enable), hence word accesses.
  fadt.x_pm1a_evt_blk = io_register(acpi::kPm1aEventBlock, acpi::kPm1EventLength, kAccessWord);
  fadt.x_pm1a_cnt_blk = io_register(acpi::kPm1aControlBlock, acpi::kPm1ControlLength, kAccessWord);
  fadt.x_pm_tmr_blk = io_register(acpi::kPmTimerBlock, acpi::kPmTimerLength, kAccessDword);
  return sealed(fadt);
}

template <typename T>
void append(std::vector<uint8_t>& out, const T& entry) {
  const std::span<const uint8_t> bytes = bytes_of(entry);
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// AML, the DSDT's byte code (ACPI 6.0 section 20), for the few constructs the DSDT needs.
class AmlWriter {
 public:
  std::vector<uint8_t>& bytes() { return bytes_; }

  void byte(uint8_t value) { bytes_.push_back(value); }
  void dword(uint32_t value) {
    for (int i = 0; i < 4; ++i) {
      byte(static_cast<uint8_t>(value >> (8 * i)));
    }
  }
  void name_seg(std::string_view name) {  // exactly four characters
    for (char c : name.substr(0, 4)) {
      byte(static_cast<uint8_t>(c));
    }
  }
  // An object whose encoding starts with a PkgLength: `body` writes the contents, the length
  // (which counts its own bytes) goes in front of them afterwards.
  template <typename Body>
  void package(Body&& body) {
    const size_t start = bytes_.size();
    body();
    const size_t length = bytes_.size() - start;
    std::vector<uint8_t> prefix;
    if (length + 1 < 0x40) {
      prefix.push_back(static_cast<uint8_t>(length + 1));
    } else {
      const size_t total = length + 2;  // two-byte form: 4 + 8 bits, up to 4095
      prefix.push_back(static_cast<uint8_t>(0x40 | (total & 0x0f)));
      prefix.push_back(static_cast<uint8_t>(total >> 4));
    }
    bytes_.insert(bytes_.begin() + static_cast<ptrdiff_t>(start), prefix.begin(), prefix.end());
  }

 private:
  std::vector<uint8_t> bytes_;
};

constexpr uint8_t kAmlScopeOp = 0x10;
constexpr uint8_t kAmlExtOpPrefix = 0x5b;
constexpr uint8_t kAmlDeviceOp = 0x82;
constexpr uint8_t kAmlStringPrefix = 0x0d;
constexpr uint8_t kAmlBufferOp = 0x11;
constexpr uint8_t kAmlRootChar = 0x5c;
// Resource descriptors (section 6.4).
constexpr uint8_t kMemory32FixedDescriptor = 0x86;
constexpr uint8_t kReadWrite = 0x01;
constexpr uint8_t kExtendedInterruptDescriptor = 0x89;
constexpr uint8_t kConsumerEdgeActiveHighExclusive = 0x03;
constexpr uint8_t kEndTag = 0x79;

// Device (VRnn) { Name (_HID, "...") Name (_UID, n) Name (_CRS, ResourceTemplate () {
//   Memory32Fixed (ReadWrite, base, length) Interrupt (ResourceConsumer, Edge, ActiveHigh,
//   Exclusive) { irq } }) }
void append_mmio_device(AmlWriter& aml, const acpi::MmioDevice& device, size_t index) {
  aml.byte(kAmlExtOpPrefix);
  aml.byte(kAmlDeviceOp);
  aml.package([&] {
    const char name[5] = {'V', 'R', static_cast<char>('0' + index / 10),
                          static_cast<char>('0' + index % 10), 0};
    aml.name_seg(name);
    aml.byte(kAmlNameOp);
    aml.name_seg("_HID");
    aml.byte(kAmlStringPrefix);
    for (const char* c = device.hid; *c != 0; ++c) {
      aml.byte(static_cast<uint8_t>(*c));
    }
    aml.byte(0);
    aml.byte(kAmlNameOp);
    aml.name_seg("_UID");
    aml.byte(kAmlBytePrefix);
    aml.byte(static_cast<uint8_t>(index));
    aml.byte(kAmlNameOp);
    aml.name_seg("_CRS");
    aml.byte(kAmlBufferOp);
    aml.package([&] {
      constexpr uint8_t kResourceBytes = 12 + 9 + 2;
      aml.byte(kAmlBytePrefix);
      aml.byte(kResourceBytes);
      aml.byte(kMemory32FixedDescriptor);
      aml.byte(9);
      aml.byte(0);
      aml.byte(kReadWrite);
      aml.dword(static_cast<uint32_t>(device.base));
      aml.dword(device.length);
      aml.byte(kExtendedInterruptDescriptor);
      aml.byte(6);
      aml.byte(0);
      aml.byte(kConsumerEdgeActiveHighExclusive);
      aml.byte(1);  // one interrupt
      aml.dword(device.irq);
      aml.byte(kEndTag);
      aml.byte(0);  // checksum 0: "the sum is right"
    });
  });
}

Result<std::vector<uint8_t>> build_dsdt(std::span<const acpi::MmioDevice> devices) {
  if (devices.size() > acpi::kMaxMmioDevices) {
    return make_error(ExitStatus::Usage, "{} MMIO devices: the DSDT announces at most {}",
                      devices.size(), acpi::kMaxMmioDevices);
  }
  AmlWriter aml;
  // The header's place, then \_S5; the header is filled in once the size is known.
  aml.bytes().reserve(kDsdtMaxSize);
  const TableHeader placeholder{};
  const S5Object s5{};
  for (uint8_t b : bytes_of(placeholder)) {
    aml.byte(b);
  }
  for (uint8_t b : bytes_of(s5)) {
    aml.byte(b);
  }
  if (!devices.empty()) {
    aml.byte(kAmlScopeOp);
    aml.package([&] {
      aml.byte(kAmlRootChar);
      aml.name_seg("_SB_");
      for (size_t i = 0; i < devices.size(); ++i) {
        append_mmio_device(aml, devices[i], i);
      }
    });
  }
  std::vector<uint8_t> dsdt = std::move(aml.bytes());
  const TableHeader header = make_header("DSDT", static_cast<uint32_t>(dsdt.size()), kDsdtRevision);
  std::memcpy(dsdt.data(), &header, sizeof(header));
  dsdt[offsetof(TableHeader, checksum)] = static_cast<uint8_t>(-boot::byte_sum(dsdt));
  return dsdt;
}

std::vector<uint8_t> build_madt(uint32_t cpu_count) {
  const auto io_apic_id = static_cast<uint8_t>(cpu_count);
  MadtHeader header{};
  header.header = make_header("APIC", madt_size(cpu_count), kMadtRevision);
  header.local_apic_address = static_cast<uint32_t>(layout::kLocalApicBase);
  header.flags = kMadtPcatCompat;
  std::vector<uint8_t> madt;
  append(madt, header);

  for (uint32_t cpu = 0; cpu < cpu_count; ++cpu) {
    const auto id = static_cast<uint8_t>(cpu);
    append(madt, MadtLocalApic{kMadtLocalApic, sizeof(MadtLocalApic), id, id, kLocalApicEnabled});
  }
  append(madt, MadtIoApic{kMadtIoApic, sizeof(MadtIoApic), io_apic_id, 0,
                          static_cast<uint32_t>(layout::kIoApicBase), 0});
  // Other ISA IRQs reach the IOAPIC pin of their number, edge-triggered and active-high, which
  // needs no entry; the timer's is the pin of the PIC cascade, and the SCI is level-triggered.
  append(madt, MadtInterruptOverride{kMadtInterruptOverride, sizeof(MadtInterruptOverride), kIsaBus,
                                     0, kTimerGsi, kIntiConforming});
  append(madt, MadtInterruptOverride{kMadtInterruptOverride, sizeof(MadtInterruptOverride), kIsaBus,
                                     acpi::kSciIrq, acpi::kSciIrq, kIntiLevelActiveHigh});
  // LINT1 of every local APIC carries NMIs (virtual wire mode, LINT0 taking the PIC's ExtINT).
  append(madt, MadtLocalApicNmi{kMadtLocalApicNmi, sizeof(MadtLocalApicNmi), kAllProcessors,
                                kIntiConforming, kNmiLint});

  madt[offsetof(TableHeader, checksum)] = static_cast<uint8_t>(-boot::byte_sum(madt));
  return madt;
}

template <typename T>
void place(std::vector<uint8_t>& area, uint64_t offset, const T& table) {
  const std::span<const uint8_t> bytes = bytes_of(table);
  std::copy(bytes.begin(), bytes.end(), area.begin() + static_cast<ptrdiff_t>(offset));
}

}  // namespace

Result<uint64_t> write_acpi_tables(GuestMemory& memory, uint32_t cpu_count,
                                   std::span<const acpi::MmioDevice> devices) {
  if (cpu_count == 0 || cpu_count > acpi::kMaxCpus) {
    return make_error(ExitStatus::Usage,
                      "{} vCPUs cannot be described: the ACPI MADT holds 1 to {}", cpu_count,
                      acpi::kMaxCpus);
  }
  if (!has_acpi_area(memory)) {
    return make_error(ExitStatus::BadMemorySize,
                      "guest RAM ({} KiB) does not reach [{:#x}, {:#x}), where the ACPI tables go",
                      memory.size() >> 10, layout::kAcpiTables,
                      layout::kAcpiTables + layout::kAcpiTablesSize);
  }
  // Composed whole, so that writing it also clears what a previous call left.
  std::vector<uint8_t> area(layout::kAcpiTablesSize, 0);
  place(area, kRsdpOffset, build_rsdp());
  place(area, kFacsOffset, build_facs());
  place(area, kRsdtOffset, build_rsdt());
  place(area, kXsdtOffset, build_xsdt());
  place(area, kFadtOffset, build_fadt());
  const std::vector<uint8_t> dsdt = HV_TRY(build_dsdt(devices));
  if (dsdt.size() > kDsdtMaxSize) {
    return make_error(ExitStatus::Usage, "the DSDT for {} devices does not fit in {} bytes",
                      devices.size(), kDsdtMaxSize);
  }
  std::copy(dsdt.begin(), dsdt.end(), area.begin() + static_cast<ptrdiff_t>(kDsdtOffset));
  const std::vector<uint8_t> madt = build_madt(cpu_count);
  std::copy(madt.begin(), madt.end(), area.begin() + static_cast<ptrdiff_t>(kMadtOffset));
  HV_TRY(memory.write(layout::kAcpiTables, area));
  return acpi::kRsdpAddress;
}

}  // namespace hv
