#include "devices/pit_8254.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"

namespace hv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kChannel0 = 0x40;
constexpr uint64_t kChannel1 = 0x41;
constexpr uint64_t kChannel2 = 0x42;
constexpr uint64_t kControl = 0x43;
constexpr uint64_t kPortB = 0x61;

class Pit8254Test : public ::testing::Test {
 protected:
  void SetUp() override {
    pit_ = std::make_unique<Pit8254>(timers_, [this](bool level) {
      if (level && !irq_level_) {
        ++irq_edges_;
      }
      irq_level_ = level;
    });
    ASSERT_TRUE(pit_->install(vm_.pio()).ok());
  }

  uint16_t read_counter(uint64_t port) {
    const uint8_t low = vm_.inb(port);
    return static_cast<uint16_t>(low | (vm_.inb(port) << 8));
  }

  // Runs channel 0 in `mode` at `hz` for about 50 ms and checks the interrupt rate.
  void expect_irq_rate(uint8_t mode, uint32_t hz) {
    const uint16_t count = static_cast<uint16_t>(Pit8254::kInputHz / hz);
    vm_.outb(kControl, static_cast<uint8_t>(0x30 | (mode << 1)));
    const auto start = Clock::now();
    vm_.outb(kChannel0, static_cast<uint8_t>(count));
    vm_.outb(kChannel0, static_cast<uint8_t>(count >> 8));
    std::this_thread::sleep_for(50ms);
    const int edges = irq_edges_.load();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    vm_.outb(kControl, 0x30);  // stop: mode 0 waiting for a count
    const double expected = elapsed * Pit8254::kInputHz / count;
    EXPECT_GE(edges, static_cast<int>(expected * 0.9) - 1) << "mode " << int{mode};
    EXPECT_LE(edges, static_cast<int>(expected * 1.1) + 1) << "mode " << int{mode};
  }

  TimerService timers_;
  device_test::TestMachine vm_;
  std::atomic<int> irq_edges_{0};
  std::atomic<bool> irq_level_{false};
  std::unique_ptr<Pit8254> pit_;
};

TEST_F(Pit8254Test, Mode2InterruptRate) {
  expect_irq_rate(2, 1000);
}

TEST_F(Pit8254Test, Mode3InterruptRate) {
  expect_irq_rate(3, 2000);
}

TEST_F(Pit8254Test, Mode0FiresOnceAndHoldsTheLine) {
  vm_.outb(kControl, 0x30);
  vm_.outb(kChannel0, 0x9c);  // 0x2e9c = 11932: 10 ms
  vm_.outb(kChannel0, 0x2e);
  EXPECT_FALSE(irq_level_.load());
  std::this_thread::sleep_for(40ms);
  EXPECT_EQ(irq_edges_.load(), 1);
  EXPECT_TRUE(irq_level_.load());
  vm_.outb(kControl, 0x30);  // reprogramming drops the output
  EXPECT_FALSE(irq_level_.load());
}

TEST_F(Pit8254Test, CounterDecreasesAtTheInputClock) {
  vm_.outb(kControl, 0x74);  // channel 1, lo/hi, mode 2
  vm_.outb(kChannel1, 0xff);
  vm_.outb(kChannel1, 0xff);
  // Latched reads: without a latch the low and high bytes are read at different moments, and a
  // borrow between them makes the pair up to 255 ticks off, as on hardware.
  const auto t0 = Clock::now();
  vm_.outb(kControl, 0x40);
  const uint16_t first = read_counter(kChannel1);
  std::this_thread::sleep_for(5ms);
  vm_.outb(kControl, 0x40);
  const uint16_t second = read_counter(kChannel1);
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_LT(elapsed, 0.05) << "host too slow for this check";
  EXPECT_LT(second, first);
  const double ticks = first - second;
  EXPECT_GE(ticks, 0.005 * Pit8254::kInputHz * 0.95);
  EXPECT_LE(ticks, elapsed * Pit8254::kInputHz + 2);
}

TEST_F(Pit8254Test, LatchFreezesTheReadValue) {
  vm_.outb(kControl, 0x74);
  vm_.outb(kChannel1, 0xff);
  vm_.outb(kChannel1, 0xff);
  vm_.outb(kControl, 0x40);  // latch channel 1
  std::this_thread::sleep_for(3ms);
  const uint16_t latched = read_counter(kChannel1);
  const uint16_t live = read_counter(kChannel1);
  EXPECT_GT(latched, live);
  EXPECT_GE(latched - live, 3000);  // ~3.6k ticks in 3 ms
}

TEST_F(Pit8254Test, ReadBackReturnsStatusThenCount) {
  vm_.outb(kControl, 0x74);  // channel 1, lo/hi, mode 2, binary
  vm_.outb(kChannel1, 0x00);
  vm_.outb(kChannel1, 0x80);
  vm_.outb(kControl, 0xc4);  // read-back: latch count and status of channel 1
  const uint8_t status = vm_.inb(kChannel1);
  EXPECT_EQ(status & 0x7f, 0x34);  // count loaded, lo/hi, mode 2, binary
  const uint16_t count = read_counter(kChannel1);
  EXPECT_LE(count, 0x8000);
  EXPECT_GT(count, 0x7000);
  // Status only, before any count is written: null count set.
  vm_.outb(kControl, 0xb0);             // channel 2, lo/hi, mode 0
  vm_.outb(kControl, 0xe8);             // read-back status of channel 2
  EXPECT_EQ(vm_.inb(kChannel2), 0x70);  // output low, null count, lo/hi, mode 0
}

TEST_F(Pit8254Test, BcdCounting) {
  vm_.outb(kControl, 0x75);  // channel 1, lo/hi, mode 2, BCD
  vm_.outb(kChannel1, 0x00);
  vm_.outb(kChannel1, 0x00);  // 0 means 10000
  const uint16_t value = read_counter(kChannel1);
  for (int shift = 0; shift < 16; shift += 4) {
    EXPECT_LE((value >> shift) & 0xf, 9) << std::hex << value;
  }
}

// Linux's pit_calibrate_tsc(): gate on, speaker off, mode 0 on channel 2, wait for OUT2.
TEST_F(Pit8254Test, Channel2CalibrationLoopLikeLinux) {
  vm_.outb(kPortB, static_cast<uint8_t>((vm_.inb(kPortB) & ~0x02) | 0x01));
  vm_.outb(kControl, 0xb0);
  const uint16_t latch = 11932;  // 10 ms
  vm_.outb(kChannel2, static_cast<uint8_t>(latch));
  const auto start = Clock::now();
  vm_.outb(kChannel2, static_cast<uint8_t>(latch >> 8));
  EXPECT_EQ(vm_.inb(kPortB) & 0x20, 0);
  int loops = 0;
  while ((vm_.inb(kPortB) & 0x20) == 0 && Clock::now() - start < 1s) {
    ++loops;
  }
  const auto elapsed = Clock::now() - start;
  EXPECT_GT(loops, 0);
  EXPECT_GE(elapsed, 9900us);
  EXPECT_LT(elapsed, 200ms);
  EXPECT_EQ(vm_.inb(kPortB) & 0x21, 0x21);  // stays high; gate bit reads back
}

TEST_F(Pit8254Test, Channel2GateLowPausesMode0) {
  vm_.outb(kPortB, 0x00);  // gate off
  vm_.outb(kControl, 0xb0);
  vm_.outb(kChannel2, 0xff);
  vm_.outb(kChannel2, 0xff);
  std::this_thread::sleep_for(2ms);
  EXPECT_EQ(read_counter(kChannel2), 0xffff);  // not counting
  vm_.outb(kPortB, 0x01);
  std::this_thread::sleep_for(2ms);
  EXPECT_LT(read_counter(kChannel2), 0xffff - 2000);
}

TEST_F(Pit8254Test, RefreshBitTogglesOnEachRead) {
  const uint8_t first = vm_.inb(kPortB);
  const uint8_t second = vm_.inb(kPortB);
  EXPECT_EQ((first ^ second) & 0x10, 0x10);
  vm_.outb(kPortB, 0xff);
  EXPECT_EQ(vm_.inb(kPortB) & 0x0f, 0x0f);  // only bits 0-3 are writable
}

TEST_F(Pit8254Test, HostileProgrammingDoesNotSpin) {
  vm_.outb(kControl, 0x34);  // mode 2, count 1: a 1.2 MHz interrupt asked for
  vm_.outb(kChannel0, 0x01);
  vm_.outb(kChannel0, 0x00);
  std::this_thread::sleep_for(20ms);
  vm_.outb(kControl, 0x30);
  // Capped at one per kMinIrqPeriod (100 us): at most ~200 in 20 ms.
  EXPECT_LE(irq_edges_.load(), 260);
  uint8_t data[8] = {};
  pit_->read(7, data);
  pit_->write(1ull << 40, std::span<const uint8_t>(data));
  vm_.outb(kControl, 0xfe);  // read-back with every bit set
  vm_.outl(kChannel0, 0xffffffff);
}

}  // namespace
}  // namespace hv
