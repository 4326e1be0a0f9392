// The supervisor (`hv serve`) end to end: many guests of every engine at once with failures that
// must stay each guest's own, hostile API input, re-adoption after the supervisor is killed, the
// console stream, and nothing left behind after `hv rm`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "host_state.hpp"
#include "process.hpp"

namespace hv::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Whether `pid` is still a live process (a zombie waiting for init to reap it is not).
bool process_alive(pid_t pid) {
  for (int i = 0; i < 50; ++i) {
    const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || stat.substr(close + 2, 1) == "Z") {
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

bool kvm_usable() {
  return ::access("/dev/kvm", R_OK | W_OK) == 0;
}

// One raw HTTP exchange on the API socket; the whole response (head and body) comes back.
std::string raw_exchange(const std::string& socket_path, const std::string& request,
                         std::chrono::milliseconds limit = 30s) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return "";
  }
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      break;  // the server may close early (413): what it answered is still read below
    }
    sent += static_cast<size_t>(n);
  }
  std::string response;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  char buffer[65536];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) {
      continue;
    }
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      break;
    }
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

struct Reply {
  int status = 0;
  nlohmann::json body;
  std::string raw;
};

Reply api(const std::string& socket_path, const std::string& method, const std::string& target,
          const std::string& body = "") {
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: hv\r\nConnection: close\r\n";
  if (!body.empty() || method == "POST") {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  Reply reply;
  reply.raw = raw_exchange(socket_path, request);
  if (reply.raw.size() > 12 && reply.raw.starts_with("HTTP/1.1 ")) {
    reply.status = std::stoi(reply.raw.substr(9, 3));
  }
  const size_t head_end = reply.raw.find("\r\n\r\n");
  if (head_end != std::string::npos) {
    reply.body = nlohmann::json::parse(reply.raw.substr(head_end + 4), nullptr, false);
  }
  return reply;
}

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "the supervisor needs root (cgroups, namespaces)";
    }
    if (::access("/bin/busybox", X_OK) != 0) {
      GTEST_SKIP() << "/bin/busybox missing: apt-get install busybox-static";
    }
    char pattern[] = "/tmp/hv-supervisor-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    state_dir_ = dir_ + "/state";
    socket_ = dir_ + "/hv.sock";
    rootfs_ = dir_ + "/rootfs";
    fs::create_directories(rootfs_ + "/bin");
    fs::copy_file("/bin/busybox", rootfs_ + "/bin/busybox");
    for (const char* applet : {"sh", "echo", "cat", "sleep", "dd", "read", "head"}) {
      fs::create_symlink("busybox", rootfs_ + "/bin/" + applet);
    }
    mounts_before_ = mounts();
    start_supervisor();
  }

  void TearDown() override {
    if (dir_.empty()) {
      return;
    }
    if (supervisor_pid_ > 0) {
      // Whatever a failed test left: remove every guest through the API, then stop.
      Reply guests = api(socket_, "GET", "/v1/guests");
      if (guests.body.is_array()) {
        for (const auto& g : guests.body) {
          api(socket_, "DELETE", "/v1/guests/" + g["name"].get<std::string>() + "?force=true");
        }
      }
      stop_supervisor(SIGTERM);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void start_supervisor() {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const int log = ::open((dir_ + "/serve.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execl(HV_BINARY, HV_BINARY, "serve", "--state-dir", state_dir_.c_str(), "--socket",
              socket_.c_str(), nullptr);
      ::_exit(127);
    }
    supervisor_pid_ = pid;
    for (int i = 0; i < 100; ++i) {
      if (api(socket_, "GET", "/v1/version").status == 200) {
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "hv serve did not answer: " << read_text(dir_ + "/serve.log");
  }

  void stop_supervisor(int signal) {
    ::kill(supervisor_pid_, signal);
    int status = 0;
    ::waitpid(supervisor_pid_, &status, 0);
    supervisor_pid_ = -1;
  }

  std::string machine_spec(const std::string& name, const std::string& engine,
                           const std::string& image, nlohmann::json extra = {}) {
    names_.insert(name);
    nlohmann::json spec = {{"name", name},
                           {"engine", engine},
                           {"kernel", std::string(HV_GUESTS_DIR) + "/" + image},
                           {"memory_mib", 16}};
    if (extra.is_object()) {
      spec.update(extra);
    }
    return spec.dump();
  }

  std::string container_spec(const std::string& name, std::vector<std::string> args,
                             nlohmann::json extra = {}) {
    names_.insert(name);
    nlohmann::json spec = {
        {"name", name}, {"engine", "container"}, {"rootfs", rootfs_}, {"args", args}};
    if (extra.is_object()) {
      spec.update(extra);
    }
    return spec.dump();
  }

  // Waits until the guest is no longer running; returns its description.
  nlohmann::json wait_for_end(const std::string& name, std::chrono::seconds limit = 120s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    nlohmann::json last;
    while (std::chrono::steady_clock::now() < deadline) {
      last = api(socket_, "GET", "/v1/guests/" + name).body;
      if (last.is_object() && last.value("state", "") != "running" &&
          last.value("state", "") != "created") {
        return last;
      }
      std::this_thread::sleep_for(100ms);
    }
    return last;
  }

  std::string logs(const std::string& name) {
    const std::string raw =
        raw_exchange(socket_, "GET /v1/guests/" + name + "/logs HTTP/1.0\r\nHost: hv\r\n\r\n");
    const size_t head_end = raw.find("\r\n\r\n");
    return head_end == std::string::npos ? "" : raw.substr(head_end + 4);
  }

  // The host's mount points but this test's and the podman tests' (they may run meanwhile).
  std::vector<std::string> mounts() const {
    std::vector<std::string> points = host_mounts(dir_);
    std::erase_if(points,
                  [](const std::string& point) { return point.starts_with(kPodmanTestDirPrefix); });
    return points;
  }

  // Nothing of the supervisor's guests may be left on the host.
  void expect_nothing_left() {
    EXPECT_EQ(mounts(), mounts_before_);
    // Only this test's guests: others may run at the same time (ctest -j).
    for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup")) {
      for (const std::string& name : names_) {
        const fs::path cgroup = hierarchy.path() / "hv-guests" / name;
        EXPECT_FALSE(fs::exists(cgroup)) << "cgroup left: " << cgroup;
      }
    }
    EXPECT_FALSE(fs::exists(state_dir_ + "/guests") && !fs::is_empty(state_dir_ + "/guests"));
  }

  std::string dir_, state_dir_, socket_, rootfs_;
  std::vector<std::string> mounts_before_;
  std::set<std::string> names_;  // every guest name this test used
  pid_t supervisor_pid_ = -1;
};

TEST_F(SupervisorTest, ManyGuestsOfEveryEngineWithFailuresThatStayTheirOwn) {
  if (!kvm_usable()) {
    GTEST_SKIP() << "/dev/kvm is missing";
  }
  const std::string hello = read_text(std::string(HV_EXPECTED_DIR) + "/hello.out");
  const std::string triple = read_text(std::string(HV_EXPECTED_DIR) + "/triple.out");
  ASSERT_FALSE(hello.empty());
  struct Expected {
    std::string state, kind, output;
  };
  std::map<std::string, std::string> specs;
  std::map<std::string, Expected> expected;
  for (int i = 0; i < 18; ++i) {
    const std::string name = "kvm-" + std::to_string(i);
    // One card on a TAP the VMM creates: it must be gone with the VMM.
    nlohmann::json extra =
        i == 0 ? nlohmann::json{{"nets", {{{"tap", "hvsupt0"}}}}} : nlohmann::json::object();
    specs[name] = machine_spec(name, "kvm", "hello.elf", extra);
    expected[name] = {"exited", "debug-exit", hello};
  }
  specs["kvm-triple"] = machine_spec("kvm-triple", "kvm", "triple.elf");
  expected["kvm-triple"] = {"failed", "crash", triple};
  specs["kvm-killed"] = machine_spec("kvm-killed", "kvm", "loop.elf");
  expected["kvm-killed"] = {"failed", "killed", ""};
  for (int i = 0; i < 5; ++i) {
    const std::string name = "emu-" + std::to_string(i);
    specs[name] = machine_spec(name, "emulate", "hello.elf");
    expected[name] = {"exited", "debug-exit", hello};
  }
  for (int i = 0; i < 19; ++i) {
    const std::string name = "ctr-" + std::to_string(i);
    specs[name] = container_spec(name, {"sh", "-c", "echo container " + std::to_string(i)},
                                 {{"limits", {{"memory_mib", 64}, {"pids", 32}}}});
    expected[name] = {"exited", "exited", "container " + std::to_string(i) + "\n"};
  }
  specs["ctr-oom"] = container_spec("ctr-oom", {"dd", "if=/dev/zero", "of=/dev/null", "bs=64M"},
                                    {{"limits", {{"memory_mib", 16}}}});
  expected["ctr-oom"] = {"failed", "oom", ""};
  ASSERT_EQ(specs.size(), 45u);

  for (const auto& [name, spec] : specs) {
    const Reply created = api(socket_, "POST", "/v1/guests", spec);
    ASSERT_EQ(created.status, 201) << name << ": " << created.raw;
  }
  // Started all at once, from as many clients.
  std::vector<std::thread> starters;
  std::atomic<int> started{0};
  for (const auto& [name, spec] : specs) {
    starters.emplace_back([&, name = name] {
      if (api(socket_, "POST", "/v1/guests/" + name + "/start").status == 200) {
        ++started;
      }
    });
  }
  for (auto& t : starters) {
    t.join();
  }
  ASSERT_EQ(started.load(), 45);

  // The looping VM's VMM process dies by SIGKILL, from outside.
  const nlohmann::json victim = api(socket_, "GET", "/v1/guests/kvm-killed").body;
  ASSERT_EQ(victim.value("state", ""), "running") << victim.dump();
  const int victim_pid = victim.value("pid", 0);
  ASSERT_GT(victim_pid, 1);
  ASSERT_EQ(::kill(victim_pid, SIGKILL), 0);

  for (const auto& [name, want] : expected) {
    const nlohmann::json got = wait_for_end(name);
    ASSERT_TRUE(got.is_object()) << name;
    EXPECT_EQ(got.value("state", ""), want.state) << name << ": " << got.dump();
    ASSERT_TRUE(got["end"].is_object()) << name << ": " << got.dump();
    EXPECT_EQ(got["end"].value("kind", ""), want.kind) << name << ": " << got.dump();
    if (want.kind != "killed" && want.kind != "oom") {
      EXPECT_EQ(logs(name), want.output) << name << ": " << got.dump();
    }
  }
  const nlohmann::json killed = api(socket_, "GET", "/v1/guests/kvm-killed").body;
  EXPECT_EQ(killed["end"].value("message", ""), "the VMM process was killed by SIGKILL");

  // `hv ps` tells the three failures and why.
  const ProcessResult ps = run_process({HV_BINARY, "ps", "--socket", socket_});
  EXPECT_EQ(ps.exit_status, 0) << ps.err;
  for (const char* line : {"kvm-triple", "kvm-killed", "ctr-oom"}) {
    const size_t at = ps.out.find(line);
    ASSERT_NE(at, std::string::npos) << ps.out;
    const std::string row = ps.out.substr(at, ps.out.find('\n', at) - at);
    EXPECT_NE(row.find("failed"), std::string::npos) << row;
  }
  EXPECT_NE(ps.out.find("crash: vCPU 0: guest triple fault"), std::string::npos) << ps.out;
  EXPECT_NE(ps.out.find("killed: the VMM process was killed by SIGKILL"), std::string::npos)
      << ps.out;
  EXPECT_NE(ps.out.find("oom: the OOM killer ended"), std::string::npos) << ps.out;

  for (const auto& [name, spec] : specs) {
    const ProcessResult rm = run_process({HV_BINARY, "rm", "--socket", socket_, name});
    EXPECT_EQ(rm.exit_status, 0) << name << ": " << rm.err;
  }
  EXPECT_EQ(api(socket_, "GET", "/v1/guests").body, nlohmann::json::array());
  EXPECT_NE(run_process({"ip", "link", "show", "hvsupt0"}).exit_status, 0)
      << "the TAP device outlived its VMM";
  expect_nothing_left();
}

TEST_F(SupervisorTest, HostileRequestsGetClearErrorsAndChangeNothing) {
  ASSERT_EQ(api(socket_, "POST", "/v1/guests", container_spec("keep", {"true"})).status, 201);
  const nlohmann::json before = api(socket_, "GET", "/v1/guests").body;

  struct Case {
    std::string what, method, target, body;
    int status;
  };
  const std::vector<Case> cases = {
      {"malformed JSON", "POST", "/v1/guests", "{\"name\": ", 400},
      {"not an object", "POST", "/v1/guests", "[1,2]", 400},
      {"wrong type", "POST", "/v1/guests",
       R"({"name":"x","engine":"kvm","kernel":"/k","vcpus":"two"})", 400},
      {"unknown field", "POST", "/v1/guests",
       R"({"name":"x","engine":"kvm","kernel":"/k","memroy_mib":5})", 400},
      {"relative path", "POST", "/v1/guests", R"({"name":"x","engine":"kvm","kernel":"k"})", 400},
      {"traversal in a name", "POST", "/v1/guests",
       R"({"name":"../etc","engine":"kvm","kernel":"/k"})", 400},
      {"traversal in the path", "GET", "/v1/guests/..%2F..%2Fetc", "", 400},
      {"dot-dot segment", "GET", "/v1/guests/../../etc/passwd", "", 400},
      {"taken name", "POST", "/v1/guests", container_spec("keep", {"true"}), 409},
      {"unknown guest", "POST", "/v1/guests/nobody/start", "", 404},
      {"unknown route", "GET", "/v1/nothing", "", 404},
      {"wrong method", "PUT", "/v1/guests/keep", "", 405},
      {"unknown query parameter", "DELETE", "/v1/guests/keep?forse=true", "", 400},
      {"bad timeout", "POST", "/v1/guests/keep/stop?timeout=-1", "", 400},
      {"stop of a guest not running", "POST", "/v1/guests/keep/stop", "", 409},
      {"resume of a guest not paused", "POST", "/v1/guests/keep/resume", "", 409},
      {"console without upgrade", "POST", "/v1/guests/keep/console", "", 400},
  };
  for (const Case& c : cases) {
    const Reply reply = api(socket_, c.method, c.target, c.body);
    EXPECT_EQ(reply.status, c.status) << c.what << ": " << reply.raw;
    if (reply.status >= 400) {
      EXPECT_TRUE(reply.body.is_object() && reply.body.contains("error")) << c.what << reply.raw;
    }
  }
  // A body over the 1 MiB limit is refused without being read whole.
  const std::string huge(2 << 20, ' ');
  const std::string big =
      raw_exchange(socket_,
                   "POST /v1/guests HTTP/1.1\r\nHost: hv\r\nContent-Type: application/json\r\n"
                   "Content-Length: " +
                       std::to_string(huge.size()) + "\r\n\r\n" + huge);
  EXPECT_TRUE(big.starts_with("HTTP/1.1 413")) << big.substr(0, 200);
  const std::string garbage = raw_exchange(socket_, "\x01\x02 garbage\r\n\r\n");
  EXPECT_TRUE(garbage.starts_with("HTTP/1.1 400")) << garbage.substr(0, 200);

  // Concurrent requests on one name: one create wins, one start wins, the rest are refused.
  std::atomic<int> created{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      const int status =
          api(socket_, "POST", "/v1/guests", container_spec("race", {"sleep", "5"})).status;
      (status == 201 ? created : conflicts)++;
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(conflicts.load(), 7);
  threads.clear();
  std::atomic<int> starts{0}, refused{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      const int status = api(socket_, "POST", "/v1/guests/race/start").status;
      if (status == 200) {
        ++starts;
      } else if (status == 409) {
        ++refused;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(starts.load(), 1);
  EXPECT_EQ(refused.load(), 7);
  EXPECT_EQ(api(socket_, "DELETE", "/v1/guests/race?force=true").status, 204);

  EXPECT_EQ(api(socket_, "GET", "/v1/guests").body, before);
  EXPECT_EQ(api(socket_, "DELETE", "/v1/guests/keep").status, 204);
  expect_nothing_left();
}

TEST_F(SupervisorTest, KilledSupervisorReadoptsRunningGuestsAndLosesNoRecord) {
  ASSERT_EQ(api(socket_, "POST", "/v1/guests", container_spec("sleeper", {"sleep", "600"})).status,
            201);
  ASSERT_EQ(api(socket_, "POST", "/v1/guests/sleeper/start").status, 200);
  ASSERT_EQ(api(socket_, "POST", "/v1/guests", container_spec("brief", {"echo", "done"})).status,
            201);
  ASSERT_EQ(api(socket_, "POST", "/v1/guests/brief/start").status, 200);
  ASSERT_EQ(wait_for_end("brief").value("state", ""), "exited");
  ASSERT_EQ(api(socket_, "POST", "/v1/guests", container_spec("idle", {"true"})).status, 201);
  const int pid = api(socket_, "GET", "/v1/guests/sleeper").body.value("pid", 0);
  ASSERT_GT(pid, 1);

  stop_supervisor(SIGKILL);
  ASSERT_TRUE(process_alive(pid)) << "the guest died with its supervisor";
  start_supervisor();

  const nlohmann::json sleeper = api(socket_, "GET", "/v1/guests/sleeper").body;
  EXPECT_EQ(sleeper.value("state", ""), "running") << sleeper.dump();
  EXPECT_EQ(sleeper.value("pid", 0), pid);
  EXPECT_EQ(api(socket_, "GET", "/v1/guests/brief").body.value("state", ""), "exited");
  EXPECT_EQ(api(socket_, "GET", "/v1/guests/idle").body.value("state", ""), "created");
  EXPECT_EQ(api(socket_, "GET", "/v1/guests").body.size(), 3u);

  // The adopted guest is still managed: paused, resumed, stopped.
  EXPECT_EQ(api(socket_, "POST", "/v1/guests/sleeper/pause").status, 200);
  EXPECT_EQ(api(socket_, "POST", "/v1/guests/sleeper/resume").status, 200);
  const Reply stopped = api(socket_, "POST", "/v1/guests/sleeper/stop?timeout=1");
  EXPECT_EQ(stopped.status, 200) << stopped.raw;
  EXPECT_EQ(stopped.body.value("state", ""), "exited") << stopped.raw;
  EXPECT_EQ(stopped.body["end"].value("kind", ""), "stopped") << stopped.raw;
  EXPECT_FALSE(process_alive(pid));
  for (const char* name : {"sleeper", "brief", "idle"}) {
    EXPECT_EQ(api(socket_, "DELETE", std::string("/v1/guests/") + name).status, 204) << name;
  }
  expect_nothing_left();
}

TEST_F(SupervisorTest, ConsoleAttachCarriesBothWaysAndLogsFollow) {
  ASSERT_EQ(api(socket_, "POST", "/v1/guests",
                container_spec("talk", {"sh", "-c", "echo ready; read line; echo got:$line"}))
                .status,
            201);
  ASSERT_EQ(api(socket_, "POST", "/v1/guests/talk/start").status, 200);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const std::string upgrade =
      "POST /v1/guests/talk/console HTTP/1.1\r\nHost: hv\r\nConnection: Upgrade\r\n"
      "Upgrade: hv-console\r\n\r\n";
  ASSERT_EQ(::send(fd, upgrade.data(), upgrade.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(upgrade.size()));
  std::string seen;
  auto read_until = [&](const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    char buffer[4096];
    while (seen.find(text) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 200) > 0) {
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) {
          break;
        }
        seen.append(buffer, static_cast<size_t>(n));
      }
    }
    return seen.find(text) != std::string::npos;
  };
  ASSERT_TRUE(read_until("HTTP/1.1 101")) << seen;
  // "ready" may have gone out before the attach; the log has it either way.
  const std::string line = "hello\n";
  ASSERT_EQ(::send(fd, line.data(), line.size(), MSG_NOSIGNAL), 6);
  EXPECT_TRUE(read_until("got:hello")) << seen;
  ::close(fd);
  EXPECT_EQ(wait_for_end("talk").value("state", ""), "exited");
  const ProcessResult logs_result = run_process({HV_BINARY, "logs", "--socket", socket_, "talk"});
  EXPECT_EQ(logs_result.out, "ready\ngot:hello\n") << logs_result.err;
  EXPECT_EQ(api(socket_, "DELETE", "/v1/guests/talk").status, 204);

  // The same through `hv console`: what it reads goes in, the guest's answer comes out, and it
  // ends when the guest does.
  ASSERT_EQ(api(socket_, "POST", "/v1/guests",
                container_spec("talk2", {"sh", "-c", "read line; echo got:$line"}))
                .status,
            201);
  ASSERT_EQ(api(socket_, "POST", "/v1/guests/talk2/start").status, 200);
  const ProcessResult attached =
      run_process({HV_BINARY, "console", "--socket", socket_, "talk2"}, 30s, "again\n");
  EXPECT_EQ(attached.exit_status, 0) << attached.err;
  EXPECT_NE(attached.out.find("got:again"), std::string::npos) << attached.out << attached.err;
  EXPECT_EQ(wait_for_end("talk2").value("state", ""), "exited");
  EXPECT_EQ(api(socket_, "DELETE", "/v1/guests/talk2").status, 204);

  // `hv logs -f` follows the output as it comes and returns when the guest ends.
  ASSERT_EQ(api(socket_, "POST", "/v1/guests",
                container_spec("slow", {"sh", "-c", "echo one; sleep 1; echo two"}))
                .status,
            201);
  ASSERT_EQ(api(socket_, "POST", "/v1/guests/slow/start").status, 200);
  const ProcessResult followed =
      run_process({HV_BINARY, "logs", "-f", "--socket", socket_, "slow"}, 30s);
  EXPECT_FALSE(followed.timed_out);
  EXPECT_EQ(followed.exit_status, 0) << followed.err;
  EXPECT_EQ(followed.out, "one\ntwo\n") << followed.err;
  EXPECT_EQ(api(socket_, "DELETE", "/v1/guests/slow").status, 204);
  expect_nothing_left();
}

// `hv run -f` takes the same spec without a supervisor: a machine and a container, relative paths
// resolved against the spec's directory, and a bad spec refused with the field named.
TEST(RunSpecTest, SameSpecRunsInTheForeground) {
  if (::geteuid() != 0 || ::access("/bin/busybox", X_OK) != 0) {
    GTEST_SKIP() << "needs root and busybox-static";
  }
  char pattern[] = "/tmp/hv-runspec-test-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  fs::create_directories(dir + "/rootfs/bin");
  fs::copy_file("/bin/busybox", dir + "/rootfs/bin/busybox");
  fs::create_symlink("busybox", dir + "/rootfs/bin/sh");
  fs::copy_file(std::string(HV_GUESTS_DIR) + "/hello.elf", dir + "/hello.elf");
  auto write = [&](const std::string& name, const nlohmann::json& spec) {
    std::ofstream(dir + "/" + name) << spec.dump();
    return dir + "/" + name;
  };
  const std::string machine =
      write("machine.json",
            {{"name", "m"}, {"engine", "emulate"}, {"kernel", "hello.elf"}, {"memory_mib", 16}});
  ProcessResult r = run_process({HV_BINARY, "run", "-f", machine});
  EXPECT_EQ(r.out, read_text(std::string(HV_EXPECTED_DIR) + "/hello.out")) << r.err;
  EXPECT_EQ(r.exit_status, 1) << r.err;  // the guest's debug-exit answer, as with --kernel

  const std::string container =
      write("container.json", {{"name", "runspec-c"},
                               {"engine", "container"},
                               {"rootfs", "rootfs"},
                               {"args", {"sh", "-c", "echo from the container; exit 3"}}});
  r = run_process({HV_BINARY, "run", "-f", container});
  EXPECT_EQ(r.out, "from the container\n") << r.err;
  EXPECT_EQ(r.exit_status, 3) << r.err;

  const std::string bad =
      write("bad.json", {{"name", "b"}, {"engine", "kvm"}, {"kernel", "hello.elf"}, {"vcpu", 1}});
  r = run_process({HV_BINARY, "run", "-f", bad});
  EXPECT_EQ(r.exit_status, 18) << r.err;
  EXPECT_NE(r.err.find("unknown field \"vcpu\""), std::string::npos) << r.err;
  r = run_process({HV_BINARY, "run", "-f", dir + "/missing.json"});
  EXPECT_EQ(r.exit_status, 4) << r.err;
  EXPECT_NE(r.err.find("missing.json"), std::string::npos) << r.err;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace hv::test
