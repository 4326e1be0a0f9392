#include "container/process_security.hpp"

#include <fcntl.h>
#include <grp.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fd.hpp"

namespace hv::container {
namespace {

// libseccomp returns negative errno values.
Error seccomp_error(int rc, std::string what, ExitStatus status = ExitStatus::HostError) {
  return Error{std::move(what), -rc, status};
}

std::string_view action_name(oci::SeccompAction action) {
  switch (action) {
    case oci::SeccompAction::Kill:
      return "SCMP_ACT_KILL";
    case oci::SeccompAction::KillProcess:
      return "SCMP_ACT_KILL_PROCESS";
    case oci::SeccompAction::KillThread:
      return "SCMP_ACT_KILL_THREAD";
    case oci::SeccompAction::Trap:
      return "SCMP_ACT_TRAP";
    case oci::SeccompAction::Errno:
      return "SCMP_ACT_ERRNO";
    case oci::SeccompAction::Trace:
      return "SCMP_ACT_TRACE";
    case oci::SeccompAction::Allow:
      return "SCMP_ACT_ALLOW";
    case oci::SeccompAction::Log:
      return "SCMP_ACT_LOG";
    case oci::SeccompAction::Notify:
      return "SCMP_ACT_NOTIFY";
  }
  return "unknown action";
}

Result<uint32_t> to_scmp_action(oci::SeccompAction action, std::optional<uint32_t> errno_ret) {
  if (errno_ret && *errno_ret > 0xffff) {
    return make_error(ExitStatus::BadConfig, "seccomp errnoRet {} is out of range (0..65535)",
                      *errno_ret);
  }
  // ERRNO and TRACE return EPERM when errnoRet is absent, as runc does.
  const uint32_t ret = errno_ret.value_or(EPERM);
  switch (action) {
    case oci::SeccompAction::Kill:
    case oci::SeccompAction::KillThread:
      return uint32_t{SCMP_ACT_KILL_THREAD};
    case oci::SeccompAction::KillProcess:
      return uint32_t{SCMP_ACT_KILL_PROCESS};
    case oci::SeccompAction::Trap:
      return uint32_t{SCMP_ACT_TRAP};
    case oci::SeccompAction::Errno:
      return uint32_t{SCMP_ACT_ERRNO(ret)};
    case oci::SeccompAction::Trace:
      return uint32_t{SCMP_ACT_TRACE(ret)};
    case oci::SeccompAction::Allow:
      return uint32_t{SCMP_ACT_ALLOW};
    case oci::SeccompAction::Log:
      return uint32_t{SCMP_ACT_LOG};
    case oci::SeccompAction::Notify:
      return uint32_t{SCMP_ACT_NOTIFY};
  }
  return make_error(ExitStatus::BadConfig, "unknown seccomp action {}", static_cast<int>(action));
}

Result<scmp_compare> to_scmp_compare(oci::SeccompOperator op) {
  switch (op) {
    case oci::SeccompOperator::NotEqual:
      return SCMP_CMP_NE;
    case oci::SeccompOperator::LessThan:
      return SCMP_CMP_LT;
    case oci::SeccompOperator::LessEqual:
      return SCMP_CMP_LE;
    case oci::SeccompOperator::EqualTo:
      return SCMP_CMP_EQ;
    case oci::SeccompOperator::GreaterEqual:
      return SCMP_CMP_GE;
    case oci::SeccompOperator::GreaterThan:
      return SCMP_CMP_GT;
    case oci::SeccompOperator::MaskedEqual:
      return SCMP_CMP_MASKED_EQ;
  }
  return make_error(ExitStatus::BadConfig, "unknown seccomp operator {}", static_cast<int>(op));
}

// "SCMP_ARCH_X86_64" -> libseccomp's token for "x86_64".
Result<uint32_t> resolve_arch(const std::string& name) {
  constexpr std::string_view kPrefix = "SCMP_ARCH_";
  if (!name.starts_with(kPrefix) || name.size() == kPrefix.size()) {
    return make_error(ExitStatus::BadConfig, "unknown seccomp architecture \"{}\"", name);
  }
  std::string lower = name.substr(kPrefix.size());
  std::ranges::transform(lower, lower.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const uint32_t arch =
      lower == "native" ? seccomp_arch_native() : seccomp_arch_resolve_name(lower.c_str());
  if (arch == 0) {
    return make_error(ExitStatus::BadConfig, "unknown seccomp architecture \"{}\"", name);
  }
  return arch;
}

Result<scmp_filter_attr> resolve_flag(const std::string& flag) {
  if (flag == "SECCOMP_FILTER_FLAG_TSYNC") {
    return SCMP_FLTATR_CTL_TSYNC;
  }
  if (flag == "SECCOMP_FILTER_FLAG_LOG") {
    return SCMP_FLTATR_CTL_LOG;
  }
  if (flag == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") {
    return SCMP_FLTATR_CTL_SSB;
  }
  if (flag == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") {
    return make_error(ExitStatus::BadConfig, "seccomp flag {} is not supported by libseccomp 2.5",
                      flag);
  }
  return make_error(ExitStatus::BadConfig, "unknown seccomp flag \"{}\"", flag);
}

// Adds one libseccomp rule: exact when the syscall and conditions translate exactly on every
// architecture of the filter, else with libseccomp's rewriting (socketcall multiplexing on x86,
// syscalls some of the filter's architectures lack).
Status add_rule(scmp_filter_ctx ctx, uint32_t action, std::string_view action_label, int nr,
                const std::string& name, const std::vector<scmp_arg_cmp>& conditions) {
  const auto count = static_cast<unsigned>(conditions.size());
  const scmp_arg_cmp* data = conditions.empty() ? nullptr : conditions.data();
  if (seccomp_rule_add_exact_array(ctx, action, nr, count, data) == 0) {
    return {};
  }
  const int rc = seccomp_rule_add_array(ctx, action, nr, count, data);
  if (rc != 0) {
    return seccomp_error(
        rc, fmt::format("cannot add the seccomp rule {} for syscall {}", action_label, name),
        ExitStatus::BadConfig);
  }
  return {};
}

}  // namespace

Result<SeccompFilter> SeccompFilter::compile(const oci::Seccomp& spec) {
  if (spec.default_action == oci::SeccompAction::Notify) {
    return make_error(ExitStatus::BadConfig,
                      "SCMP_ACT_NOTIFY cannot be the default seccomp action");
  }
  const uint32_t default_action =
      HV_TRY(to_scmp_action(spec.default_action, spec.default_errno_ret));
  scmp_filter_ctx ctx = seccomp_init(default_action);
  if (ctx == nullptr) {
    return make_error(ExitStatus::HostError, "cannot create the seccomp filter (seccomp_init)");
  }
  SeccompFilter filter(ctx);

  // The caller sets no_new_privs itself (process.noNewPrivileges); libseccomp would set it on load.
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc != 0) {
    return seccomp_error(rc, "cannot clear the seccomp filter's no_new_privs attribute");
  }
  // Report the kernel's errno from seccomp_load rather than libseccomp's summary (ECANCELED).
  // Not fatal: only error messages depend on it.
  (void)seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);

  for (const std::string& name : spec.architectures) {
    const uint32_t arch = HV_TRY(resolve_arch(name));
    rc = seccomp_arch_add(ctx, arch);
    if (rc != 0 && rc != -EEXIST) {  // the native architecture is already there
      return seccomp_error(rc, fmt::format("cannot add seccomp architecture {}", name));
    }
  }
  for (const std::string& flag : spec.flags) {
    const scmp_filter_attr attr = HV_TRY(resolve_flag(flag));
    rc = seccomp_attr_set(ctx, attr, 1);
    if (rc != 0) {
      return seccomp_error(rc, fmt::format("cannot set seccomp flag {}", flag));
    }
  }

  std::set<std::string> unknown_seen;
  for (const oci::SeccompRule& rule : spec.syscalls) {
    const uint32_t action = HV_TRY(to_scmp_action(rule.action, rule.errno_ret));
    std::vector<scmp_arg_cmp> conditions;
    std::array<int, 6> per_index{};
    bool repeated_index = false;
    for (const oci::SeccompArg& arg : rule.args) {
      if (arg.index > 5) {
        return make_error(ExitStatus::BadConfig, "seccomp argument index {} is out of range (0..5)",
                          arg.index);
      }
      const scmp_compare op = HV_TRY(to_scmp_compare(arg.op));
      repeated_index |= ++per_index[arg.index] > 1;
      conditions.push_back(scmp_arg_cmp{arg.index, op, arg.value, arg.value_two});
    }
    for (const std::string& name : rule.names) {
      if (rule.action == oci::SeccompAction::Notify && name == "write") {
        // The runtime reports to its parent with write() after the filter is loaded.
        return make_error(ExitStatus::BadConfig,
                          "SCMP_ACT_NOTIFY cannot be used for the write syscall");
      }
      const int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) {
        if (unknown_seen.insert(name).second) {
          filter.unknown_syscalls_.push_back(name);
        }
        continue;
      }
      if (action == default_action) {
        continue;  // libseccomp refuses a rule that repeats the default action
      }
      if (rule.action == oci::SeccompAction::Notify) {
        filter.uses_notify_ = true;
      }
      if (!repeated_index) {
        HV_TRY(add_rule(ctx, action, action_name(rule.action), nr, name, conditions));
        continue;
      }
      // libseccomp cannot AND two conditions on one argument: as runc does, each condition
      // becomes a rule of its own, so the rule matches when any of its conditions holds.
      for (const scmp_arg_cmp& condition : conditions) {
        HV_TRY(add_rule(ctx, action, action_name(rule.action), nr, name, {condition}));
      }
    }
  }
  return filter;
}

SeccompFilter::SeccompFilter(SeccompFilter&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)),
      uses_notify_(other.uses_notify_),
      unknown_syscalls_(std::move(other.unknown_syscalls_)) {}

SeccompFilter& SeccompFilter::operator=(SeccompFilter&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) {
      seccomp_release(ctx_);
    }
    ctx_ = std::exchange(other.ctx_, nullptr);
    uses_notify_ = other.uses_notify_;
    unknown_syscalls_ = std::move(other.unknown_syscalls_);
  }
  return *this;
}

SeccompFilter::~SeccompFilter() {
  if (ctx_ != nullptr) {
    seccomp_release(ctx_);
  }
}

Status SeccompFilter::load_filter() {
  if (ctx_ == nullptr) {
    return make_error(ExitStatus::HostError, "the seccomp filter was moved from");
  }
  const int rc = seccomp_load(ctx_);
  if (rc != 0) {
    return seccomp_error(rc, "cannot load the seccomp filter");
  }
  return {};
}

Status SeccompFilter::load() {
  HV_TRY(load_filter());
  if (uses_notify_) {
    // Nobody will answer: close the listener so that notified syscalls fail (ENOSYS) instead of
    // blocking, and the process cannot answer its own notifications.
    const int listener = seccomp_notify_fd(ctx_);
    if (listener >= 0) {
      ::close(listener);
    }
  }
  return {};
}

Result<int> SeccompFilter::load_and_take_listener() {
  if (!uses_notify_) {
    return make_error(ExitStatus::BadConfig,
                      "the seccomp filter has no SCMP_ACT_NOTIFY rule and so no listener");
  }
  HV_TRY(load_filter());
  const int listener = seccomp_notify_fd(ctx_);
  if (listener < 0) {
    return seccomp_error(listener, "cannot get the seccomp notification listener");
  }
  return listener;
}

// --- user and capabilities --------------------------------------------------------------------

namespace {

struct NamedCap {
  cap_value_t value;
  std::string name;
};

// The highest capability this kernel knows.
int kernel_last_cap() {
  Fd fd(::open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC));
  if (fd.valid()) {
    std::array<char, 16> buffer{};
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size() - 1);
    if (n > 0) {
      int value = 0;
      bool any = false;
      for (ssize_t i = 0; i < n && buffer[i] >= '0' && buffer[i] <= '9'; ++i) {
        value = value * 10 + (buffer[i] - '0');
        any = true;
      }
      if (any) {
        return value;
      }
    }
  }
  // No /proc: libcap probes the bounding set.
  return static_cast<int>(cap_max_bits()) - 1;
}

std::string cap_display_name(cap_value_t cap) {
  char* raw = cap_to_name(cap);
  if (raw == nullptr) {
    return fmt::format("capability {}", cap);
  }
  std::string name(raw);
  cap_free(raw);
  std::ranges::transform(name, name.begin(),
                         [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return name;
}

// "CAP_NET_RAW" ... -> numbers. Capabilities above `last_cap` are left out.
Result<std::vector<NamedCap>> parse_caps(const std::vector<std::string>& names, int last_cap,
                                         std::string_view set) {
  std::vector<NamedCap> caps;
  for (const std::string& name : names) {
    // cap_from_name also takes numbers and comma lists; the spec has single names only.
    const bool well_formed =
        name.starts_with("CAP_") && name.size() > 4 && std::ranges::all_of(name, [](char c) {
          return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        });
    cap_value_t value = 0;
    if (!well_formed || cap_from_name(name.c_str(), &value) != 0) {
      return make_error(ExitStatus::BadConfig, "unknown capability \"{}\" in the {} set", name,
                        set);
    }
    if (value > last_cap) {
      continue;  // this kernel does not have it (runc warns and goes on)
    }
    caps.push_back(NamedCap{value, name});
  }
  return caps;
}

bool contains(const std::vector<NamedCap>& caps, cap_value_t value) {
  return std::ranges::any_of(caps, [&](const NamedCap& cap) { return cap.value == value; });
}

// Whether this user namespace allows setgroups (/proc/self/setgroups is "deny" after a
// namespace's owner wrote it, and in unprivileged user namespaces before the gid map).
bool setgroups_allowed() {
  Fd fd(::open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return true;  // kernels before 3.19, or no /proc
  }
  std::array<char, 16> buffer{};
  const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size() - 1);
  return !(n >= 4 && std::string_view(buffer.data(), 4) == "deny");
}

Status set_groups_and_ids(const oci::User& user) {
  if (setgroups_allowed()) {
    std::vector<gid_t> groups(user.additional_gids.begin(), user.additional_gids.end());
    if (::setgroups(groups.size(), groups.empty() ? nullptr : groups.data()) != 0) {
      return Error::from_errno(
          fmt::format("cannot set the additional groups ({} groups)", groups.size()));
    }
  } else if (!user.additional_gids.empty()) {
    return Error{"cannot set the additional groups: setgroups is denied in this user namespace",
                 EPERM, ExitStatus::BadConfig};
  }
  if (::setresgid(user.gid, user.gid, user.gid) != 0) {
    return Error::from_errno(fmt::format("cannot set the group id to {}", user.gid));
  }
  if (::setresuid(user.uid, user.uid, user.uid) != 0) {
    return Error::from_errno(fmt::format("cannot set the user id to {}", user.uid));
  }
  return {};
}

Status set_capability_sets(const std::vector<NamedCap>& effective,
                           const std::vector<NamedCap>& permitted,
                           const std::vector<NamedCap>& inheritable) {
  cap_t caps = cap_init();  // all clear
  if (caps == nullptr) {
    return Error::from_errno("cannot allocate a capability set");
  }
  auto set = [&](const std::vector<NamedCap>& list, cap_flag_t flag) {
    for (const NamedCap& cap : list) {
      cap_value_t value = cap.value;
      if (cap_set_flag(caps, flag, 1, &value, CAP_SET) != 0) {
        return false;
      }
    }
    return true;
  };
  Status status;
  if (!set(effective, CAP_EFFECTIVE) || !set(permitted, CAP_PERMITTED) ||
      !set(inheritable, CAP_INHERITABLE)) {
    status = Error::from_errno("cannot build the capability sets");
  } else if (cap_set_proc(caps) != 0) {
    status = Error::from_errno("cannot set the effective, permitted and inheritable capabilities");
  }
  cap_free(caps);
  return status;
}

}  // namespace

Status apply_user_and_capabilities(const oci::User& user,
                                   const std::optional<oci::Capabilities>& capabilities) {
  if (!capabilities) {
    HV_TRY(set_groups_and_ids(user));
  } else {
    // Parse everything before changing anything.
    const int last_cap = kernel_last_cap();
    const auto bounding = HV_TRY(parse_caps(capabilities->bounding, last_cap, "bounding"));
    const auto effective = HV_TRY(parse_caps(capabilities->effective, last_cap, "effective"));
    const auto permitted = HV_TRY(parse_caps(capabilities->permitted, last_cap, "permitted"));
    const auto inheritable = HV_TRY(parse_caps(capabilities->inheritable, last_cap, "inheritable"));
    const auto ambient = HV_TRY(parse_caps(capabilities->ambient, last_cap, "ambient"));

    // The bounding set first: dropping needs CAP_SETPCAP, which setresuid may take away.
    for (cap_value_t cap = 0; cap <= last_cap; ++cap) {
      if (contains(bounding, cap) || ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1) {
        continue;
      }
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
        return Error::from_errno(
            fmt::format("cannot drop capability {} from the bounding set", cap_display_name(cap)));
      }
    }
    // Keep the permitted set across the change of user.
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
      return Error::from_errno("cannot set PR_SET_KEEPCAPS");
    }
    HV_TRY(set_groups_and_ids(user));
    if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
      return Error::from_errno("cannot clear PR_SET_KEEPCAPS");
    }
    HV_TRY(set_capability_sets(effective, permitted, inheritable));

    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && !ambient.empty()) {
      return Error::from_errno("cannot clear the ambient capabilities");
    }
    for (const NamedCap& cap : ambient) {
      if (!contains(permitted, cap.value) || !contains(inheritable, cap.value)) {
        return Error{fmt::format("cannot raise ambient capability {}: it must also be in the "
                                 "permitted and inheritable sets",
                                 cap.name),
                     EPERM, ExitStatus::BadConfig};
      }
      if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap.value, 0, 0) != 0) {
        return Error::from_errno(fmt::format("cannot raise ambient capability {}", cap.name));
      }
    }
  }
  if (user.umask) {
    ::umask(static_cast<mode_t>(*user.umask & 07777));
  }
  return {};
}

// --- rlimits, no_new_privs, oom_score_adj ------------------------------------------------------

Status apply_rlimits(const std::vector<oci::Rlimit>& rlimits) {
  static constexpr std::array<std::pair<std::string_view, int>, 16> kResources{{
      {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  }};
  // Check them all before setting any.
  std::vector<std::pair<int, rlimit>> resolved;
  for (const oci::Rlimit& limit : rlimits) {
    const auto* it = std::ranges::find_if(
        kResources, [&](const auto& entry) { return entry.first == limit.type; });
    if (it == kResources.end()) {
      return make_error(ExitStatus::BadConfig, "unknown rlimit type \"{}\"", limit.type);
    }
    if (limit.soft > limit.hard) {
      return make_error(ExitStatus::BadConfig,
                        "rlimit {}: the soft limit {} is above the hard limit {}", limit.type,
                        limit.soft, limit.hard);
    }
    // UINT64_MAX is RLIM_INFINITY.
    resolved.emplace_back(it->second,
                          rlimit{static_cast<rlim_t>(limit.soft), static_cast<rlim_t>(limit.hard)});
  }
  for (std::size_t i = 0; i < resolved.size(); ++i) {
    const auto& [resource, value] = resolved[i];
    if (::setrlimit(resource, &value) != 0) {
      return Error::from_errno(
          fmt::format("cannot set {} to {}/{}", rlimits[i].type, rlimits[i].soft, rlimits[i].hard));
    }
  }
  return {};
}

namespace {

bool apparmor_enabled() {
  std::ifstream in("/sys/module/apparmor/parameters/enabled");
  std::string value;
  return (in >> value) && value == "Y";
}

bool selinux_enabled() {
  return ::access("/sys/fs/selinux/enforce", F_OK) == 0;
}

Status write_exec_attribute(const std::vector<std::string>& paths, const std::string& value,
                            std::string_view what) {
  for (const std::string& path : paths) {
    Fd file(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!file.valid()) {
      continue;
    }
    if (::write(file.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
      return Error::from_errno(fmt::format("cannot apply the {} '{}'", what, value));
    }
    return {};
  }
  return Error::from_errno(
      fmt::format("cannot apply the {} '{}' (no {})", what, value, paths.front()));
}

}  // namespace

Status check_security_labels(const oci::Process& process, const std::string& mount_label) {
  if (!process.apparmor_profile.empty() && !apparmor_enabled()) {
    return make_error(ExitStatus::BadConfig,
                      "config.json: .process.apparmorProfile: AppArmor is not enabled on this "
                      "host, so the profile {} cannot confine the container",
                      process.apparmor_profile);
  }
  if (!process.selinux_label.empty() && !selinux_enabled()) {
    return make_error(ExitStatus::BadConfig,
                      "config.json: .process.selinuxLabel: SELinux is not enabled on this host");
  }
  if (!mount_label.empty()) {
    return make_error(ExitStatus::BadConfig,
                      "config.json: .linux.mountLabel: SELinux mount labels are not supported");
  }
  return {};
}

Status apply_security_labels(const oci::Process& process) {
  if (!process.apparmor_profile.empty()) {
    HV_TRY(write_exec_attribute(
        {"/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec"},
        "exec " + process.apparmor_profile, "AppArmor profile"));
  }
  if (!process.selinux_label.empty()) {
    HV_TRY(write_exec_attribute({"/proc/thread-self/attr/exec"}, process.selinux_label,
                                "SELinux label"));
  }
  return {};
}

Status set_no_new_privileges() {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return Error::from_errno("cannot set no_new_privs");
  }
  return {};
}

namespace {

Status write_file(const std::string& path, std::string_view value, std::string_view what) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    return Error::from_errno(fmt::format("cannot open {} to set {}", path, what));
  }
  const ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) {
    return Error::from_errno(fmt::format("cannot set {} to \"{}\"", what, value));
  }
  if (static_cast<std::size_t>(n) != value.size()) {
    return make_error(ExitStatus::HostError, "cannot set {} to \"{}\": short write", what, value);
  }
  return {};
}

}  // namespace

Status set_oom_score_adj(int score) {
  if (score < -1000 || score > 1000) {
    return make_error(ExitStatus::BadConfig, "oomScoreAdj {} is out of range (-1000..1000)", score);
  }
  return write_file("/proc/self/oom_score_adj", std::to_string(score), "oom_score_adj");
}

// --- sysctl -----------------------------------------------------------------------------------

Status validate_sysctl(const std::map<std::string, std::string>& sysctl,
                       bool has_own_network_namespace) {
  // The IPC namespace's sysctls; fs.mqueue.* and net.* are matched by prefix.
  static constexpr std::array<std::string_view, 8> kIpc{
      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
      "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
  for (const auto& [key, value] : sysctl) {
    (void)value;
    bool empty_component = key.empty() || key.front() == '.' || key.back() == '.' ||
                           key.find("..") != std::string::npos;
    if (empty_component || key.find('/') != std::string::npos) {
      return make_error(ExitStatus::BadConfig,
                        "invalid sysctl \"{}\": components must be non-empty and contain no '/'",
                        key);
    }
    if (key == "kernel.hostname" || key == "kernel.domainname") {
      return make_error(ExitStatus::BadConfig,
                        "sysctl {} is not allowed: set the hostname or domainname field instead",
                        key);
    }
    if (std::ranges::find(kIpc, key) != kIpc.end() || key.starts_with("fs.mqueue.")) {
      continue;
    }
    if (key.starts_with("net.")) {
      if (!has_own_network_namespace) {
        return make_error(ExitStatus::BadConfig,
                          "sysctl {} is not allowed in the host's network namespace", key);
      }
      continue;
    }
    return make_error(ExitStatus::BadConfig,
                      "sysctl {} is not namespaced and cannot be set in a container", key);
  }
  return {};
}

Status apply_sysctl(const std::map<std::string, std::string>& sysctl,
                    bool has_own_network_namespace) {
  HV_TRY(validate_sysctl(sysctl, has_own_network_namespace));
  for (const auto& [key, value] : sysctl) {
    std::string path = "/proc/sys/" + key;
    std::ranges::replace(path, '.', '/');
    HV_TRY(write_file(path, value, fmt::format("sysctl {}", key)));
  }
  return {};
}

}  // namespace hv::container
