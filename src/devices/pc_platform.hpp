// The legacy PC devices every guest expects, built and wired onto a Machine in one call, and
// hv's hypercall service (devices/hypercalls.hpp) with its doorbell port.
//
// Not installed here: the PICs, the PIT and the speaker port 0x61. KVM provides them in the
// kernel; the emulator engine will register its own.
#pragma once

#include "boot/acpi.hpp"
#include "common/error.hpp"
#include "devices/acpi_pm.hpp"
#include "devices/char_sink.hpp"
#include "devices/cmos_rtc.hpp"
#include "devices/debug_exit.hpp"
#include "devices/hypercalls.hpp"
#include "devices/i8042.hpp"
#include "devices/pci_bus.hpp"
#include "devices/pci_host.hpp"
#include "devices/post_code.hpp"
#include "devices/power_control.hpp"
#include "devices/serial_16550.hpp"
#include "vm/machine.hpp"

namespace hv {

// Port addresses and interrupt lines of the devices install_pc_devices() creates.
namespace pc {
constexpr uint64_t kKeyboardData = 0x60;
constexpr uint64_t kKeyboardCommand = 0x64;
constexpr uint64_t kCmosIndex = 0x70;
constexpr uint64_t kPostCode = 0x80;
constexpr uint64_t kAlternatePostCode = 0xed;  // Linux's io_delay=0xed
constexpr uint64_t kDebugExit = 0xf4;
constexpr uint64_t kCom1 = 0x3f8;
// The ACPI PM block, at the ports the FADT announces (boot/acpi.hpp).
constexpr uint64_t kAcpiPm1aEvent = acpi::kPm1aEventBlock;
constexpr uint64_t kQemuPm1aControl = acpi::kPm1aControlBlock;
constexpr uint64_t kAcpiPmTimer = acpi::kPmTimerBlock;
constexpr uint64_t kBochsPm1aControl = 0xb004;
constexpr uint64_t kPciConfigAddress = 0xcf8;
constexpr uint64_t kResetControl = acpi::kResetRegister;
constexpr uint64_t kPciConfigData = 0xcfc;
constexpr uint64_t kHypercallDoorbell = hypercall::kDoorbellPort;  // 0xcb0, see hypercalls.hpp

constexpr uint32_t kKeyboardIrq = 1;
constexpr uint32_t kCom1Irq = 4;
constexpr uint32_t kRtcIrq = 8;
constexpr uint32_t kAuxIrq = 12;
}  // namespace pc

// Owned by the Machine; valid as long as it is.
struct PcDevices {
  Serial16550* serial = nullptr;  // feed console input with serial->receive()
  CmosRtc* rtc = nullptr;
  I8042* i8042 = nullptr;
  DebugExit* debug_exit = nullptr;
  AcpiPmRegisters* pm1a_event = nullptr;  // 0x600
  PowerControl* pm1a_control = nullptr;   // 0x604 and 0xb004
  AcpiPmRegisters* pm_timer = nullptr;    // 0x608
  PowerControl* reset_control = nullptr;  // 0xcf9
  PciBus* pci_bus = nullptr;              // plug PCI devices here
  PciHostBridge* pci_host = nullptr;
  PostCodePort* post_code = nullptr;       // 0x80 and 0xed
  HypercallService* hypercalls = nullptr;  // 0xcb0; also the machine's hypercalls()
};

// Creates the devices, gives them to `machine` and registers them on its port-I/O bus. Serial
// output and CONSOLE_WRITE hypercalls go to `console_output` (may be null). `out` may be null.
// Fails if a port is taken (e.g. when called twice); devices created before the failure stay
// owned, unregistered.
Status install_pc_devices(Machine& machine, CharSink* console_output, PcDevices* out);

}  // namespace hv
