// Container state kept under the runtime's root directory (default /run/hv), one directory per
// container: state.json, the exec FIFO the created init waits on, and a lock file. Runtime
// commands are separate processes: each takes the container's lock (flock) for as long as it
// reads and changes the state, so two commands racing on one container see a consistent view.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace hv::container {

enum class ContainerStatus { Creating, Created, Running, Paused, Stopped };
std::string_view status_name(ContainerStatus status);

struct ContainerState {
  std::string id;
  pid_t pid = 0;
  uint64_t pid_start_time = 0;  // /proc/PID/stat field 22: tells a reused PID from ours
  std::string bundle;
  std::string rootfs;
  std::string cgroup_path;  // relative to each cgroup hierarchy's root
  std::string created;      // RFC 3339, UTC
  std::string owner;        // the user that created it
  std::map<std::string, std::string> annotations;
};

// The OCI `state` document: ociVersion, id, status, pid (while it runs), bundle, annotations.
// `oom_kills`: how many of the container's processes the kernel's out-of-memory killer ended in
// its cgroup; when nonzero the state carries "oomKilled": true (an extension: OCI readers ignore
// properties they do not know).
std::string state_json(const ContainerState& state, ContainerStatus status, uint64_t oom_kills = 0);

// Container IDs name directories: letters, digits and "_+-.", not starting with '.'.
Status validate_container_id(const std::string& id);

uint64_t process_start_time(pid_t pid);  // 0 when the process does not exist

class StateStore {
 public:
  explicit StateStore(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  std::string directory(const std::string& id) const { return root_ + "/" + id; }
  std::string exec_fifo(const std::string& id) const { return directory(id) + "/exec.fifo"; }

  // Creates the container's directory (failing if the ID is taken) and returns its lock, held.
  Result<Fd> create(const std::string& id);
  // Locks an existing container; "container X does not exist" otherwise.
  Result<Fd> lock(const std::string& id) const;
  Status save(const ContainerState& state) const;
  Result<ContainerState> load(const std::string& id) const;
  Status remove(const std::string& id) const;
  Result<std::vector<std::string>> list() const;

  // Derived from the process and the FIFO: stopped once the init is gone, created while it
  // waits on the exec FIFO, paused while its cgroup is frozen (`frozen` says).
  ContainerStatus status(const ContainerState& state, bool frozen) const;

 private:
  std::string root_;
};

}  // namespace hv::container
