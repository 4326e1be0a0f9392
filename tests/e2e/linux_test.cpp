// Debian's stock cloud kernel with hv's busybox initramfs (guests/linux/build-images.sh) on the
// software CPU: a scripted self-test on 1 and 2 vCPUs, an interactive shell on a terminal, reboot
// and poweroff. tools/test.sh builds the images and points HV_LINUX_IMAGES at them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "process.hpp"

namespace hv::test {
namespace {

using namespace std::chrono_literals;

// Booting to /init takes about 10 s of one host core on the software CPU; the limits leave room
// for a loaded CI machine running two tests at once.
constexpr auto kBootLimit = 150s;

class LinuxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("HV_LINUX_IMAGES");
    if (dir == nullptr || *dir == 0) {
      GTEST_SKIP() << "HV_LINUX_IMAGES is not set: run guests/linux/build-images.sh and point "
                      "it at the cache (tools/test.sh does both)";
    }
    images_ = dir;
    std::ifstream release(images_ + "/kernel-release");
    ASSERT_TRUE(std::getline(release, kernel_release_))
        << images_ << "/kernel-release is missing: run guests/linux/build-images.sh";
  }

  std::vector<std::string> hv_args(const std::string& run, uint32_t cpus,
                                   const std::string& more_cmdline = "") const {
    return {HV_BINARY,   "run",
            "--engine",  "emulate",
            "--kernel",  images_ + "/vmlinuz",
            "--initrd",  images_ + "/initrd.img",
            "--cpus",    std::to_string(cpus),
            "--cmdline", "console=ttyS0 hv.run=" + run + more_cmdline,
            "--timeout", "140"};
  }

  // Lines of `text` that start with `prefix`, with the prefix and any trailing CR removed.
  static std::vector<std::string> lines_with(const std::string& text, const std::string& prefix) {
    std::vector<std::string> found;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (line.starts_with(prefix)) {
        found.push_back(line.substr(prefix.size()));
      }
    }
    return found;
  }

  // The kernel's complaints: warnings with a backtrace, oopses, BUG lines, panics, taint.
  static void expect_clean_boot_log(const std::string& log) {
    const std::regex bad(R"(WARNING:|Oops|BUG[: ]|Kernel panic|Call Trace|Tainted:|segfault at|)"
                         R"(traps: |invalid opcode|general protection|ACPI (Error|BIOS Error))");
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
      EXPECT_FALSE(std::regex_search(line, bad)) << "kernel log line: " << line;
    }
  }

  void run_selftest(uint32_t cpus) {
    ProcessResult r = run_process(hv_args("selftest", cpus), kBootLimit);
    ASSERT_FALSE(r.timed_out) << r.out << r.err;
    EXPECT_EQ(r.exit_status, 0) << r.out << r.err;  // poweroff -f through ACPI S5
    std::vector<std::string> lines = lines_with(r.out, "selftest: ");
    ASSERT_GE(lines.size(), 10u + cpus) << r.out;
    size_t i = 0;
    EXPECT_EQ(lines[i++], "uname -r " + kernel_release_);
    EXPECT_EQ(lines[i++], "cpus online " + std::to_string(cpus));
    // One busy loop pinned to each CPU reports the CPU it ran on; any order.
    std::vector<std::string> ran;
    for (uint32_t c = 0; c < cpus; ++c) {
      ran.push_back(lines[i++]);
    }
    std::sort(ran.begin(), ran.end());
    for (uint32_t c = 0; c < cpus; ++c) {
      EXPECT_EQ(ran[c], "ran on cpu " + std::to_string(c));
    }
    EXPECT_EQ(lines[i++], "awk sum 333833500");  // sum of squares 1..1000
    // build-images.sh writes the known file; its hash, computed on the host:
    // awk 'BEGIN { for (i = 0; i < 4096; i++) printf "hv-known-file-%08d\n", i * 7919 }' |
    // sha256sum
    EXPECT_EQ(lines[i++],
              "sha256 4d4eb3fe2ee83b58b4a7f82be29ddd1fe9034e5fe8c34243f33b5bf61b52a434");
    EXPECT_EQ(lines[i++], "gzip roundtrip ok");
    EXPECT_EQ(lines[i++], "tmpfs read hv tmpfs line");
    // `sleep 1` measured by the guest kernel's clock, less the cost of starting a process:
    // about a second (CI runs two of these guests at once on two cores: allow some slack).
    ASSERT_TRUE(lines[i].starts_with("sleep 1 took ")) << lines[i];
    const int centiseconds = std::stoi(lines[i++].substr(13));
    EXPECT_GE(centiseconds, 90) << "sleep 1 took " << centiseconds << " cs";
    EXPECT_LE(centiseconds, 200) << "sleep 1 took " << centiseconds << " cs";
    // The guest's wall clock (read from the RTC at boot, then kept by the TSC) agrees with the
    // host's: it printed this line less than a few seconds before hv ended.
    ASSERT_TRUE(lines[i].starts_with("epoch seconds ")) << lines[i];
    const long long guest_time = std::stoll(lines[i++].substr(14));
    const long long host_time = static_cast<long long>(std::time(nullptr));
    EXPECT_LE(guest_time, host_time + 2);
    EXPECT_GE(guest_time, host_time - 30);
    EXPECT_EQ(lines[i++], "clocksource tsc");
    EXPECT_EQ(lines[i++], "done");
    EXPECT_NE(r.out.find("reboot: Power down"), std::string::npos) << r.out;
    expect_clean_boot_log(r.out);
  }

  std::string images_;
  std::string kernel_release_;
};

TEST_F(LinuxTest, SelftestOnOneCpu) {
  run_selftest(1);
}

TEST_F(LinuxTest, SelftestOnTwoCpus) {
  run_selftest(2);
}

TEST_F(LinuxTest, ResetEndsHvWithNoReboot) {
  std::vector<std::string> args = hv_args("reboot", 1);
  args.push_back("--no-reboot");
  ProcessResult r = run_process(args, kBootLimit);
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("reboot: Restarting system"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("exiting (--no-reboot)"), std::string::npos) << r.err;
}

// A user at a terminal: line editing, Ctrl-C to the guest's foreground job, reboot -f restarting
// the guest, and the Ctrl-A x escape ending hv.
// An ext4 image made on the host by mkfs.ext4 -d, on the legacy IDE disk that Debian's
// pata_legacy drives: read-write across two boots (poweroff between), and every byte the guest
// wrote is on the host's file afterwards, which e2fsck finds consistent.
TEST_F(LinuxTest, Ext4OnTheIdeDiskPersistsAcrossBoots) {
  if (!executable_exists("mkfs.ext4") || !executable_exists("debugfs")) {
    GTEST_SKIP() << "mkfs.ext4/debugfs missing: apt-get install e2fsprogs";
  }
  char pattern[] = "/tmp/hv-disk-test-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  const std::string image = dir + "/disk.img";
  ::mkdir((dir + "/content").c_str(), 0755);
  std::ofstream(dir + "/content/greeting") << "hello from the host\n";
  ASSERT_EQ(run_process({"truncate", "-s", "32M", image}).exit_status, 0);
  ProcessResult mkfs = run_process({"mkfs.ext4", "-q", "-F", "-d", dir + "/content", image});
  ASSERT_EQ(mkfs.exit_status, 0) << mkfs.err;

  std::vector<std::string> hashes;
  for (int boot = 1; boot <= 2; ++boot) {
    std::vector<std::string> args = hv_args("disk", 1, " hv.modules=pata_legacy,sd_mod");
    args.insert(args.end(), {"--disk", image + ",if=ide"});
    ProcessResult r = run_process(args, kBootLimit);
    ASSERT_FALSE(r.timed_out) << r.out << r.err;
    ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
    const std::vector<std::string> lines = lines_with(r.out, "disk: ");
    ASSERT_EQ(lines.size(), 4u) << r.out;
    EXPECT_EQ(lines[0], "greeting hello from the host");
    EXPECT_EQ(lines[1], "boot " + std::to_string(boot));
    ASSERT_TRUE(lines[2].starts_with("random-" + std::to_string(boot) + " ")) << lines[2];
    hashes.push_back(lines[2].substr(lines[2].find(' ') + 1));
    EXPECT_EQ(lines[3], "unmounted");
    EXPECT_NE(r.out.find("ata1.00: ATA-8: HV ATA DISK"), std::string::npos) << r.out;
    expect_clean_boot_log(r.out);
  }
  for (int boot = 1; boot <= 2; ++boot) {
    const std::string copy = dir + "/random-" + std::to_string(boot);
    ProcessResult dump =
        run_process({"debugfs", "-R", "dump /random-" + std::to_string(boot) + " " + copy, image});
    ASSERT_EQ(dump.exit_status, 0) << dump.err;
    ProcessResult sum = run_process({"sha256sum", copy});
    EXPECT_EQ(sum.out.substr(0, 64), hashes[boot - 1]) << "random-" << boot;
  }
  ProcessResult fsck = run_process({"e2fsck", "-fn", image});
  EXPECT_EQ(fsck.exit_status, 0) << fsck.out << fsck.err;
  run_process({"rm", "-rf", dir});
}

// virtio-rng over virtio-mmio, found by Debian's kernel through the DSDT (its virtio_mmio has
// no command-line device list): the kernel picks it as its hardware RNG and reads from it.
TEST_F(LinuxTest, VirtioRngFoundThroughAcpiFeedsHwrng) {
  std::vector<std::string> args = hv_args("rng", 1);
  args.push_back("--rng");
  ProcessResult r = run_process(args, kBootLimit);
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  const std::vector<std::string> lines = lines_with(r.out, "rng: ");
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0], "current virtio_rng.0");
  ASSERT_TRUE(lines[1].starts_with("bytes ")) << lines[1];
  const std::string hex = lines[1].substr(6);
  EXPECT_EQ(hex.size(), 64u) << hex;
  EXPECT_NE(hex, std::string(64, '0'));
  EXPECT_EQ(lines[2], "interrupts 1");  // one line: the device's IRQ
  expect_clean_boot_log(r.out);
}

TEST_F(LinuxTest, InteractiveShellOnATerminal) {
  std::vector<std::string> args = hv_args("shell", 1);
  TerminalSession session(args);
  ASSERT_TRUE(session.expect("hv-init: busybox shell", kBootLimit)) << session.output();
  ASSERT_TRUE(session.expect("# ", 30s)) << session.output();

  // "echo abcX", Backspace (DEL), "d": the guest's line editor leaves "abcd".
  session.type(
      "echo abcX\x7f"
      "d-$((6 * 7))\r");
  EXPECT_TRUE(session.expect("abcd-42", 30s)) << session.output();

  // Ctrl-C ends the guest's foreground job, not hv: the shell reports status 130 (SIGINT).
  session.type("sleep 100\r");
  ASSERT_TRUE(session.expect("sleep 100", 30s)) << session.output();
  std::this_thread::sleep_for(1s);
  session.type("\x03");
  session.type("echo status-$?\r");
  EXPECT_TRUE(session.expect("status-130", 30s)) << session.output();

  // reboot -f resets the machine; hv boots the guest again on a fresh machine.
  session.type("reboot -f\r");
  EXPECT_TRUE(session.expect("restarting the guest", 30s)) << session.output();
  ASSERT_TRUE(session.expect("hv-init: busybox shell", kBootLimit)) << session.output();
  ASSERT_TRUE(session.expect("# ", 30s)) << session.output();
  session.type("echo second-boot-$((1 + 1))\r");
  EXPECT_TRUE(session.expect("second-boot-2", 30s)) << session.output();

  // Ctrl-A x quits hv itself with status 0.
  session.type("\x01x");
  EXPECT_EQ(session.wait(30s), 0) << session.output();
}

}  // namespace
}  // namespace hv::test
