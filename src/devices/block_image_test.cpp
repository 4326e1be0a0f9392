#include "devices/block_image.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace hv {
namespace {

constexpr uint64_t kSector = BlockImage::kSectorSize;

std::vector<uint8_t> pattern(size_t size, uint8_t seed) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<uint8_t>(seed + i * 7 + i / 251);
  }
  return bytes;
}

class BlockImageTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& path : files_) {
      ::unlink(path.c_str());
    }
    for (const std::string& path : directories_) {
      ::rmdir(path.c_str());
    }
  }

  // A new file in /tmp holding `contents`; removed after the test.
  std::string make_file(const std::vector<uint8_t>& contents) {
    char name[] = "/tmp/hv-block-image-test-XXXXXX";
    const int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    files_.push_back(name);
    EXPECT_EQ(::write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
    ::close(fd);
    return name;
  }

  std::string make_directory() {
    char name[] = "/tmp/hv-block-image-dir-XXXXXX";
    EXPECT_NE(::mkdtemp(name), nullptr) << std::strerror(errno);
    directories_.push_back(name);
    return name;
  }

  std::string missing_path() {
    std::string path = make_file({});
    ::unlink(path.c_str());
    return path;
  }

  static std::vector<uint8_t> file_contents(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
    const int fd = ::open(path.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
    return bytes;
  }

  static std::unique_ptr<BlockImage> open_ok(const std::string& path,
                                             BlockImageOptions options = {}) {
    auto image = BlockImage::open(path, options);
    EXPECT_TRUE(image.ok()) << image.error().to_string();
    return image.ok() ? std::move(image).value() : nullptr;
  }

  std::vector<std::string> files_;
  std::vector<std::string> directories_;
};

TEST_F(BlockImageTest, MissingFileIsRefusedNamingThePath) {
  const std::string path = missing_path();
  for (bool read_only : {false, true}) {
    auto image = BlockImage::open(path, {.read_only = read_only});
    ASSERT_FALSE(image.ok());
    EXPECT_NE(image.error().to_string().find(path), std::string::npos) << image.error().to_string();
    EXPECT_EQ(image.error().sys_errno, ENOENT);
    EXPECT_EQ(image.error().status, ExitStatus::FileMissing);
  }
}

TEST_F(BlockImageTest, DirectoryIsRefusedNamingThePath) {
  const std::string path = make_directory();
  for (bool read_only : {false, true}) {
    auto image = BlockImage::open(path, {.read_only = read_only});
    ASSERT_FALSE(image.ok());
    EXPECT_NE(image.error().to_string().find(path), std::string::npos) << image.error().to_string();
  }
}

TEST_F(BlockImageTest, SizeThatIsNotWholeSectorsIsRefused) {
  const std::string path = make_file(pattern(1000, 1));
  auto image = BlockImage::open(path);
  ASSERT_FALSE(image.ok());
  const std::string message = image.error().to_string();
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("1000 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("512-byte sectors"), std::string::npos) << message;
  EXPECT_EQ(image.error().status, ExitStatus::BadImage);
}

TEST_F(BlockImageTest, EmptyFileIsRefused) {
  const std::string path = make_file({});
  auto image = BlockImage::open(path);
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.error().to_string().find(path), std::string::npos);
  EXPECT_NE(image.error().to_string().find("empty"), std::string::npos);
}

TEST_F(BlockImageTest, ReportsSizeAndSerialFromTheFileName) {
  const std::string path = make_file(pattern(8 * kSector, 1));
  auto image = open_ok(path);
  ASSERT_NE(image, nullptr);
  EXPECT_EQ(image->size_bytes(), 8 * kSector);
  EXPECT_EQ(image->sector_count(), 8u);
  EXPECT_FALSE(image->read_only());
  EXPECT_EQ(image->path(), path);
  // "hv-block-image-test-XXXXXX" cut to the 20 characters of the serial number fields.
  EXPECT_EQ(image->serial(), "hv-block-image-test-");
}

TEST_F(BlockImageTest, SerialReplacesUnprintableCharacters) {
  std::string path = make_directory() + "/d\xc3\xa9j\xe0 vu";
  const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  files_.insert(files_.begin(), path);  // removed before its directory
  ASSERT_EQ(::ftruncate(fd, kSector), 0);
  ::close(fd);
  auto image = open_ok(path);
  ASSERT_NE(image, nullptr);
  EXPECT_EQ(image->serial(), "d__j_ vu");
}

TEST_F(BlockImageTest, SerialGivenInTheOptionsWins) {
  const std::string path = make_file(pattern(kSector, 2));
  auto image = BlockImage::open(path, {.serial = "root-disk-0123456789-extra\n"});
  ASSERT_TRUE(image.ok()) << image.error().to_string();
  EXPECT_EQ((*image)->serial(), "root-disk-0123456789");
}

TEST_F(BlockImageTest, WritesReachTheFileAndReadBack) {
  const std::string path = make_file(std::vector<uint8_t>(16 * kSector, 0));
  auto image = open_ok(path);
  ASSERT_NE(image, nullptr);

  const std::vector<uint8_t> data = pattern(3 * kSector, 9);
  ASSERT_TRUE(image->write(5 * kSector, data).ok());
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE(image->read(5 * kSector, back).ok());
  EXPECT_EQ(back, data);

  // Unaligned ranges are fine without direct I/O.
  const std::vector<uint8_t> odd = pattern(7, 200);
  ASSERT_TRUE(image->write(100, odd).ok());
  std::vector<uint8_t> odd_back(7);
  ASSERT_TRUE(image->read(100, odd_back).ok());
  EXPECT_EQ(odd_back, odd);

  std::vector<uint8_t> expected(16 * kSector, 0);
  std::copy(data.begin(), data.end(), expected.begin() + 5 * kSector);
  std::copy(odd.begin(), odd.end(), expected.begin() + 100);
  EXPECT_EQ(file_contents(path), expected);
  EXPECT_TRUE(image->flush().ok());
}

TEST_F(BlockImageTest, RequestsOutsideTheImageAreRefusedWhole) {
  const std::vector<uint8_t> original = pattern(4 * kSector, 3);
  const std::string path = make_file(original);
  auto image = open_ok(path);
  ASSERT_NE(image, nullptr);

  std::vector<uint8_t> buffer(2 * kSector, 0xee);
  auto crossing = image->read(3 * kSector, buffer);
  ASSERT_FALSE(crossing.ok());
  EXPECT_NE(crossing.error().to_string().find(path), std::string::npos);
  EXPECT_EQ(buffer, std::vector<uint8_t>(2 * kSector, 0xee));  // nothing transferred
  EXPECT_FALSE(image->read(5 * kSector, std::span(buffer.data(), 1)).ok());
  EXPECT_FALSE(image->read(UINT64_MAX, std::span(buffer.data(), 1)).ok());  // no wrap-around
  EXPECT_TRUE(image->read(4 * kSector, std::span(buffer.data(), 0)).ok());  // empty, at the end

  EXPECT_FALSE(image->write(3 * kSector + 1, std::span(buffer.data(), kSector)).ok());
  EXPECT_FALSE(image->write(UINT64_MAX - 10, std::span(buffer.data(), 20)).ok());
  EXPECT_FALSE(image->discard(2 * kSector, 3 * kSector).ok());
  EXPECT_FALSE(image->write_zeroes(0, 5 * kSector).ok());
  EXPECT_EQ(file_contents(path), original);  // the file neither changed nor grew
}

TEST_F(BlockImageTest, ReadOnlyImageRefusesEveryChange) {
  const std::vector<uint8_t> original = pattern(4 * kSector, 5);
  const std::string path = make_file(original);
  auto image = open_ok(path, {.read_only = true});
  ASSERT_NE(image, nullptr);
  EXPECT_TRUE(image->read_only());

  const std::vector<uint8_t> data(kSector, 0x11);
  auto write = image->write(0, data);
  ASSERT_FALSE(write.ok());
  EXPECT_NE(write.error().to_string().find("read-only"), std::string::npos);
  EXPECT_FALSE(image->discard(0, kSector).ok());
  EXPECT_FALSE(image->write_zeroes(0, kSector).ok());

  std::vector<uint8_t> back(4 * kSector);
  ASSERT_TRUE(image->read(0, back).ok());
  EXPECT_EQ(back, original);
  EXPECT_TRUE(image->flush().ok());
  EXPECT_EQ(file_contents(path), original);
}

TEST_F(BlockImageTest, ReadOnlyOpenOfAReadOnlyFileWorks) {
  const std::string path = make_file(pattern(kSector, 1));
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  EXPECT_NE(open_ok(path, {.read_only = true}), nullptr);
  if (::geteuid() != 0) {  // root may write anyway
    EXPECT_FALSE(BlockImage::open(path).ok());
  }
}

TEST_F(BlockImageTest, DiscardAndWriteZeroesZeroTheRange) {
  constexpr size_t kSize = 64 * 1024;
  const std::vector<uint8_t> original(kSize, 0xab);
  const std::string path = make_file(original);
  auto image = open_ok(path);
  ASSERT_NE(image, nullptr);

  std::vector<uint8_t> expected = original;
  auto zero = [&](uint64_t offset, uint64_t length) {
    std::fill_n(expected.begin() + static_cast<ptrdiff_t>(offset), length, 0);
  };
  ASSERT_TRUE(image->discard(4096, 8192).ok());  // whole file system blocks: a hole
  zero(4096, 8192);
  ASSERT_TRUE(image->discard(512, 1024).ok());  // inside one block: zeroed in place
  zero(512, 1024);
  ASSERT_TRUE(image->write_zeroes(20000, 30000).ok());
  zero(20000, 30000);
  ASSERT_TRUE(image->discard(kSize - 512, 512).ok());
  zero(kSize - 512, 512);
  EXPECT_TRUE(image->discard(100, 0).ok());

  std::vector<uint8_t> back(kSize);
  ASSERT_TRUE(image->read(0, back).ok());
  EXPECT_EQ(back, expected);
  EXPECT_EQ(file_contents(path), expected);
  EXPECT_EQ(image->size_bytes(), kSize);
}

TEST_F(BlockImageTest, SecondWritableOpenIsRefusedAsInUse) {
  const std::string path = make_file(pattern(kSector, 1));
  auto first = open_ok(path);
  ASSERT_NE(first, nullptr);

  for (bool read_only : {false, true}) {
    auto second = BlockImage::open(path, {.read_only = read_only});
    ASSERT_FALSE(second.ok());
    EXPECT_NE(second.error().to_string().find("in use"), std::string::npos)
        << second.error().to_string();
    EXPECT_NE(second.error().to_string().find(path), std::string::npos);
  }

  first.reset();  // closing releases the lock
  EXPECT_NE(open_ok(path), nullptr);
}

TEST_F(BlockImageTest, ReadOnlyOpensShareTheImageButExcludeWriters) {
  const std::string path = make_file(pattern(kSector, 1));
  auto first = open_ok(path, {.read_only = true});
  auto second = open_ok(path, {.read_only = true});
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  auto writer = BlockImage::open(path);
  ASSERT_FALSE(writer.ok());
  EXPECT_NE(writer.error().to_string().find("in use"), std::string::npos);
}

TEST_F(BlockImageTest, ConcurrentWritesToDisjointRangesAllLand) {
  constexpr size_t kThreads = 4;
  constexpr size_t kSectorsEach = 64;
  const std::string path = make_file(std::vector<uint8_t>(kThreads * kSectorsEach * kSector, 0));
  auto image = open_ok(path);
  ASSERT_NE(image, nullptr);

  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::vector<uint8_t> data = pattern(kSector, static_cast<uint8_t>(t));
      for (size_t s = 0; s < kSectorsEach; ++s) {
        EXPECT_TRUE(image->write((s * kThreads + t) * kSector, data).ok());
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  const std::vector<uint8_t> contents = file_contents(path);
  for (size_t sector = 0; sector < kThreads * kSectorsEach; ++sector) {
    const std::vector<uint8_t> expected = pattern(kSector, static_cast<uint8_t>(sector % kThreads));
    ASSERT_TRUE(std::equal(expected.begin(), expected.end(),
                           contents.begin() + static_cast<ptrdiff_t>(sector * kSector)))
        << "sector " << sector;
  }
}

TEST_F(BlockImageTest, DirectIoReadsAndWritesThroughAlignedAndUnalignedBuffers) {
  const std::string path = make_file(pattern(64 * kSector, 2));
  auto opened = BlockImage::open(path, {.direct = true});
  if (!opened.ok() && opened.error().sys_errno == EINVAL) {
    GTEST_SKIP() << opened.error().to_string();
  }
  ASSERT_TRUE(opened.ok()) << opened.error().to_string();
  std::unique_ptr<BlockImage> image = std::move(opened).value();
  EXPECT_TRUE(image->direct());

  // An unaligned buffer goes through the bounce buffer; an aligned one straight to the file.
  std::vector<uint8_t> storage(8 * kSector + 1);
  std::span<uint8_t> unaligned(storage.data() + 1, 8 * kSector);
  const std::vector<uint8_t> data = pattern(8 * kSector, 77);
  std::copy(data.begin(), data.end(), unaligned.begin());
  ASSERT_TRUE(image->write(3 * kSector, unaligned).ok());

  alignas(4096) static uint8_t aligned[8 * kSector];
  ASSERT_TRUE(image->read(3 * kSector, aligned).ok());
  EXPECT_TRUE(std::equal(data.begin(), data.end(), aligned));
  std::fill(unaligned.begin(), unaligned.end(), 0);
  ASSERT_TRUE(image->read(3 * kSector, unaligned).ok());
  EXPECT_TRUE(std::equal(data.begin(), data.end(), unaligned.begin()));

  auto misaligned = image->read(100, std::span(aligned, kSector));
  ASSERT_FALSE(misaligned.ok());
  EXPECT_NE(misaligned.error().to_string().find("direct I/O"), std::string::npos);
  EXPECT_FALSE(image->write(0, std::span<const uint8_t>(aligned, 100)).ok());

  ASSERT_TRUE(image->write_zeroes(0, kSector).ok());
  ASSERT_TRUE(image->flush().ok());
  image.reset();
  std::vector<uint8_t> expected = pattern(64 * kSector, 2);
  std::fill_n(expected.begin(), kSector, 0);
  std::copy(data.begin(), data.end(), expected.begin() + 3 * kSector);
  EXPECT_EQ(file_contents(path), expected);
}

}  // namespace
}  // namespace hv
