// Bad input must get a clear message naming what was wrong and a distinct exit status
// (src/common/exit_status.hpp), and must leave nothing behind.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "process.hpp"

namespace hv::test {
namespace {

namespace fs = std::filesystem;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/hv-cli-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_file(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  static std::string hello() { return std::string(HV_GUESTS_DIR) + "/hello.elf"; }
  static ProcessResult hv(std::vector<std::string> args) {
    args.insert(args.begin(), HV_BINARY);
    return run_process(args, std::chrono::seconds(30));
  }

  std::string dir_;
};

TEST_F(CliTest, UnknownFlagIsAUsageError) {
  ProcessResult r = hv({"run", "--kernel", hello(), "--no-such-flag"});
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
}

TEST_F(CliTest, MissingSubcommandOrKernelIsAUsageError) {
  EXPECT_EQ(hv({}).exit_status, 2);
  ProcessResult r = hv({"run"});
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_NE(r.err.find("--kernel"), std::string::npos) << r.err;
}

TEST_F(CliTest, MissingKernelFileNamesThePath) {
  ProcessResult r = hv({"run", "--kernel", dir_ + "/nope.elf"});
  EXPECT_EQ(r.exit_status, 4);
  EXPECT_NE(r.err.find(dir_ + "/nope.elf"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("No such file"), std::string::npos) << r.err;
}

TEST_F(CliTest, MissingInitrdNamesThePath) {
  ProcessResult r = hv({"run", "--kernel", hello(), "--initrd", dir_ + "/initrd.img"});
  EXPECT_EQ(r.exit_status, 4);
  EXPECT_NE(r.err.find(dir_ + "/initrd.img"), std::string::npos) << r.err;
}

TEST_F(CliTest, KernelThatIsADirectoryIsRejected) {
  ProcessResult r = hv({"run", "--kernel", dir_});
  EXPECT_EQ(r.exit_status, 4);
  EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
}

TEST_F(CliTest, RandomBytesAreAnUnrecognisedFormat) {
  std::mt19937 rng(42);
  std::string junk(8192, '\0');
  for (char& c : junk) {
    c = static_cast<char>(rng());
  }
  ProcessResult r = hv({"run", "--kernel", write_file("junk.bin", junk)});
  EXPECT_EQ(r.exit_status, 6);
  EXPECT_NE(r.err.find("unrecognised kernel format"), std::string::npos) << r.err;
}

TEST_F(CliTest, EmptyKernelIsRejected) {
  ProcessResult r = hv({"run", "--kernel", write_file("empty", "")});
  EXPECT_EQ(r.exit_status, 6) << r.err;
}

TEST_F(CliTest, TruncatedElfIsRejected) {
  std::ifstream in(hello(), std::ios::binary);
  std::string head(100, '\0');
  in.read(head.data(), 100);
  ProcessResult r = hv({"run", "--kernel", write_file("short.elf", head), "--format", "elf"});
  EXPECT_EQ(r.exit_status, 6) << r.err;
  EXPECT_NE(r.err.find("short.elf"), std::string::npos) << r.err;
}

TEST_F(CliTest, ForcedFormatThatDoesNotMatchIsRejected) {
  ProcessResult r = hv({"run", "--kernel", hello(), "--format", "linux"});
  EXPECT_EQ(r.exit_status, 6) << r.err;
  ProcessResult bad = hv({"run", "--kernel", hello(), "--format", "pe"});
  EXPECT_EQ(bad.exit_status, 2) << bad.err;
}

TEST_F(CliTest, MemorySizeIsChecked) {
  ProcessResult small = hv({"run", "--kernel", hello(), "--memory", "1M"});
  EXPECT_EQ(small.exit_status, 8);
  EXPECT_NE(small.err.find("too small"), std::string::npos) << small.err;
  ProcessResult large = hv({"run", "--kernel", hello(), "--memory", "64T"});
  EXPECT_EQ(large.exit_status, 8);
  EXPECT_NE(large.err.find("larger than this host"), std::string::npos) << large.err;
  ProcessResult garbage = hv({"run", "--kernel", hello(), "--memory", "lots"});
  EXPECT_EQ(garbage.exit_status, 2);
  EXPECT_NE(garbage.err.find("lots"), std::string::npos) << garbage.err;
}

TEST_F(CliTest, CpuCountIsChecked) {
  EXPECT_EQ(hv({"run", "--kernel", hello(), "--cpus", "0"}).exit_status, 2);
  EXPECT_EQ(hv({"run", "--kernel", hello(), "--cpus", "1000"}).exit_status, 2);
}

TEST_F(CliTest, UnknownEngineIsAUsageError) {
  ProcessResult r = hv({"run", "--engine", "warp", "--kernel", hello()});
  EXPECT_EQ(r.exit_status, 2);
  EXPECT_NE(r.err.find("warp"), std::string::npos) << r.err;
}

TEST_F(CliTest, MissingKvmDeviceIsReported) {
  setenv("HV_KVM_DEVICE", (dir_ + "/kvm").c_str(), 1);
  ProcessResult r = hv({"run", "--kernel", hello()});
  unsetenv("HV_KVM_DEVICE");
  EXPECT_EQ(r.exit_status, 10);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
}

TEST_F(CliTest, NonKvmDeviceIsReported) {
  setenv("HV_KVM_DEVICE", "/dev/null", 1);
  ProcessResult r = hv({"run", "--kernel", hello()});
  unsetenv("HV_KVM_DEVICE");
  EXPECT_EQ(r.exit_status, 10);
  EXPECT_NE(r.err.find("/dev/null is not a KVM device"), std::string::npos) << r.err;
}

TEST_F(CliTest, InaccessibleKvmDeviceIsReported) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to create a device-less permission test file";
  }
  // Root bypasses file permissions, so test with an unprivileged user via setpriv when present.
  if (!executable_exists("setpriv")) {
    GTEST_SKIP() << "setpriv (util-linux) is not installed";
  }
  ProcessResult r = run_process({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 HV_BINARY, "run", "--kernel", hello()},
                                std::chrono::seconds(30));
  if (r.exit_status == 4) {
    GTEST_SKIP() << "user nobody cannot read the guest image here: " << r.err;
  }
  EXPECT_EQ(r.exit_status, 10) << r.err;
  EXPECT_NE(r.err.find("not accessible"), std::string::npos) << r.err;
}

TEST_F(CliTest, TraceExitsCountsSerialWrites) {
  if (access("/dev/kvm", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "/dev/kvm is missing or not accessible on this host";
  }
  ProcessResult r = hv({"run", "--kernel", hello(), "--trace-exits"});
  EXPECT_EQ(r.exit_status, 1) << r.err;
  EXPECT_NE(r.err.find("VM exits:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("port I/O"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("0x03f8 out"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("0x00f4 out"), std::string::npos) << r.err;
}

TEST_F(CliTest, TraceListsEveryExecutedInstructionAndInterrupt) {
  const std::string trace = dir_ + "/trace.txt";
  const std::string minios = std::string(HV_GUESTS_DIR) + "/minios.elf";
  ProcessResult r =
      hv({"run", "--engine", "emulate", "--kernel", minios, "--trace", trace, "--trace-exits"});
  EXPECT_EQ(r.exit_status, 1) << r.err;
  // One line per instruction: as many as the engine counted, whatever the fusion of pairs, plus
  // the ones that faulted (traced, then not retired).
  std::ifstream in(trace);
  std::string line;
  uint64_t instructions = 0, interrupts = 0, exceptions = 0, fused_pairs = 0;
  bool saw_syscall = false;
  while (std::getline(in, line)) {
    if (line.find(" interrupt vector ") != std::string::npos) {
      ++interrupts;
    } else if (line.find(" exception vector ") != std::string::npos) {
      ++exceptions;
    } else {
      ASSERT_EQ(line.rfind("cpu0 ", 0), 0u) << line;
      ASSERT_EQ(line.find("(undecodable)"), std::string::npos) << line;
      const bool pair = line.find("; j") != std::string::npos;
      instructions += pair ? 2 : 1;
      fused_pairs += pair ? 1 : 0;
      saw_syscall |= line.find("  syscall") != std::string::npos;
    }
  }
  const size_t counted = r.err.find("instructions executed");
  ASSERT_NE(counted, std::string::npos) << r.err;
  const size_t number_start = r.err.rfind('\n', counted) + 1;
  EXPECT_EQ(instructions,
            std::stoull(r.err.substr(number_start, counted - number_start)) + exceptions);
  EXPECT_GT(interrupts, 0u);  // minios is preempted by the PIT
  EXPECT_EQ(exceptions, 2u);  // the two programs it kills: #PF and #GP
  EXPECT_GT(fused_pairs, 0u);
  EXPECT_TRUE(saw_syscall);
}

TEST_F(CliTest, TraceIsRefusedForTheKvmEngineAndAnUnwritablePathIsNamed) {
  ProcessResult r = hv({"run", "--engine", "kvm", "--kernel", hello(), "--trace", "-"});
  EXPECT_EQ(r.exit_status, 2) << r.err;
  EXPECT_NE(r.err.find("--trace needs --engine emulate"), std::string::npos) << r.err;
  const std::string bad = dir_ + "/missing-dir/trace.txt";
  r = hv({"run", "--engine", "emulate", "--kernel", hello(), "--trace", bad});
  EXPECT_EQ(r.exit_status, 16) << r.err;
  EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
}

}  // namespace
}  // namespace hv::test
