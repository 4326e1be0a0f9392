// The container's file system view, built inside its new mount namespace by its init process:
// mount propagation, the root bind mount, config mounts (resolved inside the root so a symlink in
// the container's image cannot point a mount outside it), /dev, pivot_root (or chroot), masked
// and read-only paths, the read-only root. Runs in the child only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "container/oci_spec.hpp"

namespace hv::container {

// mount(2) flags and the data string from OCI mount options ("ro", "nosuid", "mode=755" ...).
struct MountOptions {
  unsigned long flags = 0;        // MS_* applied by mount()
  unsigned long propagation = 0;  // MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE (| MS_REC)
  bool bind = false;
  bool recursive_bind = false;
  std::string data;  // options mount() passes to the file system
};
MountOptions parse_mount_options(const std::vector<std::string>& options);

// Resolves `path` (absolute, inside the container) below `root_fd` with openat2's
// RESOLVE_IN_ROOT, creating missing directories (and, when `leaf_is_file`, an empty file as the
// last component). Returns an O_PATH descriptor of the result.
Result<int> open_in_root(int root_fd, const std::string& path, bool create, bool leaf_is_file);

// What a mount of type "cgroup" shows the container: its own cgroup, bound from the host, as
// the root of each hierarchy (runc's layout). With only a v2 hierarchy that directory is the
// mount itself; otherwise a tmpfs holds one directory per hierarchy ("memory", "cpu,cpuacct",
// "systemd", "unified") plus a symlink per controller of a co-mounted one ("cpu" ->
// "cpu,cpuacct").
//
// In a cgroup namespace of its own the container's cgroups are the namespace's roots, so each
// hierarchy is mounted afresh (one mount call with its flags, where binding takes two).
struct CgroupView {
  struct Hierarchy {
    std::string name;        // empty: the whole mount (v2 only)
    std::string host_dir;    // the container's cgroup directory on the host
    std::string mount_data;  // v1: the hierarchy's controllers ("cpu", "none,name=systemd")
    bool v2 = false;
    std::vector<std::string> aliases;
  };
  std::vector<Hierarchy> hierarchies;
  bool own_namespace = false;
};

// Everything above, in order; `rootfs` is the absolute host path of root.path.
Status prepare_rootfs(const oci::Config& config, const std::string& rootfs, bool no_pivot,
                      const CgroupView& cgroups);

// After the root is in place: masked and read-only paths, then the root itself read-only.
Status finish_rootfs(const oci::Config& config);

}  // namespace hv::container
