#include "vm/io_bus.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace hv {
namespace {

class RecordingDevice final : public IoDevice {
 public:
  explicit RecordingDevice(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  void read(uint64_t offset, std::span<uint8_t> data) override {
    reads.push_back({offset, data.size()});
    set_io_value(data, 0x1122334455667788ull);
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    writes.push_back({offset, io_value(data)});
  }
  std::vector<std::pair<uint64_t, uint64_t>> reads, writes;

 private:
  std::string name_;
};

TEST(IoBus, RoutesAccessesWithOffsetsInsideTheRange) {
  IoBus bus("test");
  RecordingDevice uart("uart"), pci("pci");
  ASSERT_TRUE(bus.add(0x3f8, 8, &uart).ok());
  ASSERT_TRUE(bus.add(0xcf8, 8, &pci).ok());
  uint8_t value = 0x41;
  EXPECT_TRUE(bus.write(0x3f8, std::span<const uint8_t>(&value, 1)));
  EXPECT_TRUE(bus.write(0x3ff, std::span<const uint8_t>(&value, 1)));
  uint8_t word[4];
  EXPECT_TRUE(bus.read(0xcfc, word));
  ASSERT_EQ(uart.writes.size(), 2u);
  EXPECT_EQ(uart.writes[0], (std::pair<uint64_t, uint64_t>{0, 0x41}));
  EXPECT_EQ(uart.writes[1].first, 7u);
  ASSERT_EQ(pci.reads.size(), 1u);
  EXPECT_EQ(pci.reads[0], (std::pair<uint64_t, uint64_t>{4, 4}));
  EXPECT_EQ(io_value(word), 0x55667788u);
}

TEST(IoBus, UnclaimedAddressesReadAllOnesAndDropWrites) {
  IoBus bus("test");
  RecordingDevice uart("uart");
  ASSERT_TRUE(bus.add(0x3f8, 8, &uart).ok());
  uint8_t data[4] = {1, 2, 3, 4};
  EXPECT_FALSE(bus.read(0x3f7, data));
  EXPECT_EQ(io_value(data), 0xffffffffu);
  EXPECT_FALSE(bus.read(0x400, data));
  EXPECT_FALSE(bus.write(0x0, data));
  EXPECT_FALSE(bus.read(~0ull, data));
  EXPECT_TRUE(uart.reads.empty());
  EXPECT_TRUE(uart.writes.empty());
}

TEST(IoBus, RejectsOverlapsEmptyAndWrappingRanges) {
  IoBus bus("test");
  RecordingDevice a("a"), b("b");
  ASSERT_TRUE(bus.add(0x100, 0x10, &a).ok());
  EXPECT_FALSE(bus.add(0x108, 0x10, &b).ok());  // overlaps the end
  EXPECT_FALSE(bus.add(0xf8, 0x10, &b).ok());   // overlaps the start
  EXPECT_FALSE(bus.add(0x104, 0x2, &b).ok());   // inside
  EXPECT_FALSE(bus.add(0x200, 0, &b).ok());
  EXPECT_FALSE(bus.add(~0ull - 4, 0x10, &b).ok());
  EXPECT_FALSE(bus.add(0x300, 1, nullptr).ok());
  EXPECT_TRUE(bus.add(0x110, 0x10, &b).ok());  // adjacent is fine
  EXPECT_TRUE(bus.add(0xf0, 0x10, &b).ok());
  ASSERT_EQ(bus.mappings().size(), 3u);
  EXPECT_EQ(bus.find(0x10f)->device, &a);
  EXPECT_EQ(bus.find(0x110)->device, &b);
  EXPECT_EQ(bus.find(0xef), nullptr);
}

TEST(IoBus, FindsEveryDeviceAmongMany) {
  IoBus bus("test");
  std::vector<std::unique_ptr<RecordingDevice>> devices;
  for (int i = 0; i < 64; ++i) {
    devices.push_back(std::make_unique<RecordingDevice>("d"));
    ASSERT_TRUE(bus.add(static_cast<uint64_t>(i) * 0x100 + 0x10, 0x20, devices.back().get()).ok());
  }
  for (int i = 0; i < 64; ++i) {
    uint64_t base = static_cast<uint64_t>(i) * 0x100 + 0x10;
    EXPECT_EQ(bus.find(base)->device, devices[i].get());
    EXPECT_EQ(bus.find(base + 0x1f)->device, devices[i].get());
    EXPECT_EQ(bus.find(base + 0x20), nullptr);
    EXPECT_EQ(bus.find(base - 1), nullptr);
  }
}

}  // namespace
}  // namespace hv
