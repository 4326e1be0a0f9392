#include "cli/container_command.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/size.hpp"
#include "container/container_config.hpp"
#include "container/oci_config.hpp"
#include "container/runtime.hpp"
#include "container/runtime_log.hpp"

namespace hv::cli {

namespace {

int finish(const Status& status) {
  if (!status.ok()) {
    container::log_error(status.error().to_string());
    return to_int(status.error().status);
  }
  return 0;
}

}  // namespace

void add_oci_commands(CLI::App& oci, OciOptions& o) {
  oci.require_subcommand(1);
  oci.add_option("--root", o.root, "directory for the containers' state")->capture_default_str();
  oci.add_option("--log", o.log_path, "also write errors to this file");
  oci.add_option("--log-format", o.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  oci.add_flag("--debug", o.debug, "more output");
  oci.add_flag("--systemd-cgroup", o.systemd_cgroup, "manage cgroups through systemd");
  oci.add_option("--criu", "(accepted for compatibility, unused)");
  oci.add_option("--rootless", "(accepted for compatibility: hv decides from its user)");

  auto* create = oci.add_subcommand("create", "create a container from a bundle");
  auto* run = oci.add_subcommand("run", "create and start a container");
  for (CLI::App* command : {create, run}) {
    command->add_option("--bundle,-b", o.bundle, "the bundle directory")->capture_default_str();
    command->add_option("--pid-file", o.pid_file, "write the init's PID here");
    command->add_option("--console-socket", o.console_socket,
                        "AF_UNIX socket that receives the terminal's master end");
    command->add_flag("--no-pivot", o.no_pivot, "chroot instead of pivot_root");
    command
        ->add_option("--preserve-fds", o.preserve_fds,
                     "pass this many descriptors after stderr (3, 4 ...) to the process")
        ->check(CLI::Range(0, 65536));
    command->add_flag("--no-new-keyring", o.no_new_keyring, "(accepted for compatibility)");
    command->add_option("id", o.id, "container ID")->required();
  }
  run->add_flag("--detach,-d", o.detach, "do not wait for the container");
  auto* exec = oci.add_subcommand("exec", "run another process in a running container");
  exec->add_option("--process,-p", o.process_file, "the process as OCI JSON");
  exec->add_flag("--tty,-t", o.tty, "give the process a terminal");
  exec->add_flag("--detach,-d", o.detach, "do not wait for the process");
  exec->add_option("--pid-file", o.pid_file, "write the process's PID here");
  exec->add_option("--console-socket", o.console_socket,
                   "AF_UNIX socket that receives the terminal's master end");
  exec->add_option("--preserve-fds", o.preserve_fds,
                   "pass this many descriptors after stderr (3, 4 ...) to the process")
      ->check(CLI::Range(0, 65536));
  exec->add_option("id", o.id)->required();
  exec->add_option("command", o.command, "the program and its arguments");
  auto* start = oci.add_subcommand("start", "run the user's process of a created container");
  start->add_option("id", o.id)->required();
  auto* state = oci.add_subcommand("state", "print the container's state (JSON)");
  state->add_option("id", o.id)->required();
  auto* kill = oci.add_subcommand("kill", "send a signal to the container's init");
  kill->add_flag("--all,-a", o.all, "signal every process of the container");
  kill->add_option("id", o.id)->required();
  kill->add_option("signal", o.signal, "name or number")->capture_default_str();
  auto* remove = oci.add_subcommand("delete", "remove a stopped container");
  remove->add_flag("--force,-f", o.force, "kill it first if it runs");
  remove->add_option("id", o.id)->required();
  auto* list = oci.add_subcommand("list", "list containers");
  list->add_option("--format,-f", o.format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  list->add_flag("--quiet,-q", o.quiet, "print the IDs only");
  auto* ps = oci.add_subcommand("ps", "list the container's processes");
  ps->add_option("--format,-f", o.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  ps->add_option("id", o.id)->required();
  auto* pause = oci.add_subcommand("pause", "freeze every process of the container");
  pause->add_option("id", o.id)->required();
  auto* resume = oci.add_subcommand("resume", "thaw a paused container");
  resume->add_option("id", o.id)->required();
  auto* spec = oci.add_subcommand("spec", "write a default config.json");
  spec->add_option("--bundle,-b", o.bundle, "where to write it")->capture_default_str();
  spec->add_flag("--rootless", o.rootless, "for a container run without root");
  oci.add_subcommand("features", "print what this runtime supports (JSON)");
}

int run_oci_command(CLI::App& oci, const OciOptions& o) {
  container::configure_runtime_log({o.log_path, o.log_format == "json", o.debug});
  if (o.systemd_cgroup) {
    return finish(make_error(ExitStatus::Usage,
                             "--systemd-cgroup is not supported: hv manages cgroups through "
                             "the cgroup file system (use the cgroupfs manager)"));
  }
  const container::RuntimeContext context{o.root};
  const container::CreateOptions create{o.id,       o.bundle,      o.pid_file, o.console_socket,
                                        o.no_pivot, o.preserve_fds};
  CLI::App* command = oci.get_subcommands().front();
  const std::string name = command->get_name();
  if (name == "create") {
    return finish(container::create_container(context, create));
  }
  if (name == "run") {
    Result<int> status = container::run_container(context, create, o.detach);
    if (!status.ok()) {
      return finish(std::move(status).error());
    }
    return *status;
  }
  if (name == "exec") {
    container::ExecOptions exec{o.id,     o.process_file, o.command,        o.tty,
                                o.detach, o.pid_file,     o.console_socket, o.preserve_fds};
    Result<int> status = container::exec_in_container(context, exec);
    if (!status.ok()) {
      return finish(std::move(status).error());
    }
    return *status;
  }
  if (name == "start") {
    return finish(container::start_container(context, o.id));
  }
  if (name == "state") {
    Result<std::string> json = container::container_state_json(context, o.id);
    if (!json.ok()) {
      return finish(std::move(json).error());
    }
    fmt::print("{}\n", *json);
    return 0;
  }
  if (name == "kill") {
    Result<int> signal = container::parse_signal(o.signal);
    if (!signal.ok()) {
      return finish(std::move(signal).error());
    }
    return finish(container::kill_container(context, o.id, *signal, o.all));
  }
  if (name == "delete") {
    return finish(container::delete_container(context, o.id, o.force));
  }
  if (name == "pause") {
    return finish(container::pause_container(context, o.id));
  }
  if (name == "resume") {
    return finish(container::resume_container(context, o.id));
  }
  if (name == "list") {
    Result<std::string> text = container::list_containers(context, o.format == "json", o.quiet);
    if (!text.ok()) {
      return finish(std::move(text).error());
    }
    fmt::print("{}", *text);
    return 0;
  }
  if (name == "ps") {
    Result<std::vector<pid_t>> pids = container::container_pids(context, o.id);
    if (!pids.ok()) {
      return finish(std::move(pids).error());
    }
    if (o.format == "json") {
      fmt::print("{}\n", nlohmann::json(*pids).dump());
    } else {
      fmt::print("PID\n");
      for (pid_t pid : *pids) {
        fmt::print("{}\n", pid);
      }
    }
    return 0;
  }
  if (name == "spec") {
    const std::string path = o.bundle + "/config.json";
    if (::access(path.c_str(), F_OK) == 0) {
      return finish(make_error(ExitStatus::Usage, "{} already exists", path));
    }
    std::ofstream out(path);
    if (!(out << container::default_oci_config_json(o.rootless))) {
      return finish(Error::from_errno(fmt::format("cannot write {}", path)));
    }
    return 0;
  }
  if (name == "features") {
    fmt::print("{}", container::features_json());
    return 0;
  }
  return to_int(ExitStatus::Usage);
}

void add_container_commands(CLI::App& container, ContainerRunOptions& o) {
  container.require_subcommand(1);
  auto* run = container.add_subcommand("run", "run a command in a new container");
  run->add_option("--memory", o.memory, "memory limit, e.g. 64M");
  run->add_option("--pids", o.pids, "most processes at once");
  run->add_option("--cpus", o.cpus, "CPU time, in CPUs (0.5 = half of one)");
  run->add_option("--hostname", o.hostname, "the container's host name")->capture_default_str();
  run->add_option("--net", o.net, "none (own, empty network namespace) or host")
      ->check(CLI::IsMember({"none", "host"}))
      ->capture_default_str();
  run->add_option("rootfs", o.rootfs, "the container's root directory")->required();
  run->add_option("command", o.command, "the program and its arguments (after --)")->required();
}

int run_container_command(const ContainerRunOptions& o) {
  container::SimpleContainer simple;
  std::error_code ec;
  simple.rootfs = std::filesystem::absolute(o.rootfs, ec).lexically_normal().string();
  if (::access(simple.rootfs.c_str(), X_OK) != 0) {
    return finish(make_error(ExitStatus::FileMissing,
                             "the container's root {} is not an accessible directory",
                             simple.rootfs));
  }
  simple.args = o.command;
  simple.hostname = o.hostname;
  simple.host_network = o.net == "host";
  simple.terminal = ::isatty(STDIN_FILENO) != 0;
  if (!o.memory.empty()) {
    Result<uint64_t> bytes = parse_size(o.memory);
    if (!bytes.ok()) {
      return finish(std::move(bytes).error());
    }
    simple.memory_bytes = *bytes;
  }
  if (o.pids > 0) {
    simple.pids = o.pids;
  }
  if (o.cpus > 0) {
    simple.cpus = o.cpus;
  }
  Result<oci::Config> built = container::simple_container_config(simple);
  if (!built.ok()) {
    return finish(std::move(built).error());
  }
  oci::Config config = std::move(*built);
  const container::RuntimeContext context;
  container::CreateOptions create;
  create.id = fmt::format("hv-run-{}", ::getpid());
  create.bundle = config.root.path;
  Result<int> status = container::run_container_from(context, create, std::move(config));
  if (!status.ok()) {
    return finish(std::move(status).error());
  }
  return *status;
}

}  // namespace hv::cli
