// Debian's stock cloud kernel with hv's busybox initramfs (guests/linux/build-images.sh) on the
// software CPU: a scripted self-test on 1 and 2 vCPUs, an interactive shell on a terminal, reboot
// and poweroff. tools/test.sh builds the images and points HV_LINUX_IMAGES at them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <regex>
#include <span>
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

  void expect_ext4_disk_persists(const std::string& disk_option, const std::string& device,
                                 const std::string& modules, const std::string& kernel_line);

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
// An ext4 image made by mkfs.ext4 -d is mounted read-write; a file written in one boot is read
// in the next, and is byte-identical on the host afterwards.
void LinuxTest::expect_ext4_disk_persists(const std::string& disk_option, const std::string& device,
                                          const std::string& modules,
                                          const std::string& kernel_line) {
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
    std::string cmdline = " hv.disk=" + device;
    if (!modules.empty()) {
      cmdline += " hv.modules=" + modules;
    }
    std::vector<std::string> args = hv_args("disk", 1, cmdline);
    args.insert(args.end(), {"--disk", image + disk_option});
    ProcessResult r = run_process(args, kBootLimit);
    ASSERT_FALSE(r.timed_out) << r.out << r.err;
    ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
    std::vector<std::string> lines = lines_with(r.out, "disk: ");
    std::erase_if(lines, [](const std::string& line) { return line.starts_with("serial "); });
    ASSERT_EQ(lines.size(), 4u) << r.out;
    EXPECT_EQ(lines[0], "greeting hello from the host");
    EXPECT_EQ(lines[1], "boot " + std::to_string(boot));
    ASSERT_TRUE(lines[2].starts_with("random-" + std::to_string(boot) + " ")) << lines[2];
    hashes.push_back(lines[2].substr(lines[2].find(' ') + 1));
    EXPECT_EQ(lines[3], "unmounted");
    EXPECT_NE(r.out.find(kernel_line), std::string::npos) << r.out;
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

TEST_F(LinuxTest, Ext4OnTheIdeDiskPersistsAcrossBoots) {
  expect_ext4_disk_persists(",if=ide", "/dev/sda", "pata_legacy,sd_mod",
                            "ata1.00: ATA-8: HV ATA DISK");
}

// The same on virtio-blk, found through the DSDT; 32 MiB are 65536 sectors.
TEST_F(LinuxTest, Ext4OnTheVirtioDiskPersistsAcrossBoots) {
  expect_ext4_disk_persists("", "/dev/vda", "", "[vda] 65536 512-byte logical blocks");
}

// A read-only virtio disk with a serial number: the kernel sees the flag (VIRTIO_BLK_F_RO) and
// the serial (GET_ID); nothing reaches the image.
TEST_F(LinuxTest, ReadOnlyVirtioDiskMountsOnlyReadOnly) {
  if (!executable_exists("mkfs.ext4")) {
    GTEST_SKIP() << "mkfs.ext4 missing: apt-get install e2fsprogs";
  }
  char pattern[] = "/tmp/hv-disk-test-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  const std::string image = dir + "/disk.img";
  ASSERT_EQ(run_process({"truncate", "-s", "8M", image}).exit_status, 0);
  ASSERT_EQ(run_process({"mkfs.ext4", "-q", "-F", image}).exit_status, 0);
  ProcessResult before = run_process({"sha256sum", image});
  std::vector<std::string> args = hv_args("disk", 1, " hv.disk=/dev/vda");
  args.insert(args.end(), {"--disk", image + ",ro,serial=hv-readonly"});
  ProcessResult r = run_process(args, kBootLimit);
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  EXPECT_EQ(r.exit_status, 0) << r.out << r.err;
  // The kernel refuses to open the disk for writing; busybox mount falls back to read-only,
  // and writing then fails in the guest.
  EXPECT_NE(r.out.find("disk: serial hv-readonly"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/dev/vda: Can't open blockdev"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("can't create /mnt/boots: Read-only file system"), std::string::npos)
      << r.out;
  EXPECT_EQ(run_process({"sha256sum", image}).out, before.out);
  run_process({"rm", "-rf", dir});
}

// With --console virtio the shell runs on hvc0: what is typed reaches it through the
// virtio-console's receive queue, its output leaves through the transmit queue.
TEST_F(LinuxTest, ShellOnTheVirtioConsole) {
  std::vector<std::string> args = hv_args("shell", 1);
  args.insert(args.end(), {"--console", "virtio"});
  TerminalSession session(args);
  ASSERT_TRUE(session.expect("hv-init: console on hvc0", kBootLimit)) << session.output();
  ASSERT_TRUE(session.expect("# ", 30s)) << session.output();
  session.type("echo tty-$(tty)-$((6 * 7))\r");
  EXPECT_TRUE(session.expect("tty-/dev/hvc0-42", 30s)) << session.output();
  session.type("sleep 100\r");
  ASSERT_TRUE(session.expect("sleep 100", 30s)) << session.output();
  std::this_thread::sleep_for(1s);
  session.type("\x03");
  session.type("echo status-$?\r");
  EXPECT_TRUE(session.expect("status-130", 30s)) << session.output();
  session.type("poweroff -f\r");
  EXPECT_EQ(session.wait(60s), 0) << session.output();
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

// The host end of the network test, run in a forked child inside the test's network
// namespace: serves `payload` to the first connection on port 5555, then writes what the
// second connection on port 5556 sends to `received_path`. Exit status 0 on success. Only
// system calls here: it runs in a child forked from a process that may have threads.
[[noreturn]] void serve_tcp_in_namespace(const char* netns_path, std::span<const uint8_t> payload,
                                         const char* received_path, std::span<uint8_t> buffer) {
  const int ns = ::open(netns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
    ::_exit(10);
  }
  auto listen_on = [](uint16_t port) {
    const int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    if (::bind(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(sock, 1) != 0) {
      ::_exit(11);
    }
    return sock;
  };
  const int serve = listen_on(5555);
  const int collect = listen_on(5556);
  ::alarm(170);  // the guest never connecting must not leave this process behind
  const int out = ::accept(serve, nullptr, nullptr);
  for (size_t sent = 0; sent < payload.size();) {
    const ssize_t n = ::write(out, payload.data() + sent, payload.size() - sent);
    if (n <= 0) {
      ::_exit(12);
    }
    sent += static_cast<size_t>(n);
  }
  ::close(out);
  const int in = ::accept(collect, nullptr, nullptr);
  const int file = ::open(received_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  for (;;) {
    const ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0) {
      ::_exit(13);
    }
    if (n == 0) {
      break;
    }
    if (::write(file, buffer.data(), static_cast<size_t>(n)) != n) {
      ::_exit(14);
    }
  }
  ::close(file);
  ::_exit(0);
}

// virtio-net on a TAP interface in a network namespace the test creates: the guest (10.0.2.15)
// pings the host end (10.0.2.1), fetches 1 MiB over TCP from it and sends 256 KiB back.
TEST_F(LinuxTest, VirtioNetReachesTheHostThroughATap) {
  if (!executable_exists("ip")) {
    GTEST_SKIP() << "ip missing: apt-get install iproute2";
  }
  const std::string netns = "hv-e2e-net-" + std::to_string(::getpid());
  ASSERT_EQ(run_process({"ip", "netns", "add", netns}).exit_status, 0);
  struct NamespaceGuard {
    std::string name;
    ~NamespaceGuard() { run_process({"ip", "netns", "delete", name}); }
  } guard{netns};
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"ip", "tuntap", "add", "dev", "hvtap0", "mode", "tap"},
        {"ip", "addr", "add", "10.0.2.1/24", "dev", "hvtap0"},
        {"ip", "link", "set", "hvtap0", "up"}}) {
    std::vector<std::string> in_namespace = {"ip", "netns", "exec", netns};
    in_namespace.insert(in_namespace.end(), command.begin(), command.end());
    ProcessResult r = run_process(in_namespace);
    ASSERT_EQ(r.exit_status, 0) << r.err;
  }

  char pattern[] = "/tmp/hv-net-test-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  std::vector<uint8_t> payload(1 << 20);
  for (size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  }
  {
    std::ofstream(dir + "/payload", std::ios::binary)
        .write(reinterpret_cast<const char*>(payload.data()),
               static_cast<std::streamsize>(payload.size()));
  }
  const std::string netns_path = "/run/netns/" + netns;
  const std::string received_path = dir + "/received";
  std::vector<uint8_t> buffer(65536);
  const pid_t server = ::fork();
  ASSERT_GE(server, 0);
  if (server == 0) {
    serve_tcp_in_namespace(netns_path.c_str(), payload, received_path.c_str(), buffer);
  }

  std::vector<std::string> args = {"ip", "netns", "exec", netns};
  std::vector<std::string> hv = hv_args("net", 1);
  args.insert(args.end(), hv.begin(), hv.end());
  args.insert(args.end(), {"--net", "tap=hvtap0"});
  ProcessResult r = run_process(args, kBootLimit);
  int server_status = -1;
  ::kill(server, SIGKILL);  // harmless when it has already finished
  ::waitpid(server, &server_status, 0);
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  EXPECT_EQ(r.exit_status, 0) << r.out << r.err;
  const std::vector<std::string> lines = lines_with(r.out, "net: ");
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0], "driver virtio_net");
  EXPECT_EQ(lines[1], "mac 52:54:00:12:34:56");
  EXPECT_EQ(lines[2], "ping ok");
  const std::string payload_sum = run_process({"sha256sum", dir + "/payload"}).out.substr(0, 64);
  EXPECT_EQ(lines[3], "tcp-in " + payload_sum);
  ASSERT_TRUE(WIFEXITED(server_status) && WEXITSTATUS(server_status) == 0)
      << "host end of the TCP test: status " << server_status;
  ASSERT_TRUE(lines[4].starts_with("tcp-out ")) << lines[4];
  const ProcessResult received = run_process({"sha256sum", dir + "/received"});
  EXPECT_EQ(lines[4].substr(8), received.out.substr(0, 64));
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/received").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 262144);
  expect_clean_boot_log(r.out);
  run_process({"rm", "-rf", dir});
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
