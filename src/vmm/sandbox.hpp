// Confines the VMM process before it runs guest code, as Firecracker's jailer and its per-thread
// seccomp filters do, but inside the process: a private mount namespace whose root is a fresh
// tmpfs holding only the device nodes and directories the VMM still needs, no capabilities,
// no_new_privs, and a seccomp allow-list for the whole process (the "vmm" role) that every thread
// narrows further to what its job needs (vCPU, I/O, console, timer). A guest that exploits a
// device-model bug lands in a process that can open almost nothing, see almost nothing of the
// host's files, and make only the system calls the VMM makes anyway. docs/security.md has the
// threat model; the syscall lists are in sandbox.cpp (role_syscalls).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace hv {

// What the jail must contain: everything else of the host's file systems disappears.
struct SandboxPlan {
  // Device nodes bound at the same path in the jail: /dev/kvm for the KVM engine (reopened on
  // every boot, reboots included), /dev/net/tun with network cards. /dev/null and /dev/urandom
  // are always there.
  std::vector<std::string> devices;
  // Directories bound read-write at the same absolute path (the supervisor's state directory).
  std::vector<std::string> writable_dirs;
  // Regular files bound read-write at the same path, created empty first if missing (the
  // emulator's --trace and --profile files, which are opened on every boot).
  std::vector<std::string> writable_files;
  // Paths whose existence (only) the VMM tests after confinement: an empty directory stands in
  // for each that exists on the host (/sys/module/kvm_pvm, which the KVM engine probes).
  std::vector<std::string> existence_probes;
};

// Enters the sandbox: the mount jail, then capabilities and no_new_privs, then the process-wide
// seccomp filter (SCMP_FLTATR_CTL_TSYNC: every thread, even one already running). Call before
// any guest code runs. Irreversible; on error the process may be half-confined and should not
// go on to run a guest. Errors name the step: "sandbox: cannot unshare the mount namespace: ...".
Status enter_sandbox(const SandboxPlan& plan);

// Whether enter_sandbox succeeded in this process: thread functions then confine themselves.
bool sandbox_active();

// What a thread does, and so which syscalls it may make on top of the process filter.
// ConsoleRelay: the supervisor's console relay in a managed guest's VMM (supervisor/
// console_relay.hpp): the guest's output to a log and one client socket, the client's input back.
enum class ThreadRole { Vmm, Vcpu, Io, Console, Timer, ConsoleRelay };

std::string_view thread_role_name(ThreadRole role);

// The allow-list of a role, by syscall name (tests and docs/security.md list them). ioctl is
// further restricted by request number: role_ioctls names the requests allowed. Besides these,
// clone is allowed only for threads (CLONE_THREAD), tgkill only towards this process, mmap and
// mprotect only without PROT_EXEC, prctl only for PR_SET_NAME; clone3 fails with ENOSYS (glibc
// then uses clone). Anything else kills the process (SCMP_ACT_KILL_PROCESS).
std::vector<std::string> role_syscalls(ThreadRole role);
std::vector<std::string> role_ioctls(ThreadRole role);

// Installs the role's filter on the calling thread only (no TSYNC), stacked on the process
// filter: the thread can then make only the syscalls both allow. Needs no_new_privs (set by
// enter_sandbox) or CAP_SYS_ADMIN.
Status install_thread_filter(ThreadRole role);

// The first thing a thread function does: when the sandbox is active, installs the role's filter;
// a thread that cannot confine itself ends the process (it must not go on unconfined).
void confine_this_thread(ThreadRole role);

}  // namespace hv
