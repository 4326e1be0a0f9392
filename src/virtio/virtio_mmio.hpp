// The virtio-mmio transport, register layout version 2 (virtio 1.x section 4.2.2; "modern" only,
// no legacy interface): a 0x200-byte MMIO window in front of one VirtioDevice.
//
// Register accesses must be 32 bits wide and aligned; anything else reads 0 and is ignored on
// write. The device configuration space at 0x100 takes any width. Queue registers can only be
// written while the selected queue is not ready and the driver has not set DRIVER_OK; the
// driver's features only until FEATURES_OK. Status writes follow the spec's state machine:
// writing 0 resets the device and its queues; FEATURES_OK sticks only when the driver accepted a
// subset of the offered features that includes VIRTIO_F_VERSION_1; DRIVER_OK (which needs
// FEATURES_OK) activates the device; bits, once set, are cleared only by a reset.
//
// QueueReady=1 validates the queue's size and ring addresses; a bad queue, an activation
// failure or a malformed ring found later puts the device in DEVICE_NEEDS_RESET: one log line,
// a configuration-change interrupt if the driver is running, no more processing until reset.
//
// The interrupt is a level-triggered line, high while InterruptStatus is nonzero. (A device that
// later moves to an I/O thread with KVM's irqfd would pulse an edge instead; InterruptStatus
// still latches the cause for the driver's handler to read and acknowledge.)
//
// Threading and lock order: see virtio/virtio_device.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "virtio/virtio_device.hpp"
#include "virtio/virtqueue.hpp"
#include "vm/guest_memory.hpp"
#include "vm/io_device.hpp"
#include "vm/machine.hpp"

namespace hv {

namespace virtio_mmio {
inline constexpr uint64_t kMagicValue = 0x000;
inline constexpr uint64_t kVersion = 0x004;
inline constexpr uint64_t kDeviceId = 0x008;
inline constexpr uint64_t kVendorId = 0x00c;
inline constexpr uint64_t kDeviceFeatures = 0x010;
inline constexpr uint64_t kDeviceFeaturesSel = 0x014;
inline constexpr uint64_t kDriverFeatures = 0x020;
inline constexpr uint64_t kDriverFeaturesSel = 0x024;
inline constexpr uint64_t kQueueSel = 0x030;
inline constexpr uint64_t kQueueNumMax = 0x034;
inline constexpr uint64_t kQueueNum = 0x038;
inline constexpr uint64_t kQueueReady = 0x044;
inline constexpr uint64_t kQueueNotify = 0x050;
inline constexpr uint64_t kInterruptStatus = 0x060;
inline constexpr uint64_t kInterruptAck = 0x064;
inline constexpr uint64_t kStatus = 0x070;
inline constexpr uint64_t kQueueDescLow = 0x080;
inline constexpr uint64_t kQueueDescHigh = 0x084;
inline constexpr uint64_t kQueueDriverLow = 0x090;
inline constexpr uint64_t kQueueDriverHigh = 0x094;
inline constexpr uint64_t kQueueDeviceLow = 0x0a0;
inline constexpr uint64_t kQueueDeviceHigh = 0x0a4;
inline constexpr uint64_t kConfigGeneration = 0x0fc;
inline constexpr uint64_t kConfig = 0x100;

inline constexpr uint32_t kMagic = 0x74726976;  // "virt"
inline constexpr uint32_t kRegisterLayoutVersion = 2;
inline constexpr uint32_t kHvVendorId = 0x00005648;  // "HV", little-endian

inline constexpr uint32_t kInterruptUsedBuffer = 0x1;
inline constexpr uint32_t kInterruptConfigChange = 0x2;
}  // namespace virtio_mmio

class VirtioMmio final : public IoDevice, private VirtioTransport {
 public:
  static constexpr uint64_t kRegionSize = 0x200;

  // Where DEVICE_NEEDS_RESET is reported (one line per error, without a newline). Called with the
  // interrupt lock held: it must not call back into the transport.
  using ErrorLog = std::function<void(std::string_view)>;

  VirtioMmio(const GuestMemory& memory, IrqLine irq, std::unique_ptr<VirtioDevice> device);
  ~VirtioMmio() override;
  VirtioMmio(const VirtioMmio&) = delete;
  VirtioMmio& operator=(const VirtioMmio&) = delete;

  std::string_view name() const override { return name_; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  VirtioDevice& device() { return *device_; }
  // The device's features plus VERSION_1, INDIRECT_DESC and EVENT_IDX.
  uint64_t offered_features() const { return offered_features_; }
  // Replaces the default (stderr). Set before the device is reachable from the guest.
  void set_error_log(ErrorLog log) { error_log_ = std::move(log); }

 private:
  // VirtioTransport, for the device.
  void signal_used_buffers() override;
  void signal_config_change() override;
  void report_device_error(const Error& error) override;

  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void write_status(uint32_t value);
  void write_queue_ready(uint32_t value);
  void activate_device();
  void reset_device();
  bool queue_configurable() const;
  void raise_interrupt(uint32_t cause);
  void update_irq_line();  // interrupt_mutex_ held

  const IrqLine irq_;
  const std::unique_ptr<VirtioDevice> device_;
  const std::string name_;
  const uint64_t offered_features_;
  ErrorLog error_log_;

  // Lock 1: the registers and the queues' configuration.
  std::mutex register_mutex_;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint32_t queue_sel_ = 0;
  uint64_t driver_features_ = 0;
  std::vector<VirtqueueLayout> queue_registers_;  // what the driver wrote, per queue
  std::vector<Virtqueue> queues_;                 // never resized: the device holds a span
  // Written under register_mutex_; read without it on the notify path.
  std::atomic<uint32_t> status_{0};

  // Lock 3 (a leaf): the interrupt state.
  std::mutex interrupt_mutex_;
  uint32_t interrupt_status_ = 0;
  bool irq_level_ = false;
  std::atomic<bool> needs_reset_{false};  // written under interrupt_mutex_
  std::atomic<uint32_t> config_generation_{0};
};

// The Linux command-line parameter that makes its virtio-mmio driver probe a window at `base`
// with interrupt `irq` (drivers/virtio/virtio_mmio.c: device=<size>@<baseaddr>:<irq>).
std::string kernel_cmdline_fragment(uint64_t base, uint32_t irq);

}  // namespace hv
