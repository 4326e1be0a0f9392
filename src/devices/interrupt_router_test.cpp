#include "devices/interrupt_router.hpp"

#include <chrono>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"
#include "devices/local_apic_test_support.hpp"

namespace hv {
namespace {

using apic_test::irr_bit;
using apic_test::write32;

class InterruptRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = InterruptRouter::create(*vm_.machine, timers_, {&signals_[0], &signals_[1]});
    ASSERT_TRUE(created.ok()) << created.error().to_string();
    router_ = std::move(created).value();
  }

  void mmio_write32(uint64_t address, uint32_t value) {
    uint8_t data[4] = {};
    set_io_value(data, value);
    vm_.machine->mmio().write(address, std::span<const uint8_t>(data));
  }
  void io_apic_route(uint32_t pin, uint32_t low, uint8_t destination) {
    mmio_write32(IoApic::kBaseAddress, 0x11 + 2 * pin);
    mmio_write32(IoApic::kBaseAddress + 0x10, static_cast<uint32_t>(destination) << 24);
    mmio_write32(IoApic::kBaseAddress, 0x10 + 2 * pin);
    mmio_write32(IoApic::kBaseAddress + 0x10, low);
  }
  void pic_init_like_linux() {
    for (const auto& [port, value] : {std::pair{0x20, 0x11},
                                      {0x21, 0x20},
                                      {0x21, 0x04},
                                      {0x21, 0x01},
                                      {0xa0, 0x11},
                                      {0xa1, 0x28},
                                      {0xa1, 0x02},
                                      {0xa1, 0x01}}) {
      vm_.outb(port, static_cast<uint8_t>(value));
    }
  }

  TimerService timers_;
  device_test::TestMachine vm_;
  apic_test::RecordingSignals signals_[2];
  std::unique_ptr<InterruptRouter> router_;
};

TEST_F(InterruptRouterTest, Gsi0ReachesPicIrq0AndIoApicPin2) {
  pic_init_like_linux();
  vm_.outb(0x21, 0xfe);  // PIC: only IRQ 0
  LocalApic& bsp = router_->local_apic(0);
  apic_test::software_enable(bsp);
  io_apic_route(2, 0x30, 0);  // pin 2 -> vector 0x30 on the BSP
  io_apic_route(0, 0x31, 0);  // pin 0 must stay quiet
  vm_.machine->irq_line(0).raise();
  EXPECT_TRUE(irr_bit(bsp, 0x30));
  EXPECT_FALSE(irr_bit(bsp, 0x31));
  EXPECT_TRUE(router_->pic().has_interrupt());
  EXPECT_GE(signals_[0].interrupts.load(), 1);
  // The BSP's LINT0 is ExtINT out of reset: the PIC's interrupt comes first, then the APIC's.
  EXPECT_TRUE(bsp.has_interrupt());
  EXPECT_EQ(bsp.acknowledge(), 0x20);
  vm_.outb(0x20, 0x20);
  EXPECT_EQ(bsp.acknowledge(), 0x30);
  write32(bsp, 0xb0, 0);
  EXPECT_FALSE(bsp.has_interrupt());
  vm_.machine->irq_line(0).lower();
}

TEST_F(InterruptRouterTest, IsaAndPciGsisReachTheirPins) {
  LocalApic& ap = router_->local_apic(1);
  apic_test::software_enable(ap);
  io_apic_route(4, 0x34, 1);
  io_apic_route(19, 0xa053, 1);  // level, active low (PCI)
  vm_.machine->irq_line(4).raise();
  vm_.machine->irq_line(19).raise();
  EXPECT_TRUE(irr_bit(ap, 0x34));
  EXPECT_TRUE(irr_bit(ap, 0x53));
  vm_.machine->irq_line(24).raise();  // out of range: ignored
  vm_.machine->irq_line(4).lower();
  vm_.machine->irq_line(19).lower();
}

TEST_F(InterruptRouterTest, PitInterruptsReachThePicThroughGsi0) {
  pic_init_like_linux();
  vm_.outb(0x21, 0xfe);
  vm_.outb(0x43, 0x34);  // channel 0, mode 2, 1 kHz
  vm_.outb(0x40, 0xa9);
  vm_.outb(0x40, 0x04);
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  while (!router_->pic().has_interrupt() && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  EXPECT_TRUE(router_->pic().has_interrupt());
  EXPECT_EQ(router_->local_apic(0).acknowledge(), 0x20);
  vm_.outb(0x43, 0x30);
}

TEST_F(InterruptRouterTest, RejectsBadCpuCounts) {
  auto machine = Machine::create({.memory_bytes = 2 << 20});
  ASSERT_TRUE(machine.ok());
  EXPECT_FALSE(InterruptRouter::create(**machine, timers_, {}).ok());
  // Registering twice on the same buses fails.
  EXPECT_FALSE(InterruptRouter::create(*vm_.machine, timers_, {nullptr}).ok());
}

}  // namespace
}  // namespace hv
