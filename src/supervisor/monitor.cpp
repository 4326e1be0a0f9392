#include "supervisor/monitor.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "container/runtime.hpp"
#include "supervisor/console_relay.hpp"

namespace hv {

namespace {

// Where the OCI runtime keeps the container's state, and the container's ID and bundle: the
// guest's name and its bundle or root directory.
struct ContainerRun {
  container::RuntimeContext context;
  container::CreateOptions create;
};

ContainerRun container_run_options(const GuestSpec& spec, const std::string& runtime_root) {
  ContainerRun run;
  run.context.root = runtime_root;
  run.create.id = spec.name;
  run.create.bundle = spec.bundle.empty() ? spec.rootfs : spec.bundle;
  return run;
}

GuestEnd run_machine(const GuestSpec& spec, const MonitorOptions& options, ConsoleRelay& relay) {
  Result<VmConfig> config = to_vm_config(spec);
  if (!config.ok()) {
    return {"error", to_int(config.error().status), config.error().to_string()};
  }
  config->console_input_fd = relay.guest_input_fd();
  config->console_output_fd = relay.guest_output_fd();
  config->sandbox = true;
  config->sandbox_writable_dirs = {options.guest_dir};
  config->on_confined = [&relay] { return relay.start(); };
  return machine_end(run_vm(*config));
}

// Points stdin at `input` and stdout/stderr at `output` for as long as it lives; the container
// inherits them.
class StdioRedirect {
 public:
  StdioRedirect(int input, int output) {
    for (int fd = 0; fd < 3; ++fd) {
      saved_[fd] = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    }
    ::dup2(input, 0);
    ::dup2(output, 1);
    ::dup2(output, 2);
  }
  ~StdioRedirect() {
    for (int fd = 0; fd < 3; ++fd) {
      if (saved_[fd] >= 0) {
        ::dup2(saved_[fd], fd);
        ::close(saved_[fd]);
      }
    }
  }
  StdioRedirect(const StdioRedirect&) = delete;
  StdioRedirect& operator=(const StdioRedirect&) = delete;

 private:
  int saved_[3] = {-1, -1, -1};
};

GuestEnd run_container_guest(const GuestSpec& spec, const MonitorOptions& options,
                             ConsoleRelay& relay) {
  const std::string cgroup = options.cgroup.empty() ? "" : options.cgroup + "/container";
  Result<oci::Config> config = to_container_config(spec, cgroup);
  if (!config.ok()) {
    return {"error", to_int(config.error().status), config.error().to_string()};
  }
  // The limits apply twice: to the container's own cgroup, where a v1 host counts its OOM kills,
  // and to the guest's (the supervisor's, the parent), which bounds the monitor as well.
  const ContainerRun run = container_run_options(spec, options.runtime_root);
  Result<container::ContainerExit> exit = [&] {
    StdioRedirect redirect(relay.guest_input_fd(), relay.guest_output_fd());
    return container::run_container_to_end(run.context, run.create, std::move(*config));
  }();
  if (!exit.ok()) {
    return {"error", to_int(exit.error().status), exit.error().to_string()};
  }
  const int status = exit->status;
  if (exit->oom_kills > 0) {
    return {"oom", status,
            fmt::format("the OOM killer ended {} process(es) of the container (memory limit)",
                        exit->oom_kills)};
  }
  if (status > 128) {
    return {"exited", status,
            fmt::format("the container's process was killed by {}", strsignal(status - 128))};
  }
  return {"exited", status, fmt::format("the container's process exited with status {}", status)};
}

}  // namespace

GuestEnd machine_end(const Result<VmOutcome>& outcome) {
  if (!outcome.ok()) {
    return {"error", to_int(outcome.error().status), outcome.error().to_string()};
  }
  const StopReason& reason = outcome->reason;
  const char* kind = "error";
  switch (reason.kind) {
    case StopKind::PowerOff:
      kind = "poweroff";
      break;
    case StopKind::DebugExit:
      kind = "debug-exit";
      break;
    case StopKind::UserQuit:
      kind = "stopped";
      break;
    case StopKind::Reset:
      kind = "reset";
      break;
    case StopKind::GuestCrash:
      kind = "crash";
      break;
    case StopKind::Timeout:
      kind = "timeout";
      break;
    case StopKind::HostError:
      kind = "error";
      break;
  }
  std::string message = reason.message;
  if (message.empty()) {
    message = reason.kind == StopKind::PowerOff ? "the guest powered off"
                                                : fmt::format("exit status {}", reason.exit_status);
  }
  return {kind, reason.exit_status, message};
}

int run_guest_monitor(const MonitorOptions& options) {
  auto fail = [&](const Error& error) {
    fmt::print(stderr, "hv vmm: error: {}\n", error.to_string());
    const GuestEnd end{"error", to_int(error.status), error.to_string()};
    if (Status saved = save_end(options.guest_dir, end); !saved.ok()) {
      fmt::print(stderr, "hv vmm: error: {}\n", saved.error().to_string());
    }
    return 1;
  };
  Result<std::string> text = read_text_file(options.guest_dir + "/spec.json");
  if (!text.ok()) {
    return fail(text.error());
  }
  Result<GuestSpec> spec = parse_guest_spec(*text, "");
  if (!spec.ok()) {
    return fail(spec.error());
  }
  Result<std::unique_ptr<ConsoleRelay>> relay =
      ConsoleRelay::create(options.guest_dir + "/console.log", options.guest_dir + "/console.sock");
  if (!relay.ok()) {
    return fail(relay.error());
  }
  if (!spec->is_machine()) {
    if (Status started = (*relay)->start_process(); !started.ok()) {
      return fail(started.error());
    }
  }
  const GuestEnd end = spec->is_machine() ? run_machine(*spec, options, **relay)
                                          : run_container_guest(*spec, options, **relay);
  (*relay)->finish();
  if (end.kind == "error") {
    fmt::print(stderr, "hv vmm: error: {}\n", end.message);
  }
  if (Status saved = save_end(options.guest_dir, end); !saved.ok()) {
    fmt::print(stderr, "hv vmm: error: {}\n", saved.error().to_string());
    return 1;
  }
  return end_is_failure(end) ? 1 : 0;
}

int run_container_in_foreground(const GuestSpec& spec, const std::string& runtime_root) {
  Result<oci::Config> config = to_container_config(spec, "");
  if (!config.ok()) {
    fmt::print(stderr, "hv: error: {}\n", config.error().to_string());
    return to_int(config.error().status);
  }
  const ContainerRun run = container_run_options(spec, runtime_root);
  Result<int> status = container::run_container_from(run.context, run.create, std::move(*config));
  if (!status.ok()) {
    fmt::print(stderr, "hv: error: {}\n", status.error().to_string());
    return to_int(status.error().status);
  }
  return *status;
}

}  // namespace hv
