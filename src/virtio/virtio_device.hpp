// The contract between a virtio device model (rng, and later block, net, console ...) and the
// transport that exposes it to the guest (virtio-mmio now, virtio-pci possibly later). The
// transport owns the registers, feature negotiation, the device status and the Virtqueue objects;
// the device owns what its queues mean.
//
// Life cycle: the transport calls activate() when the driver sets DRIVER_OK, queue_notify() for
// each kick, and reset() when the driver writes 0 to the status (or before the transport is
// destroyed). Between reset() and the next activate() the device must not touch the queues or
// the VirtioTransport it was given.
//
// Threading. Devices are called from any vCPU thread, and a device may later do its queue work
// on an I/O thread of its own (a KVM ioeventfd wakes it, an irqfd carries its interrupt). So:
//  - every VirtioDevice method may be called concurrently with any other and does its own
//    locking; queue_notify() arrives without any transport lock held;
//  - VirtioTransport's methods are thread-safe and may be called from inside device code while
//    the device holds its own locks.
// Lock order, outermost first:
//   1. the transport's register lock (taken around activate(), reset(), queue configuration);
//   2. the device's own locks (queue processing, configuration space);
//   3. the transport's interrupt lock (interrupt status, IRQ line level, DEVICE_NEEDS_RESET),
//      a leaf: nothing is called while it is held but the interrupt line.
// Hence activate() and reset() may take the device's lock but must never call back into the
// transport's registers; VirtioTransport calls only ever take lock 3.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/error.hpp"
#include "virtio/virtqueue.hpp"

namespace hv {

inline constexpr int kVirtioFeatureVersion1 = 32;  // VIRTIO_F_VERSION_1: no legacy interface

// Device status register bits (virtio 1.x, 2.1).
inline constexpr uint32_t kVirtioStatusAcknowledge = 0x01;
inline constexpr uint32_t kVirtioStatusDriver = 0x02;
inline constexpr uint32_t kVirtioStatusDriverOk = 0x04;
inline constexpr uint32_t kVirtioStatusFeaturesOk = 0x08;
inline constexpr uint32_t kVirtioStatusNeedsReset = 0x40;
inline constexpr uint32_t kVirtioStatusFailed = 0x80;

inline constexpr bool has_feature(uint64_t features, int bit) {
  return ((features >> bit) & 1) != 0;
}

// What a device sees of its transport. Thread-safe; each call takes only the transport's
// interrupt lock (lock 3 above).
class VirtioTransport {
 public:
  virtual ~VirtioTransport() = default;
  // A used-buffer notification: call after push_used when Virtqueue::should_notify() says so.
  virtual void signal_used_buffers() = 0;
  // The device changed its configuration space: bumps the configuration generation and, once
  // the driver is running, sends a configuration-change notification.
  virtual void signal_config_change() = 0;
  // The driver broke the protocol (a malformed ring, typically): sets DEVICE_NEEDS_RESET, logs
  // one line, notifies the driver. The device must stop processing until its next activate().
  virtual void report_device_error(const Error& error) = 0;
};

struct VirtioActivation {
  uint64_t features = 0;  // as negotiated: what both the device offered and the driver accepted
  // One per queue, indexed by queue number; queues the driver left unused are not ready(). The
  // transport owns them; the device uses them only under its own lock until reset().
  std::span<Virtqueue> queues;
  VirtioTransport* transport = nullptr;
};

// Serves every chain the driver has made available on `queue` until the ring stays empty with
// notifications re-enabled (so that no kick made meanwhile is missed), then sends a used-buffer
// notification if the driver asked for one. `serve(chain)` handles one chain and returns its used
// length. An error is the ring's (a malformed chain): the caller reports it.
template <typename Serve>
Status drain_queue(Virtqueue& queue, DescriptorChain& chain, VirtioTransport& transport,
                   Serve&& serve) {
  bool pushed = false;
  do {
    queue.disable_notification();
    while (HV_TRY(queue.pop(chain))) {
      HV_TRY(queue.push_used(chain.head(), serve(chain)));
      pushed = true;
    }
  } while (HV_TRY(queue.enable_notification()));
  if (pushed && queue.should_notify()) {
    transport.signal_used_buffers();
  }
  return {};
}

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual std::string_view name() const = 0;
  virtual uint32_t device_id() const = 0;  // virtio 1.x section 5 ("Device Types")
  // Device-specific feature bits; the transport adds VIRTIO_F_VERSION_1 and the ring features
  // (INDIRECT_DESC, EVENT_IDX) it implements for every device.
  virtual uint64_t device_features() const = 0;
  virtual uint16_t queue_count() const = 0;
  virtual uint32_t max_queue_size(uint16_t queue) const = 0;  // at most Virtqueue::kMaxSize

  // The device-specific configuration space. The transport only passes ranges inside
  // [0, config_size()).
  virtual uint32_t config_size() const { return 0; }
  virtual void read_config(uint32_t offset, std::span<uint8_t> data) {
    (void)offset;
    std::fill(data.begin(), data.end(), uint8_t{0});
  }
  virtual void write_config(uint32_t offset, std::span<const uint8_t> data) {
    (void)offset, (void)data;
  }

  // DRIVER_OK: the device may start using its queues. An error sets DEVICE_NEEDS_RESET.
  virtual Status activate(const VirtioActivation& activation) = 0;
  // The driver kicked queue `queue` (< queue_count()). Ignored unless active.
  virtual void queue_notify(uint16_t queue) = 0;
  // Stops all work (waiting for queue processing in progress on other threads) and forgets the
  // queues and transport; returns the device to its power-on state.
  virtual void reset() = 0;
};

}  // namespace hv
