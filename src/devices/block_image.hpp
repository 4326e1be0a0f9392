// A raw disk image: a regular file (or a host block device) whose bytes are the guest disk's
// sectors, one for one. It is the storage behind the emulated disks (the ATA disk, later
// virtio-blk), which only ever ask for byte ranges inside it.
//
// The image is locked while open, so that two VMs cannot corrupt one image: a writable image
// takes an exclusive flock, a read-only one a shared flock; a conflicting open fails at once with
// an error saying the image is in use. Locks are per open file description, so two opens within
// one process conflict too.
//
// Every call is safe from several threads at once: reads and writes are positioned (pread and
// pwrite) and the object has no mutable state. A request that reaches past the end of the image
// is refused whole; the image never grows or shrinks.
//
// With `direct`, the file is opened with O_DIRECT (no host page cache). Offsets and lengths must
// then be multiples of kSectorSize; buffers need no alignment, unaligned ones go through an
// aligned bounce buffer. open() tries one sector-sized read, so a file system that needs a larger
// alignment is reported there rather than on the guest's first access.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace hv {

struct BlockImageOptions {
  bool read_only = false;
  bool direct = false;  // O_DIRECT: bypass the host page cache
  std::string serial;   // what the disks report as their serial number; empty: from the name
};

class BlockImage {
 public:
  static constexpr uint64_t kSectorSize = 512;
  static constexpr size_t kSerialLength = 20;  // ATA IDENTIFY's and virtio-blk's serial field

  // Errors name the path: missing or unreadable file, not a regular file or block device, empty,
  // size not a whole number of sectors, O_DIRECT unsupported, locked by another user.
  static Result<std::unique_ptr<BlockImage>> open(const std::string& path,
                                                  BlockImageOptions options = {});

  BlockImage(const BlockImage&) = delete;
  BlockImage& operator=(const BlockImage&) = delete;
  ~BlockImage() = default;  // closing the file drops the lock

  const std::string& path() const { return path_; }
  uint64_t size_bytes() const { return size_bytes_; }
  uint64_t sector_count() const { return size_bytes_ / kSectorSize; }
  bool read_only() const { return options_.read_only; }
  bool direct() const { return options_.direct; }

  // The serial number the disks report: options.serial, or else the file name without its
  // directory; cut to kSerialLength characters, anything but printable ASCII replaced by '_'.
  std::string serial() const;

  // Fails when [offset, offset + size) is not inside the image (nothing is transferred then), on
  // an I/O error, or with `direct` on an offset or size that is not sector-aligned.
  Status read(uint64_t offset, std::span<uint8_t> data);
  Status write(uint64_t offset, std::span<const uint8_t> data);
  // Makes completed writes durable (fdatasync).
  Status flush();
  // The range reads back as zeros afterwards. discard() frees the space where the host can (a
  // hole punched in the file), write_zeroes() keeps it allocated where the host can; both fall
  // back to writing zeros.
  Status discard(uint64_t offset, uint64_t length);
  Status write_zeroes(uint64_t offset, uint64_t length);

 private:
  BlockImage(std::string path, Fd fd, uint64_t size_bytes, BlockImageOptions options);

  // `modifies`: refused on a read-only image.
  Status check_request(std::string_view operation, bool modifies, uint64_t offset,
                       uint64_t length) const;
  Status write_zero_bytes(uint64_t offset, uint64_t length);
  Status pread_all(uint64_t offset, std::span<uint8_t> data) const;
  Status pwrite_all(uint64_t offset, std::span<const uint8_t> data) const;
  Error io_error(const char* operation, uint64_t offset, uint64_t length) const;

  const std::string path_;
  const Fd fd_;
  const uint64_t size_bytes_;
  const BlockImageOptions options_;
};

}  // namespace hv
