#include "virtio/virtio_net.hpp"

#include <algorithm>
#include <cstring>

namespace hv {
namespace {

// TapDevice::write_frame gathers at most this many pieces in one writev; a chain in more pieces
// is copied into one buffer first (Linux sends a frame in at most MAX_SKB_FRAGS + 2 pieces).
constexpr size_t kMaxTapPieces = 64;
// More than a TAP queues (its txqueuelen, 1000 by default, plus the qdisc's): bounds the
// discarding of stale frames under a flood.
constexpr int kMaxQueuedFrames = 4096;
// Offset of num_buffers in struct virtio_net_hdr_v1.
constexpr size_t kNumBuffersOffset = 10;

template <typename T>
void put_le(std::span<uint8_t> bytes, uint32_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));  // x86 host: little endian
}

}  // namespace

VirtioNet::VirtioNet(TapDevice& tap, std::array<uint8_t, 6> mac)
    : tap_(tap), rx_bounce_(TapDevice::kMaxFrameSize), tx_bounce_(TapDevice::kMaxFrameSize) {
  namespace c = virtio_net_config;
  std::copy(mac.begin(), mac.end(), config_.begin() + c::kMac);
  put_le<uint16_t>(config_, c::kStatus, kVirtioNetSLinkUp);
  put_le<uint16_t>(config_, c::kMaxVirtqueuePairs, 1);
  put_le<uint16_t>(config_, c::kMtu, kMtu);
}

uint64_t VirtioNet::device_features() const {
  return (1ull << kVirtioNetFMac) | (1ull << kVirtioNetFStatus) | (1ull << kVirtioNetFMtu);
}

void VirtioNet::read_config(uint32_t offset, std::span<uint8_t> data) {
  // The configuration never changes: no lock needed. The transport keeps the range inside.
  const size_t start = std::min<size_t>(offset, config_.size());
  const size_t n = std::min<size_t>(data.size(), config_.size() - start);
  std::copy_n(config_.begin() + start, n, data.begin());
  std::fill(data.begin() + static_cast<ptrdiff_t>(n), data.end(), uint8_t{0});
}

Status VirtioNet::attach(IoThread& io) {
  {
    std::lock_guard lock(rx_mutex_);
    if (io_ != nullptr) {
      return make_error(ExitStatus::HostError, "virtio-net: TAP {} is already attached",
                        tap_.name());
    }
    io_ = &io;
    watching_tap_ = true;
  }
  Status added = io.add(tap_.fd(), [this] { on_tap_readable(); });
  if (!added) {
    std::lock_guard lock(rx_mutex_);
    io_ = nullptr;
  }
  return added;
}

VirtioNet::Stats VirtioNet::stats() const {
  return Stats{.tx_frames = tx_frames_.load(std::memory_order_relaxed),
               .tx_dropped = tx_dropped_.load(std::memory_order_relaxed),
               .rx_frames = rx_frames_.load(std::memory_order_relaxed),
               .rx_dropped = rx_dropped_.load(std::memory_order_relaxed),
               .rx_pauses = rx_pauses_.load(std::memory_order_relaxed)};
}

Status VirtioNet::activate(const VirtioActivation& activation) {
  if (activation.queues.size() != 2 || activation.transport == nullptr) {
    return make_error(ExitStatus::HostError, "virtio-net: activated with {} queues",
                      activation.queues.size());
  }
  if (!tap_.vnet_header()) {
    return make_error(ExitStatus::HostError,
                      "virtio-net: TAP {} was opened without the virtio-net header", tap_.name());
  }
  std::scoped_lock lock(rx_mutex_, tx_mutex_);
  rx_ = &activation.queues[kReceiveQueue];
  tx_ = &activation.queues[kTransmitQueue];
  transport_ = activation.transport;
  holding_rx_chain_ = false;
  failed_.store(false);
  // Frames that came while no driver was running are not for this one. The TAP is still paused
  // if the last driver ran out of buffers (reset() leaves the IoThread alone).
  discard_frames(kMaxQueuedFrames);
  return watch_tap(true);
}

void VirtioNet::reset() {
  std::scoped_lock lock(rx_mutex_, tx_mutex_);
  rx_ = nullptr;
  tx_ = nullptr;
  transport_ = nullptr;
  holding_rx_chain_ = false;  // the guest's buffers are the guest's again
  failed_.store(false);
  // The IoThread is left as it is: it may already be gone when the transport resets the device
  // on its way out. If watched, its handler discards frames; if paused, activate() discards.
}

void VirtioNet::fail(const Error& error) {
  if (!failed_.exchange(true)) {
    transport_->report_device_error(error);
  }
}

void VirtioNet::queue_notify(uint16_t queue) {
  if (queue == kReceiveQueue) {
    std::lock_guard lock(rx_mutex_);
    if (rx_ == nullptr || failed_.load()) {
      return;
    }
    // While the TAP is watched, posted buffers need no kick; once the receive path runs dry it
    // re-arms kicks and pauses, and this kick means buffers arrived: watch the TAP again.
    rx_->disable_notification();
    if (Status watched = watch_tap(true); !watched) {
      fail(watched.error());
    }
  } else if (queue == kTransmitQueue) {
    std::lock_guard lock(tx_mutex_);
    if (tx_ == nullptr || failed_.load()) {
      return;
    }
    if (Status sent = transmit(); !sent) {
      fail(sent.error());
    }
  }
}

Status VirtioNet::watch_tap(bool watch) {
  if (io_ == nullptr || watching_tap_ == watch) {
    return {};
  }
  HV_TRY(watch ? io_->resume(tap_.fd()) : io_->pause(tap_.fd()));
  watching_tap_ = watch;
  if (!watch) {
    rx_pauses_.fetch_add(1, std::memory_order_relaxed);
  }
  return {};
}

void VirtioNet::on_tap_readable() {
  std::lock_guard lock(rx_mutex_);
  if (rx_ == nullptr || failed_.load() || !rx_->ready()) {
    discard_frames(kReceiveBatch);
    return;
  }
  if (Status received = receive_frames(); !received) {
    fail(received.error());
  }
}

void VirtioNet::discard_frames(int limit) {
  for (int i = 0; i < limit; ++i) {
    Result<size_t> read = tap_.read_frame(rx_bounce_);
    if (!read.ok() || *read == 0) {
      return;
    }
  }
}

Status VirtioNet::receive_frames() {
  bool pushed = false;
  for (int i = 0; i < kReceiveBatch; ++i) {
    if (!holding_rx_chain_) {
      if (!HV_TRY(rx_->pop(rx_chain_))) {
        // Out of buffers: re-arm the guest's kicks, and look once more for buffers posted while
        // they were off (no kick would come for those).
        if (HV_TRY(rx_->enable_notification())) {
          rx_->disable_notification();
          continue;
        }
        HV_TRY(watch_tap(false));
        break;
      }
      holding_rx_chain_ = true;
    }
    Result<size_t> read = tap_.read_frame(rx_bounce_);
    if (!read.ok()) {
      // A host-side failure, not the guest's: counted; level-triggered epoll tries again.
      rx_dropped_.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    const size_t length = *read;
    if (length == 0) {
      break;  // the TAP is drained; the chain waits for the next frame
    }
    if (length < kHeaderSize || length > rx_chain_.writable_length()) {
      rx_dropped_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    // Nothing is negotiated that the TAP's flags or GSO fields could mean to the guest.
    std::fill_n(rx_bounce_.begin(), kHeaderSize, uint8_t{0});
    put_le<uint16_t>(rx_bounce_, kNumBuffersOffset, 1);
    const size_t written =
        rx_chain_.write_to_chain(0, std::span<const uint8_t>(rx_bounce_.data(), length));
    holding_rx_chain_ = false;
    HV_TRY(rx_->push_used(rx_chain_.head(), static_cast<uint32_t>(written)));
    rx_frames_.fetch_add(1, std::memory_order_relaxed);
    pushed = true;
  }
  if (pushed && rx_->should_notify()) {
    transport_->signal_used_buffers();
  }
  return {};
}

Status VirtioNet::transmit() {
  if (!tx_->ready()) {
    return {};
  }
  return drain_queue(*tx_, tx_chain_, *transport_, [this](const DescriptorChain&) {
    transmit_chain();  // works on tx_chain_
    return uint32_t{0};
  });
}

void VirtioNet::transmit_chain() {
  const uint64_t length = tx_chain_.readable_length();
  if (length < kHeaderSize || length > TapDevice::kMaxFrameSize) {
    tx_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::span<const std::span<const uint8_t>> pieces = tx_chain_.readable();
  std::span<const uint8_t> gathered[1];
  if (pieces.size() > kMaxTapPieces) {
    const std::span<uint8_t> frame(tx_bounce_.data(), length);
    if (tx_chain_.read_from_chain(0, frame) != length) {
      tx_dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    gathered[0] = frame;
    pieces = gathered;
  }
  // The kernel checks the header as it would any program's; a header it refuses drops the frame.
  if (tap_.write_frame(pieces).ok()) {
    tx_frames_.fetch_add(1, std::memory_order_relaxed);
  } else {
    tx_dropped_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace hv
