#include "devices/io_apic.hpp"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "devices/local_apic_test_support.hpp"

namespace hv {
namespace {

using apic_test::irr_bit;
using apic_test::read32;
using apic_test::write32;

constexpr uint64_t kSelect = 0x00;
constexpr uint64_t kWindow = 0x10;
constexpr uint64_t kRemoteIrr = 1u << 14;

class IoApicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint8_t id = 0; id < 2; ++id) {
      apics_.push_back(std::make_unique<LocalApic>(id, id == 0, bus_, timers_, &signals_[id]));
      bus_.attach(apics_.back().get());
      apic_test::software_enable(*apics_.back());
    }
    io_apic_ = std::make_unique<IoApic>(bus_);
    bus_.set_eoi_listener([this](uint8_t vector) { io_apic_->end_of_interrupt(vector); });
  }

  uint32_t read_register(uint32_t index) {
    write32(*io_apic_, kSelect, index);
    return read32(*io_apic_, kWindow);
  }
  void write_register(uint32_t index, uint32_t value) {
    write32(*io_apic_, kSelect, index);
    write32(*io_apic_, kWindow, value);
  }
  void route(uint32_t pin, uint32_t low, uint8_t destination) {
    write_register(0x11 + 2 * pin, static_cast<uint32_t>(destination) << 24);
    write_register(0x10 + 2 * pin, low);
  }
  void eoi(LocalApic& apic) { write32(apic, 0xb0, 0); }

  TimerService timers_;
  apic_test::RecordingSignals signals_[2];
  ApicBus bus_;
  std::vector<std::unique_ptr<LocalApic>> apics_;
  std::unique_ptr<IoApic> io_apic_;
};

TEST_F(IoApicTest, IdentificationRegisters) {
  EXPECT_EQ(read_register(1), 0x00170011u);
  write_register(0, 0xffffffff);
  EXPECT_EQ(read_register(0), 0x0f000000u);
  EXPECT_EQ(read_register(2), 0x0f000000u);
  EXPECT_EQ(read32(*io_apic_, kSelect), 2u);  // the selector reads back
}

TEST_F(IoApicTest, RedirectionEntriesResetMaskedAndKeepReadOnlyBits) {
  EXPECT_EQ(read_register(0x10), 0x00010000u);
  EXPECT_EQ(read_register(0x10 + 2 * 23), 0x00010000u);
  write_register(0x10 + 2 * 5, 0xffffffff);
  EXPECT_EQ(read_register(0x10 + 2 * 5), 0x0001afffu);  // no delivery status, no remote IRR
  write_register(0x11 + 2 * 5, 0xffffffff);
  EXPECT_EQ(read_register(0x11 + 2 * 5), 0xff000000u);
  EXPECT_EQ(read_register(0x10 + 2 * 24), 0u);  // past the last pin
}

TEST_F(IoApicTest, FixedEdgeDeliveryReachesTheRightApic) {
  route(5, 0x35, 1);  // fixed, physical, edge, unmasked, vector 0x35 -> APIC 1
  io_apic_->set_irq(5, true);
  EXPECT_TRUE(irr_bit(*apics_[1], 0x35));
  EXPECT_FALSE(irr_bit(*apics_[0], 0x35));
  EXPECT_GE(signals_[1].interrupts.load(), 1);
  EXPECT_TRUE(apics_[1]->has_interrupt());
  EXPECT_EQ(apics_[1]->acknowledge(), 0x35);
  eoi(*apics_[1]);
  io_apic_->set_irq(5, true);  // no new edge
  EXPECT_FALSE(irr_bit(*apics_[1], 0x35));
}

TEST_F(IoApicTest, MaskedPinsDeliverNothing) {
  route(7, 0x10037, 0);  // masked
  io_apic_->set_irq(7, true);
  io_apic_->set_irq(7, false);
  EXPECT_FALSE(irr_bit(*apics_[0], 0x37));
  route(7, 0x37, 0);  // unmasking does not replay a lost edge
  EXPECT_FALSE(irr_bit(*apics_[0], 0x37));
}

TEST_F(IoApicTest, LogicalBroadcastReachesBoth) {
  write32(*apics_[0], 0xd0, 0x01000000);
  write32(*apics_[1], 0xd0, 0x02000000);
  route(3, 0x833, 0x02);  // logical, flat, APIC with LDR bit 1
  io_apic_->set_irq(3, true);
  EXPECT_TRUE(irr_bit(*apics_[1], 0x33));
  EXPECT_FALSE(irr_bit(*apics_[0], 0x33));
  route(4, 0x834, 0xff);
  io_apic_->set_irq(4, true);
  EXPECT_TRUE(irr_bit(*apics_[0], 0x34));
  EXPECT_TRUE(irr_bit(*apics_[1], 0x34));
}

TEST_F(IoApicTest, LevelTriggeredRemoteIrrAndEoiRedelivery) {
  route(9, 0x8049, 0);  // fixed, level, vector 0x49 -> APIC 0
  io_apic_->set_irq(9, true);
  EXPECT_TRUE(irr_bit(*apics_[0], 0x49));
  EXPECT_NE(read_register(0x10 + 2 * 9) & kRemoteIrr, 0u);
  EXPECT_EQ(apics_[0]->acknowledge(), 0x49);
  EXPECT_TRUE(apic_test::isr_bit(*apics_[0], 0x49));
  EXPECT_NE(read32(*apics_[0], 0x180 + 0x20) & (1u << 9), 0u);  // TMR marks it level
  io_apic_->set_irq(9, true);  // still asserted; remote IRR holds it back
  EXPECT_FALSE(irr_bit(*apics_[0], 0x49));
  eoi(*apics_[0]);  // line still high: remote IRR cleared, delivered again
  EXPECT_TRUE(irr_bit(*apics_[0], 0x49));
  EXPECT_NE(read_register(0x10 + 2 * 9) & kRemoteIrr, 0u);
  EXPECT_EQ(apics_[0]->acknowledge(), 0x49);
  io_apic_->set_irq(9, false);
  eoi(*apics_[0]);
  EXPECT_EQ(read_register(0x10 + 2 * 9) & kRemoteIrr, 0u);
  EXPECT_FALSE(irr_bit(*apics_[0], 0x49));
}

TEST_F(IoApicTest, UnmaskingAnAssertedLevelPinDelivers) {
  route(10, 0x1804a, 0);  // level, masked
  io_apic_->set_irq(10, true);
  EXPECT_FALSE(irr_bit(*apics_[0], 0x4a));
  route(10, 0x804a, 0);
  EXPECT_TRUE(irr_bit(*apics_[0], 0x4a));
}

TEST_F(IoApicTest, NmiAndExtIntModes) {
  route(11, 0x400, 1);  // NMI to APIC 1
  io_apic_->set_irq(11, true);
  EXPECT_TRUE(apics_[1]->take_nmi());
  EXPECT_FALSE(apics_[1]->take_nmi());
  EXPECT_EQ(signals_[1].nmis.load(), 1);
}

TEST_F(IoApicTest, HostileAccessesAreHarmless) {
  uint8_t data[8] = {};
  io_apic_->read(0x1000, data);
  io_apic_->write(0x13, std::span<const uint8_t>(data, 1));
  io_apic_->set_irq(24, true);
  io_apic_->set_irq(0xffffffff, true);
  write_register(0xff, 0xffffffff);
  EXPECT_EQ(read_register(0xff), 0u);
  write32(*io_apic_, kSelect, 0x10);
  set_io_value(data, 0xffffffffffffffff);
  io_apic_->write(kWindow, std::span<const uint8_t>(data, 8));  // 64-bit: low dword used
  EXPECT_EQ(read_register(0x10), 0x0001afffu);
}

}  // namespace
}  // namespace hv
