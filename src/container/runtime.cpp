#include "container/runtime.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "container/cgroups.hpp"
#include "container/hooks.hpp"
#include "container/oci_config.hpp"
#include "container/process_security.hpp"
#include "container/rootfs.hpp"
#include "container/runtime_log.hpp"

namespace hv::container {

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kGo = 'g';
constexpr char kReady = 'r';
constexpr char kNamespacesReady = 'n';  // the runtime-namespace hooks may run now
constexpr char kContinue = 'c';         // followed by the state JSON for the container's hooks
constexpr char kFailed = 'e';
constexpr char kTerminal = 't';  // carries the master of the terminal opened in the container
constexpr char kPid = 'p';       // exec: followed by the process's PID in the runtime's namespace
constexpr char kSeccompListener = 's';  // carries a seccomp notification listener

struct NamespaceFlag {
  oci::NamespaceType type;
  int clone_flag;
  const char* name;
};
constexpr std::array kNamespaceFlags = {
    NamespaceFlag{oci::NamespaceType::User, CLONE_NEWUSER, "user"},
    NamespaceFlag{oci::NamespaceType::Mount, CLONE_NEWNS, "mount"},
    NamespaceFlag{oci::NamespaceType::Pid, CLONE_NEWPID, "pid"},
    NamespaceFlag{oci::NamespaceType::Network, CLONE_NEWNET, "network"},
    NamespaceFlag{oci::NamespaceType::Ipc, CLONE_NEWIPC, "ipc"},
    NamespaceFlag{oci::NamespaceType::Uts, CLONE_NEWUTS, "uts"},
    NamespaceFlag{oci::NamespaceType::Cgroup, CLONE_NEWCGROUP, "cgroup"},
    NamespaceFlag{oci::NamespaceType::Time, CLONE_NEWTIME, "time"},
};

const NamespaceFlag& flag_of(oci::NamespaceType type) {
  for (const NamespaceFlag& flag : kNamespaceFlags) {
    if (flag.type == type) {
      return flag;
    }
  }
  return kNamespaceFlags[0];
}

bool has_namespace(const oci::Config& config, oci::NamespaceType type) {
  for (const oci::Namespace& ns : config.linux.namespaces) {
    if (ns.type == type) {
      return true;
    }
  }
  return false;
}

std::string user_name() {
  if (const passwd* pw = ::getpwuid(::getuid())) {
    return pw->pw_name;
  }
  return std::to_string(::getuid());
}

Status write_text(const std::string& path, const std::string& text) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || ::write(fd.get(), text.data(), text.size()) != ssize_t(text.size())) {
    return Error::from_errno(fmt::format("cannot write '{}' to {}", text, path));
  }
  return {};
}

std::string id_map_text(const std::vector<oci::IdMapping>& mappings) {
  std::string text;
  for (const oci::IdMapping& m : mappings) {
    text += fmt::format("{} {} {}\n", m.container_id, m.host_id, m.size);
  }
  return text;
}

// The child reports a failure as text on the sync socket, then exits.
[[noreturn]] void child_fail(int sync_fd, const Error& error) {
  std::string message = error.to_string();
  message.insert(message.begin(), kFailed);
  if (::send(sync_fd, message.data(), message.size(), MSG_NOSIGNAL) < 0) {
    // The runtime has gone (the container was started by another process): say it on the
    // container's standard error instead.
    message.erase(message.begin());
    message = "hv: error: " + message + "\n";
    [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, message.data(), message.size());
  }
  ::_exit(127);
}

// A socket message over one buffer with room for one descriptor (SCM_RIGHTS).
struct OneDescriptorMessage {
  iovec iov;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr header{};
  OneDescriptorMessage(void* data, size_t size) : iov{data, size} {
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof(control);
  }
  OneDescriptorMessage(const OneDescriptorMessage&) = delete;
  OneDescriptorMessage& operator=(const OneDescriptorMessage&) = delete;
};

// Sends `payload` with one descriptor attached.
Status send_with_descriptor(int sock, std::string_view payload, int fd) {
  OneDescriptorMessage one(const_cast<char*>(payload.data()), payload.size());
  msghdr& message = one.header;
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
  if (::sendmsg(sock, &message, MSG_NOSIGNAL) < 0) {
    return Error::from_errno("cannot pass a descriptor over a socket");
  }
  return {};
}

// One message from the container's side of the sync socket: a kind byte, text, and the
// descriptor it carried, if any.
struct SyncMessage {
  char kind = 0;
  std::string text;
  Fd fd;
};

// nullopt at end of file: every process holding the other end has exec'd or exited.
std::optional<SyncMessage> receive_sync(int sock) {
  std::array<char, 4096> buffer{};
  OneDescriptorMessage one(buffer.data(), buffer.size());
  msghdr& message = one.header;
  ssize_t n = 0;
  do {
    n = ::recvmsg(sock, &message, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    return std::nullopt;
  }
  SyncMessage result;
  result.kind = buffer[0];
  result.text.assign(buffer.data() + 1, static_cast<size_t>(n - 1));
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
       header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(header), sizeof(int));
      result.fd.reset(fd);
    }
  }
  return result;
}

// The window size a new terminal starts with: the config's, else the user's terminal's.
winsize initial_window_size(const oci::Process& process) {
  winsize size{};
  if (process.console_size) {
    size.ws_row = static_cast<unsigned short>(process.console_size->height);
    size.ws_col = static_cast<unsigned short>(process.console_size->width);
  } else if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_row == 0) {
    size = {24, 80, 0, 0};
  }
  return size;
}

// Runs inside the container once its root is in place. The terminal comes from the container's
// own devpts instance, as with runc and crun: a pty of the host's devpts would have no name
// inside the container (ttyname fails, `tty` says "not a tty"). Its slave becomes this process's
// controlling terminal and standard streams (and /dev/console for the init); its master goes to
// the runtime, which hands it to the --console-socket or proxies it.
Status open_container_terminal(int sync_fd, const winsize& size, bool bind_console) {
  Fd master(::open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master.valid()) {
    master.reset(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  }
  if (!master.valid() || ::unlockpt(master.get()) != 0) {
    return Error::from_errno("cannot open a terminal in the container's /dev/pts");
  }
  Fd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave.valid()) {
    return Error::from_errno("cannot open the slave of the container's terminal");
  }
  ::ioctl(master.get(), TIOCSWINSZ, &size);
  if (bind_console) {
    const int console = ::open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (console >= 0) {
      ::close(console);
    }
    const std::string slave_path = "/proc/self/fd/" + std::to_string(slave.get());
    if (::mount(slave_path.c_str(), "/dev/console", nullptr, MS_BIND, nullptr) != 0) {
      return Error::from_errno("cannot bind the container's terminal onto /dev/console");
    }
  }
  if (::setsid() < 0 || ::ioctl(slave.get(), TIOCSCTTY, 0) != 0) {
    return Error::from_errno("cannot make the terminal controlling");
  }
  for (int fd = 0; fd < 3; ++fd) {
    if (::dup2(slave.get(), fd) < 0) {
      return Error::from_errno("cannot attach the terminal to the standard streams");
    }
  }
  return send_with_descriptor(sync_fd, std::string_view(&kTerminal, 1), master.get());
}

// The process's limits, identity and privileges, in the order that keeps each step possible:
// limits while privileged, a seccomp filter before the capabilities go when there is no
// no_new_privs (only a privileged process may load one then), the user and capabilities, then
// no_new_privs. With no_new_privs the filter is returned unloaded: the caller loads it last,
// right before exec, so the runtime's own remaining calls are not filtered.
//
// A filter with SCMP_ACT_NOTIFY rules is loaded here in both cases, since its listener must
// reach the runtime (on `sync_fd`) while the runtime still listens; the runtime hands it to the
// seccomp agent.
Result<std::optional<SeccompFilter>> apply_process_security(const oci::Config& config,
                                                            const oci::Process& process,
                                                            int sync_fd) {
  HV_TRY(apply_rlimits(process.rlimits));
  HV_TRY(apply_security_labels(process));
  if (process.oom_score_adj) {
    HV_TRY(set_oom_score_adj(*process.oom_score_adj));
  }
  std::optional<SeccompFilter> seccomp;
  if (config.linux.seccomp) {
    seccomp.emplace(HV_TRY(SeccompFilter::compile(*config.linux.seccomp)));
  }
  auto load_now = [&]() -> Status {
    if (seccomp->uses_notify()) {
      Fd listener(HV_TRY(seccomp->load_and_take_listener()));
      HV_TRY(send_with_descriptor(sync_fd, std::string_view(&kSeccompListener, 1), listener.get()));
    } else {
      HV_TRY(seccomp->load());
    }
    seccomp.reset();
    return {};
  };
  if (seccomp && !process.no_new_privileges) {
    HV_TRY(load_now());
  }
  HV_TRY(apply_user_and_capabilities(process.user, process.capabilities));
  if (process.no_new_privileges) {
    HV_TRY(set_no_new_privileges());
    if (seccomp && seccomp->uses_notify()) {
      HV_TRY(load_now());
    }
  }
  return seccomp;
}

// The user's program, found on the container's PATH as execvp would.
[[noreturn]] void exec_process(int sync_fd, const oci::Process& process, int preserve_fds) {
  // Only the standard streams and the --preserve-fds after them pass into the container: the
  // caller's other descriptors (a supervisor's pipes, sockets) are not the container's business.
  ::syscall(SYS_close_range, 3u + static_cast<unsigned>(preserve_fds), ~0u, CLOSE_RANGE_CLOEXEC);
  std::vector<char*> argv;
  for (const std::string& arg : process.args) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const std::string& entry : process.env) {
    envp.push_back(const_cast<char*>(entry.c_str()));
    if (entry.starts_with("PATH=")) {
      path = entry.substr(5);
    }
  }
  envp.push_back(nullptr);
  const std::string& program = process.args[0];
  int last_errno = ENOENT;
  if (program.find('/') != std::string::npos) {
    ::execve(program.c_str(), argv.data(), envp.data());
    last_errno = errno;
  } else {
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find(':', start);
      if (end == std::string::npos) {
        end = path.size();
      }
      const std::string candidate = path.substr(start, end - start) + "/" + program;
      ::execve(candidate.c_str(), argv.data(), envp.data());
      if (errno != ENOENT) {
        last_errno = errno;
      }
      start = end + 1;
    }
  }
  // By now the runtime may have stopped listening on the sync socket (`start` came from another
  // process): say it on the container's standard error, with a shell's status for it.
  const std::string message =
      fmt::format("hv: error: cannot execute {}: {}\n", program, std::strerror(last_errno));
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, message.data(), message.size());
  (void)sync_fd;
  ::_exit(last_errno == ENOENT ? 127 : 126);
}

struct ChildSetup {
  const oci::Config* config;
  std::string rootfs;
  bool no_pivot;
  int sync_fd;
  int state_dir_fd;       // O_PATH: the exec FIFO is opened through it after pivot_root
  winsize terminal_size;  // used when process.terminal
  int preserve_fds;       // --preserve-fds: descriptors after stderr passed to the process
  const CgroupView* cgroups;
  bool new_cgroup_namespace;  // unshared once the runtime has put the init in its cgroup
  bool new_time_namespace;    // unshared by the init, which sets its offsets first
};

Status enter_new_time_namespace(const std::map<std::string, oci::TimeOffset>& offsets) {
  if (::unshare(CLONE_NEWTIME) != 0) {
    return Error::from_errno("cannot create the time namespace");
  }
  std::string text;
  for (const auto& [clock, offset] : offsets) {
    text += fmt::format("{} {} {}\n", clock, offset.secs, offset.nanosecs);
  }
  if (!text.empty()) {
    Fd file(::open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC));
    if (!file.valid() || ::write(file.get(), text.data(), text.size()) != ssize_t(text.size())) {
      return Error::from_errno("cannot set the time namespace's offsets (.linux.timeOffsets)");
    }
  }
  Fd time_namespace(::open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC));
  if (!time_namespace.valid() || ::setns(time_namespace.get(), CLONE_NEWTIME) != 0) {
    return Error::from_errno("cannot enter the new time namespace");
  }
  return {};
}

// Whether the resources ask for anything that only a cgroup can enforce (device rules aside).
bool has_limits(const std::optional<oci::Resources>& resources) {
  return resources &&
         (resources->memory || resources->cpu ||
          (resources->pids_limit && *resources->pids_limit > 0) || resources->block_io ||
          !resources->hugepage_limits.empty() || !resources->unified.empty());
}

std::optional<int> errno_of(const Error& error) {
  return error.sys_errno != 0 ? std::optional<int>(error.sys_errno) : std::nullopt;
}

// The container's cgroup directories as its "cgroup" mounts show them.
CgroupView cgroup_view(const Cgroup& cgroup, bool own_namespace) {
  const std::vector<Cgroup::Directory> directories = cgroup.directories();
  CgroupView view;
  view.own_namespace = own_namespace;
  const bool only_v2 = directories.size() == 1 && directories[0].v2;
  for (const Cgroup::Directory& directory : directories) {
    CgroupView::Hierarchy hierarchy;
    hierarchy.host_dir = directory.path;
    hierarchy.v2 = directory.v2;
    for (const std::string& controller : directory.controllers) {
      hierarchy.mount_data += (hierarchy.mount_data.empty() ? "" : ",") + controller;
    }
    if (hierarchy.mount_data.starts_with("name=")) {
      hierarchy.mount_data = "none," + hierarchy.mount_data;
    }
    if (!only_v2) {
      hierarchy.name = directory.mount_point.substr(directory.mount_point.rfind('/') + 1);
      if (directory.controllers.size() > 1) {
        for (const std::string& controller : directory.controllers) {
          if (controller != hierarchy.name && !controller.starts_with("name=")) {
            hierarchy.aliases.push_back(controller);
          }
        }
      }
    }
    view.hierarchies.push_back(std::move(hierarchy));
  }
  return view;
}

[[noreturn]] void child_main(const ChildSetup& setup) {
  const oci::Config& config = *setup.config;
  const oci::Process& process = *config.process;
  char go = 0;
  if (::read(setup.sync_fd, &go, 1) != 1 || go != kGo) {
    ::_exit(126);  // the parent gave up; it cleans up
  }
  auto check = [&](Status status) {
    if (!status.ok()) {
      child_fail(setup.sync_fd, status.error());
    }
  };
  if (setup.new_cgroup_namespace && ::unshare(CLONE_NEWCGROUP) != 0) {
    child_fail(setup.sync_fd, Error::from_errno("cannot create the cgroup namespace"));
  }
  if (setup.new_time_namespace) {
    check(enter_new_time_namespace(config.linux.time_offsets));
  }
  // Namespaces given by path are joined first (user first, so the others are entered with its
  // privileges); the pid namespace was joined by the parent, as it only applies to children.
  for (oci::NamespaceType type :
       {oci::NamespaceType::User, oci::NamespaceType::Mount, oci::NamespaceType::Network,
        oci::NamespaceType::Ipc, oci::NamespaceType::Uts, oci::NamespaceType::Cgroup,
        oci::NamespaceType::Time}) {
    for (const oci::Namespace& ns : config.linux.namespaces) {
      if (ns.type != type || ns.path.empty()) {
        continue;
      }
      Fd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid() || ::setns(fd.get(), flag_of(type).clone_flag) != 0) {
        child_fail(setup.sync_fd, Error::from_errno(fmt::format("cannot join the {} namespace {}",
                                                                flag_of(type).name, ns.path)));
      }
    }
  }
  if (has_namespace(config, oci::NamespaceType::User) &&
      (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0)) {
    child_fail(setup.sync_fd, Error::from_errno("cannot become root in the user namespace"));
  }
  if (!config.hostname.empty() &&
      ::sethostname(config.hostname.data(), config.hostname.size()) != 0) {
    child_fail(setup.sync_fd, Error::from_errno("cannot set the hostname"));
  }
  if (!config.domainname.empty() &&
      ::setdomainname(config.domainname.data(), config.domainname.size()) != 0) {
    child_fail(setup.sync_fd, Error::from_errno("cannot set the domain name"));
  }
  // The runtime runs its prestart and createRuntime hooks now that the namespaces exist, and
  // sends the state the container's own hooks get.
  if (::write(setup.sync_fd, &kNamespacesReady, 1) != 1) {
    ::_exit(126);
  }
  std::vector<char> message(1 << 16);
  const ssize_t received = ::read(setup.sync_fd, message.data(), message.size());
  if (received <= 0 || message[0] != kContinue) {
    ::_exit(126);
  }
  const std::string state_text(message.data() + 1, static_cast<size_t>(received - 1));
  check(run_hooks(config.hooks.create_container, "createContainer", state_text));
  check(prepare_rootfs(config, setup.rootfs, setup.no_pivot, *setup.cgroups));
  check(apply_sysctl(config.linux.sysctl, has_namespace(config, oci::NamespaceType::Network)));
  if (process.terminal) {
    // Before the root may turn read-only: /dev/console may have to be created.
    check(open_container_terminal(setup.sync_fd, setup.terminal_size, true));
  }
  check(finish_rootfs(config));
  if (::chdir(process.cwd.c_str()) != 0) {
    child_fail(setup.sync_fd, Error::from_errno(fmt::format(
                                  "cannot change to the working directory {}", process.cwd)));
  }
  Result<std::optional<SeccompFilter>> seccomp =
      apply_process_security(config, process, setup.sync_fd);
  if (!seccomp.ok()) {
    child_fail(setup.sync_fd, seccomp.error());
  }
  const char ready = kReady;
  if (::write(setup.sync_fd, &ready, 1) != 1) {
    ::_exit(126);
  }
  // Created: wait until `start` opens the FIFO's other end.
  Fd fifo(::openat(setup.state_dir_fd, "exec.fifo", O_WRONLY | O_CLOEXEC));
  if (!fifo.valid() || ::write(fifo.get(), "0", 1) != 1) {
    ::_exit(126);
  }
  fifo.reset();
  ::close(setup.state_dir_fd);
  check(run_hooks(config.hooks.start_container, "startContainer", state_text));
  if (*seccomp) {
    check((*seccomp)->load());
  }
  exec_process(setup.sync_fd, process, setup.preserve_fds);
}

// After the config's device rules, the devices every container has (as runc adds them): the
// ones the runtime creates in /dev, the terminals, mknod of anything (opening is what the rules
// restrict), and the config's own linux.devices.
void allow_default_devices(const oci::Config& config, oci::Resources& resources) {
  auto allow = [&](char type, std::optional<int64_t> major, std::optional<int64_t> minor,
                   const char* access) {
    resources.devices.push_back({true, type, major, minor, access});
  };
  allow('c', std::nullopt, std::nullopt, "m");
  allow('b', std::nullopt, std::nullopt, "m");
  for (auto [major, minor] : std::initializer_list<std::pair<int64_t, int64_t>>{
           {1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}}) {
    allow('c', major, minor, "rwm");
  }
  allow('c', 136, std::nullopt, "rwm");  // /dev/pts/N
  for (const oci::Device& device : config.linux.devices) {
    if (device.type != 'p') {
      allow(device.type == 'b' ? 'b' : 'c', device.major, device.minor, "rwm");
    }
  }
}

pid_t clone_into_namespaces(int flags) {
  clone_args args{};
  args.flags = static_cast<uint64_t>(flags);
  args.exit_signal = SIGCHLD;
  return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof(args)));
}

// `what` names the socket in errors ("the console socket").
Result<Fd> connect_unix_socket(const std::string& socket_path, std::string_view what) {
  Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(address.sun_path)) {
    return make_error(ExitStatus::Usage, "the path of {} {} is too long", what, socket_path);
  }
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (!sock.valid() ||
      ::connect(sock.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Error::from_errno(fmt::format("cannot connect to {} {}", what, socket_path));
  }
  return sock;
}

Status send_terminal(const std::string& socket_path, int master) {
  Fd sock = HV_TRY(connect_unix_socket(socket_path, "the console socket"));
  // The payload is the terminal's name, as runc sends it; receivers only use the descriptor.
  if (!send_with_descriptor(sock.get(), "/dev/ptmx", master).ok()) {
    return Error::from_errno(fmt::format("cannot send the terminal to {}", socket_path));
  }
  return {};
}

// Hands a process's seccomp notification listener to the agent at linux.seccomp.listenerPath,
// with the container process state the runtime spec defines (the descriptor rides along).
Status send_seccomp_listener(const oci::Seccomp& seccomp, pid_t pid, const std::string& state,
                             int listener) {
  Fd sock = HV_TRY(connect_unix_socket(seccomp.listener_path, "the seccomp agent's socket"));
  nlohmann::ordered_json message;
  message["ociVersion"] = nlohmann::json::parse(state).value("ociVersion", "");
  message["fds"] = {"seccompFd"};
  message["pid"] = pid;
  message["metadata"] = seccomp.listener_metadata;
  message["state"] = nlohmann::ordered_json::parse(state);
  if (!send_with_descriptor(sock.get(), message.dump(), listener).ok()) {
    return Error::from_errno(
        fmt::format("cannot send the seccomp listener to {}", seccomp.listener_path));
  }
  return {};
}

Result<Cgroup> open_cgroup(const ContainerState& state) {
  if (state.cgroup_path.empty()) {
    return make_error(ExitStatus::Usage,
                      "container {} has no cgroup: it was created without root and the host "
                      "delegates no cgroup to its user",
                      state.id);
  }
  const CgroupLayout layout = HV_TRY(CgroupLayout::detect());
  return Cgroup::open(layout, state.cgroup_path);
}

// What a failed creation leaves to undo, undone in reverse on destruction unless released.
struct CreationUndo {
  const StateStore* store = nullptr;
  std::string id;
  std::optional<Cgroup> cgroup;
  pid_t child = -1;
  bool armed = true;
  ~CreationUndo() {
    if (!armed) {
      return;
    }
    if (child > 0) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
    }
    if (cgroup) {
      (void)cgroup->destroy();
    }
    if (store != nullptr) {
      (void)store->remove(id);
    }
  }
};

struct Created {
  pid_t pid;
  ContainerState state;
  Fd terminal_master;  // foreground run with a terminal and no console socket
};

Result<Created> create_impl(const RuntimeContext& context, const CreateOptions& options,
                            const oci::Config& config, bool keep_terminal) {
  if (!config.process) {
    return make_error(ExitStatus::BadConfig, "config.json: .process: required to create");
  }
  if (!has_namespace(config, oci::NamespaceType::Ipc)) {
    // Without its own IPC namespace these would change the host's values.
    for (const auto& [key, value] : config.linux.sysctl) {
      if (key.starts_with("kernel.msg") || key.starts_with("kernel.shm") || key == "kernel.sem" ||
          key.starts_with("fs.mqueue.")) {
        return make_error(ExitStatus::BadConfig,
                          "config.json: .linux.sysctl: {} needs the container's own ipc namespace",
                          key);
      }
    }
  }
  HV_TRY(validate_sysctl(config.linux.sysctl, has_namespace(config, oci::NamespaceType::Network)));
  HV_TRY(check_security_labels(*config.process, config.linux.mount_label));
  if (!has_namespace(config, oci::NamespaceType::Mount)) {
    return make_error(ExitStatus::BadConfig,
                      "config.json: .linux.namespaces: hv needs a mount namespace to set up the "
                      "container's root without touching the host's");
  }
  StateStore store(context.root);
  Fd lock = HV_TRY(store.create(options.id));
  CreationUndo undo;
  undo.store = &store;
  undo.id = options.id;

  const std::string state_dir = store.directory(options.id);
  // The init opens the FIFO for writing after it has taken the process's user (which may be
  // anyone, or root of a user namespace): writable by all, owned by the container's root, as
  // runc does. Reading it, which is what starts the container, stays the owner's.
  const std::string fifo = store.exec_fifo(options.id);
  if (::mkfifo(fifo.c_str(), 0622) != 0 || ::chmod(fifo.c_str(), 0622) != 0) {
    return Error::from_errno(fmt::format("cannot create {}", fifo));
  }
  if (has_namespace(config, oci::NamespaceType::User)) {
    const auto host_id_of_root = [](const std::vector<oci::IdMapping>& mappings) -> int64_t {
      for (const oci::IdMapping& m : mappings) {
        if (m.container_id == 0 && m.size > 0) {
          return static_cast<int64_t>(m.host_id);
        }
      }
      return -1;
    };
    const int64_t uid = host_id_of_root(config.linux.uid_mappings);
    const int64_t gid = host_id_of_root(config.linux.gid_mappings);
    if ((uid >= 0 || gid >= 0) &&
        ::chown(fifo.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0) {
      return Error::from_errno(fmt::format("cannot give {} to the container's root", fifo));
    }
  }
  Fd state_dir_fd(::open(state_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));

  const CgroupLayout layout = HV_TRY(CgroupLayout::detect());
  std::string cgroup_path =
      config.linux.cgroups_path.empty() ? "/hv/" + options.id : config.linux.cgroups_path;
  std::optional<oci::Resources> resources = config.linux.resources;
  if (resources && !resources->devices.empty()) {
    allow_default_devices(config, *resources);
  }
  log_debug("create {}: bundle {}, cgroup {} ({} v1 hierarchies{})", options.id, options.bundle,
            cgroup_path, layout.v1.size(), layout.v2_mount.empty() ? "" : " and cgroup v2");
  Result<Cgroup> cgroup = Cgroup::create(layout, cgroup_path, resources ? &*resources : nullptr);
  if (cgroup.ok()) {
    undo.cgroup.emplace(std::move(*cgroup));
  } else if (::geteuid() != 0 && errno_of(cgroup.error()) &&
             (*errno_of(cgroup.error()) == EACCES || *errno_of(cgroup.error()) == EPERM) &&
             !has_limits(resources)) {
    // Without root, and with no limit asked for, a container runs without a cgroup where the
    // host delegates none to the user (as with runc and crun); device rules are then kept by
    // the user namespace alone (no mknod, only the runtime's bind-mounted nodes).
    log_debug("create {}: no cgroup ({})", options.id, cgroup.error().message);
    cgroup_path.clear();
  } else {
    return std::move(cgroup).error();
  }

  if (config.process->terminal && options.console_socket.empty() && !keep_terminal) {
    return make_error(ExitStatus::Usage,
                      "process.terminal is true: a --console-socket is needed to receive the "
                      "terminal (or run in the foreground)");
  }

  int sync[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) != 0) {
    return Error::from_errno("cannot create the runtime's sync socket");
  }
  Fd parent_end(sync[0]), child_end(sync[1]);

  int clone_flags = 0;
  for (const oci::Namespace& ns : config.linux.namespaces) {
    if (ns.path.empty()) {
      clone_flags |= flag_of(ns.type).clone_flag;
    } else if (ns.type == oci::NamespaceType::Pid) {
      Fd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid() || ::setns(fd.get(), CLONE_NEWPID) != 0) {
        return Error::from_errno(fmt::format("cannot join the pid namespace {}", ns.path));
      }
    }
  }
  // A new cgroup namespace is rooted at the cgroup its creator is in: the init unshares it once
  // the runtime has moved it into the container's cgroup, not at clone time.
  const bool new_cgroup_namespace = (clone_flags & CLONE_NEWCGROUP) != 0;
  clone_flags &= ~CLONE_NEWCGROUP;
  // A new time namespace's offsets can only be set before any process is in it: the init
  // unshares it (which only its children would enter), sets them, then enters it itself.
  const bool new_time_namespace = (clone_flags & CLONE_NEWTIME) != 0;
  clone_flags &= ~CLONE_NEWTIME;
  const CgroupView cgroups =
      undo.cgroup ? cgroup_view(*undo.cgroup, new_cgroup_namespace) : CgroupView{};
  const pid_t child = clone_into_namespaces(clone_flags);
  if (child < 0) {
    return Error::from_errno("cannot create the container's process (clone3)");
  }
  if (child > 0) {
    log_debug("create {}: init is pid {} (clone flags {:#x}{})", options.id, child, clone_flags,
              new_cgroup_namespace ? ", cgroup namespace after joining the cgroup" : "");
  }
  if (child == 0) {
    parent_end.reset();
    lock.reset();  // only the runtime holds the container's lock
    ChildSetup setup{&config,
                     config.root.path,
                     options.no_pivot,
                     child_end.get(),
                     state_dir_fd.get(),
                     initial_window_size(*config.process),
                     options.preserve_fds,
                     &cgroups,
                     new_cgroup_namespace,
                     new_time_namespace};
    child_main(setup);
  }
  undo.child = child;
  child_end.reset();

  if (undo.cgroup) {
    HV_TRY(undo.cgroup->add_process(child));
  }
  if (clone_flags & CLONE_NEWUSER) {
    const std::string proc = "/proc/" + std::to_string(child);
    if (!config.linux.uid_mappings.empty()) {
      HV_TRY(write_text(proc + "/uid_map", id_map_text(config.linux.uid_mappings)));
    }
    if (::geteuid() != 0) {
      // An unprivileged writer of gid_map must first give up setgroups(2) in the namespace.
      HV_TRY(write_text(proc + "/setgroups", "deny"));
    }
    if (!config.linux.gid_mappings.empty()) {
      HV_TRY(write_text(proc + "/gid_map", id_map_text(config.linux.gid_mappings)));
    }
  }
  ContainerState state;
  state.id = options.id;
  state.pid = child;
  state.pid_start_time = process_start_time(child);
  state.bundle = options.bundle;
  state.rootfs = config.root.path;
  state.cgroup_path = cgroup_path;
  state.created = utc_timestamp(true);
  state.owner = user_name();
  state.annotations = config.annotations;

  if (::write(parent_end.get(), &kGo, 1) != 1) {
    return Error::from_errno("the container's process did not take the go-ahead");
  }
  Fd master;  // the container's terminal, when it has one
  auto read_report = [&]() -> Result<char> {
    for (;;) {
      std::optional<SyncMessage> report = receive_sync(parent_end.get());
      if (!report || report->kind == kFailed) {
        std::string why = report && !report->text.empty()
                              ? report->text
                              : "the container's process ended during set-up";
        return make_error(ExitStatus::BadConfig, "cannot create container {}: {}", options.id, why);
      }
      if (report->kind == kTerminal) {
        master = std::move(report->fd);
      } else if (report->kind == kSeccompListener && config.linux.seccomp) {
        HV_TRY(send_seccomp_listener(*config.linux.seccomp, child,
                                     state_json(state, ContainerStatus::Creating),
                                     report->fd.get()));
      } else {
        return report->kind;
      }
    }
  };
  if (HV_TRY(read_report()) != kNamespacesReady) {
    return make_error(ExitStatus::HostError, "container {}: set-up out of step", options.id);
  }
  const std::string creating = state_json(state, ContainerStatus::Creating);
  HV_TRY(run_hooks(config.hooks.prestart, "prestart", creating));
  HV_TRY(run_hooks(config.hooks.create_runtime, "createRuntime", creating));
  std::string go_on = creating;
  go_on.insert(go_on.begin(), kContinue);
  if (::send(parent_end.get(), go_on.data(), go_on.size(), MSG_NOSIGNAL) < 0) {
    return Error::from_errno("the container's process ended during set-up");
  }
  if (HV_TRY(read_report()) != kReady || (config.process->terminal && !master.valid())) {
    return make_error(ExitStatus::HostError, "container {}: set-up out of step", options.id);
  }
  HV_TRY(store.save(state));
  log_debug("create {}: set up, waiting for start", options.id);
  if (!options.pid_file.empty()) {
    const std::string text = std::to_string(child);
    std::ofstream out(options.pid_file, std::ios::trunc);
    if (!(out << text)) {
      return Error::from_errno(fmt::format("cannot write the pid file {}", options.pid_file));
    }
  }
  if (master.valid() && !options.console_socket.empty()) {
    HV_TRY(send_terminal(options.console_socket, master.get()));
    master.reset();
  }
  undo.armed = false;
  return Created{child, std::move(state), std::move(master)};
}

Status start_impl(const StateStore& store, const ContainerState& state,
                  const std::vector<oci::Hook>& poststart) {
  const std::string fifo_path = store.exec_fifo(state.id);
  Fd fifo(::open(fifo_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fifo.valid()) {
    return make_error(ExitStatus::Usage, "container {} is not in the created state", state.id);
  }
  // The init opens its end as soon as ours exists; until its byte arrives the read sees no
  // data (or end of file), so poll while the init is alive.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    char byte = 0;
    if (::read(fifo.get(), &byte, 1) == 1) {
      break;
    }
    if (process_start_time(state.pid) != state.pid_start_time) {
      return make_error(ExitStatus::HostError, "container {} ended before it started", state.id);
    }
    if (Clock::now() > deadline) {
      return make_error(ExitStatus::HostError, "container {} did not start", state.id);
    }
    pollfd pfd{fifo.get(), POLLIN, 0};
    ::poll(&pfd, 1, 5);
  }
  ::unlink(fifo_path.c_str());
  log_debug("start {}: pid {} runs the process", state.id, state.pid);
  // A failing poststart hook is a warning: the container runs already.
  if (Status hooks = run_hooks(poststart, "poststart", state_json(state, ContainerStatus::Running));
      !hooks.ok()) {
    fmt::print(stderr, "hv: warning: {}\n", hooks.error().message);
  }
  return {};
}

// Copies between the user's terminal and the container's until the container's side closes.
void proxy_terminal(int master) {
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  termios saved{};
  if (interactive && ::tcgetattr(STDIN_FILENO, &saved) == 0) {
    termios raw = saved;
    ::cfmakeraw(&raw);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {master, POLLIN, 0}};
  std::array<char, 4096> buffer{};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::read(master, buffer.data(), buffer.size());
      if (n <= 0) {
        break;
      }
      [[maybe_unused]] ssize_t w = ::write(STDOUT_FILENO, buffer.data(), static_cast<size_t>(n));
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      const ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
      if (n <= 0) {
        fds[0].fd = -1;  // end of input: keep showing the container's output
      } else {
        [[maybe_unused]] ssize_t w = ::write(master, buffer.data(), static_cast<size_t>(n));
      }
    }
  }
  if (interactive) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  }
}

volatile sig_atomic_t g_forward_to = 0;
void forward_signal(int signal) {
  if (g_forward_to > 0) {
    ::kill(g_forward_to, signal);
  }
}

// A runtime waiting in the foreground passes the signals a user or a supervisor sends it on to
// the container's process, as runc does.
void forward_signals_to(pid_t pid) {
  g_forward_to = pid;
  struct sigaction action {};
  action.sa_handler = forward_signal;
  for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) {
    ::sigaction(signal, &action, nullptr);
  }
}

Result<ContainerExit> run_impl(const RuntimeContext& context, const CreateOptions& options,
                               const oci::Config& config, bool detach) {
  Created created = HV_TRY(create_impl(context, options, config, !detach));
  StateStore store(context.root);
  {
    Fd lock = HV_TRY(store.lock(options.id));
    const ContainerState state = HV_TRY(store.load(options.id));
    if (Status started = start_impl(store, state, config.hooks.poststart); !started.ok()) {
      lock.reset();
      // A container `run` could not start is removed at once, not left for `delete`.
      (void)delete_container(context, options.id, true);
      ::waitpid(created.pid, nullptr, 0);
      return std::move(started).error();
    }
  }
  if (detach) {
    return ContainerExit{};
  }
  // The runtime stays the container's parent: it forwards signals and reaps it.
  forward_signals_to(created.pid);
  if (created.terminal_master.valid()) {
    proxy_terminal(created.terminal_master.get());
  }
  int status = 0;
  while (::waitpid(created.pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_forward_to = 0;
  // Read before delete removes the cgroup: a memory hog's plain SIGKILL is otherwise
  // indistinguishable from `kill -9`.
  uint64_t oom_kills = 0;
  if (Result<Cgroup> cgroup = open_cgroup(created.state); cgroup.ok()) {
    const Result<uint64_t> count = cgroup->oom_kill_count();
    oom_kills = count.ok() ? *count : 0;
  }
  log_debug("run {}: the process ended ({:#x})", options.id, status);
  HV_TRY(delete_container(context, options.id, true));
  if (oom_kills > 0) {
    fmt::print(
        stderr,
        "hv: container {}: the out-of-memory killer ended {} process{} in the container's "
        "memory limit{}\n",
        options.id, oom_kills, oom_kills == 1 ? "" : "es",
        WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? ", its main process among them" : "");
  }
  return ContainerExit{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), oom_kills};
}

Result<oci::Process> exec_process_spec(const ContainerState& state, const ExecOptions& options) {
  oci::Config config = HV_TRY(load_oci_bundle_config(state.bundle));
  oci::Process process = *config.process;
  if (!options.process_file.empty()) {
    std::ifstream in(options.process_file);
    if (!in) {
      return make_error(ExitStatus::FileMissing, "cannot read the process file {}",
                        options.process_file);
    }
    std::stringstream text;
    text << in.rdbuf();
    // A process document is validated as the process of a minimal config, so its errors name
    // the same paths (.process.args ...).
    const std::string wrapped =
        R"({"ociVersion":"1.0.0","root":{"path":"/"},"process":)" + text.str() + "}";
    oci::Config parsed = HV_TRY(parse_oci_config(wrapped));
    process = *parsed.process;
  } else if (!options.args.empty()) {
    process.args = options.args;
  }
  if (options.tty) {
    process.terminal = true;
  }
  if (process.args.empty()) {
    return make_error(ExitStatus::Usage, "exec needs a command or --process");
  }
  return process;
}

}  // namespace

Result<int> exec_in_container(const RuntimeContext& context, const ExecOptions& options) {
  StateStore store(context.root);
  ContainerState state;
  {
    Fd lock = HV_TRY(store.lock(options.id));
    state = HV_TRY(store.load(options.id));
  }
  if (store.status(state, false) != ContainerStatus::Running) {
    return make_error(ExitStatus::Usage, "container {} is not running", options.id);
  }
  const oci::Process process = HV_TRY(exec_process_spec(state, options));
  const oci::Config config = HV_TRY(load_oci_bundle_config(state.bundle));
  HV_TRY(check_security_labels(process, ""));
  Cgroup cgroup = HV_TRY(open_cgroup(state));

  // The namespaces to enter: those of the container's init that differ from the runtime's.
  std::vector<std::pair<Fd, int>> namespaces;
  for (auto [name, flag] :
       std::initializer_list<std::pair<const char*, int>>{{"user", CLONE_NEWUSER},
                                                          {"ipc", CLONE_NEWIPC},
                                                          {"uts", CLONE_NEWUTS},
                                                          {"net", CLONE_NEWNET},
                                                          {"pid", CLONE_NEWPID},
                                                          {"cgroup", CLONE_NEWCGROUP},
                                                          {"mnt", CLONE_NEWNS}}) {
    const std::string theirs = fmt::format("/proc/{}/ns/{}", state.pid, name);
    const std::string ours = fmt::format("/proc/self/ns/{}", name);
    struct stat a {
    }, b{};
    if (::stat(theirs.c_str(), &a) != 0 ||
        (::stat(ours.c_str(), &b) == 0 && a.st_ino == b.st_ino)) {
      continue;
    }
    Fd fd(::open(theirs.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      return Error::from_errno(fmt::format("cannot open {}", theirs));
    }
    namespaces.emplace_back(std::move(fd), flag);
  }

  if (process.terminal && options.console_socket.empty() && options.detach) {
    return make_error(ExitStatus::Usage,
                      "exec --detach with a terminal needs a --console-socket to receive it");
  }
  const winsize terminal_size = initial_window_size(process);
  int sync[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) != 0) {
    return Error::from_errno("cannot create the runtime's sync socket");
  }
  Fd parent_end(sync[0]), child_end(sync[1]);
  const pid_t middle = ::fork();
  if (middle < 0) {
    return Error::from_errno("cannot fork");
  }
  if (middle == 0) {
    parent_end.reset();
    auto check = [&](Status status) {
      if (!status.ok()) {
        child_fail(child_end.get(), status.error());
      }
    };
    check(cgroup.add_process(::getpid()));
    for (auto& [fd, flag] : namespaces) {
      if (::setns(fd.get(), flag) != 0) {
        check(Error::from_errno("cannot enter the container's namespaces"));
      }
    }
    // The pid namespace applies to children: the process runs in a second fork.
    const pid_t inner = ::fork();
    if (inner < 0) {
      check(Error::from_errno("cannot fork inside the container"));
    }
    if (inner > 0) {
      std::string pid_message = std::to_string(inner);
      pid_message.insert(pid_message.begin(), kPid);
      [[maybe_unused]] ssize_t n =
          ::send(child_end.get(), pid_message.data(), pid_message.size(), MSG_NOSIGNAL);
      child_end.reset();  // the runtime sees end of file once the process has exec'd
      if (options.detach) {
        // The caller (conmon, containerd-shim) is a child subreaper that waits for the pid in
        // the pid file: the process must become its child, which it does when we are gone.
        ::_exit(0);
      }
      int status = 0;
      while (::waitpid(inner, &status, 0) < 0 && errno == EINTR) {
      }
      ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
    if (process.terminal) {
      check(open_container_terminal(child_end.get(), terminal_size, false));
    }
    if (::chdir(process.cwd.c_str()) != 0) {
      check(Error::from_errno(fmt::format("cannot change to {}", process.cwd)));
    }
    Result<std::optional<SeccompFilter>> seccomp =
        apply_process_security(config, process, child_end.get());
    if (!seccomp.ok()) {
      check(seccomp.error());
    }
    if (*seccomp) {
      check((*seccomp)->load());
    }
    exec_process(child_end.get(), process, options.preserve_fds);
  }
  child_end.reset();
  // Until end of file: the PID, the terminal if any, or what went wrong.
  pid_t inner = -1;
  Fd master, seccomp_listener;
  while (std::optional<SyncMessage> report = receive_sync(parent_end.get())) {
    if (report->kind == kFailed) {
      int status = 0;
      ::waitpid(middle, &status, 0);
      return make_error(ExitStatus::HostError, "cannot exec in container {}: {}", options.id,
                        report->text);
    }
    if (report->kind == kPid) {
      inner = static_cast<pid_t>(std::strtol(report->text.c_str(), nullptr, 10));
    } else if (report->kind == kTerminal) {
      master = std::move(report->fd);
    } else if (report->kind == kSeccompListener) {
      seccomp_listener = std::move(report->fd);
    }
  }
  if (inner <= 0 || (process.terminal && !master.valid())) {
    int status = 0;
    ::waitpid(middle, &status, 0);
    return make_error(ExitStatus::HostError,
                      "cannot exec in container {}: the process ended before it started",
                      options.id);
  }
  if (!options.pid_file.empty()) {
    std::ofstream(options.pid_file, std::ios::trunc) << inner;
  }
  log_debug("exec {}: pid {}{}", options.id, inner, options.detach ? " (detached)" : "");
  if (seccomp_listener.valid() && config.linux.seccomp) {
    // The process waits in its first notified call until the agent has the listener.
    HV_TRY(send_seccomp_listener(*config.linux.seccomp, inner,
                                 state_json(state, ContainerStatus::Running),
                                 seccomp_listener.get()));
  }
  if (master.valid() && !options.console_socket.empty()) {
    HV_TRY(send_terminal(options.console_socket, master.get()));
    master.reset();
  }
  if (options.detach) {
    return 0;
  }
  forward_signals_to(inner);
  if (master.valid()) {
    proxy_terminal(master.get());
  }
  int status = 0;
  while (::waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  g_forward_to = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Status create_container(const RuntimeContext& context, const CreateOptions& options) {
  oci::Config config = HV_TRY(load_oci_bundle_config(options.bundle));
  return create_container_from(context, options, std::move(config));
}

Status create_container_from(const RuntimeContext& context, const CreateOptions& options,
                             oci::Config config) {
  HV_TRY(create_impl(context, options, config, false));
  return {};
}

Status start_container(const RuntimeContext& context, const std::string& id) {
  StateStore store(context.root);
  Fd lock = HV_TRY(store.lock(id));
  const ContainerState state = HV_TRY(store.load(id));
  if (store.status(state, false) != ContainerStatus::Created) {
    return make_error(ExitStatus::Usage, "container {} is not in the created state", id);
  }
  Result<oci::Config> config = load_oci_bundle_config(state.bundle);
  return start_impl(store, state, config.ok() ? config->hooks.poststart : std::vector<oci::Hook>{});
}

Result<int> run_container(const RuntimeContext& context, const CreateOptions& options,
                          bool detach) {
  oci::Config config = HV_TRY(load_oci_bundle_config(options.bundle));
  return HV_TRY(run_impl(context, options, config, detach)).status;
}

Result<int> run_container_from(const RuntimeContext& context, const CreateOptions& options,
                               oci::Config config) {
  return HV_TRY(run_impl(context, options, config, false)).status;
}

Result<ContainerExit> run_container_to_end(const RuntimeContext& context,
                                           const CreateOptions& options, oci::Config config) {
  return run_impl(context, options, config, false);
}

Result<std::string> container_state_json(const RuntimeContext& context, const std::string& id) {
  StateStore store(context.root);
  Fd lock = HV_TRY(store.lock(id));
  const ContainerState state = HV_TRY(store.load(id));
  bool frozen = false;
  uint64_t oom_kills = 0;
  if (Result<Cgroup> cgroup = open_cgroup(state); cgroup.ok()) {
    frozen = cgroup->frozen().ok() && *cgroup->frozen();
    const Result<uint64_t> count = cgroup->oom_kill_count();
    oom_kills = count.ok() ? *count : 0;
  }
  return state_json(state, store.status(state, frozen), oom_kills);
}

Status kill_container(const RuntimeContext& context, const std::string& id, int signal, bool all) {
  StateStore store(context.root);
  Fd lock = HV_TRY(store.lock(id));
  const ContainerState state = HV_TRY(store.load(id));
  if (all) {
    Cgroup cgroup = HV_TRY(open_cgroup(state));
    log_debug("kill {}: signal {} to every process", id, signal);
    return cgroup.kill_all(signal);
  }
  if (store.status(state, false) == ContainerStatus::Stopped) {
    return make_error(ExitStatus::Usage, "container {} is not running", id);
  }
  log_debug("kill {}: signal {} to pid {}", id, signal, state.pid);
  if (::kill(state.pid, signal) != 0) {
    return Error::from_errno(fmt::format("cannot signal container {}", id));
  }
  return {};
}

Status delete_container(const RuntimeContext& context, const std::string& id, bool force) {
  StateStore store(context.root);
  Result<Fd> lock = store.lock(id);
  if (!lock.ok()) {
    // As runc: forcing the removal of a container that is already gone succeeds, and clears
    // what a creation that died before writing its state left in the state directory.
    if (force && lock.error().status == ExitStatus::FileMissing) {
      return store.remove(id);
    }
    return std::move(lock).error();
  }
  Result<ContainerState> loaded = store.load(id);
  if (!loaded.ok()) {
    // Another delete held the lock first and removed the container while we waited for it.
    if (force && loaded.error().status == ExitStatus::FileMissing) {
      return {};
    }
    return std::move(loaded).error();
  }
  const ContainerState& state = *loaded;
  const ContainerStatus status = store.status(state, false);
  if (status != ContainerStatus::Stopped && status != ContainerStatus::Created && !force) {
    return make_error(ExitStatus::Usage, "container {} is {}: stop it first or use delete --force",
                      id, status_name(status));
  }
  if (Result<Cgroup> cgroup = open_cgroup(state); cgroup.ok()) {
    if (status == ContainerStatus::Paused) {
      (void)cgroup->thaw();
    }
    HV_TRY(cgroup->destroy());  // kills whatever is left, init included
  }
  if (status != ContainerStatus::Stopped) {
    ::kill(state.pid, SIGKILL);
  }
  HV_TRY(store.remove(id));
  log_debug("delete {}: removed (was {})", id, status_name(status));
  // poststop hooks run once the container is gone; their failures are warnings.
  if (Result<oci::Config> config = load_oci_bundle_config(state.bundle); config.ok()) {
    if (Status hooks = run_hooks(config->hooks.poststop, "poststop",
                                 state_json(state, ContainerStatus::Stopped));
        !hooks.ok()) {
      fmt::print(stderr, "hv: warning: {}\n", hooks.error().message);
    }
  }
  return {};
}

Status pause_container(const RuntimeContext& context, const std::string& id) {
  StateStore store(context.root);
  Fd lock = HV_TRY(store.lock(id));
  const ContainerState state = HV_TRY(store.load(id));
  if (store.status(state, false) != ContainerStatus::Running) {
    return make_error(ExitStatus::Usage, "container {} is not running", id);
  }
  Cgroup cgroup = HV_TRY(open_cgroup(state));
  return cgroup.freeze();
}

Status resume_container(const RuntimeContext& context, const std::string& id) {
  StateStore store(context.root);
  Fd lock = HV_TRY(store.lock(id));
  const ContainerState state = HV_TRY(store.load(id));
  Cgroup cgroup = HV_TRY(open_cgroup(state));
  if (!HV_TRY(cgroup.frozen())) {
    return make_error(ExitStatus::Usage, "container {} is not paused", id);
  }
  return cgroup.thaw();
}

Result<std::vector<pid_t>> container_pids(const RuntimeContext& context, const std::string& id) {
  StateStore store(context.root);
  Fd lock = HV_TRY(store.lock(id));
  const ContainerState state = HV_TRY(store.load(id));
  Cgroup cgroup = HV_TRY(open_cgroup(state));
  return cgroup.pids();
}

Result<std::string> list_containers(const RuntimeContext& context, bool json, bool quiet) {
  StateStore store(context.root);
  const std::vector<std::string> ids = HV_TRY(store.list());
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  std::string quiet_text;
  std::string text = fmt::format("{:<12} {:<8} {:<10} {:<40} {:<32} {}\n", "ID", "PID", "STATUS",
                                 "BUNDLE", "CREATED", "OWNER");
  for (const std::string& id : ids) {
    Result<ContainerState> state = store.load(id);
    if (!state.ok()) {
      continue;  // being deleted
    }
    const ContainerStatus status = store.status(*state, false);
    const pid_t pid = status == ContainerStatus::Stopped ? 0 : state->pid;
    if (quiet) {
      quiet_text += id + "\n";
    }
    text += fmt::format("{:<12} {:<8} {:<10} {:<40} {:<32} {}\n", id, pid, status_name(status),
                        state->bundle, state->created, state->owner);
    array.push_back({{"id", id},
                     {"pid", pid},
                     {"status", status_name(status)},
                     {"bundle", state->bundle},
                     {"rootfs", state->rootfs},
                     {"created", state->created},
                     {"owner", state->owner}});
  }
  if (quiet) {
    return quiet_text;
  }
  return json ? array.dump(2) + "\n" : text;
}

Result<int> parse_signal(const std::string& text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit)) {
    const int number = std::stoi(text);
    if (number > 0 && number < 65) {
      return number;
    }
  }
  std::string name = text;
  for (char& c : name) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (name.starts_with("SIG")) {
    name = name.substr(3);
  }
  for (int number = 1; number < NSIG; ++number) {
    const char* abbrev = ::sigabbrev_np(number);
    if (abbrev != nullptr && name == abbrev) {
      return number;
    }
  }
  return make_error(ExitStatus::Usage, "unknown signal '{}'", text);
}

std::string features_json() {
  nlohmann::ordered_json json;
  json["ociVersionMin"] = "1.0.0";
  json["ociVersionMax"] = "1.2.0";
  json["hooks"] = {"prestart",       "createRuntime", "createContainer",
                   "startContainer", "poststart",     "poststop"};
  json["mountOptions"] = {
      "ro",         "rw",         "nosuid",      "suid",          "nodev",      "dev",
      "noexec",     "exec",       "sync",        "async",         "dirsync",    "remount",
      "mand",       "nomand",     "noatime",     "atime",         "nodiratime", "diratime",
      "relatime",   "norelatime", "strictatime", "nostrictatime", "bind",       "rbind",
      "private",    "rprivate",   "shared",      "rshared",       "slave",      "rslave",
      "unbindable", "runbindable"};
  json["linux"]["namespaces"] = {"cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"};
  json["linux"]["cgroup"] = {
      {"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}};
  json["linux"]["seccomp"]["enabled"] = true;
  json["linux"]["apparmor"]["enabled"] = false;
  json["linux"]["selinux"]["enabled"] = false;
  json["annotations"]["org.opencontainers.runtime-spec.features"] = "hv";
  return json.dump(2) + "\n";
}

}  // namespace hv::container
