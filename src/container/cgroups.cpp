#include "container/cgroups.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <functional>
#include <set>
#include <thread>

#include "common/fd.hpp"
#include "container/device_filter.hpp"

namespace hv::container {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\n' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    if (end > start) {
      parts.emplace_back(text.substr(start, end - start));
    }
    start = end + 1;
  }
  return parts;
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> result;
  for (std::string& part : split(text, ' ')) {
    for (std::string& word : split(part, '\n')) {
      result.push_back(std::move(word));
    }
  }
  return result;
}

Result<std::string> read_text(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return Error::from_errno(fmt::format("cannot read {}", path));
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Error::from_errno(fmt::format("cannot read {}", path));
    }
    if (n == 0) {
      break;
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

// Writes one value with one write(2), as the kernel wants for cgroup files. `status` is the exit
// status of a value the kernel refuses or a file it does not have (a request the host cannot
// honour); other failures are host errors.
Status write_text(const std::string& path, std::string_view value,
                  ExitStatus status = ExitStatus::HostError) {
  auto failure = [&] {
    const bool refused = errno == EINVAL || errno == ERANGE || errno == EOVERFLOW ||
                         errno == ENOENT || errno == EOPNOTSUPP;
    return Error::from_errno(fmt::format("cannot write \"{}\" to {}", value, path),
                             refused ? status : ExitStatus::HostError);
  };
  Fd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd.valid()) {
    return failure();
  }
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return failure();
  }
  if (static_cast<size_t>(n) != value.size()) {
    return make_error(ExitStatus::HostError, "short write of \"{}\" to {}", value, path);
  }
  return {};
}

// "key N" lines (memory.events, memory.oom_control, cgroup.events).
std::optional<uint64_t> keyed_value(std::string_view text, std::string_view key) {
  for (const std::string& line : split(text, '\n')) {
    std::string_view view = line;
    if (view.size() > key.size() && view.substr(0, key.size()) == key && view[key.size()] == ' ') {
      view = trim(view.substr(key.size() + 1));
      uint64_t value = 0;
      auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), value);
      if (ec == std::errc() && end == view.data() + view.size()) {
        return value;
      }
    }
  }
  return std::nullopt;
}

// Mount points in mountinfo escape space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view text) {
  std::string result;
  for (size_t i = 0; i < text.size(); ++i) {
    auto octal = [&](size_t at) { return text[at] >= '0' && text[at] <= '7'; };
    if (text[i] == '\\' && i + 3 < text.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      result += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 +
                                  (text[i + 3] - '0'));
      i += 3;
    } else {
      result += text[i];
    }
  }
  return result;
}

// The controllers in a v1 mount's super options: everything but the mount flags.
std::vector<std::string> v1_controllers(std::string_view super_options) {
  static const std::set<std::string, std::less<>> kNotControllers = {"rw",
                                                                     "ro",
                                                                     "xattr",
                                                                     "noprefix",
                                                                     "clone_children",
                                                                     "cpuset_v2_mode",
                                                                     "favordynmods",
                                                                     "nofavordynmods",
                                                                     "none",
                                                                     "sync",
                                                                     "relatime",
                                                                     "noatime",
                                                                     "nosuid",
                                                                     "nodev",
                                                                     "noexec"};
  std::vector<std::string> controllers;
  for (std::string& option : split(super_options, ',')) {
    if (kNotControllers.contains(option)) {
      continue;
    }
    if (option.find('=') != std::string::npos && !option.starts_with("name=")) {
      continue;  // release_agent=...
    }
    controllers.push_back(std::move(option));
  }
  return controllers;
}

bool under_sys_fs_cgroup(const std::string& mount_point) {
  return mount_point == "/sys/fs/cgroup" || mount_point.starts_with("/sys/fs/cgroup/");
}

Result<std::vector<std::string>> split_cgroup_path(const std::string& path) {
  std::vector<std::string> components;
  for (std::string& part : split(path, '/')) {
    if (part == ".") {
      continue;
    }
    if (part == "..") {
      return make_error(ExitStatus::BadConfig, "invalid cgroup path \"{}\": \"..\" is not allowed",
                        path);
    }
    components.push_back(std::move(part));
  }
  if (components.empty()) {
    return make_error(ExitStatus::BadConfig,
                      "invalid cgroup path \"{}\": a container cannot use the root cgroup", path);
  }
  return components;
}

template <typename T>
std::optional<T> nonzero(const std::optional<T>& value) {
  if (value && *value != 0) {
    return value;
  }
  return std::nullopt;
}

std::string limit_or_max(int64_t value) {
  return value < 0 ? std::string("max") : std::to_string(value);
}

// Rule sets that need no eBPF program on cgroup v2: only type 'a' rules.

bool plain_file_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

struct ControllerNeed {
  std::string_view v1;  // empty: none
  std::string_view v2;
  std::string_view what;  // for messages
};

// The controllers `resources` needs, each once.
std::vector<ControllerNeed> needed_controllers(const oci::Resources& resources) {
  std::vector<ControllerNeed> needs;
  if (const auto& memory = resources.memory) {
    if (nonzero(memory->limit) || nonzero(memory->reservation) || nonzero(memory->swap) ||
        nonzero(memory->kernel_tcp) || memory->swappiness ||
        memory->disable_oom_killer.value_or(false)) {
      needs.push_back({"memory", "memory", "memory"});
    }
  }
  if (const auto& cpu = resources.cpu) {
    if (nonzero(cpu->shares) || nonzero(cpu->quota) || nonzero(cpu->period) ||
        nonzero(cpu->realtime_runtime) || nonzero(cpu->realtime_period) || cpu->idle) {
      needs.push_back({"cpu", "cpu", "cpu"});
    }
    if (!cpu->cpus.empty() || !cpu->mems.empty()) {
      needs.push_back({"cpuset", "cpuset", "cpuset"});
    }
  }
  if (resources.pids_limit) {
    needs.push_back({"pids", "pids", "pids"});
  }
  if (const auto& io = resources.block_io) {
    if (nonzero(io->weight) || nonzero(io->leaf_weight) || !io->weight_device.empty() ||
        !io->throttle_read_bps.empty() || !io->throttle_write_bps.empty() ||
        !io->throttle_read_iops.empty() || !io->throttle_write_iops.empty()) {
      needs.push_back({"blkio", "io", "blkio/io"});
    }
  }
  if (!resources.hugepage_limits.empty()) {
    needs.push_back({"hugetlb", "hugetlb", "hugetlb"});
  }
  return needs;
}

// Turns on `controllers` for the children of the v2 cgroup `dir`.
Status enable_v2_controllers(const std::string& dir, const std::vector<std::string>& controllers) {
  const std::string file = dir + "/cgroup.subtree_control";
  const std::vector<std::string> enabled = words(HV_TRY(read_text(file)));
  for (const std::string& controller : controllers) {
    if (std::find(enabled.begin(), enabled.end(), controller) == enabled.end()) {
      HV_TRY(write_text(file, "+" + controller, ExitStatus::BadConfig));
    }
  }
  return {};
}

// v1 cpuset cgroups start with empty cpus and mems, which no process can join.
Status copy_cpuset_from_parent(const std::string& parent, const std::string& child) {
  for (const char* name : {"cpuset.cpus", "cpuset.mems"}) {
    const std::string current = HV_TRY(read_text(child + "/" + name));
    if (!trim(current).empty()) {
      continue;
    }
    const std::string inherited = HV_TRY(read_text(parent + "/" + name));
    if (!trim(inherited).empty()) {
      HV_TRY(write_text(child + "/" + name, trim(inherited)));
    }
  }
  return {};
}

Status read_procs(const std::string& dir, std::vector<pid_t>& pids, bool missing_ok) {
  Result<std::string> text = read_text(dir + "/cgroup.procs");
  if (!text.ok()) {
    if (missing_ok && text.error().sys_errno == ENOENT) {
      return {};
    }
    return std::move(text).error();
  }
  for (const std::string& word : words(*text)) {
    pid_t pid = 0;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), pid);
    if (ec == std::errc() && end == word.data() + word.size()) {
      pids.push_back(pid);
    }
  }
  DIR* stream = ::opendir(dir.c_str());
  if (stream == nullptr) {
    return Error::from_errno(fmt::format("cannot list {}", dir));
  }
  std::vector<std::string> children;
  while (const dirent* entry = ::readdir(stream)) {
    const std::string_view name = entry->d_name;
    if (entry->d_type == DT_DIR && name != "." && name != "..") {
      children.emplace_back(name);
    }
  }
  ::closedir(stream);
  for (const std::string& child : children) {
    HV_TRY(read_procs(dir + "/" + child, pids, true));
  }
  return {};
}

// rmdir, retrying while the kernel still tears down the last processes.
Status remove_directory(const std::string& dir) {
  auto pause = 2ms;
  for (int attempt = 0;; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) {
      return {};
    }
    if (errno != EBUSY || attempt >= 30) {
      return Error::from_errno(fmt::format("cannot remove the cgroup {}", dir));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::milliseconds>(pause * 2, 100ms);
  }
}

// A cgroup and its sub-cgroups, deepest first.
Status remove_tree(const std::string& dir) {
  DIR* stream = ::opendir(dir.c_str());
  if (stream == nullptr) {
    if (errno == ENOENT) {
      return {};
    }
    return Error::from_errno(fmt::format("cannot list {}", dir));
  }
  std::vector<std::string> children;
  while (const dirent* entry = ::readdir(stream)) {
    const std::string_view name = entry->d_name;
    if (entry->d_type == DT_DIR && name != "." && name != "..") {
      children.emplace_back(name);
    }
  }
  ::closedir(stream);
  for (const std::string& child : children) {
    HV_TRY(remove_tree(dir + "/" + child));
  }
  return remove_directory(dir);
}

}  // namespace

// --- helpers exposed for tests -------------------------------------------------------------

uint64_t cgroup_cpu_shares_to_weight(uint64_t shares) {
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t cgroup_blkio_weight_to_io_weight(uint64_t weight) {
  weight = std::clamp<uint64_t>(weight, 10, 1000);
  return 1 + ((weight - 10) * 9999) / 990;
}

std::string cgroup_device_rule(const oci::DeviceRule& rule) {
  auto number = [](const std::optional<int64_t>& value) {
    return value && *value >= 0 ? std::to_string(*value) : std::string("*");
  };
  return fmt::format("{} {}:{} {}", rule.type, number(rule.major), number(rule.minor), rule.access);
}

Result<std::optional<std::string>> cgroup_v2_swap_max(std::optional<int64_t> swap,
                                                      std::optional<int64_t> limit) {
  const int64_t memory_swap = swap.value_or(0);
  const int64_t memory = limit.value_or(0);
  // As with v1: unlimited memory and no swap setting means unlimited swap too.
  if (memory == -1 && memory_swap == 0) {
    return std::optional<std::string>("max");
  }
  if (memory_swap == 0) {
    return std::optional<std::string>();
  }
  if (memory_swap == -1) {
    return std::optional<std::string>("max");
  }
  if (memory <= 0) {
    return make_error(ExitStatus::BadConfig,
                      "a memory+swap limit ({}) needs a memory limit on cgroup v2", memory_swap);
  }
  if (memory_swap < memory) {
    return make_error(ExitStatus::BadConfig,
                      "the memory+swap limit ({}) is below the memory limit ({})", memory_swap,
                      memory);
  }
  return std::optional<std::string>(std::to_string(memory_swap - memory));
}

// --- CgroupLayout --------------------------------------------------------------------------

const CgroupHierarchy* CgroupLayout::v1_hierarchy(std::string_view controller) const {
  for (const CgroupHierarchy& hierarchy : v1) {
    if (std::find(hierarchy.controllers.begin(), hierarchy.controllers.end(), controller) !=
        hierarchy.controllers.end()) {
      return &hierarchy;
    }
  }
  return nullptr;
}

bool CgroupLayout::v2_has(std::string_view controller) const {
  return !v2_mount.empty() && std::find(v2_controllers.begin(), v2_controllers.end(), controller) !=
                                  v2_controllers.end();
}

Result<CgroupLayout> CgroupLayout::parse(std::string_view mountinfo,
                                         const ControllerReader& read_controllers) {
  CgroupLayout layout;
  for (const std::string& line : split(mountinfo, '\n')) {
    const std::vector<std::string> fields = split(line, ' ');
    const auto separator = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 6 || separator == fields.end() || fields.end() - separator < 4 ||
        separator - fields.begin() < 6) {
      continue;
    }
    const std::string& type = separator[1];
    const std::string root = unescape(fields[3]);
    const std::string mount_point = unescape(fields[4]);
    if (type == "cgroup2") {
      if (layout.v2_mount.empty() ||
          (!under_sys_fs_cgroup(layout.v2_mount) && under_sys_fs_cgroup(mount_point))) {
        layout.v2_mount = mount_point;
      }
    } else if (type == "cgroup") {
      std::vector<std::string> controllers = v1_controllers(separator[3]);
      if (controllers.empty()) {
        continue;
      }
      std::sort(controllers.begin(), controllers.end());
      auto same = std::find_if(layout.v1.begin(), layout.v1.end(), [&](const CgroupHierarchy& h) {
        return h.controllers == controllers;
      });
      if (same == layout.v1.end()) {
        layout.v1.push_back({mount_point, root, std::move(controllers)});
      } else if (!under_sys_fs_cgroup(same->mount_point) && under_sys_fs_cgroup(mount_point)) {
        same->mount_point = mount_point;
        same->root = root;
      }
    }
  }
  if (layout.v1.empty() && layout.v2_mount.empty()) {
    return make_error(ExitStatus::HostError,
                      "no cgroup hierarchy is mounted (none in /proc/self/mountinfo)");
  }
  if (!layout.v2_mount.empty()) {
    const std::string text = HV_TRY(read_controllers(layout.v2_mount));
    for (const std::string& controller : words(text)) {
      if (layout.v1_hierarchy(controller) == nullptr) {
        layout.v2_controllers.push_back(controller);
      }
    }
  }
  return layout;
}

Result<CgroupLayout> CgroupLayout::detect() {
  const std::string mountinfo = HV_TRY(read_text("/proc/self/mountinfo"));
  return parse(mountinfo, [](const std::string& mount_point) {
    return read_text(mount_point + "/cgroup.controllers");
  });
}

// --- Cgroup --------------------------------------------------------------------------------

const Cgroup::Place* Cgroup::place_for(std::string_view v1_name, std::string_view v2_name) const {
  if (!v1_name.empty()) {
    for (const Place& place : places_) {
      if (!place.v2 && std::find(place.controllers.begin(), place.controllers.end(), v1_name) !=
                           place.controllers.end()) {
        return &place;
      }
    }
  }
  if (!v2_name.empty()) {
    const Place* v2 = v2_place();
    if (v2 != nullptr && std::find(v2->controllers.begin(), v2->controllers.end(), v2_name) !=
                             v2->controllers.end()) {
      return v2;
    }
  }
  return nullptr;
}

std::vector<Cgroup::Directory> Cgroup::directories() const {
  std::vector<Directory> result;
  for (const Place& place : places_) {
    result.push_back({place.mount_point, dir(place), place.v2, place.controllers});
  }
  return result;
}

const Cgroup::Place* Cgroup::v2_place() const {
  for (const Place& place : places_) {
    if (place.v2) {
      return &place;
    }
  }
  return nullptr;
}

const Cgroup::Place* Cgroup::process_place() const {
  if (const Place* place = place_for("pids", "")) {
    return place;
  }
  if (const Place* place = place_for("freezer", "")) {
    return place;
  }
  if (const Place* place = v2_place()) {
    return place;
  }
  return places_.empty() ? nullptr : &places_.front();
}

std::string Cgroup::level(const Place& place, size_t depth) const {
  std::string dir = place.mount_point;
  for (size_t i = 0; i <= depth && i < components_.size(); ++i) {
    dir += "/" + components_[i];
  }
  return dir;
}

Status Cgroup::make_directories(Place& place, const std::vector<std::string>& v2_enable) {
  const size_t depth = components_.size();
  // A parent another container's destroy() removes between our mkdirs makes mkdir fail with
  // ENOENT: start again from the top.
  for (int attempt = 0;; ++attempt) {
    bool vanished = false;
    std::string parent = place.mount_point;
    for (size_t i = 0; i < depth; ++i) {
      if (place.v2 && !v2_enable.empty()) {
        HV_TRY(enable_v2_controllers(parent, v2_enable));
      }
      const std::string dir = parent + "/" + components_[i];
      if (::mkdir(dir.c_str(), 0755) == 0) {
        place.remove_from = std::min(place.remove_from, i);
        const bool cpuset = std::find(place.controllers.begin(), place.controllers.end(),
                                      "cpuset") != place.controllers.end();
        if (!place.v2 && cpuset) {
          HV_TRY(copy_cpuset_from_parent(parent, dir));
        }
      } else if (errno == ENOENT && i > 0 && attempt < 5) {
        vanished = true;
        break;
      } else if (errno != EEXIST) {
        return Error::from_errno(fmt::format("cannot create the cgroup {}", dir));
      }
      parent = dir;
    }
    if (!vanished) {
      return {};
    }
  }
}

void Cgroup::remove_created() {
  for (Place& place : places_) {
    for (size_t i = components_.size(); i-- > place.remove_from;) {
      ::rmdir(level(place, i).c_str());
    }
    place.remove_from = components_.size();
  }
}

Result<Cgroup> Cgroup::create(const CgroupLayout& layout, const std::string& path,
                              const oci::Resources* resources) {
  Cgroup cgroup;
  cgroup.components_ = HV_TRY(split_cgroup_path(path));
  for (const std::string& component : cgroup.components_) {
    cgroup.path_ += "/" + component;
  }
  const size_t depth = cgroup.components_.size();
  for (const CgroupHierarchy& hierarchy : layout.v1) {
    cgroup.places_.push_back({hierarchy.mount_point, false, hierarchy.controllers, depth});
  }
  if (!layout.v2_mount.empty()) {
    cgroup.places_.push_back({layout.v2_mount, true, layout.v2_controllers, depth});
  }

  // Everything the host cannot honour is refused before anything is created.
  std::vector<std::string> v2_enable;
  auto enable = [&](std::string_view controller) {
    if (std::find(v2_enable.begin(), v2_enable.end(), controller) == v2_enable.end()) {
      v2_enable.emplace_back(controller);
    }
  };
  if (resources != nullptr) {
    for (const ControllerNeed& need : needed_controllers(*resources)) {
      const Place* place = cgroup.place_for(need.v1, need.v2);
      if (place == nullptr) {
        return make_error(ExitStatus::BadConfig,
                          "the {} cgroup controller is not available on this host", need.what);
      }
      if (place->v2) {
        enable(need.v2);
      }
    }
    if (!resources->devices.empty() && cgroup.place_for("devices", "") == nullptr &&
        layout.v2_mount.empty()) {
      return make_error(ExitStatus::BadConfig,
                        "the devices cgroup controller is not available on this host");
    }
    for (const auto& [key, value] : resources->unified) {
      if (!plain_file_name(key)) {
        return make_error(ExitStatus::BadConfig, "invalid unified cgroup file name \"{}\"", key);
      }
      if (layout.v2_mount.empty()) {
        return make_error(ExitStatus::BadConfig,
                          "unified resource \"{}\" needs cgroup v2, which this host lacks", key);
      }
      const std::string controller = key.substr(0, key.find('.'));
      if (layout.v1_hierarchy(controller) != nullptr) {
        return make_error(ExitStatus::BadConfig,
                          "unified resource \"{}\": the {} controller is bound to cgroup v1 on "
                          "this host",
                          key, controller);
      }
      if (layout.v2_has(controller)) {
        enable(controller);
      }
    }
  }

  for (Place& place : cgroup.places_) {
    if (Status made =
            cgroup.make_directories(place, place.v2 ? v2_enable : std::vector<std::string>{});
        !made.ok()) {
      cgroup.remove_created();
      return std::move(made).error();
    }
  }
  if (resources != nullptr) {
    if (Status applied = cgroup.apply(*resources); !applied.ok()) {
      cgroup.remove_created();
      return std::move(applied).error();
    }
  }
  return cgroup;
}

Result<Cgroup> Cgroup::open(const CgroupLayout& layout, const std::string& path) {
  Cgroup cgroup;
  cgroup.components_ = HV_TRY(split_cgroup_path(path));
  for (const std::string& component : cgroup.components_) {
    cgroup.path_ += "/" + component;
  }
  const size_t depth = cgroup.components_.size();
  // The leaf, and the runtime's own "/hv" parent (removed only when empty).
  const size_t remove_from = depth == 2 && cgroup.components_[0] == "hv" ? 0 : depth - 1;
  for (const CgroupHierarchy& hierarchy : layout.v1) {
    cgroup.places_.push_back({hierarchy.mount_point, false, hierarchy.controllers, remove_from});
  }
  if (!layout.v2_mount.empty()) {
    cgroup.places_.push_back({layout.v2_mount, true, layout.v2_controllers, remove_from});
  }
  const bool found = std::any_of(cgroup.places_.begin(), cgroup.places_.end(),
                                 [&](const Place& place) { return exists(cgroup.dir(place)); });
  if (!found) {
    return make_error(ExitStatus::HostError, "the cgroup {} does not exist", cgroup.path_);
  }
  return cgroup;
}

Status Cgroup::apply(const oci::Resources& resources) {
  const ExitStatus refused = ExitStatus::BadConfig;
  auto file = [&](const Place& place, std::string_view name) {
    return dir(place) + "/" + std::string(name);
  };
  auto set = [&](const Place& place, std::string_view name, const std::string& value) {
    return write_text(file(place, name), value, refused);
  };
  auto must = [&](std::string_view v1_name, std::string_view v2_name) -> Result<const Place*> {
    const Place* place = place_for(v1_name, v2_name);
    if (place == nullptr) {
      return make_error(refused, "the {} cgroup controller is not available on this host",
                        v1_name.empty() ? v2_name : v1_name);
    }
    return place;
  };

  if (resources.memory) {
    const oci::MemoryLimits& memory = *resources.memory;
    const auto limit = nonzero(memory.limit);
    const auto reservation = nonzero(memory.reservation);
    const auto swap = nonzero(memory.swap);
    const auto tcp = nonzero(memory.kernel_tcp);
    const bool disable_oom = memory.disable_oom_killer.value_or(false);
    if (limit || reservation || swap || tcp || memory.swappiness || disable_oom) {
      const Place& place = *HV_TRY(must("memory", "memory"));
      if (!place.v2) {
        const std::string memsw = file(place, "memory.memsw.limit_in_bytes");
        const bool has_memsw = exists(memsw);
        if (swap && !has_memsw && *swap != -1 && (!limit || *swap != *limit)) {
          return make_error(refused,
                            "a memory+swap limit ({}) needs swap accounting, which this host "
                            "lacks ({} does not exist)",
                            *swap, memsw);
        }
        // Keep memsw >= limit at every step: raise memsw first when it must grow past the
        // current limit (runc's order).
        bool swap_first = false;
        if (swap && has_memsw) {
          if (*swap == -1) {
            swap_first = true;
          } else {
            const std::string current = HV_TRY(read_text(file(place, "memory.limit_in_bytes")));
            int64_t current_limit = INT64_MAX;
            std::string_view view = trim(current);
            std::from_chars(view.data(), view.data() + view.size(), current_limit);
            swap_first = current_limit < *swap;
          }
        }
        if (swap_first) {
          HV_TRY(write_text(memsw, std::to_string(*swap), refused));
        }
        if (limit) {
          HV_TRY(set(place, "memory.limit_in_bytes", std::to_string(*limit)));
        }
        if (swap && has_memsw && !swap_first) {
          HV_TRY(write_text(memsw, std::to_string(*swap), refused));
        }
        if (reservation) {
          HV_TRY(set(place, "memory.soft_limit_in_bytes", std::to_string(*reservation)));
        }
        if (tcp && exists(file(place, "memory.kmem.tcp.limit_in_bytes"))) {
          HV_TRY(set(place, "memory.kmem.tcp.limit_in_bytes", std::to_string(*tcp)));
        }
        if (memory.swappiness) {
          if (*memory.swappiness > 100) {
            return make_error(refused, "invalid memory swappiness {} (0..100)", *memory.swappiness);
          }
          HV_TRY(set(place, "memory.swappiness", std::to_string(*memory.swappiness)));
        }
        if (disable_oom) {
          HV_TRY(set(place, "memory.oom_control", "1"));
        }
      } else {
        // swappiness, disableOOMKiller and kernelTCP have no v2 equivalent: ignored.
        if (limit) {
          HV_TRY(set(place, "memory.max", limit_or_max(*limit)));
        }
        if (const auto swap_max = HV_TRY(cgroup_v2_swap_max(memory.swap, memory.limit))) {
          if (exists(file(place, "memory.swap.max"))) {
            HV_TRY(set(place, "memory.swap.max", *swap_max));
          } else if (*swap_max != "0" && *swap_max != "max") {
            return make_error(refused,
                              "a memory+swap limit needs swap accounting, which this host lacks "
                              "({} does not exist)",
                              file(place, "memory.swap.max"));
          }
        }
        if (reservation) {
          HV_TRY(set(place, "memory.low", limit_or_max(*reservation)));
        }
      }
    }
  }

  if (resources.cpu) {
    const oci::CpuLimits& cpu = *resources.cpu;
    const auto shares = nonzero(cpu.shares);
    const auto quota = nonzero(cpu.quota);
    const auto period = nonzero(cpu.period);
    const auto rt_runtime = nonzero(cpu.realtime_runtime);
    const auto rt_period = nonzero(cpu.realtime_period);
    if (shares || quota || period || rt_runtime || rt_period || cpu.idle) {
      const Place& place = *HV_TRY(must("cpu", "cpu"));
      if (!place.v2) {
        if (shares) {
          HV_TRY(set(place, "cpu.shares", std::to_string(*shares)));
        }
        if (period) {
          HV_TRY(set(place, "cpu.cfs_period_us", std::to_string(*period)));
        }
        if (quota) {
          HV_TRY(set(place, "cpu.cfs_quota_us", std::to_string(*quota)));
        }
        if (rt_period) {
          HV_TRY(set(place, "cpu.rt_period_us", std::to_string(*rt_period)));
        }
        if (rt_runtime) {
          HV_TRY(set(place, "cpu.rt_runtime_us", std::to_string(*rt_runtime)));
        }
      } else {
        if (rt_runtime || rt_period) {
          return make_error(refused, "realtime CPU limits are not supported on cgroup v2");
        }
        if (shares) {
          HV_TRY(set(place, "cpu.weight", std::to_string(cgroup_cpu_shares_to_weight(*shares))));
        }
        if (quota || period) {
          std::string max = quota && *quota > 0 ? std::to_string(*quota) : std::string("max");
          if (period) {
            max += fmt::format(" {}", *period);
          }
          HV_TRY(set(place, "cpu.max", max));
        }
      }
      if (cpu.idle) {
        HV_TRY(set(place, "cpu.idle", std::to_string(*cpu.idle)));
      }
    }
    if (!cpu.cpus.empty() || !cpu.mems.empty()) {
      const Place& place = *HV_TRY(must("cpuset", "cpuset"));
      if (!cpu.cpus.empty()) {
        HV_TRY(set(place, "cpuset.cpus", cpu.cpus));
      }
      if (!cpu.mems.empty()) {
        HV_TRY(set(place, "cpuset.mems", cpu.mems));
      }
    }
  }

  if (resources.pids_limit) {
    const Place& place = *HV_TRY(must("pids", "pids"));
    const int64_t limit = *resources.pids_limit;
    HV_TRY(set(place, "pids.max", limit > 0 ? std::to_string(limit) : std::string("max")));
  }

  if (resources.block_io) {
    const oci::BlockIoLimits& io = *resources.block_io;
    const auto weight = nonzero(io.weight);
    const auto leaf_weight = nonzero(io.leaf_weight);
    const std::pair<const std::vector<oci::BlockIoDeviceRate>*, std::string_view> throttles[] = {
        {&io.throttle_read_bps, "read_bps"},
        {&io.throttle_write_bps, "write_bps"},
        {&io.throttle_read_iops, "read_iops"},
        {&io.throttle_write_iops, "write_iops"}};
    bool any_throttle = false;
    for (const auto& [rates, name] : throttles) {
      any_throttle = any_throttle || !rates->empty();
    }
    if (weight || leaf_weight || !io.weight_device.empty() || any_throttle) {
      const Place& place = *HV_TRY(must("blkio", "io"));
      if (!place.v2) {
        // Without CFQ, BFQ has the weights (blkio.bfq.*).
        const bool bfq =
            !exists(file(place, "blkio.weight")) && exists(file(place, "blkio.bfq.weight"));
        const std::string prefix = bfq ? "blkio.bfq." : "blkio.";
        if (weight) {
          HV_TRY(set(place, prefix + "weight", std::to_string(*weight)));
        }
        if (leaf_weight) {
          HV_TRY(set(place, "blkio.leaf_weight", std::to_string(*leaf_weight)));
        }
        for (const oci::BlockIoDeviceWeight& device : io.weight_device) {
          if (device.weight) {
            HV_TRY(set(place, prefix + "weight_device",
                       fmt::format("{}:{} {}", device.major, device.minor, *device.weight)));
          }
          if (device.leaf_weight) {
            HV_TRY(set(place, "blkio.leaf_weight_device",
                       fmt::format("{}:{} {}", device.major, device.minor, *device.leaf_weight)));
          }
        }
        for (const auto& [rates, name] : throttles) {
          for (const oci::BlockIoDeviceRate& rate : *rates) {
            HV_TRY(set(place, fmt::format("blkio.throttle.{}_device", name),
                       fmt::format("{}:{} {}", rate.major, rate.minor, rate.rate)));
          }
        }
      } else {
        // Leaf weights have no v2 equivalent: ignored.
        const bool bfq = exists(file(place, "io.bfq.weight"));
        if (weight) {
          HV_TRY(bfq ? set(place, "io.bfq.weight", std::to_string(*weight))
                     : set(place, "io.weight",
                           std::to_string(cgroup_blkio_weight_to_io_weight(*weight))));
        }
        for (const oci::BlockIoDeviceWeight& device : io.weight_device) {
          if (device.weight) {
            const uint64_t value =
                bfq ? *device.weight : cgroup_blkio_weight_to_io_weight(*device.weight);
            HV_TRY(set(place, bfq ? "io.bfq.weight" : "io.weight",
                       fmt::format("{}:{} {}", device.major, device.minor, value)));
          }
        }
        static constexpr std::string_view kIoMaxKeys[] = {"rbps", "wbps", "riops", "wiops"};
        for (size_t i = 0; i < 4; ++i) {
          for (const oci::BlockIoDeviceRate& rate : *throttles[i].first) {
            HV_TRY(
                set(place, "io.max",
                    fmt::format("{}:{} {}={}", rate.major, rate.minor, kIoMaxKeys[i], rate.rate)));
          }
        }
      }
    }
  }

  for (const oci::HugepageLimit& hugepages : resources.hugepage_limits) {
    if (!plain_file_name(hugepages.page_size)) {
      return make_error(refused, "invalid hugepage size \"{}\"", hugepages.page_size);
    }
    const Place& place = *HV_TRY(must("hugetlb", "hugetlb"));
    const std::string name = place.v2
                                 ? fmt::format("hugetlb.{}.max", hugepages.page_size)
                                 : fmt::format("hugetlb.{}.limit_in_bytes", hugepages.page_size);
    if (!exists(file(place, name))) {
      return make_error(refused,
                        "hugepage size {} is not supported by this host ({} does not exist)",
                        hugepages.page_size, file(place, name));
    }
    HV_TRY(set(place, name, std::to_string(hugepages.limit)));
  }

  if (!resources.devices.empty()) {
    const Place* v1 = place_for("devices", "");
    if (v1 != nullptr) {
      HV_TRY(set(*v1, "devices.deny", "a"));
      for (const oci::DeviceRule& rule : resources.devices) {
        HV_TRY(set(*v1, rule.allow ? "devices.allow" : "devices.deny", cgroup_device_rule(rule)));
      }
    }
    if (const Place* v2 = v2_place()) {
      // The kernel asks both the v1 controller and the v2 programs, so on a hybrid host the
      // program is a second, independent enforcement of the same rules. It is required only
      // where it is the sole one: a hybrid host's v1 controller suffices on kernels (or in
      // confined runtimes) without cgroup BPF.
      Fd directory(::open(dir(*v2).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      Status attached =
          directory.valid()
              ? attach_device_filter(directory.get(), compile_device_filter(resources.devices))
              : Status(Error::from_errno(fmt::format("cannot open {}", dir(*v2))));
      if (!attached.ok() && v1 == nullptr) {
        return attached;
      }
    }
  }

  if (!resources.unified.empty()) {
    const Place* place = v2_place();
    if (place == nullptr) {
      return make_error(refused, "unified cgroup resources need cgroup v2, which this host lacks");
    }
    for (const auto& [key, value] : resources.unified) {
      if (!plain_file_name(key)) {
        return make_error(refused, "invalid unified cgroup file name \"{}\"", key);
      }
      HV_TRY(set(*place, key, value));
    }
  }
  return {};
}

Status Cgroup::add_process(pid_t pid) {
  for (const Place& place : places_) {
    HV_TRY(write_text(dir(place) + "/cgroup.procs", std::to_string(pid)));
  }
  return {};
}

Result<std::vector<pid_t>> Cgroup::pids() const {
  const Place* place = process_place();
  if (place == nullptr) {
    return std::vector<pid_t>{};
  }
  std::vector<pid_t> pids;
  HV_TRY(read_procs(dir(*place), pids, false));
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

Result<std::vector<pid_t>> Cgroup::all_pids() const {
  std::vector<pid_t> pids;
  for (const Place& place : places_) {
    HV_TRY(read_procs(dir(place), pids, true));
  }
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

Status Cgroup::freeze() {
  return set_frozen(true);
}
Status Cgroup::thaw() {
  return set_frozen(false);
}

Status Cgroup::set_frozen(bool frozen) {
  const std::string_view verb = frozen ? "freeze" : "thaw";
  // Where the request goes, and how to tell it has been carried out: the v1 freezer's state
  // file, or cgroup v2's cgroup.freeze and the "frozen" key of cgroup.events.
  std::string request_file, request, done_file;
  std::function<bool(const std::string&)> done;
  if (const Place* place = place_for("freezer", "")) {
    request_file = done_file = dir(*place) + "/freezer.state";
    request = frozen ? "FROZEN" : "THAWED";
    done = [&](const std::string& text) { return trim(text) == request; };
  } else if (const Place* v2 = v2_place()) {
    request_file = dir(*v2) + "/cgroup.freeze";
    done_file = dir(*v2) + "/cgroup.events";
    request = frozen ? "1" : "0";
    done = [&](const std::string& text) { return (keyed_value(text, "frozen") == 1u) == frozen; };
  } else {
    return make_error(ExitStatus::BadConfig,
                      "cannot {}: neither the v1 freezer nor cgroup v2 is mounted", verb);
  }
  HV_TRY(write_text(request_file, request));
  const auto deadline = Clock::now() + (frozen ? 10s : 5s);
  for (int round = 1;; ++round) {
    if (done(HV_TRY(read_text(done_file)))) {
      return {};
    }
    if (Clock::now() > deadline) {
      if (frozen) {  // half-frozen is worse than not frozen
        (void)write_text(request_file, request_file == done_file ? "THAWED" : "0");
      }
      return make_error(ExitStatus::HostError, "cannot {} the cgroup {}{}", verb, path_,
                        frozen ? ": its processes did not stop in time" : "");
    }
    // A v1 task that was forking or in an uninterruptible sleep can leave the cgroup FREEZING:
    // asking again retries it.
    if (round % 50 == 0) {
      HV_TRY(write_text(request_file, request));
    }
    std::this_thread::sleep_for(1ms * std::min(round, 10));
  }
}

Result<bool> Cgroup::frozen() const {
  if (const Place* place = place_for("freezer", "")) {
    return trim(HV_TRY(read_text(dir(*place) + "/freezer.state"))) == "FROZEN";
  }
  const Place* place = v2_place();
  if (place == nullptr) {
    return false;
  }
  return trim(HV_TRY(read_text(dir(*place) + "/cgroup.freeze"))) == "1";
}

Status Cgroup::kill_all(int signal) {
  auto send = [&](const std::vector<pid_t>& pids) -> Status {
    for (pid_t pid : pids) {
      if (::kill(pid, signal) != 0 && errno != ESRCH) {
        return Error::from_errno(fmt::format("cannot signal process {}", pid));
      }
    }
    return {};
  };
  if (signal != SIGKILL) {
    return send(HV_TRY(pids()));
  }
  // cgroup v2 kills a whole cgroup at once, forks included (Linux 5.14+).
  if (const Place* place = v2_place(); place != nullptr && exists(dir(*place) + "/cgroup.kill")) {
    (void)write_text(dir(*place) + "/cgroup.kill", "1");
  }
  // Elsewhere: stop the v1 freezer cgroup so that nothing forks while it is being killed, kill,
  // and thaw (frozen v1 tasks die only once thawed). Repeat until nothing is left.
  const Place* freezer = place_for("freezer", "");
  const auto deadline = Clock::now() + 10s;
  for (int round = 1;; ++round) {
    const std::vector<pid_t> pids = HV_TRY(all_pids());
    if (pids.empty()) {
      return {};
    }
    if (Clock::now() > deadline) {
      return make_error(ExitStatus::HostError,
                        "{} processes are still in the cgroup {} after SIGKILL", pids.size(),
                        path_);
    }
    if (freezer != nullptr) {
      (void)write_text(dir(*freezer) + "/freezer.state", "FROZEN");
    }
    HV_TRY(send(pids));
    if (freezer != nullptr) {
      (void)write_text(dir(*freezer) + "/freezer.state", "THAWED");
    }
    std::this_thread::sleep_for(1ms * std::min(round, 20));
  }
}

Result<uint64_t> Cgroup::oom_kill_count() const {
  const Place* place = place_for("memory", "memory");
  if (place == nullptr) {
    place = v2_place();  // memory.events only exists where the controller is enabled
  }
  if (place == nullptr) {
    return uint64_t{0};
  }
  const std::string name = place->v2 ? "memory.events" : "memory.oom_control";
  const std::string path = dir(*place) + "/" + name;
  if (!exists(path)) {
    return uint64_t{0};
  }
  const std::string text = HV_TRY(read_text(path));
  return keyed_value(text, "oom_kill").value_or(0);
}

Status Cgroup::destroy() {
  Status result = kill_all(SIGKILL);
  const size_t depth = components_.size();
  for (Place& place : places_) {
    Status removed = remove_tree(dir(place));
    if (!removed.ok()) {
      if (result.ok()) {
        result = std::move(removed);
      }
      continue;
    }
    // The parents this object may remove, deepest first, while they are empty.
    for (size_t i = depth - 1; i-- > place.remove_from;) {
      if (::rmdir(level(place, i).c_str()) != 0 && errno != ENOENT) {
        break;
      }
    }
  }
  return result;
}

}  // namespace hv::container
