#include "container/state.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/file.hpp"

namespace hv::container {

namespace {

constexpr const char* kOciVersion = "1.2.0";

Result<Fd> take_lock(const std::string& directory) {
  Fd fd(::open((directory + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    return Error::from_errno(fmt::format("cannot open the lock of {}", directory));
  }
  if (::flock(fd.get(), LOCK_EX) != 0) {
    return Error::from_errno(fmt::format("cannot lock {}", directory));
  }
  return fd;
}

}  // namespace

std::string_view status_name(ContainerStatus status) {
  switch (status) {
    case ContainerStatus::Creating:
      return "creating";
    case ContainerStatus::Created:
      return "created";
    case ContainerStatus::Running:
      return "running";
    case ContainerStatus::Paused:
      return "paused";
    case ContainerStatus::Stopped:
      return "stopped";
  }
  return "unknown";
}

std::string state_json(const ContainerState& state, ContainerStatus status, uint64_t oom_kills) {
  nlohmann::ordered_json json;
  json["ociVersion"] = kOciVersion;
  json["id"] = state.id;
  json["status"] = status_name(status);
  if (status != ContainerStatus::Stopped && state.pid > 0) {
    json["pid"] = state.pid;
  } else {
    json["pid"] = 0;
  }
  json["bundle"] = state.bundle;
  json["rootfs"] = state.rootfs;
  json["created"] = state.created;
  json["owner"] = state.owner;
  if (!state.annotations.empty()) {
    json["annotations"] = state.annotations;
  }
  if (oom_kills > 0) {
    json["oomKilled"] = true;
  }
  return json.dump(2);
}

Status validate_container_id(const std::string& id) {
  if (id.empty() || id.size() > 1024 || id[0] == '.') {
    return make_error(ExitStatus::Usage, "invalid container ID '{}'", id);
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '+' || c == '-' || c == '.';
    if (!ok) {
      return make_error(ExitStatus::Usage,
                        "invalid container ID '{}': only letters, digits and _+-. are allowed", id);
    }
  }
  return {};
}

uint64_t process_start_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) {
    return 0;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 3 && field == "Z") {
      return 0;  // a zombie has ended
    }
    if (i == 22) {
      return std::stoull(field);
    }
  }
  return 0;
}

Result<Fd> StateStore::create(const std::string& id) {
  HV_TRY(validate_container_id(id));
  if (::mkdir(root_.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error::from_errno(fmt::format("cannot create the state directory {}", root_));
  }
  const std::string dir = directory(id);
  // Searchable by all: the container's init, whatever user it has become, opens the exec FIFO
  // inside (the root above stays 0700, so only a process holding this directory open can).
  if (::mkdir(dir.c_str(), 0711) != 0) {
    if (errno == EEXIST) {
      return make_error(ExitStatus::Usage, "container {} already exists", id);
    }
    return Error::from_errno(fmt::format("cannot create {}", dir));
  }
  return take_lock(dir);
}

Result<Fd> StateStore::lock(const std::string& id) const {
  HV_TRY(validate_container_id(id));
  const std::string dir = directory(id);
  struct stat st {};
  if (::stat((dir + "/state.json").c_str(), &st) != 0) {
    return make_error(ExitStatus::FileMissing, "container {} does not exist", id);
  }
  return take_lock(dir);
}

Status StateStore::save(const ContainerState& state) const {
  nlohmann::json json;
  json["id"] = state.id;
  json["pid"] = state.pid;
  json["pid_start_time"] = state.pid_start_time;
  json["bundle"] = state.bundle;
  json["rootfs"] = state.rootfs;
  json["cgroup_path"] = state.cgroup_path;
  json["created"] = state.created;
  json["owner"] = state.owner;
  json["annotations"] = state.annotations;
  return write_file_atomically(directory(state.id) + "/state.json", json.dump(2),
                               Durability::Replaced);
}

Result<ContainerState> StateStore::load(const std::string& id) const {
  HV_TRY(validate_container_id(id));
  const std::string path = directory(id) + "/state.json";
  std::ifstream in(path);
  if (!in) {
    return make_error(ExitStatus::FileMissing, "container {} does not exist", id);
  }
  try {
    const nlohmann::json json = nlohmann::json::parse(in);
    ContainerState state;
    state.id = json.at("id").get<std::string>();
    state.pid = json.at("pid").get<pid_t>();
    state.pid_start_time = json.at("pid_start_time").get<uint64_t>();
    state.bundle = json.at("bundle").get<std::string>();
    state.rootfs = json.at("rootfs").get<std::string>();
    state.cgroup_path = json.at("cgroup_path").get<std::string>();
    state.created = json.at("created").get<std::string>();
    state.owner = json.at("owner").get<std::string>();
    state.annotations = json.at("annotations").get<std::map<std::string, std::string>>();
    return state;
  } catch (const nlohmann::json::exception& e) {
    return make_error(ExitStatus::HostError, "the state of container {} ({}) is damaged: {}", id,
                      path, e.what());
  }
}

Status StateStore::remove(const std::string& id) const {
  HV_TRY(validate_container_id(id));
  const std::string dir = directory(id);
  for (const char* name : {"state.json", "state.json.tmp", "exec.fifo", "lock"}) {
    if (::unlink((dir + "/" + name).c_str()) != 0 && errno != ENOENT) {
      return Error::from_errno(fmt::format("cannot remove {}/{}", dir, name));
    }
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    return Error::from_errno(fmt::format("cannot remove {}", dir));
  }
  return {};
}

Result<std::vector<std::string>> StateStore::list() const {
  std::vector<std::string> ids;
  DIR* dir = ::opendir(root_.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) {
      return ids;
    }
    return Error::from_errno(fmt::format("cannot read {}", root_));
  }
  while (dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    struct stat st {};
    if (name[0] != '.' && ::stat((root_ + "/" + name + "/state.json").c_str(), &st) == 0) {
      ids.push_back(name);
    }
  }
  ::closedir(dir);
  std::sort(ids.begin(), ids.end());
  return ids;
}

ContainerStatus StateStore::status(const ContainerState& state, bool frozen) const {
  if (state.pid <= 0) {
    return ContainerStatus::Creating;
  }
  if (process_start_time(state.pid) != state.pid_start_time) {
    return ContainerStatus::Stopped;
  }
  if (frozen) {
    return ContainerStatus::Paused;
  }
  struct stat st {};
  if (::stat(exec_fifo(state.id).c_str(), &st) == 0) {
    return ContainerStatus::Created;
  }
  return ContainerStatus::Running;
}

}  // namespace hv::container
