#include "cli/supervisor_command.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/http.hpp"
#include "common/exit_status.hpp"
#include "supervisor/guest_record.hpp"
#include "supervisor/monitor.hpp"
#include "supervisor/supervisor.hpp"

namespace hv::cli {

namespace {

constexpr char kDetachKey = 0x1d;  // Ctrl-]

int report(const Error& error) {
  fmt::print(stderr, "hv: error: {}\n", error.to_string());
  return to_int(error.status);
}

// An API error's status for the shell: the request was wrong (2), named nothing (4), or the
// supervisor failed (16).
int exit_status_for(int http_status) {
  if (http_status == 404) {
    return to_int(ExitStatus::FileMissing);
  }
  return http_status >= 500 ? to_int(ExitStatus::HostError) : to_int(ExitStatus::Usage);
}

// One API call; prints the server's error and returns nullopt on failure.
std::optional<nlohmann::json> call(const SupervisorCommandOptions& o, std::string_view method,
                                   const std::string& target, std::string_view body, int* failure) {
  Result<api::HttpResponse> response = api::http_request(o.socket, method, target, body);
  if (!response.ok()) {
    *failure = report(response.error());
    return std::nullopt;
  }
  nlohmann::json json = response->body.empty()
                            ? nlohmann::json(nullptr)
                            : nlohmann::json::parse(response->body, nullptr, false);
  if (response->status >= 300) {
    const std::string message =
        json.is_object() && json.contains("error") && json["error"].is_string()
            ? json["error"].get<std::string>()
            : response->body;
    fmt::print(stderr, "hv: error: {}\n", message);
    *failure = exit_status_for(response->status);
    return std::nullopt;
  }
  return json;
}

std::string human_duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  if (s < 60) {
    return fmt::format("{:.1f}s", seconds);
  }
  if (s < 3600) {
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  }
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

std::string human_bytes(const nlohmann::json& value) {
  if (!value.is_number()) {
    return "-";
  }
  const double bytes = value.get<double>();
  if (bytes >= 1024.0 * 1024 * 1024) {
    return fmt::format("{:.1f}G", bytes / (1024.0 * 1024 * 1024));
  }
  return fmt::format("{:.1f}M", bytes / (1024.0 * 1024));
}

int print_table(const nlohmann::json& guests) {
  fmt::print("{:<20} {:<9} {:<8} {:>8} {:>8} {:>8} {:>7}  {}\n", "NAME", "ENGINE", "STATE",
             "UPTIME", "MEMORY", "CPU", "PID", "REASON");
  for (const nlohmann::json& g : guests) {
    std::string reason;
    if (g.contains("end") && g["end"].is_object()) {
      reason = fmt::format("{}: {}", g["end"].value("kind", ""), g["end"].value("message", ""));
    }
    const std::string cpu =
        g["cpu_seconds"].is_number() ? fmt::format("{:.2f}s", g["cpu_seconds"].get<double>()) : "-";
    const int pid = g.value("pid", 0);
    fmt::print("{:<20} {:<9} {:<8} {:>8} {:>8} {:>8} {:>7}  {}\n", g.value("name", ""),
               g.value("engine", ""), g.value("state", ""),
               human_duration(g.value("uptime_s", 0.0)), human_bytes(g["memory_bytes"]), cpu,
               pid > 0 ? std::to_string(pid) : "-", reason);
  }
  return 0;
}

int serve(const SupervisorCommandOptions& o) {
  SupervisorOptions options;
  options.state_dir = o.state_dir;
  options.socket_path = o.socket;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(o.socket).parent_path(), ec);
  // SIGTERM and SIGINT end the API, not the guests: a dedicated thread turns them into stop().
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  Result<std::unique_ptr<Supervisor>> supervisor = Supervisor::open(options);
  if (!supervisor.ok()) {
    return report(supervisor.error());
  }
  std::thread signal_thread([&signals, s = supervisor->get()] {
    int received = 0;
    ::sigwait(&signals, &received);
    s->stop();
  });
  fmt::print(stderr, "hv serve: listening on {} (state in {})\n", o.socket, o.state_dir);
  Status served = (*supervisor)->serve();
  // Wake the signal thread if serve() ended for another reason.
  ::kill(::getpid(), SIGTERM);
  signal_thread.join();
  if (!served.ok()) {
    return report(served.error());
  }
  return 0;
}

int create(const SupervisorCommandOptions& o, bool start_too) {
  // Relative paths in the file are the file's; the supervisor only takes absolute ones.
  Result<GuestSpec> spec = load_guest_spec_file(o.spec_file);
  if (!spec.ok()) {
    return report(spec.error());
  }
  int failure = 0;
  if (!call(o, "POST", "/v1/guests", guest_spec_to_json(*spec).dump(), &failure)) {
    return failure;
  }
  if (start_too && !call(o, "POST", fmt::format("/v1/guests/{}/start", spec->name), "", &failure)) {
    return failure;
  }
  fmt::print("{}\n", spec->name);
  return 0;
}

int simple_action(const SupervisorCommandOptions& o, std::string_view method,
                  const std::string& target) {
  int failure = 0;
  if (!call(o, method, target, "", &failure)) {
    return failure;
  }
  return 0;
}

int logs(const SupervisorCommandOptions& o) {
  Result<int> status = api::http_stream(
      o.socket, "GET", fmt::format("/v1/guests/{}/logs{}", o.name, o.follow ? "?follow=true" : ""),
      [](std::string_view data) {
        return ::write(STDOUT_FILENO, data.data(), data.size()) ==
               static_cast<ssize_t>(data.size());
      });
  if (!status.ok()) {
    return report(status.error());
  }
  if (*status != 200) {
    fmt::print(stderr, "hv: error: no logs for guest \"{}\" (HTTP {})\n", o.name, *status);
    return exit_status_for(*status);
  }
  return 0;
}

int console(const SupervisorCommandOptions& o) {
  Result<api::Upgraded> upgraded =
      api::http_upgrade(o.socket, fmt::format("/v1/guests/{}/console", o.name), "hv-console");
  if (!upgraded.ok()) {
    return report(upgraded.error());
  }
  const int socket = upgraded->socket.get();
  if (!upgraded->early_bytes.empty()) {
    [[maybe_unused]] ssize_t n =
        ::write(STDOUT_FILENO, upgraded->early_bytes.data(), upgraded->early_bytes.size());
  }
  const bool terminal = ::isatty(STDIN_FILENO) == 1;
  termios saved{};
  if (terminal && ::tcgetattr(STDIN_FILENO, &saved) == 0) {
    termios raw = saved;
    ::cfmakeraw(&raw);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    fmt::print(stderr, "hv: attached to {} (Ctrl-] detaches)\r\n", o.name);
  }
  std::array<char, 16384> buffer;
  std::array<pollfd, 2> fds{};
  fds[0] = {STDIN_FILENO, POLLIN, 0};
  fds[1] = {socket, POLLIN, 0};
  bool input_open = true;
  for (;;) {
    fds[0].fd = input_open ? STDIN_FILENO : -1;
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
      break;
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::recv(socket, buffer.data(), buffer.size(), 0);
      if (n <= 0) {
        break;
      }
      [[maybe_unused]] ssize_t w = ::write(STDOUT_FILENO, buffer.data(), static_cast<size_t>(n));
    }
    if ((fds[0].revents & (POLLIN | POLLHUP)) != 0) {
      const ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
      if (n <= 0) {
        input_open = false;  // keep showing output until the guest or supervisor closes
        ::shutdown(socket, SHUT_WR);
        continue;
      }
      const std::string_view typed(buffer.data(), static_cast<size_t>(n));
      const size_t detach = terminal ? typed.find(kDetachKey) : std::string_view::npos;
      const std::string_view sent = typed.substr(0, detach);
      if (!sent.empty() && ::send(socket, sent.data(), sent.size(), MSG_NOSIGNAL) < 0) {
        break;
      }
      if (detach != std::string_view::npos) {
        break;
      }
    }
  }
  if (terminal) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    fmt::print(stderr, "\nhv: detached from {}\n", o.name);
  }
  return 0;
}

}  // namespace

void add_supervisor_commands(CLI::App& app, SupervisorCommandOptions& o) {
  auto socket_option = [&o](CLI::App* command) {
    command->add_option("--socket", o.socket, "the supervisor's API socket")
        ->envname("HV_SOCKET")
        ->capture_default_str();
  };
  CLI::App* serve = app.add_subcommand("serve", "run the supervisor and its API");
  socket_option(serve);
  serve->add_option("--state-dir", o.state_dir, "where the guests' records live")
      ->capture_default_str();

  CLI::App* create = app.add_subcommand("create", "create a guest from a spec (not started)");
  CLI::App* up = app.add_subcommand("up", "create a guest from a spec and start it");
  for (CLI::App* command : {create, up}) {
    socket_option(command);
    command->add_option("-f,--file", o.spec_file, "the guest spec (JSON)")->required();
  }
  CLI::App* ps = app.add_subcommand("ps", "list the supervisor's guests");
  socket_option(ps);
  ps->add_flag("--json", o.json, "the API's JSON");
  for (const char* name : {"start", "pause", "resume", "inspect"}) {
    CLI::App* command = app.add_subcommand(name, fmt::format("{} a guest", name));
    socket_option(command);
    command->add_option("name", o.name, "the guest")->required();
  }
  CLI::App* stop =
      app.add_subcommand("stop", "stop a guest: SIGTERM, then SIGKILL after --timeout");
  socket_option(stop);
  stop->add_option("--timeout,-t", o.timeout_seconds, "seconds before it is killed")
      ->capture_default_str();
  stop->add_option("name", o.name, "the guest")->required();
  CLI::App* rm = app.add_subcommand("rm", "remove a guest and everything it left");
  socket_option(rm);
  rm->add_flag("--force,-f", o.force, "stop it first if it runs");
  rm->add_option("name", o.name, "the guest")->required();
  CLI::App* logs_command = app.add_subcommand("logs", "print a guest's console output");
  socket_option(logs_command);
  logs_command->add_flag("--follow,-f", o.follow, "keep printing while the guest runs");
  logs_command->add_option("name", o.name, "the guest")->required();
  CLI::App* console_command =
      app.add_subcommand("console", "attach this terminal to a guest's console (Ctrl-] detaches)");
  socket_option(console_command);
  console_command->add_option("name", o.name, "the guest")->required();

  CLI::App* vmm = app.add_subcommand("vmm", "(internal) the VMM process of one managed guest");
  vmm->group("");  // not listed in --help
  vmm->add_option("--guest-dir", o.guest_dir)->required();
  vmm->add_option("--cgroup", o.cgroup);
  vmm->add_option("--runtime-root", o.runtime_root)->required();
}

std::optional<int> run_supervisor_command(CLI::App& app, const SupervisorCommandOptions& o) {
  auto parsed = [&app](const char* name) { return app.get_subcommand(name)->parsed(); };
  const std::string guest = fmt::format("/v1/guests/{}", o.name);
  if (parsed("serve")) {
    return serve(o);
  }
  if (parsed("vmm")) {
    return run_guest_monitor({o.guest_dir, o.cgroup, o.runtime_root});
  }
  if (parsed("create") || parsed("up")) {
    return create(o, parsed("up"));
  }
  if (parsed("ps")) {
    int failure = 0;
    std::optional<nlohmann::json> guests = call(o, "GET", "/v1/guests", "", &failure);
    if (!guests) {
      return failure;
    }
    if (o.json) {
      fmt::print("{}\n", guests->dump(2));
      return 0;
    }
    return print_table(*guests);
  }
  if (parsed("inspect")) {
    int failure = 0;
    std::optional<nlohmann::json> state = call(o, "GET", guest, "", &failure);
    if (!state) {
      return failure;
    }
    fmt::print("{}\n", state->dump(2));
    return 0;
  }
  for (const char* action : {"start", "pause", "resume"}) {
    if (parsed(action)) {
      return simple_action(o, "POST", fmt::format("{}/{}", guest, action));
    }
  }
  if (parsed("stop")) {
    return simple_action(o, "POST", fmt::format("{}/stop?timeout={}", guest, o.timeout_seconds));
  }
  if (parsed("rm")) {
    return simple_action(o, "DELETE", o.force ? guest + "?force=true" : guest);
  }
  if (parsed("logs")) {
    return logs(o);
  }
  if (parsed("console")) {
    return console(o);
  }
  return std::nullopt;
}

}  // namespace hv::cli
