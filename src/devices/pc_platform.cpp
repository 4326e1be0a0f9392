#include "devices/pc_platform.hpp"

#include <memory>

#include "devices/io_window.hpp"

namespace hv {

Status install_pc_devices(Machine& machine, CharSink* console_output, PcDevices* out) {
  IoBus& pio = machine.pio();
  StopControl& stop = machine.stop();
  PcDevices devices;

  devices.serial =
      machine.own(std::make_unique<Serial16550>(machine.irq_line(pc::kCom1Irq), console_output));
  HV_TRY(pio.add(pc::kCom1, Serial16550::kRegisterCount, devices.serial));

  const uint64_t memory_below_4g = machine.memory().low_memory_end();
  devices.rtc = machine.own(std::make_unique<CmosRtc>(
      machine.irq_line(pc::kRtcIrq), memory_below_4g, machine.memory().size() - memory_below_4g));
  HV_TRY(pio.add(pc::kCmosIndex, CmosRtc::kPortCount, devices.rtc));

  devices.i8042 = machine.own(std::make_unique<I8042>(machine.irq_line(pc::kKeyboardIrq),
                                                      machine.irq_line(pc::kAuxIrq), stop));
  HV_TRY(pio.add(pc::kKeyboardData, 1, devices.i8042));
  HV_TRY(pio.add(pc::kKeyboardCommand, 1,
                 machine.own(std::make_unique<IoWindow>(devices.i8042, I8042::kCommandOffset))));

  devices.debug_exit = machine.own(std::make_unique<DebugExit>(stop));
  HV_TRY(pio.add(pc::kDebugExit, DebugExit::kPortCount, devices.debug_exit));

  devices.pm1a_control =
      machine.own(std::make_unique<PowerControl>(stop, PowerControl::Kind::Pm1aControl));
  HV_TRY(pio.add(pc::kQemuPm1aControl, devices.pm1a_control->width(), devices.pm1a_control));
  HV_TRY(pio.add(pc::kBochsPm1aControl, devices.pm1a_control->width(), devices.pm1a_control));

  devices.pm1a_event =
      machine.own(std::make_unique<AcpiPmRegisters>(AcpiPmRegisters::Kind::Pm1aEvent));
  HV_TRY(pio.add(pc::kAcpiPm1aEvent, AcpiPmRegisters::kWidth, devices.pm1a_event));
  devices.pm_timer = machine.own(std::make_unique<AcpiPmRegisters>(AcpiPmRegisters::Kind::PmTimer));
  HV_TRY(pio.add(pc::kAcpiPmTimer, AcpiPmRegisters::kWidth, devices.pm_timer));

  devices.reset_control =
      machine.own(std::make_unique<PowerControl>(stop, PowerControl::Kind::ResetControl));
  HV_TRY(pio.add(pc::kResetControl, devices.reset_control->width(), devices.reset_control));

  devices.pci_bus = machine.own(std::make_unique<PciBus>());
  devices.pci_host = machine.own(std::make_unique<PciHostBridge>(devices.pci_bus));
  HV_TRY(pio.add(pc::kPciConfigAddress, 1, devices.pci_host));
  HV_TRY(pio.add(
      pc::kPciConfigData, PciHostBridge::kDataWidth,
      machine.own(std::make_unique<IoWindow>(devices.pci_host, PciHostBridge::kDataOffset))));

  devices.post_code = machine.own(std::make_unique<PostCodePort>());
  HV_TRY(pio.add(pc::kPostCode, PostCodePort::kPortCount, devices.post_code));
  HV_TRY(pio.add(pc::kAlternatePostCode, PostCodePort::kPortCount, devices.post_code));

  // The engines intercept hypercalls on the doorbell port before the bus; registering the service
  // there as well keeps any other device off the port.
  devices.hypercalls = machine.own(std::make_unique<HypercallService>(machine, console_output));
  HV_TRY(pio.add(pc::kHypercallDoorbell, hypercall::kDoorbellWidth, devices.hypercalls));
  machine.set_hypercalls(devices.hypercalls);

  if (out != nullptr) {
    *out = devices;
  }
  return {};
}

}  // namespace hv
