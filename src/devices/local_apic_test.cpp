#include "devices/local_apic.hpp"

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "devices/local_apic_test_support.hpp"

namespace hv {
namespace {

using namespace std::chrono_literals;
using apic_test::irr_bit;
using apic_test::isr_bit;
using apic_test::read32;
using apic_test::write32;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kTpr = 0x80;
constexpr uint64_t kPpr = 0xa0;
constexpr uint64_t kEoi = 0xb0;
constexpr uint64_t kLdr = 0xd0;
constexpr uint64_t kDfr = 0xe0;
constexpr uint64_t kSvr = 0xf0;
constexpr uint64_t kEsr = 0x280;
constexpr uint64_t kIcrLow = 0x300;
constexpr uint64_t kIcrHigh = 0x310;
constexpr uint64_t kLvtTimer = 0x320;
constexpr uint64_t kLvtLint0 = 0x350;
constexpr uint64_t kInitialCount = 0x380;
constexpr uint64_t kCurrentCount = 0x390;
constexpr uint64_t kDivide = 0x3e0;

class LocalApicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint8_t id = 0; id < 3; ++id) {
      apics_.push_back(std::make_unique<LocalApic>(id, id == 0, bus_, timers_, &signals_[id]));
      bus_.attach(apics_.back().get());
    }
  }
  LocalApic& apic(size_t i) { return *apics_[i]; }
  void fixed(LocalApic& target, uint8_t vector) {
    ApicMessage message;
    message.vector = vector;
    message.destination = target.id();
    EXPECT_EQ(bus_.deliver(message), 1u);
  }
  void send_ipi(LocalApic& from, uint8_t destination, uint32_t low) {
    write32(from, kIcrHigh, static_cast<uint32_t>(destination) << 24);
    write32(from, kIcrLow, low);
  }

  TimerService timers_;
  apic_test::RecordingSignals signals_[3];
  ApicBus bus_;
  std::vector<std::unique_ptr<LocalApic>> apics_;
};

TEST_F(LocalApicTest, ResetState) {
  EXPECT_EQ(read32(apic(1), 0x20), 0x01000000u);
  EXPECT_EQ(read32(apic(0), 0x30), 0x00050014u);
  EXPECT_EQ(read32(apic(0), kSvr), 0xffu);
  EXPECT_EQ(read32(apic(0), kDfr), 0xffffffffu);
  EXPECT_EQ(read32(apic(0), kLvtTimer), 0x10000u);
  EXPECT_EQ(read32(apic(0), kLvtLint0), 0x700u);  // BSP: virtual wire
  EXPECT_EQ(read32(apic(1), kLvtLint0), 0x10000u);
  EXPECT_EQ(apic(0).base(), 0xfee00900u);
  EXPECT_EQ(apic(1).base(), 0xfee00800u);
}

TEST_F(LocalApicTest, SoftwareDisabledApicDropsFixedInterrupts) {
  ApicMessage message;
  message.vector = 0x40;
  message.destination = 1;
  EXPECT_EQ(bus_.deliver(message), 0u);
  EXPECT_FALSE(irr_bit(apic(1), 0x40));
  write32(apic(1), kSvr, 0x1ff);
  EXPECT_EQ(read32(apic(1), kSvr), 0x1ffu);
  EXPECT_EQ(bus_.deliver(message), 1u);
  EXPECT_TRUE(irr_bit(apic(1), 0x40));
  // LVT writes while disabled stay masked.
  write32(apic(2), kLvtTimer, 0x30);
  EXPECT_EQ(read32(apic(2), kLvtTimer), 0x10030u);
}

TEST_F(LocalApicTest, TprMasksByPriorityClass) {
  apic_test::software_enable(apic(1));
  fixed(apic(1), 0x45);
  write32(apic(1), kTpr, 0x50);
  EXPECT_EQ(read32(apic(1), kPpr), 0x50u);
  EXPECT_FALSE(apic(1).has_interrupt());
  write32(apic(1), kTpr, 0x4f);  // same class: still blocked
  EXPECT_FALSE(apic(1).has_interrupt());
  EXPECT_EQ(apic(1).acknowledge(), -1);
  write32(apic(1), kTpr, 0x3f);
  EXPECT_TRUE(apic(1).has_interrupt());
  EXPECT_EQ(apic(1).acknowledge(), 0x45);
  EXPECT_EQ(read32(apic(1), kPpr), 0x40u);  // ISR class outranks TPR
  apic(1).set_task_priority(0x70);
  EXPECT_EQ(read32(apic(1), kTpr), 0x70u);
  EXPECT_EQ(read32(apic(1), kPpr), 0x70u);
}

TEST_F(LocalApicTest, HighestVectorFirstAndNestedEoi) {
  apic_test::software_enable(apic(1));
  fixed(apic(1), 0x31);
  fixed(apic(1), 0x81);
  fixed(apic(1), 0x51);
  EXPECT_EQ(apic(1).acknowledge(), 0x81);
  EXPECT_FALSE(apic(1).has_interrupt());  // 0x51 is below the in-service 0x81
  fixed(apic(1), 0x91);
  EXPECT_EQ(apic(1).acknowledge(), 0x91);  // nests
  EXPECT_TRUE(isr_bit(apic(1), 0x81));
  EXPECT_TRUE(isr_bit(apic(1), 0x91));
  write32(apic(1), kEoi, 0);  // ends the highest: 0x91
  EXPECT_FALSE(isr_bit(apic(1), 0x91));
  EXPECT_TRUE(isr_bit(apic(1), 0x81));
  EXPECT_FALSE(apic(1).has_interrupt());
  write32(apic(1), kEoi, 0);
  EXPECT_EQ(apic(1).acknowledge(), 0x51);
  write32(apic(1), kEoi, 0);
  EXPECT_EQ(apic(1).acknowledge(), 0x31);
  write32(apic(1), kEoi, 0);
  EXPECT_FALSE(apic(1).has_interrupt());
  EXPECT_EQ(read32(apic(1), 0x100 + 0x10), 0u);
}

TEST_F(LocalApicTest, IllegalVectorSetsEsr) {
  apic_test::software_enable(apic(1));
  ApicMessage message;
  message.vector = 0x05;
  message.destination = 1;
  EXPECT_EQ(bus_.deliver(message), 0u);
  EXPECT_EQ(read32(apic(1), kEsr), 0u);  // latched by the next write
  write32(apic(1), kEsr, 0);
  EXPECT_EQ(read32(apic(1), kEsr), 0x40u);
  write32(apic(1), kEsr, 0);
  EXPECT_EQ(read32(apic(1), kEsr), 0u);
}

TEST_F(LocalApicTest, OneShotTimer) {
  apic_test::software_enable(apic(0));
  write32(apic(0), kDivide, 0xb);  // divide by 1
  write32(apic(0), kLvtTimer, 0x40);
  write32(apic(0), kInitialCount, 5'000'000);  // 5 ms at 1 GHz
  EXPECT_GT(read32(apic(0), kCurrentCount), 0u);
  EXPECT_FALSE(irr_bit(apic(0), 0x40));
  const auto end = Clock::now() + 500ms;
  while (!irr_bit(apic(0), 0x40) && Clock::now() < end) {
    std::this_thread::sleep_for(200us);
  }
  EXPECT_TRUE(irr_bit(apic(0), 0x40));
  EXPECT_EQ(read32(apic(0), kCurrentCount), 0u);
  EXPECT_EQ(apic(0).acknowledge(), 0x40);
  write32(apic(0), kEoi, 0);
  std::this_thread::sleep_for(12ms);
  EXPECT_FALSE(irr_bit(apic(0), 0x40));  // once only
}

TEST_F(LocalApicTest, PeriodicTimer) {
  apic_test::software_enable(apic(2));
  write32(apic(2), kDivide, 0x0);  // divide by 2
  write32(apic(2), kLvtTimer, 0x20041);
  const int before = signals_[2].interrupts.load();
  const auto start = Clock::now();
  write32(apic(2), kInitialCount, 1'000'000);  // 2 ms period
  std::this_thread::sleep_for(50ms);
  write32(apic(2), kInitialCount, 0);  // stop
  const double elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  const int fired = signals_[2].interrupts.load() - before;
  EXPECT_GE(fired, static_cast<int>(elapsed_ms / 2 * 0.8) - 1);
  EXPECT_LE(fired, static_cast<int>(elapsed_ms / 2) + 1);
  EXPECT_TRUE(irr_bit(apic(2), 0x41));
  EXPECT_EQ(read32(apic(2), kCurrentCount), 0u);
}

TEST_F(LocalApicTest, DivideConfigurationScalesTheCount) {
  for (const auto& [config, divide] :
       {std::pair{0xbu, 1u}, std::pair{0x0u, 2u}, std::pair{0x3u, 16u}, std::pair{0xau, 128u}}) {
    write32(apic(1), kDivide, config);
    EXPECT_EQ(read32(apic(1), kDivide), config);
    const auto before_start = Clock::now();
    write32(apic(1), kInitialCount, 0xffffffff);
    const auto after_start = Clock::now();
    std::this_thread::sleep_for(2ms);
    const auto before_read = Clock::now();
    const uint32_t count = read32(apic(1), kCurrentCount);
    const auto after_read = Clock::now();
    const uint64_t counted = 0xffffffffu - count;
    const auto ns = [](auto d) {
      return static_cast<uint64_t>(std::chrono::nanoseconds(d).count());
    };
    EXPECT_GE(counted, ns(before_read - after_start) / divide) << "divide " << divide;
    EXPECT_LE(counted, ns(after_read - before_start) / divide + 1) << "divide " << divide;
  }
  write32(apic(1), kInitialCount, 0);
}

TEST_F(LocalApicTest, InitAndStartupToAllButSelf) {
  send_ipi(apic(0), 0, 0x000c4500);  // INIT, assert, all excluding self
  EXPECT_EQ(signals_[0].inits.load(), 0);
  EXPECT_EQ(signals_[1].inits.load(), 1);
  EXPECT_EQ(signals_[2].inits.load(), 1);
  send_ipi(apic(0), 0, 0x000c8500);  // INIT level de-assert: no effect
  EXPECT_EQ(signals_[1].inits.load(), 1);
  send_ipi(apic(0), 0, 0x000c4608);  // SIPI vector 8, all excluding self
  EXPECT_EQ(signals_[1].startups.load(), 1);
  EXPECT_EQ(signals_[1].last_startup_vector.load(), 0x08);
  EXPECT_EQ(signals_[2].startups.load(), 1);
  EXPECT_EQ(signals_[0].startups.load(), 0);
  EXPECT_EQ(read32(apic(0), kIcrLow) & (1u << 12), 0u);  // delivery status idle
}

TEST_F(LocalApicTest, InitToOneApicResetsIt) {
  apic_test::software_enable(apic(2));
  write32(apic(2), kTpr, 0x20);
  send_ipi(apic(0), 2, 0x00004500);  // INIT, physical destination 2
  EXPECT_EQ(signals_[2].inits.load(), 1);
  EXPECT_EQ(signals_[1].inits.load(), 0);
  EXPECT_EQ(read32(apic(2), kSvr), 0xffu);
  EXPECT_EQ(read32(apic(2), kTpr), 0u);
  EXPECT_EQ(read32(apic(2), 0x20), 0x02000000u);
}

TEST_F(LocalApicTest, FixedIpisWithShorthandsAndDestinations) {
  for (auto& a : apics_) {
    apic_test::software_enable(*a);
  }
  send_ipi(apic(1), 0, 0x00040030);  // self
  EXPECT_TRUE(irr_bit(apic(1), 0x30));
  EXPECT_FALSE(irr_bit(apic(0), 0x30));
  EXPECT_FALSE(irr_bit(apic(2), 0x30));
  send_ipi(apic(0), 2, 0x00000041);  // physical 2
  EXPECT_TRUE(irr_bit(apic(2), 0x41));
  EXPECT_FALSE(irr_bit(apic(1), 0x41));
  send_ipi(apic(0), 0xff, 0x00000042);  // physical broadcast
  EXPECT_TRUE(irr_bit(apic(0), 0x42) && irr_bit(apic(1), 0x42) && irr_bit(apic(2), 0x42));
  send_ipi(apic(0), 0, 0x00080043);  // all including self
  EXPECT_TRUE(irr_bit(apic(0), 0x43) && irr_bit(apic(1), 0x43) && irr_bit(apic(2), 0x43));
  // Logical flat: LDR bits 0, 1, 2.
  for (uint32_t i = 0; i < 3; ++i) {
    write32(apic(i), kLdr, (1u << i) << 24);
  }
  send_ipi(apic(0), 0x06, 0x00000844);
  EXPECT_FALSE(irr_bit(apic(0), 0x44));
  EXPECT_TRUE(irr_bit(apic(1), 0x44));
  EXPECT_TRUE(irr_bit(apic(2), 0x44));
  // Logical cluster: cluster 1 members 1 and 2 are APICs 1 and 2.
  for (uint32_t i = 0; i < 3; ++i) {
    write32(apic(i), kDfr, 0x0fffffff);
    write32(apic(i), kLdr, (i == 0 ? 0x21u : (0x10u | (1u << (i - 1)))) << 24);
  }
  EXPECT_EQ(read32(apic(0), kDfr), 0x0fffffffu);
  send_ipi(apic(0), 0x12, 0x00000845);
  EXPECT_FALSE(irr_bit(apic(0), 0x45));
  EXPECT_FALSE(irr_bit(apic(1), 0x45));
  EXPECT_TRUE(irr_bit(apic(2), 0x45));
  // Lowest priority picks one: the lowest TPR.
  write32(apic(1), kTpr, 0x30);
  send_ipi(apic(0), 0x13, 0x00000946);
  EXPECT_FALSE(irr_bit(apic(1), 0x46));
  EXPECT_TRUE(irr_bit(apic(2), 0x46));
  // NMI to all but self.
  send_ipi(apic(2), 0, 0x000c0400);
  EXPECT_TRUE(apic(0).take_nmi());
  EXPECT_TRUE(apic(1).take_nmi());
  EXPECT_FALSE(apic(2).take_nmi());
  EXPECT_EQ(signals_[0].nmis.load(), 1);
}

TEST_F(LocalApicTest, Lint0ExtIntAsksThePic) {
  struct FakePic : ExternalInterruptController {
    uint8_t acknowledge() override { return 0x20; }
  } pic;
  apic(0).set_external_controller(&pic);
  EXPECT_FALSE(apic(0).has_interrupt());
  apic(0).set_lint(0, true);
  EXPECT_TRUE(apic(0).has_interrupt());
  EXPECT_EQ(apic(0).acknowledge(), 0x20);
  write32(apic(0), kLvtLint0, 0x10700);  // masked: the PIC is cut off
  EXPECT_FALSE(apic(0).has_interrupt());
  // A hardware-disabled APIC passes INTR straight through.
  EXPECT_TRUE(apic(0).set_base(0xfee00100));
  EXPECT_TRUE(apic(0).has_interrupt());
  apic(0).set_lint(0, false);
  EXPECT_FALSE(apic(0).has_interrupt());
  EXPECT_FALSE(apic(0).set_base(0xfed00900));  // relocation refused
  EXPECT_FALSE(apic(0).set_base(0xfee00d00));  // x2APIC refused
  EXPECT_EQ(apic(0).base(), 0xfee00100u);
  EXPECT_TRUE(apic(0).set_base(0xfee00900));
}

TEST_F(LocalApicTest, HostileAccessesAreHarmless) {
  uint8_t data[8] = {};
  apic(0).read(0x1000, data);
  apic(0).read(0xfff, data);
  EXPECT_EQ(data[0], 0u);
  apic(0).write(0x302, std::span<const uint8_t>(data, 2));
  set_io_value(data, 0xffffffffffffffff);
  for (uint64_t offset = 0; offset < 0x1000; offset += 0x10) {
    if (offset != kIcrLow && offset != kIcrHigh) {
      apic(1).write(offset, std::span<const uint8_t>(data, 4));
    }
  }
  uint8_t word[4] = {};
  apic(1).read(0x30, std::span(word, 2));
  EXPECT_EQ(word[0], 0x14);
  EXPECT_EQ(word[1], 0x00);
  write32(apic(1), kInitialCount, 0);
}

}  // namespace
}  // namespace hv
