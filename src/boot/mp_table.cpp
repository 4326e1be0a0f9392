// Intel MultiProcessor Specification 1.4: a floating pointer structure that guests find by
// scanning the EBDA, pointing to a configuration table that lists the processors, the ISA bus,
// the IOAPIC and how ISA IRQs reach IOAPIC pins. Both live in the 1 KiB EBDA when they fit (up
// to 40 vCPUs), the table otherwise in the BIOS area; e820 marks both reserved so the guest does
// not reuse them.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "boot/image_bytes.hpp"
#include "boot/layout.hpp"
#include "boot/machine_tables.hpp"

namespace hv {

namespace {

struct [[gnu::packed]] MpFloatingPointer {
  char signature[4];  // "_MP_"
  uint32_t config_table_address;
  uint8_t length_in_16_bytes;
  uint8_t spec_revision;
  uint8_t checksum;
  uint8_t features[5];  // feature 1 = 0: a configuration table is present
};

struct [[gnu::packed]] MpConfigHeader {
  char signature[4];  // "PCMP"
  uint16_t base_table_length;
  uint8_t spec_revision;
  uint8_t checksum;
  char oem_id[8];
  char product_id[12];
  uint32_t oem_table_address;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t local_apic_address;
  uint16_t extended_table_length;
  uint8_t extended_table_checksum;
  uint8_t reserved;
};

struct [[gnu::packed]] MpProcessorEntry {
  uint8_t type;  // 0
  uint8_t local_apic_id;
  uint8_t local_apic_version;
  uint8_t cpu_flags;
  uint32_t cpu_signature;
  uint32_t feature_flags;
  uint32_t reserved[2];
};

struct [[gnu::packed]] MpBusEntry {
  uint8_t type;  // 1
  uint8_t bus_id;
  char bus_type[6];
};

struct [[gnu::packed]] MpIoApicEntry {
  uint8_t type;  // 2
  uint8_t io_apic_id;
  uint8_t io_apic_version;
  uint8_t flags;
  uint32_t address;
};

// Types 3 (I/O interrupt assignment) and 4 (local interrupt assignment) share this layout.
struct [[gnu::packed]] MpInterruptEntry {
  uint8_t type;
  uint8_t interrupt_type;
  uint16_t flags;  // 0: polarity and trigger mode conform to the bus (ISA: high, edge)
  uint8_t source_bus_id;
  uint8_t source_bus_irq;
  uint8_t destination_apic_id;
  uint8_t destination_pin;
};

static_assert(sizeof(MpFloatingPointer) == 16);
static_assert(sizeof(MpConfigHeader) == 44);
static_assert(sizeof(MpProcessorEntry) == 20);
static_assert(sizeof(MpBusEntry) == 8);
static_assert(sizeof(MpIoApicEntry) == 8);
static_assert(sizeof(MpInterruptEntry) == 8);

constexpr uint64_t config_table_size(uint64_t cpu_count) {
  constexpr uint64_t kFixedEntries = 1 + 1 + 15 + 2;  // bus, IOAPIC, IRQ routes, LINT0/1
  return sizeof(MpConfigHeader) + cpu_count * sizeof(MpProcessorEntry) + kFixedEntries * 8;
}
static_assert(sizeof(MpFloatingPointer) + config_table_size(kMaxEbdaMpTableCpus) <=
                  layout::kEbdaSize &&
              sizeof(MpFloatingPointer) + config_table_size(kMaxEbdaMpTableCpus + 1) >
                  layout::kEbdaSize);
static_assert(layout::kMpTableOverflow + config_table_size(kMaxMpTableCpus) <=
              layout::kHighMemoryStart);

constexpr uint8_t kEntryProcessor = 0;
constexpr uint8_t kEntryBus = 1;
constexpr uint8_t kEntryIoApic = 2;
constexpr uint8_t kEntryIoInterrupt = 3;
constexpr uint8_t kEntryLocalInterrupt = 4;

constexpr uint8_t kInterruptInt = 0;
constexpr uint8_t kInterruptNmi = 1;
constexpr uint8_t kInterruptExtInt = 3;

constexpr uint8_t kSpecRevision14 = 4;
constexpr uint8_t kLocalApicVersion = 0x14;
constexpr uint8_t kIoApicVersion = 0x11;
constexpr uint8_t kCpuEnabled = 1u << 0;
constexpr uint8_t kCpuBootstrap = 1u << 1;
constexpr uint8_t kIoApicEnabled = 1u << 0;
constexpr uint8_t kAllLocalApics = 0xff;
constexpr uint8_t kIsaBusId = 0;
constexpr uint32_t kIsaIrqCount = 16;
// The IOAPIC pin the 8254 timer (ISA IRQ 0) is wired to, as on real PCs and KVM's IOAPIC.
constexpr uint8_t kTimerIoApicPin = 2;

// Family 6, model 15, stepping 1, and the CPUID.1:EDX features of any x86-64 CPU (FPU, TSC,
// MSR, PAE, APIC, CMOV, PAT, MMX, FXSR, SSE, SSE2, ...): guests only use these for display.
constexpr uint32_t kCpuSignature = (6u << 8) | (15u << 4) | 1u;
constexpr uint32_t kCpuFeatureFlags = 0x078b'fbff;

// Where the BIOS data area records the EBDA segment and the base memory size in KiB.
constexpr uint64_t kBdaEbdaSegment = 0x40e;
constexpr uint64_t kBdaBaseMemoryKib = 0x413;

template <typename T>
void append(std::vector<uint8_t>& out, const T& entry) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&entry);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

template <size_t N>
void copy_text(char (&field)[N], std::string_view text) {
  std::memset(field, ' ', N);  // MP strings are space-padded, not NUL-terminated
  std::memcpy(field, text.data(), std::min(N, text.size()));
}

std::vector<uint8_t> build_config_table(uint32_t cpu_count) {
  const auto io_apic_id = static_cast<uint8_t>(cpu_count);
  std::vector<uint8_t> entries;
  uint16_t entry_count = 0;

  for (uint32_t cpu = 0; cpu < cpu_count; ++cpu) {
    MpProcessorEntry processor{};
    processor.type = kEntryProcessor;
    processor.local_apic_id = static_cast<uint8_t>(cpu);
    processor.local_apic_version = kLocalApicVersion;
    processor.cpu_flags = kCpuEnabled | (cpu == 0 ? kCpuBootstrap : 0);
    processor.cpu_signature = kCpuSignature;
    processor.feature_flags = kCpuFeatureFlags;
    append(entries, processor);
    ++entry_count;
  }

  MpBusEntry bus{};
  bus.type = kEntryBus;
  bus.bus_id = kIsaBusId;
  std::memcpy(bus.bus_type, "ISA   ", sizeof(bus.bus_type));
  append(entries, bus);
  ++entry_count;

  MpIoApicEntry io_apic{};
  io_apic.type = kEntryIoApic;
  io_apic.io_apic_id = io_apic_id;
  io_apic.io_apic_version = kIoApicVersion;
  io_apic.flags = kIoApicEnabled;
  io_apic.address = static_cast<uint32_t>(layout::kIoApicBase);
  append(entries, io_apic);
  ++entry_count;

  for (uint32_t irq = 0; irq < kIsaIrqCount; ++irq) {
    if (irq == kTimerIoApicPin) {
      continue;  // IRQ 2 is the PIC cascade; its pin carries the timer instead
    }
    MpInterruptEntry route{};
    route.type = kEntryIoInterrupt;
    route.interrupt_type = kInterruptInt;
    route.source_bus_id = kIsaBusId;
    route.source_bus_irq = static_cast<uint8_t>(irq);
    route.destination_apic_id = io_apic_id;
    route.destination_pin = irq == 0 ? kTimerIoApicPin : static_cast<uint8_t>(irq);
    append(entries, route);
    ++entry_count;
  }

  // Virtual wire mode: the PIC reaches the CPUs through LINT0, NMIs through LINT1.
  for (auto [interrupt_type, pin] :
       {std::pair{kInterruptExtInt, uint8_t{0}}, std::pair{kInterruptNmi, uint8_t{1}}}) {
    MpInterruptEntry local{};
    local.type = kEntryLocalInterrupt;
    local.interrupt_type = interrupt_type;
    local.source_bus_id = kIsaBusId;
    local.source_bus_irq = 0;
    local.destination_apic_id = kAllLocalApics;
    local.destination_pin = pin;
    append(entries, local);
    ++entry_count;
  }

  MpConfigHeader header{};
  std::memcpy(header.signature, "PCMP", 4);
  header.base_table_length = static_cast<uint16_t>(sizeof(MpConfigHeader) + entries.size());
  header.spec_revision = kSpecRevision14;
  copy_text(header.oem_id, "HV");
  copy_text(header.product_id, "HV VM");
  header.entry_count = entry_count;
  header.local_apic_address = static_cast<uint32_t>(layout::kLocalApicBase);

  std::vector<uint8_t> table;
  append(table, header);
  table.insert(table.end(), entries.begin(), entries.end());
  table[offsetof(MpConfigHeader, checksum)] = static_cast<uint8_t>(-boot::byte_sum(table));
  return table;
}

}  // namespace

Status write_mp_table(GuestMemory& memory, uint32_t cpu_count) {
  if (cpu_count == 0 || cpu_count > kMaxMpTableCpus) {
    return make_error(ExitStatus::Usage, "{} vCPUs cannot be described: the MP table holds 1 to {}",
                      cpu_count, kMaxMpTableCpus);
  }
  const std::vector<uint8_t> config = build_config_table(cpu_count);
  const bool fits_in_ebda = sizeof(MpFloatingPointer) + config.size() <= layout::kEbdaSize;
  const uint64_t config_address =
      fits_in_ebda ? layout::kEbdaStart + sizeof(MpFloatingPointer) : layout::kMpTableOverflow;

  MpFloatingPointer pointer{};
  std::memcpy(pointer.signature, "_MP_", 4);
  pointer.config_table_address = static_cast<uint32_t>(config_address);
  pointer.length_in_16_bytes = 1;
  pointer.spec_revision = kSpecRevision14;
  std::array<uint8_t, sizeof(pointer)> pointer_bytes;
  std::memcpy(pointer_bytes.data(), &pointer, sizeof(pointer));
  pointer.checksum = static_cast<uint8_t>(-boot::byte_sum(pointer_bytes));

  if (!memory.contains(layout::kEbdaStart, layout::kEbdaSize)) {
    return make_error(ExitStatus::BadMemorySize,
                      "guest RAM ({} KiB) does not reach the EBDA at {:#x} for the MP table",
                      memory.size() >> 10, layout::kEbdaStart);
  }
  if (!memory.contains(config_address, config.size())) {
    return make_error(ExitStatus::BadMemorySize,
                      "guest RAM ({} KiB) does not reach {:#x}, where the MP table for {} vCPUs "
                      "goes",
                      memory.size() >> 10, config_address, cpu_count);
  }
  HV_TRY(memory.fill(layout::kEbdaStart, 0, layout::kEbdaSize));
  HV_TRY(memory.write_object(layout::kEbdaStart, pointer));
  HV_TRY(memory.write(config_address, config));
  HV_TRY(memory.write_object(kBdaEbdaSegment, static_cast<uint16_t>(layout::kEbdaStart >> 4)));
  HV_TRY(memory.write_object(kBdaBaseMemoryKib, static_cast<uint16_t>(layout::kEbdaStart >> 10)));
  return {};
}

}  // namespace hv
