#include "supervisor/supervisor.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <filesystem>

#include "container/runtime.hpp"

namespace hv {

namespace {

constexpr const char* kCgroupParent = "/hv-guests";
constexpr const char* kConsoleProtocol = "hv-console";
// What a VMM process needs beyond guest memory and the images it keeps for reboots: code, heap,
// device state, thread stacks. Measured well under this (bench/supervisor.sh).
constexpr uint64_t kVmmMemoryMargin = 64ull << 20;
constexpr int64_t kVmmDefaultPids = 64;

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int signal) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

ApiReply error_reply(int status, std::string message) {
  return {status, {{"error", std::move(message)}}};
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::optional<uint64_t> read_number(const std::string& path, std::string_view key = {}) {
  Result<std::string> text = read_text_file(path);
  if (!text.ok()) {
    return std::nullopt;
  }
  std::string_view rest = *text;
  if (!key.empty()) {
    const size_t at = rest.find(key);
    if (at == std::string_view::npos) {
      return std::nullopt;
    }
    rest.remove_prefix(at + key.size());
  }
  try {
    return std::stoull(std::string(rest));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The guest's cgroup limits: the spec's, else for a machine its memory plus the images the VMM
// holds plus a margin, so that a VMM that runs away is stopped by its cgroup, not by the host.
oci::Resources guest_resources(const GuestSpec& spec) {
  oci::Resources resources;
  uint64_t memory = 0;
  if (spec.limits.memory_bytes) {
    memory = *spec.limits.memory_bytes;
  } else if (spec.is_machine()) {
    memory = spec.memory_bytes + kVmmMemoryMargin + file_size(spec.kernel);
    for (const std::string& initrd : spec.initrds) {
      memory += file_size(initrd);
    }
  }
  if (memory > 0) {
    oci::MemoryLimits& limits = resources.memory.emplace();
    limits.limit = static_cast<int64_t>(memory);
    limits.swap = static_cast<int64_t>(memory);
  }
  if (spec.limits.pids) {
    resources.pids_limit = *spec.limits.pids;
  } else if (spec.is_machine()) {
    resources.pids_limit = kVmmDefaultPids + spec.vcpus;
  }
  if (spec.limits.cpus) {
    constexpr uint64_t kPeriod = 100'000;
    oci::CpuLimits& cpu = resources.cpu.emplace();
    cpu.period = kPeriod;
    cpu.quota = static_cast<int64_t>(*spec.limits.cpus * kPeriod);
  }
  return resources;
}

std::optional<std::chrono::milliseconds> parse_seconds(const std::string& text) {
  try {
    size_t used = 0;
    const double seconds = std::stod(text, &used);
    if (used != text.size() || !(seconds >= 0) || seconds > 3600) {
      return std::nullopt;
    }
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<bool> parse_bool(const std::string& text) {
  if (text == "true" || text == "1") {
    return true;
  }
  if (text == "false" || text == "0") {
    return false;
  }
  return std::nullopt;
}

std::string signal_name(int signal) {
  const char* abbreviation = sigabbrev_np(signal);
  return abbreviation != nullptr ? fmt::format("SIG{}", abbreviation)
                                 : fmt::format("signal {}", signal);
}

}  // namespace

struct Supervisor::Guest {
  std::string name;
  std::string dir;
  GuestSpec spec;
  // Held by an operation that changes the guest's lifecycle; a second one gets 409 at once.
  std::mutex operation;
  // Guards the fields below; `ended` is signalled when a running guest's VMM process ends.
  std::mutex data;
  std::condition_variable ended;
  GuestRecord record;
  Fd pidfd;
  bool stop_requested = false;
};

Supervisor::Supervisor(SupervisorOptions options) : options_(std::move(options)) {}

Supervisor::~Supervisor() {
  stop();
  uint64_t one = 1;
  if (shutdown_.valid()) {
    [[maybe_unused]] ssize_t n = ::write(shutdown_.get(), &one, sizeof(one));
  }
  std::lock_guard lock(watchers_mutex_);
  for (std::thread& watcher : watchers_) {
    watcher.join();
  }
}

Result<std::unique_ptr<Supervisor>> Supervisor::open(const SupervisorOptions& options) {
  std::unique_ptr<Supervisor> supervisor(new Supervisor(options));
  if (supervisor->options_.vmm_binary.empty()) {
    std::error_code ec;
    supervisor->options_.vmm_binary = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) {
      return make_error(ExitStatus::HostError, "cannot find hv's own executable: {}", ec.message());
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(options.state_dir + "/guests", ec);
  if (ec) {
    return make_error(ExitStatus::HostError, "cannot create the state directory {}: {}",
                      options.state_dir, ec.message());
  }
  ::chmod(options.state_dir.c_str(), 0700);
  supervisor->layout_ = HV_TRY(container::CgroupLayout::detect());
  supervisor->shutdown_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!supervisor->shutdown_.valid()) {
    return Error::from_errno("eventfd for the supervisor");
  }
  HV_TRY(supervisor->load());
  return supervisor;
}

std::string Supervisor::guest_dir(const std::string& name) const {
  return options_.state_dir + "/guests/" + name;
}

Status Supervisor::load() {
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(options_.state_dir + "/guests", ec)) {
    const std::string name = entry.path().filename().string();
    const std::string dir = entry.path().string();
    if (!valid_guest_name(name) || !entry.is_directory()) {
      continue;
    }
    Result<GuestRecord> record = load_record(dir);
    Result<std::string> spec_text = read_text_file(dir + "/spec.json");
    if (!record.ok() && !spec_text.ok()) {
      // A create that died before its first record: nothing was ever acknowledged.
      std::filesystem::remove_all(dir, ec);
      continue;
    }
    if (!record.ok()) {
      return make_error(ExitStatus::HostError, "the record of guest {} is unreadable: {}", name,
                        record.error().to_string());
    }
    Result<GuestSpec> spec =
        spec_text.ok() ? parse_guest_spec(*spec_text, "") : Result<GuestSpec>(spec_text.error());
    if (!spec.ok()) {
      return make_error(ExitStatus::HostError, "the spec of guest {} is unreadable: {}", name,
                        spec.error().to_string());
    }
    auto guest = std::make_shared<Guest>();
    guest->name = name;
    guest->dir = dir;
    guest->spec = std::move(*spec);
    guest->record = std::move(*record);
    guests_[name] = guest;
    const GuestState state = guest->record.state;
    if (state != GuestState::Running && state != GuestState::Paused) {
      continue;
    }
    // Still the same process? A PID alone may have been reused since.
    const std::optional<uint64_t> started = process_start_time(guest->record.pid);
    if (started && *started == guest->record.pid_start_time) {
      guest->pidfd.reset(pidfd_open(guest->record.pid));
    }
    if (guest->pidfd.valid()) {
      watch(guest);
    } else {
      finish_guest(*guest, std::nullopt);
    }
  }
  return {};
}

std::shared_ptr<Supervisor::Guest> Supervisor::find(const std::string& name) {
  std::lock_guard lock(guests_mutex_);
  auto it = guests_.find(name);
  return it == guests_.end() ? nullptr : it->second;
}

Status Supervisor::serve() {
  server_ = HV_TRY(api::HttpServer::listen(options_.socket_path, 0600));
  return server_->serve([this](const api::HttpRequest& request, api::HttpConnection& connection) {
    handle(request, connection);
  });
}

void Supervisor::stop() {
  if (server_) {
    server_->stop();
  }
}

ApiReply Supervisor::create(std::string_view spec_json) {
  Result<GuestSpec> spec = parse_guest_spec(spec_json, "");
  if (!spec.ok()) {
    return error_reply(400, spec.error().message);
  }
  auto guest = std::make_shared<Guest>();
  guest->name = spec->name;
  guest->dir = guest_dir(spec->name);
  guest->record.name = spec->name;
  guest->record.engine = std::string(engine_name(spec->engine));
  guest->record.created_at_ms = wall_clock_ms();
  {
    std::lock_guard lock(guests_mutex_);
    if (guests_.contains(spec->name)) {
      return error_reply(409, fmt::format("a guest named \"{}\" exists already", spec->name));
    }
    guests_[spec->name] = guest;
  }
  auto undo = [&](const Error& error) {
    std::error_code ec;
    std::filesystem::remove_all(guest->dir, ec);
    std::lock_guard lock(guests_mutex_);
    guests_.erase(guest->name);
    return error_reply(500, error.to_string());
  };
  if (::mkdir(guest->dir.c_str(), 0700) != 0) {
    Error error = Error::from_errno(fmt::format("cannot create {}", guest->dir));
    std::lock_guard lock(guests_mutex_);
    guests_.erase(guest->name);
    return error_reply(500, error.to_string());
  }
  if (Status written = write_file_atomically(guest->dir + "/spec.json",
                                             guest_spec_to_json(*spec).dump(2), Durability::Synced);
      !written.ok()) {
    return undo(written.error());
  }
  guest->spec = std::move(*spec);
  if (Status saved = save_record(guest->dir, guest->record); !saved.ok()) {
    return undo(saved.error());
  }
  return {201, describe(*guest)};
}

Status Supervisor::spawn_vmm(Guest& guest) {
  const std::string cgroup_path = fmt::format("{}/{}", kCgroupParent, guest.name);
  const oci::Resources resources = guest_resources(guest.spec);
  container::Cgroup cgroup = HV_TRY(container::Cgroup::create(layout_, cgroup_path, &resources));
  Result<container::Cgroup> vmm_cgroup =
      container::Cgroup::create(layout_, cgroup_path + "/vmm", nullptr);
  if (!vmm_cgroup.ok()) {
    [[maybe_unused]] Status destroyed = cgroup.destroy();
    return std::move(vmm_cgroup).error();
  }
  // Everything the child needs is prepared before fork: the supervisor has threads, so the child
  // may only make async-signal-safe calls until it execs.
  std::vector<std::string> arguments = {
      options_.vmm_binary, "vmm",       "--guest-dir",    guest.dir,
      "--cgroup",          cgroup_path, "--runtime-root", options_.state_dir + "/containers"};
  std::vector<char*> argv;
  for (std::string& argument : arguments) {
    argv.push_back(argument.data());
  }
  argv.push_back(nullptr);
  const std::string log_path = guest.dir + "/vmm.log";
  ::unlink((guest.dir + "/result.json").c_str());
  int sync[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) {
    [[maybe_unused]] Status destroyed = cgroup.destroy();
    return Error::from_errno("cannot create a pipe");
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(sync[0]);
    ::close(sync[1]);
    [[maybe_unused]] Status destroyed = cgroup.destroy();
    return Error::from_errno("cannot fork the VMM process");
  }
  if (pid == 0) {
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    const int null = ::open("/dev/null", O_RDWR);
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (null < 0 || log < 0) {
      ::_exit(127);
    }
    ::dup2(null, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
    char go = 0;
    // The parent puts this process into its cgroup first; EOF means it could not.
    if (::read(sync[0], &go, 1) != 1) {
      ::_exit(127);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(sync[0]);
  Status joined = vmm_cgroup->add_process(pid);
  Fd pidfd(pidfd_open(pid));
  if (!joined.ok() || !pidfd.valid()) {
    ::close(sync[1]);  // the child exits without running anything
    ::waitpid(pid, nullptr, 0);
    [[maybe_unused]] Status destroyed = cgroup.destroy();
    return joined.ok() ? Error::from_errno("pidfd_open of the VMM process") : joined;
  }
  const char go = 1;
  [[maybe_unused]] ssize_t n = ::write(sync[1], &go, 1);
  ::close(sync[1]);
  std::lock_guard lock(guest.data);
  guest.pidfd = std::move(pidfd);
  guest.stop_requested = false;
  guest.record.pid = pid;
  guest.record.pid_start_time = process_start_time(pid).value_or(0);
  guest.record.cgroup = cgroup_path;
  guest.record.state = GuestState::Running;
  guest.record.started_at_ms = wall_clock_ms();
  guest.record.ended_at_ms = 0;
  guest.record.end.reset();
  return save_record(guest.dir, guest.record);
}

void Supervisor::watch(std::shared_ptr<Guest> guest) {
  std::lock_guard lock(watchers_mutex_);
  watchers_.emplace_back([this, guest] {
    std::array<pollfd, 2> fds{};
    {
      std::lock_guard data(guest->data);
      fds[0] = {guest->pidfd.get(), POLLIN, 0};
    }
    fds[1] = {shutdown_.get(), POLLIN, 0};
    for (;;) {
      const int ready = ::poll(fds.data(), fds.size(), -1);
      if (ready < 0 && errno == EINTR) {
        continue;
      }
      if (ready < 0 || (fds[1].revents & POLLIN) != 0) {
        return;  // the supervisor stops; the guest runs on and a new supervisor adopts it
      }
      if ((fds[0].revents & POLLIN) != 0) {
        break;
      }
    }
    siginfo_t info{};
    // Only the supervisor that started the VMM process can collect its status.
    const bool collected =
        ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fds[0].fd), &info, WEXITED) == 0;
    finish_guest(*guest, collected ? std::optional(info) : std::nullopt);
  });
}

void Supervisor::finish_guest(Guest& guest, std::optional<siginfo_t> status) {
  GuestEnd end;
  const std::string cgroup_path = [&] {
    std::lock_guard lock(guest.data);
    return guest.record.cgroup;
  }();
  std::optional<container::Cgroup> cgroup;
  if (!cgroup_path.empty()) {
    if (Result<container::Cgroup> opened = container::Cgroup::open(layout_, cgroup_path);
        opened.ok()) {
      cgroup.emplace(std::move(*opened));
    }
  }
  const uint64_t oom_kills = [&]() -> uint64_t {
    if (!cgroup) {
      return 0;
    }
    Result<uint64_t> count = cgroup->oom_kill_count();
    return count.ok() ? *count : 0;
  }();
  if (std::optional<GuestEnd> reported = load_end(guest.dir)) {
    end = *reported;
  } else if (status && (status->si_code == CLD_KILLED || status->si_code == CLD_DUMPED)) {
    if (status->si_status == SIGKILL && oom_kills > 0) {
      end = {"oom", 128 + SIGKILL,
             "the OOM killer ended the VMM process (the guest's memory limit)"};
    } else {
      end = {"killed", 128 + status->si_status,
             fmt::format("the VMM process was killed by {}", signal_name(status->si_status))};
    }
  } else if (status) {
    end = {
        "lost", status->si_status,
        fmt::format("the VMM process exited with status {} and left no report", status->si_status)};
  } else {
    end = {"lost", -1,
           "the VMM process ended while no supervisor watched it, and left no report (killed?)"};
  }
  // What is left of the guest (a container's processes, if its monitor died first) goes too,
  // with its cgroup: a later start makes a fresh one.
  if (cgroup) {
    if (Status destroyed = cgroup->destroy(); !destroyed.ok()) {
      fmt::print(stderr, "hv serve: guest {}: {}\n", guest.name, destroyed.error().to_string());
    }
  }
  if (!guest.spec.is_machine()) {
    container::RuntimeContext context;
    context.root = options_.state_dir + "/containers";
    [[maybe_unused]] Status deleted = container::delete_container(context, guest.name, true);
  }
  std::lock_guard lock(guest.data);
  if (guest.stop_requested && end.kind != "crash" && end.kind != "oom") {
    end = {"stopped", end.status, fmt::format("stopped on request ({})", end.message)};
  }
  guest.record.state = end_is_failure(end) ? GuestState::Failed : GuestState::Exited;
  guest.record.end = end;
  guest.record.ended_at_ms = wall_clock_ms();
  guest.record.pid = 0;
  guest.record.pid_start_time = 0;
  guest.pidfd.reset();
  if (Status saved = save_record(guest.dir, guest.record); !saved.ok()) {
    fmt::print(stderr, "hv serve: {}\n", saved.error().to_string());
  }
  guest.ended.notify_all();
}

std::optional<ApiReply> Supervisor::begin_operation(const std::string& name,
                                                    std::shared_ptr<Guest>& guest,
                                                    std::unique_lock<std::mutex>& operation) {
  guest = find(name);
  if (!guest) {
    return error_reply(404, fmt::format("no guest named \"{}\"", name));
  }
  operation = std::unique_lock(guest->operation, std::try_to_lock);
  if (!operation.owns_lock()) {
    return error_reply(409, fmt::format("another operation on guest \"{}\" is in progress", name));
  }
  return std::nullopt;
}

ApiReply Supervisor::start(const std::string& name) {
  std::shared_ptr<Guest> guest;
  std::unique_lock<std::mutex> operation;
  if (std::optional<ApiReply> refusal = begin_operation(name, guest, operation)) {
    return *refusal;
  }
  {
    std::lock_guard lock(guest->data);
    if (guest->record.state == GuestState::Running || guest->record.state == GuestState::Paused) {
      return error_reply(409, fmt::format("guest \"{}\" is already {}", name,
                                          guest_state_name(guest->record.state)));
    }
  }
  if (Status spawned = spawn_vmm(*guest); !spawned.ok()) {
    return error_reply(
        500, fmt::format("cannot start guest \"{}\": {}", name, spawned.error().to_string()));
  }
  watch(guest);
  return {200, describe(*guest)};
}

ApiReply Supervisor::stop_guest(const std::string& name, std::chrono::milliseconds timeout) {
  std::shared_ptr<Guest> guest;
  std::unique_lock<std::mutex> operation;
  if (std::optional<ApiReply> refusal = begin_operation(name, guest, operation)) {
    return *refusal;
  }
  std::unique_lock lock(guest->data);
  const GuestState state = guest->record.state;
  if (state != GuestState::Running && state != GuestState::Paused) {
    return error_reply(
        409, fmt::format("guest \"{}\" is not running (it is {})", name, guest_state_name(state)));
  }
  guest->stop_requested = true;
  std::optional<container::Cgroup> cgroup;
  if (Result<container::Cgroup> opened = container::Cgroup::open(layout_, guest->record.cgroup);
      opened.ok()) {
    cgroup.emplace(std::move(*opened));
  }
  if (state == GuestState::Paused) {
    // A frozen process cannot act on SIGTERM; without its cgroup, SIGKILL still ends it.
    if (cgroup) {
      [[maybe_unused]] Status thawed = cgroup->thaw();
    }
    guest->record.state = GuestState::Running;
  }
  // Gracefully first: the VMM stops the machine (or forwards the signal to the container's
  // process) and reports; then by force.
  pidfd_send_signal(guest->pidfd.get(), SIGTERM);
  auto running = [&] { return guest->record.state == GuestState::Running; };
  if (!guest->ended.wait_for(lock, timeout, [&] { return !running(); })) {
    pidfd_send_signal(guest->pidfd.get(), SIGKILL);
    if (cgroup) {
      lock.unlock();
      [[maybe_unused]] Status killed = cgroup->kill_all(SIGKILL);
      lock.lock();
    }
    guest->ended.wait_for(lock, std::chrono::seconds(10), [&] { return !running(); });
  }
  if (running()) {
    return error_reply(500, fmt::format("guest \"{}\" did not stop", name));
  }
  lock.unlock();
  return {200, describe(*guest)};
}

ApiReply Supervisor::pause(const std::string& name, bool pause) {
  std::shared_ptr<Guest> guest;
  std::unique_lock<std::mutex> operation;
  if (std::optional<ApiReply> refusal = begin_operation(name, guest, operation)) {
    return *refusal;
  }
  std::unique_lock lock(guest->data);
  const GuestState from = pause ? GuestState::Running : GuestState::Paused;
  if (guest->record.state != from) {
    return error_reply(
        409, fmt::format("guest \"{}\" is {}, not {}", name, guest_state_name(guest->record.state),
                         guest_state_name(from)));
  }
  Result<container::Cgroup> cgroup = container::Cgroup::open(layout_, guest->record.cgroup);
  Status changed =
      cgroup.ok() ? (pause ? cgroup->freeze() : cgroup->thaw()) : Status(std::move(cgroup).error());
  if (!changed.ok()) {
    return error_reply(500, changed.error().to_string());
  }
  guest->record.state = pause ? GuestState::Paused : GuestState::Running;
  if (Status saved = save_record(guest->dir, guest->record); !saved.ok()) {
    return error_reply(500, saved.error().to_string());
  }
  lock.unlock();
  return {200, describe(*guest)};
}

ApiReply Supervisor::remove(const std::string& name, bool force) {
  std::shared_ptr<Guest> guest = find(name);
  if (!guest) {
    return error_reply(404, fmt::format("no guest named \"{}\"", name));
  }
  {
    std::unique_lock lock(guest->data);
    const GuestState state = guest->record.state;
    if (state == GuestState::Running || state == GuestState::Paused) {
      if (!force) {
        return error_reply(409, fmt::format("guest \"{}\" is {}: stop it first or force", name,
                                            guest_state_name(state)));
      }
      lock.unlock();
      // Forced: no grace period. A guest that ended meanwhile (409 "not running") is fine.
      ApiReply stopped = stop_guest(name, std::chrono::milliseconds(0));
      if (stopped.status != 200 && stopped.status != 409) {
        return stopped;
      }
    }
  }
  std::unique_lock<std::mutex> operation;
  if (std::optional<ApiReply> refusal = begin_operation(name, guest, operation)) {
    return *refusal;
  }
  {
    std::lock_guard lock(guest->data);
    if (guest->record.state == GuestState::Running || guest->record.state == GuestState::Paused) {
      return error_reply(409, fmt::format("guest \"{}\" was started again", name));
    }
    if (!guest->record.cgroup.empty()) {
      if (Result<container::Cgroup> cgroup = container::Cgroup::open(layout_, guest->record.cgroup);
          cgroup.ok()) {
        if (Status destroyed = cgroup->destroy(); !destroyed.ok()) {
          return error_reply(500, destroyed.error().to_string());
        }
      }
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(guest->dir, ec);
  if (ec) {
    return error_reply(500, fmt::format("cannot remove {}: {}", guest->dir, ec.message()));
  }
  std::lock_guard lock(guests_mutex_);
  guests_.erase(name);
  return {204, nullptr};
}

nlohmann::json Supervisor::describe(Guest& guest) {
  std::lock_guard lock(guest.data);
  const GuestRecord& r = guest.record;
  nlohmann::json json = to_json(r);
  json.erase("pid_start_time");
  const bool live = r.state == GuestState::Running || r.state == GuestState::Paused;
  const int64_t until = live ? wall_clock_ms() : r.ended_at_ms;
  json["uptime_s"] = r.started_at_ms > 0 ? static_cast<double>(until - r.started_at_ms) / 1000 : 0;
  json["memory_bytes"] = nullptr;
  json["cpu_seconds"] = nullptr;
  if (live && !r.cgroup.empty()) {
    if (const container::CgroupHierarchy* memory = layout_.v1_hierarchy("memory")) {
      json["memory_bytes"] =
          read_number(memory->mount_point + r.cgroup + "/memory.usage_in_bytes").value_or(0);
    } else if (!layout_.v2_mount.empty()) {
      json["memory_bytes"] =
          read_number(layout_.v2_mount + r.cgroup + "/memory.current").value_or(0);
    }
    if (const container::CgroupHierarchy* cpu = layout_.v1_hierarchy("cpuacct")) {
      json["cpu_seconds"] =
          static_cast<double>(
              read_number(cpu->mount_point + r.cgroup + "/cpuacct.usage").value_or(0)) /
          1e9;
    } else if (!layout_.v2_mount.empty()) {
      json["cpu_seconds"] =
          static_cast<double>(
              read_number(layout_.v2_mount + r.cgroup + "/cpu.stat", "usage_usec ").value_or(0)) /
          1e6;
    }
  }
  json["spec"] = guest_spec_to_json(guest.spec);
  return json;
}

ApiReply Supervisor::get(const std::string& name) {
  std::shared_ptr<Guest> guest = find(name);
  if (!guest) {
    return error_reply(404, fmt::format("no guest named \"{}\"", name));
  }
  return {200, describe(*guest)};
}

ApiReply Supervisor::list() {
  std::vector<std::shared_ptr<Guest>> guests;
  {
    std::lock_guard lock(guests_mutex_);
    for (auto& [name, guest] : guests_) {
      guests.push_back(guest);
    }
  }
  nlohmann::json array = nlohmann::json::array();
  for (auto& guest : guests) {
    array.push_back(describe(*guest));
  }
  return {200, array};
}

void Supervisor::stream_logs(Guest& guest, bool follow, api::HttpConnection& connection) {
  const std::string path = guest.dir + "/console.log";
  Fd log(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  auto is_live = [&] {
    std::lock_guard lock(guest.data);
    return guest.record.state == GuestState::Running || guest.record.state == GuestState::Paused;
  };
  if (!connection.begin_chunked(200, "text/plain; charset=utf-8").ok()) {
    return;
  }
  std::array<char, 65536> buffer;
  for (;;) {
    const bool live = is_live();  // before reading, so output written just before the end is sent
    if (!log.valid()) {
      log.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    }
    ssize_t n = 0;
    while (log.valid() && (n = ::read(log.get(), buffer.data(), buffer.size())) > 0) {
      if (!connection.write_chunk({buffer.data(), static_cast<size_t>(n)}).ok()) {
        return;
      }
    }
    if (!follow || !live || connection.stopping()) {
      break;
    }
    // Polling a file costs little at this rate, and a client gone is noticed on the next write.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  [[maybe_unused]] Status ended = connection.end_chunked();
}

void Supervisor::attach_console(Guest& guest, api::HttpConnection& connection) {
  {
    std::lock_guard lock(guest.data);
    if (guest.record.state != GuestState::Running && guest.record.state != GuestState::Paused) {
      [[maybe_unused]] Status sent = connection.respond(
          409, "application/json",
          api::error_json(fmt::format("guest \"{}\" is not running", guest.name)));
      return;
    }
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string socket_path = guest.dir + "/console.sock";
  Fd console(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (socket_path.size() >= sizeof(address.sun_path) || !console.valid()) {
    [[maybe_unused]] Status sent = connection.respond(
        500, "application/json", api::error_json("cannot reach the guest's console"));
    return;
  }
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  // A VMM process just started may not have opened its console yet.
  bool connected = false;
  for (int attempt = 0; attempt < 100 && !connected && !connection.stopping(); ++attempt) {
    connected =
        ::connect(console.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
    if (!connected) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  if (!connected) {
    [[maybe_unused]] Status sent = connection.respond(
        503, "application/json",
        api::error_json(fmt::format("the console of guest \"{}\" is not ready", guest.name)));
    return;
  }
  Result<std::string> early = connection.switch_protocols(kConsoleProtocol);
  if (!early.ok()) {
    return;
  }
  if (!early->empty()) {
    [[maybe_unused]] ssize_t n = ::send(console.get(), early->data(), early->size(), MSG_NOSIGNAL);
  }
  // Both directions until either side closes or the supervisor stops.
  std::array<char, 16384> buffer;
  std::array<pollfd, 3> fds{};
  fds[0] = {connection.fd(), POLLIN, 0};
  fds[1] = {console.get(), POLLIN, 0};
  fds[2] = {shutdown_.get(), POLLIN, 0};
  while (!connection.stopping()) {
    if (::poll(fds.data(), fds.size(), 500) < 0 && errno != EINTR) {
      return;
    }
    if ((fds[2].revents & POLLIN) != 0) {
      return;
    }
    for (int from = 0; from < 2; ++from) {
      if ((fds[from].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      const ssize_t n = ::recv(fds[from].fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n == 0 && from == 0) {
        // The client is done typing (its input ended) but still reads: keep the output coming
        // until the guest's console closes.
        fds[0].fd = -1;
        continue;
      }
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        return;
      }
      const int to = from == 0 ? console.get() : connection.fd();
      if (n > 0 && ::send(to, buffer.data(), static_cast<size_t>(n), MSG_NOSIGNAL) < 0) {
        return;
      }
    }
  }
}

void Supervisor::handle(const api::HttpRequest& request, api::HttpConnection& connection) {
  auto reply = [&](const ApiReply& answer) {
    if (answer.status == 204) {
      [[maybe_unused]] Status sent = connection.respond(204, "application/json", "");
      return;
    }
    [[maybe_unused]] Status sent =
        connection.respond(answer.status, "application/json", answer.body.dump() + "\n");
  };
  auto fail = [&](int status, std::string message) {
    reply(error_reply(status, std::move(message)));
  };
  // Query parameters: only the ones a route takes, each once.
  std::map<std::string, std::string> query;
  for (const auto& [key, value] : request.query) {
    if (!query.emplace(key, value).second) {
      return fail(400, fmt::format("query parameter \"{}\" is given twice", key));
    }
  }
  auto only_query = [&](std::initializer_list<std::string_view> allowed) -> bool {
    for (const auto& [key, value] : query) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        fail(400, fmt::format("unknown query parameter \"{}\"", key));
        return false;
      }
    }
    return true;
  };
  std::vector<std::string> parts;
  for (size_t at = 1; at <= request.path.size();) {
    const size_t slash = std::min(request.path.find('/', at), request.path.size());
    parts.push_back(request.path.substr(at, slash - at));
    at = slash + 1;
  }
  if (parts.empty() || parts[0] != "v1") {
    return fail(404, fmt::format("no such resource: {}", request.path));
  }
  const std::string& method = request.method;
  if (parts.size() == 2 && parts[1] == "version") {
    if (!only_query({})) {
      return;
    }
    if (method != "GET") {
      return fail(405, fmt::format("{} is not allowed on {}", method, request.path));
    }
    return reply({200, {{"version", "hv 0.1"}, {"api", "v1"}}});
  }
  if (parts.size() < 2 || parts[1] != "guests" || parts.size() > 4) {
    return fail(404, fmt::format("no such resource: {}", request.path));
  }
  if (parts.size() == 2) {
    if (!only_query({})) {
      return;
    }
    if (method == "GET") {
      return reply(list());
    }
    if (method == "POST") {
      const std::optional<std::string> type = request.header("content-type");
      std::string media_type = type.value_or("application/json");
      std::transform(media_type.begin(), media_type.end(), media_type.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!media_type.starts_with("application/json")) {
        return fail(415, fmt::format("the body must be application/json, not {}", *type));
      }
      return reply(create(request.body));
    }
    return fail(405, fmt::format("{} is not allowed on {}", method, request.path));
  }
  const std::string& name = parts[2];
  if (!valid_guest_name(name)) {
    return fail(400, fmt::format("\"{}\" is not a valid guest name", name));
  }
  if (parts.size() == 3) {
    if (method == "GET" && only_query({})) {
      return reply(get(name));
    }
    if (method == "DELETE" && only_query({"force"})) {
      bool force = false;
      if (query.contains("force")) {
        const std::optional<bool> parsed = parse_bool(query["force"]);
        if (!parsed) {
          return fail(400, "force must be true or false");
        }
        force = *parsed;
      }
      return reply(remove(name, force));
    }
    if (method != "GET" && method != "DELETE") {
      return fail(405, fmt::format("{} is not allowed on {}", method, request.path));
    }
    return;
  }
  const std::string& action = parts[3];
  if (action == "logs") {
    if (method != "GET") {
      return fail(405, fmt::format("{} is not allowed on {}", method, request.path));
    }
    if (!only_query({"follow"})) {
      return;
    }
    bool follow = false;
    if (query.contains("follow")) {
      const std::optional<bool> parsed = parse_bool(query["follow"]);
      if (!parsed) {
        return fail(400, "follow must be true or false");
      }
      follow = *parsed;
    }
    std::shared_ptr<Guest> guest = find(name);
    if (!guest) {
      return fail(404, fmt::format("no guest named \"{}\"", name));
    }
    return stream_logs(*guest, follow, connection);
  }
  if (action != "start" && action != "stop" && action != "pause" && action != "resume" &&
      action != "console") {
    return fail(404, fmt::format("no such resource: {}", request.path));
  }
  if (method != "POST") {
    return fail(405, fmt::format("{} is not allowed on {}", method, request.path));
  }
  if (!request.body.empty() && request.body != "{}") {
    return fail(400, fmt::format("{} takes no body", action));
  }
  if (action == "console") {
    if (!only_query({})) {
      return;
    }
    if (!request.upgrade || request.header("upgrade") != kConsoleProtocol) {
      return fail(400, fmt::format("the console needs \"Connection: Upgrade\" and \"Upgrade: {}\"",
                                   kConsoleProtocol));
    }
    std::shared_ptr<Guest> guest = find(name);
    if (!guest) {
      return fail(404, fmt::format("no guest named \"{}\"", name));
    }
    return attach_console(*guest, connection);
  }
  if (action == "stop") {
    if (!only_query({"timeout"})) {
      return;
    }
    std::chrono::milliseconds timeout = options_.stop_timeout;
    if (query.contains("timeout")) {
      const std::optional<std::chrono::milliseconds> parsed = parse_seconds(query["timeout"]);
      if (!parsed) {
        return fail(400, "timeout must be a number of seconds from 0 to 3600");
      }
      timeout = *parsed;
    }
    return reply(stop_guest(name, timeout));
  }
  if (!only_query({})) {
    return;
  }
  if (action == "start") {
    return reply(start(name));
  }
  return reply(pause(name, action == "pause"));
}

}  // namespace hv
