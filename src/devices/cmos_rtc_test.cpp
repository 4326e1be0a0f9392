#include "devices/cmos_rtc.hpp"

#include <chrono>
#include <memory>

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"

namespace hv {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

constexpr uint64_t kIndex = 0x70;
constexpr uint64_t kData = 0x71;
constexpr int64_t kThursday29Feb2024At134530 = 1709214330;
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

class CmosRtcTest : public ::testing::Test {
 protected:
  void install(uint64_t below_4g = 128 * kMiB, uint64_t above_4g = 0) {
    rtc_ = std::make_unique<CmosRtc>(vm_.machine->irq_line(8), below_4g, above_4g,
                                     [this] { return now_; });
    ASSERT_TRUE(vm_.pio().add(kIndex, CmosRtc::kPortCount, rtc_.get()).ok());
  }
  void SetUp() override {
    now_ = system_clock::time_point(seconds(kThursday29Feb2024At134530) + milliseconds(500));
  }

  uint8_t cmos(uint8_t index) {
    vm_.outb(kIndex, index);
    return vm_.inb(kData);
  }
  void set_cmos(uint8_t index, uint8_t value) {
    vm_.outb(kIndex, index);
    vm_.outb(kData, value);
  }

  device_test::TestMachine vm_;
  system_clock::time_point now_;
  std::unique_ptr<CmosRtc> rtc_;
};

TEST_F(CmosRtcTest, DefaultsAreBcd24HourWithValidBattery) {
  install();
  EXPECT_EQ(cmos(0x0a), 0x26);
  EXPECT_EQ(cmos(0x0b), 0x02);
  EXPECT_EQ(cmos(0x0d), 0x80);
  EXPECT_EQ(cmos(0x00), 0x30);
  EXPECT_EQ(cmos(0x02), 0x45);
  EXPECT_EQ(cmos(0x04), 0x13);
  EXPECT_EQ(cmos(0x06), 0x05);  // Thursday; Sunday is 1
  EXPECT_EQ(cmos(0x07), 0x29);
  EXPECT_EQ(cmos(0x08), 0x02);
  EXPECT_EQ(cmos(0x09), 0x24);
  EXPECT_EQ(cmos(0x32), 0x20);
}

TEST_F(CmosRtcTest, BinaryModeReadsPlainNumbers) {
  install();
  set_cmos(0x0b, 0x06);  // binary, 24-hour
  EXPECT_EQ(cmos(0x00), 30);
  EXPECT_EQ(cmos(0x02), 45);
  EXPECT_EQ(cmos(0x04), 13);
  EXPECT_EQ(cmos(0x07), 29);
  EXPECT_EQ(cmos(0x08), 2);
  EXPECT_EQ(cmos(0x09), 24);
  EXPECT_EQ(cmos(0x32), 20);
  EXPECT_EQ(cmos(0x0b), 0x06);
}

TEST_F(CmosRtcTest, TwelveHourModeSetsThePmBit) {
  install();
  set_cmos(0x0b, 0x00);         // BCD, 12-hour
  EXPECT_EQ(cmos(0x04), 0x81);  // 1 PM
  set_cmos(0x0b, 0x04);         // binary, 12-hour
  EXPECT_EQ(cmos(0x04), 0x81);
  now_ = system_clock::time_point(seconds(1710461100));  // 2024-03-15 00:05:00
  EXPECT_EQ(cmos(0x04), 12);                             // midnight is 12 AM
  set_cmos(0x0b, 0x00);
  EXPECT_EQ(cmos(0x04), 0x12);
  now_ += std::chrono::hours(12);
  EXPECT_EQ(cmos(0x04), 0x92);  // noon is 12 PM
  // Writing in 12-hour mode: 7 PM.
  set_cmos(0x04, 0x87);
  set_cmos(0x0b, 0x02);
  EXPECT_EQ(cmos(0x04), 0x19);
}

TEST_F(CmosRtcTest, ClockFollowsTheHostAndWritesSetAnOffset) {
  install();
  now_ += seconds(2);
  EXPECT_EQ(cmos(0x00), 0x32);
  set_cmos(0x04, 0x08);  // 08:45:32
  set_cmos(0x09, 0x99);
  set_cmos(0x32, 0x19);  // 1999
  EXPECT_EQ(cmos(0x04), 0x08);
  EXPECT_EQ(cmos(0x02), 0x45);
  EXPECT_EQ(cmos(0x09), 0x99);
  EXPECT_EQ(cmos(0x32), 0x19);
  now_ += seconds(61);
  EXPECT_EQ(cmos(0x00), 0x33);
  EXPECT_EQ(cmos(0x02), 0x46);
  EXPECT_EQ(cmos(0x04), 0x08);
  // Setting the year to 2099 made 29 February invalid: it rolled into 1 March, as the chip
  // would count on.
  EXPECT_EQ(cmos(0x07), 0x01);
  EXPECT_EQ(cmos(0x08), 0x03);
}

TEST_F(CmosRtcTest, SetBitFreezesTheClockWhileFieldsAreWritten) {
  install();
  set_cmos(0x0b, 0x82);  // SET, BCD, 24-hour
  now_ += seconds(10);
  EXPECT_EQ(cmos(0x00), 0x30);      // frozen
  EXPECT_EQ(cmos(0x0a) & 0x80, 0);  // no update in progress while frozen
  // 31 December 1999 23:59:59, written day before month: the intermediate 31 February is fine.
  set_cmos(0x00, 0x59);
  set_cmos(0x02, 0x59);
  set_cmos(0x04, 0x23);
  set_cmos(0x07, 0x31);
  set_cmos(0x08, 0x12);
  set_cmos(0x09, 0x99);
  set_cmos(0x32, 0x19);
  EXPECT_EQ(cmos(0x07), 0x31);
  set_cmos(0x0b, 0x02);
  EXPECT_EQ(cmos(0x06), 0x06);  // a Friday
  now_ += seconds(1);
  EXPECT_EQ(cmos(0x00), 0x00);
  EXPECT_EQ(cmos(0x02), 0x00);
  EXPECT_EQ(cmos(0x04), 0x00);
  EXPECT_EQ(cmos(0x07), 0x01);
  EXPECT_EQ(cmos(0x08), 0x01);
  EXPECT_EQ(cmos(0x09), 0x00);
  EXPECT_EQ(cmos(0x32), 0x20);
}

TEST_F(CmosRtcTest, UpdateInProgressOnlyJustBeforeTheSecondTurns) {
  install();
  EXPECT_EQ(cmos(0x0a), 0x26);
  now_ = system_clock::time_point(seconds(kThursday29Feb2024At134530) + nanoseconds(999'800'000));
  EXPECT_EQ(cmos(0x0a), 0xa6);
  EXPECT_EQ(cmos(0x00), 0x30);
  now_ += nanoseconds(200'000);
  EXPECT_EQ(cmos(0x0a), 0x26);
  EXPECT_EQ(cmos(0x00), 0x31);
  set_cmos(0x0a, 0xa5);  // UIP is read-only
  EXPECT_EQ(cmos(0x0a), 0x25);
}

TEST_F(CmosRtcTest, StatusCFlagsAreClearedByReading) {
  install();
  set_cmos(0x0a, 0x20);  // no periodic rate, so only the update flag can appear
  EXPECT_EQ(cmos(0x0c), 0x00);
  now_ += seconds(1);
  EXPECT_EQ(cmos(0x0c), 0x10);  // update ended
  EXPECT_EQ(cmos(0x0c), 0x00);  // cleared by the read
  set_cmos(0x0b, 0x12);         // update-ended interrupt enabled: IRQF too
  now_ += seconds(1);
  EXPECT_EQ(cmos(0x0c), 0x90);
  EXPECT_EQ(cmos(0x0c), 0x00);
  set_cmos(0x0a, 0x26);  // 1024 Hz
  now_ += milliseconds(2);
  EXPECT_EQ(cmos(0x0c), 0x40);
  EXPECT_EQ(cmos(0x0c), 0x00);
  set_cmos(0x0c, 0xff);  // read-only
  set_cmos(0x0d, 0x00);
  EXPECT_EQ(cmos(0x0d), 0x80);
}

TEST_F(CmosRtcTest, IndexPortKeepsTheNmiBitAndWordWritesReachTheData) {
  install();
  vm_.outb(kIndex, 0x80 | 0x40);
  EXPECT_EQ(vm_.inb(kIndex), 0xc0);
  vm_.outw(kIndex, 0x5a40);  // index 0x40, data 0x5a
  EXPECT_EQ(cmos(0x40), 0x5a);
  EXPECT_EQ(vm_.inw(kIndex), 0x5a40);
  set_cmos(0x7f, 0x11);
  EXPECT_EQ(cmos(0xff), 0x11);  // index 0x7f with NMI disabled
}

TEST_F(CmosRtcTest, MemorySizesFor128MiB) {
  install(128 * kMiB, 0);
  EXPECT_EQ(cmos(0x15), 0x80);  // 640 KiB
  EXPECT_EQ(cmos(0x16), 0x02);
  EXPECT_EQ(cmos(0x17), 0xff);  // 127 MiB from 1 MiB, saturated at 0xffff KiB
  EXPECT_EQ(cmos(0x18), 0xff);
  EXPECT_EQ(cmos(0x30), 0xff);
  EXPECT_EQ(cmos(0x31), 0xff);
  EXPECT_EQ(cmos(0x34), 0x00);  // 112 MiB above 16 MiB = 0x700 * 64 KiB
  EXPECT_EQ(cmos(0x35), 0x07);
  EXPECT_EQ(cmos(0x5b), 0x00);
  EXPECT_EQ(cmos(0x5c), 0x00);
  EXPECT_EQ(cmos(0x5d), 0x00);
  unsigned checksum = 0;
  for (uint8_t i = 0x10; i <= 0x2d; ++i) {
    checksum += cmos(i);
  }
  EXPECT_EQ(cmos(0x2e), checksum >> 8);
  EXPECT_EQ(cmos(0x2f), checksum & 0xff);
}

TEST_F(CmosRtcTest, MemorySizesFor5GiB) {
  // 3 GiB below the 32-bit hole, 2 GiB above 4 GiB.
  install(3 * kGiB, 2 * kGiB);
  EXPECT_EQ(cmos(0x17), 0xff);
  EXPECT_EQ(cmos(0x18), 0xff);
  EXPECT_EQ(cmos(0x34), 0x00);  // (3 GiB - 16 MiB) / 64 KiB = 0xbf00
  EXPECT_EQ(cmos(0x35), 0xbf);
  EXPECT_EQ(cmos(0x5b), 0x00);  // 2 GiB / 64 KiB = 0x8000
  EXPECT_EQ(cmos(0x5c), 0x80);
  EXPECT_EQ(cmos(0x5d), 0x00);
}

TEST_F(CmosRtcTest, SmallMemoryIsNotSaturated) {
  install(2 * kMiB, 0);
  EXPECT_EQ(cmos(0x17), 0x00);  // 1024 KiB
  EXPECT_EQ(cmos(0x18), 0x04);
  EXPECT_EQ(cmos(0x34), 0x00);
  EXPECT_EQ(cmos(0x35), 0x00);
}

TEST_F(CmosRtcTest, HostileValuesAreHarmless) {
  install();
  for (unsigned mode : {0x00u, 0x02u, 0x04u, 0x06u, 0x82u}) {
    set_cmos(0x0b, static_cast<uint8_t>(mode));
    for (unsigned index = 0; index < 0x100; ++index) {
      for (unsigned value : {0x00u, 0x7fu, 0x99u, 0xffu}) {
        set_cmos(static_cast<uint8_t>(index), static_cast<uint8_t>(value));
        cmos(static_cast<uint8_t>(index));
      }
    }
  }
  for (size_t width : {1u, 2u, 4u, 8u}) {
    vm_.out(kIndex, ~0ull, width);
    vm_.out(kData, ~0ull, width);
    vm_.in(kIndex, width);
    vm_.in(kData, width);
  }
  SUCCEED();
}

}  // namespace
}  // namespace hv
