// Hypercalls on the software CPU: the doorbell OUT and VMCALL reach the HypercallService with the
// caller's registers, CPUID advertises them, and a machine without the service behaves as one
// without hv's interface (docs/hypercalls.md).
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <optional>
#include <vector>

#include "boot/boot_cpu_state.hpp"
#include "devices/device_test_support.hpp"
#include "devices/hypercall_test_support.hpp"
#include "devices/hypercalls.hpp"
#include "emu/cpu.hpp"
#include "emu/cpuid.hpp"
#include "emu/decoder.hpp"
#include "emu/emu_engine.hpp"

namespace hv::emu {
namespace {

constexpr uint64_t kMemory = 4ull << 20;

class RecordingPort final : public IoDevice {
 public:
  std::string_view name() const override { return "recording"; }
  void read(uint64_t, std::span<uint8_t> data) override { set_io_value(data, 0x1234'5678); }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    writes.push_back({offset, io_value(data)});
  }
  std::vector<std::pair<uint64_t, uint64_t>> writes;
};

class EmuHypercallTest : public ::testing::Test {
 protected:
  EmuHypercallTest()
      : machine_(std::move(*Machine::create({.memory_bytes = kMemory}))),
        service_(*machine_, &console_),
        pages_(kMemory),
        cpu_(*machine_, pages_, 0) {
    machine_->set_hypercalls(&service_);
    enter_flat_mode(false, 0);
  }

  // Flat 32-bit protected mode, or 64-bit code when `wide` (no paging needed: the instructions
  // under test touch no memory), at privilege `ring`.
  void enter_flat_mode(bool wide, uint8_t ring) {
    cpu_.cr0 = cr0::kPE | cr0::kET | (wide ? cr0::kPG : 0);
    cpu_.cr4 = wide ? cr4::kPAE : 0;
    cpu_.efer = wide ? (efer::kLME | efer::kLMA) : 0;
    const uint16_t code = wide ? (ring == 0 ? 0xa09b : 0xa0fb) : (ring == 0 ? 0xc09b : 0xc0fb);
    cpu_.seg[kCs] = SegmentCache{0, 0xffffffff, static_cast<uint16_t>(0x08 | ring), code};
    cpu_.cpl = ring;
    cpu_.update_mode();
  }

  // Decodes `bytes` at cpu.rip and runs the instruction; returns the fault if it raised one.
  std::optional<GuestFault> run(const std::vector<uint8_t>& bytes) {
    Decoder decoder(cpu_.code_size());
    Insn insn;
    EXPECT_TRUE(decoder.decode(bytes, insn));
    cpu_.next_rip = cpu_.rip + insn.length;
    try {
      insn.handler(cpu_, insn);
    } catch (const GuestFault& f) {
      return f;
    }
    cpu_.rip = cpu_.next_rip;
    return std::nullopt;
  }

  std::unique_ptr<Machine> machine_;
  device_test::RecordingSink console_;
  HypercallService service_;
  CodePages pages_;
  Cpu cpu_;
};

const std::vector<uint8_t> kOutDxEax = {0xef};
const std::vector<uint8_t> kVmcall = {0x0f, 0x01, 0xc1};

TEST_F(EmuHypercallTest, DoorbellOutRunsTheCallWithTheRegisters) {
  const std::array<uint8_t, 3> text = {'h', 'v', '\n'};
  ASSERT_TRUE(machine_->memory().write(0x1000, text).ok());
  cpu_.gpr[kRax] = 1;  // CONSOLE_WRITE
  cpu_.gpr[kRbx] = 0x1000;
  cpu_.gpr[kRcx] = 3;
  cpu_.gpr[kRdx] = hypercall::kDoorbellPort;
  ASSERT_FALSE(run(kOutDxEax));
  EXPECT_EQ(cpu_.gpr[kRax], 3u);
  EXPECT_EQ(cpu_.gpr[kRdx], 0u) << "32-bit callers get the high half in EDX";
  EXPECT_EQ(console_.bytes(), (std::vector<uint8_t>{'h', 'v', '\n'}));
  EXPECT_EQ(cpu_.hypercall_counts.of(1), 1u);
}

TEST_F(EmuHypercallTest, ThirtyTwoBitCallersPassTheLowHalvesOnly) {
  const std::array<uint8_t, 1> text = {'x'};
  ASSERT_TRUE(machine_->memory().write(0x1000, text).ok());
  cpu_.gpr[kRax] = 1;
  cpu_.gpr[kRbx] = 0xffff'ffff'0000'1000;  // left over from long mode: ignored
  cpu_.gpr[kRcx] = 0x8000'0000'0000'0001;
  cpu_.gpr[kRdx] = hypercall::kDoorbellPort;
  ASSERT_FALSE(run(kOutDxEax));
  EXPECT_EQ(cpu_.gpr[kRax], 1u);
}

TEST_F(EmuHypercallTest, SixtyFourBitCallersPassWholeRegistersAndKeepRdx) {
  enter_flat_mode(true, 0);
  cpu_.gpr[kRax] = 1;
  cpu_.gpr[kRbx] = 0xffff'ffff'0000'1000;  // beyond RAM
  cpu_.gpr[kRcx] = 1;
  cpu_.gpr[kRdx] = hypercall::kDoorbellPort;
  ASSERT_FALSE(run(kOutDxEax));
  EXPECT_EQ(cpu_.gpr[kRax], hypercall::error_result(EFAULT));
  EXPECT_EQ(cpu_.gpr[kRdx], hypercall::kDoorbellPort);
}

TEST_F(EmuHypercallTest, VmcallRunsTheCallInRingZero) {
  cpu_.gpr[kRax] = 0;  // VERSION
  ASSERT_FALSE(run(kVmcall));
  EXPECT_EQ(cpu_.gpr[kRax], hypercall::kAbiVersion);
  enter_flat_mode(true, 0);
  cpu_.gpr[kRax] = 0xffff'ffff'0000'0000 | 99;  // the number is EAX
  ASSERT_FALSE(run(kVmcall));
  EXPECT_EQ(cpu_.gpr[kRax], hypercall::error_result(ENOSYS));
  EXPECT_EQ(cpu_.hypercall_counts.of(0), 1u);
  EXPECT_EQ(cpu_.hypercall_counts.of(99), 1u);
}

TEST_F(EmuHypercallTest, VmcallFromUserCodeIsInvalidOpcode) {
  enter_flat_mode(true, 3);
  cpu_.gpr[kRax] = 5;  // POWER_OFF: must not reach the service from ring 3
  cpu_.gpr[kRbx] = 0;
  const std::optional<GuestFault> fault = run(kVmcall);
  ASSERT_TRUE(fault.has_value());
  EXPECT_EQ(fault->vector, kInvalidOpcode);
  EXPECT_EQ(cpu_.gpr[kRax], 5u);
  EXPECT_FALSE(machine_->stop().stopping());
}

TEST_F(EmuHypercallTest, NarrowWritesAndReadsOfTheDoorbellAreNoCalls) {
  cpu_.gpr[kRax] = 5;
  cpu_.gpr[kRbx] = 0;
  cpu_.gpr[kRdx] = hypercall::kDoorbellPort;
  ASSERT_FALSE(run({0xee}));        // out dx, al
  ASSERT_FALSE(run({0x66, 0xef}));  // out dx, ax
  ASSERT_FALSE(run({0xed}));        // in eax, dx
  EXPECT_EQ(cpu_.gpr[kRax], 0xffff'ffffu);
  EXPECT_FALSE(machine_->stop().stopping());
  EXPECT_EQ(cpu_.hypercall_counts.of(5), 0u);
}

TEST_F(EmuHypercallTest, CpuidAdvertisesTheLeavesWithVmcall) {
  uint32_t a, b, c, d;
  cpuid(cpu_, hypercall::kCpuidBaseLeaf, 0, a, b, c, d);
  EXPECT_EQ(a, hypercall::kCpuidFeaturesLeaf);
  char signature[13] = {};
  std::memcpy(signature, &b, 4);
  std::memcpy(signature + 4, &c, 4);
  std::memcpy(signature + 8, &d, 4);
  EXPECT_STREQ(signature, "hvHypervisor");
  cpuid(cpu_, hypercall::kCpuidFeaturesLeaf, 0, a, b, c, d);
  EXPECT_EQ(a, 1u);
  EXPECT_EQ(b, hypercall::kDoorbellPort);
  EXPECT_EQ(c, hypercall::kFeatureVmcall);
  cpuid(cpu_, 1, 0, a, b, c, d);
  EXPECT_TRUE(c & cpuid_bits::kHypervisor);
  cpuid(cpu_, 0x4000'0000, 0, a, b, c, d);
  EXPECT_EQ(b, 0x76687668u) << "leaf 0x40000000 stays as it was";
}

// A machine without the service: no leaves, VMCALL is #UD and the port is an ordinary one.
TEST(EmuWithoutHypercalls, BehavesAsAMachineWithoutTheInterface) {
  std::unique_ptr<Machine> machine = std::move(*Machine::create({.memory_bytes = kMemory}));
  RecordingPort port;
  ASSERT_TRUE(machine->pio().add(hypercall::kDoorbellPort, 4, &port).ok());
  CodePages pages(kMemory);
  Cpu cpu(*machine, pages, 0);
  uint32_t a, b, c, d;
  cpuid(cpu, hypercall::kCpuidBaseLeaf, 0, a, b, c, d);
  EXPECT_EQ(a | b | c | d, 0u);
  EXPECT_FALSE(cpu.hypercall());

  Decoder decoder(cpu.code_size());
  Insn insn;
  const std::vector<uint8_t> vmcall = {0x0f, 0x01, 0xc1};
  ASSERT_TRUE(decoder.decode(vmcall, insn));
  cpu.next_rip = cpu.rip + insn.length;
  try {
    insn.handler(cpu, insn);
    ADD_FAILURE() << "VMCALL did not fault";
  } catch (const GuestFault& f) {
    EXPECT_EQ(f.vector, kInvalidOpcode);
  }
  const std::vector<uint8_t> out = {0x66, 0xef};  // real mode: out dx, eax
  ASSERT_TRUE(decoder.decode(out, insn));
  cpu.gpr[kRax] = 5;
  cpu.gpr[kRdx] = hypercall::kDoorbellPort;
  insn.handler(cpu, insn);
  EXPECT_EQ(port.writes, (std::vector<std::pair<uint64_t, uint64_t>>{{0, 5}}));
}

// The whole path on the engine: guest programs in both modes, results checked as on KVM.
class EmuEngineHypercallTest : public ::testing::Test {
 protected:
  EmuEngineHypercallTest()
      : machine_(std::move(*Machine::create({.memory_bytes = kMemory}))),
        service_(*machine_, &console_) {
    machine_->set_hypercalls(&service_);
  }

  std::optional<StopReason> run(const CpuState& state) {
    Result<std::unique_ptr<EmuEngine>> engine = EmuEngine::create(*machine_, {.trace_exits = true});
    EXPECT_TRUE(engine.ok());
    Result<std::unique_ptr<Vcpu>> vcpu = (*engine)->create_vcpu(0);
    EXPECT_TRUE(vcpu.ok());
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
  HypercallService service_;
  std::vector<ExitCount> counts_;
};

TEST_F(EmuEngineHypercallTest, ProtectedModeProgramGetsTheResultsKvmGets) {
  hypercall_test::load(machine_->memory(), hypercall_test::kProtectedModeProgram);
  Result<CpuState> state =
      boot::enter_protected_mode(machine_->memory(), hypercall_test::kCodeAddress);
  ASSERT_TRUE(state.ok());
  hypercall_test::expect_powered_off(run(*state));
  hypercall_test::expect_protected_mode_results(machine_->memory(), true);
  EXPECT_EQ(console_text(), "hello");
  using hypercall_test::count_of;
  EXPECT_EQ(count_of(counts_, "  hypercall 0 VERSION"), 1u);
  EXPECT_EQ(count_of(counts_, "  hypercall 1 CONSOLE_WRITE"), 2u);
  EXPECT_EQ(count_of(counts_, "  hypercall 5 POWER_OFF"), 1u);
  EXPECT_EQ(count_of(counts_, "  hypercall unknown numbers"), 1u);
  EXPECT_EQ(count_of(counts_, "  port 0x0cb0 out"), 5u);
  EXPECT_EQ(count_of(counts_, "  port 0x00f4 out"), 0u) << "POWER_OFF returned";
}

TEST_F(EmuEngineHypercallTest, LongModeProgramGetsTheResultsKvmGets) {
  hypercall_test::load(machine_->memory(), hypercall_test::kLongModeProgram);
  Result<CpuState> state = boot::enter_long_mode(machine_->memory(), hypercall_test::kCodeAddress);
  ASSERT_TRUE(state.ok());
  hypercall_test::expect_powered_off(run(*state));
  hypercall_test::expect_long_mode_results(machine_->memory());
  EXPECT_EQ(console_text(), "hello");
}

}  // namespace
}  // namespace hv::emu
