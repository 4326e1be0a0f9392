// Runs every guest under guests/ through the hv binary and, as the reference, under QEMU's TCG,
// and checks both against the same expected console output and exit status. A guest bug shows
// as a QEMU failure; an engine bug as an hv failure with QEMU passing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "host_state.hpp"
#include "process.hpp"

namespace hv::test {
namespace {

bool kvm_usable() {
  return access("/dev/kvm", R_OK | W_OK) == 0;
}
bool kvm_is_pvm() {
  return std::filesystem::exists("/sys/module/kvm_pvm");
}

struct GuestCase {
  std::string name;   // test name
  std::string image;  // file under the guests build folder
  std::vector<std::string> hv_args;
  std::vector<std::string> qemu_args;  // besides the common ones
  std::string expected;                // file under guests/expected
  int hv_status;
  int qemu_status;
  bool needs_hardware_kvm = false;  // uses what the PVM host cannot run (see README)
  double timeout_seconds = 0;       // hv --timeout, for guests that never end
};

// Keeps test listings readable: gtest would otherwise print the struct's bytes.
void PrintTo(const GuestCase& c, std::ostream* os) {
  *os << c.name;
}

std::vector<GuestCase> guest_cases() {
  std::vector<GuestCase> cases = {
      {"hello_multiboot", "hello.elf", {}, {"-kernel"}, "hello.out", 1, 1},
      {"hello_elf32", "hello.elf", {"--format", "elf"}, {}, "hello.out", 1, 1},
      {"hello64_multiboot", "hello64.elf", {}, {"-kernel"}, "hello64.out", 1, 1},
      {"hello64_elf64", "hello64.elf", {"--format", "elf"}, {}, "hello64.out", 1, 1},
      {"modes_flat", "modes.bin", {"--format", "flat"}, {"-drive-floppy"}, "modes.out", 1, 1, true},
      {"minios", "minios.elf", {}, {"-kernel"}, "minios.out", 1, 1, true},
      {"triple_fault", "triple.elf", {}, {"-kernel"}, "triple.out", 12, 0},
      {"loop_timeout", "loop.elf", {}, {"-kernel"}, "loop.out", 14, -1, false, 1.0},
      {"outloop", "outloop.elf", {}, {"-kernel"}, "outloop.out", 1, 1},
      {"cpubench", "cpubench.elf", {}, {"-kernel"}, "cpubench.out", 1, 1, true},
  };
  for (int cpus : {1, 2, 4}) {
    cases.push_back({"smp_" + std::to_string(cpus),
                     "smp.elf",
                     {"--cpus", std::to_string(cpus)},
                     {"-kernel", "-smp", std::to_string(cpus)},
                     "smp-" + std::to_string(cpus) + ".out",
                     1,
                     1});
  }
  return cases;
}

class GuestTest : public ::testing::TestWithParam<GuestCase> {
 protected:
  std::string image_path() const { return std::string(HV_GUESTS_DIR) + "/" + GetParam().image; }
  std::string expected_output() const {
    return read_text(std::string(HV_EXPECTED_DIR) + "/" + GetParam().expected);
  }
};

// Runs the guest through the hv binary on one engine and checks output, status and the
// crash/timeout reports.
void expect_guest_runs(const GuestCase& c, const std::string& engine, const std::string& image,
                       const std::string& expected) {
  std::vector<std::string> argv = {HV_BINARY, "run", "--engine", engine, "--kernel", image};
  argv.insert(argv.end(), c.hv_args.begin(), c.hv_args.end());
  if (c.timeout_seconds > 0) {
    argv.push_back("--timeout");
    argv.push_back(std::to_string(c.timeout_seconds));
  }
  ProcessResult r = run_process(argv, std::chrono::seconds(120));
  ASSERT_FALSE(r.timed_out) << "hv did not finish; stdout:\n" << r.out << "\nstderr:\n" << r.err;
  EXPECT_EQ(r.out, expected) << "stderr:\n" << r.err;
  EXPECT_EQ(r.exit_status, c.hv_status) << "stderr:\n" << r.err;
  if (c.hv_status == 12) {
    EXPECT_NE(r.err.find("guest crashed: vCPU 0: guest triple fault"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("rip="), std::string::npos) << "no register dump:\n" << r.err;
  }
  if (c.hv_status == 14) {
    EXPECT_NE(r.err.find("timeout"), std::string::npos) << r.err;
  }
}

TEST_P(GuestTest, RunsOnKvmEngine) {
  const GuestCase& c = GetParam();
  if (!kvm_usable()) {
    GTEST_SKIP() << "/dev/kvm is missing or not accessible on this host";
  }
  if (c.needs_hardware_kvm && kvm_is_pvm()) {
    GTEST_SKIP() << "this host's /dev/kvm is the PVM nested hypervisor, which cannot run this "
                    "guest (ring-3 syscall/int 0x80, or 32-bit paging without long mode); it runs "
                    "under QEMU (RunsOnQemuTcg) and on hardware KVM";
  }
  expect_guest_runs(c, "kvm", image_path(), expected_output());
}

// The software CPU needs no /dev/kvm and must give byte-identical output and the same status.
TEST_P(GuestTest, RunsOnEmulationEngine) {
  const GuestCase& c = GetParam();
  expect_guest_runs(c, "emulate", image_path(), expected_output());
}

TEST_P(GuestTest, RunsOnQemuTcg) {
  const GuestCase& c = GetParam();
  if (c.qemu_args.empty()) {
    GTEST_SKIP() << "QEMU's -kernel cannot start this boot path (hv-only entry)";
  }
  if (!executable_exists("qemu-system-x86_64")) {
    GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  }
  std::vector<std::string> argv = {"qemu-system-x86_64",
                                   "-accel",
                                   "tcg",
                                   "-M",
                                   "pc",
                                   "-m",
                                   "128",
                                   "-display",
                                   "none",
                                   "-no-reboot",
                                   "-serial",
                                   "stdio",
                                   "-device",
                                   "isa-debug-exit,iobase=0xf4,iosize=0x04"};
  for (size_t i = 0; i < c.qemu_args.size(); ++i) {
    if (c.qemu_args[i] == "-kernel") {
      argv.insert(argv.end(), {"-kernel", image_path()});
    } else if (c.qemu_args[i] == "-drive-floppy") {
      argv.insert(argv.end(), {"-drive", "format=raw,if=floppy,file=" + image_path()});
    } else {
      argv.push_back(c.qemu_args[i]);
    }
  }
  const bool endless = c.qemu_status < 0;
  ProcessResult r = run_process(argv, endless ? std::chrono::seconds(3) : std::chrono::seconds(60));
  EXPECT_EQ(r.out, expected_output()) << "stderr:\n" << r.err;
  if (endless) {
    EXPECT_TRUE(r.timed_out) << "the guest was expected to run until killed";
  } else {
    ASSERT_FALSE(r.timed_out) << "QEMU did not finish; stdout:\n" << r.out;
    EXPECT_EQ(r.exit_status, c.qemu_status) << "stderr:\n" << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(Guests, GuestTest, ::testing::ValuesIn(guest_cases()),
                         [](const auto& test_info) { return test_info.param.name; });

}  // namespace
}  // namespace hv::test
