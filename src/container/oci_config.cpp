#include "container/oci_config.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/file.hpp"

namespace hv::container {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Paths and errors. A path is built as jq writes it: ".process.args[0]", ".annotations["a.b"]".
// The document itself is the empty path, shown as ".".

bool is_identifier(std::string_view key) {
  if (key.empty()) {
    return false;
  }
  for (size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) {
      return false;
    }
  }
  return true;
}

// A string as a JSON literal, so that control characters in hostile input stay readable.
std::string json_quoted(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string member_path(const std::string& parent, std::string_view key) {
  if (is_identifier(key)) {
    return parent + "." + std::string(key);
  }
  return parent + "[" + json_quoted(key) + "]";
}

std::string index_path(const std::string& parent, size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

// HV_TRY for statements whose expression holds a lambda that itself uses HV_TRY: a second name
// keeps -Wshadow quiet about the nested hv_try_result_.
#define OCI_CHECK(expr)                                   \
  do {                                                    \
    if (Status oci_status_ = (expr); !oci_status_.ok()) { \
      return std::move(oci_status_).error();              \
    }                                                     \
  } while (0)

Error bad(const std::string& path, std::string_view what) {
  const bool needs_dot = path.empty() || path.front() == '[';
  return Error{fmt::format("config.json: {}{}: {}", needs_dot ? "." : "", path, what), 0,
               ExitStatus::BadConfig};
}

// ---------------------------------------------------------------------------------------------
// Readers for single values. Each checks the JSON type (and range) and names `path` on failure.

Status read_bool(const json& v, const std::string& path, bool& out) {
  if (!v.is_boolean()) {
    return bad(path, "must be a boolean");
  }
  out = v.get<bool>();
  return {};
}

Status read_string(const json& v, const std::string& path, std::string& out) {
  if (!v.is_string()) {
    return bad(path, "must be a string");
  }
  out = v.get_ref<const std::string&>();
  return {};
}

Status read_nonempty_string(const json& v, const std::string& path, std::string& out) {
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
    return bad(path, "must be a non-empty string");
  }
  out = v.get_ref<const std::string&>();
  return {};
}

Status read_absolute_path(const json& v, const std::string& path, std::string& out) {
  if (!v.is_string()) {
    return bad(path, "must be a string");
  }
  const auto& s = v.get_ref<const std::string&>();
  if (s.empty() || s.front() != '/') {
    return bad(path, fmt::format("must be an absolute path, not {}", json_quoted(s)));
  }
  out = s;
  return {};
}

// An integer in [lo, hi]; fractions, exponents and numbers beyond 64 bits (which nlohmann stores
// as floating point) are rejected, as Go's encoding/json does for integer fields.
template <typename T>
Status read_int(const json& v, const std::string& path, T& out, std::type_identity_t<T> lo,
                std::type_identity_t<T> hi) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (std::cmp_greater_equal(u, lo) && std::cmp_less_equal(u, hi)) {
      out = static_cast<T>(u);
      return {};
    }
  } else if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if (std::cmp_greater_equal(i, lo) && std::cmp_less_equal(i, hi)) {
      out = static_cast<T>(i);
      return {};
    }
  }
  return bad(path, fmt::format("must be an integer from {} to {}", lo, hi));
}

// KEY=value with a non-empty KEY (process.env, hooks[].env).
Status check_env(const std::string& s, const std::string& path) {
  const size_t eq = s.find('=');
  if (eq == std::string::npos || eq == 0) {
    return bad(path,
               fmt::format("must be \"KEY=value\" with a non-empty KEY, not {}", json_quoted(s)));
  }
  return {};
}

Status check_absolute(const std::string& s, const std::string& path) {
  if (s.empty() || s.front() != '/') {
    return bad(path, fmt::format("must be an absolute path, not {}", json_quoted(s)));
  }
  return {};
}

Status check_nonempty(const std::string& s, const std::string& path) {
  if (s.empty()) {
    return bad(path, "must be a non-empty string");
  }
  return {};
}

struct NoCheck {
  Status operator()(const std::string&, const std::string&) const { return {}; }
};

// An array of strings; `check` validates each element (its own path names the index).
template <typename Check = NoCheck>
Status read_strings(const json& v, const std::string& path, std::vector<std::string>& out,
                    Check check = {}) {
  if (!v.is_array()) {
    return bad(path, "must be an array of strings");
  }
  std::vector<std::string> result;
  result.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string item_path = index_path(path, i);
    std::string s;
    HV_TRY(read_string(v[i], item_path, s));
    HV_TRY(check(s, item_path));
    result.push_back(std::move(s));
  }
  out = std::move(result);
  return {};
}

// An object whose members are all strings (annotations, sysctl, unified).
Status read_string_map(const json& v, const std::string& path,
                       std::map<std::string, std::string>& out, bool nonempty_keys) {
  if (!v.is_object()) {
    return bad(path, "must be an object of strings");
  }
  std::map<std::string, std::string> result;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string item_path = member_path(path, it.key());
    if (nonempty_keys && it.key().empty()) {
      return bad(item_path, "keys must not be empty");
    }
    std::string s;
    HV_TRY(read_string(it.value(), item_path, s));
    result.emplace(it.key(), std::move(s));
  }
  out = std::move(result);
  return {};
}

// ---------------------------------------------------------------------------------------------
// An object being read: member lookup (null counts as absent) and typed field readers.

class Object {
 public:
  Object(const json& value, std::string path) : value_(&value), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  std::string at(std::string_view key) const { return member_path(path_, key); }
  const json& value() const { return *value_; }

  const json* get(std::string_view key) const {
    const auto it = value_->find(std::string(key));
    if (it == value_->end() || it->is_null()) {
      return nullptr;
    }
    return &*it;
  }

 private:
  const json* value_;
  std::string path_;
};

Result<Object> as_object(const json& v, std::string path) {
  if (!v.is_object()) {
    return bad(path, "must be an object");
  }
  return Object(v, std::move(path));
}

enum class Need { Optional, Required };

// Calls fn(value, path) when the member is present; an absent required member is an error.
template <typename F>
Status field(const Object& o, std::string_view key, Need need, F&& fn) {
  const json* v = o.get(key);
  if (v == nullptr) {
    if (need == Need::Required) {
      return bad(o.at(key), "required");
    }
    return {};
  }
  return fn(*v, o.at(key));
}

Status get_bool(const Object& o, std::string_view key, bool& out) {
  return field(o, key, Need::Optional,
               [&](const json& v, const std::string& p) { return read_bool(v, p, out); });
}

Status get_bool(const Object& o, std::string_view key, std::optional<bool>& out) {
  return field(o, key, Need::Optional, [&](const json& v, const std::string& p) -> Status {
    bool b = false;
    HV_TRY(read_bool(v, p, b));
    out = b;
    return {};
  });
}

Status get_string(const Object& o, std::string_view key, std::string& out,
                  Need need = Need::Optional) {
  return field(o, key, need,
               [&](const json& v, const std::string& p) { return read_string(v, p, out); });
}

Status get_absolute_path(const Object& o, std::string_view key, std::string& out,
                         Need need = Need::Optional) {
  return field(o, key, need,
               [&](const json& v, const std::string& p) { return read_absolute_path(v, p, out); });
}

template <typename T>
Status get_int(const Object& o, std::string_view key, T& out, Need need = Need::Optional,
               std::type_identity_t<T> lo = std::numeric_limits<T>::min(),
               std::type_identity_t<T> hi = std::numeric_limits<T>::max()) {
  return field(o, key, need,
               [&](const json& v, const std::string& p) { return read_int(v, p, out, lo, hi); });
}

template <typename T>
Status get_int(const Object& o, std::string_view key, std::optional<T>& out,
               std::type_identity_t<T> lo = std::numeric_limits<T>::min(),
               std::type_identity_t<T> hi = std::numeric_limits<T>::max()) {
  return field(o, key, Need::Optional, [&](const json& v, const std::string& p) -> Status {
    T value{};
    HV_TRY(read_int(v, p, value, lo, hi));
    out = value;
    return {};
  });
}

template <typename Check = NoCheck>
Status get_strings(const Object& o, std::string_view key, std::vector<std::string>& out,
                   Check check = {}) {
  return field(o, key, Need::Optional,
               [&](const json& v, const std::string& p) { return read_strings(v, p, out, check); });
}

Status get_string_map(const Object& o, std::string_view key,
                      std::map<std::string, std::string>& out, bool nonempty_keys = false) {
  return field(o, key, Need::Optional, [&](const json& v, const std::string& p) {
    return read_string_map(v, p, out, nonempty_keys);
  });
}

// An array of objects: each(Object) -> Result<Item>, collected into `out`.
template <typename Item, typename F>
Status get_objects(const Object& o, std::string_view key, std::vector<Item>& out, F&& each,
                   Need need = Need::Optional) {
  return field(o, key, need, [&](const json& v, const std::string& p) -> Status {
    if (!v.is_array()) {
      return bad(p, "must be an array");
    }
    std::vector<Item> items;
    items.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const Object item = HV_TRY(as_object(v[i], index_path(p, i)));
      items.push_back(HV_TRY(each(item)));
    }
    out = std::move(items);
    return {};
  });
}

// A nested object: fn(Object) -> Status.
template <typename F>
Status get_object(const Object& o, std::string_view key, F&& fn, Need need = Need::Optional) {
  return field(o, key, need, [&](const json& v, const std::string& p) -> Status {
    const Object inner = HV_TRY(as_object(v, p));
    return fn(inner);
  });
}

// ---------------------------------------------------------------------------------------------
// Names the spec enumerates.

template <typename E>
struct Named {
  std::string_view name;
  E value;
};

template <typename E, size_t N>
Status read_enum(const json& v, const std::string& path, const std::array<Named<E>, N>& table,
                 std::string_view what, E& out) {
  if (!v.is_string()) {
    return bad(path, "must be a string");
  }
  const auto& s = v.get_ref<const std::string&>();
  for (const auto& entry : table) {
    if (entry.name == s) {
      out = entry.value;
      return {};
    }
  }
  return bad(path, fmt::format("unknown {} {}", what, json_quoted(s)));
}

template <size_t N>
bool known(const std::array<std::string_view, N>& table, std::string_view name) {
  return std::find(table.begin(), table.end(), name) != table.end();
}

// Linux capabilities 0 (CAP_CHOWN) .. 40 (CAP_CHECKPOINT_RESTORE).
constexpr std::array<std::string_view, 41> kCapabilities = {"CAP_CHOWN",
                                                            "CAP_DAC_OVERRIDE",
                                                            "CAP_DAC_READ_SEARCH",
                                                            "CAP_FOWNER",
                                                            "CAP_FSETID",
                                                            "CAP_KILL",
                                                            "CAP_SETGID",
                                                            "CAP_SETUID",
                                                            "CAP_SETPCAP",
                                                            "CAP_LINUX_IMMUTABLE",
                                                            "CAP_NET_BIND_SERVICE",
                                                            "CAP_NET_BROADCAST",
                                                            "CAP_NET_ADMIN",
                                                            "CAP_NET_RAW",
                                                            "CAP_IPC_LOCK",
                                                            "CAP_IPC_OWNER",
                                                            "CAP_SYS_MODULE",
                                                            "CAP_SYS_RAWIO",
                                                            "CAP_SYS_CHROOT",
                                                            "CAP_SYS_PTRACE",
                                                            "CAP_SYS_PACCT",
                                                            "CAP_SYS_ADMIN",
                                                            "CAP_SYS_BOOT",
                                                            "CAP_SYS_NICE",
                                                            "CAP_SYS_RESOURCE",
                                                            "CAP_SYS_TIME",
                                                            "CAP_SYS_TTY_CONFIG",
                                                            "CAP_MKNOD",
                                                            "CAP_LEASE",
                                                            "CAP_AUDIT_WRITE",
                                                            "CAP_AUDIT_CONTROL",
                                                            "CAP_SETFCAP",
                                                            "CAP_MAC_OVERRIDE",
                                                            "CAP_MAC_ADMIN",
                                                            "CAP_SYSLOG",
                                                            "CAP_WAKE_ALARM",
                                                            "CAP_BLOCK_SUSPEND",
                                                            "CAP_AUDIT_READ",
                                                            "CAP_PERFMON",
                                                            "CAP_BPF",
                                                            "CAP_CHECKPOINT_RESTORE"};

constexpr std::array<std::string_view, 16> kRlimits = {
    "RLIMIT_AS",     "RLIMIT_CORE",   "RLIMIT_CPU",        "RLIMIT_DATA",
    "RLIMIT_FSIZE",  "RLIMIT_LOCKS",  "RLIMIT_MEMLOCK",    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",   "RLIMIT_NOFILE", "RLIMIT_NPROC",      "RLIMIT_RSS",
    "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK"};

constexpr std::array<std::string_view, 23> kSeccompArchitectures = {
    "SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",     "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",    "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB"};

constexpr std::array<std::string_view, 4> kSeccompFlags = {
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};

using oci::NamespaceType;
constexpr std::array<Named<NamespaceType>, 8> kNamespaceTypes = {{
    {"pid", NamespaceType::Pid},
    {"network", NamespaceType::Network},
    {"mount", NamespaceType::Mount},
    {"ipc", NamespaceType::Ipc},
    {"uts", NamespaceType::Uts},
    {"user", NamespaceType::User},
    {"cgroup", NamespaceType::Cgroup},
    {"time", NamespaceType::Time},
}};

using oci::SeccompAction;
constexpr std::array<Named<SeccompAction>, 9> kSeccompActions = {{
    {"SCMP_ACT_KILL", SeccompAction::Kill},
    {"SCMP_ACT_KILL_PROCESS", SeccompAction::KillProcess},
    {"SCMP_ACT_KILL_THREAD", SeccompAction::KillThread},
    {"SCMP_ACT_TRAP", SeccompAction::Trap},
    {"SCMP_ACT_ERRNO", SeccompAction::Errno},
    {"SCMP_ACT_TRACE", SeccompAction::Trace},
    {"SCMP_ACT_ALLOW", SeccompAction::Allow},
    {"SCMP_ACT_LOG", SeccompAction::Log},
    {"SCMP_ACT_NOTIFY", SeccompAction::Notify},
}};

using oci::SeccompOperator;
constexpr std::array<Named<SeccompOperator>, 7> kSeccompOperators = {{
    {"SCMP_CMP_NE", SeccompOperator::NotEqual},
    {"SCMP_CMP_LT", SeccompOperator::LessThan},
    {"SCMP_CMP_LE", SeccompOperator::LessEqual},
    {"SCMP_CMP_EQ", SeccompOperator::EqualTo},
    {"SCMP_CMP_GE", SeccompOperator::GreaterEqual},
    {"SCMP_CMP_GT", SeccompOperator::GreaterThan},
    {"SCMP_CMP_MASKED_EQ", SeccompOperator::MaskedEqual},
}};

using oci::RootfsPropagation;
constexpr std::array<Named<RootfsPropagation>, 8> kPropagations = {{
    {"private", RootfsPropagation::Private},
    {"rprivate", RootfsPropagation::Private},
    {"slave", RootfsPropagation::Slave},
    {"rslave", RootfsPropagation::Slave},
    {"shared", RootfsPropagation::Shared},
    {"rshared", RootfsPropagation::Shared},
    {"unbindable", RootfsPropagation::Unbindable},
    {"runbindable", RootfsPropagation::Unbindable},
}};

std::string_view namespace_name(NamespaceType type) {
  for (const auto& entry : kNamespaceTypes) {
    if (entry.value == type) {
      return entry.name;
    }
  }
  return "?";
}

constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();

// ---------------------------------------------------------------------------------------------
// The document, section by section.

Status parse_root(const Object& o, oci::Root& root) {
  HV_TRY(field(o, "path", Need::Required, [&](const json& v, const std::string& p) {
    return read_nonempty_string(v, p, root.path);
  }));
  return get_bool(o, "readonly", root.readonly);
}

Result<oci::Mount> parse_mount(const Object& o) {
  oci::Mount m;
  HV_TRY(get_absolute_path(o, "destination", m.destination, Need::Required));
  HV_TRY(get_string(o, "type", m.type));
  HV_TRY(get_string(o, "source", m.source));
  HV_TRY(get_strings(o, "options", m.options));
  return m;
}

Status parse_user(const Object& o, oci::User& user) {
  HV_TRY(get_int(o, "uid", user.uid));
  HV_TRY(get_int(o, "gid", user.gid));
  HV_TRY(get_int<uint32_t>(o, "umask", user.umask, 0, 0777));
  return field(o, "additionalGids", Need::Optional,
               [&](const json& v, const std::string& p) -> Status {
                 if (!v.is_array()) {
                   return bad(p, "must be an array of integers");
                 }
                 std::vector<uint32_t> gids(v.size());
                 for (size_t i = 0; i < v.size(); ++i) {
                   HV_TRY(read_int(v[i], index_path(p, i), gids[i], 0, kU32Max));
                 }
                 user.additional_gids = std::move(gids);
                 return {};
               });
}

Status parse_capabilities(const Object& o, oci::Capabilities& caps) {
  const auto check = [](const std::string& s, const std::string& p) -> Status {
    if (!known(kCapabilities, s)) {
      return bad(p, fmt::format("unknown capability {}", json_quoted(s)));
    }
    return {};
  };
  HV_TRY(get_strings(o, "bounding", caps.bounding, check));
  HV_TRY(get_strings(o, "effective", caps.effective, check));
  HV_TRY(get_strings(o, "inheritable", caps.inheritable, check));
  HV_TRY(get_strings(o, "permitted", caps.permitted, check));
  return get_strings(o, "ambient", caps.ambient, check);
}

Result<oci::Rlimit> parse_rlimit(const Object& o) {
  oci::Rlimit r;
  OCI_CHECK(field(o, "type", Need::Required, [&](const json& v, const std::string& p) -> Status {
    HV_TRY(read_string(v, p, r.type));
    if (!known(kRlimits, r.type)) {
      return bad(p, fmt::format("unknown rlimit type {}", json_quoted(r.type)));
    }
    return {};
  }));
  HV_TRY(get_int(o, "hard", r.hard, Need::Required));
  HV_TRY(get_int(o, "soft", r.soft, Need::Required));
  if (r.soft > r.hard) {
    return bad(o.at("soft"), fmt::format("must not exceed hard ({} > {})", r.soft, r.hard));
  }
  return r;
}

Status parse_process(const Object& o, oci::Process& proc) {
  HV_TRY(get_bool(o, "terminal", proc.terminal));
  OCI_CHECK(get_object(o, "consoleSize", [&](const Object& c) -> Status {
    oci::ConsoleSize size;
    HV_TRY(get_int(c, "height", size.height, Need::Required));
    HV_TRY(get_int(c, "width", size.width, Need::Required));
    proc.console_size = size;
    return {};
  }));
  HV_TRY(get_object(o, "user", [&](const Object& u) { return parse_user(u, proc.user); }));
  HV_TRY(field(o, "args", Need::Required, [&](const json& v, const std::string& p) -> Status {
    if (!v.is_array() || v.empty()) {
      return bad(p, "must be a non-empty array of strings");
    }
    return read_strings(v, p, proc.args);
  }));
  HV_TRY(get_strings(o, "env", proc.env, check_env));
  HV_TRY(get_absolute_path(o, "cwd", proc.cwd, Need::Required));
  OCI_CHECK(get_object(o, "capabilities", [&](const Object& c) -> Status {
    oci::Capabilities caps;
    HV_TRY(parse_capabilities(c, caps));
    proc.capabilities = std::move(caps);
    return {};
  }));
  HV_TRY(get_objects(o, "rlimits", proc.rlimits, parse_rlimit));
  std::set<std::string> rlimit_types;
  for (size_t i = 0; i < proc.rlimits.size(); ++i) {
    if (!rlimit_types.insert(proc.rlimits[i].type).second) {
      return bad(index_path(o.at("rlimits"), i) + ".type",
                 fmt::format("duplicate rlimit type {}", json_quoted(proc.rlimits[i].type)));
    }
  }
  HV_TRY(get_bool(o, "noNewPrivileges", proc.no_new_privileges));
  HV_TRY(get_int<int>(o, "oomScoreAdj", proc.oom_score_adj, -1000, 1000));
  HV_TRY(get_string(o, "apparmorProfile", proc.apparmor_profile));
  return get_string(o, "selinuxLabel", proc.selinux_label);
}

Result<oci::Hook> parse_hook(const Object& o) {
  oci::Hook h;
  HV_TRY(get_absolute_path(o, "path", h.path, Need::Required));
  HV_TRY(get_strings(o, "args", h.args));
  HV_TRY(get_strings(o, "env", h.env, check_env));
  HV_TRY(get_int<int>(o, "timeout", h.timeout_seconds, 1, std::numeric_limits<int>::max()));
  return h;
}

Status parse_hooks(const Object& o, oci::Hooks& hooks) {
  HV_TRY(get_objects(o, "prestart", hooks.prestart, parse_hook));
  HV_TRY(get_objects(o, "createRuntime", hooks.create_runtime, parse_hook));
  HV_TRY(get_objects(o, "createContainer", hooks.create_container, parse_hook));
  HV_TRY(get_objects(o, "startContainer", hooks.start_container, parse_hook));
  HV_TRY(get_objects(o, "poststart", hooks.poststart, parse_hook));
  return get_objects(o, "poststop", hooks.poststop, parse_hook);
}

Result<oci::Namespace> parse_namespace(const Object& o) {
  oci::Namespace ns{};
  HV_TRY(field(o, "type", Need::Required, [&](const json& v, const std::string& p) {
    return read_enum(v, p, kNamespaceTypes, "namespace type", ns.type);
  }));
  OCI_CHECK(field(o, "path", Need::Optional, [&](const json& v, const std::string& p) -> Status {
    HV_TRY(read_string(v, p, ns.path));
    return ns.path.empty() ? Status() : check_absolute(ns.path, p);
  }));
  return ns;
}

Result<oci::IdMapping> parse_id_mapping(const Object& o) {
  oci::IdMapping m;
  HV_TRY(get_int(o, "containerID", m.container_id, Need::Required));
  HV_TRY(get_int(o, "hostID", m.host_id, Need::Required));
  HV_TRY(get_int(o, "size", m.size, Need::Required, 1, kU32Max));
  return m;
}

// A one-letter device type from `allowed` ("cbup" for nodes, "acb" for cgroup rules).
Status read_device_type(const json& v, const std::string& path, std::string_view allowed,
                        char& out) {
  if (!v.is_string()) {
    return bad(path, "must be a string");
  }
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() != 1 || allowed.find(s[0]) == std::string_view::npos) {
    std::string choices;
    for (char c : allowed) {
      choices += fmt::format("{}\"{}\"", choices.empty() ? "" : ", ", c);
    }
    return bad(path, fmt::format("unknown device type {} (one of {})", json_quoted(s), choices));
  }
  out = s[0];
  return {};
}

Result<oci::Device> parse_device(const Object& o) {
  oci::Device d;
  HV_TRY(get_absolute_path(o, "path", d.path, Need::Required));
  HV_TRY(field(o, "type", Need::Required, [&](const json& v, const std::string& p) {
    return read_device_type(v, p, "cbup", d.type);
  }));
  const Need numbers = d.type == 'p' ? Need::Optional : Need::Required;
  HV_TRY(get_int<int64_t>(o, "major", d.major, numbers, 0, kU32Max));
  HV_TRY(get_int<int64_t>(o, "minor", d.minor, numbers, 0, kU32Max));
  HV_TRY(get_int<uint32_t>(o, "fileMode", d.file_mode, 0, 07777));
  HV_TRY(get_int(o, "uid", d.uid));
  HV_TRY(get_int(o, "gid", d.gid));
  return d;
}

Result<oci::DeviceRule> parse_device_rule(const Object& o) {
  oci::DeviceRule r;
  HV_TRY(field(o, "allow", Need::Required,
               [&](const json& v, const std::string& p) { return read_bool(v, p, r.allow); }));
  HV_TRY(field(o, "type", Need::Optional, [&](const json& v, const std::string& p) {
    return read_device_type(v, p, "acb", r.type);
  }));
  // -1 is accepted as "any", as runc does.
  HV_TRY(get_int<int64_t>(o, "major", r.major, -1, kU32Max));
  HV_TRY(get_int<int64_t>(o, "minor", r.minor, -1, kU32Max));
  OCI_CHECK(field(o, "access", Need::Optional, [&](const json& v, const std::string& p) -> Status {
    HV_TRY(read_string(v, p, r.access));
    const bool ok = !r.access.empty() && r.access.find_first_not_of("rwm") == std::string::npos;
    if (!ok) {
      return bad(p, fmt::format("must be a non-empty combination of \"r\", \"w\" and \"m\", not {}",
                                json_quoted(r.access)));
    }
    return {};
  }));
  return r;
}

Status parse_memory(const Object& o, oci::MemoryLimits& m) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  HV_TRY(get_int<int64_t>(o, "limit", m.limit, -1, kMax));
  HV_TRY(get_int<int64_t>(o, "reservation", m.reservation, -1, kMax));
  HV_TRY(get_int<int64_t>(o, "swap", m.swap, -1, kMax));
  HV_TRY(get_int<int64_t>(o, "kernel", m.kernel, -1, kMax));
  HV_TRY(get_int<int64_t>(o, "kernelTCP", m.kernel_tcp, -1, kMax));
  HV_TRY(get_int<uint64_t>(o, "swappiness", m.swappiness, 0, 100));
  HV_TRY(get_bool(o, "disableOOMKiller", m.disable_oom_killer));
  return get_bool(o, "useHierarchy", m.use_hierarchy);
}

Status parse_cpu(const Object& o, oci::CpuLimits& c) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  HV_TRY(get_int(o, "shares", c.shares));
  HV_TRY(get_int<int64_t>(o, "quota", c.quota, -1, kMax));
  HV_TRY(get_int(o, "period", c.period));
  HV_TRY(get_int<int64_t>(o, "realtimeRuntime", c.realtime_runtime, -1, kMax));
  HV_TRY(get_int(o, "realtimePeriod", c.realtime_period));
  HV_TRY(get_string(o, "cpus", c.cpus));
  HV_TRY(get_string(o, "mems", c.mems));
  return get_int<int64_t>(o, "idle", c.idle, 0, 1);
}

Result<oci::BlockIoDeviceWeight> parse_weight_device(const Object& o) {
  oci::BlockIoDeviceWeight w;
  HV_TRY(get_int<int64_t>(o, "major", w.major, Need::Required, 0, kU32Max));
  HV_TRY(get_int<int64_t>(o, "minor", w.minor, Need::Required, 0, kU32Max));
  HV_TRY(get_int<uint16_t>(o, "weight", w.weight, 10, 1000));
  HV_TRY(get_int<uint16_t>(o, "leafWeight", w.leaf_weight, 10, 1000));
  return w;
}

Result<oci::BlockIoDeviceRate> parse_rate_device(const Object& o) {
  oci::BlockIoDeviceRate r;
  HV_TRY(get_int<int64_t>(o, "major", r.major, Need::Required, 0, kU32Max));
  HV_TRY(get_int<int64_t>(o, "minor", r.minor, Need::Required, 0, kU32Max));
  HV_TRY(get_int(o, "rate", r.rate, Need::Required));
  return r;
}

Status parse_block_io(const Object& o, oci::BlockIoLimits& b) {
  HV_TRY(get_int<uint16_t>(o, "weight", b.weight, 10, 1000));
  HV_TRY(get_int<uint16_t>(o, "leafWeight", b.leaf_weight, 10, 1000));
  HV_TRY(get_objects(o, "weightDevice", b.weight_device, parse_weight_device));
  HV_TRY(get_objects(o, "throttleReadBpsDevice", b.throttle_read_bps, parse_rate_device));
  HV_TRY(get_objects(o, "throttleWriteBpsDevice", b.throttle_write_bps, parse_rate_device));
  HV_TRY(get_objects(o, "throttleReadIOPSDevice", b.throttle_read_iops, parse_rate_device));
  return get_objects(o, "throttleWriteIOPSDevice", b.throttle_write_iops, parse_rate_device);
}

Result<oci::HugepageLimit> parse_hugepage_limit(const Object& o) {
  oci::HugepageLimit h;
  HV_TRY(field(o, "pageSize", Need::Required, [&](const json& v, const std::string& p) {
    return read_nonempty_string(v, p, h.page_size);
  }));
  HV_TRY(get_int(o, "limit", h.limit, Need::Required));
  return h;
}

Status parse_resources(const Object& o, oci::Resources& r) {
  HV_TRY(get_objects(o, "devices", r.devices, parse_device_rule));
  OCI_CHECK(get_object(o, "memory", [&](const Object& m) -> Status {
    oci::MemoryLimits limits;
    HV_TRY(parse_memory(m, limits));
    r.memory = limits;
    return {};
  }));
  OCI_CHECK(get_object(o, "cpu", [&](const Object& c) -> Status {
    oci::CpuLimits limits;
    HV_TRY(parse_cpu(c, limits));
    r.cpu = std::move(limits);
    return {};
  }));
  HV_TRY(get_object(o, "pids",
                    [&](const Object& p) { return get_int<int64_t>(p, "limit", r.pids_limit); }));
  OCI_CHECK(get_object(o, "blockIO", [&](const Object& b) -> Status {
    oci::BlockIoLimits limits;
    HV_TRY(parse_block_io(b, limits));
    r.block_io = std::move(limits);
    return {};
  }));
  HV_TRY(get_objects(o, "hugepageLimits", r.hugepage_limits, parse_hugepage_limit));
  return get_string_map(o, "unified", r.unified, true);
}

// SCMP_ACT_NOTIFY needs a listener socket; the first use is remembered to name it in the error.
struct SeccompContext {
  std::optional<std::string> notify_path;
};

Status read_action(const json& v, const std::string& path, SeccompAction& out,
                   SeccompContext& ctx) {
  HV_TRY(read_enum(v, path, kSeccompActions, "seccomp action", out));
  if (out == SeccompAction::Notify && !ctx.notify_path) {
    ctx.notify_path = path;
  }
  return {};
}

// errnoRet only makes sense for actions that return an errno (the spec requires an error).
Status check_errno_ret(const Object& o, std::string_view key, SeccompAction action,
                       const std::optional<uint32_t>& errno_ret) {
  if (errno_ret && action != SeccompAction::Errno && action != SeccompAction::Trace) {
    return bad(o.at(key), "only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
  }
  return {};
}

Result<oci::SeccompArg> parse_seccomp_arg(const Object& o) {
  oci::SeccompArg a;
  HV_TRY(get_int<uint32_t>(o, "index", a.index, Need::Required, 0, 5));
  HV_TRY(get_int(o, "value", a.value, Need::Required));
  HV_TRY(get_int(o, "valueTwo", a.value_two));
  HV_TRY(field(o, "op", Need::Required, [&](const json& v, const std::string& p) {
    return read_enum(v, p, kSeccompOperators, "seccomp operator", a.op);
  }));
  return a;
}

Status parse_seccomp(const Object& o, oci::Seccomp& s) {
  SeccompContext ctx;
  HV_TRY(field(o, "defaultAction", Need::Required, [&](const json& v, const std::string& p) {
    return read_action(v, p, s.default_action, ctx);
  }));
  HV_TRY(get_int(o, "defaultErrnoRet", s.default_errno_ret));
  HV_TRY(check_errno_ret(o, "defaultErrnoRet", s.default_action, s.default_errno_ret));
  HV_TRY(get_strings(o, "architectures", s.architectures,
                     [](const std::string& a, const std::string& p) -> Status {
                       if (!known(kSeccompArchitectures, a)) {
                         return bad(p,
                                    fmt::format("unknown seccomp architecture {}", json_quoted(a)));
                       }
                       return {};
                     }));
  HV_TRY(get_strings(o, "flags", s.flags, [](const std::string& f, const std::string& p) -> Status {
    if (!known(kSeccompFlags, f)) {
      return bad(p, fmt::format("unknown seccomp flag {}", json_quoted(f)));
    }
    return {};
  }));
  HV_TRY(get_string(o, "listenerPath", s.listener_path));
  HV_TRY(get_string(o, "listenerMetadata", s.listener_metadata));
  OCI_CHECK(
      get_objects(o, "syscalls", s.syscalls, [&](const Object& r) -> Result<oci::SeccompRule> {
        oci::SeccompRule rule;
        HV_TRY(
            field(r, "names", Need::Required, [&](const json& v, const std::string& p) -> Status {
              if (!v.is_array() || v.empty()) {
                return bad(p, "must be a non-empty array of strings");
              }
              return read_strings(v, p, rule.names, check_nonempty);
            }));
        HV_TRY(field(r, "action", Need::Required, [&](const json& v, const std::string& p) {
          return read_action(v, p, rule.action, ctx);
        }));
        HV_TRY(get_int(r, "errnoRet", rule.errno_ret));
        HV_TRY(check_errno_ret(r, "errnoRet", rule.action, rule.errno_ret));
        HV_TRY(get_objects(r, "args", rule.args, parse_seccomp_arg));
        return rule;
      }));
  if (ctx.notify_path && s.listener_path.empty()) {
    return bad(*ctx.notify_path,
               "SCMP_ACT_NOTIFY requires .linux.seccomp.listenerPath (the agent's socket)");
  }
  return {};
}

Status parse_time_offsets(const Object& offsets, std::map<std::string, oci::TimeOffset>& out) {
  for (const char* clock : {"boottime", "monotonic"}) {
    OCI_CHECK(get_object(offsets, clock, [&](const Object& offset) -> Status {
      oci::TimeOffset value;
      HV_TRY(get_int(offset, "secs", value.secs));
      HV_TRY(get_int<uint32_t>(offset, "nanosecs", value.nanosecs, Need::Optional, 0, 999'999'999));
      out[clock] = value;
      return {};
    }));
  }
  for (const auto& [key, value] : offsets.value().items()) {
    if (key != "boottime" && key != "monotonic") {
      return bad(offsets.at(key), "unknown clock (boottime or monotonic)");
    }
  }
  return {};
}

Status parse_linux(const Object& o, oci::Linux& linux_config) {
  oci::Linux& l = linux_config;
  HV_TRY(get_objects(o, "namespaces", l.namespaces, parse_namespace));
  bool new_user_namespace = false;
  bool user_namespace = false;
  for (size_t i = 0; i < l.namespaces.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (l.namespaces[j].type == l.namespaces[i].type) {
        return bad(index_path(o.at("namespaces"), i) + ".type",
                   fmt::format("duplicate namespace type {} (also at index {})",
                               json_quoted(namespace_name(l.namespaces[i].type)), j));
      }
    }
    if (l.namespaces[i].type == NamespaceType::User) {
      user_namespace = true;
      new_user_namespace = l.namespaces[i].path.empty();
    }
  }
  HV_TRY(get_objects(o, "uidMappings", l.uid_mappings, parse_id_mapping));
  HV_TRY(get_objects(o, "gidMappings", l.gid_mappings, parse_id_mapping));
  for (const auto& [key, mappings] :
       {std::pair{"uidMappings", &l.uid_mappings}, std::pair{"gidMappings", &l.gid_mappings}}) {
    if (!mappings->empty() && !user_namespace) {
      return bad(o.at(key), "given without a user namespace in .linux.namespaces");
    }
    if (mappings->empty() && new_user_namespace) {
      return bad(o.at(key), "required: a new user namespace needs at least one mapping");
    }
  }
  OCI_CHECK(get_object(o, "timeOffsets", [&](const Object& offsets) -> Status {
    const bool new_time_namespace = std::any_of(
        l.namespaces.begin(), l.namespaces.end(),
        [](const oci::Namespace& ns) { return ns.type == NamespaceType::Time && ns.path.empty(); });
    if (!new_time_namespace) {
      return bad(o.at("timeOffsets"), "given without a new time namespace in .linux.namespaces");
    }
    return parse_time_offsets(offsets, l.time_offsets);
  }));
  HV_TRY(get_objects(o, "devices", l.devices, parse_device));
  HV_TRY(get_string(o, "cgroupsPath", l.cgroups_path));
  OCI_CHECK(get_object(o, "resources", [&](const Object& r) -> Status {
    oci::Resources resources;
    HV_TRY(parse_resources(r, resources));
    l.resources = std::move(resources);
    return {};
  }));
  HV_TRY(get_string_map(o, "sysctl", l.sysctl, true));
  OCI_CHECK(get_object(o, "seccomp", [&](const Object& s) -> Status {
    oci::Seccomp seccomp;
    HV_TRY(parse_seccomp(s, seccomp));
    l.seccomp = std::move(seccomp);
    return {};
  }));
  HV_TRY(field(o, "rootfsPropagation", Need::Optional, [&](const json& v, const std::string& p) {
    return read_enum(v, p, kPropagations, "rootfs propagation", l.rootfs_propagation);
  }));
  HV_TRY(get_strings(o, "maskedPaths", l.masked_paths, check_absolute));
  HV_TRY(get_strings(o, "readonlyPaths", l.readonly_paths, check_absolute));
  // Settings hv does not implement are refused rather than dropped: a container must not run
  // with less isolation or different behaviour than its config asks for.
  for (const char* unsupported : {"intelRdt", "personality", "memoryPolicy"}) {
    if (o.get(unsupported) != nullptr) {
      return bad(o.at(unsupported), "not supported by hv");
    }
  }
  return get_string(o, "mountLabel", l.mount_label);
}

Status parse_document(const Object& o, oci::Config& config) {
  HV_TRY(field(o, "ociVersion", Need::Required, [&](const json& v, const std::string& p) {
    return read_nonempty_string(v, p, config.oci_version);
  }));
  HV_TRY(get_object(o, "root", [&](const Object& r) { return parse_root(r, config.root); }));
  HV_TRY(get_objects(o, "mounts", config.mounts, parse_mount));
  OCI_CHECK(get_object(o, "process", [&](const Object& p) -> Status {
    oci::Process process;
    HV_TRY(parse_process(p, process));
    config.process = std::move(process);
    return {};
  }));
  HV_TRY(get_string(o, "hostname", config.hostname));
  HV_TRY(get_string(o, "domainname", config.domainname));
  HV_TRY(get_object(o, "hooks", [&](const Object& h) { return parse_hooks(h, config.hooks); }));
  HV_TRY(get_string_map(o, "annotations", config.annotations, true));
  return get_object(o, "linux", [&](const Object& l) { return parse_linux(l, config.linux); });
}

// nlohmann's message without its "[json.exception...] parse error at line L, column C: " prefix.
std::string parse_error_detail(const std::string& what) {
  std::string detail = what;
  if (const size_t bracket = detail.find("] ");
      detail.starts_with("[json.exception.") && bracket != std::string::npos) {
    detail.erase(0, bracket + 2);
  }
  if (detail.starts_with("parse error")) {
    if (const size_t colon = detail.find(": "); colon != std::string::npos) {
      detail.erase(0, colon + 2);
    }
  }
  return detail;
}

}  // namespace

Result<oci::Config> parse_oci_config(std::string_view json_text) {
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    // e.byte is 1-based: the position of the last byte read.
    const size_t offset = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, json_text.size());
    const std::string_view before = json_text.substr(0, offset);
    const size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
    const size_t line_start = before.rfind('\n');
    const size_t column = offset - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
    return Error{fmt::format("config.json: invalid JSON at byte {} (line {}, column {}): {}",
                             offset, line, column, parse_error_detail(e.what())),
                 0, ExitStatus::BadConfig};
  } catch (const json::exception& e) {  // e.g. out_of_range 406: a number overflowing a double
    return Error{fmt::format("config.json: invalid JSON: {}", parse_error_detail(e.what())), 0,
                 ExitStatus::BadConfig};
  }
  oci::Config config;
  const Object top = HV_TRY(as_object(doc, ""));
  HV_TRY(parse_document(top, config));
  return config;
}

Result<oci::Config> load_oci_bundle_config(const std::string& bundle_dir) {
  const std::string path = (std::filesystem::path(bundle_dir) / "config.json").string();
  const std::vector<uint8_t> bytes = HV_TRY(read_file(path));
  oci::Config config = HV_TRY(parse_oci_config(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())));
  if (config.root.path.empty()) {
    return bad(".root", "required");
  }
  if (!config.process) {
    return bad(".process", "required");
  }
  std::filesystem::path root(config.root.path);
  if (root.is_relative()) {
    std::error_code ec;
    const std::filesystem::path bundle = std::filesystem::absolute(bundle_dir, ec);
    if (ec) {
      return Error{
          fmt::format("cannot resolve the bundle directory '{}': {}", bundle_dir, ec.message()),
          ec.value(), ExitStatus::HostError};
    }
    root = (bundle / root).lexically_normal();
    std::string s = root.string();
    if (s.size() > 1 && s.back() == '/') {
      s.pop_back();
    }
    config.root.path = std::move(s);
  }
  return config;
}

std::string default_oci_config_json(bool rootless) {
  // ordered_json keeps runc's member order.
  using ojson = nlohmann::ordered_json;
  const auto mount = [](std::string_view destination, std::string_view type,
                        std::string_view source, std::vector<std::string> options) {
    ojson m = ojson::object();
    m["destination"] = destination;
    m["type"] = type;
    m["source"] = source;
    if (!options.empty()) {
      m["options"] = std::move(options);
    }
    return m;
  };
  const ojson caps = ojson::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});

  ojson process = ojson::object();
  process["terminal"] = true;
  process["user"] = ojson::object({{"uid", 0}, {"gid", 0}});
  process["args"] = ojson::array({"sh"});
  process["env"] = ojson::array(
      {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"});
  process["cwd"] = "/";
  process["capabilities"] =
      ojson::object({{"bounding", caps}, {"effective", caps}, {"permitted", caps}});
  process["rlimits"] =
      ojson::array({ojson::object({{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}})});
  process["noNewPrivileges"] = true;

  ojson mounts = ojson::array();
  mounts.push_back(mount("/proc", "proc", "proc", {}));
  mounts.push_back(
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  // runc --rootless drops uid=/gid= options: the ids may not be mapped.
  std::vector<std::string> devpts = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                     "mode=0620"};
  if (!rootless) {
    devpts.push_back("gid=5");
  }
  mounts.push_back(mount("/dev/pts", "devpts", "devpts", devpts));
  mounts.push_back(
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  mounts.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  if (rootless) {
    // sysfs cannot be mounted without owning the network namespace: bind the host's.
    mounts.push_back(mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
  } else {
    mounts.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
    mounts.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup",
                           {"nosuid", "noexec", "nodev", "relatime", "ro"}));
  }

  ojson linux_section = ojson::object();
  if (rootless) {
    linux_section["uidMappings"] =
        ojson::array({ojson::object({{"containerID", 0}, {"hostID", ::geteuid()}, {"size", 1}})});
    linux_section["gidMappings"] =
        ojson::array({ojson::object({{"containerID", 0}, {"hostID", ::getegid()}, {"size", 1}})});
  } else {
    linux_section["resources"] = ojson::object(
        {{"devices", ojson::array({ojson::object({{"allow", false}, {"access", "rwm"}})})}});
  }
  ojson namespaces = ojson::array();
  for (const char* type : {"pid", "network", "ipc", "uts", "mount", "cgroup"}) {
    if (rootless && std::string_view(type) == "network") {
      continue;
    }
    namespaces.push_back(ojson::object({{"type", type}}));
  }
  if (rootless) {
    namespaces.push_back(ojson::object({{"type", "user"}}));
  }
  linux_section["namespaces"] = std::move(namespaces);
  linux_section["maskedPaths"] =
      ojson::array({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                    "/proc/sched_debug", "/sys/firmware", "/proc/scsi"});
  linux_section["readonlyPaths"] =
      ojson::array({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"});

  ojson doc = ojson::object();
  doc["ociVersion"] = "1.0.2-dev";
  doc["process"] = std::move(process);
  doc["root"] = ojson::object({{"path", "rootfs"}, {"readonly", true}});
  doc["hostname"] = "hv";
  doc["mounts"] = std::move(mounts);
  doc["linux"] = std::move(linux_section);
  return doc.dump(1, '\t') + "\n";
}

}  // namespace hv::container
