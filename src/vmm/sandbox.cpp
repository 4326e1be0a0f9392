#include "vmm/sandbox.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/securebits.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <utility>

#include "common/fd.hpp"

namespace hv {

namespace {

std::atomic<bool> g_sandbox_active{false};

// Where the jail's tmpfs is mounted before it becomes the root. It hides the host's /tmp only
// inside the new mount namespace; the host sees nothing of it.
constexpr const char* kJailMount = "/tmp";

Error step_error(std::string_view what) {
  return Error::from_errno(fmt::format("sandbox: {}", what));
}

Error seccomp_step_error(int rc, std::string_view what) {
  return Error{fmt::format("sandbox: {}", what), rc < 0 ? -rc : EINVAL, ExitStatus::HostError};
}

// --- syscall allow-lists -------------------------------------------------------------------------

// Every thread: memory for malloc and thread stacks, locks, signals as glibc uses them, the clock,
// and ending the thread or the process.
constexpr std::array kThreadBasics = {
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "madvise",
    "mprotect",
    "futex",
    "rt_sigreturn",
    "rt_sigprocmask",
    "restart_syscall",
    "sched_yield",
    "clock_gettime",
    "clock_nanosleep",
    "nanosleep",
    "getpid",
    "gettid",
    "tgkill",
    "exit",
    "exit_group",
};

// A thread that starts threads: the vCPU threads start the para-virtual timer's TimerService on
// the guest's first SET_TIMER hypercall, and that thread installs its own, narrower filter
// (seccomp only adds filters: it can only take syscalls away).
constexpr std::array kThreadCreation = {"clone", "set_robust_list", "rseq", "seccomp"};

// Guest disks (IDE on vCPU threads, virtio-blk on a vCPU thread or the virtio I/O thread), TAPs,
// eventfds and the console output.
constexpr std::array kDeviceIo = {
    "read",    "write",    "readv",     "writev", "pread64",   "pwrite64",  "preadv",    "pwritev",
    "preadv2", "pwritev2", "fdatasync", "fsync",  "fallocate", "getrandom", "epoll_ctl",
};

// The emulator's --trace writes through stdio on the vCPU threads, which fstat()s the file first.
constexpr std::array kVcpuOnly = {"fstat", "newfstatat"};

constexpr std::array kIoWait = {"epoll_wait", "epoll_pwait"};
constexpr std::array kPoll = {"poll", "ppoll"};
// One console client at a time on an already listening socket; each is closed when it leaves.
constexpr std::array kConsoleClients = {"accept4", "sendto", "recvfrom", "close"};

// The main thread: builds every boot's machine (reopening /dev/kvm inside the jail), starts and
// joins the threads, restores the terminal, and after run_vm writes the caller's result files in
// the writable directories.
constexpr std::array kVmmOnly = {
    "openat",       "open",        "close",
    "statx",        "lseek",       "fcntl",
    "getdents64",   "ftruncate",   "rename",
    "renameat",     "renameat2",   "unlink",
    "unlinkat",     "mkdir",       "mkdirat",
    "fchmod",       "eventfd2",    "epoll_create1",
    "rt_sigaction", "sigaltstack", "sched_getaffinity",
    "prctl",        "uname",       "getuid",
    "geteuid",      "getgid",      "getegid",
    "access",       "faccessat",   "faccessat2",
    "readlink",     "readlinkat",  "dup",
    "dup3",         "pipe2",
};

struct IoctlRule {
  const char* name;
  unsigned long request;
  unsigned long mask;  // compared bits (the kernel takes the request as 32 bits)
};

constexpr unsigned long kExact = 0xffff'ffffUL;

// Every KVM ioctl has type 0xAE: the main thread creates VMs, vCPUs, memory slots, doorbells.
constexpr IoctlRule kAnyKvm = {"KVM_* (type 0xAE)", 0xAE00UL, 0xFF00UL};
constexpr IoctlRule kIrqLine = {"KVM_IRQ_LINE", KVM_IRQ_LINE, kExact};

constexpr std::array kVcpuIoctls = {
    IoctlRule{"KVM_RUN", KVM_RUN, kExact},
    IoctlRule{"KVM_GET_REGS", KVM_GET_REGS, kExact},
    IoctlRule{"KVM_SET_REGS", KVM_SET_REGS, kExact},
    IoctlRule{"KVM_GET_SREGS", KVM_GET_SREGS, kExact},
    IoctlRule{"KVM_SET_SREGS", KVM_SET_SREGS, kExact},
    kIrqLine,
};

// The terminal (isatty, tcgetattr, tcsetattr on the console input), the TAP's offloads.
constexpr std::array kVmmIoctls = {
    kAnyKvm,
    IoctlRule{"TCGETS", TCGETS, kExact},
    IoctlRule{"TCSETS", TCSETS, kExact},
    IoctlRule{"TUNSETOFFLOAD", TUNSETOFFLOAD, kExact},
};

template <typename List>
void append(std::vector<std::string>& out, const List& list) {
  for (const auto& name : list) {
    out.emplace_back(name);
  }
}

std::vector<IoctlRule> ioctl_rules(ThreadRole role) {
  switch (role) {
    case ThreadRole::Vmm:
      return {kVmmIoctls.begin(), kVmmIoctls.end()};
    case ThreadRole::Vcpu:
      return {kVcpuIoctls.begin(), kVcpuIoctls.end()};
    case ThreadRole::Io:
    case ThreadRole::Console:
    case ThreadRole::Timer:
      return {kIrqLine};
    case ThreadRole::ConsoleRelay:
      return {};  // device interrupts raised from the thread (KVM's in-kernel chips)
  }
  return {};
}

}  // namespace

std::string_view thread_role_name(ThreadRole role) {
  switch (role) {
    case ThreadRole::Vmm:
      return "vmm";
    case ThreadRole::Vcpu:
      return "vcpu";
    case ThreadRole::Io:
      return "io";
    case ThreadRole::Console:
      return "console";
    case ThreadRole::Timer:
      return "timer";
    case ThreadRole::ConsoleRelay:
      return "console-relay";
  }
  return "unknown";
}

std::vector<std::string> role_syscalls(ThreadRole role) {
  std::vector<std::string> names;
  append(names, kThreadBasics);
  names.emplace_back("ioctl");
  switch (role) {
    case ThreadRole::Vmm:
      append(names, kThreadCreation);
      append(names, kDeviceIo);
      append(names, kVcpuOnly);
      append(names, kIoWait);
      append(names, kPoll);
      append(names, kConsoleClients);
      append(names, kVmmOnly);
      break;
    case ThreadRole::Vcpu:
      append(names, kThreadCreation);
      append(names, kDeviceIo);
      append(names, kVcpuOnly);
      break;
    case ThreadRole::Io:
      append(names, kDeviceIo);
      append(names, kIoWait);
      break;
    case ThreadRole::Console:
      append(names, std::array{"read", "write"});
      append(names, kPoll);
      break;
    case ThreadRole::Timer:
      break;
    case ThreadRole::ConsoleRelay:
      append(names, std::array{"read", "write"});
      append(names, kPoll);
      append(names, kConsoleClients);
      break;
  }
  return names;
}

std::vector<std::string> role_ioctls(ThreadRole role) {
  std::vector<std::string> names;
  for (const IoctlRule& rule : ioctl_rules(role)) {
    names.emplace_back(rule.name);
  }
  return names;
}

namespace {

// --- seccomp -------------------------------------------------------------------------------------

class FilterContext {
 public:
  explicit FilterContext(scmp_filter_ctx ctx) : ctx_(ctx) {}
  FilterContext(const FilterContext&) = delete;
  FilterContext& operator=(const FilterContext&) = delete;
  ~FilterContext() {
    if (ctx_ != nullptr) {
      seccomp_release(ctx_);
    }
  }
  scmp_filter_ctx get() const { return ctx_; }

 private:
  scmp_filter_ctx ctx_;
};

Status add_allow(scmp_filter_ctx ctx, const std::string& name, std::vector<scmp_arg_cmp> args) {
  const int nr = seccomp_syscall_resolve_name(name.c_str());
  if (nr == __NR_SCMP_ERROR) {
    return {};  // unknown to this libseccomp: nobody can call it by name either
  }
  const int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, static_cast<unsigned>(args.size()),
                                        args.empty() ? nullptr : args.data());
  if (rc != 0) {
    return seccomp_step_error(rc, fmt::format("cannot allow the system call {}", name));
  }
  return {};
}

// The role's filter: default SCMP_ACT_KILL_PROCESS, the allow-list, with arguments checked
// where the VMM's own use is narrow enough.
Status load_filter(ThreadRole role, bool all_threads) {
  FilterContext ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
  if (ctx.get() == nullptr) {
    return make_error(ExitStatus::HostError, "sandbox: cannot create the seccomp filter");
  }
  // enter_sandbox sets no_new_privs itself, before; libseccomp would call prctl for it.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  if (rc == 0 && all_threads) {
    rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1);
  }
  if (rc != 0) {
    return seccomp_step_error(rc, "cannot set the seccomp filter's attributes");
  }
  (void)seccomp_attr_set(ctx.get(), SCMP_FLTATR_API_SYSRAWRC, 1);

  const auto own_pid = static_cast<scmp_datum_t>(::getpid());
  for (const std::string& name : role_syscalls(role)) {
    if (name == "ioctl") {
      for (const IoctlRule& rule : ioctl_rules(role)) {
        HV_TRY(add_allow(ctx.get(), name, {SCMP_A1(SCMP_CMP_MASKED_EQ, rule.mask, rule.request)}));
      }
    } else if (name == "clone") {
      // Threads of this process only: no fork, no new namespaces (those need capabilities too).
      HV_TRY(add_allow(ctx.get(), name, {SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)}));
    } else if (name == "tgkill") {
      // Signals to this process's own threads (the vCPU kick, abort): root without CAP_KILL may
      // still signal every other uid-0 process, the supervisor and other guests' VMMs included.
      HV_TRY(add_allow(ctx.get(), name, {SCMP_A0(SCMP_CMP_EQ, own_pid)}));
    } else if (name == "mmap" || name == "mprotect") {
      // No new executable memory: injected code cannot be made runnable.
      HV_TRY(add_allow(ctx.get(), name, {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)}));
    } else if (name == "newfstatat" && role == ThreadRole::Vcpu) {
      // fstat() of a descriptor it holds, not stat() of a path.
      HV_TRY(
          add_allow(ctx.get(), name, {SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH)}));
    } else if (name == "seccomp") {
      // Installing a further filter; not SECCOMP_GET_NOTIF_SIZES or the like.
      HV_TRY(add_allow(ctx.get(), name, {SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER)}));
    } else if (name == "prctl") {
      // Naming threads (pthread_setname_np on the calling thread).
      HV_TRY(add_allow(ctx.get(), name, {SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME)}));
    } else {
      HV_TRY(add_allow(ctx.get(), name, {}));
    }
  }
  // glibc tries clone3 first and falls back to clone, whose flags a filter can check (clone3's
  // are in memory).
  rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc != 0) {
    return seccomp_step_error(rc, "cannot refuse clone3");
  }
  rc = seccomp_load(ctx.get());
  if (rc != 0) {
    return seccomp_step_error(
        rc, fmt::format("cannot load the {} seccomp filter", thread_role_name(role)));
  }
  return {};
}

// --- capabilities --------------------------------------------------------------------------------

int last_capability() {
  Fd fd(::open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC));
  if (fd.valid()) {
    std::array<char, 16> buffer{};
    if (::read(fd.get(), buffer.data(), buffer.size() - 1) > 0) {
      return std::atoi(buffer.data());
    }
  }
  return static_cast<int>(cap_max_bits()) - 1;
}

Status drop_capabilities(int last_cap) {
  // Root without capabilities must not get them back through execve or setuid games: lock
  // the securebits first (needs CAP_SETPCAP, as dropping the bounding set does).
  constexpr unsigned long kSecureBits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
                                        SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                                        SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                                        SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (::prctl(PR_SET_SECUREBITS, kSecureBits, 0, 0, 0) != 0) {
    return step_error("cannot lock the securebits");
  }
  for (int cap = 0; cap <= last_cap; ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
        ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      return step_error(fmt::format("cannot drop capability {} from the bounding set", cap));
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return step_error("cannot clear the ambient capabilities");
  }
  cap_t none = cap_init();
  if (none == nullptr) {
    return step_error("cannot allocate a capability set");
  }
  const int rc = cap_set_proc(none);
  cap_free(none);
  if (rc != 0) {
    return step_error("cannot clear the effective, permitted and inheritable capabilities");
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return step_error("cannot set no_new_privs");
  }
  // No core dumps of guest memory, no ptrace by other uid-0 processes without CAP_SYS_PTRACE.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return step_error("cannot clear the dumpable flag");
  }
  return {};
}

// --- the mount jail ------------------------------------------------------------------------------

Result<int> thread_count() {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) {
    return step_error("cannot list /proc/self/task");
  }
  int count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    count += entry->d_name[0] != '.' ? 1 : 0;
  }
  ::closedir(dir);
  return count;
}

enum class EntryKind { Device, Directory, File, Probe };

struct JailEntry {
  std::string path;  // absolute, the same inside the jail
  EntryKind kind;
  Fd source;  // O_PATH, opened before the tmpfs hides anything
};

Status check_absolute(const std::string& path) {
  if (path.empty() || path.front() != '/' || path.find("/../") != std::string::npos ||
      path.ends_with("/..") || path == "/") {
    return make_error(ExitStatus::Usage,
                      "sandbox: '{}' must be an absolute path below / without '..'", path);
  }
  return {};
}

// mkdir -p of `path` below the jail's mount point.
Status make_directories(const std::string& path) {
  for (size_t slash = path.find('/', std::string(kJailMount).size() + 1);;
       slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return step_error(fmt::format("cannot create {} in the jail", prefix));
    }
    if (slash == std::string::npos) {
      return {};
    }
  }
}

Status make_mount_point(const JailEntry& entry, const std::string& target) {
  if (entry.kind == EntryKind::Directory || entry.kind == EntryKind::Probe) {
    return make_directories(target);
  }
  HV_TRY(make_directories(target.substr(0, target.rfind('/'))));
  Fd file(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!file.valid() && errno != EEXIST) {
    return step_error(fmt::format("cannot create the mount point {} in the jail", entry.path));
  }
  return {};
}

Status bind_into_jail(const JailEntry& entry, const std::string& target) {
  const std::string source = fmt::format("/proc/self/fd/{}", entry.source.get());
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return step_error(fmt::format("cannot bind {} into the jail", entry.path));
  }
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC;
  if (entry.kind == EntryKind::Device) {
    flags |= MS_RDONLY;  // opening a device node for writing needs no writable mount
  } else {
    flags |= MS_NODEV;
  }
  if (::mount(nullptr, target.c_str(), nullptr, flags, nullptr) != 0) {
    return step_error(fmt::format("cannot restrict the jail's bind mount of {}", entry.path));
  }
  return {};
}

Result<std::vector<JailEntry>> open_jail_sources(const SandboxPlan& plan) {
  std::vector<JailEntry> entries;
  auto add = [&](const std::string& path, EntryKind kind) -> Status {
    HV_TRY(check_absolute(path));
    if (std::ranges::any_of(entries, [&](const JailEntry& e) { return e.path == path; })) {
      return {};
    }
    if (kind == EntryKind::Probe) {
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0) {
        entries.push_back({path, kind, Fd()});
      }
      return {};
    }
    if (kind == EntryKind::File) {
      // Created (not truncated) by its owner's uid while capabilities still let it.
      Fd created(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644));
      if (!created.valid()) {
        return step_error(fmt::format("cannot create {}", path));
      }
    }
    const int flags = O_PATH | O_CLOEXEC | (kind == EntryKind::Directory ? O_DIRECTORY : 0);
    Fd fd(::open(path.c_str(), flags));
    if (!fd.valid()) {
      return step_error(fmt::format("cannot open {} for the jail", path));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      return step_error(fmt::format("cannot stat {}", path));
    }
    const bool fits = kind == EntryKind::Device ? S_ISCHR(st.st_mode)
                      : kind == EntryKind::File ? S_ISREG(st.st_mode)
                                                : S_ISDIR(st.st_mode);
    if (!fits) {
      return make_error(ExitStatus::HostError, "sandbox: {} is not a {}", path,
                        kind == EntryKind::Device ? "character device"
                        : kind == EntryKind::File ? "regular file"
                                                  : "directory");
    }
    entries.push_back({path, kind, std::move(fd)});
    return {};
  };
  for (const char* device : {"/dev/null", "/dev/urandom"}) {
    HV_TRY(add(device, EntryKind::Device));
  }
  for (const std::string& device : plan.devices) {
    HV_TRY(add(device, EntryKind::Device));
  }
  for (const std::string& dir : plan.writable_dirs) {
    HV_TRY(add(dir, EntryKind::Directory));
  }
  for (const std::string& file : plan.writable_files) {
    HV_TRY(add(file, EntryKind::File));
  }
  for (const std::string& probe : plan.existence_probes) {
    HV_TRY(add(probe, EntryKind::Probe));
  }
  // Parents before children, so that a directory bound inside another shows on top of it.
  std::ranges::sort(entries, {}, [](const JailEntry& e) { return e.path.size(); });
  return entries;
}

Status build_jail(const SandboxPlan& plan) {
  if (::unshare(CLONE_NEWNS) != 0) {
    return step_error("cannot unshare the mount namespace");
  }
  // Nothing below propagates back to the host's mount namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return step_error("cannot make the mounts private");
  }
  // Opened in the new namespace (a bind mount's source must be in the caller's namespace) and
  // before the tmpfs hides anything below kJailMount.
  std::vector<JailEntry> entries = HV_TRY(open_jail_sources(plan));
  if (::mount("hv-jail", kJailMount, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=64k,nr_inodes=256") != 0) {
    return step_error(fmt::format("cannot mount the jail's tmpfs on {}", kJailMount));
  }
  for (const JailEntry& entry : entries) {
    const std::string target = kJailMount + entry.path;
    HV_TRY(make_mount_point(entry, target));
    if (entry.source.valid()) {
      HV_TRY(bind_into_jail(entry, target));
    }
  }
  if (::chdir(kJailMount) != 0) {
    return step_error("cannot enter the jail");
  }
  // The old root ends up under the new one, at "."; detaching it leaves only the jail.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) {
    return step_error("cannot pivot_root into the jail");
  }
  if (::umount2(".", MNT_DETACH) != 0) {
    return step_error("cannot detach the host's root");
  }
  if (::chdir("/") != 0) {
    return step_error("cannot change to the jail's root");
  }
  if (::mount(nullptr, "/", nullptr,
              MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return step_error("cannot make the jail's root read-only");
  }
  return {};
}

}  // namespace

Status enter_sandbox(const SandboxPlan& plan) {
  if (g_sandbox_active.load()) {
    return make_error(ExitStatus::HostError, "sandbox: this process is already confined");
  }
  // Capabilities and the mount namespace belong to the calling thread: any other thread would
  // stay outside the jail, with its capabilities.
  if (const int threads = HV_TRY(thread_count()); threads != 1) {
    return make_error(ExitStatus::HostError,
                      "sandbox: the process has {} threads; it must be confined before it starts "
                      "any",
                      threads);
  }
  const int last_cap = last_capability();  // /proc is gone after the jail
  HV_TRY(build_jail(plan));
  HV_TRY(drop_capabilities(last_cap));
  HV_TRY(load_filter(ThreadRole::Vmm, /*all_threads=*/true));
  g_sandbox_active.store(true);
  return {};
}

bool sandbox_active() {
  return g_sandbox_active.load(std::memory_order_relaxed);
}

Status install_thread_filter(ThreadRole role) {
  return load_filter(role, /*all_threads=*/false);
}

void confine_this_thread(ThreadRole role) {
  if (!sandbox_active()) {
    return;
  }
  if (Status status = install_thread_filter(role); !status) {
    fmt::print(stderr, "hv: {}\n", status.error().to_string());
    std::fflush(stderr);
    ::_exit(to_int(ExitStatus::HostError));
  }
}

}  // namespace hv
