// virtio-net (virtio 1.x section 5.1, "Network Device") in front of a TAP interface: queue 0 is
// the receiveq (host -> guest), queue 1 the transmitq (guest -> host); no multiqueue, no control
// queue, no offloads. Features offered: MAC, STATUS (the link is always up) and MTU (1500).
// VERSION_1 comes from the transport, so every frame in either direction starts with the 12-byte
// struct virtio_net_hdr_v1 -- the same header the TAP carries (it is opened with vnet_header), so
// transmitted chains go to the TAP as they are.
//
// Transmit (queue_notify(1), on the caller's thread): each chain's readable bytes (header +
// frame) are written to the TAP as one frame, straight from guest memory; the chain is returned
// with used length 0. A chain shorter than the header or longer than TapDevice::kMaxFrameSize,
// or one the TAP refuses (the kernel checks the header, a full host queue drops), is dropped and
// counted, and the device carries on.
//
// Receive (on the IoThread given to attach()): while the guest has a buffer posted, frames are
// read from the TAP into a bounce buffer (kept: no allocation per frame) and copied into the
// chain's writable buffers, used length = header + frame. The header is rewritten: no offload is
// negotiated, so flags and GSO fields are zero (5.1.6.4.1) and num_buffers is 1. A chain is taken
// from the ring before a frame is read, and kept for the next frame when none is waiting.
//  - No buffer posted: the device re-arms the guest's kicks on the receiveq and stops watching the
//    TAP (IoThread::pause) rather than being woken for every frame; frames wait in the TAP's
//    queue (the kernel drops beyond its length, as a wire would). queue_notify(0) resumes.
//  - A frame larger than the chain (the guest posts 1518-byte frames plus header when neither
//    MRG_RXBUF nor GUEST_TSO is offered; a host MTU above 1500 can exceed that): the frame is
//    dropped and counted, and the chain waits for the next frame. Waiting for a big enough chain
//    instead could stall the queue for good: a driver never posts bigger buffers than it did.
//  - Frames that arrive before activate(), after reset() or after a ring error are discarded
//    (read by the handler, or at the next activate() if the TAP was paused), so a driver never
//    sees stale frames from before it started.
//
// Errors: a ring the Virtqueue rejects -> report_device_error (DEVICE_NEEDS_RESET), and the
// device idles until reset. Failures of the host (the TAP, epoll) are counted or reported the
// same way; they never reach the guest as corrupt frames.
//
// Threading: one mutex per direction. The receive path (IoThread handler, queue_notify(0)) holds
// rx_mutex_, the transmit path tx_mutex_; activate() and reset() take both, which is how reset()
// waits for work in progress. Under lock 2 of virtio_device.hpp's order, rx_mutex_ comes before
// tx_mutex_; the IoThread's own lock (pause/resume) nests inside rx_mutex_. The IoThread must be
// stopped before the device is destroyed (its handler points to the device); reset() does not
// touch the IoThread, so the transport may reset the device after the IoThread is gone.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "devices/tap_device.hpp"
#include "virtio/virtio_device.hpp"
#include "virtio/virtqueue.hpp"
#include "vm/io_thread.hpp"

namespace hv {

// Feature bits (5.1.3).
inline constexpr int kVirtioNetFMtu = 3;
inline constexpr int kVirtioNetFMac = 5;
inline constexpr int kVirtioNetFStatus = 16;

inline constexpr uint16_t kVirtioNetSLinkUp = 1;  // the configuration's status field

// Configuration space offsets (struct virtio_net_config).
namespace virtio_net_config {
inline constexpr uint32_t kMac = 0;  // 6 bytes
inline constexpr uint32_t kStatus = 6;
inline constexpr uint32_t kMaxVirtqueuePairs = 8;
inline constexpr uint32_t kMtu = 10;
inline constexpr uint32_t kSize = 12;
}  // namespace virtio_net_config

class VirtioNet final : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceId = 1;
  static constexpr uint32_t kQueueSize = 256;
  static constexpr uint16_t kReceiveQueue = 0;
  static constexpr uint16_t kTransmitQueue = 1;
  static constexpr uint16_t kMtu = 1500;
  static constexpr size_t kHeaderSize = TapDevice::kVirtioNetHeaderSize;
  // Frames moved per IoThread wakeup, so one busy TAP cannot starve the thread's other work.
  static constexpr int kReceiveBatch = 64;

  // What happened to frames, for tests and diagnostics.
  struct Stats {
    uint64_t tx_frames = 0;
    uint64_t tx_dropped = 0;  // malformed chains and frames the TAP refused
    uint64_t rx_frames = 0;
    uint64_t rx_dropped = 0;  // frames too big for the guest's buffer, TAP read errors
    uint64_t rx_pauses = 0;   // times the TAP was left unwatched for want of a guest buffer
  };

  // `tap` must outlive the device and must have been opened with vnet_header = true
  // (TapDevice::open(name, true)): frames carry the 12-byte virtio_net_hdr_v1 both ways.
  VirtioNet(TapDevice& tap, std::array<uint8_t, 6> mac);

  // Registers the TAP's receive path on `io` (once, before io.start()). Frames from the host are
  // moved into the guest's receive buffers on that thread. Without it the device only transmits.
  Status attach(IoThread& io);

  Stats stats() const;

  std::string_view name() const override { return "virtio-net"; }
  uint32_t device_id() const override { return kDeviceId; }
  uint64_t device_features() const override;
  uint16_t queue_count() const override { return 2; }
  uint32_t max_queue_size(uint16_t) const override { return kQueueSize; }
  uint32_t config_size() const override { return virtio_net_config::kSize; }
  void read_config(uint32_t offset, std::span<uint8_t> data) override;

  Status activate(const VirtioActivation& activation) override;
  void queue_notify(uint16_t queue) override;
  void reset() override;

 private:
  // The IoThread handler for the TAP's descriptor.
  void on_tap_readable();
  Status receive_frames();         // rx_mutex_ held, active
  void discard_frames(int limit);  // rx_mutex_ held
  Status watch_tap(bool watch);    // rx_mutex_ held
  Status transmit();               // tx_mutex_ held, active
  void transmit_chain();           // tx_mutex_ held
  // One of the two locks held: reports a ring error once and idles the device until reset.
  void fail(const Error& error);

  TapDevice& tap_;
  std::array<uint8_t, virtio_net_config::kSize> config_{};
  IoThread* io_ = nullptr;  // set once by attach(), before the IoThread runs

  // Written with both locks held, read with either.
  VirtioTransport* transport_ = nullptr;
  std::atomic<bool> failed_{false};

  std::mutex rx_mutex_;  // guards the receive state below
  Virtqueue* rx_ = nullptr;
  DescriptorChain rx_chain_;
  bool holding_rx_chain_ = false;  // rx_chain_ was popped and waits for a frame
  bool watching_tap_ = true;       // false while paused on the IoThread
  std::vector<uint8_t> rx_bounce_;

  std::mutex tx_mutex_;  // guards the transmit state below
  Virtqueue* tx_ = nullptr;
  DescriptorChain tx_chain_;
  std::vector<uint8_t> tx_bounce_;  // for chains in more pieces than one TAP write takes

  std::atomic<uint64_t> tx_frames_{0};
  std::atomic<uint64_t> tx_dropped_{0};
  std::atomic<uint64_t> rx_frames_{0};
  std::atomic<uint64_t> rx_dropped_{0};
  std::atomic<uint64_t> rx_pauses_{0};
};

}  // namespace hv
