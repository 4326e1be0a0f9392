// The guest spec: one JSON document that describes a guest of any engine, a virtual machine
// (kvm, emulate) or a container. `hv run -f spec.json` reads one from a file; the supervisor API
// takes one as the body of POST /v1/guests and stores the canonical form guest_spec_to_json()
// writes.
//
//   {
//     "name": "web-1",                           required; [A-Za-z0-9][A-Za-z0-9_.-]{0,62}
//     "engine": "kvm" | "emulate" | "container", required
//     machines:
//     "kernel": "/abs/path",                     required
//     "initrd": "/abs/path" or ["/a", "/b"],
//     "cmdline": "console=ttyS0",
//     "format": "auto" | "multiboot" | "elf" | "linux" | "flat",      default "auto"
//     "memory_mib": 128,                         2 .. 1048576, default 128
//     "vcpus": 1,                                1 .. kMaximumCpus
//     "disks": [{"path": "/abs", "read_only": false, "direct": false, "serial": "id",
//                "interface": "virtio" | "ide"}],
//     "nets": [{"tap": "tap0", "mac": "52:54:00:12:34:56"}],          mac: 52:54:00:12:34:(56+i)
//     "console": "serial" | "virtio",
//     "rng": false,
//     "timeout_s": 10.5,                         > 0
//     "on_reset": "stop" | "reboot",             default "stop": a reset ends the guest
//     containers: either an OCI bundle ...
//     "bundle": "/abs/bundle/dir",               with config.json
//     ... or one command in a root directory:
//     "rootfs": "/abs/dir", "args": ["/bin/sh", "-c", "echo hi"],     args required, non-empty
//     "env": ["K=V"], "cwd": "/", "hostname": "name", "network": "none" | "host",
//     both:
//     "limits": {"memory_mib": 64, "cpus": 0.5, "pids": 100}          all optional
//   }
//
// The parser is strict: an unknown member anywhere, a duplicate member, a member of the wrong
// JSON type (null included), a machine member on a container or the reverse, is an error. Every
// error has ExitStatus::BadConfig; messages name the member by its path:
//   unknown field "memroy_mib" in the guest spec
//   "vcpus" must be an integer from 1 to 64
//   "disks[1].path" must be an absolute path
//   "rootfs" is a container field: not allowed with engine "kvm"
// Paths (kernel, initrd, disks, bundle, rootfs) are normalized lexically; a relative one is
// resolved against `base_dir` where that is non-empty (the CLI passes the spec file's directory)
// and is an error where it is empty (the API). Files are not opened: the VMM or the container
// runtime reports a missing one when the guest starts.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "container/oci_spec.hpp"
#include "vmm/vm_runner.hpp"

namespace hv {

enum class GuestEngine { Kvm, Emulate, Container };

// "kvm", "emulate", "container".
std::string_view engine_name(GuestEngine engine);

// Host-side limits (cgroup), for both machines (the VMM process) and containers.
struct GuestLimits {
  std::optional<uint64_t> memory_bytes;  // whole MiB, at least 4 MiB
  std::optional<double> cpus;            // 0.01 .. 1024
  std::optional<int64_t> pids;           // 1 .. 4194304
};

struct GuestSpec {
  std::string name;
  GuestEngine engine = GuestEngine::Kvm;

  // Machines (kvm, emulate).
  std::string kernel;
  std::vector<std::string> initrds;
  std::string cmdline;
  std::string format = "auto";
  uint64_t memory_bytes = 128ull << 20;
  uint32_t vcpus = 1;
  std::vector<DiskConfig> disks;
  std::vector<NetConfig> nets;
  ConsoleDevice console = ConsoleDevice::Serial;
  bool rng = false;
  std::optional<std::chrono::milliseconds> timeout;
  bool reboot_on_reset = false;

  // Containers: bundle, or rootfs and args (and env, cwd, hostname, network).
  std::string bundle;
  std::string rootfs;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::string hostname;  // empty: the guest's name
  std::string network = "none";

  GuestLimits limits;

  bool is_machine() const { return engine != GuestEngine::Container; }
};

// Caps on what one spec may hold.
constexpr size_t kMaximumGuestNameLength = 63;
constexpr size_t kMaximumSpecDepth = 8;  // nesting of arrays and objects
constexpr size_t kMaximumSpecArgs = 4096;
constexpr size_t kMaximumSpecEnv = 4096;
constexpr size_t kMaximumSpecInitrds = 64;
constexpr uint64_t kMaximumSpecMemoryMib = 1ull << 20;

// ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ and not containing "..": safe as a directory name.
bool valid_guest_name(std::string_view name);

Result<GuestSpec> parse_guest_spec(std::string_view json_text, const std::string& base_dir);
// A spec file (`hv run -f`, `hv create -f`): relative paths are the file's directory's; errors
// start with the file's name.
Result<GuestSpec> load_guest_spec_file(const std::string& path);

// The canonical JSON of a spec (every member of its engine, defaults written out), which is what
// the supervisor stores and returns: parse_guest_spec(guest_spec_to_json(s).dump(), "") gives s
// back.
nlohmann::json guest_spec_to_json(const GuestSpec& spec);

// A machine's VmConfig (engine, kernel, initrds, cmdline, format, memory, cpus, disks, nets,
// console, rng, timeout; restart_on_reset = reboot_on_reset), checked by validate(), whose
// errors keep their status. ExitStatus::BadConfig on a container spec.
Result<VmConfig> to_vm_config(const GuestSpec& spec);

// A container's OCI configuration: the bundle's config.json (load_oci_bundle_config, which reads
// the file) or the default configuration for rootfs and args, as `hv container run` builds it
// (container::simple_container_config; the hostname defaults to the guest's name). `limits` are
// applied as linux.resources, linux.cgroupsPath is set to `cgroup_path` where that is non-empty,
// and process.terminal is false. ExitStatus::BadConfig on a machine spec.
Result<oci::Config> to_container_config(const GuestSpec& spec, const std::string& cgroup_path);

}  // namespace hv
