#include "container/process_security.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <fstream>

#include "common/fd.hpp"

namespace hv::container {
namespace {

// Every body runs in a forked child, so that the filters, ids, capabilities and limits it sets
// stay there and the test runner keeps its privileges. A body returns "" on success, else what
// went wrong; the child writes that into a pipe (g_report_fd) and leaves with _exit.
int g_report_fd = -1;

struct ChildResult {
  int wait_status = 0;
  std::string output;  // what the child wrote to g_report_fd
};

ChildResult run_in_child(const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return {-1, "pipe2 failed"};
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return {-1, "fork failed"};
  }
  if (pid == 0) {
    ::close(fds[0]);
    g_report_fd = fds[1];
    std::string failure;
    try {
      failure = body();
    } catch (...) {
      failure = "the body threw";
    }
    std::size_t done = 0;
    while (done < failure.size()) {
      const ssize_t n = ::write(fds[1], failure.data() + done, failure.size() - done);
      if (n <= 0) {
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    ::_exit(failure.empty() ? 0 : 1);
  }
  ::close(fds[1]);
  ChildResult result;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buffer, sizeof(buffer))) > 0) {
    result.output.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  while (::waitpid(pid, &result.wait_status, 0) < 0 && errno == EINTR) {
  }
  return result;
}

::testing::AssertionResult child_passed(const ChildResult& result) {
  if (WIFSIGNALED(result.wait_status)) {
    return ::testing::AssertionFailure()
           << "child killed by signal " << WTERMSIG(result.wait_status) << " " << result.output;
  }
  if (!WIFEXITED(result.wait_status) || WEXITSTATUS(result.wait_status) != 0 ||
      !result.output.empty()) {
    return ::testing::AssertionFailure() << "child failed: " << result.output;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult in_child(const std::function<std::string()>& body) {
  return child_passed(run_in_child(body));
}

#define CHILD_CHECK(cond)                                                       \
  do {                                                                          \
    if (!(cond)) {                                                              \
      return fmt::format("{}:{}: check failed: {}", __FILE__, __LINE__, #cond); \
    }                                                                           \
  } while (0)

#define CHILD_CHECK_EQ(a, b)                                                                       \
  do {                                                                                             \
    const auto child_a_ = (a);                                                                     \
    const auto child_b_ = (b);                                                                     \
    if (!(child_a_ == child_b_)) {                                                                 \
      return fmt::format("{}:{}: {} == {} failed: {} vs {}", __FILE__, __LINE__, #a, #b, child_a_, \
                         child_b_);                                                                \
    }                                                                                              \
  } while (0)

#define CHILD_OK(expr)                                               \
  do {                                                               \
    const auto& child_status_ = (expr);                              \
    if (!child_status_.ok()) {                                       \
      return fmt::format("{}:{}: {}: {}", __FILE__, __LINE__, #expr, \
                         child_status_.error().to_string());         \
    }                                                                \
  } while (0)

bool is_root() {
  return ::geteuid() == 0;
}

#define SKIP_UNLESS_ROOT()                                                               \
  do {                                                                                   \
    if (!is_root()) {                                                                    \
      GTEST_SKIP() << "needs root (CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SYS_ADMIN)"; \
    }                                                                                    \
  } while (0)

// Without CAP_SYS_ADMIN, only a process with no_new_privs may load a filter.
Status prepare_for_seccomp() {
  return is_root() ? Status{} : set_no_new_privileges();
}

oci::SeccompRule rule(std::vector<std::string> names, oci::SeccompAction action,
                      std::optional<uint32_t> errno_ret = std::nullopt,
                      std::vector<oci::SeccompArg> args = {}) {
  oci::SeccompRule r;
  r.names = std::move(names);
  r.action = action;
  r.errno_ret = errno_ret;
  r.args = std::move(args);
  return r;
}

// The raw system call, without glibc's caching or argument handling.
struct SyscallOutcome {
  long ret;
  int err;
};
SyscallOutcome call(long nr, unsigned long arg0 = 0) {
  errno = 0;
  const long ret = ::syscall(nr, arg0);
  return {ret, errno};
}

constexpr uint64_t kMissing = ~uint64_t{0};

// A Cap* field of /proc/self/status ("CapEff" ...), kMissing if absent.
uint64_t status_field(const std::string& status, const std::string& name) {
  const std::string key = "\n" + name + ":\t";
  const std::size_t at = ("\n" + status).find(key);
  if (at == std::string::npos) {
    return kMissing;
  }
  return std::stoull(status.substr(at + key.size() - 1), nullptr, 16);
}

std::string read_file(const char* path) {
  Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  std::string text;
  char buffer[4096];
  ssize_t n;
  while (fd.valid() && (n = ::read(fd.get(), buffer, sizeof(buffer))) > 0) {
    text.append(buffer, static_cast<std::size_t>(n));
  }
  return text;
}

uint64_t own_status(const std::string& name) {
  return status_field(read_file("/proc/self/status"), name);
}

constexpr uint64_t bit(int cap) {
  return uint64_t{1} << cap;
}
constexpr int kCapKill = 5;
constexpr int kCapNetBindService = 10;

// --- seccomp ----------------------------------------------------------------------------------

TEST(SeccompFilterTest, ErrnoRuleOnAllowDefault) {
  const auto body = [] {
    oci::Seccomp spec;
    spec.syscalls.push_back(rule({"getppid"}, oci::SeccompAction::Errno, 42));
    auto filter = SeccompFilter::compile(spec);
    CHILD_OK(filter);
    CHILD_CHECK(filter->unknown_syscalls().empty());
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(filter->load());
    const SyscallOutcome ppid = call(SYS_getppid);
    const SyscallOutcome pid = call(SYS_getpid);
    CHILD_CHECK_EQ(ppid.ret, -1);
    CHILD_CHECK_EQ(ppid.err, 42);
    CHILD_CHECK(pid.ret > 0);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, ArgumentCondition) {
  const auto body = [] {
    oci::Seccomp spec;
    spec.syscalls.push_back(
        rule({"personality"}, oci::SeccompAction::Errno, 7,
             {oci::SeccompArg{0, 0xffffffff, 0, oci::SeccompOperator::EqualTo}}));
    auto filter = SeccompFilter::compile(spec);
    CHILD_OK(filter);
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(filter->load());
    const SyscallOutcome query = call(SYS_personality, 0xffffffff);
    const SyscallOutcome set_linux = call(SYS_personality, 0);  // PER_LINUX: allowed
    CHILD_CHECK_EQ(query.ret, -1);
    CHILD_CHECK_EQ(query.err, 7);
    CHILD_CHECK(set_linux.ret >= 0);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

// Two conditions on one argument cannot be ANDed by libseccomp: as in runc, each becomes its own
// rule, so the rule matches either value.
TEST(SeccompFilterTest, ConditionsOnOneArgumentAreOred) {
  const auto body = [] {
    oci::Seccomp spec;
    spec.syscalls.push_back(rule({"personality"}, oci::SeccompAction::Errno, 9,
                                 {oci::SeccompArg{0, 0x1111, 0, oci::SeccompOperator::EqualTo},
                                  oci::SeccompArg{0, 0x2222, 0, oci::SeccompOperator::EqualTo}}));
    auto filter = SeccompFilter::compile(spec);
    CHILD_OK(filter);
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(filter->load());
    const SyscallOutcome first = call(SYS_personality, 0x1111);
    const SyscallOutcome second = call(SYS_personality, 0x2222);
    const SyscallOutcome other = call(SYS_personality, 0xffffffff);
    CHILD_CHECK_EQ(first.err, 9);
    CHILD_CHECK_EQ(second.err, 9);
    CHILD_CHECK(other.ret >= 0);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, MaskedEqualAndConditionsOnDifferentArguments) {
  const auto body = [] {
    // kill(pid, sig) with pid == 0 AND sig & 0xff == 0: both must hold (ANDed).
    oci::Seccomp spec;
    spec.syscalls.push_back(rule({"kill"}, oci::SeccompAction::Errno, 11,
                                 {oci::SeccompArg{0, 0, 0, oci::SeccompOperator::EqualTo},
                                  oci::SeccompArg{1, 0xff, 0, oci::SeccompOperator::MaskedEqual}}));
    auto filter = SeccompFilter::compile(spec);
    CHILD_OK(filter);
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(filter->load());
    errno = 0;
    const long both = ::syscall(SYS_kill, 0, 0);  // pid 0, signal 0: matches
    const int both_errno = errno;
    errno = 0;
    const long pid_only = ::syscall(SYS_kill, ::getpid(), 0);  // pid differs: allowed
    CHILD_CHECK_EQ(both, -1);
    CHILD_CHECK_EQ(both_errno, 11);
    CHILD_CHECK_EQ(pid_only, 0);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, ErrnoDefaultWithAllowList) {
  const auto body = [] {
    oci::Seccomp spec;
    spec.default_action = oci::SeccompAction::Errno;
    spec.default_errno_ret = ENOSYS;
    // What the child itself needs to report and leave, and getpid; plus what a sanitizer
    // runtime calls on its own in an instrumented build (signal stacks, memory, reports).
    spec.syscalls.push_back(rule(
        {"write",    "exit",         "exit_group",     "getpid",      "brk",          "mmap",
         "munmap",   "rt_sigreturn", "rt_sigprocmask", "sigaltstack", "rt_sigaction", "madvise",
         "mprotect", "mremap",       "futex",          "prlimit64",   "sched_yield",  "close",
         "read",     "openat",       "newfstatat",     "fstat",       "readlink",     "gettid",
         "tgkill",   "getrandom",    "clock_gettime"},
        oci::SeccompAction::Allow));
    auto filter = SeccompFilter::compile(spec);
    CHILD_OK(filter);
    CHILD_OK(prepare_for_seccomp());
    const long pid_before = ::syscall(SYS_getpid);
    CHILD_OK(filter->load());
    const SyscallOutcome pid = call(SYS_getpid);
    const SyscallOutcome ppid = call(SYS_getppid);
    const SyscallOutcome uid = call(SYS_getuid);
    CHILD_CHECK_EQ(pid.ret, pid_before);
    CHILD_CHECK_EQ(ppid.ret, -1);
    CHILD_CHECK_EQ(ppid.err, ENOSYS);
    CHILD_CHECK_EQ(uid.err, ENOSYS);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, KillProcessAction) {
  const ChildResult result = run_in_child([] {
    oci::Seccomp spec;
    spec.syscalls.push_back(rule({"getppid"}, oci::SeccompAction::KillProcess));
    auto filter = SeccompFilter::compile(spec);
    CHILD_OK(filter);
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(filter->load());
    ::syscall(SYS_getppid);
    return std::string("still alive after getppid");
  });
  ASSERT_TRUE(WIFSIGNALED(result.wait_status)) << result.output;
  EXPECT_EQ(WTERMSIG(result.wait_status), SIGSYS);
}

TEST(SeccompFilterTest, UnknownSyscallsAreSkippedAndReported) {
  oci::Seccomp spec;
  spec.syscalls.push_back(
      rule({"hv_no_such_syscall", "getppid", "hv_no_such_syscall"}, oci::SeccompAction::Errno, 42));
  spec.syscalls.push_back(rule({"hv_other_unknown"}, oci::SeccompAction::Errno));
  auto filter = SeccompFilter::compile(spec);
  ASSERT_TRUE(filter.ok()) << filter.error().to_string();
  EXPECT_EQ(filter->unknown_syscalls(),
            (std::vector<std::string>{"hv_no_such_syscall", "hv_other_unknown"}));
  // The known name still made it into the filter.
  const auto body = [&] {
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(filter->load());
    CHILD_CHECK_EQ(call(SYS_getppid).err, 42);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, RuleRepeatingTheDefaultActionIsSkipped) {
  oci::Seccomp spec;
  spec.syscalls.push_back(rule({"getpid"}, oci::SeccompAction::Allow));
  spec.syscalls.push_back(rule({"getppid"}, oci::SeccompAction::Errno, 5));
  auto filter = SeccompFilter::compile(spec);
  ASSERT_TRUE(filter.ok()) << filter.error().to_string();
  const auto body = [&] {
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(filter->load());
    CHILD_CHECK(call(SYS_getpid).ret > 0);
    CHILD_CHECK_EQ(call(SYS_getppid).err, 5);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, ArchitecturesAndFlags) {
  oci::Seccomp spec;
#if defined(__x86_64__)
  spec.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
  spec.architectures = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#endif
  spec.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"};
  // socket is multiplexed through socketcall on x86: not exact on every architecture.
  spec.syscalls.push_back(rule({"getppid", "socket"}, oci::SeccompAction::Errno, 42));
  spec.syscalls.push_back(rule({"getuid"}, oci::SeccompAction::Trace, 3));
  auto filter = SeccompFilter::compile(spec);
  ASSERT_TRUE(filter.ok()) << filter.error().to_string();
  const auto body = [&] {
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(filter->load());
    CHILD_CHECK_EQ(call(SYS_getppid).err, 42);
    CHILD_CHECK_EQ(::socket(AF_UNIX, SOCK_STREAM, 0), -1);
    CHILD_CHECK_EQ(errno, 42);
    // SCMP_ACT_TRACE with no tracer: the syscall fails with ENOSYS.
    CHILD_CHECK_EQ(call(SYS_getuid).err, ENOSYS);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, SpecAllowFlag) {
  oci::Seccomp spec;
  spec.flags = {"SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
  spec.syscalls.push_back(rule({"getppid"}, oci::SeccompAction::Errno, 42));
  auto filter = SeccompFilter::compile(spec);
  ASSERT_TRUE(filter.ok()) << filter.error().to_string();
  const auto body = [&] {
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(filter->load());
    CHILD_CHECK_EQ(call(SYS_getppid).err, 42);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, InvalidConfigIsBadConfig) {
  auto expect_bad = [](const oci::Seccomp& spec, const std::string& message_part) {
    auto filter = SeccompFilter::compile(spec);
    ASSERT_FALSE(filter.ok()) << message_part;
    EXPECT_EQ(filter.error().status, ExitStatus::BadConfig) << filter.error().to_string();
    EXPECT_NE(filter.error().to_string().find(message_part), std::string::npos)
        << filter.error().to_string();
  };
  oci::Seccomp spec;
  spec.architectures = {"SCMP_ARCH_BOGUS"};
  expect_bad(spec, "SCMP_ARCH_BOGUS");
  spec.architectures = {"x86_64"};
  expect_bad(spec, "x86_64");
  spec.architectures = {"SCMP_ARCH_"};
  expect_bad(spec, "SCMP_ARCH_");

  spec = {};
  spec.flags = {"SECCOMP_FILTER_FLAG_BOGUS"};
  expect_bad(spec, "SECCOMP_FILTER_FLAG_BOGUS");
  spec.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  expect_bad(spec, "not supported by libseccomp 2.5");

  spec = {};
  spec.default_action = oci::SeccompAction::Notify;
  expect_bad(spec, "default");

  spec = {};
  spec.syscalls.push_back(rule({"getppid"}, oci::SeccompAction::Errno, 70000));
  expect_bad(spec, "70000");

  spec = {};
  spec.syscalls.push_back(rule({"getppid"}, oci::SeccompAction::Errno, 1,
                               {oci::SeccompArg{6, 0, 0, oci::SeccompOperator::EqualTo}}));
  expect_bad(spec, "index 6");

  spec = {};
  spec.syscalls.push_back(rule({"write"}, oci::SeccompAction::Notify));
  expect_bad(spec, "write");
}

TEST(SeccompFilterTest, MovedFilterStillLoads) {
  oci::Seccomp spec;
  spec.syscalls.push_back(rule({"getppid"}, oci::SeccompAction::Errno, 42));
  auto compiled = SeccompFilter::compile(spec);
  ASSERT_TRUE(compiled.ok()) << compiled.error().to_string();
  std::optional<SeccompFilter> filter;
  filter.emplace(std::move(*compiled));
  SeccompFilter other = std::move(*filter);
  filter.reset();
  *compiled = std::move(other);
  const auto body = [&] {
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(compiled->load());
    CHILD_CHECK_EQ(call(SYS_getppid).err, 42);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, NotifyListenerAnswersForTheProcess) {
  const auto body = [] {
    oci::Seccomp spec;
    spec.syscalls.push_back(rule({"getppid"}, oci::SeccompAction::Notify));
    auto filter = SeccompFilter::compile(spec);
    CHILD_OK(filter);
    CHILD_CHECK(filter->uses_notify());
    CHILD_OK(prepare_for_seccomp());
    auto listener = filter->load_and_take_listener();
    CHILD_OK(listener);
    Fd listener_fd(*listener);
    CHILD_CHECK(::fcntl(listener_fd.get(), F_GETFD) & FD_CLOEXEC);
    // A grandchild inherits the filter; this process answers its getppid with 4242.
    const pid_t pid = ::fork();
    if (pid == 0) {
      const long ppid = ::syscall(SYS_getppid);
      ::_exit(ppid == 4242 ? 0 : 1);
    }
    CHILD_CHECK(pid > 0);
    seccomp_notif* request = nullptr;
    seccomp_notif_resp* response = nullptr;
    CHILD_CHECK_EQ(seccomp_notify_alloc(&request, &response), 0);
    CHILD_CHECK_EQ(seccomp_notify_receive(listener_fd.get(), request), 0);
    CHILD_CHECK_EQ(static_cast<long>(request->data.nr), static_cast<long>(SYS_getppid));
    CHILD_CHECK_EQ(request->pid, static_cast<uint32_t>(pid));
    response->id = request->id;
    response->val = 4242;
    response->error = 0;
    response->flags = 0;
    CHILD_CHECK_EQ(seccomp_notify_respond(listener_fd.get(), response), 0);
    seccomp_notify_free(request, response);
    int status = 0;
    CHILD_CHECK_EQ(::waitpid(pid, &status, 0), pid);
    CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, NotifyWithoutListenerFailsWithEnosys) {
  const auto body = [] {
    oci::Seccomp spec;
    spec.syscalls.push_back(rule({"getppid"}, oci::SeccompAction::Notify));
    auto filter = SeccompFilter::compile(spec);
    CHILD_OK(filter);
    CHILD_OK(prepare_for_seccomp());
    CHILD_OK(filter->load());
    const SyscallOutcome ppid = call(SYS_getppid);
    CHILD_CHECK_EQ(ppid.ret, -1);
    CHILD_CHECK_EQ(ppid.err, ENOSYS);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(SeccompFilterTest, ListenerNeedsANotifyRule) {
  oci::Seccomp spec;
  spec.syscalls.push_back(rule({"getppid"}, oci::SeccompAction::Errno));
  auto filter = SeccompFilter::compile(spec);
  ASSERT_TRUE(filter.ok());
  EXPECT_FALSE(filter->uses_notify());
  // Fails before loading anything.
  auto listener = filter->load_and_take_listener();
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.error().status, ExitStatus::BadConfig);
}

// --- user and capabilities --------------------------------------------------------------------

TEST(CapabilitiesTest, RootWithReducedSets) {
  SKIP_UNLESS_ROOT();
  const auto body = [] {
    oci::Capabilities caps;
    caps.bounding = caps.effective = caps.permitted = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
    CHILD_OK(apply_user_and_capabilities(oci::User{}, caps));
    const uint64_t expected = bit(kCapKill) | bit(kCapNetBindService);
    CHILD_CHECK_EQ(own_status("CapEff"), expected);
    CHILD_CHECK_EQ(own_status("CapPrm"), expected);
    CHILD_CHECK_EQ(own_status("CapBnd"), expected);
    CHILD_CHECK_EQ(own_status("CapInh"), uint64_t{0});
    CHILD_CHECK_EQ(own_status("CapAmb"), uint64_t{0});
    CHILD_CHECK_EQ(::getuid(), 0u);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(CapabilitiesTest, AmbientCapabilitySurvivesSetuidAndExec) {
  SKIP_UNLESS_ROOT();
  const ChildResult result = run_in_child([] {
    oci::Capabilities caps;
    caps.bounding = caps.effective = caps.permitted = caps.inheritable =
        caps.ambient = {"CAP_NET_BIND_SERVICE"};
    oci::User user;
    user.uid = 1000;
    user.gid = 1000;
    CHILD_OK(apply_user_and_capabilities(user, caps));
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    CHILD_CHECK_EQ(::getresuid(&ruid, &euid, &suid), 0);
    CHILD_CHECK_EQ(::getresgid(&rgid, &egid, &sgid), 0);
    CHILD_CHECK(ruid == 1000 && euid == 1000 && suid == 1000);
    CHILD_CHECK(rgid == 1000 && egid == 1000 && sgid == 1000);
    const uint64_t expected = bit(kCapNetBindService);
    CHILD_CHECK_EQ(own_status("CapAmb"), expected);
    CHILD_CHECK_EQ(own_status("CapEff"), expected);
    CHILD_CHECK_EQ(own_status("CapPrm"), expected);
    CHILD_CHECK_EQ(own_status("CapInh"), expected);
    // After execve of an ordinary binary, the ambient set is what a non-root process keeps.
    ::dup2(g_report_fd, STDOUT_FILENO);
    ::execl("/bin/cat", "cat", "/proc/self/status", static_cast<char*>(nullptr));
    return std::string("cannot exec /bin/cat");
  });
  ASSERT_TRUE(WIFEXITED(result.wait_status) && WEXITSTATUS(result.wait_status) == 0)
      << result.output;
  const uint64_t expected = bit(kCapNetBindService);
  EXPECT_EQ(status_field(result.output, "CapAmb"), expected) << result.output;
  EXPECT_EQ(status_field(result.output, "CapEff"), expected) << result.output;
  EXPECT_EQ(status_field(result.output, "CapPrm"), expected) << result.output;
  EXPECT_EQ(status_field(result.output, "CapBnd"), expected) << result.output;
}

TEST(CapabilitiesTest, AmbientNeedsPermittedAndInheritable) {
  SKIP_UNLESS_ROOT();
  const auto body = [] {
    oci::Capabilities caps;
    caps.bounding = caps.effective = caps.permitted = {"CAP_NET_RAW"};
    caps.ambient = {"CAP_NET_RAW"};
    const Status status = apply_user_and_capabilities(oci::User{}, caps);
    CHILD_CHECK(!status.ok());
    const std::string message = status.error().to_string();
    CHILD_CHECK(message.find("cannot raise ambient capability CAP_NET_RAW") != std::string::npos);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(CapabilitiesTest, UnknownCapabilityNameIsBadConfig) {
  SKIP_UNLESS_ROOT();
  const auto body = [] {
    for (const char* name : {"CAP_NO_SUCH_THING", "cap_kill", "5", "CAP_KILL,CAP_CHOWN", "CAP_"}) {
      oci::Capabilities caps;
      caps.bounding = {"CAP_KILL", name};
      const Status status = apply_user_and_capabilities(oci::User{}, caps);
      CHILD_CHECK(!status.ok());
      CHILD_CHECK(status.error().status == ExitStatus::BadConfig);
      CHILD_CHECK(status.error().message.find(name) != std::string::npos);
    }
    // Nothing was dropped.
    CHILD_CHECK(own_status("CapBnd") != bit(kCapKill));
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(CapabilitiesTest, NoCapabilitiesLeavesSetsToSetuid) {
  SKIP_UNLESS_ROOT();
  const auto body = [] {
    const auto bounding_before = own_status("CapBnd");
    oci::User user;
    user.uid = 1000;
    user.gid = 1000;
    user.umask = 027;
    CHILD_OK(apply_user_and_capabilities(user, std::nullopt));
    CHILD_CHECK_EQ(::getuid(), 1000u);
    CHILD_CHECK_EQ(own_status("CapEff"), uint64_t{0});  // setuid cleared them
    CHILD_CHECK_EQ(own_status("CapPrm"), uint64_t{0});
    CHILD_CHECK_EQ(own_status("CapBnd"), bounding_before);
    CHILD_CHECK_EQ(::umask(0), static_cast<mode_t>(027));
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(CapabilitiesTest, AdditionalGidsAreSet) {
  SKIP_UNLESS_ROOT();
  const auto body = [] {
    oci::User user;
    user.uid = 1000;
    user.gid = 1001;
    user.additional_gids = {1234, 5678};
    oci::Capabilities caps;  // all empty: drops everything
    CHILD_OK(apply_user_and_capabilities(user, caps));
    gid_t groups[16];
    const int count = ::getgroups(16, groups);
    CHILD_CHECK_EQ(count, 2);
    CHILD_CHECK_EQ(groups[0], 1234u);
    CHILD_CHECK_EQ(groups[1], 5678u);
    CHILD_CHECK_EQ(::getgid(), 1001u);
    CHILD_CHECK_EQ(own_status("CapBnd"), uint64_t{0});
    CHILD_CHECK_EQ(own_status("CapEff"), uint64_t{0});
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(CapabilitiesTest, EmptyAdditionalGidsClearsGroups) {
  SKIP_UNLESS_ROOT();
  const auto body = [] {
    const gid_t runner_groups[] = {4321};
    CHILD_CHECK_EQ(::setgroups(1, runner_groups), 0);
    CHILD_OK(apply_user_and_capabilities(oci::User{}, std::nullopt));
    CHILD_CHECK_EQ(::getgroups(0, nullptr), 0);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

// --- rlimits, no_new_privs, oom_score_adj -----------------------------------------------------

TEST(RlimitTest, SetsSoftAndHardLimits) {
  const auto body = [] {
    CHILD_OK(
        apply_rlimits({oci::Rlimit{"RLIMIT_NOFILE", 200, 100}, oci::Rlimit{"RLIMIT_CORE", 0, 0}}));
    rlimit nofile{};
    rlimit core{};
    CHILD_CHECK_EQ(::getrlimit(RLIMIT_NOFILE, &nofile), 0);
    CHILD_CHECK_EQ(::getrlimit(RLIMIT_CORE, &core), 0);
    CHILD_CHECK_EQ(nofile.rlim_cur, rlim_t{100});
    CHILD_CHECK_EQ(nofile.rlim_max, rlim_t{200});
    CHILD_CHECK_EQ(core.rlim_max, rlim_t{0});
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(RlimitTest, InvalidRlimitsAreBadConfigAndSetNothing) {
  const auto body = [] {
    rlimit before{};
    CHILD_CHECK_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
    const Status unknown =
        apply_rlimits({oci::Rlimit{"RLIMIT_NOFILE", 200, 100}, oci::Rlimit{"RLIMIT_BOGUS", 1, 1}});
    CHILD_CHECK(!unknown.ok() && unknown.error().status == ExitStatus::BadConfig);
    CHILD_CHECK(unknown.error().message.find("RLIMIT_BOGUS") != std::string::npos);
    const Status inverted = apply_rlimits({oci::Rlimit{"RLIMIT_NOFILE", 100, 200}});
    CHILD_CHECK(!inverted.ok() && inverted.error().status == ExitStatus::BadConfig);
    rlimit after{};
    CHILD_CHECK_EQ(::getrlimit(RLIMIT_NOFILE, &after), 0);
    CHILD_CHECK(before.rlim_cur == after.rlim_cur && before.rlim_max == after.rlim_max);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(ProcessSecurityTest, NoNewPrivileges) {
  const auto body = [] {
    CHILD_OK(set_no_new_privileges());
    CHILD_CHECK_EQ(::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 1);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

TEST(ProcessSecurityTest, OomScoreAdj) {
  const auto body = [] {
    CHILD_OK(set_oom_score_adj(500));
    CHILD_CHECK_EQ(read_file("/proc/self/oom_score_adj"), std::string("500\n"));
    const Status out_of_range = set_oom_score_adj(1001);
    CHILD_CHECK(!out_of_range.ok() && out_of_range.error().status == ExitStatus::BadConfig);
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
}

// --- sysctl -----------------------------------------------------------------------------------

TEST(SysctlTest, AcceptsNamespacedKeys) {
  const std::map<std::string, std::string> ipc = {{"kernel.msgmax", "8192"},
                                                  {"kernel.sem", "250 32000 32 128"},
                                                  {"kernel.shm_rmid_forced", "1"},
                                                  {"fs.mqueue.msg_max", "10"}};
  EXPECT_TRUE(validate_sysctl(ipc, false).ok());
  EXPECT_TRUE(validate_sysctl({{"net.ipv4.ip_forward", "1"}}, true).ok());
}

TEST(SysctlTest, RejectsInvalidKeysWithoutWriting) {
  for (const char* key : {"", "kernel/msgmax", "kernel..msgmax", ".kernel.msgmax", "kernel.msgmax.",
                          "..", "kernel.hostname", "kernel.domainname", "kernel.pid_max",
                          "vm.swappiness", "net", "fs.mqueue", "net.ipv4.ip_forward"}) {
    // Beside a valid key, which must not be written either (and names no real file, in case).
    const std::map<std::string, std::string> sysctl = {{"fs.mqueue.hv_no_such_entry", "10"},
                                                       {key, "1"}};
    const Status status = apply_sysctl(sysctl, false);
    ASSERT_FALSE(status.ok()) << key;
    EXPECT_EQ(status.error().status, ExitStatus::BadConfig) << key;
  }
  const Status hostname = validate_sysctl({{"kernel.hostname", "x"}}, true);
  ASSERT_FALSE(hostname.ok());
  EXPECT_NE(hostname.error().message.find("hostname"), std::string::npos);
  const Status net = validate_sysctl({{"net.ipv4.ip_forward", "1"}}, false);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.error().message.find("network namespace"), std::string::npos);
}

TEST(SysctlTest, WritesInANewIpcNamespace) {
  SKIP_UNLESS_ROOT();
  const std::string host_value = read_file("/proc/sys/kernel/msgmax");
  ASSERT_FALSE(host_value.empty());
  ASSERT_NE(host_value, "12345\n");
  const auto body = [] {
    // Never write the host's value: only after the child has its own IPC namespace.
    if (::unshare(CLONE_NEWIPC) != 0) {
      return fmt::format("unshare(CLONE_NEWIPC) failed: errno {}", errno);
    }
    CHILD_OK(apply_sysctl({{"kernel.msgmax", "12345"}}, false));
    CHILD_CHECK_EQ(read_file("/proc/sys/kernel/msgmax"), std::string("12345\n"));
    return std::string();
  };
  EXPECT_TRUE(in_child(body));
  EXPECT_EQ(read_file("/proc/sys/kernel/msgmax"), host_value);
}

TEST(SecurityLabels, ALabelTheHostCannotApplyIsRefused) {
  oci::Process process;
  EXPECT_TRUE(check_security_labels(process, "").ok());
  process.apparmor_profile = "hv-test-profile";
  const bool apparmor =
      std::ifstream("/sys/module/apparmor/parameters/enabled").get() == static_cast<int>('Y');
  Status status = check_security_labels(process, "");
  if (apparmor) {
    EXPECT_TRUE(status.ok());
  } else {
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().status, ExitStatus::BadConfig);
    EXPECT_NE(status.error().message.find(".process.apparmorProfile"), std::string::npos);
  }
  process.apparmor_profile.clear();
  Status mount_label = check_security_labels(process, "system_u:object_r:container_file_t:s0");
  ASSERT_FALSE(mount_label.ok());
  EXPECT_NE(mount_label.error().message.find(".linux.mountLabel"), std::string::npos);
}

}  // namespace
}  // namespace hv::container
