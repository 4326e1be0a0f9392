// ACPI tables for guests that find their CPUs, interrupt controllers, PM timer and power-off only
// through ACPI (Linux built without CONFIG_X86_MPPARSE, as Debian's cloud kernel is).
#pragma once

#include <cstdint>
#include <span>

#include "boot/layout.hpp"
#include "common/error.hpp"
#include "vm/guest_memory.hpp"

namespace hv {

namespace acpi {

// The fixed-hardware registers the FADT announces, at the I/O ports QEMU's q35 uses, so device
// code and the tables cannot disagree.
constexpr uint16_t kPm1aEventBlock = 0x600;    // PM1 status (16 bits), then PM1 enable (16 bits)
constexpr uint16_t kPm1aControlBlock = 0x604;  // PM1 control (16 bits)
constexpr uint16_t kPmTimerBlock = 0x608;      // 3.579545 MHz counter, 32 bits (TMR_VAL_EXT)
constexpr uint8_t kPm1EventLength = 4;
constexpr uint8_t kPm1ControlLength = 2;
constexpr uint8_t kPmTimerLength = 4;
constexpr uint8_t kSciIrq = 9;              // ISA IRQ and GSI; level-triggered, active-high
constexpr uint16_t kResetRegister = 0xcf9;  // chipset reset control, 8 bits
constexpr uint8_t kResetValue = 0x06;       // SYS_RST | RST_CPU: a full reset
constexpr uint8_t kSleepTypeS5 = 5;         // \_S5's SLP_TYP, PM1 control bits 12:10
constexpr uint16_t kSleepTypeShift = 10;
constexpr uint64_t kRsdpAddress = layout::kAcpiTables;  // 16-byte aligned, in the scanned area

// xAPIC IDs are 8 bits and 0xff means "all"; the IOAPIC takes the ID after the last CPU's, as in
// the MP table. The tables for this many CPUs fit in layout::kAcpiTablesSize many times over.
constexpr uint32_t kMaxCpus = 254;

// A device in the MMIO hole that the DSDT announces (under \_SB), with its register window and
// its interrupt (an ISA IRQ: edge-triggered, active-high, as the MADT leaves them).
struct MmioDevice {
  const char* hid;  // e.g. "LNRO0005", virtio-mmio's ACPI ID, which Linux's driver matches
  uint64_t base;
  uint32_t length;
  uint32_t irq;
};
constexpr size_t kMaxMmioDevices = 16;

}  // namespace acpi

// Whether this guest's RAM holds the ACPI area: load_kernel writes the tables exactly then, and
// the Linux loader points boot_params at them on the same condition.
inline bool has_acpi_area(const GuestMemory& memory) {
  return memory.contains(layout::kAcpiTables, layout::kAcpiTablesSize);
}

// Writes, in [layout::kAcpiTables, + kAcpiTablesSize): an ACPI 2.0+ RSDP, an RSDT and an XSDT
// listing a revision 6 FADT (with its FACS and a DSDT that defines \_S5 and `devices`) and a MADT
// with one local APIC per vCPU (processor UID = APIC ID = vCPU index), the IOAPIC (ID = cpu_count)
// and the ISA overrides for the timer (IRQ 0 -> GSI 2) and the SCI. Returns the RSDP address.
// Usage error for 0 or more than acpi::kMaxCpus vCPUs; BadMemorySize when the area is not RAM.
Result<uint64_t> write_acpi_tables(GuestMemory& memory, uint32_t cpu_count,
                                   std::span<const acpi::MmioDevice> devices = {});

}  // namespace hv
