#include "virtio/virtio_rng.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>

namespace hv {
namespace {

// Fills as much of `buffer` as the kernel gives; short only if getrandom fails outright.
size_t fill_random(std::span<uint8_t> buffer) {
  size_t filled = 0;
  while (filled < buffer.size()) {
    const ssize_t n = ::getrandom(buffer.data() + filled, buffer.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    filled += static_cast<size_t>(n);
  }
  return filled;
}

}  // namespace

Status VirtioRng::activate(const VirtioActivation& activation) {
  if (activation.queues.size() != 1 || activation.transport == nullptr) {
    return make_error(ExitStatus::HostError, "virtio-rng: activated with {} queues",
                      activation.queues.size());
  }
  std::lock_guard lock(mutex_);
  queue_ = &activation.queues[0];
  transport_ = activation.transport;
  failed_ = false;
  return {};
}

void VirtioRng::reset() {
  std::lock_guard lock(mutex_);
  queue_ = nullptr;
  transport_ = nullptr;
  failed_ = false;
}

void VirtioRng::queue_notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (queue != 0 || queue_ == nullptr || failed_ || !queue_->ready()) {
    return;
  }
  if (Status served = serve_requests(); !served) {
    failed_ = true;
    transport_->report_device_error(served.error());
  }
}

Status VirtioRng::serve_requests() {
  return drain_queue(*queue_, chain_, *transport_, fill_with_random);
}

uint32_t VirtioRng::fill_with_random(const DescriptorChain& chain) {
  uint32_t written = 0;
  for (std::span<uint8_t> buffer : chain.writable()) {
    const size_t wanted = std::min<size_t>(buffer.size(), kMaxBytesPerRequest - written);
    if (wanted == 0) {
      break;
    }
    const size_t filled = fill_random(buffer.first(wanted));
    written += static_cast<uint32_t>(filled);
    if (filled < wanted) {
      break;
    }
  }
  return written;
}

}  // namespace hv
