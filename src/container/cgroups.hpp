// Control groups for containers, on the three layouts Linux hosts have:
//   - pure cgroup v1: one hierarchy per controller (or per set of co-mounted controllers, e.g.
//     cpu,cpuacct), plus named ones such as name=systemd;
//   - pure cgroup v2: one unified hierarchy at /sys/fs/cgroup;
//   - hybrid: the v1 hierarchies plus a v2 mount (usually /sys/fs/cgroup/unified) that holds only
//     the controllers no v1 hierarchy binds (often none, here hugetlb).
// A controller bound to a v1 hierarchy is always used from there.
//
// A container's cgroup has one path relative to every hierarchy's root ("/hv/<id>"); the
// directory is created in every hierarchy, v1 and v2, and processes join all of them.
//
// Limitations (explicit, so that a request is never silently dropped where it matters):
//   - Device rules on cgroup v2 are an eBPF program (device_filter.hpp) attached to the
//     container's v2 directory. On a hybrid host the v1 devices controller enforces them and the
//     program is attached as well, as a second enforcement, where the kernel allows it.
//   - On cgroup v2, memory swappiness, disableOOMKiller and kernelTCP have no equivalent and are
//     ignored (as runc does); realtime CPU limits are refused (BadConfig); blkio leaf weights are
//     ignored. memory.kernel and memory.useHierarchy are ignored on every layout (deprecated).
//   - A swap limit on a v1 host without swap accounting (no memory.memsw.limit_in_bytes) is
//     refused unless it equals the memory limit or is -1.
//   - hv does not add default device rules: the caller passes the whole list (runc appends its
//     default allow-list of /dev/null, /dev/zero ... in its spec conversion).
// Zero values of numeric limits mean "unset", as in runc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "container/oci_spec.hpp"

namespace hv::container {

// One mounted cgroup v1 hierarchy.
struct CgroupHierarchy {
  std::string mount_point;               // "/sys/fs/cgroup/cpu,cpuacct"
  std::string root;                      // the hierarchy's directory mounted there (usually "/")
  std::vector<std::string> controllers;  // "cpu", "cpuacct", "name=systemd" ...
};

struct CgroupLayout {
  std::vector<CgroupHierarchy> v1;
  std::string v2_mount;                     // empty: no cgroup2 mount
  std::vector<std::string> v2_controllers;  // available in v2 and bound to no v1 hierarchy

  bool pure_v2() const { return v1.empty() && !v2_mount.empty(); }
  bool hybrid() const { return !v1.empty() && !v2_mount.empty(); }

  // The v1 hierarchy binding `controller` ("memory", "name=systemd"), or null.
  const CgroupHierarchy* v1_hierarchy(std::string_view controller) const;
  bool v2_has(std::string_view controller) const;

  // Reads /proc/self/mountinfo and <v2 mount>/cgroup.controllers.
  static Result<CgroupLayout> detect();

  // The cgroup.controllers text of the cgroup2 mount at the given mount point.
  using ControllerReader = std::function<Result<std::string>(const std::string& mount_point)>;
  // `mountinfo` is /proc/self/mountinfo's text. A hierarchy mounted twice is listed once (the
  // mount under /sys/fs/cgroup preferred, else the first). Fails when no cgroup is mounted.
  static Result<CgroupLayout> parse(std::string_view mountinfo,
                                    const ControllerReader& read_controllers);
};

// One container's cgroup. Movable; the destructor does nothing: call destroy().
class Cgroup {
 public:
  // Creates `path` (relative to every hierarchy's root; a leading '/' is ignored, ".." refused)
  // in every hierarchy, enables the needed v2 controllers from the root down, and applies
  // `resources` (may be null). On failure removes every directory it created.
  static Result<Cgroup> create(const CgroupLayout& layout, const std::string& path,
                               const oci::Resources* resources);
  // Attaches to a cgroup a previous command created. destroy() then removes only the leaf and,
  // when the path is "/hv/<name>", the "/hv" parent if it is empty.
  static Result<Cgroup> open(const CgroupLayout& layout, const std::string& path);

  Cgroup(Cgroup&&) noexcept = default;
  Cgroup& operator=(Cgroup&&) noexcept = default;
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;
  ~Cgroup() = default;

  std::string path() const { return path_; }  // normalised: "/hv/x"

  // The cgroup's directory in each hierarchy, for the container's own view of /sys/fs/cgroup.
  struct Directory {
    std::string mount_point;  // of the hierarchy on the host
    std::string path;         // the cgroup's directory below it
    bool v2 = false;
    std::vector<std::string> controllers;  // v1 only ("name=systemd" for named hierarchies)
  };
  std::vector<Directory> directories() const;
  // The cgroup's directory in a hierarchy given by its mount point.
  std::string directory(const std::string& mount_point) const { return mount_point + path_; }

  Status add_process(pid_t pid);            // joins every hierarchy
  Result<std::vector<pid_t>> pids() const;  // sorted, sub-cgroups included
  Status freeze();                          // returns once the cgroup reads frozen
  Status thaw();
  Result<bool> frozen() const;
  // Signals every process. For SIGKILL, waits (bounded) until no process is left.
  Status kill_all(int signal);
  Result<uint64_t> oom_kill_count() const;  // OOM kills inside this cgroup so far
  // kill_all(SIGKILL), then removes the cgroup (and sub-cgroups) in every hierarchy, and the
  // parent levels this object created if they are now empty.
  Status destroy();

 private:
  struct Place {
    std::string mount_point;
    bool v2 = false;
    std::vector<std::string> controllers;  // v1 only
    // Path levels at depth >= remove_from (0 = the first component) are this object's to
    // remove; the leaf is always removed by destroy().
    size_t remove_from = 0;
  };

  Cgroup() = default;
  std::string dir(const Place& place) const { return place.mount_point + path_; }
  // Where a controller's files are: its v1 hierarchy, else the v2 mount, else null.
  const Place* place_for(std::string_view v1_name, std::string_view v2_name) const;
  const Place* v2_place() const;
  const Place* process_place() const;                         // where pids() reads cgroup.procs
  std::string level(const Place& place, size_t depth) const;  // the path's first depth+1 parts
  Status make_directories(Place& place, const std::vector<std::string>& v2_enable);
  Status set_frozen(bool frozen);
  Status apply(const oci::Resources& resources);
  void remove_created();
  Result<std::vector<pid_t>> all_pids() const;  // every hierarchy, for kill_all

  std::string path_;
  std::vector<std::string> components_;
  std::vector<Place> places_;
};

// Helpers exposed for tests.
// cgroup v2 cpu.weight from v1 cpu.shares (runc's conversion).
uint64_t cgroup_cpu_shares_to_weight(uint64_t shares);
// cgroup v2 io.weight from v1 blkio.weight (runc's conversion).
uint64_t cgroup_blkio_weight_to_io_weight(uint64_t weight);
// "c 1:3 rwm", "a *:* rwm", "b 8:* r".
std::string cgroup_device_rule(const oci::DeviceRule& rule);
// memory.swap.max from the OCI memory+swap and memory limits; nullopt: leave unset.
Result<std::optional<std::string>> cgroup_v2_swap_max(std::optional<int64_t> swap,
                                                      std::optional<int64_t> limit);

}  // namespace hv::container
