#include "devices/pc_platform.hpp"

#include <string>

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"

namespace hv {
namespace {

class PcPlatformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status status = install_pc_devices(*vm_.machine, &console_, &devices_);
    ASSERT_TRUE(status.ok()) << status.error().to_string();
  }
  std::string device_at(uint64_t port) {
    const IoBus::Mapping* mapping = vm_.pio().find(port);
    return mapping == nullptr ? "" : std::string(mapping->device->name());
  }

  device_test::TestMachine vm_;
  device_test::RecordingSink console_;
  PcDevices devices_;
};

TEST_F(PcPlatformTest, EveryDeviceIsCreated) {
  EXPECT_NE(devices_.serial, nullptr);
  EXPECT_NE(devices_.rtc, nullptr);
  EXPECT_NE(devices_.i8042, nullptr);
  EXPECT_NE(devices_.debug_exit, nullptr);
  EXPECT_NE(devices_.pm1a_control, nullptr);
  EXPECT_NE(devices_.reset_control, nullptr);
  EXPECT_NE(devices_.pci_host, nullptr);
  EXPECT_NE(devices_.post_code, nullptr);
  EXPECT_NE(devices_.hypercalls, nullptr);
  EXPECT_EQ(vm_.machine->hypercalls(), devices_.hypercalls) << "the engines find it there";
}

TEST_F(PcPlatformTest, EveryPortIsRegistered) {
  for (uint64_t port = 0x3f8; port <= 0x3ff; ++port) {
    EXPECT_EQ(device_at(port), "serial-16550") << port;
  }
  EXPECT_EQ(device_at(0x60), "i8042");
  EXPECT_EQ(device_at(0x64), "i8042");
  EXPECT_EQ(device_at(0x70), "cmos-rtc");
  EXPECT_EQ(device_at(0x71), "cmos-rtc");
  EXPECT_EQ(device_at(0x80), "post-code");
  EXPECT_EQ(device_at(0xed), "post-code");
  for (uint64_t port = 0xf4; port <= 0xf7; ++port) {
    EXPECT_EQ(device_at(port), "debug-exit") << port;
  }
  for (uint64_t port = 0x600; port <= 0x603; ++port) {
    EXPECT_EQ(device_at(port), "acpi-pm1a-event") << port;
  }
  for (uint64_t port = 0x608; port <= 0x60b; ++port) {
    EXPECT_EQ(device_at(port), "acpi-pm-timer") << port;
  }
  EXPECT_EQ(device_at(0x604), "acpi-pm1a-control");
  EXPECT_EQ(device_at(0x605), "acpi-pm1a-control");
  EXPECT_EQ(device_at(0xb004), "acpi-pm1a-control");
  EXPECT_EQ(device_at(0xb005), "acpi-pm1a-control");
  EXPECT_EQ(device_at(0xcf8), "pci-host-bridge");
  EXPECT_EQ(device_at(0xcf9), "reset-control");
  for (uint64_t port = 0xcfc; port <= 0xcff; ++port) {
    EXPECT_EQ(device_at(port), "pci-host-bridge") << port;
  }
  // The hypercall doorbell, reserved so that no device takes it (the engines intercept calls).
  for (uint64_t port = 0xcb0; port <= 0xcb3; ++port) {
    EXPECT_EQ(device_at(port), "hypercall-doorbell") << port;
  }
  // Left to the engine: PICs, PIT, speaker port; and nothing leaks onto neighbours.
  for (uint64_t port :
       {0x20, 0x21,  0x40,  0x43,  0x61,  0x62,  0x63,  0x65,  0x72,  0x81,  0xa0, 0xa1,
        0xf8, 0x3f7, 0x400, 0x5ff, 0x606, 0x60c, 0xcaf, 0xcb4, 0xcfa, 0xcfb, 0xd00}) {
    EXPECT_EQ(device_at(port), "") << std::hex << port;
  }
  EXPECT_EQ(vm_.pio().mappings().size(), 15u);
}

TEST_F(PcPlatformTest, SecondInstallOverlapsAndFails) {
  PcDevices second;
  Status status = install_pc_devices(*vm_.machine, &console_, &second);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("overlaps"), std::string::npos) << status.error().message;
  EXPECT_EQ(vm_.pio().mappings().size(), 15u);
  EXPECT_EQ(device_at(0x3f8), "serial-16550");
}

TEST_F(PcPlatformTest, DevicesAreWiredToTheirIrqsAndTheConsole) {
  vm_.outb(0x3f8, 'k');
  EXPECT_EQ(console_.bytes(), std::vector<uint8_t>{'k'});

  vm_.outb(0x3f9, 0x01);  // received data interrupt
  const uint8_t input[] = {'i'};
  EXPECT_EQ(devices_.serial->receive(input), 1u);
  EXPECT_TRUE(vm_.irqs.level(pc::kCom1Irq));
  EXPECT_EQ(vm_.inb(0x3f8), 'i');
  EXPECT_FALSE(vm_.irqs.level(pc::kCom1Irq));

  vm_.outb(0x60, 0xff);  // keyboard reset: answered through IRQ 1
  EXPECT_TRUE(vm_.irqs.level(pc::kKeyboardIrq));
  EXPECT_EQ(vm_.inb(0x60), 0xfa);
  EXPECT_EQ(vm_.inb(0x60), 0xaa);
  EXPECT_FALSE(vm_.irqs.level(pc::kKeyboardIrq));
  EXPECT_EQ(vm_.irqs.rising_edges(pc::kKeyboardIrq), 2);
}

TEST_F(PcPlatformTest, CmosReportsTheMachinesMemory) {
  vm_.outb(0x70, 0x17);
  EXPECT_EQ(vm_.inb(0x71), 0x00);
  vm_.outb(0x70, 0x18);
  EXPECT_EQ(vm_.inb(0x71), 0x04);  // 2 MiB machine: 1024 KiB above 1 MiB
}

TEST_F(PcPlatformTest, PciProbeSeesTheHostBridgeAlone) {
  vm_.outl(0xcf8, 0x8000'0000);
  EXPECT_EQ(vm_.inl(0xcf8), 0x8000'0000u);
  EXPECT_EQ(vm_.inl(0xcfc), 0x1237'8086u);  // 00:00.0, the i440FX host bridge
  vm_.outl(0xcf8, 0x8000'0800);
  EXPECT_EQ(vm_.inl(0xcfc), 0xffff'ffffu);  // 00:01.0, empty
  vm_.outl(0xcf8, 0x8000'0000);
  // A byte at 0xcf9 is the reset control register, not CONFIG_ADDRESS.
  vm_.outb(0xcf9, 0x02);
  EXPECT_EQ(vm_.inb(0xcf9), 0x02);
  EXPECT_EQ(vm_.inl(0xcf8), 0x8000'0000u);
  EXPECT_FALSE(vm_.stop_reason(1).has_value());
}

TEST_F(PcPlatformTest, ResetThroughTheChipsetRegister) {
  vm_.outb(0xcf9, 0x06);
  auto reason = vm_.stop_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->kind, StopKind::Reset);
  EXPECT_EQ(reason->exit_status, 0);
}

TEST_F(PcPlatformTest, InstallWithoutOutputsIsAllowed) {
  device_test::TestMachine other;
  ASSERT_TRUE(install_pc_devices(*other.machine, nullptr, nullptr).ok());
  other.outb(0x3f8, 'x');  // no sink: discarded
  EXPECT_EQ(other.inb(0x3fd) & 0x60, 0x60);
}

}  // namespace
}  // namespace hv
