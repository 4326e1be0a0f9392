#include "virtio/virtio_console.hpp"

#include <algorithm>
#include <cstring>

namespace hv {
namespace {
constexpr size_t kMaxWrite = 64 * 1024;  // bounds tx_bytes_
}  // namespace

void VirtioConsole::read_config(uint32_t offset, std::span<uint8_t> data) {
  uint8_t config[12] = {};
  const uint16_t cols = kColumns;
  const uint16_t rows = kRows;
  std::memcpy(config, &cols, 2);
  std::memcpy(config + 2, &rows, 2);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
  }
}

Status VirtioConsole::activate(const VirtioActivation& activation) {
  if (activation.queues.size() != 2 || activation.transport == nullptr) {
    return make_error(ExitStatus::HostError, "virtio-console: activated with {} queues",
                      activation.queues.size());
  }
  std::lock_guard lock(mutex_);
  rx_ = &activation.queues[kReceiveQueue];
  tx_ = &activation.queues[kTransmitQueue];
  transport_ = activation.transport;
  failed_ = false;
  pending_head_ = 0;
  pending_count_ = 0;
  return {};
}

void VirtioConsole::reset() {
  std::lock_guard lock(mutex_);
  rx_ = nullptr;
  tx_ = nullptr;
  transport_ = nullptr;
  failed_ = false;
  pending_head_ = 0;
  pending_count_ = 0;
}

void VirtioConsole::fail(const Error& error) {
  failed_ = true;
  transport_->report_device_error(error);
}

void VirtioConsole::queue_notify(uint16_t queue) {
  std::lock_guard lock(mutex_);
  if (transport_ == nullptr || failed_) {
    return;
  }
  Status done = queue == kReceiveQueue    ? flush_pending()
                : queue == kTransmitQueue ? transmit()
                                          : Status{};
  if (!done) {
    fail(done.error());
  }
}

size_t VirtioConsole::receive(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  if (transport_ == nullptr || failed_) {
    return 0;
  }
  const size_t taken = std::min(bytes.size(), kPendingCapacity - pending_count_);
  for (size_t i = 0; i < taken; ++i) {
    pending_[(pending_head_ + pending_count_ + i) % kPendingCapacity] = bytes[i];
  }
  pending_count_ += taken;
  if (Status flushed = flush_pending(); !flushed) {
    fail(flushed.error());
  }
  return taken;
}

Status VirtioConsole::flush_pending() {
  if (rx_ == nullptr || !rx_->ready() || pending_count_ == 0) {
    return {};
  }
  bool pushed = false;
  while (pending_count_ > 0 && HV_TRY(rx_->pop(chain_))) {
    uint64_t written = 0;
    while (pending_count_ > 0 && written < chain_.writable_length()) {
      // The contiguous run of pending bytes from the head.
      const size_t run = std::min(pending_count_, kPendingCapacity - pending_head_);
      const size_t n = chain_.write_to_chain(
          written, std::span<const uint8_t>(pending_.data() + pending_head_, run));
      if (n == 0) {
        break;
      }
      written += n;
      pending_head_ = (pending_head_ + n) % kPendingCapacity;
      pending_count_ -= n;
    }
    HV_TRY(rx_->push_used(chain_.head(), static_cast<uint32_t>(written)));
    pushed = true;
  }
  if (pushed && rx_->should_notify()) {
    transport_->signal_used_buffers();
  }
  return {};
}

Status VirtioConsole::transmit() {
  if (tx_ == nullptr || !tx_->ready()) {
    return {};
  }
  return drain_queue(*tx_, chain_, *transport_, [this](const DescriptorChain& chain) {
    tx_bytes_.clear();
    for (std::span<const uint8_t> buffer : chain.readable()) {
      // One write per chain, except that a huge chain goes out in kMaxWrite pieces.
      if (tx_bytes_.size() + buffer.size() > kMaxWrite && !tx_bytes_.empty()) {
        if (sink_ != nullptr) {
          sink_->write(tx_bytes_);
        }
        tx_bytes_.clear();
      }
      while (buffer.size() > kMaxWrite) {
        if (sink_ != nullptr) {
          sink_->write(buffer.first(kMaxWrite));
        }
        buffer = buffer.subspan(kMaxWrite);
      }
      tx_bytes_.insert(tx_bytes_.end(), buffer.begin(), buffer.end());
    }
    if (sink_ != nullptr && !tx_bytes_.empty()) {
      sink_->write(tx_bytes_);
    }
    return uint32_t{0};
  });
}

}  // namespace hv
