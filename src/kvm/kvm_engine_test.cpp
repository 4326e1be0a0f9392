#include "kvm/kvm_engine.hpp"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <mutex>
#include <thread>
#include <vector>

#include "boot/boot_cpu_state.hpp"
#include "common/fd.hpp"
#include "devices/debug_exit.hpp"
#include "vm/machine.hpp"

namespace hv::kvm {
namespace {

// Records every write that reaches it, as (offset, value).
class RecordingDevice final : public IoDevice {
 public:
  std::string_view name() const override { return "recording"; }
  void read(uint64_t, std::span<uint8_t> data) override { set_io_value(data, 0); }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    std::lock_guard lock(mutex_);
    writes_.emplace_back(offset, io_value(data));
  }
  std::vector<std::pair<uint64_t, uint64_t>> writes() {
    std::lock_guard lock(mutex_);
    return writes_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<uint64_t, uint64_t>> writes_;
};

constexpr uint64_t kDoorbellPage = 0xd000'0000;

// A write of the doorbell value to the doorbell address signals the eventfd and never reaches
// the device; another value, or the next word, reaches it as usual.
TEST(KvmEngine, MmioDoorbellSignalsTheEventfdInsteadOfTheDevice) {
  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "/dev/kvm is missing or not accessible";
  }
  std::unique_ptr<Machine> machine = *Machine::create({.memory_bytes = 4 << 20, .cpu_count = 1});
  RecordingDevice device;
  ASSERT_TRUE(machine->mmio().add(kDoorbellPage, 0x1000, &device).ok());
  DebugExit debug_exit(machine->stop());
  ASSERT_TRUE(machine->pio().add(0xf4, DebugExit::kPortCount, &debug_exit).ok());
  // 32-bit code at 0x10000:
  //   mov dword [0xd0000000], 0x2a   ; the doorbell value: eventfd only
  //   mov dword [0xd0000000], 0x2b   ; another value: the device
  //   mov dword [0xd0000004], 0x2a   ; another address: the device
  //   mov dword [0xd0000000], 0x2a   ; the eventfd again
  //   out 0xf4, al                   ; stop
  const std::array<uint8_t, 44> code = {
      0xc7, 0x05, 0x00, 0x00, 0x00, 0xd0, 0x2a, 0x00, 0x00, 0x00,  //
      0xc7, 0x05, 0x00, 0x00, 0x00, 0xd0, 0x2b, 0x00, 0x00, 0x00,  //
      0xc7, 0x05, 0x04, 0x00, 0x00, 0xd0, 0x2a, 0x00, 0x00, 0x00,  //
      0xc7, 0x05, 0x00, 0x00, 0x00, 0xd0, 0x2a, 0x00, 0x00, 0x00,  //
      0xb0, 0x00, 0xe6, 0xf4};
  ASSERT_TRUE(machine->memory().write(0x10000, code).ok());
  Result<std::unique_ptr<KvmEngine>> engine = KvmEngine::create(*machine, {});
  ASSERT_TRUE(engine.ok()) << engine.error().to_string();
  Fd event(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  Result<bool> added = (*engine)->add_mmio_doorbell(kDoorbellPage, 4, 0x2a, event.get());
  ASSERT_TRUE(added.ok()) << added.error().to_string();
  EXPECT_TRUE(*added);
  Fd interrupt(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  Result<bool> routed = (*engine)->add_interrupt_event(5, interrupt.get());
  ASSERT_TRUE(routed.ok()) << routed.error().to_string();
  EXPECT_TRUE(*routed);

  Result<std::unique_ptr<Vcpu>> vcpu = (*engine)->create_vcpu(0);
  ASSERT_TRUE(vcpu.ok()) << vcpu.error().to_string();
  Result<CpuState> state = boot::enter_protected_mode(machine->memory(), 0x10000);
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE((*vcpu)->set_state(*state).ok());
  std::thread runner([&] { (*vcpu)->run(); });
  const std::optional<StopReason> reason = machine->stop().wait(std::chrono::seconds(30));
  if (!reason) {
    machine->stop().request({StopKind::HostError, 1, "test timeout", {}});
  }
  runner.join();
  ASSERT_TRUE(reason.has_value()) << "the guest did not reach its debug-exit write";
  EXPECT_EQ(reason->kind, StopKind::DebugExit) << reason->message;

  uint64_t signals = 0;
  ASSERT_EQ(::read(event.get(), &signals, sizeof(signals)), ssize_t(sizeof(signals)));
  EXPECT_EQ(signals, 2u);
  EXPECT_EQ(device.writes(), (std::vector<std::pair<uint64_t, uint64_t>>{{0, 0x2b}, {4, 0x2a}}));
}

}  // namespace
}  // namespace hv::kvm
