// virtio-console (virtio 1.x section 5.3, "Console Device"), single port, no MULTIPORT:
// queue 0 is the receiveq (host -> guest), queue 1 the transmitq (guest -> host).
//
// Output: every chain the driver puts on the transmitq has its readable bytes gathered (in
// order) and handed to the CharSink in one write() per chain; the chain is returned with used
// length 0. Writable buffers on the transmitq are ignored.
//
// Input contract (receive()):
//  - the device keeps a bounded pending buffer of kPendingCapacity bytes;
//  - receive(bytes) returns 0 while the device is not active (before DRIVER_OK, after reset);
//    otherwise it appends as many of `bytes` as fit into the pending buffer, returns that count,
//    and moves pending bytes into the receive buffers the driver has posted (filling each chain
//    as far as it goes, splitting input across chains), interrupting the driver if it wants;
//  - bytes receive() has taken are delivered in order and exactly once, as soon as the driver
//    posts buffers (queue_notify(0) flushes the pending buffer) -- unless the driver resets the
//    device first, which drops them;
//  - the caller offers the bytes not taken (the return value) again later, like
//    Serial16550::receive. Calls from several threads are serialised; each call's bytes are
//    contiguous in the stream.
// Thread safety: every method takes the device's mutex; receive() may be called from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "devices/char_sink.hpp"
#include "virtio/virtio_device.hpp"
#include "virtio/virtqueue.hpp"

namespace hv {

inline constexpr int kVirtioConsoleFSize = 0;  // VIRTIO_CONSOLE_F_SIZE

class VirtioConsole final : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceId = 3;
  static constexpr uint32_t kQueueSize = 128;
  static constexpr uint16_t kReceiveQueue = 0;
  static constexpr uint16_t kTransmitQueue = 1;
  static constexpr size_t kPendingCapacity = 4096;
  static constexpr uint16_t kColumns = 80;
  static constexpr uint16_t kRows = 25;

  // `sink` (may be null: output dropped) must outlive the device.
  explicit VirtioConsole(CharSink* sink) : sink_(sink) {}

  std::string_view name() const override { return "virtio-console"; }
  uint32_t device_id() const override { return kDeviceId; }
  uint64_t device_features() const override { return 1ull << kVirtioConsoleFSize; }
  uint16_t queue_count() const override { return 2; }
  uint32_t max_queue_size(uint16_t) const override { return kQueueSize; }
  // struct virtio_console_config: cols u16, rows u16, max_nr_ports u32, emerg_wr u32.
  uint32_t config_size() const override { return 12; }
  void read_config(uint32_t offset, std::span<uint8_t> data) override;

  Status activate(const VirtioActivation& activation) override;
  void queue_notify(uint16_t queue) override;
  void reset() override;

  // Console input; see the contract above. Returns how many bytes were taken.
  size_t receive(std::span<const uint8_t> bytes);

 private:
  // mutex_ held; on a ring error report it and go idle.
  void fail(const Error& error);
  Status flush_pending();
  Status transmit();

  CharSink* const sink_;

  std::mutex mutex_;  // guards everything below
  Virtqueue* rx_ = nullptr;
  Virtqueue* tx_ = nullptr;
  VirtioTransport* transport_ = nullptr;
  bool failed_ = false;
  DescriptorChain chain_;
  std::vector<uint8_t> tx_bytes_;  // reused
  std::array<uint8_t, kPendingCapacity> pending_{};
  size_t pending_head_ = 0;   // index of the oldest pending byte
  size_t pending_count_ = 0;  // bytes waiting
};

}  // namespace hv
