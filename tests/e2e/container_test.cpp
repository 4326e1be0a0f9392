// hv as an OCI runtime, through its command line as podman would drive it: bundles built from
// Debian's busybox-static, isolation checked from inside the container, and nothing left behind.
// Needs root (namespaces, cgroups, mounts); skipped otherwise with the reason.
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "host_state.hpp"
#include "process.hpp"

namespace hv::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "containers need root (namespaces, cgroups, mounts)";
    }
    if (::access("/bin/busybox", X_OK) != 0) {
      GTEST_SKIP()
          << "/bin/busybox missing: apt-get install busybox-static (tools/install-deps.sh)";
    }
    char pattern[] = "/tmp/hv-container-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    state_root_ = dir_ + "/state";
    bundle_ = dir_ + "/bundle";
    const std::string rootfs = bundle_ + "/rootfs";
    fs::create_directories(rootfs + "/bin");
    fs::copy_file("/bin/busybox", rootfs + "/bin/busybox");
    for (const char* applet : {"sh", "true", "false", "cat", "echo", "hostname", "ls", "id",
                               "sleep", "ip", "grep", "wc", "mount", "dd", "touch"}) {
      fs::create_symlink("busybox", rootfs + "/bin/" + applet);
    }
    mounts_before_ = host_mounts(kPodmanTestDirPrefix);
    ProcessResult spec = hv({"spec", "--bundle", bundle_});
    ASSERT_EQ(spec.exit_status, 0) << spec.err;
    config_ = nlohmann::json::parse(read_text(bundle_ + "/config.json"));
    config_["process"]["terminal"] = false;
  }

  void TearDown() override {
    if (dir_.empty()) {
      return;
    }
    // Nothing may be left: no mounts, no state, no cgroup.
    EXPECT_EQ(host_mounts(kPodmanTestDirPrefix), mounts_before_);
    std::error_code ec;
    if (fs::exists(state_root_)) {
      EXPECT_TRUE(fs::is_empty(state_root_, ec)) << "state left in " << state_root_;
    }
    EXPECT_FALSE(fs::exists("/sys/fs/cgroup/pids/hv/" + id_)) << "cgroup left behind";
    fs::remove_all(dir_, ec);
  }

  void write_config() { std::ofstream(bundle_ + "/config.json") << config_.dump(2); }

  ProcessResult hv(std::vector<std::string> args, const std::string& stdin_data = {}) {
    args.insert(args.begin(), {HV_BINARY, "oci", "--root", state_root_});
    return run_process(args, 60s, stdin_data);
  }

  // `create` leaves the container's init holding the runtime's standard streams, as podman's
  // conmon expects; here they go to files so the test does not wait for the container to end.
  ProcessResult hv_create(const std::string& tag = "") {
    const std::string out = dir_ + "/create" + tag + ".out", err = dir_ + "/create" + tag + ".err";
    const std::string command =
        fmt_command({HV_BINARY, "oci", "--root", state_root_, "create", "--bundle", bundle_, id_}) +
        " </dev/null >" + out + " 2>" + err;
    ProcessResult r = run_process({"sh", "-c", command}, 60s);
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }

  static std::string fmt_command(const std::vector<std::string>& words) {
    std::string command;
    for (const std::string& word : words) {
      command += "'" + word + "' ";
    }
    return command;
  }

  ProcessResult run_in_container(const std::vector<std::string>& command) {
    config_["process"]["args"] = command;
    write_config();
    return hv({"run", "--bundle", bundle_, id_});
  }

  std::string dir_, state_root_, bundle_;
  std::string id_ = "hv-test-" + std::to_string(::getpid());
  nlohmann::json config_;
  std::vector<std::string> mounts_before_;
};

TEST_F(ContainerTest, RunSeesItselfAsPid1WithItsOwnHostname) {
  config_["hostname"] = "box";
  ProcessResult r = run_in_container({"sh", "-c", "echo pid=$$; hostname; ls /"});
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("pid=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("box\n"), std::string::npos) << r.out;
  // The root is the bundle's: busybox's bin, the runtime's /proc, /dev, /sys, nothing of the host.
  EXPECT_NE(r.out.find("bin"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("etc"), std::string::npos) << r.out;
}

TEST_F(ContainerTest, NoHostMountsAndOnlyLoopbackWithItsOwnNetwork) {
  ProcessResult r = run_in_container(
      {"sh", "-c",
       "cat /proc/self/mountinfo | wc -l; ls /sys/class/net; cat /proc/1/status | grep ^Cap"});
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("lo\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("eth0"), std::string::npos) << r.out;
  // Default capabilities: AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10).
  EXPECT_NE(r.out.find("CapEff:\t0000000020000420"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapBnd:\t0000000020000420"), std::string::npos) << r.out;
}

TEST_F(ContainerTest, ExitStatusOfTheProcessIsTheRuntimes) {
  ProcessResult r = run_in_container({"sh", "-c", "exit 7"});
  EXPECT_EQ(r.exit_status, 7) << r.err;
}

TEST_F(ContainerTest, SeccompDeniedSyscallFailsWithTheConfiguredErrno) {
  config_["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", {{{"names", {"sethostname"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 13}}}}};
  config_["process"]["capabilities"]["bounding"].push_back("CAP_SYS_ADMIN");
  config_["process"]["capabilities"]["effective"].push_back("CAP_SYS_ADMIN");
  config_["process"]["capabilities"]["permitted"].push_back("CAP_SYS_ADMIN");
  ProcessResult r = run_in_container({"sh", "-c", "hostname other 2>&1; echo rc=$?"});
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Permission denied"), std::string::npos) << r.out;  // EACCES = 13
}

TEST_F(ContainerTest, PidsLimitStopsAForkBomb) {
  config_["linux"]["resources"]["pids"]["limit"] = 10;
  // The shell counts each child it starts; the tenth process of the cgroup cannot be forked.
  ProcessResult r = run_in_container(
      {"sh", "-c", "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo n=$i; sleep 5 & done"});
  EXPECT_NE(r.out.find("n=9\n"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("n=11\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("can't fork"), std::string::npos) << r.err;
}

TEST_F(ContainerTest, CreateStartStateKillDelete) {
  config_["process"]["args"] = {"sleep", "100"};
  write_config();
  ProcessResult created = hv_create();
  ASSERT_EQ(created.exit_status, 0) << created.err;
  nlohmann::json state = nlohmann::json::parse(hv({"state", id_}).out);
  EXPECT_EQ(state["status"], "created");
  EXPECT_GT(state["pid"].get<int>(), 0);
  EXPECT_EQ(state["bundle"], bundle_);
  ASSERT_EQ(hv({"start", id_}).exit_status, 0);
  EXPECT_EQ(nlohmann::json::parse(hv({"state", id_}).out)["status"], "running");
  EXPECT_NE(hv({"list"}).out.find(id_), std::string::npos);
  EXPECT_NE(hv({"delete", id_}).exit_status, 0);  // running: refused without --force
  ASSERT_EQ(hv({"kill", id_, "KILL"}).exit_status, 0);
  for (int i = 0; i < 100; ++i) {
    if (nlohmann::json::parse(hv({"state", id_}).out)["status"] == "stopped") {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(nlohmann::json::parse(hv({"state", id_}).out)["status"], "stopped");
  EXPECT_EQ(hv({"delete", id_}).exit_status, 0);
  EXPECT_NE(hv({"state", id_}).exit_status, 0);
}

TEST_F(ContainerTest, ExecPausePsOnARunningContainer) {
  config_["hostname"] = "execbox";
  config_["process"]["args"] = {"sleep", "100"};
  write_config();
  ASSERT_EQ(hv_create().exit_status, 0);
  ASSERT_EQ(hv({"start", id_}).exit_status, 0);
  // exec joins the container's namespaces: same hostname, and PID 1 is the container's sleep.
  ProcessResult exec = hv({"exec", id_, "--", "sh", "-c", "hostname; cat /proc/1/cmdline; exit 3"});
  EXPECT_EQ(exec.exit_status, 3) << exec.err;
  EXPECT_NE(exec.out.find("execbox\n"), std::string::npos) << exec.out;
  EXPECT_NE(exec.out.find("sleep"), std::string::npos) << exec.out;
  ProcessResult ps = hv({"ps", "--format", "json", id_});
  ASSERT_EQ(ps.exit_status, 0) << ps.err;
  EXPECT_EQ(nlohmann::json::parse(ps.out).size(), 1u) << ps.out;
  ASSERT_EQ(hv({"pause", id_}).exit_status, 0);
  EXPECT_EQ(nlohmann::json::parse(hv({"state", id_}).out)["status"], "paused");
  ASSERT_EQ(hv({"resume", id_}).exit_status, 0);
  EXPECT_EQ(nlohmann::json::parse(hv({"state", id_}).out)["status"], "running");
  EXPECT_EQ(hv({"delete", "--force", id_}).exit_status, 0);
}

TEST_F(ContainerTest, HooksRunInOrderWithTheStateOnStdin) {
  // Runtime-namespace hooks and createContainer (before pivot_root) log to a host file;
  // startContainer runs inside the container, so it logs into the container's root.
  const std::string log = dir_ + "/hooks.log";
  auto hook = [&](const std::string& name, const std::string& file) {
    return nlohmann::json{{"path", "/bin/sh"},
                          {"args",
                           {"sh", "-c",
                            "s=$(cat); case \"$s\" in *'\"id\"'*) ;; *) exit 1;; "
                            "esac; echo " +
                                name + " >> " + file}},
                          {"timeout", 10}};
  };
  config_["root"]["readonly"] = false;  // startContainer writes into the root
  config_["hooks"]["prestart"] = {hook("prestart", log)};
  config_["hooks"]["createRuntime"] = {hook("createRuntime", log)};
  config_["hooks"]["createContainer"] = {hook("createContainer", log)};
  config_["hooks"]["startContainer"] = {hook("startContainer", "/started")};
  config_["hooks"]["poststart"] = {hook("poststart", log)};
  config_["hooks"]["poststop"] = {hook("poststop", log)};
  ProcessResult r = run_in_container({"sh", "-c", "cat /started"});
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "startContainer\n");
  EXPECT_EQ(read_text(log), "prestart\ncreateRuntime\ncreateContainer\npoststart\npoststop\n");
}

TEST_F(ContainerTest, FailingCreateRuntimeHookUndoesTheCreation) {
  config_["hooks"]["createRuntime"] = {{{"path", "/bin/false"}}};
  ProcessResult r = run_in_container({"true"});
  EXPECT_NE(r.exit_status, 0);
  EXPECT_NE(r.err.find("createRuntime hook"), std::string::npos) << r.err;
}

TEST_F(ContainerTest, ContainerRunFromARootDirectory) {
  ProcessResult r = run_process(
      {HV_BINARY, "container", "run", "--hostname", "c1", "--pids", "20", "--memory", "64M",
       bundle_ + "/rootfs", "--", "sh", "-c", "hostname; echo pid=$$; ls /sys/class/net; exit 5"},
      60s);
  EXPECT_EQ(r.exit_status, 5) << r.err;
  EXPECT_EQ(r.out, "c1\npid=1\nlo\n");
}

TEST_F(ContainerTest, MalformedConfigNamesTheFieldAndLeavesNothing) {
  config_["process"]["args"] = "not an array";
  write_config();
  ProcessResult r = hv({"create", "--bundle", bundle_, id_});
  EXPECT_EQ(r.exit_status, 18) << r.err;
  EXPECT_NE(r.err.find(".process.args"), std::string::npos) << r.err;
}

TEST_F(ContainerTest, MissingProgramFailsCleanly) {
  ProcessResult r = run_in_container({"/no/such/program"});
  EXPECT_EQ(r.exit_status, 127);
  EXPECT_NE(r.err.find("/no/such/program"), std::string::npos) << r.err;
}

TEST_F(ContainerTest, ProcessRunsAsAnUnprivilegedUser) {
  config_["process"]["user"] = {{"uid", 1000}, {"gid", 1000}, {"additionalGids", {5}}};
  ProcessResult r = run_in_container({"sh", "-c", "id; grep ^CapEff /proc/self/status"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("uid=1000 gid=1000 groups=5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapEff:\t0000000000000000"), std::string::npos) << r.out;
}

TEST_F(ContainerTest, UserNamespaceMapsTheContainersRoot) {
  // Root in the container is host UID/GID 100000: the bundle's files belong to it, as an
  // ID-mapped image would be prepared.
  constexpr int kHostRoot = 100000;
  fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  for (const auto& entry : fs::recursive_directory_iterator(bundle_ + "/rootfs")) {
    ASSERT_EQ(::lchown(entry.path().c_str(), kHostRoot, kHostRoot), 0);
  }
  ASSERT_EQ(::lchown((bundle_ + "/rootfs").c_str(), kHostRoot, kHostRoot), 0);
  config_["linux"]["namespaces"].push_back({{"type", "user"}});
  const nlohmann::json mapping = {{{"containerID", 0}, {"hostID", kHostRoot}, {"size", 65536}}};
  config_["linux"]["uidMappings"] = mapping;
  config_["linux"]["gidMappings"] = mapping;
  ProcessResult r = run_in_container(
      {"sh", "-c", "id; cat /proc/self/uid_map; touch /proc/sysrq-trigger 2>&1; echo rc=$?"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("uid=0 gid=0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0     100000      65536"), std::string::npos) << r.out;
  // Root of the user namespace has no power over the host's files: the read-only /proc entry
  // stays read-only.
  EXPECT_EQ(r.out.find("rc=0"), std::string::npos) << r.out;
}

TEST_F(ContainerTest, MemoryHogIsOomKilledAndStateAndStatusSaySo) {
  config_["linux"]["resources"]["memory"] = {{"limit", 32 << 20}, {"swap", 32 << 20}};
  // dd's 64 MiB block buffer does not fit in 32 MiB.
  config_["process"]["args"] = {"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"};
  write_config();
  ASSERT_EQ(hv_create().exit_status, 0);
  ASSERT_EQ(hv({"start", id_}).exit_status, 0);
  nlohmann::json state;
  for (int i = 0; i < 250; ++i) {
    state = nlohmann::json::parse(hv({"state", id_}).out);
    if (state["status"] == "stopped") {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(state["status"], "stopped") << state.dump();
  EXPECT_EQ(state.value("oomKilled", false), true) << state.dump();
  EXPECT_EQ(hv({"delete", id_}).exit_status, 0);

  // In the foreground: 128 + SIGKILL, and the reason on standard error.
  ProcessResult r = hv({"run", "--bundle", bundle_, id_});
  EXPECT_EQ(r.exit_status, 137) << r.err;
  EXPECT_NE(r.err.find("out-of-memory killer"), std::string::npos) << r.err;
  // The host is fine and so is a container that stays within its limit.
  ProcessResult small =
      run_in_container({"dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=1"});
  EXPECT_EQ(small.exit_status, 0) << small.err;
}

TEST_F(ContainerTest, RacingCommandsOnOneContainerStayConsistent) {
  config_["process"]["args"] = {"sleep", "100"};
  write_config();
  // Eight creates of one ID at once: exactly one wins, the rest are told it exists.
  std::vector<std::thread> threads;
  std::atomic<int> created{0}, refused{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      ProcessResult r = hv_create(std::to_string(i));
      if (r.exit_status == 0) {
        ++created;
      } else if (r.err.find("already exists") != std::string::npos) {
        ++refused;
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  threads.clear();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(refused.load(), 7);
  ASSERT_EQ(hv({"start", id_}).exit_status, 0);
  // pause/resume/state from several processes: every state read parses and names a real status.
  std::atomic<int> bad_states{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 5; ++round) {
        hv({i % 2 == 0 ? "pause" : "resume", id_});
        ProcessResult state = hv({"state", id_});
        const auto parsed = nlohmann::json::parse(state.out, nullptr, false);
        if (parsed.is_discarded() ||
            (parsed["status"] != "running" && parsed["status"] != "paused")) {
          ++bad_states;
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  threads.clear();
  EXPECT_EQ(bad_states.load(), 0);
  // Four forced deletes at once: all succeed (a forced delete of a gone container is not an
  // error), and the container, its cgroup and its state are gone.
  std::atomic<int> deleted{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] { deleted += hv({"delete", "--force", id_}).exit_status == 0; });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(deleted.load(), 4);
  EXPECT_NE(hv({"state", id_}).exit_status, 0);
}

TEST_F(ContainerTest, SeccompNotifyListenerGoesToTheAgent) {
  // The test is the seccomp agent: it listens on listenerPath, gets the container's listener
  // with the process state, and answers the container's mkdir with EOPNOTSUPP.
  const std::string agent_path = dir_ + "/agent.sock";
  const int agent = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(agent, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", agent_path.c_str());
  ASSERT_EQ(::bind(agent, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(agent, 1), 0);
  config_["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"listenerPath", agent_path},
      {"listenerMetadata", "hello-agent"},
      {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
  ProcessResult run;
  std::thread runtime([&] { run = run_in_container({"sh", "-c", "mkdir /x; echo rc=$?"}); });

  std::string message;
  int listener = -1;
  pollfd ready{agent, POLLIN, 0};
  if (::poll(&ready, 1, 30000) == 1) {
    const int connection = ::accept4(agent, nullptr, nullptr, SOCK_CLOEXEC);
    std::array<char, 8192> buffer{};
    iovec iov{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr header{};
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(connection, &header, MSG_CMSG_CLOEXEC);
    if (n > 0) {
      message.assign(buffer.data(), static_cast<size_t>(n));
      if (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr && c->cmsg_type == SCM_RIGHTS) {
        std::memcpy(&listener, CMSG_DATA(c), sizeof(int));
      }
    }
    ::close(connection);
  }
  if (listener >= 0) {
    seccomp_notif request{};
    if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &request) == 0) {
      seccomp_notif_resp response{};
      response.id = request.id;
      response.error = -EOPNOTSUPP;
      ::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &response);
    }
    ::close(listener);
  }
  runtime.join();
  ::close(agent);
  ASSERT_GE(listener, 0) << "no listener reached the agent; message: " << message;
  const auto state = nlohmann::json::parse(message, nullptr, false);
  ASSERT_FALSE(state.is_discarded()) << message;
  EXPECT_EQ(state["fds"], nlohmann::json({"seccompFd"})) << message;
  EXPECT_EQ(state["metadata"], "hello-agent");
  EXPECT_GT(state["pid"].get<int>(), 0);
  EXPECT_EQ(state["state"]["id"], id_);
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_NE(run.out.find("rc=1"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("Operation not supported"), std::string::npos) << run.err;
}

TEST_F(ContainerTest, CgroupMountShowsTheContainersOwnCgroups) {
  // With a cgroup namespace (the default spec has one) every hierarchy's root is the
  // container's cgroup, and the read-only cgroup mount shows those same directories.
  config_["linux"]["resources"]["pids"]["limit"] = 42;
  ProcessResult r =
      run_in_container({"sh", "-c",
                        "grep -c ':/$' /proc/self/cgroup; grep -vc ':/$' /proc/self/cgroup; "
                        "cat /sys/fs/cgroup/pids/pids.max || cat /sys/fs/cgroup/pids.max; "
                        "touch /sys/fs/cgroup/x 2>&1"});
  ASSERT_EQ(r.exit_status, 1) << r.out << r.err;  // the touch fails
  std::istringstream lines(r.out);
  int at_root = 0, elsewhere = -1;
  std::string pids_max, touch;
  lines >> at_root >> elsewhere >> pids_max;
  std::getline(lines >> std::ws, touch);
  EXPECT_GT(at_root, 0) << r.out;
  EXPECT_EQ(elsewhere, 0) << r.out;
  EXPECT_EQ(pids_max, "42") << r.out;
  EXPECT_NE(touch.find("Read-only file system"), std::string::npos) << r.out;

  // Without a cgroup namespace the process sees its host path, and the mount binds the
  // container's directories from the host.
  auto& namespaces = config_["linux"]["namespaces"];
  namespaces.erase(std::remove_if(namespaces.begin(), namespaces.end(),
                                  [](const nlohmann::json& ns) { return ns["type"] == "cgroup"; }),
                   namespaces.end());
  ProcessResult shared = run_in_container(
      {"sh", "-c",
       "grep -c ':/hv/" + id_ + "$' /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max"});
  ASSERT_EQ(shared.exit_status, 0) << shared.out << shared.err;
  EXPECT_NE(shared.out.find("\n42\n"), std::string::npos) << shared.out;
  EXPECT_NE(shared.out.substr(0, 1), "0") << shared.out;
}

TEST_F(ContainerTest, DebugLinesAndErrorsGoToTheLogInJson) {
  config_["process"]["args"] = {"true"};
  write_config();
  const std::string log = dir_ + "/runtime.log";
  ProcessResult r =
      hv({"--debug", "--log", log, "--log-format", "json", "run", "--bundle", bundle_, id_});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(hv({"--log", log, "--log-format", "json", "state", id_}).exit_status, 4);
  std::istringstream lines(read_text(log));
  std::vector<nlohmann::json> entries;
  for (std::string line; std::getline(lines, line);) {
    entries.push_back(nlohmann::json::parse(line));  // every line is one JSON object
  }
  ASSERT_GE(entries.size(), 4u);
  EXPECT_EQ(entries.front()["level"], "debug");
  EXPECT_NE(entries.front()["msg"].get<std::string>().find("create " + id_), std::string::npos);
  EXPECT_EQ(entries.back()["level"], "error");
  EXPECT_EQ(entries.back()["msg"], "container " + id_ + " does not exist");
  EXPECT_TRUE(entries.back().contains("time"));
}

TEST_F(ContainerTest, TimeNamespaceWithOffsets) {
  // A day ahead on the boot-time clock: /proc/uptime inside reads at least 86400 s more than
  // the host's (read before the container starts).
  const double host_uptime = std::stod(read_text("/proc/uptime"));
  config_["linux"]["namespaces"].push_back({{"type", "time"}});
  config_["linux"]["timeOffsets"] = {{"boottime", {{"secs", 86400}, {"nanosecs", 0}}}};
  ProcessResult r = run_in_container({"cat", "/proc/uptime"});
  ASSERT_EQ(r.exit_status, 0) << r.err;
  const double inside = std::stod(r.out);
  EXPECT_GE(inside, host_uptime + 86400) << r.out;
  EXPECT_LT(inside, host_uptime + 86400 + 60) << r.out;
}

TEST_F(ContainerTest, RootlessContainerAsAnUnprivilegedUser) {
  // hv run by an ordinary user (uid 1000): `spec --rootless` maps that user to root of a user
  // namespace; with no cgroup delegated and no limit asked for, it runs without a cgroup.
  if (!executable_exists("setpriv")) {
    GTEST_SKIP() << "setpriv (util-linux) is missing";
  }
  constexpr int kUser = 1000;
  fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  const std::string bundle = dir_ + "/rootless";
  fs::create_directories(bundle);
  fs::copy(bundle_ + "/rootfs", bundle + "/rootfs",
           fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  const std::string state = dir_ + "/rootless-state";
  fs::create_directories(state);
  for (const auto& entry : fs::recursive_directory_iterator(bundle)) {
    ASSERT_EQ(::lchown(entry.path().c_str(), kUser, kUser), 0);
  }
  ASSERT_EQ(::lchown(bundle.c_str(), kUser, kUser), 0);
  ASSERT_EQ(::lchown(state.c_str(), kUser, kUser), 0);
  auto as_user = [&](std::vector<std::string> args) {
    args.insert(args.begin(),
                {"setpriv", "--reuid", std::to_string(kUser), "--regid", std::to_string(kUser),
                 "--clear-groups", HV_BINARY, "oci", "--root", state});
    return run_process(args, 60s);
  };
  ProcessResult spec = as_user({"spec", "--rootless", "--bundle", bundle});
  ASSERT_EQ(spec.exit_status, 0) << spec.err;
  nlohmann::json config = nlohmann::json::parse(read_text(bundle + "/config.json"));
  EXPECT_EQ(config["linux"]["uidMappings"][0]["hostID"], kUser);
  config["process"]["terminal"] = false;
  config["process"]["args"] = {"sh", "-c", "id; cat /proc/self/uid_map; echo pid=$$"};
  std::ofstream(bundle + "/config.json") << config.dump();
  ProcessResult r = as_user({"run", "--bundle", bundle, "rootless-" + id_});
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("uid=0 gid=0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0       1000          1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pid=1"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::is_empty(state)) << "rootless state left behind";

  // A limit needs a cgroup, which this user cannot create: refused, and nothing is left.
  config["linux"]["resources"]["pids"]["limit"] = 10;
  std::ofstream(bundle + "/config.json") << config.dump();
  ProcessResult limited = as_user({"run", "--bundle", bundle, "rootless-" + id_});
  EXPECT_NE(limited.exit_status, 0);
  EXPECT_NE(limited.err.find("cannot create the cgroup"), std::string::npos) << limited.err;
  EXPECT_TRUE(fs::is_empty(state)) << "state left behind after a refused creation";
}

}  // namespace
}  // namespace hv::test
