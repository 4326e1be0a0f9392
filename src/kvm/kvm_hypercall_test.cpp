// Hypercalls on the KVM engine: the doorbell port's exit reaches the HypercallService with the
// caller's registers (KVM_GET_REGS/KVM_SET_REGS around the call), and the CPUID table carries
// the leaves. The same guest programs and checks as the emulation engine's test.
#include <gtest/gtest.h>
#include <unistd.h>

#include "boot/boot_cpu_state.hpp"
#include "devices/debug_exit.hpp"
#include "devices/device_test_support.hpp"
#include "devices/hypercall_test_support.hpp"
#include "devices/hypercalls.hpp"
#include "kvm/kvm_engine.hpp"

namespace hv::kvm {
namespace {

class KvmHypercallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/kvm", R_OK | W_OK) != 0) {
      GTEST_SKIP() << "/dev/kvm is missing or not accessible";
    }
    machine_ = std::move(*Machine::create({.memory_bytes = 4 << 20}));
    service_ = std::make_unique<HypercallService>(*machine_, &console_);
    machine_->set_hypercalls(service_.get());
    // Reached only if POWER_OFF returned.
    debug_exit_ = std::make_unique<DebugExit>(machine_->stop());
    ASSERT_TRUE(machine_->pio().add(0xf4, DebugExit::kPortCount, debug_exit_.get()).ok());
  }

  std::optional<StopReason> run(const CpuState& state) {
    Result<std::unique_ptr<KvmEngine>> engine = KvmEngine::create(*machine_, {});
    EXPECT_TRUE(engine.ok()) << engine.error().to_string();
    if (!engine.ok()) {
      return std::nullopt;
    }
    Result<std::unique_ptr<Vcpu>> vcpu = (*engine)->create_vcpu(0);
    EXPECT_TRUE(vcpu.ok()) << vcpu.error().to_string();
    if (!vcpu.ok()) {
      return std::nullopt;
    }
    EXPECT_TRUE((*vcpu)->set_state(state).ok());
    machine_->stop().on_stop([v = vcpu->get()] { v->kick(); });
    std::optional<StopReason> reason = hypercall_test::run_until_stop(*machine_, **vcpu);
    counts_ = (*engine)->exit_counts();
    return reason;
  }
  std::string console_text() const {
    const std::vector<uint8_t> bytes = console_.bytes();
    return std::string(bytes.begin(), bytes.end());
  }

  std::unique_ptr<Machine> machine_;
  device_test::RecordingSink console_;
  std::unique_ptr<HypercallService> service_;
  std::unique_ptr<DebugExit> debug_exit_;
  std::vector<ExitCount> counts_;
};

TEST_F(KvmHypercallTest, ProtectedModeProgramGetsTheResultsTheEmulatorGets) {
  hypercall_test::load(machine_->memory(), hypercall_test::kProtectedModeProgram);
  Result<CpuState> state =
      boot::enter_protected_mode(machine_->memory(), hypercall_test::kCodeAddress);
  ASSERT_TRUE(state.ok());
  hypercall_test::expect_powered_off(run(*state));
  // KVM keeps VMCALL for itself: the feature bit stays clear.
  hypercall_test::expect_protected_mode_results(machine_->memory(), false);
  EXPECT_EQ(console_text(), "hello");
  using hypercall_test::count_of;
  EXPECT_EQ(count_of(counts_, "  hypercall 0 VERSION"), 1u);
  EXPECT_EQ(count_of(counts_, "  hypercall 1 CONSOLE_WRITE"), 2u);
  EXPECT_EQ(count_of(counts_, "  hypercall 5 POWER_OFF"), 1u);
  EXPECT_EQ(count_of(counts_, "  hypercall unknown numbers"), 1u);
  EXPECT_GE(count_of(counts_, "port I/O"), 5u);
}

TEST_F(KvmHypercallTest, LongModeProgramGetsTheResultsTheEmulatorGets) {
  hypercall_test::load(machine_->memory(), hypercall_test::kLongModeProgram);
  Result<CpuState> state = boot::enter_long_mode(machine_->memory(), hypercall_test::kCodeAddress);
  ASSERT_TRUE(state.ok());
  hypercall_test::expect_powered_off(run(*state));
  hypercall_test::expect_long_mode_results(machine_->memory());
  EXPECT_EQ(console_text(), "hello");
}

}  // namespace
}  // namespace hv::kvm
