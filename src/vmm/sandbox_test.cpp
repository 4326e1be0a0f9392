// The VMM sandbox, tested in forked children so that the test process itself is never confined:
// what each role's seccomp filter kills and what it lets through, what the mount jail holds, and
// that the host's mount table and /tmp are untouched.
#include "vmm/sandbox.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hv {
namespace {

struct ChildResult {
  int status = 0;      // from waitpid
  std::string output;  // what the child wrote to its report pipe
};

void report(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      return;
    }
    done += static_cast<size_t>(n);
  }
}

std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) {
      return text;
    }
    text.append(buffer, static_cast<size_t>(n));
  }
}

// Runs `body` in a forked child; its return value is the exit status. `body` gets the write end
// of the report pipe. `while_running`, if set, runs in the parent with the child's pid once the
// child wrote a line ending in "ready\n"; the child then waits for the parent to close `go`.
ChildResult run_child(const std::function<int(int report_fd, int go_fd)>& body,
                      const std::function<void(pid_t)>& while_running = {}) {
  int out[2];
  int go[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(out[0]);
    ::close(go[1]);
    ::_exit(body(out[1], go[0]));
  }
  ::close(out[1]);
  ::close(go[0]);
  ChildResult result;
  if (while_running) {
    // Up to "ready\n", then let the test look at the running child.
    char c = 0;
    while (!result.output.ends_with("ready\n") && ::read(out[0], &c, 1) == 1) {
      result.output.push_back(c);
    }
    if (result.output.ends_with("ready\n")) {
      while_running(pid);
    }
  }
  ::close(go[1]);
  result.output += read_all(out[0]);
  ::close(out[0]);
  EXPECT_EQ(::waitpid(pid, &result.status, 0), pid);
  return result;
}

bool killed_by_sigsys(const ChildResult& r) {
  return WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSYS;
}

std::string describe(const ChildResult& r) {
  std::ostringstream s;
  if (WIFEXITED(r.status)) {
    s << "exited with " << WEXITSTATUS(r.status);
  } else if (WIFSIGNALED(r.status)) {
    s << "killed by signal " << WTERMSIG(r.status) << " (" << strsignal(WTERMSIG(r.status)) << ")";
  }
  s << "; output: " << r.output;
  return s.str();
}

// Confines the child's calling thread with `role` alone (no jail): no_new_privs lets an
// unprivileged filter load.
int confine_child(ThreadRole role, int report_fd) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    report(report_fd, "no_new_privs failed\n");
    return 2;
  }
  if (Status s = install_thread_filter(role); !s) {
    report(report_fd, s.error().to_string() + "\n");
    return 3;
  }
  return 0;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::set<std::string> list_dir(const std::string& path) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

constexpr ThreadRole kAllRoles[] = {ThreadRole::Vmm,   ThreadRole::Vcpu,
                                    ThreadRole::Io,    ThreadRole::Console,
                                    ThreadRole::Timer, ThreadRole::ConsoleRelay};

TEST(SandboxFilters, EveryRoleKillsSocketWithSigsys) {
  for (ThreadRole role : kAllRoles) {
    ChildResult r = run_child([role](int out, int) {
      if (int rc = confine_child(role, out); rc != 0) {
        return rc;  // not confined: an exit status, not SIGSYS
      }
      // Not even reported: the timer role cannot write.
      return ::socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 1;
    });
    EXPECT_TRUE(killed_by_sigsys(r)) << thread_role_name(role) << ": " << describe(r);
  }
}

TEST(SandboxFilters, VcpuRoleKillsOpeningFiles) {
  ChildResult r = run_child([](int out, int) {
    if (int rc = confine_child(ThreadRole::Vcpu, out); rc != 0) {
      return rc;
    }
    const int fd = ::open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    report(out, "open returned " + std::to_string(fd) + "\n");
    return 0;
  });
  EXPECT_TRUE(killed_by_sigsys(r)) << describe(r);
}

TEST(SandboxFilters, VcpuRoleKillsForkAndSignalsToOtherProcesses) {
  ChildResult fork_result = run_child([](int out, int) {
    if (int rc = confine_child(ThreadRole::Vcpu, out); rc != 0) {
      return rc;
    }
    const pid_t pid = ::fork();  // clone without CLONE_THREAD
    if (pid == 0) {
      ::_exit(0);
    }
    report(out, "fork returned " + std::to_string(pid) + "\n");
    return 0;
  });
  EXPECT_TRUE(killed_by_sigsys(fork_result)) << describe(fork_result);

  ChildResult kill_result = run_child([](int out, int) {
    if (int rc = confine_child(ThreadRole::Vcpu, out); rc != 0) {
      return rc;
    }
    const pid_t parent = ::getppid();
    // Signal 0 only checks permission; the filter must stop it before the kernel does.
    const long rc = ::syscall(SYS_tgkill, parent, parent, 0);
    report(out, "tgkill returned " + std::to_string(rc) + "\n");
    return 0;
  });
  EXPECT_TRUE(killed_by_sigsys(kill_result)) << describe(kill_result);
}

TEST(SandboxFilters, VcpuRoleAllowsWhatVcpuThreadsDo) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's runtime makes system calls of its own when a thread starts "
                  "(the VMM's list is for hv's code); the release build runs this test";
#endif
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  ChildResult r = run_child([&](int out, int) {
    // In the VMM, the vCPU threads are never the process's first: glibc sets up its thread
    // signals (rt_sigaction) on the first pthread_create, on the main thread.
    std::thread([] {}).join();
    if (int rc = confine_child(ThreadRole::Vcpu, out); rc != 0) {
      return rc;
    }
    // A write to a pipe (the console output), malloc large and small, a thread (the para-virtual
    // timer's), a contended mutex and a condition variable (futex), a signal to our own thread.
    if (::write(pipe_fds[1], "x", 1) != 1) {
      return 4;
    }
    std::vector<char> big(64 << 20, 1);
    std::mutex mutex;
    std::condition_variable cv;
    int turn = 0;
    std::thread other([&] {
      for (int i = 0; i < 100; ++i) {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return turn % 2 == 1; });
        ++turn;
        cv.notify_all();
      }
    });
    for (int i = 0; i < 100; ++i) {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return turn % 2 == 0; });
      ++turn;
      cv.notify_all();
    }
    other.join();
    if (::syscall(SYS_tgkill, ::getpid(), ::gettid(), 0) != 0) {
      return 5;
    }
    report(out, "turns " + std::to_string(turn) + " bytes " + std::to_string(big.size()) + "\n");
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << describe(r);
  EXPECT_EQ(r.output, "turns 200 bytes 67108864\n");
  char c = 0;
  EXPECT_EQ(::read(pipe_fds[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST(SandboxFilters, ExecutableMemoryIsRefused) {
  ChildResult r = run_child([](int out, int) {
    if (int rc = confine_child(ThreadRole::Io, out); rc != 0) {
      return rc;
    }
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    report(out, p == MAP_FAILED ? "failed\n" : "mapped\n");
    return 0;
  });
  EXPECT_TRUE(killed_by_sigsys(r)) << describe(r);
}

// The roles' lists are what the docs say: the vCPU role cannot open files or wait on epoll, the
// console cannot touch disks, every list is within the process role.
TEST(SandboxFilters, RoleListsAreNestedInTheVmmRole) {
  const std::vector<std::string> vmm = role_syscalls(ThreadRole::Vmm);
  for (ThreadRole role : kAllRoles) {
    for (const std::string& name : role_syscalls(role)) {
      EXPECT_NE(std::ranges::find(vmm, name), vmm.end())
          << thread_role_name(role) << " allows " << name << ", which the vmm role does not";
    }
  }
  const std::vector<std::string> vcpu = role_syscalls(ThreadRole::Vcpu);
  for (const char* absent : {"openat", "socket", "execve", "epoll_wait", "mount", "ptrace"}) {
    EXPECT_EQ(std::ranges::find(vcpu, absent), vcpu.end()) << absent;
  }
  const std::vector<std::string> console = role_syscalls(ThreadRole::Console);
  EXPECT_EQ(std::ranges::find(console, "pwrite64"), console.end());
  EXPECT_EQ(role_ioctls(ThreadRole::Console), std::vector<std::string>{"KVM_IRQ_LINE"});
}

// /proc/PID/status of a confined child, as the host sees it.
void expect_confined_status(pid_t pid) {
  const std::string status = read_text("/proc/" + std::to_string(pid) + "/status");
  for (const char* field : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_NE(status.find(std::string(field) + ":\t0000000000000000\n"), std::string::npos)
        << field << " is not empty:\n"
        << status;
  }
  EXPECT_NE(status.find("NoNewPrivs:\t1\n"), std::string::npos) << status;
  EXPECT_NE(status.find("Seccomp:\t2\n"), std::string::npos) << status;
}

class SandboxJail : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/hv-sandbox-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    writable_ = pattern;
    traces_before_ = jail_traces();
  }
  void TearDown() override {
    // Nothing of the jail reached the host: no mount on or below the jail's mount point, and
    // none of the jail's top-level entries in the host's /tmp.
    EXPECT_EQ(jail_traces(), traces_before_);
    std::filesystem::remove_all(writable_);
  }

  // What the jail would leave on the host if it were built outside its mount namespace: mounts
  // at /tmp or below its entries there, and those entries themselves. Only these, not the whole
  // of /tmp and the mount table, which tests running at the same time (ctest -j) change.
  static std::set<std::string> jail_traces() {
    static const std::set<std::string> kJailEntries = {"dev", "sys", "tmp"};
    std::set<std::string> traces;
    std::istringstream mountinfo(read_text("/proc/self/mountinfo"));
    std::string line;
    while (std::getline(mountinfo, line)) {
      std::istringstream fields(line);
      std::string id, parent, device, root, point;
      fields >> id >> parent >> device >> root >> point;
      for (const std::string& entry : kJailEntries) {
        if (point == "/tmp" || point.starts_with("/tmp/" + entry)) {
          traces.insert("mount " + point);
        }
      }
    }
    for (const std::string& name : list_dir("/tmp")) {
      if (kJailEntries.contains(name)) {
        traces.insert("entry /tmp/" + name);
      }
    }
    return traces;
  }

  std::string writable_;
  std::set<std::string> traces_before_;
};

bool kvm_present() {
  struct stat st {};
  return ::stat("/dev/kvm", &st) == 0 && S_ISCHR(st.st_mode);
}

std::string listing(const char* path) {
  std::string names;
  DIR* dir = ::opendir(path);
  if (dir == nullptr) {
    return std::string("(") + strerror(errno) + ")";
  }
  std::vector<std::string> sorted;
  while (const dirent* e = ::readdir(dir)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") {
      sorted.emplace_back(e->d_name);
    }
  }
  ::closedir(dir);
  std::ranges::sort(sorted);
  for (const std::string& name : sorted) {
    names += (names.empty() ? "" : " ") + name;
  }
  return names;
}

TEST_F(SandboxJail, HoldsOnlyThePlannedEntriesWithoutCapabilities) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "the sandbox needs root";
  }
  const bool kvm = kvm_present();
  SandboxPlan plan;
  plan.writable_dirs = {writable_};
  if (kvm) {
    plan.devices = {"/dev/kvm"};
  }
  ChildResult r = run_child(
      [&](int out, int go) {
        if (Status s = enter_sandbox(plan); !s) {
          report(out, s.error().to_string() + "\n");
          return 2;
        }
        std::string text;
        text += "active " + std::to_string(sandbox_active()) + "\n";
        text += "/: " + listing("/") + "\n";
        text += "/dev: " + listing("/dev") + "\n";
        text += "/tmp: " + listing("/tmp") + "\n";
        const int passwd = ::open("/etc/passwd", O_RDONLY | O_CLOEXEC);
        text +=
            "passwd " + std::to_string(passwd) + " " + (passwd < 0 ? strerror(errno) : "") + "\n";
        const int proc = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        text += "proc " + std::to_string(proc) + "\n";
        const int created =
            ::open((writable_ + "/result").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        text += "writable " + std::to_string(created >= 0 && ::write(created, "ok", 2) == 2) + "\n";
        const int root_file = ::open("/new-file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        text += "root writable " + std::to_string(root_file >= 0) + "\n";
        if (kvm) {
          // Every boot, reboots included, opens /dev/kvm again.
          const int dev = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
          text += "kvm " + std::to_string(dev >= 0) + "\n";
        }
        text += "ready\n";
        report(out, text);
        char c = 0;
        [[maybe_unused]] ssize_t n = ::read(go, &c, 1);  // until the parent has looked
        // The process filter: no sockets, even on the main thread.
        ::socket(AF_INET, SOCK_STREAM, 0);
        report(out, "socket allowed\n");
        return 0;
      },
      [](pid_t pid) { expect_confined_status(pid); });
  EXPECT_TRUE(killed_by_sigsys(r)) << describe(r);
  const std::string top = writable_.substr(1, writable_.find('/', 1) - 1);  // "tmp"
  std::string expected =
      "active 1\n/: dev " + top + "\n/dev: " + (kvm ? "kvm null urandom" : "null urandom") +
      "\n/tmp: " + writable_.substr(5) + "\npasswd -1 No such file or directory\n" +
      "proc -1\nwritable 1\nroot writable 0\n" + (kvm ? "kvm 1\n" : "") + "ready\n";
  EXPECT_EQ(r.output, expected);
  EXPECT_EQ(read_text(writable_ + "/result"), "ok");
}

TEST_F(SandboxJail, ThreadFiltersStackOnTheProcessFilter) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "the sandbox needs root";
  }
  SandboxPlan plan;
  ChildResult r = run_child([&](int out, int) {
    if (Status s = enter_sandbox(plan); !s) {
      report(out, s.error().to_string() + "\n");
      return 2;
    }
    // The vmm role may open (inside the jail); a thread with the vCPU role may not.
    const int before = ::open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    report(out, "vmm open " + std::to_string(before) + "\n");
    std::thread vcpu([out] {
      confine_this_thread(ThreadRole::Vcpu);
      report(out, "vcpu confined\n");
      ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      report(out, "vcpu open allowed\n");
    });
    vcpu.join();
    return 0;
  });
  EXPECT_TRUE(killed_by_sigsys(r)) << describe(r);
  EXPECT_EQ(r.output, "vmm open -1\nvcpu confined\n");
}

TEST_F(SandboxJail, ReportsTheStepThatFailed) {
  ChildResult r = run_child([](int out, int) {
    // Without CAP_SYS_ADMIN (as a user other than root would be), unshare fails.
    cap_t none = cap_init();
    if (cap_set_proc(none) != 0) {
      return 4;
    }
    cap_free(none);
    Status s = enter_sandbox({});
    if (s) {
      report(out, "entered\n");
      return 0;
    }
    report(out, s.error().to_string() + "\n");
    return to_int(s.error().status);
  });
  EXPECT_TRUE(WIFEXITED(r.status)) << describe(r);
  EXPECT_EQ(WEXITSTATUS(r.status), to_int(ExitStatus::HostError)) << describe(r);
  EXPECT_TRUE(r.output.starts_with("sandbox: cannot unshare the mount namespace: ")) << r.output;
}

TEST_F(SandboxJail, RefusesAProcessThatAlreadyHasThreads) {
  ChildResult r = run_child([](int out, int) {
    int never[2];
    if (::pipe2(never, O_CLOEXEC) != 0) {
      return 4;
    }
    std::thread waiting([fd = never[0]] {
      char c = 0;
      [[maybe_unused]] ssize_t n = ::read(fd, &c, 1);  // nobody writes: runs until _exit
    });
    Status s = enter_sandbox({});
    report(out, s ? "entered\n" : s.error().to_string() + "\n");
    waiting.detach();
    return s ? 0 : 1;
  });
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1) << describe(r);
  EXPECT_NE(r.output.find("the process has 2 threads"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace hv
