// The OCI runtime specification's config.json (Linux), as hv's container runtime uses it: one
// plain struct per spec object, every field runc and crun honour on Linux. Optional spec fields
// are std::optional where "absent" and "empty" differ (rlimits, seccomp, resources ...).
// parse_oci_config() (oci_config.cpp) validates a document into this model; nothing else
// reads JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hv::oci {

struct Root {
  std::string path;  // relative paths are relative to the bundle
  bool readonly = false;
};

struct Mount {
  std::string destination;  // absolute inside the container
  std::string type;         // "bind", "proc", "tmpfs" ... (empty for bind mounts given by options)
  std::string source;
  std::vector<std::string> options;  // mount(8) options: "ro", "nosuid", "rbind", "rprivate"...
};

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additional_gids;
};

struct ConsoleSize {
  uint32_t height = 0;
  uint32_t width = 0;
};

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE" ...
  uint64_t hard = 0;
  uint64_t soft = 0;
};

struct Capabilities {
  std::vector<std::string> bounding, effective, inheritable, permitted, ambient;  // "CAP_..."
};

struct Process {
  bool terminal = false;
  std::optional<ConsoleSize> console_size;
  User user;
  std::vector<std::string> args;  // non-empty
  std::vector<std::string> env;   // "KEY=value"
  std::string cwd = "/";          // absolute
  std::optional<Capabilities> capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  std::string apparmor_profile;  // applied on exec where AppArmor is enabled, else refused
  std::string selinux_label;     // applied on exec where SELinux is enabled, else refused
};

struct Hook {
  std::string path;  // absolute
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout_seconds;  // > 0
};

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
};

enum class NamespaceType { Pid, Network, Mount, Ipc, Uts, User, Cgroup, Time };

struct Namespace {
  NamespaceType type;
  std::string path;  // empty: create a new one; else join the namespace at this path
};

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

struct Device {
  std::string path;   // absolute, inside the container
  char type = 'c';    // 'c', 'b', 'u' (unbuffered char) or 'p' (FIFO)
  int64_t major = 0;  // not used for 'p'
  int64_t minor = 0;
  std::optional<uint32_t> file_mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
};

// Resources (cgroups). Unset fields leave the kernel's value alone.
struct DeviceRule {
  bool allow = false;
  char type = 'a';               // 'a' (all), 'c' or 'b'
  std::optional<int64_t> major;  // absent: any (*)
  std::optional<int64_t> minor;
  std::string access = "rwm";  // subset of "rwm"
};

struct MemoryLimits {
  std::optional<int64_t> limit;        // bytes; -1 = unlimited
  std::optional<int64_t> reservation;  // soft limit
  std::optional<int64_t> swap;         // memory + swap
  std::optional<int64_t> kernel;       // deprecated, ignored as runc does
  std::optional<int64_t> kernel_tcp;
  std::optional<uint64_t> swappiness;  // 0..100
  std::optional<bool> disable_oom_killer;
  std::optional<bool> use_hierarchy;
};

struct CpuLimits {
  std::optional<uint64_t> shares;
  std::optional<int64_t> quota;  // µs per period; -1 = unlimited
  std::optional<uint64_t> period;
  std::optional<int64_t> realtime_runtime;
  std::optional<uint64_t> realtime_period;
  std::string cpus;  // cpuset list, e.g. "0-1"
  std::string mems;
  std::optional<int64_t> idle;
};

struct BlockIoDeviceWeight {
  int64_t major = 0, minor = 0;
  std::optional<uint16_t> weight, leaf_weight;
};

struct BlockIoDeviceRate {
  int64_t major = 0, minor = 0;
  uint64_t rate = 0;
};

struct BlockIoLimits {
  std::optional<uint16_t> weight;  // 10..1000
  std::optional<uint16_t> leaf_weight;
  std::vector<BlockIoDeviceWeight> weight_device;
  std::vector<BlockIoDeviceRate> throttle_read_bps, throttle_write_bps, throttle_read_iops,
      throttle_write_iops;
};

struct HugepageLimit {
  std::string page_size;  // "2MB", "1GB"
  uint64_t limit = 0;     // bytes
};

struct Resources {
  std::vector<DeviceRule> devices;
  std::optional<MemoryLimits> memory;
  std::optional<CpuLimits> cpu;
  std::optional<int64_t> pids_limit;  // <= 0: unlimited
  std::optional<BlockIoLimits> block_io;
  std::vector<HugepageLimit> hugepage_limits;
  std::map<std::string, std::string> unified;  // cgroup v2 files, written as given
};

enum class SeccompAction { Kill, KillProcess, KillThread, Trap, Errno, Trace, Allow, Log, Notify };

enum class SeccompOperator {
  NotEqual,
  LessThan,
  LessEqual,
  EqualTo,
  GreaterEqual,
  GreaterThan,
  MaskedEqual
};

struct SeccompArg {
  uint32_t index = 0;  // 0..5
  uint64_t value = 0;
  uint64_t value_two = 0;
  SeccompOperator op = SeccompOperator::EqualTo;
};

struct SeccompRule {
  std::vector<std::string> names;  // syscall names
  SeccompAction action = SeccompAction::Allow;
  std::optional<uint32_t> errno_ret;
  std::vector<SeccompArg> args;
};

struct Seccomp {
  SeccompAction default_action = SeccompAction::Allow;
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;  // "SCMP_ARCH_X86_64" ...
  std::vector<std::string> flags;          // "SECCOMP_FILTER_FLAG_LOG" ...
  std::string listener_path;               // SCMP_ACT_NOTIFY
  std::string listener_metadata;           // passed to the agent with the listener
  std::vector<SeccompRule> syscalls;
};

enum class RootfsPropagation { Unset, Private, Slave, Shared, Unbindable };

// How far a new time namespace's clock is set ahead of (or behind) the host's.
struct TimeOffset {
  int64_t secs = 0;
  uint32_t nanosecs = 0;
};

struct Linux {
  std::vector<Namespace> namespaces;
  std::map<std::string, TimeOffset> time_offsets;  // "boottime", "monotonic"
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::vector<Device> devices;
  std::string cgroups_path;  // absolute, or relative to the runtime's cgroup root
  std::optional<Resources> resources;
  std::map<std::string, std::string> sysctl;
  std::optional<Seccomp> seccomp;
  RootfsPropagation rootfs_propagation = RootfsPropagation::Unset;
  std::vector<std::string> masked_paths, readonly_paths;
  std::string mount_label;
};

struct Config {
  std::string oci_version;  // "1.0.0" ... "1.2.x"
  Root root;
  std::vector<Mount> mounts;
  std::optional<Process> process;  // required by create/run
  std::string hostname;
  std::string domainname;
  Hooks hooks;
  Linux linux;
  std::map<std::string, std::string> annotations;
};

}  // namespace hv::oci
