// linux.resources.devices on cgroup v2, where there is no devices.allow/deny file: the rules
// become an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup,
// which the kernel runs on every open and mknod of a device node by a process in it.
//
// Semantics are those of the v1 controller the rules were written for, as runc and crun emulate
// them: a new cgroup allows everything; rules apply in order, each later one overriding the
// earlier ones where they overlap, so the program tests them last to first and the first match
// decides. A rule matches when its type is 'a' or the device's, its major and minor are absent
// (*) or equal, and the access asked for (any of read, write, mknod) is within its access.
#pragma once

#include <linux/bpf.h>

#include <span>
#include <vector>

#include "common/error.hpp"
#include "container/oci_spec.hpp"

namespace hv::container {

std::vector<bpf_insn> compile_device_filter(const std::vector<oci::DeviceRule>& rules);

// Loads the program and attaches it to the cgroup v2 directory `cgroup_dir_fd` (alongside any
// program a parent or an earlier call attached: the kernel asks them all and denies if any does).
// The attachment lives as long as the cgroup.
Status attach_device_filter(int cgroup_dir_fd, std::span<const bpf_insn> program);

}  // namespace hv::container
