#include "devices/ata_disk.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"

namespace hv {
namespace {

constexpr uint64_t kData = AtaDisk::kCommandBlockBase + 0;
constexpr uint64_t kError = AtaDisk::kCommandBlockBase + 1;
constexpr uint64_t kFeatures = AtaDisk::kCommandBlockBase + 1;
constexpr uint64_t kSectorCount = AtaDisk::kCommandBlockBase + 2;
constexpr uint64_t kLbaLow = AtaDisk::kCommandBlockBase + 3;
constexpr uint64_t kLbaMid = AtaDisk::kCommandBlockBase + 4;
constexpr uint64_t kLbaHigh = AtaDisk::kCommandBlockBase + 5;
constexpr uint64_t kDevice = AtaDisk::kCommandBlockBase + 6;
constexpr uint64_t kStatus = AtaDisk::kCommandBlockBase + 7;
constexpr uint64_t kCommand = AtaDisk::kCommandBlockBase + 7;
constexpr uint64_t kControl = AtaDisk::kControlPort;
constexpr uint32_t kIrq = AtaDisk::kIrq;
constexpr size_t kSector = 512;

constexpr uint8_t kIdle = 0x50;         // DRDY | DSC
constexpr uint8_t kDataRequest = 0x58;  // DRDY | DSC | DRQ
constexpr uint8_t kFailed = 0x51;       // DRDY | DSC | ERR
constexpr uint8_t kAborted = 0x04;
constexpr uint8_t kIdNotFoundAborted = 0x14;

constexpr uint8_t kMaster = 0xa0;  // the obsolete bits set, as old drivers write them
constexpr uint8_t kMasterLba = 0xe0;
constexpr uint8_t kSlave = 0xb0;

// Sector `lba` of the test images: its number in the first eight bytes, then a pattern.
std::vector<uint8_t> sector_content(uint64_t lba, uint8_t salt = 0) {
  std::vector<uint8_t> bytes(kSector);
  for (size_t i = 0; i < kSector; ++i) {
    bytes[i] = i < 8 ? static_cast<uint8_t>(lba >> (8 * i))
                     : static_cast<uint8_t>(lba * 13 + i * 7 + salt);
  }
  return bytes;
}

class AtaDiskTest : public ::testing::Test {
 protected:
  void TearDown() override {
    disk_.reset();
    image_.reset();
    if (!path_.empty()) {
      ::unlink(path_.c_str());
    }
  }

  // Creates an image of `sectors` sectors (sparse: only the first `filled` carry content) and a
  // disk on it at the primary channel's ports.
  void make_disk(uint64_t sectors, uint64_t filled, BlockImageOptions options = {}) {
    char name[] = "/tmp/hv-ata-disk-test-XXXXXX";
    const int fd = ::mkstemp(name);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    path_ = name;
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(sectors * kSector)), 0);
    for (uint64_t lba = 0; lba < filled; ++lba) {
      ASSERT_EQ(
          ::pwrite(fd, sector_content(lba).data(), kSector, static_cast<off_t>(lba * kSector)),
          static_cast<ssize_t>(kSector));
    }
    ::close(fd);
    open_disk(options);
  }

  void open_disk(BlockImageOptions options = {}) {
    auto image = BlockImage::open(path_, options);
    ASSERT_TRUE(image.ok()) << image.error().to_string();
    image_ = std::move(image).value();
    disk_ = std::make_unique<AtaDisk>(vm_.machine->irq_line(kIrq), image_.get());
    ASSERT_TRUE(disk_->register_on(vm_.pio()).ok());
  }

  std::vector<uint8_t> file_sector(uint64_t lba) const {
    std::vector<uint8_t> bytes(kSector);
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_EQ(::pread(fd, bytes.data(), kSector, static_cast<off_t>(lba * kSector)),
              static_cast<ssize_t>(kSector));
    ::close(fd);
    return bytes;
  }

  void write_file_sector(uint64_t lba, const std::vector<uint8_t>& bytes) const {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    EXPECT_EQ(::pwrite(fd, bytes.data(), kSector, static_cast<off_t>(lba * kSector)),
              static_cast<ssize_t>(kSector));
    ::close(fd);
  }

  // Task file loads as libata writes them.
  void load_lba28(uint32_t lba, uint8_t count) {
    vm_.outb(kDevice, static_cast<uint8_t>(kMasterLba | ((lba >> 24) & 0x0f)));
    vm_.outb(kSectorCount, count);
    vm_.outb(kLbaLow, static_cast<uint8_t>(lba));
    vm_.outb(kLbaMid, static_cast<uint8_t>(lba >> 8));
    vm_.outb(kLbaHigh, static_cast<uint8_t>(lba >> 16));
  }
  void load_lba48(uint64_t lba, uint16_t count) {
    vm_.outb(kSectorCount, static_cast<uint8_t>(count >> 8));
    vm_.outb(kLbaLow, static_cast<uint8_t>(lba >> 24));
    vm_.outb(kLbaMid, static_cast<uint8_t>(lba >> 32));
    vm_.outb(kLbaHigh, static_cast<uint8_t>(lba >> 40));
    vm_.outb(kSectorCount, static_cast<uint8_t>(count));
    vm_.outb(kLbaLow, static_cast<uint8_t>(lba));
    vm_.outb(kLbaMid, static_cast<uint8_t>(lba >> 8));
    vm_.outb(kLbaHigh, static_cast<uint8_t>(lba >> 16));
    vm_.outb(kDevice, 0x40);
  }
  void load_chs(uint16_t cylinder, uint8_t head, uint8_t sector, uint8_t count) {
    vm_.outb(kDevice, static_cast<uint8_t>(kMaster | head));
    vm_.outb(kSectorCount, count);
    vm_.outb(kLbaLow, sector);
    vm_.outb(kLbaMid, static_cast<uint8_t>(cylinder));
    vm_.outb(kLbaHigh, static_cast<uint8_t>(cylinder >> 8));
  }

  std::vector<uint8_t> read_data(size_t bytes) {
    std::vector<uint8_t> data;
    for (size_t i = 0; i < bytes; i += 2) {
      const uint16_t word = vm_.inw(kData);
      data.push_back(static_cast<uint8_t>(word));
      data.push_back(static_cast<uint8_t>(word >> 8));
    }
    return data;
  }
  void write_data(const std::vector<uint8_t>& data) {
    for (size_t i = 0; i < data.size(); i += 2) {
      vm_.outw(kData, static_cast<uint16_t>(data[i] | data[i + 1] << 8));
    }
  }

  std::vector<uint16_t> identify() {
    vm_.outb(kDevice, kMaster);
    vm_.outb(kCommand, 0xec);
    EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
    std::vector<uint16_t> words;
    for (int i = 0; i < 256; ++i) {
      words.push_back(vm_.inw(kData));
    }
    EXPECT_EQ(vm_.inb(kStatus), kIdle);
    return words;
  }

  // Runs a command that transfers no data; returns its status.
  uint8_t run_non_data(uint8_t command) {
    const int edges = edges_so_far();
    vm_.outb(kCommand, command);
    EXPECT_EQ(edges_so_far(), edges + 1) << "command " << int{command};
    return vm_.inb(kStatus);
  }

  int edges_so_far() const { return vm_.irqs.rising_edges(kIrq); }
  bool irq_level() const { return vm_.irqs.level(kIrq); }

  device_test::TestMachine vm_;
  std::string path_;
  std::unique_ptr<BlockImage> image_;
  std::unique_ptr<AtaDisk> disk_;
};

std::string ata_string(const std::vector<uint16_t>& words, size_t first, size_t length) {
  std::string text;
  for (size_t i = 0; i < length / 2; ++i) {
    text.push_back(static_cast<char>(words[first + i] >> 8));
    text.push_back(static_cast<char>(words[first + i] & 0xff));
  }
  return text;
}

uint64_t words_value(const std::vector<uint16_t>& words, size_t first, size_t count) {
  uint64_t value = 0;
  for (size_t i = 0; i < count; ++i) {
    value |= uint64_t{words[first + i]} << (16 * i);
  }
  return value;
}

TEST_F(AtaDiskTest, PowersUpWithTheAtaSignature) {
  make_disk(64, 0);
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_EQ(vm_.inb(kControl), kIdle);
  EXPECT_EQ(vm_.inb(kError), 0x01);
  EXPECT_EQ(vm_.inb(kSectorCount), 1);
  EXPECT_EQ(vm_.inb(kLbaLow), 1);
  EXPECT_EQ(vm_.inb(kLbaMid), 0);
  EXPECT_EQ(vm_.inb(kLbaHigh), 0);
  EXPECT_FALSE(irq_level());
}

TEST_F(AtaDiskTest, IdentifyDescribesTheImage) {
  make_disk(4096, 0);
  vm_.outb(kDevice, kMaster);
  vm_.outb(kCommand, 0xec);
  EXPECT_EQ(edges_so_far(), 1);
  EXPECT_EQ(vm_.inb(kControl), kDataRequest);
  std::vector<uint8_t> bytes = read_data(kSector);
  EXPECT_EQ(vm_.inb(kStatus), kIdle);  // no interrupt after the only block
  EXPECT_EQ(edges_so_far(), 1);
  std::vector<uint16_t> id(256);
  for (size_t i = 0; i < 256; ++i) {
    id[i] = static_cast<uint16_t>(bytes[2 * i] | bytes[2 * i + 1] << 8);
  }

  EXPECT_EQ(id[0] & 0x8000, 0);  // ATA, not ATAPI
  EXPECT_EQ(id[1], 4096 / (16 * 63));
  EXPECT_EQ(id[3], 16);
  EXPECT_EQ(id[6], 63);
  EXPECT_EQ(ata_string(id, 10, 20), image_->serial());
  EXPECT_EQ(ata_string(id, 10, 20).substr(0, 17), "hv-ata-disk-test-");
  EXPECT_EQ(ata_string(id, 23, 8), "1.0     ");
  EXPECT_EQ(ata_string(id, 27, 40), "HV ATA DISK                             ");
  EXPECT_EQ(id[27], ('H' << 8) | 'V');  // the first character in the high byte
  EXPECT_EQ(id[47], 0x8010);
  EXPECT_EQ(id[49] & 0x0a00, 0x0a00);  // LBA, IORDY
  EXPECT_EQ(id[53] & 0x0007, 0x0007);
  EXPECT_EQ(id[54], 4096 / (16 * 63));
  EXPECT_EQ(id[55], 16);
  EXPECT_EQ(id[56], 63);
  EXPECT_EQ(words_value(id, 57, 2), 4096u / (16 * 63) * 16 * 63);
  EXPECT_EQ(id[59], 0x0110);  // multiple mode on, 16 sectors
  EXPECT_EQ(words_value(id, 60, 2), 4096u);
  EXPECT_EQ(id[80] & 0x01c0, 0x01c0);  // ATA-6, 7, 8
  EXPECT_EQ(id[83] & 0xc000, 0x4000);
  EXPECT_NE(id[83] & (1 << 10), 0);  // LBA48
  EXPECT_NE(id[83] & (1 << 12), 0);  // FLUSH CACHE
  EXPECT_NE(id[83] & (1 << 13), 0);  // FLUSH CACHE EXT
  EXPECT_NE(id[86] & (1 << 10), 0);
  EXPECT_NE(id[85] & (1 << 5), 0);  // write cache on
  EXPECT_EQ(id[87] & 0xc000, 0x4000);
  EXPECT_EQ(id[88], 0);  // no UDMA
  EXPECT_EQ(words_value(id, 100, 4), 4096u);
  EXPECT_EQ(id[106], 0x4000);
  EXPECT_EQ(id[255] & 0xff, 0xa5);
  uint8_t sum = 0;
  for (uint8_t b : bytes) {
    sum = static_cast<uint8_t>(sum + b);
  }
  EXPECT_EQ(sum, 0);
}

TEST_F(AtaDiskTest, IdentifyPacketDeviceAborts) {
  make_disk(64, 0);
  vm_.outb(kDevice, kMaster);
  EXPECT_EQ(run_non_data(0xa1), kFailed);
  EXPECT_EQ(vm_.inb(kError), kAborted);
  EXPECT_EQ(vm_.inw(kData), 0xffff);  // no data phase
}

TEST_F(AtaDiskTest, ReadSectorsRaisesAnInterruptPerSector) {
  make_disk(64, 64);
  load_lba28(5, 3);
  vm_.outb(kCommand, 0x20);
  for (uint64_t lba = 5; lba < 8; ++lba) {
    EXPECT_EQ(edges_so_far(), static_cast<int>(lba - 4));
    EXPECT_TRUE(irq_level());
    EXPECT_EQ(vm_.inb(kControl), kDataRequest);
    EXPECT_TRUE(irq_level()) << "alternate status must not acknowledge";
    EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
    EXPECT_FALSE(irq_level());
    EXPECT_EQ(read_data(kSector), sector_content(lba)) << "sector " << lba;
  }
  EXPECT_EQ(edges_so_far(), 3);  // the last block ends without an interrupt
  EXPECT_FALSE(irq_level());
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_EQ(vm_.inb(kError), 0);
  EXPECT_EQ(vm_.inw(kData), 0xffff);  // the transfer is over
  // The address registers point at the last sector transferred.
  EXPECT_EQ(vm_.inb(kLbaLow), 7);
}

TEST_F(AtaDiskTest, WriteSectorsWritesTheImage) {
  make_disk(64, 64);
  load_lba28(10, 2);
  vm_.outb(kCommand, 0x30);
  // The first block is asked for without an interrupt.
  EXPECT_EQ(edges_so_far(), 0);
  EXPECT_EQ(vm_.inb(kControl), kDataRequest);
  write_data(sector_content(10, 99));
  EXPECT_EQ(file_sector(10), sector_content(10, 99));  // on the image as the block completes
  EXPECT_EQ(edges_so_far(), 1);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_FALSE(irq_level());
  write_data(sector_content(11, 99));
  EXPECT_EQ(edges_so_far(), 2);
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_FALSE(irq_level());

  EXPECT_EQ(file_sector(9), sector_content(9));
  EXPECT_EQ(file_sector(11), sector_content(11, 99));
  EXPECT_EQ(file_sector(12), sector_content(12));
}

TEST_F(AtaDiskTest, MultipleModeMovesWholeBlocksPerInterrupt) {
  make_disk(64, 64);
  vm_.outb(kDevice, kMasterLba);
  vm_.outb(kSectorCount, 4);
  EXPECT_EQ(run_non_data(0xc6), kIdle);
  EXPECT_EQ(identify()[59], 0x0104);

  load_lba28(20, 10);
  vm_.outb(kCommand, 0xc4);
  const int first_edge = edges_so_far();
  for (size_t block = 0; block < 3; ++block) {
    const size_t sectors = block < 2 ? 4 : 2;
    EXPECT_EQ(edges_so_far(), first_edge + static_cast<int>(block));
    EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
    for (size_t s = 0; s < sectors; ++s) {
      const uint64_t lba = 20 + block * 4 + s;
      EXPECT_EQ(read_data(kSector), sector_content(lba)) << "sector " << lba;
      if (s + 1 < sectors) {
        EXPECT_EQ(vm_.inb(kControl), kDataRequest);  // DRQ stays up inside a block
        EXPECT_FALSE(irq_level());
      }
    }
  }
  EXPECT_EQ(edges_so_far(), first_edge + 2);
  EXPECT_EQ(vm_.inb(kStatus), kIdle);

  load_lba28(40, 6);
  const int write_edges = edges_so_far();
  vm_.outb(kCommand, 0xc5);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  for (uint64_t lba = 40; lba < 44; ++lba) {
    EXPECT_EQ(edges_so_far(), write_edges);
    write_data(sector_content(lba, 1));
  }
  EXPECT_EQ(edges_so_far(), write_edges + 1);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  write_data(sector_content(44, 1));
  EXPECT_EQ(edges_so_far(), write_edges + 1);
  write_data(sector_content(45, 1));
  EXPECT_EQ(edges_so_far(), write_edges + 2);
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  for (uint64_t lba = 40; lba < 46; ++lba) {
    EXPECT_EQ(file_sector(lba), sector_content(lba, 1)) << "sector " << lba;
  }
  EXPECT_EQ(file_sector(46), sector_content(46));
}

TEST_F(AtaDiskTest, SetMultipleModeTakesPowersOfTwoUpTo16) {
  make_disk(64, 64);
  vm_.outb(kDevice, kMasterLba);
  for (uint8_t bad : {3, 12, 32, 255}) {
    vm_.outb(kSectorCount, bad);
    EXPECT_EQ(run_non_data(0xc6), kFailed) << int{bad};
    EXPECT_EQ(vm_.inb(kError), kAborted);
  }
  EXPECT_EQ(identify()[59], 0x0110);  // unchanged
  for (uint8_t good : {1, 2, 8, 16}) {
    vm_.outb(kSectorCount, good);
    EXPECT_EQ(run_non_data(0xc6), kIdle) << int{good};
  }
  // 0 turns READ/WRITE MULTIPLE off.
  vm_.outb(kSectorCount, 0);
  EXPECT_EQ(run_non_data(0xc6), kIdle);
  load_lba28(0, 1);
  EXPECT_EQ(run_non_data(0xc4), kFailed);
  EXPECT_EQ(vm_.inb(kError), kAborted);
  load_lba28(0, 1);
  EXPECT_EQ(run_non_data(0xc5), kFailed);
}

TEST_F(AtaDiskTest, HobRegistersHoldThePreviousWrite) {
  make_disk(64, 0);
  vm_.outb(kSectorCount, 0x12);
  vm_.outb(kSectorCount, 0x34);
  vm_.outb(kLbaLow, 0x56);
  vm_.outb(kLbaLow, 0x78);
  EXPECT_EQ(vm_.inb(kSectorCount), 0x34);
  EXPECT_EQ(vm_.inb(kLbaLow), 0x78);
  vm_.outb(kControl, 0x80);  // HOB
  EXPECT_EQ(vm_.inb(kSectorCount), 0x12);
  EXPECT_EQ(vm_.inb(kLbaLow), 0x56);
  EXPECT_EQ(vm_.inb(kLbaMid), 0x00);  // never written: both halves hold the signature's 0
  // Writing any command block register clears HOB.
  vm_.outb(kLbaHigh, 0x9a);
  EXPECT_EQ(vm_.inb(kSectorCount), 0x34);
  EXPECT_EQ(vm_.inb(kLbaHigh), 0x9a);
}

TEST_F(AtaDiskTest, Lba48ReachesBeyondTwoTo28Sectors) {
  constexpr uint64_t kSectors = 200ull << 21;  // 200 GiB, sparse
  char name[] = "/tmp/hv-ata-disk-test-XXXXXX";
  const int fd = ::mkstemp(name);
  ASSERT_GE(fd, 0);
  path_ = name;
  const bool sized = ::ftruncate(fd, static_cast<off_t>(kSectors * kSector)) == 0;
  ::close(fd);
  if (!sized) {
    GTEST_SKIP() << "cannot make a 200 GiB sparse file in /tmp: " << std::strerror(errno);
  }
  open_disk();
  constexpr uint64_t kFar = (1ull << 28) + 0x12'3456;  // past LBA28's reach, inside the image
  static_assert(kFar > (1ull << 28) && kFar + 2 < kSectors);
  write_file_sector(kFar, sector_content(kFar));
  write_file_sector(kFar + 1, sector_content(kFar + 1));

  const std::vector<uint16_t> id = identify();
  EXPECT_EQ(words_value(id, 60, 2), 0x0fffffffu);  // LBA28 capacity saturates
  EXPECT_EQ(words_value(id, 100, 4), kSectors);
  EXPECT_EQ(id[1], 16383);

  load_lba48(kFar, 2);
  vm_.outb(kControl, 0x88);  // HOB, and the obsolete bit libata sets
  EXPECT_EQ(vm_.inb(kLbaLow), static_cast<uint8_t>(kFar >> 24));
  EXPECT_EQ(vm_.inb(kLbaMid), 0);
  EXPECT_EQ(vm_.inb(kSectorCount), 0);
  vm_.outb(kControl, 0x08);
  EXPECT_EQ(vm_.inb(kLbaLow), static_cast<uint8_t>(kFar));
  vm_.outb(kCommand, 0x24);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_EQ(read_data(kSector), sector_content(kFar));
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_EQ(read_data(kSector), sector_content(kFar + 1));
  EXPECT_EQ(vm_.inb(kStatus), kIdle);

  constexpr uint64_t kLast = kSectors - 1;
  load_lba48(kLast, 1);
  vm_.outb(kCommand, 0x34);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  write_data(sector_content(kLast, 5));
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_EQ(file_sector(kLast), sector_content(kLast, 5));

  // One past the end: refused, and the registers (both halves) name the missing sector.
  load_lba48(kSectors, 1);
  vm_.outb(kCommand, 0x24);
  EXPECT_EQ(vm_.inb(kStatus), kFailed);
  EXPECT_EQ(vm_.inb(kError), kIdNotFoundAborted);
  EXPECT_EQ(vm_.inb(kLbaHigh), static_cast<uint8_t>(kSectors >> 16));
  vm_.outb(kControl, 0x88);
  EXPECT_EQ(vm_.inb(kLbaLow), static_cast<uint8_t>(kSectors >> 24));

  // READ MULTIPLE EXT and READ VERIFY EXT address the same way.
  load_lba48(kFar, 2);
  vm_.outb(kCommand, 0x29);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_EQ(read_data(kSector), sector_content(kFar));
  load_lba48(kLast, 1);
  EXPECT_EQ(run_non_data(0x42), kIdle);
}

TEST_F(AtaDiskTest, SectorCountZeroMeans256Or65536) {
  make_disk(65536 + 300, 300);
  load_lba28(1, 0);
  vm_.outb(kCommand, 0x20);
  for (uint64_t lba = 1; lba <= 256; ++lba) {
    ASSERT_EQ(vm_.inb(kStatus), kDataRequest) << "sector " << lba;
    ASSERT_EQ(read_data(kSector), sector_content(lba)) << "sector " << lba;
  }
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_EQ(edges_so_far(), 256);

  // 65536 sectors fit from 300 on and not from 301 on.
  load_lba48(300, 0);
  EXPECT_EQ(run_non_data(0x42), kIdle);
  load_lba48(301, 0);
  EXPECT_EQ(run_non_data(0x42), kFailed);
  EXPECT_EQ(vm_.inb(kError), kIdNotFoundAborted);
}

TEST_F(AtaDiskTest, OutOfRangeAddressesAbortWithoutTransfer) {
  make_disk(4096, 64);
  for (uint8_t command : {0x20, 0x30, 0x40, 0xc4, 0xc5}) {
    load_lba28(4095, 2);  // the second sector is missing
    EXPECT_EQ(run_non_data(command), kFailed) << int{command};
    EXPECT_EQ(vm_.inb(kError), kIdNotFoundAborted);
    EXPECT_EQ(vm_.inw(kData), 0xffff);
    // The first sector that is not there: 4096.
    EXPECT_EQ(vm_.inb(kLbaLow), 0x00);
    EXPECT_EQ(vm_.inb(kLbaMid), 0x10);
    EXPECT_EQ(vm_.inb(kLbaHigh), 0x00);
  }
  load_lba28(0x0fffffff, 1);
  EXPECT_EQ(run_non_data(0x20), kFailed);
  EXPECT_EQ(vm_.inb(kError), kIdNotFoundAborted);
  // A write refused up front leaves the data port dead and the image unchanged.
  load_lba28(5000, 1);
  EXPECT_EQ(run_non_data(0x30), kFailed);
  write_data(sector_content(0, 42));
  EXPECT_EQ(file_sector(0), sector_content(0));
  EXPECT_EQ(image_->size_bytes(), 4096 * kSector);
}

TEST_F(AtaDiskTest, HostReadErrorEndsTheCommandWithUnc) {
  make_disk(64, 64);
  // Someone shrinks the file behind the VM's back: reads past 32 sectors now fail on the host.
  ASSERT_EQ(::truncate(path_.c_str(), 32 * kSector), 0);
  load_lba28(31, 2);
  vm_.outb(kCommand, 0x20);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_EQ(read_data(kSector), sector_content(31));
  // Loading the second sector failed: the command ends there, with an interrupt.
  EXPECT_EQ(edges_so_far(), 2);
  EXPECT_EQ(vm_.inb(kStatus), kFailed);
  EXPECT_EQ(vm_.inb(kError), 0x40);
  EXPECT_EQ(vm_.inb(kLbaLow), 32);  // the sector that failed
  EXPECT_EQ(vm_.inw(kData), 0xffff);
  // The disk carries on.
  load_lba28(3, 1);
  vm_.outb(kCommand, 0x20);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_EQ(read_data(kSector), sector_content(3));
}

TEST_F(AtaDiskTest, ReadOnlyImageAbortsWrites) {
  make_disk(64, 64, {.read_only = true});
  for (uint8_t command : {0x30, 0x31, 0xc5}) {
    load_lba28(3, 1);
    EXPECT_EQ(run_non_data(command), kFailed) << int{command};
    EXPECT_EQ(vm_.inb(kError), kAborted);
    write_data(sector_content(3, 42));
  }
  load_lba48(3, 1);
  EXPECT_EQ(run_non_data(0x34), kFailed);
  load_lba48(3, 1);
  EXPECT_EQ(run_non_data(0x39), kFailed);
  EXPECT_EQ(file_sector(3), sector_content(3));
  // Reads still work.
  load_lba28(3, 1);
  vm_.outb(kCommand, 0x20);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_EQ(read_data(kSector), sector_content(3));
  vm_.outb(kDevice, kMaster);
  EXPECT_EQ(run_non_data(0xe7), kIdle);
}

TEST_F(AtaDiskTest, AbsentSlaveReadsStatusZeroAndIgnoresCommands) {
  make_disk(64, 64);
  // libata's ata_devchk: the shared registers read back whichever drive is selected.
  vm_.outb(kDevice, kSlave);
  vm_.outb(kSectorCount, 0x55);
  vm_.outb(kLbaLow, 0xaa);
  EXPECT_EQ(vm_.inb(kSectorCount), 0x55);
  EXPECT_EQ(vm_.inb(kLbaLow), 0xaa);
  EXPECT_EQ(vm_.inb(kDevice), kSlave);
  EXPECT_EQ(vm_.inb(kStatus), 0);
  EXPECT_EQ(vm_.inb(kControl), 0);

  vm_.outb(kCommand, 0xec);
  vm_.outb(kCommand, 0x00);
  EXPECT_EQ(edges_so_far(), 0);
  EXPECT_EQ(vm_.inb(kStatus), 0);
  EXPECT_EQ(vm_.inw(kData), 0xffff);

  vm_.outb(kDevice, kMaster);
  EXPECT_EQ(vm_.inb(kStatus), kIdle);  // the master never saw the IDENTIFY
  EXPECT_EQ(vm_.inw(kData), 0xffff);

  // A command to the slave still acknowledges the channel's interrupt.
  vm_.outb(kCommand, 0xe7);
  EXPECT_TRUE(irq_level());
  vm_.outb(kDevice, kSlave);
  vm_.outb(kCommand, 0xe7);
  EXPECT_FALSE(irq_level());
  EXPECT_EQ(edges_so_far(), 1);
}

TEST_F(AtaDiskTest, ExecuteDeviceDiagnosticReportsTheSignature) {
  make_disk(64, 0);
  load_lba28(0x0abcdef, 9);
  vm_.outb(kDevice, kSlave);  // the diagnostic runs whichever drive is selected
  vm_.outb(kCommand, 0x90);
  EXPECT_EQ(edges_so_far(), 1);
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_EQ(vm_.inb(kError), 0x01);
  EXPECT_EQ(vm_.inb(kSectorCount), 1);
  EXPECT_EQ(vm_.inb(kLbaLow), 1);
  EXPECT_EQ(vm_.inb(kLbaMid), 0);
  EXPECT_EQ(vm_.inb(kLbaHigh), 0);
  EXPECT_EQ(vm_.inb(kDevice), 0);
}

TEST_F(AtaDiskTest, NienKeepsTheLineLowWhileAnInterruptIsPending) {
  make_disk(64, 64);
  vm_.outb(kControl, 0x02);  // nIEN
  load_lba28(0, 2);
  vm_.outb(kCommand, 0x20);
  EXPECT_FALSE(irq_level());
  EXPECT_EQ(edges_so_far(), 0);
  EXPECT_EQ(vm_.inb(kControl), kDataRequest);  // polled drivers still see DRQ
  EXPECT_EQ(read_data(kSector), sector_content(0));
  EXPECT_EQ(edges_so_far(), 0);
  // Enabling interrupts with one pending asserts the line.
  vm_.outb(kControl, 0x00);
  EXPECT_TRUE(irq_level());
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_FALSE(irq_level());
  EXPECT_EQ(read_data(kSector), sector_content(1));
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
}

TEST_F(AtaDiskTest, SoftwareResetCancelsTheCommandAndRestoresTheSignature) {
  make_disk(64, 64);
  load_lba28(7, 4);
  vm_.outb(kCommand, 0x20);
  EXPECT_TRUE(irq_level());
  vm_.outb(kControl, 0x04);  // SRST
  EXPECT_FALSE(irq_level());
  EXPECT_EQ(vm_.inb(kControl) & 0x80, 0x80);  // BSY
  vm_.outb(kCommand, 0xec);                   // ignored while held in reset
  vm_.outb(kControl, 0x00);
  EXPECT_EQ(vm_.inb(kControl), kIdle);
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_EQ(vm_.inb(kError), 0x01);
  EXPECT_EQ(vm_.inb(kSectorCount), 1);
  EXPECT_EQ(vm_.inb(kLbaLow), 1);
  EXPECT_EQ(vm_.inb(kLbaMid), 0);
  EXPECT_EQ(vm_.inb(kLbaHigh), 0);
  EXPECT_EQ(vm_.inb(kDevice) & 0x10, 0);  // master selected
  EXPECT_EQ(vm_.inw(kData), 0xffff);      // the read is gone
  EXPECT_EQ(edges_so_far(), 1);           // no interrupt for the reset itself
  EXPECT_FALSE(irq_level());
}

TEST_F(AtaDiskTest, DataPortTakesThirtyTwoAndEightBitAccesses) {
  make_disk(64, 64);
  load_lba28(12, 1);
  vm_.outb(kCommand, 0x20);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  std::vector<uint8_t> data;
  for (size_t i = 0; i < kSector / 4; ++i) {
    const uint32_t dword = vm_.inl(kData);
    for (int b = 0; b < 4; ++b) {
      data.push_back(static_cast<uint8_t>(dword >> (8 * b)));
    }
  }
  EXPECT_EQ(data, sector_content(12));
  EXPECT_EQ(vm_.inb(kStatus), kIdle);

  load_lba28(13, 1);
  vm_.outb(kCommand, 0x30);
  const std::vector<uint8_t> written = sector_content(13, 3);
  for (size_t i = 0; i < kSector; i += 4) {
    vm_.outl(kData, static_cast<uint32_t>(written[i] | written[i + 1] << 8 | written[i + 2] << 16 |
                                          uint32_t{written[i + 3]} << 24));
  }
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_EQ(file_sector(13), written);

  load_lba28(14, 1);
  vm_.outb(kCommand, 0x20);
  data.clear();
  for (size_t i = 0; i < kSector; ++i) {
    data.push_back(vm_.inb(kData));
  }
  EXPECT_EQ(data, sector_content(14));
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
}

TEST_F(AtaDiskTest, ChsAddressesTranslateWithTheIdentifyGeometry) {
  make_disk(4096, 1200);
  // (cylinder 1, head 2, sector 3) = (1 * 16 + 2) * 63 + 2 = 1136.
  load_chs(1, 2, 3, 2);
  vm_.outb(kCommand, 0x20);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_EQ(read_data(kSector), sector_content(1136));
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_EQ(read_data(kSector), sector_content(1137));
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_EQ(vm_.inb(kLbaLow), 4);  // the registers name the last sector, in CHS
  EXPECT_EQ(vm_.inb(kDevice) & 0x0f, 2);

  // The last sector of a track is followed by the first of the next head.
  load_chs(0, 0, 63, 2);
  vm_.outb(kCommand, 0x30);
  write_data(sector_content(62, 8));
  write_data(sector_content(63, 8));
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_EQ(file_sector(62), sector_content(62, 8));
  EXPECT_EQ(file_sector(63), sector_content(63, 8));

  for (uint8_t bad_sector : {0, 64}) {
    load_chs(0, 0, bad_sector, 1);
    EXPECT_EQ(run_non_data(0x20), kFailed);
    EXPECT_EQ(vm_.inb(kError), kIdNotFoundAborted);
  }
  load_chs(5, 0, 1, 1);  // cylinder 5 starts at 5040: past the end of the image
  EXPECT_EQ(run_non_data(0x20), kFailed);

  // INITIALIZE DEVICE PARAMETERS: 4 heads of 32 sectors.
  vm_.outb(kDevice, kMaster | 3);
  vm_.outb(kSectorCount, 32);
  EXPECT_EQ(run_non_data(0x91), kIdle);
  load_chs(1, 1, 1, 1);  // (1 * 4 + 1) * 32 = 160
  vm_.outb(kCommand, 0x20);
  EXPECT_EQ(read_data(kSector), sector_content(160));
  load_chs(0, 4, 1, 1);  // no head 4 now
  EXPECT_EQ(run_non_data(0x20), kFailed);
  EXPECT_EQ(vm_.inb(kError), kIdNotFoundAborted);
}

TEST_F(AtaDiskTest, HousekeepingCommandsComplete) {
  make_disk(64, 64);
  vm_.outb(kDevice, kMasterLba);
  EXPECT_EQ(run_non_data(0xe7), kIdle);  // FLUSH CACHE
  EXPECT_EQ(run_non_data(0xea), kIdle);  // FLUSH CACHE EXT
  for (uint8_t command : {0x10, 0x1f, 0xe0, 0xe1, 0xe2, 0xe3}) {
    EXPECT_EQ(run_non_data(command), kIdle) << int{command};
    EXPECT_EQ(vm_.inb(kError), 0);
  }
  EXPECT_EQ(run_non_data(0xe5), kIdle);  // CHECK POWER MODE
  EXPECT_EQ(vm_.inb(kSectorCount), 0xff);
  for (uint8_t command : {0x00, 0x70, 0xc8, 0xca, 0xf8, 0xff}) {  // NOP, SEEK, DMA, HPA, ...
    EXPECT_EQ(run_non_data(command), kFailed) << int{command};
    EXPECT_EQ(vm_.inb(kError), kAborted);
  }
}

TEST_F(AtaDiskTest, SetFeaturesAcceptsPioModesAndWriteCacheSwitches) {
  make_disk(64, 64);
  vm_.outb(kDevice, kMasterLba);
  for (uint8_t mode : {0x00, 0x01, 0x08, 0x0c}) {
    vm_.outb(kFeatures, 0x03);
    vm_.outb(kSectorCount, mode);
    EXPECT_EQ(run_non_data(0xef), kIdle) << int{mode};
  }
  for (uint8_t mode : {0x0d, 0x22, 0x45}) {  // PIO 5, MWDMA 2, UDMA 5
    vm_.outb(kFeatures, 0x03);
    vm_.outb(kSectorCount, mode);
    EXPECT_EQ(run_non_data(0xef), kFailed) << int{mode};
  }
  vm_.outb(kFeatures, 0x82);
  EXPECT_EQ(run_non_data(0xef), kIdle);
  EXPECT_EQ(identify()[85] & (1 << 5), 0);
  // Writes with the cache off still land (and are flushed).
  load_lba28(2, 1);
  vm_.outb(kCommand, 0x30);
  write_data(sector_content(2, 4));
  EXPECT_EQ(vm_.inb(kStatus), kIdle);
  EXPECT_EQ(file_sector(2), sector_content(2, 4));
  vm_.outb(kFeatures, 0x02);
  EXPECT_EQ(run_non_data(0xef), kIdle);
  EXPECT_NE(identify()[85] & (1 << 5), 0);
  vm_.outb(kFeatures, 0x55);  // read look-ahead off: not offered
  EXPECT_EQ(run_non_data(0xef), kFailed);
  EXPECT_EQ(vm_.inb(kError), kAborted);
}

TEST_F(AtaDiskTest, NewCommandCancelsATransferInProgress) {
  make_disk(64, 64);
  load_lba28(0, 4);
  vm_.outb(kCommand, 0x20);
  read_data(100);  // part of the first sector
  EXPECT_EQ(run_non_data(0xe7), kIdle);
  EXPECT_EQ(vm_.inw(kData), 0xffff);
  load_lba28(8, 1);
  vm_.outb(kCommand, 0x20);
  EXPECT_EQ(read_data(kSector), sector_content(8));
}

TEST_F(AtaDiskTest, RandomPortTrafficStaysInsideTheImage) {
  make_disk(256, 256);
  std::mt19937 random(1234);
  const uint64_t ports[] = {kData,    kError,  kSectorCount, kLbaLow, kLbaMid,
                            kLbaHigh, kDevice, kCommand,     kControl};
  for (int i = 0; i < 200000; ++i) {
    const uint64_t port = ports[random() % std::size(ports)];
    const size_t width = size_t{1} << (random() % 3);
    if (random() % 2 == 0) {
      vm_.in(port, width);
    } else {
      uint64_t value = random();
      if (port == kControl) {
        value &= ~uint64_t{0x04};  // keep SRST off most of the time
      }
      vm_.out(port, value, width);
    }
  }
  EXPECT_EQ(image_->size_bytes(), 256 * kSector);
  // The disk still works afterwards.
  vm_.outb(kControl, 0x04);
  vm_.outb(kControl, 0x00);
  load_lba28(9, 1);
  vm_.outb(kCommand, 0x20);
  EXPECT_EQ(vm_.inb(kStatus), kDataRequest);
  EXPECT_EQ(read_data(kSector).size(), kSector);
}

}  // namespace
}  // namespace hv
