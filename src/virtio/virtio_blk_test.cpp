// virtio-blk behind virtio-mmio, driven the way a guest driver drives it: requests in guest
// memory, register accesses through the IoDevice interface, the image a real temporary file.
#include "virtio/virtio_blk.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "devices/device_test_support.hpp"
#include "virtio/virtio_mmio.hpp"
#include "virtio/virtio_test_support.hpp"

namespace hv {
namespace {

using device_test::TestMachine;
using virtio_test::kAvailRing;
using virtio_test::kBuffers;
using virtio_test::kDescTable;
using virtio_test::kUsedRing;
using virtio_test::MmioDriver;
using virtio_test::snapshot;
using virtio_test::SplitRing;
using virtio_test::test_layout;

constexpr uint32_t kGsi = 5;
constexpr uint32_t kQueueSize = 256;
constexpr uint8_t kPattern = 0x5a;
constexpr uint64_t kVersion1 = 1ull << kVirtioFeatureVersion1;
// Negotiated without EVENT_IDX, so that VIRTQ_AVAIL_F_NO_INTERRUPT is what suppresses interrupts.
constexpr uint64_t kEventIdx = 1ull << kVirtioRingFeatureEventIdx;
constexpr uint64_t kSectors = 64;  // 32 KiB image
constexpr uint64_t kHeader = kBuffers;
constexpr uint64_t kData = kBuffers + 0x1000;
constexpr uint64_t kStatusByte = kBuffers + 0x100;

struct Header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
struct Segment {
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
};

class VirtioBlkTest : public ::testing::Test {
 protected:
  void TearDown() override {
    mmio.reset();
    image.reset();
    if (!path.empty()) {
      ::unlink(path.c_str());
    }
  }

  // An image of kSectors sectors, sector i filled with byte i+1.
  void make_device(bool read_only = false) {
    char name[] = "/tmp/hv-virtio-blk-test-XXXXXX";
    const int fd = ::mkstemp(name);
    ASSERT_GE(fd, 0);
    path = name;
    std::vector<uint8_t> contents(kSectors * 512);
    for (uint64_t i = 0; i < contents.size(); ++i) {
      contents[i] = static_cast<uint8_t>(i / 512 + 1);
    }
    ASSERT_EQ(::write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
    ::close(fd);
    auto opened = BlockImage::open(path, {.read_only = read_only});
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    image = std::move(*opened);
    mmio = std::make_unique<VirtioMmio>(memory(), tm.machine->irq_line(kGsi),
                                        std::make_unique<VirtioBlk>(*image));
    mmio->set_error_log([this](std::string_view line) { log.emplace_back(line); });
    driver = std::make_unique<MmioDriver>(*mmio);
  }

  GuestMemory& memory() { return tm.machine->memory(); }

  void bring_up(bool read_only = false) {
    make_device(read_only);
    ASSERT_TRUE(memory().fill(0, kPattern, memory().size()).ok());
    ASSERT_TRUE(memory().fill(kDescTable, 0, 16 * kQueueSize).ok());
    ASSERT_TRUE(memory().fill(kAvailRing, 0, 6 + 2 * kQueueSize).ok());
    ASSERT_TRUE(memory().fill(kUsedRing, 0, 6 + 8 * kQueueSize).ok());
    ASSERT_NE(driver->negotiate(kVersion1 | (driver->device_features() & ~kEventIdx)) &
                  kVirtioStatusFeaturesOk,
              0u);
    ASSERT_TRUE(driver->setup_queue(0, test_layout(kQueueSize)));
    driver->driver_ok();
  }

  std::vector<uint8_t> file_contents() {
    std::vector<uint8_t> bytes(kSectors * 512);
    const int fd = ::open(path.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
    return bytes;
  }
  std::vector<uint8_t> guest_bytes(uint64_t gpa, size_t length) {
    std::vector<uint8_t> bytes(length);
    EXPECT_TRUE(memory().read(gpa, bytes).ok());
    return bytes;
  }
  uint8_t status_byte() { return guest_bytes(kStatusByte, 1)[0]; }

  // header -> [data (readable or writable)] -> status; returns the used length.
  uint32_t request(uint32_t type, uint64_t sector, uint32_t data_length, bool data_writable) {
    write_header(type, sector);
    uint16_t next = 1;
    ring.set_descriptor(0, {kHeader, 16, kVirtqDescNext, 1});
    if (data_length != 0) {
      ring.set_descriptor(
          1, {kData, data_length,
              static_cast<uint16_t>(kVirtqDescNext | (data_writable ? kVirtqDescWrite : 0)), 2});
      next = 2;
    } else {
      ring.set_descriptor(0, {kHeader, 16, kVirtqDescNext, 2});
      next = 2;
    }
    ring.set_descriptor(next, {kStatusByte, 1, kVirtqDescWrite, 0});
    const uint16_t before = ring.used_idx();
    ring.offer(0);
    driver->kick(0);
    EXPECT_EQ(ring.used_idx(), static_cast<uint16_t>(before + 1));
    return ring.used(before).len;
  }
  void write_header(uint32_t type, uint64_t sector) {
    ASSERT_TRUE(memory().write_object(kHeader, Header{type, 0, sector}).ok());
  }
  uint32_t read_config32(uint32_t offset) { return driver->read32(virtio_mmio::kConfig + offset); }

  TestMachine tm;
  SplitRing ring{tm.machine->memory(), test_layout(kQueueSize)};
  std::string path;
  std::unique_ptr<BlockImage> image;
  std::unique_ptr<VirtioMmio> mmio;
  std::unique_ptr<MmioDriver> driver;
  std::vector<std::string> log;
};

TEST_F(VirtioBlkTest, ConfigAndFeatures) {
  make_device();
  EXPECT_EQ(driver->read32(virtio_mmio::kDeviceId), 2u);
  EXPECT_EQ(read_config32(virtio_blk_config::kCapacity), kSectors);
  EXPECT_EQ(read_config32(virtio_blk_config::kCapacity + 4), 0u);
  EXPECT_EQ(read_config32(virtio_blk_config::kBlkSize), 512u);
  EXPECT_EQ(read_config32(virtio_blk_config::kSegMax), VirtioBlk::kSegMax);
  EXPECT_EQ(read_config32(virtio_blk_config::kMaxDiscardSeg), 1u);
  EXPECT_EQ(read_config32(virtio_blk_config::kMaxWriteZeroesSeg), 1u);
  const uint64_t features = driver->device_features();
  EXPECT_TRUE(has_feature(features, kVirtioBlkFFlush));
  EXPECT_TRUE(has_feature(features, kVirtioBlkFDiscard));
  EXPECT_TRUE(has_feature(features, kVirtioBlkFWriteZeroes));
  EXPECT_FALSE(has_feature(features, kVirtioBlkFRo));
}

TEST_F(VirtioBlkTest, WriteThenReadBack) {
  bring_up();
  std::vector<uint8_t> data(1024);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<uint8_t>(i * 7);
  }
  ASSERT_TRUE(memory().write(kData, data).ok());
  EXPECT_EQ(request(kVirtioBlkTOut, 3, 1024, false), 1u);
  EXPECT_EQ(status_byte(), kVirtioBlkSOk);
  const std::vector<uint8_t> file = file_contents();
  EXPECT_TRUE(std::equal(data.begin(), data.end(), file.begin() + 3 * 512));
  EXPECT_EQ(file[2 * 512 + 511], 3);  // neighbours untouched
  EXPECT_EQ(file[5 * 512], 6);

  ASSERT_TRUE(memory().fill(kData, 0, 2048).ok());
  EXPECT_EQ(request(kVirtioBlkTIn, 2, 2048, true), 2049u);
  EXPECT_EQ(status_byte(), kVirtioBlkSOk);
  EXPECT_EQ(guest_bytes(kData, 2048),
            std::vector<uint8_t>(file.begin() + 2 * 512, file.begin() + 6 * 512));
  EXPECT_EQ(driver->interrupt_status(), virtio_mmio::kInterruptUsedBuffer);
  EXPECT_TRUE(tm.irqs.level(kGsi));
}

TEST_F(VirtioBlkTest, FlushAndGetId) {
  bring_up();
  EXPECT_EQ(request(kVirtioBlkTFlush, 0, 0, false), 1u);
  EXPECT_EQ(status_byte(), kVirtioBlkSOk);
  EXPECT_EQ(request(kVirtioBlkTGetId, 0, 20, true), 21u);
  EXPECT_EQ(status_byte(), kVirtioBlkSOk);
  const std::string serial = image->serial();
  const std::vector<uint8_t> id = guest_bytes(kData, 20);
  EXPECT_EQ(std::string(id.begin(), id.begin() + static_cast<ptrdiff_t>(serial.size())), serial);
}

TEST_F(VirtioBlkTest, DiscardAndWriteZeroes) {
  bring_up();
  ASSERT_TRUE(memory().write_object(kData, Segment{4, 2, 0}).ok());
  EXPECT_EQ(request(kVirtioBlkTDiscard, 0, 16, false), 1u);
  EXPECT_EQ(status_byte(), kVirtioBlkSOk);
  ASSERT_TRUE(memory().write_object(kData, Segment{10, 3, 0}).ok());
  EXPECT_EQ(request(kVirtioBlkTWriteZeroes, 0, 16, false), 1u);
  EXPECT_EQ(status_byte(), kVirtioBlkSOk);
  const std::vector<uint8_t> file = file_contents();
  for (uint64_t s = 0; s < kSectors; ++s) {
    const bool zeroed = (s >= 4 && s < 6) || (s >= 10 && s < 13);
    EXPECT_EQ(file[s * 512], zeroed ? 0 : s + 1) << s;
    EXPECT_EQ(file[s * 512 + 511], zeroed ? 0 : s + 1) << s;
  }
}

TEST_F(VirtioBlkTest, ReadOnlyImageRefusesWrites) {
  bring_up(true);
  EXPECT_TRUE(has_feature(driver->device_features(), kVirtioBlkFRo));
  ASSERT_TRUE(memory().fill(kData, 0xee, 512).ok());
  request(kVirtioBlkTOut, 0, 512, false);
  EXPECT_EQ(status_byte(), kVirtioBlkSIoErr);
  ASSERT_TRUE(memory().write_object(kData, Segment{0, 1, 0}).ok());
  request(kVirtioBlkTDiscard, 0, 16, false);
  EXPECT_EQ(status_byte(), kVirtioBlkSIoErr);
  request(kVirtioBlkTWriteZeroes, 0, 16, false);
  EXPECT_EQ(status_byte(), kVirtioBlkSIoErr);
  EXPECT_EQ(file_contents()[0], 1);
  request(kVirtioBlkTIn, 0, 512, true);
  EXPECT_EQ(status_byte(), kVirtioBlkSOk);
}

TEST_F(VirtioBlkTest, OutOfRangeAndUnaligned) {
  bring_up();
  ASSERT_TRUE(memory().fill(kData, 0xee, 1024).ok());
  request(kVirtioBlkTOut, kSectors - 1, 1024, false);
  EXPECT_EQ(status_byte(), kVirtioBlkSIoErr);
  request(kVirtioBlkTOut, ~0ull - 1, 1024, false);  // sector + length overflows
  EXPECT_EQ(status_byte(), kVirtioBlkSIoErr);
  request(kVirtioBlkTOut, 0, 100, false);
  EXPECT_EQ(status_byte(), kVirtioBlkSIoErr);
  EXPECT_EQ(file_contents()[(kSectors - 1) * 512], kSectors);
  EXPECT_EQ(file_contents()[0], 1);
  EXPECT_EQ(request(kVirtioBlkTIn, kSectors, 512, true), 1u);
  EXPECT_EQ(status_byte(), kVirtioBlkSIoErr);
  EXPECT_EQ(request(12345, 0, 0, false), 1u);
  EXPECT_EQ(status_byte(), kVirtioBlkSUnsupp);
}

TEST_F(VirtioBlkTest, MalformedRequestsTouchNothingOutsideBuffers) {
  bring_up();
  // Header of 8 bytes: IOERR in the status byte.
  ring.set_descriptor(0, {kHeader, 8, kVirtqDescNext, 1});
  ring.set_descriptor(1, {kStatusByte, 1, kVirtqDescWrite, 0});
  std::vector<uint8_t> before = snapshot(memory());
  ring.offer(0);
  driver->kick(0);
  ASSERT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(ring.used(0).len, 1u);
  EXPECT_EQ(status_byte(), kVirtioBlkSIoErr);
  // No writable buffer: completed with length 0, nothing written.
  ASSERT_TRUE(memory().write_object(kHeader, Header{kVirtioBlkTIn, 0, 0}).ok());
  ring.set_descriptor(0, {kHeader, 16, 0, 0});
  ring.offer(0);
  before = snapshot(memory());
  driver->kick(0);
  ASSERT_EQ(ring.used_idx(), 2);
  EXPECT_EQ(ring.used(1).len, 0u);
  std::vector<uint8_t> after = snapshot(memory());
  // Only the used ring changed.
  for (size_t i = 0; i < after.size(); ++i) {
    if (i < kUsedRing || i >= kUsedRing + 6 + 8 * kQueueSize) {
      ASSERT_EQ(before[i], after[i]) << i;
    }
  }
  EXPECT_EQ(driver->status() & kVirtioStatusNeedsReset, 0u);
  // A descriptor outside guest RAM: DEVICE_NEEDS_RESET.
  ring.set_descriptor(0, {memory().size() + 0x1000, 16, 0, 0});
  ring.offer(0);
  driver->kick(0);
  EXPECT_NE(driver->status() & kVirtioStatusNeedsReset, 0u);
}

TEST_F(VirtioBlkTest, NoInterruptSuppressesIrq) {
  bring_up();
  ring.set_avail_flags(kVirtqAvailNoInterrupt);
  request(kVirtioBlkTFlush, 0, 0, false);
  EXPECT_EQ(status_byte(), kVirtioBlkSOk);
  EXPECT_FALSE(tm.irqs.level(kGsi));
  EXPECT_EQ(tm.irqs.rising_edges(kGsi), 0);
}

}  // namespace
}  // namespace hv
