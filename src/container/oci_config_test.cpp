#include "container/oci_config.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace hv::container {
namespace {

using nlohmann::json;

// A temporary bundle directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "hv-oci-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) {
      path_ = pattern;
    }
  }
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ + "/" + name) << text;
  }

 private:
  std::string path_;
};

TEST(OciConfig, DefaultDocumentParses) {
  const std::string text = default_oci_config_json(false);
  auto parsed = parse_oci_config(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  const oci::Config& c = *parsed;
  EXPECT_EQ(c.oci_version, "1.0.2-dev");
  EXPECT_EQ(c.root.path, "rootfs");
  EXPECT_TRUE(c.root.readonly);
  EXPECT_EQ(c.hostname, "hv");
  ASSERT_TRUE(c.process.has_value());
  EXPECT_TRUE(c.process->terminal);
  EXPECT_EQ(c.process->user.uid, 0u);
  EXPECT_EQ(c.process->user.gid, 0u);
  EXPECT_EQ(c.process->args, std::vector<std::string>{"sh"});
  EXPECT_EQ(c.process->env, (std::vector<std::string>{
                                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "TERM=xterm"}));
  EXPECT_EQ(c.process->cwd, "/");
  EXPECT_TRUE(c.process->no_new_privileges);
  ASSERT_TRUE(c.process->capabilities.has_value());
  const std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  EXPECT_EQ(c.process->capabilities->bounding, caps);
  EXPECT_EQ(c.process->capabilities->effective, caps);
  EXPECT_EQ(c.process->capabilities->permitted, caps);
  EXPECT_TRUE(c.process->capabilities->inheritable.empty());
  EXPECT_TRUE(c.process->capabilities->ambient.empty());
  ASSERT_EQ(c.process->rlimits.size(), 1u);
  EXPECT_EQ(c.process->rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(c.process->rlimits[0].hard, 1024u);
  EXPECT_EQ(c.process->rlimits[0].soft, 1024u);

  ASSERT_EQ(c.mounts.size(), 7u);
  EXPECT_EQ(c.mounts[0].destination, "/proc");
  EXPECT_EQ(c.mounts[0].type, "proc");
  EXPECT_TRUE(c.mounts[0].options.empty());
  EXPECT_EQ(c.mounts[2].destination, "/dev/pts");
  EXPECT_EQ(c.mounts[2].options.back(), "gid=5");
  EXPECT_EQ(c.mounts[5].type, "sysfs");
  EXPECT_EQ(c.mounts[6].destination, "/sys/fs/cgroup");

  std::vector<oci::NamespaceType> types;
  for (const auto& ns : c.linux.namespaces) {
    types.push_back(ns.type);
    EXPECT_TRUE(ns.path.empty());
  }
  using T = oci::NamespaceType;
  EXPECT_EQ(types, (std::vector<T>{T::Pid, T::Network, T::Ipc, T::Uts, T::Mount, T::Cgroup}));
  ASSERT_TRUE(c.linux.resources.has_value());
  ASSERT_EQ(c.linux.resources->devices.size(), 1u);
  EXPECT_FALSE(c.linux.resources->devices[0].allow);
  EXPECT_EQ(c.linux.resources->devices[0].access, "rwm");
  EXPECT_EQ(c.linux.masked_paths.size(), 10u);
  EXPECT_EQ(c.linux.masked_paths.front(), "/proc/acpi");
  EXPECT_EQ(c.linux.readonly_paths, (std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq",
                                                              "/proc/sys", "/proc/sysrq-trigger"}));
  EXPECT_TRUE(c.linux.uid_mappings.empty());

  // runc's member order and tab indentation.
  EXPECT_EQ(text.rfind("{\n\t\"ociVersion\": \"1.0.2-dev\",\n\t\"process\": {", 0), 0u) << text;
}

TEST(OciConfig, RootlessDefaultDocumentParses) {
  auto parsed = parse_oci_config(default_oci_config_json(true));
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  const oci::Config& c = *parsed;
  bool user = false;
  for (const auto& ns : c.linux.namespaces) {
    EXPECT_NE(ns.type, oci::NamespaceType::Network);
    user = user || ns.type == oci::NamespaceType::User;
  }
  EXPECT_TRUE(user);
  ASSERT_EQ(c.linux.uid_mappings.size(), 1u);
  EXPECT_EQ(c.linux.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(c.linux.uid_mappings[0].host_id, ::geteuid());
  EXPECT_EQ(c.linux.uid_mappings[0].size, 1u);
  ASSERT_EQ(c.linux.gid_mappings.size(), 1u);
  EXPECT_EQ(c.linux.gid_mappings[0].host_id, ::getegid());
  EXPECT_FALSE(c.linux.resources.has_value());
  for (const auto& m : c.mounts) {
    EXPECT_NE(m.type, "cgroup");
    EXPECT_NE(m.type, "sysfs");
    for (const auto& option : m.options) {
      EXPECT_FALSE(option.starts_with("gid=") || option.starts_with("uid=")) << option;
    }
  }
  ASSERT_EQ(c.mounts.size(), 6u);
  EXPECT_EQ(c.mounts[5].destination, "/sys");
  EXPECT_EQ(c.mounts[5].source, "/sys");
  EXPECT_EQ(c.mounts[5].options.front(), "rbind");
}

constexpr const char* kFullConfig = R"json({
  "ociVersion": "1.2.0",
  "root": {"path": "/var/lib/hv/rootfs", "readonly": true},
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]},
    {"destination": "/bare"}
  ],
  "process": {
    "terminal": true,
    "consoleSize": {"height": 25, "width": 80},
    "user": {"uid": 1000, "gid": 100, "umask": 18, "additionalGids": [5, 4294967295]},
    "args": ["/bin/sh", "-c", "echo hi"],
    "env": ["PATH=/bin", "EMPTY=", "A=b=c"],
    "cwd": "/home",
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_KILL"],
      "effective": ["CAP_KILL"],
      "inheritable": ["CAP_NET_RAW"],
      "permitted": ["CAP_KILL", "CAP_CHECKPOINT_RESTORE"],
      "ambient": ["CAP_BPF"]
    },
    "rlimits": [
      {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
      {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0}
    ],
    "noNewPrivileges": true,
    "oomScoreAdj": -500,
    "apparmorProfile": "acme_secure_profile",
    "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
    "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 4}
  },
  "hostname": "box",
  "domainname": "example.org",
  "hooks": {
    "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "arg1"], "env": ["key1=value1"]}],
    "createRuntime": [{"path": "/usr/bin/net", "timeout": 5}],
    "createContainer": [{"path": "/usr/bin/cc"}],
    "startContainer": [{"path": "/usr/bin/sc"}],
    "poststart": [{"path": "/usr/bin/notify-start", "timeout": 1}],
    "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}]
  },
  "annotations": {"com.example.key1": "value1", "key2": "value2"},
  "linux": {
    "namespaces": [
      {"type": "pid"}, {"type": "network", "path": "/var/run/netns/neta"}, {"type": "mount"},
      {"type": "ipc"}, {"type": "uts"}, {"type": "user"}, {"type": "cgroup"}, {"type": "time", "path": ""}
    ],
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 1000}, {"containerID": 1000, "hostID": 1, "size": 1}],
    "devices": [
      {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 5},
      {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0},
      {"path": "/dev/ttyU", "type": "u", "major": 4, "minor": 64},
      {"path": "/dev/fifo", "type": "p"}
    ],
    "cgroupsPath": "/myRuntime/myContainer",
    "resources": {
      "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": true, "type": "b", "major": 8, "minor": -1, "access": "m"},
        {"allow": false}
      ],
      "memory": {"limit": 536870912, "reservation": 268435456, "swap": -1, "kernel": 0,
                 "kernelTCP": 1048576, "swappiness": 60, "disableOOMKiller": true, "useHierarchy": false},
      "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "realtimeRuntime": 950000,
              "realtimePeriod": 1000000, "cpus": "0-1", "mems": "0", "idle": 1},
      "pids": {"limit": 32},
      "blockIO": {
        "weight": 500, "leafWeight": 300,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 50}, {"major": 8, "minor": 16}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 700}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 32, "rate": 800}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 48, "rate": 900}]
      },
      "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
      "unified": {"memory.high": "1G", "io.weight": "default 100"},
      "network": {"classID": 1048577}
    },
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "4294967296"},
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
      "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      "listenerPath": "/run/seccomp-agent.socket",
      "listenerMetadata": "agent-options",
      "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                  {"index": 5, "value": 18446744073709551615, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 1},
        {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"}
      ]
    },
    "rootfsPropagation": "rslave",
    "maskedPaths": ["/proc/kcore", "/proc/keys"],
    "readonlyPaths": ["/proc/sys"],
    "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811"
  },
  "org.example.extension": {"anything": [1, 2.5, null]}
})json";

TEST(OciConfig, FullExampleParsesEveryField) {
  auto parsed = parse_oci_config(kFullConfig);
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  const oci::Config& c = *parsed;
  EXPECT_EQ(c.oci_version, "1.2.0");
  EXPECT_EQ(c.root.path, "/var/lib/hv/rootfs");
  EXPECT_TRUE(c.root.readonly);

  ASSERT_EQ(c.mounts.size(), 3u);
  EXPECT_EQ(c.mounts[1].destination, "/data");
  EXPECT_EQ(c.mounts[1].type, "bind");
  EXPECT_EQ(c.mounts[1].source, "/srv/data");
  EXPECT_EQ(c.mounts[1].options, (std::vector<std::string>{"rbind", "ro"}));
  EXPECT_EQ(c.mounts[2].destination, "/bare");
  EXPECT_TRUE(c.mounts[2].type.empty());

  ASSERT_TRUE(c.process.has_value());
  const oci::Process& p = *c.process;
  EXPECT_TRUE(p.terminal);
  ASSERT_TRUE(p.console_size.has_value());
  EXPECT_EQ(p.console_size->height, 25u);
  EXPECT_EQ(p.console_size->width, 80u);
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.gid, 100u);
  EXPECT_EQ(p.user.umask, 022u);
  EXPECT_EQ(p.user.additional_gids, (std::vector<uint32_t>{5, 4294967295u}));
  EXPECT_EQ(p.args, (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
  EXPECT_EQ(p.env, (std::vector<std::string>{"PATH=/bin", "EMPTY=", "A=b=c"}));
  EXPECT_EQ(p.cwd, "/home");
  ASSERT_TRUE(p.capabilities.has_value());
  EXPECT_EQ(p.capabilities->bounding, (std::vector<std::string>{"CAP_CHOWN", "CAP_KILL"}));
  EXPECT_EQ(p.capabilities->effective, (std::vector<std::string>{"CAP_KILL"}));
  EXPECT_EQ(p.capabilities->inheritable, (std::vector<std::string>{"CAP_NET_RAW"}));
  EXPECT_EQ(p.capabilities->permitted,
            (std::vector<std::string>{"CAP_KILL", "CAP_CHECKPOINT_RESTORE"}));
  EXPECT_EQ(p.capabilities->ambient, (std::vector<std::string>{"CAP_BPF"}));
  ASSERT_EQ(p.rlimits.size(), 2u);
  EXPECT_EQ(p.rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(p.rlimits[0].hard, 4096u);
  EXPECT_EQ(p.rlimits[0].soft, 1024u);
  EXPECT_EQ(p.rlimits[1].type, "RLIMIT_CORE");
  EXPECT_EQ(p.rlimits[1].hard, UINT64_MAX);
  EXPECT_EQ(p.rlimits[1].soft, 0u);
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_EQ(p.oom_score_adj, -500);
  EXPECT_EQ(p.apparmor_profile, "acme_secure_profile");
  EXPECT_EQ(p.selinux_label, "system_u:system_r:svirt_lxc_net_t:s0:c124,c675");

  EXPECT_EQ(c.hostname, "box");
  EXPECT_EQ(c.domainname, "example.org");

  ASSERT_EQ(c.hooks.prestart.size(), 1u);
  EXPECT_EQ(c.hooks.prestart[0].path, "/usr/bin/fix-mounts");
  EXPECT_EQ(c.hooks.prestart[0].args, (std::vector<std::string>{"fix-mounts", "arg1"}));
  EXPECT_EQ(c.hooks.prestart[0].env, (std::vector<std::string>{"key1=value1"}));
  EXPECT_FALSE(c.hooks.prestart[0].timeout_seconds.has_value());
  ASSERT_EQ(c.hooks.create_runtime.size(), 1u);
  EXPECT_EQ(c.hooks.create_runtime[0].timeout_seconds, 5);
  ASSERT_EQ(c.hooks.create_container.size(), 1u);
  EXPECT_EQ(c.hooks.create_container[0].path, "/usr/bin/cc");
  ASSERT_EQ(c.hooks.start_container.size(), 1u);
  EXPECT_EQ(c.hooks.start_container[0].path, "/usr/bin/sc");
  ASSERT_EQ(c.hooks.poststart.size(), 1u);
  EXPECT_EQ(c.hooks.poststart[0].timeout_seconds, 1);
  ASSERT_EQ(c.hooks.poststop.size(), 1u);
  EXPECT_EQ(c.hooks.poststop[0].args, (std::vector<std::string>{"cleanup.sh", "-f"}));

  EXPECT_EQ(c.annotations, (std::map<std::string, std::string>{{"com.example.key1", "value1"},
                                                               {"key2", "value2"}}));

  const oci::Linux& l = c.linux;
  ASSERT_EQ(l.namespaces.size(), 8u);
  using T = oci::NamespaceType;
  const std::vector<T> types = {T::Pid, T::Network, T::Mount,  T::Ipc,
                                T::Uts, T::User,    T::Cgroup, T::Time};
  for (size_t i = 0; i < types.size(); ++i) {
    EXPECT_EQ(l.namespaces[i].type, types[i]) << i;
  }
  EXPECT_EQ(l.namespaces[1].path, "/var/run/netns/neta");
  EXPECT_TRUE(l.namespaces[7].path.empty());
  ASSERT_EQ(l.uid_mappings.size(), 1u);
  EXPECT_EQ(l.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(l.uid_mappings[0].host_id, 100000u);
  EXPECT_EQ(l.uid_mappings[0].size, 65536u);
  ASSERT_EQ(l.gid_mappings.size(), 2u);
  EXPECT_EQ(l.gid_mappings[1].container_id, 1000u);
  EXPECT_EQ(l.gid_mappings[1].host_id, 1u);
  EXPECT_EQ(l.gid_mappings[1].size, 1u);

  ASSERT_EQ(l.devices.size(), 4u);
  EXPECT_EQ(l.devices[0].path, "/dev/fuse");
  EXPECT_EQ(l.devices[0].type, 'c');
  EXPECT_EQ(l.devices[0].major, 10);
  EXPECT_EQ(l.devices[0].minor, 229);
  EXPECT_EQ(l.devices[0].file_mode, 0666u);
  EXPECT_EQ(l.devices[0].uid, 0u);
  EXPECT_EQ(l.devices[0].gid, 5u);
  EXPECT_EQ(l.devices[1].type, 'b');
  EXPECT_FALSE(l.devices[1].file_mode.has_value());
  EXPECT_EQ(l.devices[2].type, 'u');
  EXPECT_EQ(l.devices[3].type, 'p');
  EXPECT_EQ(l.cgroups_path, "/myRuntime/myContainer");

  ASSERT_TRUE(l.resources.has_value());
  const oci::Resources& r = *l.resources;
  ASSERT_EQ(r.devices.size(), 4u);
  EXPECT_FALSE(r.devices[0].allow);
  EXPECT_EQ(r.devices[0].type, 'a');
  EXPECT_FALSE(r.devices[0].major.has_value());
  EXPECT_EQ(r.devices[0].access, "rwm");
  EXPECT_TRUE(r.devices[1].allow);
  EXPECT_EQ(r.devices[1].type, 'c');
  EXPECT_EQ(r.devices[1].major, 10);
  EXPECT_EQ(r.devices[1].minor, 229);
  EXPECT_EQ(r.devices[1].access, "rw");
  EXPECT_EQ(r.devices[2].minor, -1);
  EXPECT_EQ(r.devices[2].access, "m");
  EXPECT_EQ(r.devices[3].access, "rwm");  // absent: the model's default
  ASSERT_TRUE(r.memory.has_value());
  EXPECT_EQ(r.memory->limit, 536870912);
  EXPECT_EQ(r.memory->reservation, 268435456);
  EXPECT_EQ(r.memory->swap, -1);
  EXPECT_EQ(r.memory->kernel, 0);
  EXPECT_EQ(r.memory->kernel_tcp, 1048576);
  EXPECT_EQ(r.memory->swappiness, 60u);
  EXPECT_EQ(r.memory->disable_oom_killer, true);
  EXPECT_EQ(r.memory->use_hierarchy, false);
  ASSERT_TRUE(r.cpu.has_value());
  EXPECT_EQ(r.cpu->shares, 1024u);
  EXPECT_EQ(r.cpu->quota, 50000);
  EXPECT_EQ(r.cpu->period, 100000u);
  EXPECT_EQ(r.cpu->realtime_runtime, 950000);
  EXPECT_EQ(r.cpu->realtime_period, 1000000u);
  EXPECT_EQ(r.cpu->cpus, "0-1");
  EXPECT_EQ(r.cpu->mems, "0");
  EXPECT_EQ(r.cpu->idle, 1);
  EXPECT_EQ(r.pids_limit, 32);
  ASSERT_TRUE(r.block_io.has_value());
  EXPECT_EQ(r.block_io->weight, 500);
  EXPECT_EQ(r.block_io->leaf_weight, 300);
  ASSERT_EQ(r.block_io->weight_device.size(), 2u);
  EXPECT_EQ(r.block_io->weight_device[0].major, 8);
  EXPECT_EQ(r.block_io->weight_device[0].minor, 0);
  EXPECT_EQ(r.block_io->weight_device[0].weight, 600);
  EXPECT_EQ(r.block_io->weight_device[0].leaf_weight, 50);
  EXPECT_FALSE(r.block_io->weight_device[1].weight.has_value());
  ASSERT_EQ(r.block_io->throttle_read_bps.size(), 1u);
  EXPECT_EQ(r.block_io->throttle_read_bps[0].rate, 600u);
  ASSERT_EQ(r.block_io->throttle_write_bps.size(), 1u);
  EXPECT_EQ(r.block_io->throttle_write_bps[0].minor, 16);
  EXPECT_EQ(r.block_io->throttle_write_bps[0].rate, 700u);
  ASSERT_EQ(r.block_io->throttle_read_iops.size(), 1u);
  EXPECT_EQ(r.block_io->throttle_read_iops[0].rate, 800u);
  ASSERT_EQ(r.block_io->throttle_write_iops.size(), 1u);
  EXPECT_EQ(r.block_io->throttle_write_iops[0].rate, 900u);
  ASSERT_EQ(r.hugepage_limits.size(), 1u);
  EXPECT_EQ(r.hugepage_limits[0].page_size, "2MB");
  EXPECT_EQ(r.hugepage_limits[0].limit, 209715200u);
  EXPECT_EQ(r.unified, (std::map<std::string, std::string>{{"memory.high", "1G"},
                                                           {"io.weight", "default 100"}}));

  EXPECT_EQ(l.sysctl, (std::map<std::string, std::string>{{"net.ipv4.ip_forward", "1"},
                                                          {"kernel.shmmax", "4294967296"}}));

  ASSERT_TRUE(l.seccomp.has_value());
  const oci::Seccomp& s = *l.seccomp;
  using A = oci::SeccompAction;
  EXPECT_EQ(s.default_action, A::Errno);
  EXPECT_EQ(s.default_errno_ret, 1u);
  EXPECT_EQ(s.architectures,
            (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"}));
  EXPECT_EQ(s.flags, (std::vector<std::string>{"SECCOMP_FILTER_FLAG_LOG",
                                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}));
  EXPECT_EQ(s.listener_path, "/run/seccomp-agent.socket");
  EXPECT_EQ(s.listener_metadata, "agent-options");
  ASSERT_EQ(s.syscalls.size(), 6u);
  EXPECT_EQ(s.syscalls[0].names, (std::vector<std::string>{"read", "write"}));
  EXPECT_EQ(s.syscalls[0].action, A::Allow);
  EXPECT_FALSE(s.syscalls[0].errno_ret.has_value());
  ASSERT_EQ(s.syscalls[1].args.size(), 2u);
  EXPECT_EQ(s.syscalls[1].args[0].index, 0u);
  EXPECT_EQ(s.syscalls[1].args[0].value, 8u);
  EXPECT_EQ(s.syscalls[1].args[0].value_two, 0u);
  EXPECT_EQ(s.syscalls[1].args[0].op, oci::SeccompOperator::EqualTo);
  EXPECT_EQ(s.syscalls[1].args[1].index, 5u);
  EXPECT_EQ(s.syscalls[1].args[1].value, UINT64_MAX);
  EXPECT_EQ(s.syscalls[1].args[1].value_two, 7u);
  EXPECT_EQ(s.syscalls[1].args[1].op, oci::SeccompOperator::MaskedEqual);
  EXPECT_EQ(s.syscalls[2].action, A::Notify);
  EXPECT_EQ(s.syscalls[3].action, A::Errno);
  EXPECT_EQ(s.syscalls[3].errno_ret, 38u);
  EXPECT_EQ(s.syscalls[4].action, A::Trace);
  EXPECT_EQ(s.syscalls[5].action, A::KillProcess);

  EXPECT_EQ(l.rootfs_propagation, oci::RootfsPropagation::Slave);
  EXPECT_EQ(l.masked_paths, (std::vector<std::string>{"/proc/kcore", "/proc/keys"}));
  EXPECT_EQ(l.readonly_paths, (std::vector<std::string>{"/proc/sys"}));
  EXPECT_EQ(l.mount_label, "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811");
}

// A small valid document the malformed cases below start from.
json minimal_config() {
  return json::parse(R"({
    "ociVersion": "1.0.2",
    "root": {"path": "rootfs"},
    "process": {"args": ["sh"], "cwd": "/"},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
  })");
}

TEST(OciConfig, MinimalConfigKeepsDefaults) {
  auto parsed = parse_oci_config(minimal_config().dump());
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  const oci::Config& c = *parsed;
  EXPECT_FALSE(c.root.readonly);
  EXPECT_TRUE(c.mounts.empty());
  EXPECT_FALSE(c.process->terminal);
  EXPECT_FALSE(c.process->console_size.has_value());
  EXPECT_FALSE(c.process->capabilities.has_value());
  EXPECT_FALSE(c.process->oom_score_adj.has_value());
  EXPECT_FALSE(c.process->user.umask.has_value());
  EXPECT_FALSE(c.linux.resources.has_value());
  EXPECT_FALSE(c.linux.seccomp.has_value());
  EXPECT_EQ(c.linux.rootfs_propagation, oci::RootfsPropagation::Unset);
  EXPECT_TRUE(c.hostname.empty());
}

TEST(OciConfig, NullCountsAsAbsentAndProcessIsOptionalHere) {
  json doc = minimal_config();
  doc["hostname"] = nullptr;
  doc["linux"]["seccomp"] = nullptr;
  doc.erase("process");
  auto parsed = parse_oci_config(doc.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  EXPECT_FALSE(parsed->process.has_value());
  EXPECT_FALSE(parsed->linux.seccomp.has_value());
}

TEST(OciConfig, PropagationVariants) {
  const std::vector<std::pair<std::string, oci::RootfsPropagation>> cases = {
      {"private", oci::RootfsPropagation::Private},
      {"rprivate", oci::RootfsPropagation::Private},
      {"slave", oci::RootfsPropagation::Slave},
      {"shared", oci::RootfsPropagation::Shared},
      {"rshared", oci::RootfsPropagation::Shared},
      {"unbindable", oci::RootfsPropagation::Unbindable},
      {"runbindable", oci::RootfsPropagation::Unbindable},
  };
  for (const auto& [name, value] : cases) {
    json doc = minimal_config();
    doc["linux"]["rootfsPropagation"] = name;
    auto parsed = parse_oci_config(doc.dump());
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.error().to_string();
    EXPECT_EQ(parsed->linux.rootfs_propagation, value) << name;
  }
}

// One malformed document: `pointer` in minimal_config() is set to `value` (a JSON text), or
// removed when `value` is null; the error must name `expected` (path and, often, reason).
struct BadCase {
  const char* pointer;
  const char* value;
  const char* expected;
};

const BadCase kBadCases[] = {
    {"/ociVersion", nullptr, ".ociVersion: required"},
    {"/ociVersion", "1", ".ociVersion: must be a"},
    {"/root", R"("rootfs")", ".root: must be an object"},
    {"/root/path", nullptr, ".root.path: required"},
    {"/root/path", R"("")", ".root.path: must be a non-empty string"},
    {"/root/readonly", R"("yes")", ".root.readonly: must be a boolean"},
    {"/mounts", "{}", ".mounts: must be an array"},
    {"/mounts", R"([{"type": "tmpfs"}])", ".mounts[0].destination: required"},
    {"/mounts", R"([{"destination": "/a"}, {"destination": "tmp"}])",
     ".mounts[1].destination: must be an absolute path"},
    {"/mounts", R"([{"destination": "/tmp", "options": ["ro", 1]}])", ".mounts[0].options[1]: "},
    {"/mounts", R"([{"destination": "/tmp", "source": false}])", ".mounts[0].source: "},
    {"/process", "[]", ".process: must be an object"},
    {"/process/args", "[]", ".process.args: must be a non-empty array of strings"},
    {"/process/args", R"("sh")", ".process.args: must be a non-empty array of strings"},
    {"/process/args", nullptr, ".process.args: required"},
    {"/process/args", R"(["sh", 3])", ".process.args[1]: must be a string"},
    {"/process/env", R"(["A=1", "=x"])", ".process.env[1]: must be \"KEY=value\""},
    {"/process/env", R"(["NOEQUALS"])", ".process.env[0]: "},
    {"/process/cwd", nullptr, ".process.cwd: required"},
    {"/process/cwd", R"("home")", ".process.cwd: must be an absolute path"},
    {"/process/terminal", "1", ".process.terminal: must be a boolean"},
    {"/process/consoleSize", R"({"height": 10})", ".process.consoleSize.width: required"},
    {"/process/user", R"({"uid": -1})",
     ".process.user.uid: must be an integer from 0 to 4294967295"},
    {"/process/user", R"({"uid": 4294967296})", ".process.user.uid: must be an integer from 0 to"},
    {"/process/user", R"({"uid": 184467440737095516160})", ".process.user.uid: must be an integer"},
    {"/process/user", R"({"gid": 1.5})", ".process.user.gid: must be an integer"},
    {"/process/user", R"({"gid": 1e3})", ".process.user.gid: must be an integer"},
    {"/process/user", R"({"uid": "0"})", ".process.user.uid: must be an integer"},
    {"/process/user", R"({"additionalGids": [1, "x"]})", ".process.user.additionalGids[1]: "},
    {"/process/user", R"({"umask": 1000})",
     ".process.user.umask: must be an integer from 0 to 511"},
    {"/process/capabilities", R"({"bounding": ["CAP_FOO"]})",
     ".process.capabilities.bounding[0]: unknown capability \"CAP_FOO\""},
    {"/process/capabilities", R"({"ambient": "CAP_KILL"})", ".process.capabilities.ambient: "},
    {"/process/capabilities", R"({"permitted": ["cap_kill"]})",
     ".process.capabilities.permitted[0]: unknown capability"},
    {"/process/rlimits", R"([{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}])",
     ".process.rlimits[0].type: unknown rlimit type \"RLIMIT_BOGUS\""},
    {"/process/rlimits", R"([{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 2}])",
     ".process.rlimits[0].soft: must not exceed hard"},
    {"/process/rlimits",
     R"([{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}, {"type": "RLIMIT_NOFILE", "hard": 2, "soft": 2}])",
     ".process.rlimits[1].type: duplicate rlimit type"},
    {"/process/rlimits", R"([{"type": "RLIMIT_NOFILE", "soft": 1}])",
     ".process.rlimits[0].hard: required"},
    {"/process/rlimits", R"([{"type": "RLIMIT_CPU", "hard": -1, "soft": 1}])",
     ".process.rlimits[0].hard: must be an integer from 0 to 18446744073709551615"},
    {"/process/oomScoreAdj", "1001", ".process.oomScoreAdj: must be an integer from -1000 to 1000"},
    {"/process/noNewPrivileges", R"("true")", ".process.noNewPrivileges: must be a boolean"},
    {"/process/apparmorProfile", "[]", ".process.apparmorProfile: must be a string"},
    {"/hostname", "5", ".hostname: must be a string"},
    {"/domainname", "{}", ".domainname: must be a string"},
    {"/hooks", "[]", ".hooks: must be an object"},
    {"/hooks", R"({"prestart": [{"path": "hook"}]})",
     ".hooks.prestart[0].path: must be an absolute"},
    {"/hooks", R"({"poststop": [{"path": "/bin/x", "timeout": 0}]})",
     ".hooks.poststop[0].timeout: must be an integer from 1 to"},
    {"/hooks", R"({"createRuntime": {}})", ".hooks.createRuntime: must be an array"},
    {"/hooks", R"({"startContainer": [{"args": []}]})", ".hooks.startContainer[0].path: required"},
    {"/hooks", R"({"poststart": [{"path": "/x", "env": ["=1"]}]})", ".hooks.poststart[0].env[0]: "},
    {"/annotations", R"({"a": 1})", ".annotations.a: must be a string"},
    {"/annotations", R"({"org.example.x": true})",
     ".annotations[\"org.example.x\"]: must be a string"},
    {"/annotations", R"({"": "x"})", ".annotations[\"\"]: keys must not be empty"},
    {"/linux", "[]", ".linux: must be an object"},
    {"/linux/namespaces", R"([{"type": "pid"}, {"type": "mount"}, {"type": "foo"}])",
     ".linux.namespaces[2].type: unknown namespace type \"foo\""},
    {"/linux/namespaces", R"([{"type": "pid"}, {"type": "pid"}])",
     ".linux.namespaces[1].type: duplicate namespace type \"pid\""},
    {"/linux/namespaces", R"([{"type": "network", "path": "netns/x"}])",
     ".linux.namespaces[0].path: must be an absolute path"},
    {"/linux/namespaces", R"([{"path": "/proc/1/ns/pid"}])", ".linux.namespaces[0].type: required"},
    {"/linux/uidMappings", R"([{"containerID": 0, "hostID": 1000, "size": 1}])",
     ".linux.uidMappings: given without a user namespace"},
    {"/linux",
     R"({"namespaces": [{"type": "user"}], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})",
     ".linux.gidMappings: required"},
    {"/linux",
     R"({"namespaces": [{"type": "user"}], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 0}]})",
     ".linux.uidMappings[0].size: must be an integer from 1 to 4294967295"},
    {"/linux",
     R"({"namespaces": [{"type": "user"}], "gidMappings": [{"containerID": 0, "size": 1}]})",
     ".linux.gidMappings[0].hostID: required"},
    {"/linux/devices", R"([{"path": "dev/null", "type": "c", "major": 1, "minor": 3}])",
     ".linux.devices[0].path: must be an absolute path"},
    {"/linux/devices", R"([{"path": "/dev/x", "type": "x", "major": 1, "minor": 3}])",
     ".linux.devices[0].type: unknown device type \"x\""},
    {"/linux/devices", R"([{"path": "/dev/x", "type": "c", "minor": 3}])",
     ".linux.devices[0].major: required"},
    {"/linux/devices", R"([{"path": "/dev/x", "type": "b", "major": 1, "minor": -3}])",
     ".linux.devices[0].minor: must be an integer"},
    {"/linux/devices",
     R"([{"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": 65536}])",
     ".linux.devices[0].fileMode: must be an integer from 0 to 4095"},
    {"/linux/cgroupsPath", "7", ".linux.cgroupsPath: must be a string"},
    {"/linux/resources", R"({"devices": [{"access": "rwm"}]})",
     ".linux.resources.devices[0].allow: required"},
    {"/linux/resources", R"({"devices": [{"allow": true, "access": "rwx"}]})",
     ".linux.resources.devices[0].access: must be a non-empty combination"},
    {"/linux/resources", R"({"devices": [{"allow": true, "type": "p"}]})",
     ".linux.resources.devices[0].type: unknown device type \"p\""},
    {"/linux/resources", R"({"devices": [{"allow": true, "major": -2}]})",
     ".linux.resources.devices[0].major: must be an integer from -1 to"},
    {"/linux/resources", R"({"memory": {"swappiness": 101}})",
     ".linux.resources.memory.swappiness: must be an integer from 0 to 100"},
    {"/linux/resources", R"({"memory": {"limit": "1G"}})", ".linux.resources.memory.limit: "},
    {"/linux/resources", R"({"memory": {"disableOOMKiller": 1}})",
     ".linux.resources.memory.disableOOMKiller: must be a boolean"},
    {"/linux/resources", R"({"cpu": {"shares": -1}})", ".linux.resources.cpu.shares: "},
    {"/linux/resources", R"({"cpu": {"cpus": 3}})", ".linux.resources.cpu.cpus: must be a string"},
    {"/linux/resources", R"({"pids": {"limit": 1.5}})", ".linux.resources.pids.limit: "},
    {"/linux/resources", R"({"blockIO": {"weight": 5}})",
     ".linux.resources.blockIO.weight: must be an integer from 10 to 1000"},
    {"/linux/resources",
     R"({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 2000}]}})",
     ".linux.resources.blockIO.weightDevice[0].weight: "},
    {"/linux/resources", R"({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}})",
     ".linux.resources.blockIO.throttleReadBpsDevice[0].rate: required"},
    {"/linux/resources", R"({"blockIO": {"throttleWriteIOPSDevice": [{"minor": 0, "rate": 1}]}})",
     ".linux.resources.blockIO.throttleWriteIOPSDevice[0].major: required"},
    {"/linux/resources", R"({"hugepageLimits": [{"pageSize": "2MB", "limit": -1}]})",
     ".linux.resources.hugepageLimits[0].limit: "},
    {"/linux/resources", R"({"hugepageLimits": [{"limit": 1}]})",
     ".linux.resources.hugepageLimits[0].pageSize: required"},
    {"/linux/resources", R"({"unified": {"memory.max": 5}})",
     ".linux.resources.unified[\"memory.max\"]: must be a string"},
    {"/linux/sysctl", R"({"a": 1})", ".linux.sysctl.a: must be a string"},
    {"/linux/sysctl", R"(["net.ipv4.ip_forward=1"])",
     ".linux.sysctl: must be an object of strings"},
    {"/linux/seccomp", R"({"syscalls": []})", ".linux.seccomp.defaultAction: required"},
    {"/linux/seccomp", R"({"defaultAction": "SCMP_ACT_NOPE"})",
     ".linux.seccomp.defaultAction: unknown seccomp action \"SCMP_ACT_NOPE\""},
    {"/linux/seccomp", R"({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})",
     ".linux.seccomp.defaultErrnoRet: only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"},
    {"/linux/seccomp", R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86"]})",
     ".linux.seccomp.architectures[0]: unknown seccomp architecture"},
    {"/linux/seccomp", R"({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["FOO"]})",
     ".linux.seccomp.flags[0]: unknown seccomp flag"},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]})",
     ".linux.seccomp.syscalls[0].names: must be a non-empty array of strings"},
    {"/linux/seccomp", R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]})",
     ".linux.seccomp.syscalls[0].action: required"},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
     ".linux.seccomp.syscalls[0].args[0].index: must be an integer from 0 to 5"},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_XX"}]}]})",
     ".linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator \"SCMP_CMP_XX\""},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "op": "SCMP_CMP_EQ"}]}]})",
     ".linux.seccomp.syscalls[0].args[0].value: required"},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})",
     ".linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY requires .linux.seccomp.listenerPath"},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]})",
     ".linux.seccomp.syscalls[0].errnoRet: only allowed with"},
    {"/linux/rootfsPropagation", R"("weird")",
     ".linux.rootfsPropagation: unknown rootfs propagation \"weird\""},
    {"/linux/maskedPaths", R"(["/proc/kcore", "proc"])",
     ".linux.maskedPaths[1]: must be an absolute"},
    {"/linux/readonlyPaths", R"("/proc/sys")", ".linux.readonlyPaths: must be an array of strings"},
    {"/linux/mountLabel", "false", ".linux.mountLabel: must be a string"},
    {"/linux/intelRdt", R"({"closID": "x"})", ".linux.intelRdt: not supported by hv"},
    {"/linux/personality", R"({"domain": "LINUX32"})", ".linux.personality: not supported by hv"},
    {"", "[]", "config.json: .: must be an object"},
};

TEST(OciConfig, TimeOffsetsNeedANewTimeNamespace) {
  json doc = minimal_config();
  doc["linux"]["timeOffsets"] = {{"boottime", {{"secs", 86400}}},
                                 {"monotonic", {{"secs", -5}, {"nanosecs", 250}}}};
  auto refused = parse_oci_config(doc.dump());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find(".linux.timeOffsets: given without a new time namespace"),
            std::string::npos)
      << refused.error().message;

  doc["linux"]["namespaces"].push_back({{"type", "time"}});
  auto parsed = parse_oci_config(doc.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  EXPECT_EQ(parsed->linux.time_offsets.at("boottime").secs, 86400);
  EXPECT_EQ(parsed->linux.time_offsets.at("monotonic").secs, -5);
  EXPECT_EQ(parsed->linux.time_offsets.at("monotonic").nanosecs, 250u);

  for (auto [offsets, expected] : std::initializer_list<std::pair<json, const char*>>{
           {{{"realtime", {{"secs", 1}}}}, ".linux.timeOffsets.realtime: unknown clock"},
           {{{"boottime", {{"nanosecs", 1000000000}}}},
            ".linux.timeOffsets.boottime.nanosecs: must be an integer from 0 to 999999999"},
           {{{"boottime", {{"secs", "1"}}}}, ".linux.timeOffsets.boottime.secs: must be"}}) {
    doc["linux"]["timeOffsets"] = offsets;
    auto bad = parse_oci_config(doc.dump());
    ASSERT_FALSE(bad.ok()) << expected;
    EXPECT_NE(bad.error().message.find(expected), std::string::npos) << bad.error().message;
  }
}

TEST(OciConfig, MalformedDocumentsNameThePath) {
  EXPECT_GE(std::size(kBadCases), 40u);
  for (const BadCase& bad : kBadCases) {
    json doc = minimal_config();
    const json::json_pointer pointer(bad.pointer);
    if (bad.value == nullptr) {
      doc[pointer.parent_pointer()].erase(pointer.back());
    } else {
      doc[pointer] = json::parse(bad.value);
    }
    const std::string text = doc.dump();
    SCOPED_TRACE(text);
    auto parsed = parse_oci_config(text);
    ASSERT_FALSE(parsed.ok()) << bad.expected;
    EXPECT_EQ(parsed.error().status, ExitStatus::BadConfig);
    const std::string& message = parsed.error().message;
    EXPECT_TRUE(message.starts_with("config.json: .")) << message;
    EXPECT_NE(message.find(bad.expected), std::string::npos)
        << "expected: " << bad.expected << "\n     got: " << message;
  }
}

TEST(OciConfig, SyntaxErrorsNameTheOffset) {
  struct Syntax {
    std::string text;
    std::string expected;
  };
  const std::vector<Syntax> cases = {
      {"{\"ociVersion\": }", "invalid JSON at byte 15 (line 1, column 16)"},
      {"{\n  \"a\": 1,\n  \"b\": tru\n}", "(line 3, column "},
      {"", "invalid JSON at byte 0 (line 1, column 1)"},
      {"{\"ociVersion\": \"1.0\"", "invalid JSON at byte"},
      {"{\"ociVersion\": \"\xff\"}", "invalid JSON at byte"},
      {"{\"a\": 1e999}", "invalid JSON: number overflow"},
      {"{} trailing", "invalid JSON at byte"},
  };
  for (const Syntax& c : cases) {
    auto parsed = parse_oci_config(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.error().status, ExitStatus::BadConfig);
    EXPECT_TRUE(parsed.error().message.starts_with("config.json: invalid JSON"))
        << parsed.error().message;
    EXPECT_NE(parsed.error().message.find(c.expected), std::string::npos)
        << "expected: " << c.expected << "\n     got: " << parsed.error().message;
  }
}

TEST(OciConfig, MissingBundleConfigIsFileMissing) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto loaded = load_oci_bundle_config(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().status, ExitStatus::FileMissing);
  EXPECT_NE(loaded.error().to_string().find(dir.path() + "/config.json"), std::string::npos)
      << loaded.error().to_string();
}

TEST(OciConfig, BundleRootResolvesAgainstTheBundle) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  json doc = minimal_config();
  doc["root"]["path"] = "./rootfs/";
  dir.write("config.json", doc.dump());
  auto loaded = load_oci_bundle_config(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  const std::string expected =
      (std::filesystem::absolute(dir.path()) / "rootfs").lexically_normal().string();
  EXPECT_EQ(loaded->root.path, expected);
  EXPECT_TRUE(loaded->root.path.starts_with("/"));

  // An absolute root stays as it is.
  doc["root"]["path"] = "/srv/rootfs";
  dir.write("config.json", doc.dump());
  loaded = load_oci_bundle_config(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  EXPECT_EQ(loaded->root.path, "/srv/rootfs");
}

TEST(OciConfig, BundleRequiresProcessAndRoot) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  json doc = minimal_config();
  doc.erase("process");
  dir.write("config.json", doc.dump());
  auto loaded = load_oci_bundle_config(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().status, ExitStatus::BadConfig);
  EXPECT_EQ(loaded.error().message, "config.json: .process: required");

  doc = minimal_config();
  doc.erase("root");
  dir.write("config.json", doc.dump());
  loaded = load_oci_bundle_config(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message, "config.json: .root: required");

  dir.write("config.json", "{\"ociVersion\": 3}");
  loaded = load_oci_bundle_config(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().status, ExitStatus::BadConfig);
}

}  // namespace
}  // namespace hv::container
