#include "supervisor/guest_spec.hpp"

#include <net/if.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <set>
#include <span>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "common/file.hpp"
#include "container/container_config.hpp"
#include "container/oci_config.hpp"

namespace hv {

namespace {

using json = nlohmann::json;

constexpr size_t kMaximumSpecBytes = 1 << 20;
constexpr uint64_t kMinimumLimitMemoryMib = 4;
constexpr uint64_t kMaximumLimitMemoryMib = 1ull << 30;
constexpr double kMinimumLimitCpus = 0.01;  // cgroup v2's smallest quota: 1 ms per 100 ms
constexpr double kMaximumLimitCpus = 1024;
constexpr int64_t kMaximumLimitPids = 4'194'304;  // PID_MAX_LIMIT
constexpr double kMaximumTimeoutSeconds = 1e9;
constexpr size_t kMaximumHostnameLength = 64;
constexpr size_t kMaximumSerialLength = 20;  // what virtio-blk and ATA IDENTIFY report

// Members by engine.
constexpr std::string_view kCommonFields[] = {"name", "engine", "limits"};
constexpr std::string_view kMachineFields[] = {"kernel",     "initrd", "cmdline",   "format",
                                               "memory_mib", "vcpus",  "disks",     "nets",
                                               "console",    "rng",    "timeout_s", "on_reset"};
constexpr std::string_view kContainerFields[] = {"bundle", "rootfs",   "args",   "env",
                                                 "cwd",    "hostname", "network"};
// Members that go with "rootfs" only (a bundle's config.json has its own process).
constexpr std::string_view kRootfsFields[] = {"args", "env", "cwd", "hostname", "network"};

bool contains(std::span<const std::string_view> list, std::string_view key) {
  return std::ranges::find(list, key) != list.end();
}

// A string as a JSON literal, so that control characters in hostile input stay readable.
std::string json_quoted(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

Error bad(std::string_view path, std::string_view what) {
  return Error{fmt::format("{} {}", json_quoted(path), what), 0, ExitStatus::BadConfig};
}

Error bad_spec(std::string_view what) {
  return Error{std::string(what), 0, ExitStatus::BadConfig};
}

std::string member_path(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::string index_path(std::string_view parent, size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

// ---------------------------------------------------------------------------------------------
// Parsing: nesting depth is checked on the text before nlohmann builds anything, and duplicate
// members are caught by the parser callback.

Status check_depth(std::string_view text) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaximumSpecDepth) {
        return bad_spec(fmt::format("the guest spec nests arrays and objects deeper than {} levels",
                                    kMaximumSpecDepth));
      }
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return {};
}

Result<json> parse_json(std::string_view text) {
  if (text.size() > kMaximumSpecBytes) {
    return bad_spec(fmt::format("the guest spec is larger than {} bytes", kMaximumSpecBytes));
  }
  HV_TRY(check_depth(text));
  // One set of member names per open object or array (arrays' stay empty).
  std::vector<std::set<std::string>> open;
  std::string duplicate;
  size_t duplicate_depth = 0;
  const json::parser_callback_t callback = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        open.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!open.empty()) {
          open.pop_back();
        }
        break;
      case json::parse_event_t::key:
        if (!open.empty() && parsed.is_string() && duplicate.empty() &&
            !open.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
          duplicate_depth = open.size();
        }
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(), callback);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (const size_t bracket = what.find("] ");
        what.starts_with("[json.") && bracket != what.npos) {
      what.erase(0, bracket + 2);
    }
    return bad_spec(fmt::format("the guest spec is not valid JSON: {}", what));
  }
  if (!duplicate.empty()) {
    return bad_spec(fmt::format("duplicate field {} in {}", json_quoted(duplicate),
                                duplicate_depth == 1 ? "the guest spec" : "a nested object"));
  }
  return doc;
}

// ---------------------------------------------------------------------------------------------
// Readers for single values; each names `path` on failure.

Status check_members(const json& object, std::string_view path,
                     std::initializer_list<std::string_view> allowed) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::ranges::find(allowed, it.key()) == allowed.end()) {
      return bad_spec(
          fmt::format("unknown field {} in {}", json_quoted(it.key()), json_quoted(path)));
    }
  }
  return {};
}

Status expect_object(const json& v, std::string_view path) {
  if (!v.is_object()) {
    return bad(path, "must be an object");
  }
  return {};
}

Result<bool> read_bool(const json& v, std::string_view path) {
  if (!v.is_boolean()) {
    return bad(path, "must be a boolean");
  }
  return v.get<bool>();
}

// A string without NUL; empty only where `allow_empty`.
Result<std::string> read_string(const json& v, std::string_view path, bool allow_empty = false) {
  if (!v.is_string()) {
    return bad(path, "must be a string");
  }
  const auto& s = v.get_ref<const std::string&>();
  if (s.empty() && !allow_empty) {
    return bad(path, "must not be empty");
  }
  if (s.find('\0') != std::string::npos) {
    return bad(path, "must not contain a NUL character");
  }
  return s;
}

// One of `choices`.
Result<std::string> read_choice(const json& v, std::string_view path,
                                std::initializer_list<std::string_view> choices) {
  const std::string s = HV_TRY(read_string(v, path, true));
  if (std::ranges::find(choices, s) == choices.end()) {
    std::string list;
    for (std::string_view choice : choices) {
      list += fmt::format("{}{}", list.empty() ? "" : ", ", json_quoted(choice));
    }
    return bad(path, fmt::format("must be one of {}, not {}", list, json_quoted(s)));
  }
  return s;
}

Result<uint64_t> read_uint(const json& v, std::string_view path, uint64_t lo, uint64_t hi) {
  if (!v.is_number_integer()) {
    return bad(path, "must be an integer");
  }
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u >= lo && u <= hi) {
      return u;
    }
    return bad(path, fmt::format("must be from {} to {}, not {}", lo, hi, u));
  }
  return bad(path, fmt::format("must be from {} to {}, not {}", lo, hi, v.get<int64_t>()));
}

Result<double> read_number(const json& v, std::string_view path, double lo, double hi) {
  if (!v.is_number()) {
    return bad(path, "must be a number");
  }
  const auto d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    return bad(path, fmt::format("must be from {} to {}, not {}", lo, hi, v.dump()));
  }
  return d;
}

std::string normalized(const std::filesystem::path& p) {
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') {
    s.pop_back();
  }
  return s;
}

// A host path: absolute, or relative to `base_dir` where that is non-empty.
Result<std::string> read_path(const json& v, std::string_view path, const std::string& base_dir) {
  const std::string s = HV_TRY(read_string(v, path));
  if (s.front() == '/') {
    return normalized(s);
  }
  if (base_dir.empty()) {
    return bad(path, fmt::format("must be an absolute path, not {}", json_quoted(s)));
  }
  std::error_code ec;
  std::filesystem::path base = std::filesystem::absolute(base_dir, ec);
  if (ec) {
    return bad(path, fmt::format("cannot be resolved: the directory {} has no absolute path: {}",
                                 json_quoted(base_dir), ec.message()));
  }
  return normalized(base / s);
}

// An array of at most `max` elements (`of` names what they should be).
Result<std::vector<const json*>> read_array(const json& v, std::string_view path, size_t max,
                                            std::string_view of) {
  if (!v.is_array()) {
    return bad(path, fmt::format("must be an array of {}", of));
  }
  if (v.size() > max) {
    return bad(path, fmt::format("has {} entries: at most {}", v.size(), max));
  }
  std::vector<const json*> items;
  items.reserve(v.size());
  for (const json& item : v) {
    items.push_back(&item);
  }
  return items;
}

Result<std::array<uint8_t, 6>> read_mac(const json& v, std::string_view path) {
  const std::string s = HV_TRY(read_string(v, path));
  Result<std::array<uint8_t, 6>> mac = parse_mac(s);
  if (!mac.ok()) {
    return bad(path, fmt::format("must be a unicast MAC address like \"52:54:00:12:34:56\", not {}",
                                 json_quoted(s)));
  }
  return mac;
}

std::string format_mac(const std::array<uint8_t, 6>& mac) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3],
                     mac[4], mac[5]);
}

// ---------------------------------------------------------------------------------------------
// The members.

Result<DiskConfig> read_disk(const json& v, std::string_view path, const std::string& base_dir) {
  HV_TRY(expect_object(v, path));
  HV_TRY(check_members(v, path, {"path", "read_only", "direct", "serial", "interface"}));
  DiskConfig disk;
  const auto file = v.find("path");
  if (file == v.end()) {
    return bad(member_path(path, "path"), "is required");
  }
  disk.path = HV_TRY(read_path(*file, member_path(path, "path"), base_dir));
  if (const auto it = v.find("read_only"); it != v.end()) {
    disk.read_only = HV_TRY(read_bool(*it, member_path(path, "read_only")));
  }
  if (const auto it = v.find("direct"); it != v.end()) {
    disk.direct = HV_TRY(read_bool(*it, member_path(path, "direct")));
  }
  if (const auto it = v.find("serial"); it != v.end()) {
    const std::string where = member_path(path, "serial");
    disk.serial = HV_TRY(read_string(*it, where));
    const bool printable =
        std::ranges::all_of(disk.serial, [](char c) { return c > ' ' && c < 127; });
    if (disk.serial.size() > kMaximumSerialLength || !printable) {
      return bad(where, fmt::format("must be at most {} printable ASCII characters without spaces",
                                    kMaximumSerialLength));
    }
  }
  if (const auto it = v.find("interface"); it != v.end()) {
    const std::string interface =
        HV_TRY(read_choice(*it, member_path(path, "interface"), {"virtio", "ide"}));
    disk.interface =
        interface == "ide" ? DiskConfig::Interface::Ide : DiskConfig::Interface::Virtio;
  }
  return disk;
}

Result<NetConfig> read_net(const json& v, std::string_view path, size_t index) {
  HV_TRY(expect_object(v, path));
  HV_TRY(check_members(v, path, {"tap", "mac"}));
  const auto tap = v.find("tap");
  if (tap == v.end()) {
    return bad(member_path(path, "tap"), "is required");
  }
  const std::string where = member_path(path, "tap");
  const std::string name = HV_TRY(read_string(*tap, where));
  const bool plain = std::ranges::all_of(
      name, [](char c) { return c > ' ' && c < 127 && c != '/' && c != ',' && c != ':'; });
  if (name.size() >= IFNAMSIZ || !plain || name == "." || name == "..") {
    return bad(where, fmt::format("must be an interface name of at most {} printable characters "
                                  "without spaces, '/', ',' or ':', not {}",
                                  IFNAMSIZ - 1, json_quoted(name)));
  }
  NetConfig net = HV_TRY(parse_net_option("tap=" + name, index));
  if (const auto mac = v.find("mac"); mac != v.end()) {
    net.mac = HV_TRY(read_mac(*mac, member_path(path, "mac")));
  }
  return net;
}

Status read_limits(const json& v, GuestLimits& limits) {
  HV_TRY(expect_object(v, "limits"));
  HV_TRY(check_members(v, "limits", {"memory_mib", "cpus", "pids"}));
  if (const auto it = v.find("memory_mib"); it != v.end()) {
    limits.memory_bytes =
        HV_TRY(read_uint(*it, "limits.memory_mib", kMinimumLimitMemoryMib, kMaximumLimitMemoryMib))
        << 20;
  }
  if (const auto it = v.find("cpus"); it != v.end()) {
    limits.cpus = HV_TRY(read_number(*it, "limits.cpus", kMinimumLimitCpus, kMaximumLimitCpus));
  }
  if (const auto it = v.find("pids"); it != v.end()) {
    limits.pids = static_cast<int64_t>(HV_TRY(read_uint(*it, "limits.pids", 1, kMaximumLimitPids)));
  }
  return {};
}

Status read_machine(const json& doc, const std::string& base_dir, GuestSpec& spec) {
  const auto kernel = doc.find("kernel");
  if (kernel == doc.end()) {
    return bad("kernel",
               fmt::format("is required for engine {}", json_quoted(engine_name(spec.engine))));
  }
  spec.kernel = HV_TRY(read_path(*kernel, "kernel", base_dir));
  if (const auto it = doc.find("initrd"); it != doc.end()) {
    if (it->is_string()) {
      spec.initrds.push_back(HV_TRY(read_path(*it, "initrd", base_dir)));
    } else {
      if (!it->is_array()) {
        return bad("initrd", "must be a string or an array of strings");
      }
      const auto items = HV_TRY(read_array(*it, "initrd", kMaximumSpecInitrds, "strings"));
      for (size_t i = 0; i < items.size(); ++i) {
        spec.initrds.push_back(HV_TRY(read_path(*items[i], index_path("initrd", i), base_dir)));
      }
    }
  }
  if (const auto it = doc.find("cmdline"); it != doc.end()) {
    spec.cmdline = HV_TRY(read_string(*it, "cmdline", true));
  }
  if (const auto it = doc.find("format"); it != doc.end()) {
    spec.format = HV_TRY(read_choice(*it, "format", {"auto", "multiboot", "elf", "linux", "flat"}));
  }
  if (const auto it = doc.find("memory_mib"); it != doc.end()) {
    spec.memory_bytes =
        HV_TRY(read_uint(*it, "memory_mib", kMinimumMemory >> 20, kMaximumSpecMemoryMib)) << 20;
  }
  if (const auto it = doc.find("vcpus"); it != doc.end()) {
    spec.vcpus = static_cast<uint32_t>(HV_TRY(read_uint(*it, "vcpus", 1, kMaximumCpus)));
  }
  if (const auto it = doc.find("disks"); it != doc.end()) {
    const auto items =
        HV_TRY(read_array(*it, "disks", kMaximumVirtioDevices + kMaximumIdeDisks, "objects"));
    for (size_t i = 0; i < items.size(); ++i) {
      spec.disks.push_back(HV_TRY(read_disk(*items[i], index_path("disks", i), base_dir)));
    }
    const auto ide = static_cast<size_t>(
        std::ranges::count(spec.disks, DiskConfig::Interface::Ide, &DiskConfig::interface));
    if (ide > kMaximumIdeDisks) {
      return bad("disks", fmt::format("has {} IDE disks: a PC has {} IDE channels (one disk each)",
                                      ide, kMaximumIdeDisks));
    }
  }
  if (const auto it = doc.find("nets"); it != doc.end()) {
    const auto items = HV_TRY(read_array(*it, "nets", kMaximumVirtioDevices, "objects"));
    for (size_t i = 0; i < items.size(); ++i) {
      spec.nets.push_back(HV_TRY(read_net(*items[i], index_path("nets", i), i)));
    }
  }
  if (const auto it = doc.find("console"); it != doc.end()) {
    const std::string console = HV_TRY(read_choice(*it, "console", {"serial", "virtio"}));
    spec.console = console == "virtio" ? ConsoleDevice::Virtio : ConsoleDevice::Serial;
  }
  if (const auto it = doc.find("rng"); it != doc.end()) {
    spec.rng = HV_TRY(read_bool(*it, "rng"));
  }
  if (const auto it = doc.find("timeout_s"); it != doc.end()) {
    const double seconds = HV_TRY(read_number(*it, "timeout_s", 0, kMaximumTimeoutSeconds));
    const auto ms = static_cast<int64_t>(std::llround(seconds * 1000));
    if (ms < 1) {
      return bad("timeout_s",
                 fmt::format("must be at least 0.001 (a millisecond), not {}", it->dump()));
    }
    spec.timeout = std::chrono::milliseconds(ms);
  }
  if (const auto it = doc.find("on_reset"); it != doc.end()) {
    spec.reboot_on_reset = HV_TRY(read_choice(*it, "on_reset", {"stop", "reboot"})) == "reboot";
  }
  VmConfig devices;
  devices.disks = spec.disks;
  devices.nets = spec.nets;
  devices.console = spec.console;
  devices.rng = spec.rng;
  if (const size_t count = virtio_device_count(devices); count > kMaximumVirtioDevices) {
    return bad(spec.disks.empty() ? "nets" : "disks",
               fmt::format("and the other virtio devices come to {} (virtio disks, nets, a virtio "
                           "console, rng): hv has interrupt lines for {}",
                           count, kMaximumVirtioDevices));
  }
  return {};
}

bool valid_hostname(std::string_view name) {
  return !name.empty() && name.size() <= kMaximumHostnameLength &&
         std::ranges::all_of(name, [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_';
         });
}

Status read_container(const json& doc, const std::string& base_dir, GuestSpec& spec) {
  const auto bundle = doc.find("bundle");
  const auto rootfs = doc.find("rootfs");
  if (bundle != doc.end() && rootfs != doc.end()) {
    return bad("bundle",
               "and \"rootfs\" exclude each other: a container is an OCI bundle, or a "
               "root directory and a command");
  }
  if (bundle != doc.end()) {
    spec.bundle = HV_TRY(read_path(*bundle, "bundle", base_dir));
    for (std::string_view key : kRootfsFields) {
      if (doc.contains(key)) {
        return bad(key, "goes with \"rootfs\": a bundle's config.json describes its own process");
      }
    }
    return {};
  }
  if (rootfs == doc.end()) {
    return bad("rootfs", "(or \"bundle\") is required for engine \"container\"");
  }
  spec.rootfs = HV_TRY(read_path(*rootfs, "rootfs", base_dir));
  const auto args = doc.find("args");
  if (args == doc.end()) {
    return bad("args", "is required with \"rootfs\"");
  }
  const auto arg_items = HV_TRY(read_array(*args, "args", kMaximumSpecArgs, "strings"));
  if (arg_items.empty()) {
    return bad("args", "must not be empty");
  }
  for (size_t i = 0; i < arg_items.size(); ++i) {
    spec.args.push_back(HV_TRY(read_string(*arg_items[i], index_path("args", i), i > 0)));
  }
  if (const auto it = doc.find("env"); it != doc.end()) {
    const auto items = HV_TRY(read_array(*it, "env", kMaximumSpecEnv, "strings"));
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string where = index_path("env", i);
      std::string entry = HV_TRY(read_string(*items[i], where));
      const size_t eq = entry.find('=');
      if (eq == std::string::npos || eq == 0) {
        return bad(where, fmt::format("must be \"KEY=value\" with a non-empty KEY, not {}",
                                      json_quoted(entry)));
      }
      spec.env.push_back(std::move(entry));
    }
  }
  if (const auto it = doc.find("cwd"); it != doc.end()) {
    const std::string cwd = HV_TRY(read_string(*it, "cwd"));
    if (cwd.front() != '/') {
      return bad("cwd", fmt::format("must be an absolute path (inside the container), not {}",
                                    json_quoted(cwd)));
    }
    spec.cwd = normalized(cwd);
  }
  if (const auto it = doc.find("hostname"); it != doc.end()) {
    spec.hostname = HV_TRY(read_string(*it, "hostname"));
    if (!valid_hostname(spec.hostname)) {
      return bad("hostname", fmt::format("must be 1 to {} letters, digits, '-', '.' or '_', not {}",
                                         kMaximumHostnameLength, json_quoted(spec.hostname)));
    }
  }
  if (const auto it = doc.find("network"); it != doc.end()) {
    spec.network = HV_TRY(read_choice(*it, "network", {"none", "host"}));
  }
  return {};
}

}  // namespace

std::string_view engine_name(GuestEngine engine) {
  switch (engine) {
    case GuestEngine::Kvm:
      return "kvm";
    case GuestEngine::Emulate:
      return "emulate";
    case GuestEngine::Container:
      return "container";
  }
  return "unknown";
}

bool valid_guest_name(std::string_view name) {
  if (name.empty() || name.size() > kMaximumGuestNameLength) {
    return false;
  }
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front())) {
    return false;
  }
  if (!std::ranges::all_of(name,
                           [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; })) {
    return false;
  }
  return name.find("..") == std::string_view::npos;
}

Result<GuestSpec> parse_guest_spec(std::string_view json_text, const std::string& base_dir) {
  const json doc = HV_TRY(parse_json(json_text));
  if (!doc.is_object()) {
    return bad_spec("the guest spec must be a JSON object");
  }
  GuestSpec spec;
  const auto name = doc.find("name");
  if (name == doc.end()) {
    return bad("name", "is required");
  }
  spec.name = HV_TRY(read_string(*name, "name"));
  if (!valid_guest_name(spec.name)) {
    return bad("name", fmt::format("must be 1 to {} letters, digits, '_', '.' or '-', starting "
                                   "with a letter or digit, without \"..\", not {}",
                                   kMaximumGuestNameLength, json_quoted(spec.name)));
  }
  const auto engine = doc.find("engine");
  if (engine == doc.end()) {
    return bad("engine", "is required (\"kvm\", \"emulate\" or \"container\")");
  }
  const std::string engine_text =
      HV_TRY(read_choice(*engine, "engine", {"kvm", "emulate", "container"}));
  spec.engine = engine_text == "kvm"       ? GuestEngine::Kvm
                : engine_text == "emulate" ? GuestEngine::Emulate
                                           : GuestEngine::Container;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& key = it.key();
    const bool machine = contains(kMachineFields, key);
    const bool container = contains(kContainerFields, key);
    if (!machine && !container && !contains(kCommonFields, key)) {
      return bad_spec(fmt::format("unknown field {} in the guest spec", json_quoted(key)));
    }
    if (machine && !spec.is_machine()) {
      return bad(key, fmt::format("is a machine field: not allowed with engine {}",
                                  json_quoted(engine_text)));
    }
    if (container && spec.is_machine()) {
      return bad(key, fmt::format("is a container field: not allowed with engine {}",
                                  json_quoted(engine_text)));
    }
  }
  if (spec.is_machine()) {
    HV_TRY(read_machine(doc, base_dir, spec));
  } else {
    HV_TRY(read_container(doc, base_dir, spec));
  }
  if (const auto it = doc.find("limits"); it != doc.end()) {
    HV_TRY(read_limits(*it, spec.limits));
  }
  return spec;
}

nlohmann::json guest_spec_to_json(const GuestSpec& spec) {
  json doc = json::object();
  doc["name"] = spec.name;
  doc["engine"] = engine_name(spec.engine);
  if (spec.is_machine()) {
    doc["kernel"] = spec.kernel;
    doc["initrd"] = spec.initrds;
    doc["cmdline"] = spec.cmdline;
    doc["format"] = spec.format;
    doc["memory_mib"] = spec.memory_bytes >> 20;
    doc["vcpus"] = spec.vcpus;
    json disks = json::array();
    for (const DiskConfig& disk : spec.disks) {
      json d = {{"path", disk.path},
                {"read_only", disk.read_only},
                {"direct", disk.direct},
                {"interface", disk.interface == DiskConfig::Interface::Ide ? "ide" : "virtio"}};
      if (!disk.serial.empty()) {
        d["serial"] = disk.serial;
      }
      disks.push_back(std::move(d));
    }
    doc["disks"] = std::move(disks);
    json nets = json::array();
    for (const NetConfig& net : spec.nets) {
      nets.push_back({{"tap", net.tap}, {"mac", format_mac(net.mac)}});
    }
    doc["nets"] = std::move(nets);
    doc["console"] = spec.console == ConsoleDevice::Virtio ? "virtio" : "serial";
    doc["rng"] = spec.rng;
    if (spec.timeout) {
      doc["timeout_s"] = static_cast<double>(spec.timeout->count()) / 1000.0;
    }
    doc["on_reset"] = spec.reboot_on_reset ? "reboot" : "stop";
  } else if (!spec.bundle.empty()) {
    doc["bundle"] = spec.bundle;
  } else {
    doc["rootfs"] = spec.rootfs;
    doc["args"] = spec.args;
    doc["env"] = spec.env;
    doc["cwd"] = spec.cwd;
    if (!spec.hostname.empty()) {
      doc["hostname"] = spec.hostname;
    }
    doc["network"] = spec.network;
  }
  json limits = json::object();
  if (spec.limits.memory_bytes) {
    limits["memory_mib"] = *spec.limits.memory_bytes >> 20;
  }
  if (spec.limits.cpus) {
    limits["cpus"] = *spec.limits.cpus;
  }
  if (spec.limits.pids) {
    limits["pids"] = *spec.limits.pids;
  }
  doc["limits"] = std::move(limits);
  return doc;
}

Result<VmConfig> to_vm_config(const GuestSpec& spec) {
  if (!spec.is_machine()) {
    return make_error(ExitStatus::BadConfig, "guest {}: a container has no machine configuration",
                      spec.name);
  }
  VmConfig config;
  config.engine = std::string(engine_name(spec.engine));
  config.kernel_path = spec.kernel;
  config.initrd_paths = spec.initrds;
  config.cmdline = spec.cmdline;
  Result<KernelFormat> format = parse_kernel_format(spec.format);
  if (!format.ok()) {
    return make_error(ExitStatus::BadConfig, "\"format\": {}", format.error().message);
  }
  config.format = *format;
  config.memory_bytes = spec.memory_bytes;
  config.cpu_count = spec.vcpus;
  config.timeout = spec.timeout;
  config.restart_on_reset = spec.reboot_on_reset;
  config.disks = spec.disks;
  config.nets = spec.nets;
  config.console = spec.console;
  config.rng = spec.rng;
  HV_TRY(validate(config));
  return config;
}

Result<oci::Config> to_container_config(const GuestSpec& spec, const std::string& cgroup_path) {
  if (spec.is_machine()) {
    return make_error(ExitStatus::BadConfig,
                      "guest {}: a machine (engine {}) has no container configuration", spec.name,
                      engine_name(spec.engine));
  }
  oci::Config config;
  if (!spec.bundle.empty()) {
    config = HV_TRY(container::load_oci_bundle_config(spec.bundle));
    if (spec.limits.memory_bytes || spec.limits.cpus || spec.limits.pids) {
      container::apply_simple_limits(config, spec.limits.memory_bytes, spec.limits.cpus,
                                     spec.limits.pids);
    }
  } else {
    container::SimpleContainer simple;
    simple.rootfs = spec.rootfs;
    simple.args = spec.args;
    simple.env = spec.env;
    simple.cwd = spec.cwd;
    simple.hostname = spec.hostname.empty() ? spec.name : spec.hostname;
    simple.host_network = spec.network == "host";
    simple.terminal = false;
    simple.memory_bytes = spec.limits.memory_bytes;
    simple.cpus = spec.limits.cpus;
    simple.pids = spec.limits.pids;
    config = HV_TRY(container::simple_container_config(simple));
  }
  if (config.process) {
    config.process->terminal = false;
  }
  if (!cgroup_path.empty()) {
    config.linux.cgroups_path = cgroup_path;
  }
  return config;
}

Result<GuestSpec> load_guest_spec_file(const std::string& path) {
  const std::string text = HV_TRY(read_text_file(path));
  std::error_code ec;
  const std::string base =
      std::filesystem::absolute(path, ec).parent_path().lexically_normal().string();
  Result<GuestSpec> spec = parse_guest_spec(text, base);
  if (!spec.ok()) {
    return Error{fmt::format("{}: {}", path, spec.error().message), 0, spec.error().status};
  }
  return spec;
}

}  // namespace hv
