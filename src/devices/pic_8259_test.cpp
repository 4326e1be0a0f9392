#include "devices/pic_8259.hpp"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"

namespace hv {
namespace {

constexpr uint64_t kMasterCommand = 0x20;
constexpr uint64_t kMasterData = 0x21;
constexpr uint64_t kSlaveCommand = 0xa0;
constexpr uint64_t kSlaveData = 0xa1;
constexpr uint64_t kElcrMaster = 0x4d0;
constexpr uint64_t kElcrSlave = 0x4d1;
constexpr uint8_t kNonSpecificEoi = 0x20;
constexpr uint8_t kReadIrr = 0x0a;
constexpr uint8_t kReadIsr = 0x0b;

class Pic8259Test : public ::testing::Test {
 protected:
  void SetUp() override {
    pic_ = std::make_unique<Pic8259Pair>([this](bool level) { intr_changes_.push_back(level); });
    ASSERT_TRUE(pic_->install(vm_.pio()).ok());
  }

  // What Linux's init_8259A() writes.
  void init_like_linux() {
    vm_.outb(kMasterData, 0xff);
    vm_.outb(kSlaveData, 0xff);
    vm_.outb(kMasterCommand, 0x11);  // ICW1: edge, cascade, ICW4
    vm_.outb(kMasterData, 0x20);     // ICW2: vectors 0x20-0x27
    vm_.outb(kMasterData, 0x04);     // ICW3: slave on IRQ 2
    vm_.outb(kMasterData, 0x01);     // ICW4: 8086 mode, normal EOI
    vm_.outb(kSlaveCommand, 0x11);
    vm_.outb(kSlaveData, 0x28);
    vm_.outb(kSlaveData, 0x02);
    vm_.outb(kSlaveData, 0x01);
  }

  void pulse(uint32_t irq) {
    pic_->set_irq(irq, true);
    pic_->set_irq(irq, false);
  }

  device_test::TestMachine vm_;
  std::unique_ptr<Pic8259Pair> pic_;
  std::vector<bool> intr_changes_;
};

TEST_F(Pic8259Test, LinuxInitSequenceProgramsTheVectorBases) {
  init_like_linux();
  // ICW1 clears the masks; Linux restores its cached ones afterwards.
  EXPECT_EQ(vm_.inb(kMasterData), 0x00);
  EXPECT_EQ(vm_.inb(kSlaveData), 0x00);
  pulse(0);
  EXPECT_EQ(pic_->acknowledge(), 0x20);
  vm_.outb(kMasterCommand, kNonSpecificEoi);
  pulse(15);
  EXPECT_EQ(pic_->acknowledge(), 0x2f);
  vm_.outb(kSlaveCommand, kNonSpecificEoi);
  vm_.outb(kMasterCommand, kNonSpecificEoi);
  EXPECT_FALSE(pic_->has_interrupt());
}

TEST_F(Pic8259Test, MaskAndUnmask) {
  init_like_linux();
  vm_.outb(kMasterData, 0xfe);  // only IRQ 0
  vm_.outb(kSlaveData, 0xff);
  EXPECT_EQ(vm_.inb(kMasterData), 0xfe);
  EXPECT_EQ(vm_.inb(kSlaveData), 0xff);
  pulse(1);
  EXPECT_FALSE(pic_->has_interrupt());
  vm_.outb(kMasterCommand, kReadIrr);
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x02);  // latched in IRR although masked
  vm_.outb(kMasterData, 0xfc);               // unmask IRQ 1: the latched edge is delivered
  EXPECT_TRUE(pic_->has_interrupt());
  EXPECT_EQ(intr_changes_, std::vector<bool>{true});
  EXPECT_EQ(pic_->acknowledge(), 0x21);
  EXPECT_FALSE(pic_->has_interrupt());
  EXPECT_EQ(intr_changes_, (std::vector<bool>{true, false}));
  vm_.outb(kMasterCommand, kReadIsr);
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x02);
  vm_.outb(kMasterCommand, kNonSpecificEoi);
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x00);
}

TEST_F(Pic8259Test, EdgeTriggeredLatchesOnlyRisingEdges) {
  init_like_linux();
  vm_.outb(kMasterData, 0x00);
  pic_->set_irq(3, true);
  EXPECT_EQ(pic_->acknowledge(), 0x23);
  vm_.outb(kMasterCommand, kNonSpecificEoi);
  // Still high, but no new edge: nothing pending.
  EXPECT_FALSE(pic_->has_interrupt());
  pic_->set_irq(3, true);
  EXPECT_FALSE(pic_->has_interrupt());
  pic_->set_irq(3, false);
  pic_->set_irq(3, true);
  EXPECT_TRUE(pic_->has_interrupt());
}

TEST_F(Pic8259Test, LevelTriggeredFollowsTheLine) {
  init_like_linux();
  vm_.outb(kElcrSlave, 0xff);
  EXPECT_EQ(vm_.inb(kElcrSlave), 0xde);  // IRQ 8 and 13 cannot be level-triggered
  vm_.outb(kElcrMaster, 0x20);
  EXPECT_EQ(vm_.inb(kElcrMaster), 0x20);
  vm_.outb(kMasterData, 0x00);
  pic_->set_irq(5, true);
  EXPECT_EQ(pic_->acknowledge(), 0x25);
  vm_.outb(kMasterCommand, kNonSpecificEoi);
  EXPECT_TRUE(pic_->has_interrupt());  // still asserted: requested again
  pic_->set_irq(5, false);
  EXPECT_FALSE(pic_->has_interrupt());
  vm_.outb(kMasterCommand, kReadIrr);
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x00);
}

TEST_F(Pic8259Test, PriorityAndNestedEoi) {
  init_like_linux();
  vm_.outb(kMasterData, 0x00);
  pic_->set_irq(4, true);
  pic_->set_irq(1, true);
  EXPECT_EQ(pic_->acknowledge(), 0x21);  // IRQ 1 outranks IRQ 4
  EXPECT_FALSE(pic_->has_interrupt());   // IRQ 4 waits for IRQ 1's EOI
  pic_->set_irq(0, true);
  EXPECT_TRUE(pic_->has_interrupt());  // IRQ 0 nests above IRQ 1
  EXPECT_EQ(pic_->acknowledge(), 0x20);
  vm_.outb(kMasterCommand, kReadIsr);
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x03);
  vm_.outb(kMasterCommand, kNonSpecificEoi);  // clears the highest: IRQ 0
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x02);
  EXPECT_FALSE(pic_->has_interrupt());
  vm_.outb(kMasterCommand, 0x61);  // specific EOI for IRQ 1
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x00);
  EXPECT_EQ(pic_->acknowledge(), 0x24);
}

TEST_F(Pic8259Test, SlaveCascadesThroughIrq2) {
  init_like_linux();
  vm_.outb(kMasterData, 0xfb);  // only the cascade
  vm_.outb(kSlaveData, 0x00);
  pulse(14);
  EXPECT_TRUE(pic_->has_interrupt());
  EXPECT_EQ(pic_->acknowledge(), 0x2e);
  vm_.outb(kMasterCommand, kReadIsr);
  vm_.outb(kSlaveCommand, kReadIsr);
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x04);
  EXPECT_EQ(vm_.inb(kSlaveCommand), 0x40);
  pulse(9);  // outranks 14 on the slave, but the master's IRQ 2 is in service
  EXPECT_FALSE(pic_->has_interrupt());
  vm_.outb(kSlaveCommand, kNonSpecificEoi);
  vm_.outb(kMasterCommand, kNonSpecificEoi);
  EXPECT_TRUE(pic_->has_interrupt());
  EXPECT_EQ(pic_->acknowledge(), 0x29);
}

TEST_F(Pic8259Test, VanishedRequestGivesSpuriousIrq7) {
  init_like_linux();
  vm_.outb(kMasterData, 0x00);
  vm_.outb(kElcrMaster, 0x08);  // IRQ 3 level-triggered
  pic_->set_irq(3, true);
  EXPECT_TRUE(pic_->has_interrupt());
  pic_->set_irq(3, false);  // gone before the CPU's INTA
  EXPECT_EQ(pic_->acknowledge(), 0x27);
  vm_.outb(kMasterCommand, kReadIsr);
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x00);  // spurious: no ISR bit
}

TEST_F(Pic8259Test, AutoEoiAndPollMode) {
  init_like_linux();
  vm_.outb(kMasterCommand, 0x11);
  vm_.outb(kMasterData, 0x08);
  vm_.outb(kMasterData, 0x04);
  vm_.outb(kMasterData, 0x03);  // ICW4: auto-EOI
  vm_.outb(kMasterData, 0x00);
  pulse(6);
  EXPECT_EQ(pic_->acknowledge(), 0x0e);
  vm_.outb(kMasterCommand, kReadIsr);
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x00);
  pulse(5);
  vm_.outb(kMasterCommand, 0x0c);            // OCW3 poll
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x85);  // request present, IRQ 5
  EXPECT_FALSE(pic_->has_interrupt());
  vm_.outb(kMasterCommand, 0x0c);
  EXPECT_EQ(vm_.inb(kMasterCommand), 0x00);
}

TEST_F(Pic8259Test, HostileAccessesAreHarmless) {
  init_like_linux();
  vm_.outl(kMasterCommand, 0xffffffff);
  vm_.outb(kSlaveCommand, 0xff);
  pic_->set_irq(16, true);
  pic_->set_irq(0xffffffff, true);
  uint8_t data[8] = {};
  pic_->read(100, data);
  EXPECT_EQ(data[0], 0xff);
  pic_->write(1ull << 63, std::span<const uint8_t>(data));
}

}  // namespace
}  // namespace hv
