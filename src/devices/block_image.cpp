#include "devices/block_image.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace hv {
namespace {

// O_DIRECT buffers are aligned this much: a page satisfies every file system and device.
constexpr size_t kDirectMemoryAlignment = 4096;
// The largest bounce buffer one unaligned O_DIRECT request allocates; bigger ones go in pieces.
constexpr size_t kBounceChunk = 256 * 1024;
constexpr size_t kZeroChunk = 64 * 1024;

alignas(kDirectMemoryAlignment) constexpr uint8_t kZeros[kZeroChunk] = {};

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, FreeDeleter>;

AlignedBuffer allocate_aligned(size_t size) {
  const size_t rounded =
      (size + kDirectMemoryAlignment - 1) / kDirectMemoryAlignment * kDirectMemoryAlignment;
  return AlignedBuffer(static_cast<uint8_t*>(std::aligned_alloc(kDirectMemoryAlignment, rounded)));
}

bool is_direct_aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % kDirectMemoryAlignment == 0;
}

// The file system cannot do what was asked; writing zeros does the same job, only slower.
bool unsupported(int error) {
  return error == EOPNOTSUPP || error == ENOSYS || error == EINVAL;
}

}  // namespace

BlockImage::BlockImage(std::string path, Fd fd, uint64_t size_bytes, BlockImageOptions options)
    : path_(std::move(path)), fd_(std::move(fd)), size_bytes_(size_bytes), options_(options) {}

Result<std::unique_ptr<BlockImage>> BlockImage::open(const std::string& path,
                                                     BlockImageOptions options) {
  // O_NONBLOCK: a FIFO given by mistake must not hang the open; regular files and block
  // devices ignore it.
  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK;
  if (options.direct) {
    flags |= O_DIRECT;
  }
  Fd fd(::open(path.c_str(), flags));
  if (!fd.valid()) {
    if (options.direct && errno == EINVAL) {
      return Error::from_errno(
          fmt::format("cannot open disk image '{}' with O_DIRECT (its file system lacks it)", path),
          ExitStatus::FileMissing);
    }
    return Error::from_errno(fmt::format("cannot open disk image '{}'{}", path,
                                         options.read_only ? "" : " for reading and writing"),
                             ExitStatus::FileMissing);
  }

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return Error::from_errno(fmt::format("cannot stat disk image '{}'", path),
                             ExitStatus::FileMissing);
  }
  uint64_t size = 0;
  if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd.get(), BLKGETSIZE64, &size) != 0) {
      return Error::from_errno(fmt::format("cannot get the size of block device '{}'", path),
                               ExitStatus::FileMissing);
    }
  } else {
    return make_error(ExitStatus::FileMissing,
                      "disk image '{}' is not a regular file or a block device", path);
  }

  // Before anything else reads the image: another VM may be writing it.
  if (::flock(fd.get(), (options.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return make_error(ExitStatus::HostError,
                        "disk image '{}' is in use by another VM or program (it is locked{})", path,
                        options.read_only ? " for writing" : "");
    }
    return Error::from_errno(fmt::format("cannot lock disk image '{}'", path));
  }

  if (size == 0) {
    return make_error(ExitStatus::BadImage, "disk image '{}' is empty", path);
  }
  if (size % kSectorSize != 0) {
    return make_error(ExitStatus::BadImage,
                      "disk image '{}' is {} bytes long, not a whole number of {}-byte sectors",
                      path, size, kSectorSize);
  }

  if (options.direct) {
    AlignedBuffer probe = allocate_aligned(kSectorSize);
    if (probe == nullptr) {
      return make_error(ExitStatus::HostError, "out of memory opening disk image '{}'", path);
    }
    ssize_t n;
    do {
      n = ::pread(fd.get(), probe.get(), kSectorSize, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EINVAL) {
        return Error::from_errno(fmt::format("disk image '{}': O_DIRECT on its file system needs "
                                             "a larger alignment than {} bytes; open it without "
                                             "direct I/O",
                                             path, kSectorSize),
                                 ExitStatus::BadImage);
      }
      return Error::from_errno(fmt::format("cannot read disk image '{}'", path),
                               ExitStatus::FileMissing);
    }
  }

  return std::unique_ptr<BlockImage>(new BlockImage(path, std::move(fd), size, options));
}

std::string BlockImage::serial() const {
  const size_t slash = path_.find_last_of('/');
  std::string name = !options_.serial.empty()     ? options_.serial
                     : slash == std::string::npos ? path_
                                                  : path_.substr(slash + 1);
  if (name.size() > kSerialLength) {
    name.resize(kSerialLength);
  }
  for (char& c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e) {
      c = '_';
    }
  }
  return name;
}

Status BlockImage::read(uint64_t offset, std::span<uint8_t> data) {
  HV_TRY(check_request("read", false, offset, data.size()));
  if (!options_.direct || is_direct_aligned(data.data())) {
    return pread_all(offset, data);
  }
  AlignedBuffer bounce = allocate_aligned(std::min(data.size(), kBounceChunk));
  if (bounce == nullptr) {
    return make_error(ExitStatus::HostError, "out of memory reading disk image '{}'", path_);
  }
  for (size_t done = 0; done < data.size();) {
    const size_t chunk = std::min(data.size() - done, kBounceChunk);
    HV_TRY(pread_all(offset + done, std::span(bounce.get(), chunk)));
    std::memcpy(data.data() + done, bounce.get(), chunk);
    done += chunk;
  }
  return {};
}

Status BlockImage::write(uint64_t offset, std::span<const uint8_t> data) {
  HV_TRY(check_request("write", true, offset, data.size()));
  if (!options_.direct || is_direct_aligned(data.data())) {
    return pwrite_all(offset, data);
  }
  AlignedBuffer bounce = allocate_aligned(std::min(data.size(), kBounceChunk));
  if (bounce == nullptr) {
    return make_error(ExitStatus::HostError, "out of memory writing disk image '{}'", path_);
  }
  for (size_t done = 0; done < data.size();) {
    const size_t chunk = std::min(data.size() - done, kBounceChunk);
    std::memcpy(bounce.get(), data.data() + done, chunk);
    HV_TRY(pwrite_all(offset + done, std::span<const uint8_t>(bounce.get(), chunk)));
    done += chunk;
  }
  return {};
}

Status BlockImage::flush() {
  if (::fdatasync(fd_.get()) != 0) {
    return Error::from_errno(fmt::format("cannot flush disk image '{}'", path_));
  }
  return {};
}

Status BlockImage::discard(uint64_t offset, uint64_t length) {
  HV_TRY(check_request("discard", true, offset, length));
  if (length == 0) {
    return {};
  }
  if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0) {
    return {};
  }
  if (!unsupported(errno)) {
    return io_error("discard", offset, length);
  }
  return write_zero_bytes(offset, length);
}

Status BlockImage::write_zeroes(uint64_t offset, uint64_t length) {
  HV_TRY(check_request("write zeroes to", true, offset, length));
  if (length == 0) {
    return {};
  }
  if (::fallocate(fd_.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0) {
    return {};
  }
  if (!unsupported(errno)) {
    return io_error("write zeroes to", offset, length);
  }
  return write_zero_bytes(offset, length);
}

Status BlockImage::check_request(std::string_view operation, bool modifies, uint64_t offset,
                                 uint64_t length) const {
  if (modifies && options_.read_only) {
    return Error{fmt::format("cannot {} disk image '{}': it is opened read-only", operation, path_),
                 EROFS, ExitStatus::HostError};
  }
  if (offset > size_bytes_ || length > size_bytes_ - offset) {
    return make_error(ExitStatus::HostError,
                      "cannot {} {} bytes at offset {} of disk image '{}': it is {} bytes long",
                      operation, length, offset, path_, size_bytes_);
  }
  if (options_.direct && (offset % kSectorSize != 0 || length % kSectorSize != 0)) {
    return Error{fmt::format("cannot {} {} bytes at offset {} of disk image '{}': direct I/O "
                             "needs whole {}-byte sectors",
                             operation, length, offset, path_, kSectorSize),
                 EINVAL, ExitStatus::HostError};
  }
  return {};
}

Status BlockImage::write_zero_bytes(uint64_t offset, uint64_t length) {
  for (uint64_t done = 0; done < length;) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(length - done, kZeroChunk));
    HV_TRY(pwrite_all(offset + done, std::span<const uint8_t>(kZeros, chunk)));
    done += chunk;
  }
  return {};
}

Status BlockImage::pread_all(uint64_t offset, std::span<uint8_t> data) const {
  for (size_t done = 0; done < data.size();) {
    const ssize_t n = ::pread(fd_.get(), data.data() + done, data.size() - done,
                              static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return io_error("read", offset, data.size());
    }
    if (n == 0) {
      // Only when someone shrank the file behind our back.
      return make_error(ExitStatus::HostError,
                        "cannot read {} bytes at offset {} of disk image '{}': the file ends at "
                        "offset {}",
                        data.size(), offset, path_, offset + done);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Status BlockImage::pwrite_all(uint64_t offset, std::span<const uint8_t> data) const {
  for (size_t done = 0; done < data.size();) {
    const ssize_t n = ::pwrite(fd_.get(), data.data() + done, data.size() - done,
                               static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return io_error("write", offset, data.size());
    }
    if (n == 0) {
      return Error{fmt::format("cannot write {} bytes at offset {} of disk image '{}'", data.size(),
                               offset, path_),
                   ENOSPC, ExitStatus::HostError};
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Error BlockImage::io_error(const char* operation, uint64_t offset, uint64_t length) const {
  const int saved_errno = errno;  // formatting may allocate, which may touch errno
  return Error{fmt::format("cannot {} {} bytes at offset {} of disk image '{}'", operation, length,
                           offset, path_),
               saved_errno, ExitStatus::HostError};
}

}  // namespace hv
