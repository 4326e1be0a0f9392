#include "container/device_filter.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/fd.hpp"
#include "container/cgroups.hpp"

namespace hv::container {
namespace {

namespace fs = std::filesystem;

// Runs a device program the way the kernel would, for the instructions the compiler emits; any
// other instruction fails the test. Returns the program's verdict (1 allow, 0 deny).
int run_program(const std::vector<bpf_insn>& program, char type, uint32_t major, uint32_t minor,
                const std::string& access) {
  uint32_t access_bits = 0;
  for (char c : access) {
    access_bits |= c == 'r' ? BPF_DEVCG_ACC_READ : c == 'w' ? BPF_DEVCG_ACC_WRITE : 0;
    access_bits |= c == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
  }
  const bpf_cgroup_dev_ctx context{
      (access_bits << 16) | (type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK), major, minor};
  uint64_t reg[11] = {};
  size_t pc = 0;
  for (int steps = 0; steps < 10000 && pc < program.size(); ++steps) {
    const bpf_insn& insn = program[pc++];
    const uint8_t dst = insn.dst_reg, src = insn.src_reg;
    switch (insn.code) {
      case BPF_LDX | BPF_W | BPF_MEM: {
        EXPECT_EQ(src, 1);
        uint32_t word = 0;
        std::memcpy(&word, reinterpret_cast<const char*>(&context) + insn.off, 4);
        reg[dst] = word;
        break;
      }
      case BPF_ALU | BPF_AND | BPF_K:
        reg[dst] = static_cast<uint32_t>(reg[dst] & static_cast<uint32_t>(insn.imm));
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        reg[dst] = static_cast<uint32_t>(reg[dst]) >> insn.imm;
        break;
      case BPF_ALU | BPF_MOV | BPF_X:
        reg[dst] = static_cast<uint32_t>(reg[src]);
        break;
      case BPF_ALU64 | BPF_MOV | BPF_K:
        reg[dst] = static_cast<uint64_t>(static_cast<int64_t>(insn.imm));
        break;
      case BPF_JMP32 | BPF_JNE | BPF_K:
        if (static_cast<uint32_t>(reg[dst]) != static_cast<uint32_t>(insn.imm)) {
          pc += static_cast<size_t>(insn.off);
        }
        break;
      case BPF_JMP | BPF_EXIT:
        return static_cast<int>(reg[0]);
      default:
        ADD_FAILURE() << "unexpected instruction code " << int(insn.code);
        return -1;
    }
  }
  ADD_FAILURE() << "the program ran off its end";
  return -1;
}

oci::DeviceRule rule(bool allow, char type, std::optional<int64_t> major,
                     std::optional<int64_t> minor, std::string access) {
  return {allow, type, major, minor, std::move(access)};
}

TEST(DeviceFilter, NoRulesAllowsEverything) {
  const auto program = compile_device_filter({});
  EXPECT_EQ(run_program(program, 'c', 1, 3, "rw"), 1);
  EXPECT_EQ(run_program(program, 'b', 8, 0, "m"), 1);
}

TEST(DeviceFilter, DenyAllThenAllowList) {
  const auto program = compile_device_filter({
      rule(false, 'a', std::nullopt, std::nullopt, "rwm"),
      rule(true, 'c', 1, 3, "rwm"),              // /dev/null
      rule(true, 'c', 136, std::nullopt, "rw"),  // any /dev/pts/N, no mknod
      rule(true, 'b', std::nullopt, std::nullopt, "m"),
  });
  EXPECT_EQ(run_program(program, 'c', 1, 3, "rw"), 1);
  EXPECT_EQ(run_program(program, 'c', 1, 3, "m"), 1);
  EXPECT_EQ(run_program(program, 'c', 1, 5, "r"), 0);  // /dev/zero: not listed
  EXPECT_EQ(run_program(program, 'b', 1, 3, "r"), 0);  // same numbers, other type
  EXPECT_EQ(run_program(program, 'c', 136, 7, "rw"), 1);
  EXPECT_EQ(run_program(program, 'c', 136, 7, "m"), 0);
  EXPECT_EQ(run_program(program, 'c', 136, 7, "rwm"), 0);  // asks more than the rule gives
  EXPECT_EQ(run_program(program, 'b', 8, 0, "m"), 1);
  EXPECT_EQ(run_program(program, 'b', 8, 0, "r"), 0);
}

TEST(DeviceFilter, LaterRulesOverrideEarlierOnes) {
  const auto program = compile_device_filter({
      rule(true, 'c', 1, std::nullopt, "rwm"),
      rule(false, 'c', 1, 1, "rwm"),  // /dev/mem carved out of major 1
      rule(true, 'c', 1, 1, "r"),     // then its reading allowed again
  });
  EXPECT_EQ(run_program(program, 'c', 1, 5, "rw"), 1);
  EXPECT_EQ(run_program(program, 'c', 1, 1, "r"), 1);
  EXPECT_EQ(run_program(program, 'c', 1, 1, "w"), 0);
  EXPECT_EQ(run_program(program, 'c', 4, 1, "w"), 1);  // nothing matches: allowed, as in v1
}

TEST(DeviceFilter, CatchAllRuleEndsTheProgram) {
  // An allow-all after specific denials overrides them all: the denials are unreachable and
  // must not be emitted (the verifier refuses unreachable code).
  const auto program = compile_device_filter({
      rule(false, 'c', 1, 3, "rwm"),
      rule(true, 'a', std::nullopt, std::nullopt, "rwm"),
  });
  EXPECT_EQ(run_program(program, 'c', 1, 3, "rw"), 1);
  EXPECT_EQ(program.size(), 8u);  // 6 loads + mov + exit
}

TEST(DeviceFilter, ImpossibleRulesAreLeftOut) {
  const auto program = compile_device_filter({
      rule(false, 'a', std::nullopt, std::nullopt, "rwm"),
      rule(true, 'c', -1, 3, "rwm"),
      rule(true, 'c', int64_t{1} << 33, 3, "rwm"),
      rule(true, 'c', 1, 3, ""),
      rule(true, 'c', 1, 3, "x"),
      rule(true, 'p', 1, 3, "rwm"),
  });
  EXPECT_EQ(run_program(program, 'c', 1, 3, "r"), 0);
}

TEST(DeviceFilter, HighNumbersCompareAsUnsigned32Bit) {
  const auto program = compile_device_filter({
      rule(false, 'a', std::nullopt, std::nullopt, "rwm"),
      rule(true, 'c', 0xfffff000, 0x80000001, "rwm"),
  });
  EXPECT_EQ(run_program(program, 'c', 0xfffff000, 0x80000001, "rw"), 1);
  EXPECT_EQ(run_program(program, 'c', 0xfffff000, 1, "rw"), 0);
}

// The kernel verifies, attaches and enforces the program: a child in a v2 cgroup with a
// "deny all but /dev/null" program can open /dev/null but not /dev/zero. Needs root and a
// cgroup v2 mount (pure v2, or a hybrid host's unified hierarchy).
TEST(DeviceFilter, KernelEnforcesTheProgramInAV2Cgroup) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "attaching cgroup programs needs root";
  }
  Result<CgroupLayout> layout = CgroupLayout::detect();
  if (!layout.ok() || layout->v2_mount.empty()) {
    GTEST_SKIP() << "no cgroup v2 mount on this host";
  }
  const std::string dir = layout->v2_mount + "/hv-device-filter-test-" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << std::strerror(errno);
  {
    Fd directory(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(directory.valid());
    const auto program = compile_device_filter({
        rule(false, 'a', std::nullopt, std::nullopt, "rwm"),
        rule(true, 'c', 1, 3, "rw"),
    });
    Status attached = attach_device_filter(directory.get(), program);
    ASSERT_TRUE(attached.ok()) << attached.error().to_string();
  }
  const pid_t child = ::fork();
  if (child == 0) {
    std::ofstream(dir + "/cgroup.procs") << ::getpid();
    const int null_fd = ::open("/dev/null", O_RDWR);
    const int zero_fd = ::open("/dev/zero", O_RDONLY);
    const int zero_errno = errno;
    ::_exit(null_fd >= 0 && zero_fd < 0 && zero_errno == EPERM ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "in the cgroup /dev/null must open and /dev/zero must fail with EPERM";
  EXPECT_EQ(::rmdir(dir.c_str()), 0) << std::strerror(errno);
}

}  // namespace
}  // namespace hv::container
