// The virtio I/O thread: no thread without engine fast paths, and on real KVM a guest's
// QueueNotify writes wake the I/O thread instead of exiting to its vCPU thread.
#include "vmm/virtio_io.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "boot/boot_cpu_state.hpp"
#include "devices/debug_exit.hpp"
#include "kvm/kvm_engine.hpp"
#include "virtio/virtio_fast_path_test_support.hpp"
#include "virtio/virtio_test_support.hpp"
#include "vm/machine.hpp"

namespace hv {
namespace {

using virtio_test::eventually;
using virtio_test::FakeEngine;
using virtio_test::MmioDriver;
using virtio_test::test_layout;

constexpr uint64_t kWindow = 0xd000'0000;
constexpr uint64_t kStride = 0x1000;

// Two queues; records on which thread each kick arrived and answers each with a used-buffer
// interrupt, as a real device would after serving the queue.
class KickRecorder final : public VirtioDevice {
 public:
  struct Kick {
    uint16_t queue;
    std::thread::id thread;
  };

  std::string_view name() const override { return "kick-recorder"; }
  uint32_t device_id() const override { return 0x2a; }
  uint64_t device_features() const override { return 0; }
  uint16_t queue_count() const override { return 2; }
  uint32_t max_queue_size(uint16_t) const override { return 64; }
  Status activate(const VirtioActivation& activation) override {
    std::lock_guard lock(mutex_);
    transport_ = activation.transport;
    return {};
  }
  void queue_notify(uint16_t queue) override {
    std::lock_guard lock(mutex_);
    kicks_.push_back({queue, std::this_thread::get_id()});
    if (transport_ != nullptr) {
      transport_->signal_used_buffers();
    }
  }
  void reset() override {
    std::lock_guard lock(mutex_);
    transport_ = nullptr;
  }
  std::vector<Kick> kicks() {
    std::lock_guard lock(mutex_);
    return kicks_;
  }

 private:
  std::mutex mutex_;
  VirtioTransport* transport_ = nullptr;
  std::vector<Kick> kicks_;
};

TEST(VirtioIoThread, NoThreadWhenTheEngineHasNoDoorbells) {
  std::unique_ptr<Machine> machine = *Machine::create({.memory_bytes = 2 << 20});
  VirtioMmio transport(machine->memory(), machine->irq_line(5), std::make_unique<KickRecorder>());
  const std::array<VirtioMmio*, 1> transports = {&transport};
  FakeEngine emulator_like(false, false);
  Result<std::unique_ptr<IoThread>> io =
      start_virtio_io_thread(emulator_like, transports, kWindow, kStride);
  ASSERT_TRUE(io.ok()) << io.error().to_string();
  EXPECT_EQ(*io, nullptr);
}

TEST(VirtioIoThread, GivesEachTransportTheDoorbellsOfItsOwnWindow) {
  std::unique_ptr<Machine> machine = *Machine::create({.memory_bytes = 2 << 20});
  VirtioMmio first(machine->memory(), machine->irq_line(5), std::make_unique<KickRecorder>());
  VirtioMmio second(machine->memory(), machine->irq_line(6), std::make_unique<KickRecorder>());
  const std::array<VirtioMmio*, 2> transports = {&first, &second};
  FakeEngine kvm_like(true, true);
  Result<std::unique_ptr<IoThread>> io =
      start_virtio_io_thread(kvm_like, transports, kWindow, kStride);
  ASSERT_TRUE(io.ok()) << io.error().to_string();
  ASSERT_NE(*io, nullptr);
  ASSERT_EQ(kvm_like.doorbells.size(), 4u);
  EXPECT_EQ(kvm_like.doorbells[0].address, kWindow + virtio_mmio::kQueueNotify);
  EXPECT_EQ(kvm_like.doorbells[1].address, kWindow + virtio_mmio::kQueueNotify);
  EXPECT_EQ(kvm_like.doorbells[2].address, kWindow + kStride + virtio_mmio::kQueueNotify);
  EXPECT_EQ(kvm_like.doorbells[3].value, std::optional<uint64_t>(1));
  ASSERT_EQ(kvm_like.interrupt_events.size(), 2u);
  EXPECT_EQ(kvm_like.interrupt_events[0].gsi, 5u);
  EXPECT_EQ(kvm_like.interrupt_events[1].gsi, 6u);
  io->reset();  // stopped before the transports go
}

// A guest kicks queues 0 and 1 through the doorbell and a nonexistent queue 7, which no doorbell
// matches, through the register; then stops with a debug-exit port write. The two doorbell kicks
// must reach the device on the I/O thread, never on the vCPU's, and their used-buffer interrupt
// must leave through the irqfd.
TEST(VirtioIoThreadKvm, GuestKicksWakeTheIoThreadNotTheVcpu) {
  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "/dev/kvm is missing or not accessible";
  }
  std::unique_ptr<Machine> machine = *Machine::create({.memory_bytes = 4 << 20, .cpu_count = 1});
  auto recorder = std::make_unique<KickRecorder>();
  KickRecorder* device = recorder.get();
  VirtioMmio* transport = machine->own(
      std::make_unique<VirtioMmio>(machine->memory(), machine->irq_line(5), std::move(recorder)));
  ASSERT_TRUE(machine->mmio().add(kWindow, VirtioMmio::kRegionSize, transport).ok());
  DebugExit debug_exit(machine->stop());
  ASSERT_TRUE(machine->pio().add(0xf4, DebugExit::kPortCount, &debug_exit).ok());
  // The driver's set-up, done from here: the transport does not mind which thread writes.
  MmioDriver driver(*transport);
  ASSERT_NE(driver.negotiate(1ull << kVirtioFeatureVersion1) & kVirtioStatusFeaturesOk, 0u);
  ASSERT_TRUE(driver.setup_queue(0, test_layout(64)));
  driver.driver_ok();
  ASSERT_NE(driver.status() & kVirtioStatusDriverOk, 0u);
  // 32-bit code at 0x10000:
  //   mov dword [0xd0000050], 0   ; QueueNotify, queue 0: doorbell
  //   mov dword [0xd0000050], 1   ; queue 1: doorbell
  //   mov dword [0xd0000050], 7   ; no such queue: exits to the register
  //   out 0xf4, al                ; stop
  const std::array<uint8_t, 34> code = {
      0xc7, 0x05, 0x50, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00,  //
      0xc7, 0x05, 0x50, 0x00, 0x00, 0xd0, 0x01, 0x00, 0x00, 0x00,  //
      0xc7, 0x05, 0x50, 0x00, 0x00, 0xd0, 0x07, 0x00, 0x00, 0x00,  //
      0xb0, 0x00, 0xe6, 0xf4};
  ASSERT_TRUE(machine->memory().write(0x10000, code).ok());

  Result<std::unique_ptr<kvm::KvmEngine>> engine = kvm::KvmEngine::create(*machine, {});
  ASSERT_TRUE(engine.ok()) << engine.error().to_string();
  const std::array<VirtioMmio*, 1> transports = {transport};
  Result<std::unique_ptr<IoThread>> io =
      start_virtio_io_thread(**engine, transports, kWindow, kStride);
  ASSERT_TRUE(io.ok()) << io.error().to_string();
  ASSERT_NE(*io, nullptr);

  Result<std::unique_ptr<Vcpu>> vcpu = (*engine)->create_vcpu(0);
  ASSERT_TRUE(vcpu.ok()) << vcpu.error().to_string();
  Result<CpuState> state = boot::enter_protected_mode(machine->memory(), 0x10000);
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE((*vcpu)->set_state(*state).ok());
  std::thread runner([&] { (*vcpu)->run(); });
  const std::thread::id vcpu_thread = runner.get_id();
  const std::optional<StopReason> reason = machine->stop().wait(std::chrono::seconds(30));
  if (!reason) {
    machine->stop().request({StopKind::HostError, 1, "test timeout", {}});
  }
  runner.join();
  ASSERT_TRUE(reason.has_value()) << "the guest did not reach its debug-exit write";
  EXPECT_EQ(reason->kind, StopKind::DebugExit) << reason->message;

  // The eventfds were signalled before the guest went on; the I/O thread may still be at work.
  ASSERT_TRUE(eventually([&] { return device->kicks().size() >= 2; }));
  (*io)->stop();
  const std::vector<KickRecorder::Kick> kicks = device->kicks();
  ASSERT_EQ(kicks.size(), 2u);
  EXPECT_EQ(kicks[0].queue, 0u);
  EXPECT_EQ(kicks[1].queue, 1u);
  for (const KickRecorder::Kick& kick : kicks) {
    EXPECT_NE(kick.thread, vcpu_thread);
    EXPECT_NE(kick.thread, std::this_thread::get_id());
  }
  const VirtioMmioCounts counts = transport->counts();
  EXPECT_EQ(counts.doorbell_notifies, 2u);
  EXPECT_EQ(counts.register_notifies, 1u);
  // KVM took the irqfd (KVM_IRQFD returned 0, or there would be no event) and its write; the
  // second kick's interrupt found the first still pending, unacknowledged.
  EXPECT_EQ(counts.interrupt_events, 1u);
  EXPECT_EQ(driver.interrupt_status(), virtio_mmio::kInterruptUsedBuffer);
}

}  // namespace
}  // namespace hv
