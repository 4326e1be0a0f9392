#include "virtio/virtio_mmio.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "vm/engine.hpp"
#include "vm/io_thread.hpp"

namespace hv {
namespace {

using namespace virtio_mmio;

constexpr uint64_t kTransportFeatures = (1ull << kVirtioFeatureVersion1) |
                                        (1ull << kVirtioRingFeatureIndirectDesc) |
                                        (1ull << kVirtioRingFeatureEventIdx);

constexpr uint32_t kDriverWritableStatus = 0xff & ~kVirtioStatusNeedsReset;

uint32_t low_half(uint64_t v) {
  return static_cast<uint32_t>(v);
}
uint32_t high_half(uint64_t v) {
  return static_cast<uint32_t>(v >> 32);
}
void set_low_half(uint64_t& v, uint32_t half) {
  v = (v & ~0xffff'ffffull) | half;
}
void set_high_half(uint64_t& v, uint32_t half) {
  v = (v & 0xffff'ffffull) | (static_cast<uint64_t>(half) << 32);
}

}  // namespace

VirtioMmio::VirtioMmio(const GuestMemory& memory, IrqLine irq, std::unique_ptr<VirtioDevice> device)
    : irq_(irq),
      device_(std::move(device)),
      name_(fmt::format("virtio-mmio ({})", device_->name())),
      offered_features_(device_->device_features() | kTransportFeatures),
      error_log_([](std::string_view line) { fmt::print(stderr, "hv: {}\n", line); }) {
  const uint16_t count = device_->queue_count();
  queues_.reserve(count);
  queue_registers_.resize(count);
  for (uint16_t i = 0; i < count; ++i) {
    queues_.emplace_back(memory, i, device_->max_queue_size(i));
    queue_registers_[i].size = queues_[i].max_size();
  }
}

VirtioMmio::~VirtioMmio() {
  // A device working on another thread must let go of the queues before they are destroyed.
  device_->reset();
}

void VirtioMmio::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset >= kConfig) {
    const uint64_t config_offset = offset - kConfig;
    if (config_offset + data.size() <= device_->config_size()) {
      device_->read_config(static_cast<uint32_t>(config_offset), data);
    } else {
      std::fill(data.begin(), data.end(), uint8_t{0});
    }
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    std::fill(data.begin(), data.end(), uint8_t{0});
    return;
  }
  set_io_value(data, read_register(offset));
}

void VirtioMmio::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= kConfig) {
    const uint64_t config_offset = offset - kConfig;
    if (config_offset + data.size() <= device_->config_size()) {
      device_->write_config(static_cast<uint32_t>(config_offset), data);
    }
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    return;
  }
  const auto value = static_cast<uint32_t>(io_value(data));
  if (offset == kQueueNotify) {
    register_notifies_.fetch_add(1, std::memory_order_relaxed);
    notify_queue(value);
    return;
  }
  if (offset == kInterruptAck) {
    std::lock_guard lock(interrupt_mutex_);
    set_interrupt_status(interrupt_status_ & ~value);
    return;
  }
  std::lock_guard lock(register_mutex_);
  write_register(offset, value);
}

void VirtioMmio::notify_queue(uint32_t queue) {
  // No transport lock: the device may take a while, and other vCPUs keep reading
  // InterruptStatus meanwhile. A reset racing with this is sorted out by the device's lock, under
  // which the device also checks that the queue is ready (the transport's ready flags belong to
  // the register lock).
  if ((status_.load(std::memory_order_acquire) & kVirtioStatusDriverOk) != 0 &&
      !needs_reset_.load(std::memory_order_acquire) && queue < device_->queue_count()) {
    device_->queue_notify(static_cast<uint16_t>(queue));
  }
}

void VirtioMmio::doorbell_rang(uint16_t queue, int event_fd) {
  uint64_t kicks = 0;
  if (::read(event_fd, &kicks, sizeof(kicks)) != static_cast<ssize_t>(sizeof(kicks))) {
    return;  // already consumed: nothing new since the last run
  }
  doorbell_notifies_.fetch_add(kicks, std::memory_order_relaxed);
  doorbell_wakeups_.fetch_add(1, std::memory_order_relaxed);
  // However many kicks the eventfd summed up, one pass over the queue serves them all.
  notify_queue(queue);
}

Result<VirtioFastPath> VirtioMmio::use_io_thread(Engine& engine, IoThread& io,
                                                 uint64_t window_base) {
  if (!doorbell_events_.empty() || interrupt_event_.valid()) {
    return make_error(ExitStatus::HostError, "{}: already uses an I/O thread", name_);
  }
  VirtioFastPath fast_path;
  for (uint16_t queue = 0; queue < queues_.size(); ++queue) {
    Fd event(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!event.valid()) {
      return Error::from_errno(fmt::format("{}: cannot create a doorbell eventfd", name_));
    }
    // The engine first: it cannot take a doorbell back, the I/O thread cannot take a handler
    // back, and an engine without doorbells says so on the first one.
    if (!HV_TRY(engine.add_mmio_doorbell(window_base + kQueueNotify, 4, queue, event.get()))) {
      break;
    }
    // Kicks between the two calls wait in the eventfd until the handler reads it.
    // Kept from here on, even if a later step fails: the engine and the I/O thread know it.
    const int fd = doorbell_events_.emplace_back(std::move(event)).get();
    HV_TRY(io.add(fd, [this, queue, fd] { doorbell_rang(queue, fd); }));
  }
  fast_path.doorbells = !doorbell_events_.empty();

  Fd interrupt(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!interrupt.valid()) {
    return Error::from_errno(fmt::format("{}: cannot create an interrupt eventfd", name_));
  }
  if (HV_TRY(engine.add_interrupt_event(irq_.gsi(), interrupt.get()))) {
    std::lock_guard lock(interrupt_mutex_);
    if (irq_level_) {
      irq_level_ = false;  // from now on the line is never driven: leave it low
      irq_.lower();
    }
    interrupt_event_ = std::move(interrupt);
    fast_path.interrupt_event = true;
    if (interrupt_status_ != 0) {
      send_interrupt_edge();  // pending before the switch, announced on the line
    }
  }
  return fast_path;
}

VirtioMmioCounts VirtioMmio::counts() const {
  VirtioMmioCounts counts;
  counts.register_notifies = register_notifies_.load(std::memory_order_relaxed);
  counts.doorbell_notifies = doorbell_notifies_.load(std::memory_order_relaxed);
  counts.doorbell_wakeups = doorbell_wakeups_.load(std::memory_order_relaxed);
  counts.interrupt_events = interrupt_events_.load(std::memory_order_relaxed);
  return counts;
}

uint32_t VirtioMmio::read_register(uint64_t offset) {
  switch (offset) {
    case kMagicValue:
      return kMagic;
    case kVersion:
      return kRegisterLayoutVersion;
    case kDeviceId:
      return device_->device_id();
    case kVendorId:
      return kHvVendorId;
    case kInterruptStatus: {
      std::lock_guard lock(interrupt_mutex_);
      return interrupt_status_;
    }
    case kConfigGeneration:
      return config_generation_.load(std::memory_order_acquire);
    case kStatus:
      return status_.load(std::memory_order_acquire) |
             (needs_reset_.load(std::memory_order_acquire) ? kVirtioStatusNeedsReset : 0);
    default:
      break;
  }
  std::lock_guard lock(register_mutex_);
  const bool queue_exists = queue_sel_ < queues_.size();
  const VirtqueueLayout* selected = queue_exists ? &queue_registers_[queue_sel_] : nullptr;
  switch (offset) {
    case kDeviceFeatures:
      return device_features_sel_ == 0   ? low_half(offered_features_)
             : device_features_sel_ == 1 ? high_half(offered_features_)
                                         : 0;
    case kDeviceFeaturesSel:
      return device_features_sel_;
    case kDriverFeatures:
      return driver_features_sel_ == 0   ? low_half(driver_features_)
             : driver_features_sel_ == 1 ? high_half(driver_features_)
                                         : 0;
    case kDriverFeaturesSel:
      return driver_features_sel_;
    case kQueueSel:
      return queue_sel_;
    case kQueueNumMax:
      return queue_exists ? queues_[queue_sel_].max_size() : 0;
    case kQueueNum:
      return queue_exists ? selected->size : 0;
    case kQueueReady:
      return queue_exists && queues_[queue_sel_].ready() ? 1 : 0;
    case kQueueDescLow:
      return queue_exists ? low_half(selected->desc_table) : 0;
    case kQueueDescHigh:
      return queue_exists ? high_half(selected->desc_table) : 0;
    case kQueueDriverLow:
      return queue_exists ? low_half(selected->avail_ring) : 0;
    case kQueueDriverHigh:
      return queue_exists ? high_half(selected->avail_ring) : 0;
    case kQueueDeviceLow:
      return queue_exists ? low_half(selected->used_ring) : 0;
    case kQueueDeviceHigh:
      return queue_exists ? high_half(selected->used_ring) : 0;
    default:
      return 0;
  }
}

bool VirtioMmio::queue_configurable() const {
  return queue_sel_ < queues_.size() && !queues_[queue_sel_].ready() &&
         (status_.load(std::memory_order_relaxed) & kVirtioStatusDriverOk) == 0;
}

void VirtioMmio::write_register(uint64_t offset, uint32_t value) {
  switch (offset) {
    case kDeviceFeaturesSel:
      device_features_sel_ = value;
      return;
    case kDriverFeatures:
      if ((status_.load(std::memory_order_relaxed) & kVirtioStatusFeaturesOk) != 0) {
        return;
      }
      if (driver_features_sel_ == 0) {
        set_low_half(driver_features_, value);
      } else if (driver_features_sel_ == 1) {
        set_high_half(driver_features_, value);
      }
      return;
    case kDriverFeaturesSel:
      driver_features_sel_ = value;
      return;
    case kQueueSel:
      queue_sel_ = value;
      return;
    case kStatus:
      write_status(value);
      return;
    case kQueueReady:
      write_queue_ready(value);
      return;
    default:
      break;
  }
  if (!queue_configurable()) {
    return;
  }
  VirtqueueLayout& selected = queue_registers_[queue_sel_];
  switch (offset) {
    case kQueueNum:
      selected.size = value;
      return;
    case kQueueDescLow:
      set_low_half(selected.desc_table, value);
      return;
    case kQueueDescHigh:
      set_high_half(selected.desc_table, value);
      return;
    case kQueueDriverLow:
      set_low_half(selected.avail_ring, value);
      return;
    case kQueueDriverHigh:
      set_high_half(selected.avail_ring, value);
      return;
    case kQueueDeviceLow:
      set_low_half(selected.used_ring, value);
      return;
    case kQueueDeviceHigh:
      set_high_half(selected.used_ring, value);
      return;
    default:
      return;  // read-only or unassigned
  }
}

void VirtioMmio::write_queue_ready(uint32_t value) {
  if (queue_sel_ >= queues_.size() ||
      (status_.load(std::memory_order_relaxed) & kVirtioStatusDriverOk) != 0) {
    // A running queue is only stopped by a device reset (no VIRTIO_F_RING_RESET here).
    return;
  }
  Virtqueue& queue = queues_[queue_sel_];
  if ((value & 1) == 0) {
    queue.disable();
    return;
  }
  if (queue.ready()) {
    return;
  }
  if (Status enabled = queue.enable(queue_registers_[queue_sel_], driver_features_); !enabled) {
    report_device_error(enabled.error());
  }
}

void VirtioMmio::write_status(uint32_t value) {
  if (value == 0) {
    reset_device();
    return;
  }
  const uint32_t current = status_.load(std::memory_order_relaxed);
  uint32_t next = current | (value & kDriverWritableStatus);
  const uint32_t added = next & ~current;
  if ((added & kVirtioStatusFeaturesOk) != 0) {
    const bool subset = (driver_features_ & ~offered_features_) == 0;
    if (!subset || !has_feature(driver_features_, kVirtioFeatureVersion1)) {
      next &= ~kVirtioStatusFeaturesOk;  // the driver reads the status back and gives up
    }
  }
  if ((added & kVirtioStatusDriverOk) != 0 && (next & kVirtioStatusFeaturesOk) == 0) {
    next &= ~kVirtioStatusDriverOk;
  }
  status_.store(next, std::memory_order_release);
  if (((next & ~current) & kVirtioStatusDriverOk) != 0) {
    activate_device();
  }
}

void VirtioMmio::activate_device() {
  if (needs_reset_.load(std::memory_order_acquire)) {
    return;
  }
  // The rings' sizes depend on EVENT_IDX, which may have been negotiated after QueueReady.
  for (size_t i = 0; i < queues_.size(); ++i) {
    if (!queues_[i].ready()) {
      continue;
    }
    if (Status enabled = queues_[i].enable(queue_registers_[i], driver_features_); !enabled) {
      report_device_error(enabled.error());
      return;
    }
  }
  VirtioActivation activation;
  activation.features = driver_features_;
  activation.queues = queues_;
  activation.transport = this;
  if (Status activated = device_->activate(activation); !activated) {
    report_device_error(activated.error());
  }
}

void VirtioMmio::reset_device() {
  device_->reset();
  for (size_t i = 0; i < queues_.size(); ++i) {
    queues_[i].disable();
    queue_registers_[i] = VirtqueueLayout{.size = queues_[i].max_size()};
  }
  device_features_sel_ = 0;
  driver_features_sel_ = 0;
  queue_sel_ = 0;
  driver_features_ = 0;
  status_.store(0, std::memory_order_release);
  std::lock_guard lock(interrupt_mutex_);
  needs_reset_.store(false, std::memory_order_release);
  set_interrupt_status(0);
}

void VirtioMmio::signal_used_buffers() {
  raise_interrupt(kInterruptUsedBuffer);
}

void VirtioMmio::signal_config_change() {
  config_generation_.fetch_add(1, std::memory_order_acq_rel);
  if ((status_.load(std::memory_order_acquire) & kVirtioStatusDriverOk) != 0) {
    raise_interrupt(kInterruptConfigChange);
  }
}

void VirtioMmio::report_device_error(const Error& error) {
  std::lock_guard lock(interrupt_mutex_);
  if (needs_reset_.load(std::memory_order_relaxed)) {
    return;  // one line per failure; the device is already stopped
  }
  needs_reset_.store(true, std::memory_order_release);
  if (error_log_) {
    error_log_(fmt::format("{}: {}; the device needs a reset", name_, error.to_string()));
  }
  // The spec asks for a configuration-change notification once the driver is running.
  if ((status_.load(std::memory_order_acquire) & kVirtioStatusDriverOk) != 0) {
    set_interrupt_status(interrupt_status_ | kInterruptConfigChange);
  }
}

void VirtioMmio::raise_interrupt(uint32_t cause) {
  std::lock_guard lock(interrupt_mutex_);
  set_interrupt_status(interrupt_status_ | cause);
}

void VirtioMmio::set_interrupt_status(uint32_t status) {
  const uint32_t added = status & ~interrupt_status_;
  interrupt_status_ = status;
  if (interrupt_event_.valid()) {
    // An edge per newly pending cause; why that suffices is at the top of virtio_mmio.hpp.
    if (added != 0) {
      send_interrupt_edge();
    }
    return;
  }
  const bool level = interrupt_status_ != 0;
  if (level != irq_level_) {
    irq_level_ = level;
    irq_.set(level);
  }
}

void VirtioMmio::send_interrupt_edge() {
  const uint64_t one = 1;
  // Fails only if the counter would overflow, which the engine's constant draining rules out.
  if (::write(interrupt_event_.get(), &one, sizeof(one)) == static_cast<ssize_t>(sizeof(one))) {
    interrupt_events_.fetch_add(1, std::memory_order_relaxed);
  }
}

std::string kernel_cmdline_fragment(uint64_t base, uint32_t irq) {
  return fmt::format("virtio_mmio.device={}@{:#x}:{}", VirtioMmio::kRegionSize, base, irq);
}

}  // namespace hv
