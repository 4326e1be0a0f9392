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
// The interrupt is a level-triggered line, high while InterruptStatus is nonzero.
//
// The I/O-thread fast path (use_io_thread(), on engines that have KVM's ioeventfd and irqfd):
//  - each queue gets an eventfd that the engine signals when the guest writes that queue's index
//    to QueueNotify (a datamatch doorbell), so the kick never leaves the kernel on the vCPU
//    thread; the I/O thread reads the eventfd and does exactly what the register write does
//    (same checks, no transport lock either way: see write()). Other QueueNotify writes (a bad
//    index, a narrow access) still exit to write() as before.
//  - interrupts leave through an eventfd the engine turns into an edge on the GSI (irqfd), sent
//    whenever a cause is added to InterruptStatus that was not already pending; the line is
//    never driven. That loses nothing with Linux's vm_interrupt(), which reads InterruptStatus,
//    writes the same bits to InterruptAck and only then scans the rings: a used buffer pushed
//    while its bit is still pending is seen by the scan that follows the acknowledgement, and
//    one pushed after the acknowledgement sets the bit anew, which sends a new edge. A cause
//    added between the handler's read and its acknowledgement (config change while only "used
//    buffer" was read) is not acknowledged and sends its own edge, which the interrupt
//    controller latches while the handler runs. An edge for a cause already pending would only
//    make the guest's handler find InterruptStatus 0 (a spurious interrupt), so none is sent.
//    This matches the ACPI tables, which declare the virtio IRQs edge-triggered.
// On an engine without them (the emulator) nothing changes: notifications run on the vCPU
// thread and the interrupt is the level-triggered line.
//
// Threading and lock order: see virtio/virtio_device.hpp. The I/O thread that runs the doorbell
// handlers must be stopped before the transport is destroyed.
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

#include "common/error.hpp"
#include "common/fd.hpp"
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

class Engine;
class IoThread;

// What use_io_thread() could move off the vCPU thread.
struct VirtioFastPath {
  bool doorbells = false;        // QueueNotify writes of a queue index signal the I/O thread
  bool interrupt_event = false;  // interrupts are edges sent through an eventfd
};

// How notifications reached the device and interrupts left it, for tests and benchmarks (vCPU
// exits per MiB: every register notify is one exit, a doorbell notify is none).
struct VirtioMmioCounts {
  uint64_t register_notifies = 0;  // QueueNotify writes that reached write() on a vCPU thread
  uint64_t doorbell_notifies = 0;  // QueueNotify writes that only signalled a doorbell eventfd
  uint64_t doorbell_wakeups = 0;   // I/O-thread handler runs (several writes may coalesce)
  uint64_t interrupt_events = 0;   // edges sent through the interrupt eventfd
};

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

  // Moves queue notifications onto `io` and interrupts onto an eventfd where `engine` can (see
  // the top of this file); `window_base` is where this transport's window is on the MMIO bus,
  // the interrupt goes to the GSI of the IrqLine the transport was made with. Each part the
  // engine lacks stays as it was. Call once, before the guest runs and before `io` starts; `io`
  // must be stopped before this transport is destroyed (its handlers call into it). The
  // transport owns the eventfds: destroy the engine before it (before the Machine).
  Result<VirtioFastPath> use_io_thread(Engine& engine, IoThread& io, uint64_t window_base);
  VirtioMmioCounts counts() const;

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
  // What a guest write of `queue` to QueueNotify does, from either path.
  void notify_queue(uint32_t queue);
  void doorbell_rang(uint16_t queue, int event_fd);  // on the I/O thread
  void raise_interrupt(uint32_t cause);
  void set_interrupt_status(uint32_t status);  // interrupt_mutex_ held
  void send_interrupt_edge();                  // interrupt_mutex_ held, interrupt_event_ valid

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

  // One per queue once use_io_thread() found doorbells; set before the guest runs, then fixed.
  std::vector<Fd> doorbell_events_;
  std::atomic<uint64_t> register_notifies_{0};
  std::atomic<uint64_t> doorbell_notifies_{0};
  std::atomic<uint64_t> doorbell_wakeups_{0};

  // Lock 3 (a leaf): the interrupt state.
  std::mutex interrupt_mutex_;
  uint32_t interrupt_status_ = 0;
  bool irq_level_ = false;
  Fd interrupt_event_;                         // valid: edges go through it instead of irq_
  std::atomic<uint64_t> interrupt_events_{0};  // written under interrupt_mutex_
  std::atomic<bool> needs_reset_{false};       // written under interrupt_mutex_
  std::atomic<uint32_t> config_generation_{0};
};

// The Linux command-line parameter that makes its virtio-mmio driver probe a window at `base`
// with interrupt `irq` (drivers/virtio/virtio_mmio.c: device=<size>@<baseaddr>:<irq>).
std::string kernel_cmdline_fragment(uint64_t base, uint32_t irq);

}  // namespace hv
