// The container process's security settings, applied by its init process after fork/clone and
// just before execve (single-threaded; these functions may allocate): the seccomp filter
// (libseccomp), the user, groups and capability sets (libcap), rlimits, no_new_privs,
// oom_score_adj and the namespaced sysctls. Invalid requests fail with ExitStatus::BadConfig,
// failing system calls with ExitStatus::HostError.
//
// The order is the caller's (runtime.cpp), as in runc: rlimits, oom_score_adj, then seccomp
// before apply_user_and_capabilities() when no_new_privileges is false (loading a filter without
// no_new_privs needs CAP_SYS_ADMIN), else set_no_new_privileges() and seccomp last.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "container/oci_spec.hpp"

namespace hv::container {

// A seccomp filter compiled from the OCI spec's linux.seccomp, not yet loaded.
//
// Like runc:
//  - syscall names unknown to libseccomp are skipped (see unknown_syscalls());
//  - a rule whose action equals the default action is skipped (libseccomp refuses it);
//  - SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD; SCMP_ACT_ERRNO and SCMP_ACT_TRACE return errnoRet,
//    or EPERM when it is absent;
//  - when a rule has several conditions on the same argument index, libseccomp cannot AND them
//    in one rule, so every condition of that rule becomes a rule of its own: the rule matches when
//    ANY of its conditions holds (an OR, not the spec's AND). Rules whose conditions all name
//    different arguments keep the AND;
//  - the filter does not set no_new_privs on load (SCMP_FLTATR_CTL_NNP is off): the caller
//    decides with set_no_new_privileges().
// Unlike runc, syscalls unknown to the kernel get the default action, not ENOSYS.
class SeccompFilter {
 public:
  static Result<SeccompFilter> compile(const oci::Seccomp& spec);

  SeccompFilter(SeccompFilter&& other) noexcept;
  SeccompFilter& operator=(SeccompFilter&& other) noexcept;
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;
  ~SeccompFilter();

  // Installs the filter in the calling process (seccomp_load). If it has SCMP_ACT_NOTIFY rules,
  // the listener the kernel creates is closed again: those syscalls then fail with ENOSYS. Use
  // load_and_take_listener() to hand the listener to a supervisor instead.
  Status load();
  // Installs the filter and returns its notification listener (a close-on-exec descriptor the
  // caller owns), to send to the seccomp agent at linux.seccomp.listenerPath. Fails if the filter
  // has no SCMP_ACT_NOTIFY rule.
  Result<int> load_and_take_listener();

  // Syscall names from the spec that libseccomp does not know on this architecture, in spec
  // order without duplicates; they were left out of the filter. The caller may log them.
  const std::vector<std::string>& unknown_syscalls() const { return unknown_syscalls_; }
  bool uses_notify() const { return uses_notify_; }

 private:
  explicit SeccompFilter(void* ctx) : ctx_(ctx) {}
  Status load_filter();

  void* ctx_ = nullptr;  // scmp_filter_ctx
  bool uses_notify_ = false;
  std::vector<std::string> unknown_syscalls_;
};

// Switches to the spec's user and capability sets, in runc's order:
//   bounding set (PR_CAPBSET_DROP of everything not listed) → PR_SET_KEEPCAPS 1 →
//   setgroups(additionalGids), setresgid, setresuid → PR_SET_KEEPCAPS 0 →
//   effective/permitted/inheritable (cap_set_proc) → ambient (cleared, then PR_CAP_AMBIENT_RAISE)
// and finally the umask, if given. With no capabilities (nullopt) the capability sets are left
// as they are, apart from what setresuid itself does to them. Capability names must be "CAP_..."
// names libcap knows (else BadConfig); those this kernel does not know (above
// /proc/sys/kernel/cap_last_cap) are skipped. Where the user namespace denies setgroups, the
// supplementary groups are left alone, and asking for additionalGids is an error (EPERM).
Status apply_user_and_capabilities(const oci::User& user,
                                   const std::optional<oci::Capabilities>& capabilities);

// setrlimit for each entry; types are "RLIMIT_NOFILE" ... (unknown type or soft > hard:
// BadConfig). UINT64_MAX is RLIM_INFINITY.
Status apply_rlimits(const std::vector<oci::Rlimit>& rlimits);

// prctl(PR_SET_NO_NEW_PRIVS, 1).
Status set_no_new_privileges();

// Linux security module labels: a process that asked for confinement must not run unconfined,
// so a label the host cannot apply (its LSM is not enabled; SELinux mount labels, which hv does
// not implement) is refused (BadConfig) before anything is created.
Status check_security_labels(const oci::Process& process, const std::string& mount_label);
// In the container's init or exec'd process, before exec: the AppArmor profile and SELinux
// label the program runs under once exec'd (/proc/thread-self/attr/.../exec).
Status apply_security_labels(const oci::Process& process);

// Writes /proc/self/oom_score_adj (-1000..1000, else BadConfig).
Status set_oom_score_adj(int score);

// Checks the keys of linux.sysctl without writing anything: each key must be dot-separated
// non-empty components without "/" (BadConfig otherwise), and name a namespaced sysctl:
// kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.shmall, kernel.shmmax,
// kernel.shmmni, kernel.shm_rmid_forced, fs.mqueue.* (IPC namespace) or net.* (only with the
// container's own network namespace, as runc). kernel.hostname and kernel.domainname are refused:
// the spec's hostname and domainname fields set them.
Status validate_sysctl(const std::map<std::string, std::string>& sysctl,
                       bool has_own_network_namespace);

// validate_sysctl(), then writes each value to /proc/sys/<key with dots turned to slashes>.
// Nothing is written if any key is invalid. The caller must have made the IPC namespace its own
// before (runc refuses IPC sysctls in the host's IPC namespace); runtime.cpp passes only the
// network namespace flag.
Status apply_sysctl(const std::map<std::string, std::string>& sysctl,
                    bool has_own_network_namespace);

}  // namespace hv::container
