// virtio-blk (virtio 1.x section 5.2, "Block Device"): one request queue backed by a BlockImage.
//
// Request: a 16-byte readable header {type u32, reserved u32, sector u64}, the data buffers, and
// one writable status byte (the last writable byte of the chain). Supported types: IN, OUT, FLUSH,
// GET_ID (20-byte serial), DISCARD and WRITE_ZEROES (exactly one 16-byte segment each); others
// complete with VIRTIO_BLK_S_UNSUPP.
//
// Error contract (documented choice):
//  - a ring the Virtqueue rejects (bad descriptors, loops, ...) -> report_device_error
//    (DEVICE_NEEDS_RESET), the device idles until reset;
//  - a chain with no writable byte at all (no status byte): nowhere to report the status, so the
//    chain is returned with used length 0 and nothing is written;
//  - a header shorter than 16 bytes, data not a multiple of 512, a range past the capacity
//    (overflow-safe), a write/discard/write-zeroes on a read-only image, a bad segment, an image
//    I/O error -> VIRTIO_BLK_S_IOERR, nothing written to the image.
// The used length is the number of bytes written into the driver's buffers (IN data + status).
//
// Requests are served on the thread that calls queue_notify(), under the device's mutex. The data
// bounce buffer is kept between requests (no per-request allocation once it has grown).
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "devices/block_image.hpp"
#include "virtio/virtio_device.hpp"
#include "virtio/virtqueue.hpp"

namespace hv {

// Feature bits (5.2.3).
inline constexpr int kVirtioBlkFSizeMax = 1;
inline constexpr int kVirtioBlkFSegMax = 2;
inline constexpr int kVirtioBlkFRo = 5;
inline constexpr int kVirtioBlkFBlkSize = 6;
inline constexpr int kVirtioBlkFFlush = 9;
inline constexpr int kVirtioBlkFDiscard = 13;
inline constexpr int kVirtioBlkFWriteZeroes = 14;

// Request types and status values (5.2.6).
inline constexpr uint32_t kVirtioBlkTIn = 0;
inline constexpr uint32_t kVirtioBlkTOut = 1;
inline constexpr uint32_t kVirtioBlkTFlush = 4;
inline constexpr uint32_t kVirtioBlkTGetId = 8;
inline constexpr uint32_t kVirtioBlkTDiscard = 11;
inline constexpr uint32_t kVirtioBlkTWriteZeroes = 13;
inline constexpr uint8_t kVirtioBlkSOk = 0;
inline constexpr uint8_t kVirtioBlkSIoErr = 1;
inline constexpr uint8_t kVirtioBlkSUnsupp = 2;

// Configuration space offsets (struct virtio_blk_config, virtio 1.1).
namespace virtio_blk_config {
inline constexpr uint32_t kCapacity = 0;  // u64, 512-byte sectors
inline constexpr uint32_t kSizeMax = 8;
inline constexpr uint32_t kSegMax = 12;
inline constexpr uint32_t kGeometry = 16;  // cylinders u16, heads u8, sectors u8
inline constexpr uint32_t kBlkSize = 20;
inline constexpr uint32_t kMaxDiscardSectors = 36;
inline constexpr uint32_t kMaxDiscardSeg = 40;
inline constexpr uint32_t kDiscardSectorAlignment = 44;
inline constexpr uint32_t kMaxWriteZeroesSectors = 48;
inline constexpr uint32_t kMaxWriteZeroesSeg = 52;
inline constexpr uint32_t kWriteZeroesMayUnmap = 56;  // u8
inline constexpr uint32_t kSize = 60;
}  // namespace virtio_blk_config

class VirtioBlk final : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceId = 2;
  static constexpr uint32_t kQueueSize = 256;
  static constexpr uint32_t kSegMax = 128;                      // data descriptors per request
  static constexpr uint32_t kMaxDiscardSectors = 1u << 22;      // 2 GiB per request
  static constexpr uint32_t kMaxWriteZeroesSectors = 1u << 22;  // 2 GiB per request

  // `image` must outlive the device.
  explicit VirtioBlk(BlockImage& image);

  std::string_view name() const override { return "virtio-blk"; }
  uint32_t device_id() const override { return kDeviceId; }
  uint64_t device_features() const override;
  uint16_t queue_count() const override { return 1; }
  uint32_t max_queue_size(uint16_t) const override { return kQueueSize; }
  uint32_t config_size() const override { return virtio_blk_config::kSize; }
  void read_config(uint32_t offset, std::span<uint8_t> data) override;

  Status activate(const VirtioActivation& activation) override;
  void queue_notify(uint16_t queue) override;
  void reset() override;

 private:
  Status serve_requests();  // mutex_ held
  // Executes chain_; returns the used length.
  uint32_t execute();
  uint8_t do_read(uint64_t sector, uint64_t length, uint32_t& written);
  uint8_t do_write(uint64_t sector, uint64_t length);
  uint8_t do_zeroing(uint32_t type, uint64_t data_length);
  bool in_range(uint64_t sector, uint64_t length) const;

  BlockImage& image_;
  std::vector<uint8_t> config_;

  std::mutex mutex_;  // guards everything below
  Virtqueue* queue_ = nullptr;
  VirtioTransport* transport_ = nullptr;
  bool failed_ = false;
  DescriptorChain chain_;
  std::vector<uint8_t> bounce_;  // reused data buffer
};

}  // namespace hv
