// `hv oci ...` (also the binary invoked as `hv-runc`): the OCI runtime command line of runc, for
// podman, containerd and CRI-O. `hv container run`: one command from a root directory.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace hv::cli {

struct OciOptions {
  std::string root = "/run/hv";
  std::string log_path;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
  std::string bundle = ".";
  std::string pid_file;
  std::string console_socket;
  bool no_pivot = false;
  int preserve_fds = 0;
  bool detach = false;
  bool force = false;
  bool all = false;
  bool rootless = false;
  std::string format = "table";
  std::string id;
  std::string signal = "SIGTERM";
  std::string process_file;
  bool tty = false;
  bool no_new_keyring = false;
  bool quiet = false;
  std::vector<std::string> command;
};

struct ContainerRunOptions {
  std::string memory;
  int64_t pids = 0;
  double cpus = 0;
  std::string hostname = "hv";
  std::string net = "none";
  std::string rootfs;
  std::vector<std::string> command;
};

// Registers the subcommands; returns a function that runs whichever was parsed.
void add_oci_commands(CLI::App& oci, OciOptions& options);
int run_oci_command(CLI::App& oci, const OciOptions& options);

void add_container_commands(CLI::App& container, ContainerRunOptions& options);
int run_container_command(const ContainerRunOptions& options);

}  // namespace hv::cli
