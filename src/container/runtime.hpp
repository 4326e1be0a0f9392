// The OCI runtime operations, one function per runc command. Each is called by a separate
// runtime process; state lives in the StateStore between them.
#pragma once

#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "container/oci_spec.hpp"
#include "container/state.hpp"

namespace hv::container {

struct RuntimeContext {
  std::string root = "/run/hv";  // --root
};

struct CreateOptions {
  std::string id;
  std::string bundle = ".";
  std::string pid_file;
  std::string console_socket;
  bool no_pivot = false;
  int preserve_fds = 0;  // descriptors 3 .. 3+N-1 pass into the container's process
};

// `create`: a container whose init has set everything up and waits on the exec FIFO. A failure
// part-way undoes everything (process, cgroup, state directory).
Status create_container(const RuntimeContext& context, const CreateOptions& options);
// The same from a config already in memory (`hv container run`).
Status create_container_from(const RuntimeContext& context, const CreateOptions& options,
                             oci::Config config);

// `start`: lets the created init exec the user's process.
Status start_container(const RuntimeContext& context, const std::string& id);

// `run`: create + start. In the foreground (detach false) waits for the container's process,
// removes the container and returns the process's exit status (128 + signal if killed).
Result<int> run_container(const RuntimeContext& context, const CreateOptions& options, bool detach);
Result<int> run_container_from(const RuntimeContext& context, const CreateOptions& options,
                               oci::Config config);
// The same in the foreground, with what ended the process: its status and the OOM kills counted
// in the container's cgroup (read before the cgroup goes).
struct ContainerExit {
  int status = 0;
  uint64_t oom_kills = 0;
};
Result<ContainerExit> run_container_to_end(const RuntimeContext& context,
                                           const CreateOptions& options, oci::Config config);

struct ExecOptions {
  std::string id;
  std::string process_file;       // --process: a process JSON; else args below
  std::vector<std::string> args;  // the command, replacing the container's process.args
  bool tty = false;
  bool detach = false;
  std::string pid_file;
  std::string console_socket;
  int preserve_fds = 0;
};

// `exec`: another process in a running container's namespaces and cgroup, with the container's
// process settings (user, capabilities, seccomp ...) unless --process gives its own. In the
// foreground returns its exit status.
Result<int> exec_in_container(const RuntimeContext& context, const ExecOptions& options);

Result<std::string> container_state_json(const RuntimeContext& context, const std::string& id);
Status kill_container(const RuntimeContext& context, const std::string& id, int signal, bool all);
Status delete_container(const RuntimeContext& context, const std::string& id, bool force);
Status pause_container(const RuntimeContext& context, const std::string& id);
Status resume_container(const RuntimeContext& context, const std::string& id);
Result<std::vector<pid_t>> container_pids(const RuntimeContext& context, const std::string& id);
// `list`: one line per container, as runc prints it ("ID PID STATUS BUNDLE CREATED OWNER").
Result<std::string> list_containers(const RuntimeContext& context, bool json, bool quiet);

// "KILL", "SIGKILL" or "9".
Result<int> parse_signal(const std::string& text);

// `features`: what this runtime supports, as the OCI features document.
std::string features_json();

}  // namespace hv::container
