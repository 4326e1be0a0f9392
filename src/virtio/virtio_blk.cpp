#include "virtio/virtio_blk.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace hv {
namespace {

constexpr uint64_t kSector = BlockImage::kSectorSize;
constexpr uint64_t kHeaderSize = 16;
constexpr uint64_t kSegmentSize = 16;

template <typename T>
void put_le(std::vector<uint8_t>& bytes, uint32_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));  // x86 host: little endian
}

template <typename T>
T get_le(const uint8_t* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

}  // namespace

VirtioBlk::VirtioBlk(BlockImage& image) : image_(image), config_(virtio_blk_config::kSize, 0) {
  namespace c = virtio_blk_config;
  put_le<uint64_t>(config_, c::kCapacity, image_.sector_count());
  put_le<uint32_t>(config_, c::kSegMax, kSegMax);
  put_le<uint32_t>(config_, c::kBlkSize, static_cast<uint32_t>(kSector));
  put_le<uint32_t>(config_, c::kMaxDiscardSectors, kMaxDiscardSectors);
  put_le<uint32_t>(config_, c::kMaxDiscardSeg, 1);
  put_le<uint32_t>(config_, c::kDiscardSectorAlignment, 1);
  put_le<uint32_t>(config_, c::kMaxWriteZeroesSectors, kMaxWriteZeroesSectors);
  put_le<uint32_t>(config_, c::kMaxWriteZeroesSeg, 1);
  put_le<uint8_t>(config_, c::kWriteZeroesMayUnmap, 1);
}

uint64_t VirtioBlk::device_features() const {
  uint64_t features = (1ull << kVirtioBlkFSegMax) | (1ull << kVirtioBlkFBlkSize) |
                      (1ull << kVirtioBlkFFlush) | (1ull << kVirtioBlkFDiscard) |
                      (1ull << kVirtioBlkFWriteZeroes);
  if (image_.read_only()) {
    features |= 1ull << kVirtioBlkFRo;
  }
  return features;
}

void VirtioBlk::read_config(uint32_t offset, std::span<uint8_t> data) {
  // The configuration never changes: no lock needed. The transport keeps the range inside.
  const size_t n =
      std::min<size_t>(data.size(), config_.size() - std::min<size_t>(offset, config_.size()));
  std::copy_n(config_.begin() + offset, n, data.begin());
  std::fill(data.begin() + static_cast<ptrdiff_t>(n), data.end(), uint8_t{0});
}

Status VirtioBlk::activate(const VirtioActivation& activation) {
  if (activation.queues.size() != 1 || activation.transport == nullptr) {
    return make_error(ExitStatus::HostError, "virtio-blk: activated with {} queues",
                      activation.queues.size());
  }
  std::lock_guard lock(mutex_);
  queue_ = &activation.queues[0];
  transport_ = activation.transport;
  failed_ = false;
  return {};
}

void VirtioBlk::reset() {
  std::lock_guard lock(mutex_);
  queue_ = nullptr;
  transport_ = nullptr;
  failed_ = false;
}

void VirtioBlk::queue_notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (queue != 0 || queue_ == nullptr || failed_ || !queue_->ready()) {
    return;
  }
  if (Status served = serve_requests(); !served) {
    failed_ = true;
    transport_->report_device_error(served.error());
  }
}

Status VirtioBlk::serve_requests() {
  return drain_queue(*queue_, chain_, *transport_, [this](const DescriptorChain&) {
    return execute();  // works on chain_
  });
}

bool VirtioBlk::in_range(uint64_t sector, uint64_t length) const {
  const uint64_t capacity = image_.sector_count();
  if (sector > capacity) {
    return false;
  }
  return length / kSector <= capacity - sector;
}

uint32_t VirtioBlk::execute() {
  const uint64_t writable = chain_.writable_length();
  if (writable == 0) {
    return 0;  // no status byte: nothing can be reported
  }
  // The status byte is the last writable byte; data writable bytes come before it.
  const uint64_t status_offset = writable - 1;
  uint32_t written = 0;
  uint8_t status = kVirtioBlkSIoErr;

  uint8_t header[kHeaderSize];
  if (chain_.read_from_chain(0, header) == kHeaderSize) {
    const uint32_t type = get_le<uint32_t>(header);
    const uint64_t sector = get_le<uint64_t>(header + 8);
    const uint64_t out_length = chain_.readable_length() - kHeaderSize;
    switch (type) {
      case kVirtioBlkTIn:
        status = do_read(sector, status_offset, written);
        break;
      case kVirtioBlkTOut:
        status = do_write(sector, out_length);
        break;
      case kVirtioBlkTFlush:
        status = image_.flush().ok() ? kVirtioBlkSOk : kVirtioBlkSIoErr;
        break;
      case kVirtioBlkTGetId: {
        if (status_offset < BlockImage::kSerialLength) {
          break;  // IOERR
        }
        uint8_t id[BlockImage::kSerialLength] = {};
        const std::string serial = image_.serial();
        std::copy_n(serial.begin(), std::min(serial.size(), sizeof(id)), id);
        written = static_cast<uint32_t>(chain_.write_to_chain(0, id));
        status = kVirtioBlkSOk;
        break;
      }
      case kVirtioBlkTDiscard:
      case kVirtioBlkTWriteZeroes:
        status = do_zeroing(type, out_length);
        break;
      default:
        status = kVirtioBlkSUnsupp;
        break;
    }
  }
  const uint8_t status_byte[1] = {status};
  written += static_cast<uint32_t>(chain_.write_to_chain(status_offset, status_byte));
  return written;
}

uint8_t VirtioBlk::do_read(uint64_t sector, uint64_t length, uint32_t& written) {
  if (length % kSector != 0 || !in_range(sector, length)) {
    return kVirtioBlkSIoErr;
  }
  if (bounce_.size() < length) {
    bounce_.resize(length);
  }
  std::span<uint8_t> data(bounce_.data(), length);
  if (length != 0 && !image_.read(sector * kSector, data).ok()) {
    return kVirtioBlkSIoErr;
  }
  written = static_cast<uint32_t>(chain_.write_to_chain(0, data));
  return kVirtioBlkSOk;
}

uint8_t VirtioBlk::do_write(uint64_t sector, uint64_t length) {
  if (image_.read_only() || length % kSector != 0 || !in_range(sector, length)) {
    return kVirtioBlkSIoErr;
  }
  if (bounce_.size() < length) {
    bounce_.resize(length);
  }
  std::span<uint8_t> data(bounce_.data(), length);
  if (chain_.read_from_chain(kHeaderSize, data) != length) {
    return kVirtioBlkSIoErr;
  }
  if (length != 0 && !image_.write(sector * kSector, data).ok()) {
    return kVirtioBlkSIoErr;
  }
  return kVirtioBlkSOk;
}

uint8_t VirtioBlk::do_zeroing(uint32_t type, uint64_t data_length) {
  if (image_.read_only() || data_length != kSegmentSize) {
    return kVirtioBlkSIoErr;
  }
  uint8_t segment[kSegmentSize];
  if (chain_.read_from_chain(kHeaderSize, segment) != kSegmentSize) {
    return kVirtioBlkSIoErr;
  }
  const uint64_t sector = get_le<uint64_t>(segment);
  const uint32_t sectors = get_le<uint32_t>(segment + 8);
  const uint32_t flags = get_le<uint32_t>(segment + 12);
  const bool discard = type == kVirtioBlkTDiscard;
  // Only the UNMAP flag (bit 0) is defined, and only for WRITE_ZEROES.
  if ((flags & ~(discard ? 0u : 1u)) != 0) {
    return kVirtioBlkSUnsupp;
  }
  if (sectors > (discard ? kMaxDiscardSectors : kMaxWriteZeroesSectors)) {
    return kVirtioBlkSIoErr;
  }
  const uint64_t length = uint64_t{sectors} * kSector;
  if (!in_range(sector, length)) {
    return kVirtioBlkSIoErr;
  }
  if (length == 0) {
    return kVirtioBlkSOk;
  }
  const bool unmap = !discard && (flags & 1u) != 0;
  const Status done = discard || unmap ? image_.discard(sector * kSector, length)
                                       : image_.write_zeroes(sector * kSector, length);
  return done.ok() ? kVirtioBlkSOk : kVirtioBlkSIoErr;
}

}  // namespace hv
