// libFuzzer target: a hostile driver against the virtqueue code and the virtio-mmio transport.
// The input becomes the guest's 64 KiB of RAM (rings, descriptors, indirect tables, all of it)
// and a script of register writes; a device model (virtio-rng, virtio-blk on a scratch image,
// virtio-console's transmit or receive queue) or an "echo" device (copies every chain's
// readable bytes into its writable ones) then serves whatever the rings say. Any outcome but a
// crash or a sanitizer report is fine: malformed rings must end in DEVICE_NEEDS_RESET.
//
// Input layout (missing bytes read as zero):
//   [0]      queue size: 1 << (b % 9), or b itself when bit 7 is set (often not a power of two)
//   [1]      bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 echo device instead of rng,
//            bit 3 fold descriptor addresses into RAM (lets the fuzzer reach the data paths),
//            bit 4 skip VERSION_1 (negotiation must fail cleanly),
//            bits 5-6 the device: 0 rng (or echo, bit 2), 1 blk, 2 console transmitq,
//            3 console receiveq (console input offered before every kick),
//            bit 7 virtio-net's transmitq instead (frames go to a TAP interface in the fuzzer's
//            own network namespace; only where the fuzzer may create one, i.e. as root)
//   [2..7]   descriptor table, available ring, used ring offsets (16 bits each, unaligned allowed)
//   [8]      number of kicks (0..15); between kicks the available index advances by [9]
//   [10]     number of extra register writes, each 5 bytes (register/4, value) from [11] on
//   rest     guest RAM, from address 0
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "devices/block_image.hpp"
#include "devices/char_sink.hpp"
#include "devices/tap_device.hpp"
#include "virtio/virtio_blk.hpp"
#include "virtio/virtio_console.hpp"
#include "virtio/virtio_mmio.hpp"
#include "virtio/virtio_net.hpp"
#include "virtio/virtio_rng.hpp"
#include "virtio/virtqueue.hpp"
#include "vm/guest_memory.hpp"

namespace {

constexpr uint64_t kRamSize = 64 * 1024;

class DiscardSink final : public hv::CharSink {
 public:
  void write(std::span<const uint8_t>) override {}
};

// A TAP interface for virtio-net, in a network namespace of the fuzzer's own so that nothing
// reaches the host's network; null where the fuzzer may not create one.
hv::TapDevice* scratch_tap() {
  static std::unique_ptr<hv::TapDevice> tap = []() -> std::unique_ptr<hv::TapDevice> {
    if (::unshare(CLONE_NEWNET) != 0) {
      return nullptr;
    }
    auto opened = hv::TapDevice::open("hvfuzz0", /*vnet_header=*/true);
    return opened.ok() ? std::move(*opened) : nullptr;
  }();
  return tap.get();
}

// One scratch image for every run (opening and locking a file per input would dominate); what
// earlier inputs wrote to it does not matter. Unlinked at once: nothing is left behind.
hv::BlockImage& scratch_image() {
  static std::unique_ptr<hv::BlockImage> image = [] {
    char path[] = "/tmp/hv-virtqueue-fuzz-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0 || ::ftruncate(fd, 64 * 512) != 0) {
      std::abort();
    }
    ::close(fd);
    auto opened = hv::BlockImage::open(path);
    ::unlink(path);
    if (!opened.ok()) {
      std::abort();
    }
    return std::move(*opened);
  }();
  return *image;
}

class EchoDevice final : public hv::VirtioDevice {
 public:
  std::string_view name() const override { return "echo"; }
  uint32_t device_id() const override { return 0x7f; }
  uint64_t device_features() const override { return 0; }
  uint16_t queue_count() const override { return 1; }
  uint32_t max_queue_size(uint16_t) const override { return 256; }
  uint32_t config_size() const override { return 4; }

  hv::Status activate(const hv::VirtioActivation& activation) override {
    std::lock_guard lock(mutex_);
    queue_ = &activation.queues[0];
    transport_ = activation.transport;
    return {};
  }
  void reset() override {
    std::lock_guard lock(mutex_);
    queue_ = nullptr;
    transport_ = nullptr;
  }
  void queue_notify(uint16_t) override {
    std::lock_guard lock(mutex_);
    if (queue_ == nullptr || failed_) {
      return;
    }
    if (hv::Status served = serve(); !served) {
      failed_ = true;
      transport_->report_device_error(served.error());
    }
  }

 private:
  hv::Status serve() {
    bool pushed = false;
    do {
      queue_->disable_notification();
      while (HV_TRY(queue_->pop(chain_))) {
        const size_t length = std::min<uint64_t>(chain_.readable_length(), scratch_.size());
        const size_t read = chain_.read_from_chain(0, std::span(scratch_.data(), length));
        const size_t written = chain_.write_to_chain(0, std::span(scratch_.data(), read));
        HV_TRY(queue_->push_used(chain_.head(), static_cast<uint32_t>(written)));
        pushed = true;
      }
    } while (HV_TRY(queue_->enable_notification()));
    if (pushed && queue_->should_notify()) {
      transport_->signal_used_buffers();
    }
    return {};
  }

  std::mutex mutex_;
  hv::Virtqueue* queue_ = nullptr;
  hv::VirtioTransport* transport_ = nullptr;
  bool failed_ = false;
  hv::DescriptorChain chain_;
  std::vector<uint8_t> scratch_ = std::vector<uint8_t>(kRamSize);
};

// Guest RAM is an mmap the sanitizers do not watch; inaccessible pages on both sides (where the
// address space is free) turn any access past it into a crash the fuzzer reports.
void guard_around(uint8_t* ram, uint64_t size) {
  constexpr uintptr_t kPage = 4096;
  const auto start = reinterpret_cast<uintptr_t>(ram);
  for (uintptr_t guard : {start - kPage, start + size}) {
    (void)::mmap(reinterpret_cast<void*>(guard), kPage, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  }
}

struct Input {
  const uint8_t* data;
  size_t size;
  uint8_t byte(size_t i) const { return i < size ? data[i] : 0; }
  uint16_t u16(size_t i) const { return static_cast<uint16_t>(byte(i) | byte(i + 1) << 8); }
  uint32_t u32(size_t i) const { return u16(i) | static_cast<uint32_t>(u16(i + 2)) << 16; }
};

void write32(hv::VirtioMmio& mmio, uint64_t offset, uint32_t value) {
  uint8_t bytes[4];
  hv::set_io_value(bytes, value);
  mmio.write(offset, bytes);
}

uint32_t read32(hv::VirtioMmio& mmio, uint64_t offset) {
  uint8_t bytes[4] = {};
  mmio.read(offset, bytes);
  return static_cast<uint32_t>(hv::io_value(bytes));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hv::virtio_mmio;
  static hv::GuestMemory memory = [] {
    hv::GuestMemory created = std::move(*hv::GuestMemory::create(kRamSize));
    guard_around(created.host_pointer(0, kRamSize), kRamSize);
    return created;
  }();
  const Input in{data, size};

  const uint8_t size_byte = in.byte(0);
  const uint32_t queue_size = (size_byte & 0x80) != 0 ? size_byte & 0x7f : 1u << (size_byte % 9);
  const uint8_t flags = in.byte(1);
  const uint64_t desc_table = in.u16(2);
  const uint64_t avail_ring = in.u16(4);
  const uint64_t used_ring = in.u16(6);
  const unsigned kicks = in.byte(8) % 16;
  const uint8_t avail_step = in.byte(9);
  const unsigned register_writes = in.byte(10) % 16;
  const size_t script = 11;
  const size_t ram_start = script + 5 * register_writes;

  uint8_t* ram = memory.host_pointer(0, kRamSize);
  std::memset(ram, 0, kRamSize);
  if (size > ram_start) {
    std::memcpy(ram, data + ram_start, std::min<size_t>(size - ram_start, kRamSize));
  }
  if ((flags & 8) != 0 && desc_table + 16ull * queue_size <= kRamSize) {
    for (uint32_t i = 0; i < queue_size; ++i) {
      uint64_t addr = 0;
      std::memcpy(&addr, ram + desc_table + 16ull * i, sizeof(addr));
      addr %= kRamSize;
      std::memcpy(ram + desc_table + 16ull * i, &addr, sizeof(addr));
    }
  }

  static DiscardSink console_output;
  std::unique_ptr<hv::VirtioDevice> device;
  hv::VirtioConsole* console = nullptr;
  uint32_t fuzzed_queue = 0;
  hv::TapDevice* tap = (flags & 0x80) != 0 ? scratch_tap() : nullptr;
  switch (tap != nullptr ? 4 : (flags >> 5) & 3) {
    case 4:
      device =
          std::make_unique<hv::VirtioNet>(*tap, std::array<uint8_t, 6>{0x52, 0x54, 0, 0, 0, 1});
      fuzzed_queue = hv::VirtioNet::kTransmitQueue;
      break;
    case 0:
      if ((flags & 4) != 0) {
        device = std::make_unique<EchoDevice>();
      } else {
        device = std::make_unique<hv::VirtioRng>();
      }
      break;
    case 1:
      device = std::make_unique<hv::VirtioBlk>(scratch_image());
      break;
    default:
      device = std::make_unique<hv::VirtioConsole>(&console_output);
      console = static_cast<hv::VirtioConsole*>(device.get());
      fuzzed_queue = ((flags >> 5) & 3) == 2 ? hv::VirtioConsole::kTransmitQueue
                                             : hv::VirtioConsole::kReceiveQueue;
      break;
  }
  hv::VirtioMmio mmio(memory, hv::IrqLine(), std::move(device));
  mmio.set_error_log([](std::string_view) {});

  uint64_t features = 0;
  if ((flags & 16) == 0) {
    features |= 1ull << hv::kVirtioFeatureVersion1;
  }
  if ((flags & 1) != 0) {
    features |= 1ull << hv::kVirtioRingFeatureIndirectDesc;
  }
  if ((flags & 2) != 0) {
    features |= 1ull << hv::kVirtioRingFeatureEventIdx;
  }
  write32(mmio, kStatus, hv::kVirtioStatusAcknowledge | hv::kVirtioStatusDriver);
  write32(mmio, kDriverFeaturesSel, 0);
  write32(mmio, kDriverFeatures, static_cast<uint32_t>(features));
  write32(mmio, kDriverFeaturesSel, 1);
  write32(mmio, kDriverFeatures, static_cast<uint32_t>(features >> 32));
  write32(mmio, kStatus,
          hv::kVirtioStatusAcknowledge | hv::kVirtioStatusDriver | hv::kVirtioStatusFeaturesOk);
  write32(mmio, kQueueSel, fuzzed_queue);
  write32(mmio, kQueueNum, queue_size);
  write32(mmio, kQueueDescLow, static_cast<uint32_t>(desc_table));
  write32(mmio, kQueueDriverLow, static_cast<uint32_t>(avail_ring));
  write32(mmio, kQueueDeviceLow, static_cast<uint32_t>(used_ring));
  write32(mmio, kQueueReady, 1);
  write32(mmio, kStatus, read32(mmio, kStatus) | hv::kVirtioStatusDriverOk);

  for (unsigned i = 0; i < register_writes; ++i) {
    const size_t at = script + 5 * i;
    write32(mmio, (in.byte(at) % 64) * 4ull, in.u32(at + 1));
  }

  for (unsigned i = 0; i < kicks; ++i) {
    if (console != nullptr && fuzzed_queue == hv::VirtioConsole::kReceiveQueue) {
      const uint8_t input[] = "console input from the host\n";
      console->receive(std::span<const uint8_t>(input, sizeof(input) - 1));
    }
    write32(mmio, kQueueNotify, fuzzed_queue);
    write32(mmio, kInterruptAck, read32(mmio, kInterruptStatus));
    // The driver makes more entries available (the ring's contents are whatever RAM holds).
    if (avail_ring + 4 <= kRamSize) {
      uint16_t idx = 0;
      std::memcpy(&idx, ram + avail_ring + 2, sizeof(idx));
      idx = static_cast<uint16_t>(idx + avail_step);
      std::memcpy(ram + avail_ring + 2, &idx, sizeof(idx));
    }
  }
  uint8_t config[8];
  mmio.read(kConfig, std::span<uint8_t>(config, 4));
  mmio.read(kConfig + 4, std::span<uint8_t>(config + 4, 4));
  write32(mmio, kStatus, 0);
  return 0;
}
