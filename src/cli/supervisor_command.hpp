// The supervisor's command line: `hv serve` runs it; `hv create/start/ps/stop/pause/resume/rm/
// logs/console` are its clients over the API socket; `hv vmm` is the per-guest VMM process the
// supervisor starts (not for people).
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace hv::cli {

struct SupervisorCommandOptions {
  std::string socket = "/run/hv/hv.sock";
  std::string state_dir = "/run/hv/supervisor";
  std::string spec_file;
  std::string name;
  double timeout_seconds = 10;
  bool force = false;
  bool follow = false;
  bool json = false;
  // hv vmm
  std::string guest_dir;
  std::string cgroup;
  std::string runtime_root;
};

// Registers the subcommands on the top-level app.
void add_supervisor_commands(CLI::App& app, SupervisorCommandOptions& options);
// Runs whichever of them was parsed; nullopt when none was.
std::optional<int> run_supervisor_command(CLI::App& app, const SupervisorCommandOptions& options);

}  // namespace hv::cli
