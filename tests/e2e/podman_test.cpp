// podman driving hv as its OCI runtime (`podman --runtime hv-runc`): the runc command line as a
// real engine uses it, with conmon as the container's parent, console sockets, exec sessions,
// pause, stop and removal. Podman's storage and run directory live in a temporary directory (vfs
// storage, no network, cgroupfs), so the host's podman setup is neither used nor changed. hv
// keeps its state in its default root, /run/hv: podman drops --runtime-flag from the cleanup
// command conmon runs when a container exits, so a private root would not see that `delete`.
// Needs root and podman (tools/install-deps.sh installs it); skipped otherwise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "host_state.hpp"
#include "process.hpp"

namespace hv::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Podman's container IDs (64 hex digits) among the entries of `dir`: hv's state directories
// and the cgroups podman asks for. Other tests may add entries of their own at the same time.
std::vector<std::string> podman_ids_in(const std::string& dir) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with("libpod-")) {
      name.erase(0, 7);
    }
    if (name.size() == 64 && name.find_first_not_of("0123456789abcdef") == std::string::npos) {
      ids.push_back(name);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Where traces of a container would stay: hv's state and the container's cgroup (v1 and v2).
const std::array<const char*, 3> kTraceDirs = {"/run/hv", "/sys/fs/cgroup/pids/libpod_parent",
                                               "/sys/fs/cgroup/libpod_parent"};

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

class PodmanTest : public ::testing::Test {
 protected:
  static constexpr const char* kImage = "localhost/hv-busybox:e2e";

  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "podman with a root runtime needs root";
    }
    if (!executable_exists("podman")) {
      GTEST_SKIP() << "podman missing: apt-get install podman (tools/install-deps.sh)";
    }
    if (::access("/bin/busybox", X_OK) != 0) {
      GTEST_SKIP() << "/bin/busybox missing: apt-get install busybox-static";
    }
    // One podman test at a time, even under ctest -j: each checks that nothing of any podman
    // container is left, which another one running would make false.
    serial_lock_ = ::open("/tmp/hv-podman-tests.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_GE(serial_lock_, 0);
    ASSERT_EQ(::flock(serial_lock_, LOCK_EX), 0);
    runtime_ = (fs::path(HV_BINARY).parent_path() / "hv-runc").string();
    ASSERT_TRUE(fs::exists(runtime_)) << runtime_ << " (the build's symlink to hv)";
    char pattern[] = "/tmp/hv-podman-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    mounts_before_ = host_mounts();
    for (const char* dir : kTraceDirs) {
      traces_before_.push_back(podman_ids_in(dir));
    }

    const std::string rootfs = dir_ + "/rootfs";
    fs::create_directories(rootfs + "/bin");
    fs::copy_file("/bin/busybox", rootfs + "/bin/busybox");
    for (const char* applet :
         {"sh", "cat", "echo", "sleep", "ls", "id", "hostname", "tty", "ps", "grep", "true"}) {
      fs::create_symlink("busybox", rootfs + "/bin/" + applet);
    }
    ProcessResult tar = run_process({"tar", "-C", rootfs, "-cf", dir_ + "/rootfs.tar", "."});
    ASSERT_EQ(tar.exit_status, 0) << tar.err;
    ProcessResult import = podman({"import", dir_ + "/rootfs.tar", kImage});
    ASSERT_EQ(import.exit_status, 0) << import.err;
  }

  void TearDown() override {
    if (dir_.empty()) {
      if (serial_lock_ >= 0) {
        ::close(serial_lock_);
      }
      return;
    }
    podman({"rm", "--all", "--force", "--time", "0"});
    ProcessResult reset = podman({"system", "reset", "--force"});
    EXPECT_EQ(reset.exit_status, 0) << reset.err;
    // Nothing of any container may be left: mounts, hv's state, cgroups.
    EXPECT_EQ(host_mounts(), mounts_before_);
    for (size_t i = 0; i < kTraceDirs.size(); ++i) {
      EXPECT_EQ(podman_ids_in(kTraceDirs[i]), traces_before_[i]) << "left in " << kTraceDirs[i];
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
    ::close(serial_lock_);  // releases the lock
  }

  std::vector<std::string> podman_command(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"podman",
                                     "--root",
                                     dir_ + "/storage",
                                     "--runroot",
                                     dir_ + "/run",
                                     "--tmpdir",
                                     dir_ + "/libpod-tmp",
                                     "--storage-driver",
                                     "vfs",
                                     "--cgroup-manager",
                                     "cgroupfs",
                                     "--events-backend",
                                     "file",
                                     "--runtime",
                                     runtime_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  ProcessResult podman(const std::vector<std::string>& args) const {
    return run_process(podman_command(args), 120s);
  }

  // `podman run` with the options every container here gets: no network, and explicit open-file
  // and process limits (podman's defaults raise the hard limits, which needs CAP_SYS_RESOURCE:
  // some hosts, this project's development machine among them, withhold it from root).
  std::vector<std::string> run_args(std::vector<std::string> options,
                                    const std::vector<std::string>& command) const {
    std::vector<std::string> args = {
        "run", "--network", "none", "--ulimit", "nofile=1024:4096", "--ulimit", "nproc=512:512"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(kImage);
    args.insert(args.end(), command.begin(), command.end());
    return args;
  }

  // Starts a long-running container in the background and returns its full ID.
  std::string start_sleeper(const std::string& name) {
    ProcessResult r = podman(run_args({"--detach", "--name", name}, {"sleep", "300"}));
    EXPECT_EQ(r.exit_status, 0) << r.err;
    return trim(r.out);
  }

  std::string hv_state(const std::string& id) const {
    ProcessResult r = run_process({HV_BINARY, "oci", "state", id}, 30s);
    return r.out;
  }

  std::string runtime_, dir_;
  std::vector<std::string> mounts_before_;
  std::vector<std::vector<std::string>> traces_before_;
  int serial_lock_ = -1;
};

TEST_F(PodmanTest, RunPassesOutputAndExitStatus) {
  ProcessResult hello =
      podman(run_args({"--rm", "--hostname", "hvbox"}, {"sh", "-c", "echo hello; hostname"}));
  EXPECT_EQ(hello.exit_status, 0) << hello.err;
  EXPECT_EQ(hello.out, "hello\nhvbox\n");
  ProcessResult status = podman(run_args({"--rm"}, {"sh", "-c", "echo to-stderr >&2; exit 7"}));
  EXPECT_EQ(status.exit_status, 7) << status.err;
  EXPECT_NE(status.err.find("to-stderr"), std::string::npos) << status.err;
  // Only the standard streams pass into the container: not conmon's or podman's descriptors.
  ProcessResult fds = podman(run_args({"--rm"}, {"ls", "/proc/self/fd"}));
  EXPECT_EQ(fds.out, "0\n1\n2\n3\n") << "3 is ls's own directory";
  ProcessResult missing = podman(run_args({"--rm"}, {"/no/such/program"}));
  EXPECT_NE(missing.exit_status, 0);
}

TEST_F(PodmanTest, ExecPauseStopAndRemove) {
  const std::string id = start_sleeper("hv-e2e-sleeper");
  ASSERT_FALSE(id.empty());
  EXPECT_NE(hv_state(id).find("\"status\": \"running\""), std::string::npos) << hv_state(id);

  ProcessResult exec = podman({"exec", "hv-e2e-sleeper", "sh", "-c", "echo exec-ok; exit 3"});
  EXPECT_EQ(exec.exit_status, 3) << exec.err;
  EXPECT_EQ(exec.out, "exec-ok\n");
  // The exec'd process shares the container's pid namespace: the sleeper is its PID 1.
  ProcessResult ps = podman({"exec", "hv-e2e-sleeper", "cat", "/proc/1/cmdline"});
  EXPECT_EQ(ps.out, std::string("sleep\0"
                                "300\0",
                                10))
      << ps.err;
  ProcessResult piped =
      run_process(podman_command({"exec", "-i", "hv-e2e-sleeper", "cat"}), 60s, "through stdin\n");
  EXPECT_EQ(piped.out, "through stdin\n") << piped.err;

  ASSERT_EQ(podman({"pause", "hv-e2e-sleeper"}).exit_status, 0);
  EXPECT_EQ(trim(podman({"inspect", "--format", "{{.State.Status}}", "hv-e2e-sleeper"}).out),
            "paused");
  EXPECT_NE(hv_state(id).find("\"status\": \"paused\""), std::string::npos) << hv_state(id);
  ASSERT_EQ(podman({"unpause", "hv-e2e-sleeper"}).exit_status, 0);
  EXPECT_NE(hv_state(id).find("\"status\": \"running\""), std::string::npos);

  // A sleeping PID 1 ignores SIGTERM, so stop ends it with SIGKILL after the grace time.
  ProcessResult stop = podman({"stop", "--time", "1", "hv-e2e-sleeper"});
  EXPECT_EQ(stop.exit_status, 0) << stop.err;
  EXPECT_EQ(trim(podman({"inspect", "--format", "{{.State.ExitCode}}", "hv-e2e-sleeper"}).out),
            "137");
  ProcessResult rm = podman({"rm", "hv-e2e-sleeper"});
  EXPECT_EQ(rm.exit_status, 0) << rm.err;
  EXPECT_TRUE(hv_state(id).empty()) << "hv still knows the container after podman rm";
}

TEST_F(PodmanTest, InteractiveTerminal) {
  // run -it: the console socket carries a terminal opened in the container's own devpts, so the
  // shell sees a named tty and /dev/console is that terminal.
  TerminalSession session(podman_command(run_args({"--rm", "--interactive", "--tty"}, {"sh"})));
  ASSERT_TRUE(session.expect("# ", 60s)) << session.output();
  session.type("tty; ls -l /dev/console | grep -c 136; echo done-$((6*7))\r");
  EXPECT_TRUE(session.expect("/dev/pts/0", 20s)) << session.output();
  EXPECT_TRUE(session.expect("done-42", 20s)) << session.output();
  session.type("exit 4\r");
  EXPECT_EQ(session.wait(60s), 4) << session.output();

  const std::string id = start_sleeper("hv-e2e-tty");
  TerminalSession exec(podman_command({"exec", "-it", "hv-e2e-tty", "sh"}));
  ASSERT_TRUE(exec.expect("# ", 60s)) << exec.output();
  exec.type("tty; echo exec-$((2*3))\r");
  EXPECT_TRUE(exec.expect("/dev/pts/", 20s)) << exec.output();
  EXPECT_TRUE(exec.expect("exec-6", 20s)) << exec.output();
  exec.type("exit\r");
  EXPECT_EQ(exec.wait(60s), 0) << exec.output();
}

TEST_F(PodmanTest, FailedCreationLeavesNothing) {
  // A sysctl the kernel does not have passes podman's checks and fails in hv part-way through
  // creation (namespaces, cgroup and mounts exist by then): podman shows hv's error, and the
  // fixture's teardown finds nothing left.
  ProcessResult r = podman(run_args({"--rm", "--sysctl", "net.ipv4.hv_no_such_knob=1"}, {"true"}));
  EXPECT_NE(r.exit_status, 0);
  EXPECT_NE(r.err.find("sysctl net.ipv4.hv_no_such_knob"), std::string::npos) << r.err;
  EXPECT_EQ(podman({"ps", "--all", "--quiet"}).out, "");
}

}  // namespace
}  // namespace hv::test
