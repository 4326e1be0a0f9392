// Runs every guest under guests/ through the hv binary and, as the reference, under QEMU's TCG,
// and checks both against the same expected console output and exit status. A guest bug shows
// as a QEMU failure; an engine bug as an hv failure with QEMU passing.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
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
// hv run --sandbox needs root (a mount namespace, dropping capabilities).
bool can_sandbox() {
  return ::geteuid() == 0;
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
  bool needs_disk_image = false;    // gets a fresh test_disk_image() as its IDE disk
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
      // The para-virtual build: hypercalls on hv, the UART and the PIT under QEMU; same output.
      {"minios_pv", "minios-pv.elf", {}, {"-kernel"}, "minios.out", 1, 1, true},
      {"triple_fault", "triple.elf", {}, {"-kernel"}, "triple.out", 12, 0},
      {"loop_timeout", "loop.elf", {}, {"-kernel"}, "loop.out", 14, -1, false, 1.0},
      // Halted for good with interrupts off: the idle micro-VM of bench/supervisor.sh.
      {"idle_timeout", "idle.elf", {}, {"-kernel"}, "idle.out", 14, -1, false, 1.0},
      {"outloop", "outloop.elf", {}, {"-kernel"}, "outloop.out", 1, 1},
      {"cpubench", "cpubench.elf", {}, {"-kernel"}, "cpubench.out", 1, 1, true},
  };
  GuestCase atadisk = {"atadisk", "atadisk.elf", {}, {"-kernel"}, "atadisk.out", 1, 1};
  atadisk.needs_disk_image = true;
  cases.push_back(atadisk);
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

// The disk of the guests that drive one (atadisk): 1 MiB of raw sectors. Sectors 0 and 1 start
// with 32 characters of text, "hv ata test sector N" padded with dots, followed by the bytes
// (i * 5 + N * 0x40) & 0xff (i the offset in the sector); the rest is zeros. The guest prints
// the text and a sum of each sector, and writes sector 2 (written_sector()).
constexpr size_t kSectorSize = 512;
constexpr size_t kDiskSize = 1 << 20;

std::string test_disk_image() {
  std::string image(kDiskSize, '\0');
  for (size_t n = 0; n < 2; ++n) {
    std::string text = "hv ata test sector " + std::to_string(n) + " ";
    text.resize(32, '.');
    std::string sector = text;
    for (size_t i = sector.size(); i < kSectorSize; ++i) {
      sector.push_back(static_cast<char>((i * 5 + n * 0x40) & 0xff));
    }
    image.replace(n * kSectorSize, kSectorSize, sector);
  }
  return image;
}

// What atadisk writes to sector 2: the bytes (i * 7 + 3) & 0xff.
std::string written_sector() {
  std::string sector;
  for (size_t i = 0; i < kSectorSize; ++i) {
    sector.push_back(static_cast<char>((i * 7 + 3) & 0xff));
  }
  return sector;
}

class GuestTest : public ::testing::TestWithParam<GuestCase> {
 protected:
  // Each test, so each engine, gets its own copy of the disk: the guest writes to it.
  void SetUp() override {
    if (!GetParam().needs_disk_image) {
      return;
    }
    char pattern[] = "/tmp/hv-guest-disk-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    disk_dir_ = pattern;
    disk_path_ = disk_dir_ + "/disk.img";
    std::ofstream(disk_path_, std::ios::binary) << test_disk_image();
    ASSERT_EQ(std::filesystem::file_size(disk_path_), kDiskSize);
  }
  void TearDown() override {
    if (!disk_dir_.empty()) {
      std::filesystem::remove_all(disk_dir_);
    }
  }

  std::string image_path() const { return std::string(HV_GUESTS_DIR) + "/" + GetParam().image; }
  std::string expected_output() const {
    return read_text(std::string(HV_EXPECTED_DIR) + "/" + GetParam().expected);
  }

  // After the guest ran: its disk holds what it had, with sector 2 overwritten, so the write
  // reached the host's file (FLUSH CACHE) and nothing else was written.
  void expect_disk_written() const {
    if (disk_path_.empty()) {
      return;
    }
    std::string expected = test_disk_image();
    expected.replace(2 * kSectorSize, kSectorSize, written_sector());
    const std::string actual = read_text(disk_path_);
    ASSERT_EQ(actual.size(), expected.size());
    const size_t offset =
        std::mismatch(actual.begin(), actual.end(), expected.begin()).first - actual.begin();
    EXPECT_EQ(offset, actual.size())
        << "the image differs first at byte " << offset << " (sector " << offset / kSectorSize
        << "): " << static_cast<int>(static_cast<uint8_t>(actual[offset])) << " instead of "
        << static_cast<int>(static_cast<uint8_t>(expected[offset]));
  }

  std::string disk_path_;  // empty unless the case needs_disk_image

 private:
  std::string disk_dir_;
};

// Runs the guest through the hv binary on one engine and checks output, status and the
// crash/timeout reports. `disk`, if not empty, is given as the IDE disk. `sandbox`: with
// --sandbox, which must change nothing the guest or the user sees.
void expect_guest_runs(const GuestCase& c, const std::string& engine, const std::string& image,
                       const std::string& expected, const std::string& disk, bool sandbox = false) {
  std::vector<std::string> argv = {HV_BINARY, "run", "--engine", engine, "--kernel", image};
  argv.insert(argv.end(), c.hv_args.begin(), c.hv_args.end());
  if (sandbox) {
    argv.push_back("--sandbox");
  }
  if (!disk.empty()) {
    argv.insert(argv.end(), {"--disk", disk + ",if=ide"});
  }
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
  expect_guest_runs(c, "kvm", image_path(), expected_output(), disk_path_);
  expect_disk_written();
}

// The software CPU needs no /dev/kvm and must give byte-identical output and the same status.
TEST_P(GuestTest, RunsOnEmulationEngine) {
  const GuestCase& c = GetParam();
  expect_guest_runs(c, "emulate", image_path(), expected_output(), disk_path_);
  expect_disk_written();
}

// The same guests in the VMM sandbox (vmm/sandbox.hpp): the same output and status, crash reports
// included, and the seccomp filters kill nothing the VMM needs (a SIGSYS would end hv with no
// status of its own).
TEST_P(GuestTest, RunsSandboxedOnKvmEngine) {
  const GuestCase& c = GetParam();
  if (!kvm_usable()) {
    GTEST_SKIP() << "/dev/kvm is missing or not accessible on this host";
  }
  if (!can_sandbox()) {
    GTEST_SKIP() << "--sandbox needs root";
  }
  if (c.needs_hardware_kvm && kvm_is_pvm()) {
    GTEST_SKIP() << "this host's /dev/kvm is the PVM nested hypervisor, which cannot run this "
                    "guest (see RunsOnKvmEngine)";
  }
  expect_guest_runs(c, "kvm", image_path(), expected_output(), disk_path_, /*sandbox=*/true);
  expect_disk_written();
}

TEST_P(GuestTest, RunsSandboxedOnEmulationEngine) {
  if (!can_sandbox()) {
    GTEST_SKIP() << "--sandbox needs root";
  }
  expect_guest_runs(GetParam(), "emulate", image_path(), expected_output(), disk_path_,
                    /*sandbox=*/true);
  expect_disk_written();
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
  if (!disk_path_.empty()) {
    argv.insert(argv.end(), {"-drive", "file=" + disk_path_ + ",format=raw,if=ide,index=0"});
  }
  const bool endless = c.qemu_status < 0;
  ProcessResult r = run_process(argv, endless ? std::chrono::seconds(3) : std::chrono::seconds(60));
  EXPECT_EQ(r.out, expected_output()) << "stderr:\n" << r.err;
  if (endless) {
    EXPECT_TRUE(r.timed_out) << "the guest was expected to run until killed";
  } else {
    ASSERT_FALSE(r.timed_out) << "QEMU did not finish; stdout:\n" << r.out;
    EXPECT_EQ(r.exit_status, c.qemu_status) << "stderr:\n" << r.err;
    expect_disk_written();
  }
}

INSTANTIATE_TEST_SUITE_P(Guests, GuestTest, ::testing::ValuesIn(guest_cases()),
                         [](const auto& test_info) { return test_info.param.name; });

// The virtio guest (guests/virtio.asm) drives hv's virtio-mmio devices and, as the reference, the
// same devices on QEMU's microvm machine (virtio-mmio transports, which QEMU's pc machine lacks).
// Each case is one set of devices; the output is identical everywhere.
struct VirtioCase {
  std::string name;
  std::string expected;  // file under guests/expected
  bool disk = false;     // virtio-blk on a fresh test_disk_image(), serial kVirtioDiskSerial
  bool console = false;  // virtio-console, writing where the UART writes
  bool rng = false;      // virtio-rng
  bool net = false;      // virtio-net, MAC 52:54:00:12:34:56 (hv's default for the first --net)
};

void PrintTo(const VirtioCase& c, std::ostream* os) {
  *os << c.name;
}

// GET_ID's answer: hv's default serial differs from QEMU's (none), so both get this one.
constexpr char kVirtioDiskSerial[] = "hv-virtio-disk";

std::vector<VirtioCase> virtio_cases() {
  return {
      {"none", "virtio-none.out"},  // no device: the windows read as empty, harmlessly
      {"rng", "virtio-rng.out", false, false, true},
      {"blk", "virtio-blk.out", true, false, false},
      {"blk_console_rng", "virtio-all.out", true, true, true},
      // hv's --net needs a TAP interface; QEMU's NIC needs no backend (frames are dropped).
      {"net_rng", "virtio-net-rng.out", false, false, true, true},
  };
}

// What the virtio guest writes to sector 1: the bytes (i * 3 + 0x11) & 0xff.
std::string virtio_written_sector() {
  std::string sector;
  for (size_t i = 0; i < kSectorSize; ++i) {
    sector.push_back(static_cast<char>((i * 3 + 0x11) & 0xff));
  }
  return sector;
}

class VirtioGuestTest : public ::testing::TestWithParam<VirtioCase> {
 protected:
  void SetUp() override {
    if (!GetParam().disk) {
      return;
    }
    char pattern[] = "/tmp/hv-virtio-disk-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    disk_dir_ = pattern;
    disk_path_ = disk_dir_ + "/disk.img";
    std::ofstream(disk_path_, std::ios::binary) << test_disk_image();
    ASSERT_EQ(std::filesystem::file_size(disk_path_), kDiskSize);
  }
  void TearDown() override {
    if (!disk_dir_.empty()) {
      std::filesystem::remove_all(disk_dir_);
    }
  }

  static std::string image_path() { return std::string(HV_GUESTS_DIR) + "/virtio.elf"; }
  std::string expected_output() const {
    return read_text(std::string(HV_EXPECTED_DIR) + "/" + GetParam().expected);
  }

  // The host's file holds the test image with sector 1 overwritten (WRITE + FLUSH reached it)
  // and nothing else changed.
  void expect_disk_written() const {
    if (disk_path_.empty()) {
      return;
    }
    std::string expected = test_disk_image();
    expected.replace(1 * kSectorSize, kSectorSize, virtio_written_sector());
    const std::string actual = read_text(disk_path_);
    ASSERT_EQ(actual.size(), expected.size());
    const size_t offset =
        std::mismatch(actual.begin(), actual.end(), expected.begin()).first - actual.begin();
    EXPECT_EQ(offset, actual.size())
        << "the image differs first at byte " << offset << " (sector " << offset / kSectorSize
        << "): " << static_cast<int>(static_cast<uint8_t>(actual[offset])) << " instead of "
        << static_cast<int>(static_cast<uint8_t>(expected[offset]));
  }

  void expect_runs_on_hv(const std::string& engine, bool sandbox = false) const {
    const VirtioCase& c = GetParam();
    std::vector<std::string> argv = {HV_BINARY, "run",      "--engine",
                                     engine,    "--kernel", image_path()};
    if (sandbox) {
      argv.push_back("--sandbox");
    }
    if (c.net) {
      // In a network namespace of its own, where hv creates the TAP interface; nothing answers
      // the guest's ARP request there (the guest does not wait for an answer).
      if (!executable_exists("unshare")) {
        GTEST_SKIP() << "unshare missing: apt-get install util-linux";
      }
      argv.insert(argv.begin(), {"unshare", "--net"});
      argv.insert(argv.end(), {"--net", "tap=hvtap0"});
    }
    if (c.disk) {
      argv.insert(argv.end(), {"--disk", disk_path_ + ",serial=" + kVirtioDiskSerial});
    }
    if (c.console) {
      argv.insert(argv.end(), {"--console", "virtio"});
    }
    if (c.rng) {
      argv.push_back("--rng");
    }
    ProcessResult r = run_process(argv, std::chrono::seconds(120));
    ASSERT_FALSE(r.timed_out) << "hv did not finish; stdout:\n" << r.out << "\nstderr:\n" << r.err;
    EXPECT_EQ(r.out, expected_output()) << "stderr:\n" << r.err;
    EXPECT_EQ(r.exit_status, 1) << "stderr:\n" << r.err;
    expect_disk_written();
  }

  std::string disk_path_;  // empty unless the case has a disk

 private:
  std::string disk_dir_;
};

TEST_P(VirtioGuestTest, RunsOnKvmEngine) {
  if (!kvm_usable()) {
    GTEST_SKIP() << "/dev/kvm is missing or not accessible on this host";
  }
  expect_runs_on_hv("kvm");
}

TEST_P(VirtioGuestTest, RunsOnEmulationEngine) {
  expect_runs_on_hv("emulate");
}

TEST_P(VirtioGuestTest, RunsSandboxedOnKvmEngine) {
  if (!kvm_usable()) {
    GTEST_SKIP() << "/dev/kvm is missing or not accessible on this host";
  }
  if (!can_sandbox()) {
    GTEST_SKIP() << "--sandbox needs root";
  }
  expect_runs_on_hv("kvm", /*sandbox=*/true);
}

TEST_P(VirtioGuestTest, RunsSandboxedOnEmulationEngine) {
  if (!can_sandbox()) {
    GTEST_SKIP() << "--sandbox needs root";
  }
  expect_runs_on_hv("emulate", /*sandbox=*/true);
}

TEST_P(VirtioGuestTest, RunsOnQemuMicrovm) {
  const VirtioCase& c = GetParam();
  if (!executable_exists("qemu-system-x86_64")) {
    GTEST_SKIP() << "qemu-system-x86_64 is not installed";
  }
  // QEMU's virtio-mmio transports are legacy (version 1) unless told otherwise. The console
  // shares stdio with the UART through a multiplexer, as hv writes both to its stdout.
  std::vector<std::string> argv = {"qemu-system-x86_64",
                                   "-accel",
                                   "tcg",
                                   "-M",
                                   "microvm",
                                   "-m",
                                   "128",
                                   "-display",
                                   "none",
                                   "-no-reboot",
                                   "-global",
                                   "virtio-mmio.force-legacy=false",
                                   "-device",
                                   "isa-debug-exit,iobase=0xf4,iosize=0x04",
                                   "-kernel",
                                   image_path()};
  if (c.console) {
    argv.insert(argv.end(), {"-chardev", "stdio,id=con0,mux=on", "-serial", "chardev:con0"});
  } else {
    argv.insert(argv.end(), {"-serial", "stdio"});
  }
  // Transports are handed out in command-line order, as hv's windows are in its device order.
  if (c.disk) {
    argv.insert(argv.end(),
                {"-drive", "file=" + disk_path_ + ",format=raw,if=none,id=d0", "-device",
                 std::string("virtio-blk-device,drive=d0,serial=") + kVirtioDiskSerial});
  }
  if (c.console) {
    argv.insert(argv.end(),
                {"-device", "virtio-serial-device", "-device", "virtconsole,chardev=con0"});
  }
  if (c.rng) {
    argv.insert(argv.end(), {"-device", "virtio-rng-device"});
  }
  if (c.net) {
    argv.insert(argv.end(), {"-device", "virtio-net-device,mac=52:54:00:12:34:56"});
  }
  ProcessResult r = run_process(argv, std::chrono::seconds(60));
  ASSERT_FALSE(r.timed_out) << "QEMU did not finish; stdout:\n" << r.out;
  EXPECT_EQ(r.out, expected_output()) << "stderr:\n" << r.err;
  EXPECT_EQ(r.exit_status, 1) << "stderr:\n" << r.err;
  expect_disk_written();
}

INSTANTIATE_TEST_SUITE_P(Virtio, VirtioGuestTest, ::testing::ValuesIn(virtio_cases()),
                         [](const auto& test_info) { return test_info.param.name; });

// One counter of hv's --trace-exits report: the number on the line that ends with `what` in the
// section that starts with `section` (0 when the line is missing, as for counts that stayed 0).
uint64_t trace_count(const std::string& report, const std::string& section,
                     const std::string& what) {
  std::istringstream lines(report);
  std::string line;
  bool inside = false;
  while (std::getline(lines, line)) {
    if (!line.starts_with(" ")) {
      inside = line == section;
    } else if (inside && line.ends_with("  " + what)) {
      return std::stoull(line);
    }
  }
  return 0;
}

// Runs the mini OS on the emulation engine with --trace-exits; returns the report.
std::string minios_exit_report(const std::string& image) {
  ProcessResult r = run_process({HV_BINARY, "run", "--engine", "emulate", "--kernel",
                                 std::string(HV_GUESTS_DIR) + "/" + image, "--trace-exits"},
                                std::chrono::seconds(120));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_status, 1) << r.err;
  EXPECT_EQ(r.out, read_text(std::string(HV_EXPECTED_DIR) + "/minios.out")) << r.err;
  return r.err;
}

// The para-virtual build's identical output must come from the hypercalls, not from a silent
// fallback to the UART and the PIT: the exit counters say which path ran. The normal build is
// the control that the counters see UART and PIT accesses at all.
TEST(ParavirtGuest, MiniosPvPrintsAndTicksThroughHypercallsOnHv) {
  const std::string normal = minios_exit_report("minios.elf");
  EXPECT_GT(trace_count(normal, "port I/O by port:", "0x03f8 out"), 0u) << normal;
  EXPECT_GT(trace_count(normal, "port I/O by port:", "0x0040 out"), 0u) << normal;
  EXPECT_EQ(trace_count(normal, "hypercalls by number:", "1 CONSOLE_WRITE"), 0u) << normal;

  const std::string pv = minios_exit_report("minios-pv.elf");
  // One CONSOLE_WRITE per string, where the UART took one port write per byte.
  EXPECT_GT(trace_count(pv, "hypercalls by number:", "1 CONSOLE_WRITE"), 0u) << pv;
  EXPECT_LT(trace_count(pv, "hypercalls by number:", "1 CONSOLE_WRITE"),
            trace_count(normal, "port I/O by port:", "0x03f8 out"));
  EXPECT_GT(trace_count(pv, "hypercalls by number:", "3 SET_TIMER"), 0u) << pv;
  EXPECT_EQ(trace_count(pv, "hypercalls by number:", "unknown numbers"), 0u) << pv;
  EXPECT_EQ(trace_count(pv, "port I/O by port:", "0x03f8 out"), 0u) << pv;  // UART transmit
  EXPECT_EQ(trace_count(pv, "port I/O by port:", "0x03fd in"), 0u) << pv;   // UART status
  EXPECT_EQ(trace_count(pv, "port I/O by port:", "0x0043 out"), 0u) << pv;  // PIT mode
  EXPECT_EQ(trace_count(pv, "port I/O by port:", "0x0040 out"), 0u) << pv;  // PIT count
}

}  // namespace
}  // namespace hv::test
