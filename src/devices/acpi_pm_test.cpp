#include "devices/acpi_pm.hpp"

#include <gtest/gtest.h>

#include <array>

namespace hv {
namespace {

using namespace std::chrono_literals;

class AcpiPmTest : public ::testing::Test {
 protected:
  AcpiPmRegisters::Clock fake_clock() {
    return [this] { return now_; };
  }
  uint32_t read32(AcpiPmRegisters& device, uint64_t offset = 0) {
    std::array<uint8_t, 4> bytes{};
    device.read(offset, bytes);
    return static_cast<uint32_t>(io_value(bytes));
  }
  uint16_t read16(AcpiPmRegisters& device, uint64_t offset) {
    std::array<uint8_t, 2> bytes{};
    device.read(offset, bytes);
    return static_cast<uint16_t>(io_value(bytes));
  }
  void write16(AcpiPmRegisters& device, uint64_t offset, uint16_t value) {
    std::array<uint8_t, 2> bytes{static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8)};
    device.write(offset, bytes);
  }
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::time_point{} + 1h;
};

TEST_F(AcpiPmTest, TimerCountsAt3579545HzAndWrapsAt32Bits) {
  AcpiPmRegisters timer(AcpiPmRegisters::Kind::PmTimer, fake_clock());
  EXPECT_EQ(read32(timer), 0u);
  now_ += 1s;
  EXPECT_EQ(read32(timer), 3'579'545u);
  now_ += 1ms;
  EXPECT_EQ(read32(timer), 3'579'545u + 3'579u);  // 3579.545 ticks per millisecond, truncated
  // 2^32 ticks take 1199.86 s: the register wraps, the 64-bit count does not.
  now_ += 1200s;
  EXPECT_EQ(timer.timer_ticks(), 4'299'037'124u);
  EXPECT_EQ(read32(timer), static_cast<uint32_t>(4'299'037'124u));
  EXPECT_EQ(read16(timer, 2), static_cast<uint16_t>(4'299'037'124u >> 16));  // a narrow read
  write16(timer, 0, 0);                                                      // read-only
  EXPECT_EQ(read32(timer), static_cast<uint32_t>(4'299'037'124u));
}

TEST_F(AcpiPmTest, TimerStatusSetsWhenBit31ChangesAndClearsByWritingOne) {
  AcpiPmRegisters event(AcpiPmRegisters::Kind::Pm1aEvent, fake_clock());
  EXPECT_EQ(read16(event, 0), 0u);
  now_ += 599s;  // 2^31 ticks take 599.93 s
  EXPECT_EQ(read16(event, 0), 0u);
  now_ += 1s;
  EXPECT_EQ(read16(event, 0), AcpiPmRegisters::kTimerStatus);
  write16(event, 0, 0x0000);  // writing 0 keeps it
  EXPECT_EQ(read16(event, 0), AcpiPmRegisters::kTimerStatus);
  write16(event, 0, AcpiPmRegisters::kTimerStatus);
  EXPECT_EQ(read16(event, 0), 0u);
  now_ += 600s;
  EXPECT_EQ(read16(event, 0), AcpiPmRegisters::kTimerStatus);
}

TEST_F(AcpiPmTest, EnableRegisterKeepsTheBitsThatExist) {
  AcpiPmRegisters event(AcpiPmRegisters::Kind::Pm1aEvent, fake_clock());
  write16(event, 2, 0xffff);
  EXPECT_EQ(read16(event, 2), AcpiPmRegisters::kEnableMask);
  EXPECT_EQ(read32(event) >> 16, AcpiPmRegisters::kEnableMask);
  write16(event, 2, 0x0100);
  EXPECT_EQ(read16(event, 2), 0x0100u);
  std::array<uint8_t, 1> high{0x04};  // RTC_EN through the high byte alone
  event.write(3, high);
  EXPECT_EQ(read16(event, 2), 0x0400u);
}

}  // namespace
}  // namespace hv
