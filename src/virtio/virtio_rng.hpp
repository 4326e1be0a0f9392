// virtio-rng (virtio 1.x section 5.4, "Entropy Device"): one request queue whose device-writable
// buffers the device fills with random bytes from the host kernel (getrandom). At most
// kMaxBytesPerRequest bytes go into one request, however large its buffers; the used length
// tells the driver how many it got. Readable buffers in a request are ignored.
//
// Requests are served on the thread that kicks the queue, under the device's mutex (which also
// orders activate/reset against that work, as virtio/virtio_device.hpp requires).
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>

#include "virtio/virtio_device.hpp"
#include "virtio/virtqueue.hpp"

namespace hv {

class VirtioRng final : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceId = 4;
  static constexpr uint32_t kQueueSize = 256;
  static constexpr uint32_t kMaxBytesPerRequest = 64 * 1024;

  std::string_view name() const override { return "virtio-rng"; }
  uint32_t device_id() const override { return kDeviceId; }
  uint64_t device_features() const override { return 0; }
  uint16_t queue_count() const override { return 1; }
  uint32_t max_queue_size(uint16_t) const override { return kQueueSize; }

  Status activate(const VirtioActivation& activation) override;
  void queue_notify(uint16_t queue) override;
  void reset() override;

 private:
  Status serve_requests();  // mutex_ held
  static uint32_t fill_with_random(const DescriptorChain& chain);

  std::mutex mutex_;            // guards everything below
  Virtqueue* queue_ = nullptr;  // non-null while active
  VirtioTransport* transport_ = nullptr;
  bool failed_ = false;  // a malformed ring was reported; idle until reset
  DescriptorChain chain_;
};

}  // namespace hv
