// The virtio-mmio transport against a scripted device: probing, feature negotiation, the status
// state machine, queue registers, the configuration space, interrupts and DEVICE_NEEDS_RESET.
#include "virtio/virtio_mmio.hpp"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "devices/device_test_support.hpp"
#include "virtio/virtio_fast_path_test_support.hpp"
#include "virtio/virtio_test_support.hpp"
#include "vm/io_thread.hpp"

namespace hv {
namespace {

using namespace virtio_mmio;
using device_test::TestMachine;
using virtio_test::eventually;
using virtio_test::FakeEngine;
using virtio_test::MmioDriver;
using virtio_test::ring;
using virtio_test::take;
using virtio_test::test_layout;

constexpr uint32_t kGsi = 7;
constexpr uint64_t kVersion1 = 1ull << kVirtioFeatureVersion1;
constexpr uint64_t kFakeFeatures = (1ull << 0) | (1ull << 40);

// Records what the transport asks of it; its configuration space is 8 plain bytes.
class FakeDevice final : public VirtioDevice {
 public:
  std::string_view name() const override { return "fake"; }
  uint32_t device_id() const override { return 0x2a; }
  uint64_t device_features() const override { return kFakeFeatures; }
  uint16_t queue_count() const override { return 2; }
  uint32_t max_queue_size(uint16_t queue) const override { return queue == 0 ? 64 : 32; }
  uint32_t config_size() const override { return 8; }
  void read_config(uint32_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mutex);
    std::copy_n(config.begin() + offset, data.size(), data.begin());
  }
  void write_config(uint32_t offset, std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex);
    std::copy(data.begin(), data.end(), config.begin() + offset);
  }
  Status activate(const VirtioActivation& activation) override {
    std::lock_guard lock(mutex);
    ++activations;
    features = activation.features;
    queues = activation.queues;
    transport = activation.transport;
    if (fail_activation) {
      return make_error(ExitStatus::HostError, "fake: cannot start");
    }
    return {};
  }
  void queue_notify(uint16_t queue) override {
    std::lock_guard lock(mutex);
    notified.push_back(queue);
    notify_threads.push_back(std::this_thread::get_id());
  }
  void reset() override {
    std::lock_guard lock(mutex);
    ++resets;
    if (reset_counter) {
      ++*reset_counter;
    }
    transport = nullptr;
    queues = {};
  }

  std::mutex mutex;
  std::array<uint8_t, 8> config = {1, 2, 3, 4, 5, 6, 7, 8};
  int activations = 0;
  int resets = 0;
  std::shared_ptr<int> reset_counter;  // outlives the device
  bool fail_activation = false;
  uint64_t features = 0;
  std::span<Virtqueue> queues;
  VirtioTransport* transport = nullptr;
  std::vector<uint16_t> notified;
  std::vector<std::thread::id> notify_threads;
};

class VirtioMmioTest : public ::testing::Test {
 protected:
  VirtioMmioTest() {
    auto device = std::make_unique<FakeDevice>();
    fake = device.get();
    mmio = std::make_unique<VirtioMmio>(tm.machine->memory(), tm.machine->irq_line(kGsi),
                                        std::move(device));
    mmio->set_error_log([this](std::string_view line) { log.emplace_back(line); });
    driver = std::make_unique<MmioDriver>(*mmio);
  }

  // Negotiation, both queues, DRIVER_OK.
  void bring_up(uint64_t features = kVersion1) {
    ASSERT_NE(driver->negotiate(features) & kVirtioStatusFeaturesOk, 0u);
    ASSERT_TRUE(driver->setup_queue(0, test_layout(64)));
    ASSERT_TRUE(driver->setup_queue(
        1, {.size = 32, .desc_table = 0x20000, .avail_ring = 0x21000, .used_ring = 0x22000}));
    driver->driver_ok();
    ASSERT_NE(driver->status() & kVirtioStatusDriverOk, 0u);
  }

  TestMachine tm;
  FakeDevice* fake = nullptr;
  std::unique_ptr<VirtioMmio> mmio;
  std::unique_ptr<MmioDriver> driver;
  std::vector<std::string> log;
};

constexpr uint64_t kWindow = 0xd000'0000;

class VirtioMmioFastPathTest : public VirtioMmioTest {
 protected:
  std::vector<uint16_t> notified() {
    std::lock_guard lock(fake->mutex);
    return fake->notified;
  }
  // The doorbell handler has run `wakeups` times in all.
  bool handled(uint64_t wakeups) {
    return eventually([&] { return mmio->counts().doorbell_wakeups >= wakeups; });
  }
};

TEST_F(VirtioMmioTest, ProbeRegisters) {
  EXPECT_EQ(driver->read32(kMagicValue), 0x74726976u);
  EXPECT_EQ(driver->read32(kVersion), 2u);
  EXPECT_EQ(driver->read32(kDeviceId), 0x2au);
  EXPECT_EQ(driver->read32(kVendorId), kHvVendorId);
  EXPECT_EQ(driver->status(), 0u);
  EXPECT_EQ(driver->interrupt_status(), 0u);
  EXPECT_EQ(mmio->name(), "virtio-mmio (fake)");
}

TEST_F(VirtioMmioTest, OffersTheDeviceFeaturesPlusTheTransportsOwn) {
  const uint64_t expected = kFakeFeatures | kVersion1 | (1ull << kVirtioRingFeatureIndirectDesc) |
                            (1ull << kVirtioRingFeatureEventIdx);
  EXPECT_EQ(driver->device_features(), expected);
  EXPECT_EQ(mmio->offered_features(), expected);
  driver->write32(kDeviceFeaturesSel, 2);
  EXPECT_EQ(driver->read32(kDeviceFeatures), 0u);
}

TEST_F(VirtioMmioTest, NegotiatesASubsetWithVersion1) {
  const uint64_t features = kVersion1 | (1ull << 40) | (1ull << kVirtioRingFeatureEventIdx);
  const uint32_t status = driver->negotiate(features);
  EXPECT_EQ(status, kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk);
  ASSERT_TRUE(driver->setup_queue(0, test_layout(64)));
  driver->driver_ok();
  EXPECT_EQ(fake->activations, 1);
  EXPECT_EQ(fake->features, features);
  EXPECT_EQ(fake->queues.size(), 2u);
  EXPECT_TRUE(fake->queues[0].ready());
  EXPECT_FALSE(fake->queues[1].ready());  // the driver did not set it up
}

TEST_F(VirtioMmioTest, RefusesFeaturesWithoutVersion1) {
  EXPECT_EQ(driver->negotiate(1ull << 0) & kVirtioStatusFeaturesOk, 0u);
  // DRIVER_OK without FEATURES_OK does not activate anything.
  driver->driver_ok();
  EXPECT_EQ(driver->status() & kVirtioStatusDriverOk, 0u);
  EXPECT_EQ(fake->activations, 0);
}

TEST_F(VirtioMmioTest, RefusesFeaturesThatWereNotOffered) {
  EXPECT_EQ(driver->negotiate(kVersion1 | (1ull << 5)) & kVirtioStatusFeaturesOk, 0u);
}

TEST_F(VirtioMmioTest, DriverFeaturesFreezeAtFeaturesOk) {
  ASSERT_NE(driver->negotiate(kVersion1) & kVirtioStatusFeaturesOk, 0u);
  driver->write32(kDriverFeaturesSel, 0);
  driver->write32(kDriverFeatures, 1);
  EXPECT_EQ(driver->read32(kDriverFeatures), 0u);
  driver->write32(kDriverFeaturesSel, 1);
  EXPECT_EQ(driver->read32(kDriverFeatures), 1u);  // VERSION_1 is bit 0 of the high half
}

TEST_F(VirtioMmioTest, StatusBitsAreClearedOnlyByReset) {
  driver->write32(kStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver);
  driver->write32(kStatus, kVirtioStatusAcknowledge);
  EXPECT_EQ(driver->status(), kVirtioStatusAcknowledge | kVirtioStatusDriver);
  driver->write32(kStatus, kVirtioStatusNeedsReset);  // the device's bit, not the driver's
  EXPECT_EQ(driver->status() & kVirtioStatusNeedsReset, 0u);
}

TEST_F(VirtioMmioTest, QueueRegistersPerQueue) {
  driver->write32(kQueueSel, 0);
  EXPECT_EQ(driver->read32(kQueueNumMax), 64u);
  driver->write32(kQueueSel, 1);
  EXPECT_EQ(driver->read32(kQueueNumMax), 32u);
  driver->write32(kQueueSel, 2);
  EXPECT_EQ(driver->read32(kQueueNumMax), 0u);  // no such queue
  driver->write32(kQueueReady, 1);
  EXPECT_EQ(driver->read32(kQueueReady), 0u);

  ASSERT_NE(driver->negotiate(kVersion1) & kVirtioStatusFeaturesOk, 0u);
  ASSERT_TRUE(driver->setup_queue(1, {.size = 16,
                                      .desc_table = 0x1'0000'0000ull,  // not RAM: rejected
                                      .avail_ring = 0x21000,
                                      .used_ring = 0x22000}) == false);
}

TEST_F(VirtioMmioTest, QueueRegistersAreFrozenWhileReady) {
  ASSERT_NE(driver->negotiate(kVersion1) & kVirtioStatusFeaturesOk, 0u);
  ASSERT_TRUE(driver->setup_queue(0, test_layout(64)));
  driver->write32(kQueueNum, 8);
  driver->write32(kQueueDescLow, 0x30000);
  EXPECT_EQ(driver->read32(kQueueNum), 64u);
  EXPECT_EQ(driver->read32(kQueueDescLow), virtio_test::kDescTable);
  // Before DRIVER_OK the driver may take a queue back and change it.
  driver->write32(kQueueReady, 0);
  EXPECT_EQ(driver->read32(kQueueReady), 0u);
  driver->write32(kQueueNum, 8);
  EXPECT_EQ(driver->read32(kQueueNum), 8u);
}

TEST_F(VirtioMmioTest, QueueSizeNotPowerOfTwoNeedsReset) {
  ASSERT_NE(driver->negotiate(kVersion1) & kVirtioStatusFeaturesOk, 0u);
  EXPECT_FALSE(driver->setup_queue(0, test_layout(48)));
  EXPECT_NE(driver->status() & kVirtioStatusNeedsReset, 0u);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0],
            "virtio-mmio (fake): virtqueue 0: queue size 48 is not a power of two between 1 and "
            "64; the device needs a reset");
  // No interrupt: the driver is not running yet.
  EXPECT_FALSE(tm.irqs.level(kGsi));
  // A device that needs a reset is not activated.
  ASSERT_TRUE(driver->setup_queue(
      1, {.size = 32, .desc_table = 0x20000, .avail_ring = 0x21000, .used_ring = 0x22000}));
  driver->driver_ok();
  EXPECT_EQ(fake->activations, 0);
}

TEST_F(VirtioMmioTest, RingInTheMmioHoleNeedsReset) {
  ASSERT_NE(driver->negotiate(kVersion1) & kVirtioStatusFeaturesOk, 0u);
  VirtqueueLayout layout = test_layout(64);
  layout.used_ring = 0xfee0'0000;  // the local APIC's page, not RAM
  EXPECT_FALSE(driver->setup_queue(0, layout));
  EXPECT_NE(driver->status() & kVirtioStatusNeedsReset, 0u);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("used ring at 0xfee00000+0x204 is not entirely in guest RAM"),
            std::string::npos)
      << log[0];
}

TEST_F(VirtioMmioTest, EventIdxRingSizesAreCheckedAgainAtDriverOk) {
  // Queue set up before the features: ready with exact-fit rings, too small once EVENT_IDX is
  // negotiated (the used ring then needs its trailing avail_event).
  VirtqueueLayout layout = test_layout(64);
  layout.used_ring = (2 << 20) - (4 + 8 * 64);
  driver->write32(kStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver);
  ASSERT_TRUE(driver->setup_queue(0, layout));
  ASSERT_NE(
      driver->negotiate(kVersion1 | (1ull << kVirtioRingFeatureEventIdx)) & kVirtioStatusFeaturesOk,
      0u);
  driver->driver_ok();
  EXPECT_NE(driver->status() & kVirtioStatusNeedsReset, 0u);
  EXPECT_EQ(fake->activations, 0);
  EXPECT_TRUE(tm.irqs.level(kGsi));  // configuration change: the driver is running
  EXPECT_EQ(driver->interrupt_status(), kInterruptConfigChange);
}

TEST_F(VirtioMmioTest, NarrowOrMisalignedRegisterAccessesReadZeroAndAreIgnored) {
  uint8_t byte[1] = {};
  mmio->read(kMagicValue, byte);
  EXPECT_EQ(byte[0], 0);
  uint8_t word[2] = {0xff, 0xff};
  mmio->read(kMagicValue, word);
  EXPECT_EQ(io_value(word), 0u);
  uint8_t wide[8] = {0xff};
  mmio->read(kMagicValue, wide);
  EXPECT_EQ(io_value(wide), 0u);
  uint8_t misaligned[4] = {0xff};
  mmio->read(kMagicValue + 1, misaligned);
  EXPECT_EQ(io_value(misaligned), 0u);

  const uint8_t acknowledge[1] = {kVirtioStatusAcknowledge};
  mmio->write(kStatus, acknowledge);
  EXPECT_EQ(driver->status(), 0u);
}

TEST_F(VirtioMmioTest, ConfigSpaceTakesAnyWidthWithinBounds) {
  uint8_t byte[1] = {};
  mmio->read(kConfig + 3, byte);
  EXPECT_EQ(byte[0], 4);
  uint8_t half[2] = {};
  mmio->read(kConfig + 6, half);
  EXPECT_EQ(io_value(half), 0x0807u);
  uint8_t quad[8] = {};
  mmio->read(kConfig, quad);
  EXPECT_EQ(io_value(quad), 0x0807060504030201u);
  uint8_t beyond[4] = {0xff, 0xff, 0xff, 0xff};
  mmio->read(kConfig + 6, beyond);  // runs past the 8 bytes
  EXPECT_EQ(io_value(beyond), 0u);
  mmio->read(kConfig + 0x80, beyond);
  EXPECT_EQ(io_value(beyond), 0u);

  const uint8_t value[2] = {0xaa, 0xbb};
  mmio->write(kConfig + 2, value);
  mmio->write(kConfig + 7, value);  // out of bounds: dropped
  mmio->read(kConfig, quad);
  EXPECT_EQ(io_value(quad), 0x08070605bbaa0201u);
}

TEST_F(VirtioMmioTest, ConfigChangeBumpsTheGenerationAndInterrupts) {
  bring_up();
  const uint32_t generation = driver->read32(kConfigGeneration);
  fake->transport->signal_config_change();
  EXPECT_EQ(driver->read32(kConfigGeneration), generation + 1);
  EXPECT_EQ(driver->interrupt_status(), kInterruptConfigChange);
  EXPECT_TRUE(tm.irqs.level(kGsi));
  driver->acknowledge(kInterruptConfigChange);
  EXPECT_FALSE(tm.irqs.level(kGsi));
}

TEST_F(VirtioMmioTest, InterruptLineFollowsInterruptStatus) {
  bring_up();
  fake->transport->signal_used_buffers();
  EXPECT_EQ(driver->interrupt_status(), kInterruptUsedBuffer);
  EXPECT_TRUE(tm.irqs.level(kGsi));
  fake->transport->signal_config_change();
  EXPECT_EQ(driver->interrupt_status(), kInterruptUsedBuffer | kInterruptConfigChange);
  EXPECT_EQ(tm.irqs.rising_edges(kGsi), 1);  // level-triggered: already high
  driver->acknowledge(kInterruptUsedBuffer);
  EXPECT_TRUE(tm.irqs.level(kGsi));  // the config change is still pending
  driver->acknowledge(kInterruptConfigChange);
  EXPECT_FALSE(tm.irqs.level(kGsi));
  EXPECT_EQ(driver->interrupt_status(), 0u);
}

TEST_F(VirtioMmioTest, NotifyReachesTheDeviceOnlyWhileRunning) {
  driver->kick(0);
  ASSERT_NE(driver->negotiate(kVersion1) & kVirtioStatusFeaturesOk, 0u);
  driver->kick(0);
  EXPECT_TRUE(fake->notified.empty());
  bring_up();
  driver->kick(1);
  driver->kick(0);
  driver->kick(2);  // no such queue
  EXPECT_EQ(fake->notified, (std::vector<uint16_t>{1, 0}));
}

TEST_F(VirtioMmioTest, DeviceErrorNeedsResetLogsOnceAndStopsNotifications) {
  bring_up();
  fake->transport->report_device_error(Error{"virtqueue 0: broken", 0, ExitStatus::GuestCrashed});
  fake->transport->report_device_error(Error{"virtqueue 0: broken again", 0});
  EXPECT_NE(driver->status() & kVirtioStatusNeedsReset, 0u);
  EXPECT_EQ(log, (std::vector<std::string>{
                     "virtio-mmio (fake): virtqueue 0: broken; the device needs a reset"}));
  EXPECT_EQ(driver->interrupt_status(), kInterruptConfigChange);
  EXPECT_TRUE(tm.irqs.level(kGsi));
  driver->kick(0);
  EXPECT_TRUE(fake->notified.empty());
}

TEST_F(VirtioMmioTest, ActivationFailureNeedsReset) {
  fake->fail_activation = true;
  bring_up();
  EXPECT_NE(driver->status() & kVirtioStatusNeedsReset, 0u);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0], "virtio-mmio (fake): fake: cannot start; the device needs a reset");
}

TEST_F(VirtioMmioTest, ResetReturnsToPowerOnState) {
  bring_up(kVersion1 | (1ull << 40));
  fake->transport->report_device_error(Error{"broken", 0});
  ASSERT_TRUE(tm.irqs.level(kGsi));
  driver->write32(kQueueSel, 1);
  driver->reset();
  EXPECT_EQ(fake->resets, 1);
  EXPECT_EQ(driver->status(), 0u);
  EXPECT_EQ(driver->interrupt_status(), 0u);
  EXPECT_FALSE(tm.irqs.level(kGsi));
  EXPECT_EQ(driver->read32(kQueueSel), 0u);
  EXPECT_EQ(driver->read32(kQueueReady), 0u);
  EXPECT_EQ(driver->read32(kQueueNum), 64u);
  EXPECT_EQ(driver->read32(kQueueDescLow), 0u);
  driver->write32(kDriverFeaturesSel, 1);
  EXPECT_EQ(driver->read32(kDriverFeatures), 0u);
  // And it comes up again.
  bring_up();
  EXPECT_EQ(fake->activations, 2);
  EXPECT_EQ(driver->status() & kVirtioStatusNeedsReset, 0u);
  driver->kick(0);
  EXPECT_EQ(fake->notified, (std::vector<uint16_t>{0}));
}

TEST_F(VirtioMmioTest, DestructionResetsTheDevice) {
  auto resets = std::make_shared<int>(0);
  {
    auto device = std::make_unique<FakeDevice>();
    device->reset_counter = resets;
    VirtioMmio other(tm.machine->memory(), IrqLine(), std::move(device));
    MmioDriver other_driver(other);
    ASSERT_NE(other_driver.negotiate(kVersion1) & kVirtioStatusFeaturesOk, 0u);
    other_driver.driver_ok();
    EXPECT_EQ(*resets, 0);
  }
  EXPECT_EQ(*resets, 1);
}

TEST_F(VirtioMmioTest, KernelCommandLineFragmentUsesLinuxSyntax) {
  EXPECT_EQ(kernel_cmdline_fragment(0xd000'0000, 5), "virtio_mmio.device=512@0xd0000000:5");
  EXPECT_EQ(kernel_cmdline_fragment(0x1'0000'0200, 12), "virtio_mmio.device=512@0x100000200:12");
}

TEST_F(VirtioMmioFastPathTest, RegistersADatamatchDoorbellPerQueueAndTheInterruptEvent) {
  FakeEngine engine(true, true);
  std::unique_ptr<IoThread> io = *IoThread::create("hv-test-io");
  Result<VirtioFastPath> fast_path = mmio->use_io_thread(engine, *io, kWindow);
  ASSERT_TRUE(fast_path.ok()) << fast_path.error().to_string();
  EXPECT_TRUE(fast_path->doorbells);
  EXPECT_TRUE(fast_path->interrupt_event);
  ASSERT_EQ(engine.doorbells.size(), 2u);
  for (uint16_t queue = 0; queue < 2; ++queue) {
    EXPECT_EQ(engine.doorbells[queue].address, kWindow + kQueueNotify);
    EXPECT_EQ(engine.doorbells[queue].length, 4u);
    EXPECT_EQ(engine.doorbells[queue].value, std::optional<uint64_t>(queue));
  }
  EXPECT_NE(engine.doorbells[0].event_fd, engine.doorbells[1].event_fd);
  ASSERT_EQ(engine.interrupt_events.size(), 1u);
  EXPECT_EQ(engine.interrupt_events[0].gsi, kGsi);
  // Once is all: the engine cannot take doorbells back.
  EXPECT_FALSE(mmio->use_io_thread(engine, *io, kWindow).ok());
}

TEST_F(VirtioMmioFastPathTest, DoorbellNotifiesOnTheIoThreadWithTheRegisterChecks) {
  FakeEngine engine(true, false);
  std::unique_ptr<IoThread> io = *IoThread::create("hv-test-io");
  ASSERT_TRUE(mmio->use_io_thread(engine, *io, kWindow).ok());
  ASSERT_EQ(engine.doorbells.size(), 2u);
  const int queue0 = engine.doorbells[0].event_fd;
  const int queue1 = engine.doorbells[1].event_fd;
  ASSERT_TRUE(io->start().ok());

  ring(queue0);  // before DRIVER_OK: ignored, as a register write would be
  ASSERT_TRUE(handled(1));
  EXPECT_TRUE(notified().empty());

  bring_up();
  ring(queue1, 2);  // two kicks the eventfd summed up: one pass over the queue
  ASSERT_TRUE(handled(2));
  EXPECT_EQ(notified(), (std::vector<uint16_t>{1}));
  {
    std::lock_guard lock(fake->mutex);
    ASSERT_EQ(fake->notify_threads.size(), 1u);
    EXPECT_NE(fake->notify_threads[0], std::this_thread::get_id());
  }
  // Writes the doorbells do not match (here: a bad index) still reach the registers.
  driver->kick(0);
  driver->kick(5);
  EXPECT_EQ(notified(), (std::vector<uint16_t>{1, 0}));

  fake->transport->report_device_error(Error{"virtqueue 0: broken", 0, ExitStatus::GuestCrashed});
  ring(queue0);  // DEVICE_NEEDS_RESET: ignored
  ASSERT_TRUE(handled(3));
  driver->reset();
  ring(queue0);  // reset: ignored
  ASSERT_TRUE(handled(4));
  EXPECT_EQ(notified(), (std::vector<uint16_t>{1, 0}));

  bring_up();
  ring(queue0);
  ASSERT_TRUE(handled(5));
  EXPECT_EQ(notified(), (std::vector<uint16_t>{1, 0, 0}));

  const VirtioMmioCounts counts = mmio->counts();
  EXPECT_EQ(counts.doorbell_notifies, 6u);
  EXPECT_EQ(counts.doorbell_wakeups, 5u);
  EXPECT_EQ(counts.register_notifies, 2u);
  EXPECT_EQ(counts.interrupt_events, 0u);
  io->stop();  // before the transport goes
}

TEST_F(VirtioMmioFastPathTest, InterruptIsAnEdgePerNewlyPendingCauseAndNeverTheLine) {
  FakeEngine engine(false, true);
  std::unique_ptr<IoThread> io = *IoThread::create("hv-test-io");
  Result<VirtioFastPath> fast_path = mmio->use_io_thread(engine, *io, kWindow);
  ASSERT_TRUE(fast_path.ok());
  EXPECT_FALSE(fast_path->doorbells);
  ASSERT_TRUE(fast_path->interrupt_event);
  const int interrupt = engine.interrupt_events[0].event_fd;
  bring_up();

  fake->transport->signal_used_buffers();
  EXPECT_EQ(take(interrupt), 1u);
  EXPECT_EQ(driver->interrupt_status(), kInterruptUsedBuffer);
  // Still pending: the driver's handler has not acknowledged it and will see the new buffer too.
  fake->transport->signal_used_buffers();
  EXPECT_EQ(take(interrupt), 0u);
  // A new cause while the handler may already have read InterruptStatus: an edge of its own.
  fake->transport->signal_config_change();
  EXPECT_EQ(take(interrupt), 1u);
  driver->acknowledge(kInterruptUsedBuffer);
  EXPECT_EQ(take(interrupt), 0u);  // acknowledging sends nothing
  fake->transport->signal_used_buffers();
  EXPECT_EQ(take(interrupt), 1u);
  driver->acknowledge(kInterruptUsedBuffer | kInterruptConfigChange);
  fake->transport->report_device_error(Error{"virtqueue 0: broken", 0, ExitStatus::GuestCrashed});
  EXPECT_EQ(take(interrupt), 1u);
  EXPECT_EQ(driver->interrupt_status(), kInterruptConfigChange);

  EXPECT_EQ(mmio->counts().interrupt_events, 4u);
  EXPECT_EQ(tm.irqs.calls(kGsi), 0);
}

TEST_F(VirtioMmioFastPathTest, AnInterruptPendingAtTheSwitchIsSentAgainAsAnEdge) {
  bring_up();
  fake->transport->signal_used_buffers();
  ASSERT_TRUE(tm.irqs.level(kGsi));
  FakeEngine engine(false, true);
  std::unique_ptr<IoThread> io = *IoThread::create("hv-test-io");
  ASSERT_TRUE(mmio->use_io_thread(engine, *io, kWindow).ok());
  EXPECT_FALSE(tm.irqs.level(kGsi));  // never driven again, so not left high
  EXPECT_EQ(take(engine.interrupt_events.at(0).event_fd), 1u);
  EXPECT_EQ(driver->interrupt_status(), kInterruptUsedBuffer);
}

TEST_F(VirtioMmioFastPathTest, WithoutEngineFastPathsEverythingStaysOnTheVcpuThread) {
  FakeEngine engine(false, false);
  std::unique_ptr<IoThread> io = *IoThread::create("hv-test-io");
  Result<VirtioFastPath> fast_path = mmio->use_io_thread(engine, *io, kWindow);
  ASSERT_TRUE(fast_path.ok());
  EXPECT_FALSE(fast_path->doorbells);
  EXPECT_FALSE(fast_path->interrupt_event);
  bring_up();
  driver->kick(1);
  EXPECT_EQ(notified(), (std::vector<uint16_t>{1}));
  EXPECT_EQ(fake->notify_threads.at(0), std::this_thread::get_id());
  fake->transport->signal_used_buffers();
  EXPECT_TRUE(tm.irqs.level(kGsi));
  driver->acknowledge(kInterruptUsedBuffer);
  EXPECT_FALSE(tm.irqs.level(kGsi));
  const VirtioMmioCounts counts = mmio->counts();
  EXPECT_EQ(counts.register_notifies, 1u);
  EXPECT_EQ(counts.doorbell_notifies, 0u);
  EXPECT_EQ(counts.interrupt_events, 0u);
}

}  // namespace
}  // namespace hv
