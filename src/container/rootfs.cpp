#include "container/rootfs.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "common/fd.hpp"

namespace hv::container {

namespace {

struct FlagOption {
  std::string_view name;
  bool clear;  // the option removes the flag ("rw", "suid" ...)
  unsigned long flag;
};

constexpr std::array kFlagOptions = {
    FlagOption{"ro", false, MS_RDONLY},
    FlagOption{"rw", true, MS_RDONLY},
    FlagOption{"nosuid", false, MS_NOSUID},
    FlagOption{"suid", true, MS_NOSUID},
    FlagOption{"nodev", false, MS_NODEV},
    FlagOption{"dev", true, MS_NODEV},
    FlagOption{"noexec", false, MS_NOEXEC},
    FlagOption{"exec", true, MS_NOEXEC},
    FlagOption{"sync", false, MS_SYNCHRONOUS},
    FlagOption{"async", true, MS_SYNCHRONOUS},
    FlagOption{"dirsync", false, MS_DIRSYNC},
    FlagOption{"remount", false, MS_REMOUNT},
    FlagOption{"mand", false, MS_MANDLOCK},
    FlagOption{"nomand", true, MS_MANDLOCK},
    FlagOption{"noatime", false, MS_NOATIME},
    FlagOption{"atime", true, MS_NOATIME},
    FlagOption{"nodiratime", false, MS_NODIRATIME},
    FlagOption{"diratime", true, MS_NODIRATIME},
    FlagOption{"relatime", false, MS_RELATIME},
    FlagOption{"norelatime", true, MS_RELATIME},
    FlagOption{"strictatime", false, MS_STRICTATIME},
    FlagOption{"nostrictatime", true, MS_STRICTATIME},
};

struct PropagationOption {
  std::string_view name;
  unsigned long flags;
};

constexpr std::array kPropagationOptions = {
    PropagationOption{"private", MS_PRIVATE},
    PropagationOption{"rprivate", MS_PRIVATE | MS_REC},
    PropagationOption{"shared", MS_SHARED},
    PropagationOption{"rshared", MS_SHARED | MS_REC},
    PropagationOption{"slave", MS_SLAVE},
    PropagationOption{"rslave", MS_SLAVE | MS_REC},
    PropagationOption{"unbindable", MS_UNBINDABLE},
    PropagationOption{"runbindable", MS_UNBINDABLE | MS_REC},
};

std::string fd_path(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

Error mount_error(std::string_view what, const std::string& destination) {
  return Error::from_errno(fmt::format("cannot {} {}", what, destination));
}

Result<Fd> resolve(int root_fd, const std::string& path) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof(how));
  if (fd < 0) {
    return Error::from_errno(fmt::format("cannot resolve {} inside the container's root", path));
  }
  return Fd(static_cast<int>(fd));
}

struct DefaultDevice {
  const char* name;
  unsigned major, minor;
};
constexpr std::array kDefaultDevices = {
    DefaultDevice{"null", 1, 3},   DefaultDevice{"zero", 1, 5},    DefaultDevice{"full", 1, 7},
    DefaultDevice{"random", 1, 8}, DefaultDevice{"urandom", 1, 9}, DefaultDevice{"tty", 5, 0},
};

// A device node inside the container: mknod, or where that is not allowed (a user namespace) a
// bind mount of the host's node, as runc does.
Status create_device(int root_fd, const std::string& path, char type, unsigned major,
                     unsigned minor, uint32_t mode, uint32_t uid, uint32_t gid) {
  const size_t slash = path.rfind('/');
  const std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  const std::string name = path.substr(slash + 1);
  int parent_fd = HV_TRY(open_in_root(root_fd, parent, true, false));
  Fd parent_owner(parent_fd);
  const mode_t kind = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
  ::unlinkat(parent_fd, name.c_str(), 0);
  if (::mknodat(parent_fd, name.c_str(), kind | (mode & 07777), makedev(major, minor)) == 0) {
    if (::fchownat(parent_fd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return Error::from_errno(fmt::format("cannot chown device {}", path));
    }
    return {};
  }
  if (errno != EPERM || type == 'p') {
    return Error::from_errno(fmt::format("cannot create device {}", path));
  }
  const int file_fd = HV_TRY(open_in_root(root_fd, path, true, true));
  Fd file_owner(file_fd);
  // The host's own node for the same device: /dev/char/M:m where udev made it, else the name.
  std::string host_node = fmt::format("/dev/char/{}:{}", major, minor);
  if (::access(host_node.c_str(), F_OK) != 0) {
    host_node = "/dev/" + name;
  }
  if (::mount(host_node.c_str(), fd_path(file_fd).c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return mount_error("bind the host's device node onto", path);
  }
  return {};
}

Status populate_dev(int root_fd, const oci::Config& config) {
  for (const DefaultDevice& device : kDefaultDevices) {
    HV_TRY(create_device(root_fd, std::string("/dev/") + device.name, 'c', device.major,
                         device.minor, 0666, 0, 0));
  }
  int dev_fd = HV_TRY(open_in_root(root_fd, "/dev", true, false));
  Fd dev_owner(dev_fd);
  const std::array<std::pair<const char*, const char*>, 5> links = {{
      {"/proc/self/fd", "fd"},
      {"/proc/self/fd/0", "stdin"},
      {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"},
      {"pts/ptmx", "ptmx"},
  }};
  for (auto [target, name] : links) {
    ::unlinkat(dev_fd, name, 0);
    if (::symlinkat(target, dev_fd, name) != 0) {
      return Error::from_errno(fmt::format("cannot create /dev/{}", name));
    }
  }
  for (const oci::Device& device : config.linux.devices) {
    HV_TRY(create_device(root_fd, device.path, device.type == 'u' ? 'c' : device.type,
                         static_cast<unsigned>(device.major), static_cast<unsigned>(device.minor),
                         device.file_mode.value_or(0666), device.uid.value_or(0),
                         device.gid.value_or(0)));
  }
  return {};
}

bool is_directory_source(const oci::Mount& mount) {
  struct stat st {};
  return ::stat(mount.source.c_str(), &st) != 0 || S_ISDIR(st.st_mode);
}

Status mount_cgroup_hierarchy(int root_fd, const CgroupView& view,
                              const CgroupView::Hierarchy& hierarchy,
                              const std::string& destination, unsigned long flags) {
  const int target_fd = HV_TRY(open_in_root(root_fd, destination, true, false));
  Fd target_owner(target_fd);
  if (view.own_namespace) {
    const char* type = hierarchy.v2 ? "cgroup2" : "cgroup";
    if (::mount(type, fd_path(target_fd).c_str(), type, flags,
                hierarchy.v2 ? nullptr : hierarchy.mount_data.c_str()) != 0) {
      return mount_error(fmt::format("mount the {} hierarchy on", hierarchy.name), destination);
    }
    return {};
  }
  if (::mount(hierarchy.host_dir.c_str(), fd_path(target_fd).c_str(), nullptr, MS_BIND, nullptr) !=
      0) {
    return mount_error("bind the container's cgroup " + hierarchy.host_dir + " onto", destination);
  }
  target_owner.reset();
  const int mounted_fd = HV_TRY(open_in_root(root_fd, destination, false, false));
  Fd mounted_owner(mounted_fd);
  if (::mount(nullptr, fd_path(mounted_fd).c_str(), nullptr, MS_REMOUNT | MS_BIND | flags,
              nullptr) != 0) {
    return mount_error("apply the options of", destination);
  }
  return {};
}

// A mount of type "cgroup": the container's own cgroups (see CgroupView). Without a view, an
// empty tmpfs.
Status mount_cgroup_view(int root_fd, const oci::Mount& mount, const MountOptions& options,
                         const CgroupView& cgroups) {
  const unsigned long flags = options.flags & ~(MS_REMOUNT | MS_BIND);
  if (cgroups.hierarchies.size() == 1 && cgroups.hierarchies[0].name.empty()) {
    return mount_cgroup_hierarchy(root_fd, cgroups, cgroups.hierarchies[0], mount.destination,
                                  flags);
  }
  {
    const int target_fd = HV_TRY(open_in_root(root_fd, mount.destination, true, false));
    Fd target_owner(target_fd);
    // Writable until its directories and links exist.
    if (::mount("tmpfs", fd_path(target_fd).c_str(), "tmpfs", flags & ~MS_RDONLY, "mode=755") !=
        0) {
      return mount_error("mount tmpfs on", mount.destination);
    }
  }
  for (const CgroupView::Hierarchy& hierarchy : cgroups.hierarchies) {
    HV_TRY(mount_cgroup_hierarchy(root_fd, cgroups, hierarchy,
                                  mount.destination + "/" + hierarchy.name, flags));
    if (hierarchy.aliases.empty()) {
      continue;
    }
    const int view_fd = HV_TRY(open_in_root(root_fd, mount.destination, false, false));
    Fd view_owner(view_fd);
    Fd view(::openat(view_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    for (const std::string& alias : hierarchy.aliases) {
      if (::symlinkat(hierarchy.name.c_str(), view.get(), alias.c_str()) != 0 && errno != EEXIST) {
        return Error::from_errno(
            fmt::format("cannot link {}/{} to {}", mount.destination, alias, hierarchy.name));
      }
    }
  }
  if (flags & MS_RDONLY) {
    const int view_fd = HV_TRY(open_in_root(root_fd, mount.destination, false, false));
    Fd view_owner(view_fd);
    if (::mount(nullptr, fd_path(view_fd).c_str(), nullptr, MS_REMOUNT | flags, "mode=755") != 0) {
      return mount_error("make read-only", mount.destination);
    }
  }
  return {};
}

Status do_mount(int root_fd, const oci::Mount& mount, const CgroupView& cgroups) {
  const MountOptions options = parse_mount_options(mount.options);
  const bool bind = options.bind || mount.type == "bind";
  const bool leaf_is_file = bind && !is_directory_source(mount);
  if (mount.type == "cgroup") {
    HV_TRY(mount_cgroup_view(root_fd, mount, options, cgroups));
  } else {
    const int target_fd = HV_TRY(open_in_root(root_fd, mount.destination, true, leaf_is_file));
    Fd target_owner(target_fd);
    const std::string target = fd_path(target_fd);
    if (bind) {
      const unsigned long bind_flags = MS_BIND | (options.recursive_bind ? MS_REC : 0);
      if (::mount(mount.source.c_str(), target.c_str(), nullptr, bind_flags, nullptr) != 0) {
        return mount_error("bind-mount " + mount.source + " onto", mount.destination);
      }
    } else {
      const std::string& type = mount.type;
      const std::string& data = options.data;
      const std::string source = mount.source.empty() ? type : mount.source;
      if (::mount(source.c_str(), target.c_str(), type.c_str(), options.flags,
                  data.empty() ? nullptr : data.c_str()) != 0) {
        return mount_error("mount " + type + " on", mount.destination);
      }
    }
  }
  const unsigned long bind_remount_flags = bind ? options.flags & ~MS_REMOUNT : 0;
  if (bind_remount_flags == 0 && options.propagation == 0) {
    return {};
  }
  // The descriptor opened before mounting names the covered mount point, not the new mount: a
  // remount or propagation change through it fails with EINVAL. Resolve the path again so it
  // lands on the root of what was just mounted.
  const int mounted_fd = HV_TRY(open_in_root(root_fd, mount.destination, false, leaf_is_file));
  Fd mounted_owner(mounted_fd);
  const std::string mounted = fd_path(mounted_fd);
  // Flags on a bind mount take a second, remounting call.
  if (bind_remount_flags != 0 && ::mount(nullptr, mounted.c_str(), nullptr,
                                         MS_REMOUNT | MS_BIND | bind_remount_flags, nullptr) != 0) {
    return mount_error("apply the options of", mount.destination);
  }
  if (options.propagation != 0 &&
      ::mount(nullptr, mounted.c_str(), nullptr, options.propagation, nullptr) != 0) {
    return mount_error("set the propagation of", mount.destination);
  }
  return {};
}

unsigned long root_propagation(oci::RootfsPropagation propagation) {
  switch (propagation) {
    case oci::RootfsPropagation::Private:
      return MS_PRIVATE | MS_REC;
    case oci::RootfsPropagation::Shared:
      return MS_SHARED | MS_REC;
    case oci::RootfsPropagation::Unbindable:
      return MS_UNBINDABLE | MS_REC;
    case oci::RootfsPropagation::Slave:
    case oci::RootfsPropagation::Unset:
      break;
  }
  // runc's default: mount events of the host still reach the container, none go back.
  return MS_SLAVE | MS_REC;
}

Status enter_root(const std::string& rootfs, bool no_pivot) {
  if (::chdir(rootfs.c_str()) != 0) {
    return Error::from_errno(fmt::format("cannot enter the container's root {}", rootfs));
  }
  if (no_pivot) {
    if (::mount(rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) != 0 || ::chroot(".") != 0) {
      return Error::from_errno("cannot move the container's root to / and chroot into it");
    }
  } else {
    // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the
    // container's tree, with no directory for the old root needed in the image.
    if (::syscall(SYS_pivot_root, ".", ".") != 0) {
      return Error::from_errno("pivot_root into the container's root failed");
    }
    if (::umount2(".", MNT_DETACH) != 0) {
      return Error::from_errno("cannot detach the host's root after pivot_root");
    }
  }
  if (::chdir("/") != 0) {
    return Error::from_errno("cannot chdir to the container's /");
  }
  return {};
}

}  // namespace

MountOptions parse_mount_options(const std::vector<std::string>& options) {
  MountOptions result;
  for (const std::string& option : options) {
    if (option == "bind") {
      result.bind = true;
      continue;
    }
    if (option == "rbind") {
      result.bind = true;
      result.recursive_bind = true;
      continue;
    }
    bool known = false;
    for (const FlagOption& flag : kFlagOptions) {
      if (option == flag.name) {
        result.flags = flag.clear ? result.flags & ~flag.flag : result.flags | flag.flag;
        known = true;
        break;
      }
    }
    for (const PropagationOption& propagation : kPropagationOptions) {
      if (option == propagation.name) {
        result.propagation = propagation.flags;
        known = true;
        break;
      }
    }
    if (!known && option != "tmpcopyup") {  // tmpcopyup: runc's extension, not a mount option
      result.data += (result.data.empty() ? "" : ",") + option;
    }
  }
  return result;
}

Result<int> open_in_root(int root_fd, const std::string& path, bool create, bool leaf_is_file) {
  if (path.empty() || path[0] != '/') {
    return make_error(ExitStatus::BadConfig, "container path '{}' is not absolute", path);
  }
  Result<Fd> whole = resolve(root_fd, path);
  if (whole.ok() || !create || errno != ENOENT) {
    if (!whole.ok()) {
      return std::move(whole).error();
    }
    return whole->release();
  }
  // Create the missing components one at a time, each resolved inside the root again, so a
  // symlink planted anywhere on the way cannot lead outside it.
  Fd current(::dup(root_fd));
  std::string prefix;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) {
      end = path.size();
    }
    const std::string component = path.substr(start, end - start);
    start = end + 1;
    if (component.empty()) {
      continue;
    }
    prefix += "/" + component;
    const bool last = end == path.size();
    Result<Fd> next = resolve(root_fd, prefix);
    if (!next.ok()) {
      if (errno != ENOENT) {
        return std::move(next).error();
      }
      if (last && leaf_is_file) {
        const int file = ::openat(current.get(), component.c_str(),
                                  O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (file < 0) {
          return Error::from_errno(fmt::format("cannot create {} in the container", prefix));
        }
        ::close(file);
      } else if (::mkdirat(current.get(), component.c_str(), 0755) != 0 && errno != EEXIST) {
        return Error::from_errno(fmt::format("cannot create {} in the container", prefix));
      }
      next = resolve(root_fd, prefix);
      if (!next.ok()) {
        return std::move(next).error();
      }
    }
    current = std::move(*next);
  }
  return current.release();
}

Status prepare_rootfs(const oci::Config& config, const std::string& rootfs, bool no_pivot,
                      const CgroupView& cgroups) {
  if (::mount(nullptr, "/", nullptr, root_propagation(config.linux.rootfs_propagation), nullptr) !=
      0) {
    return Error::from_errno("cannot set the mount propagation of /");
  }
  // pivot_root needs the new root to be a mount point.
  if (::mount(rootfs.c_str(), rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return Error::from_errno(fmt::format("cannot bind-mount the container's root {}", rootfs));
  }
  Fd root_fd(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) {
    return Error::from_errno(fmt::format("cannot open the container's root {}", rootfs));
  }
  bool dev_is_mounted = false;
  for (const oci::Mount& mount : config.mounts) {
    HV_TRY(do_mount(root_fd.get(), mount, cgroups));
    dev_is_mounted = dev_is_mounted || mount.destination == "/dev";
  }
  if (dev_is_mounted) {
    HV_TRY(populate_dev(root_fd.get(), config));
  } else if (!config.linux.devices.empty()) {
    HV_TRY(populate_dev(root_fd.get(), config));
  }
  return enter_root(rootfs, no_pivot);
}

Status finish_rootfs(const oci::Config& config) {
  for (const std::string& path : config.linux.masked_paths) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      continue;  // nothing there to hide
    }
    const bool directory = S_ISDIR(st.st_mode);
    const int rc = directory ? ::mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY, "size=0k")
                             : ::mount("/dev/null", path.c_str(), nullptr, MS_BIND, nullptr);
    if (rc != 0) {
      return mount_error("mask", path);
    }
  }
  for (const std::string& path : config.linux.readonly_paths) {
    if (::access(path.c_str(), F_OK) != 0) {
      continue;
    }
    if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
        ::mount(nullptr, path.c_str(), nullptr,
                MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                nullptr) != 0) {
      return mount_error("make read-only", path);
    }
  }
  if (config.root.readonly &&
      ::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    return mount_error("make read-only", "the container's root");
  }
  return {};
}

}  // namespace hv::container
