#include "container/container_config.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include "container/oci_config.hpp"

namespace hv::container {

namespace {

std::string_view env_key(std::string_view entry) {
  return entry.substr(0, entry.find('='));
}

}  // namespace

void apply_simple_limits(oci::Config& config, std::optional<uint64_t> memory_bytes,
                         std::optional<double> cpus, std::optional<int64_t> pids) {
  oci::Resources& resources =
      config.linux.resources ? *config.linux.resources : config.linux.resources.emplace();
  if (memory_bytes) {
    oci::MemoryLimits& memory = resources.memory ? *resources.memory : resources.memory.emplace();
    memory.limit = static_cast<int64_t>(*memory_bytes);
    memory.swap = static_cast<int64_t>(*memory_bytes);
  }
  if (pids) {
    resources.pids_limit = *pids;
  }
  if (cpus) {
    oci::CpuLimits& cpu = resources.cpu ? *resources.cpu : resources.cpu.emplace();
    cpu.period = kCpuPeriodMicroseconds;
    cpu.quota = static_cast<int64_t>(std::llround(*cpus * kCpuPeriodMicroseconds));
  }
}

Result<oci::Config> simple_container_config(const SimpleContainer& container) {
  if (container.args.empty()) {
    return make_error(ExitStatus::BadConfig, "a container needs a command to run");
  }
  if (container.rootfs.empty() || container.rootfs.front() != '/') {
    return make_error(ExitStatus::BadConfig, "the container's root '{}' is not an absolute path",
                      container.rootfs);
  }
  if (container.cwd.empty() || container.cwd.front() != '/') {
    return make_error(ExitStatus::BadConfig,
                      "the container's working directory '{}' is not an absolute path",
                      container.cwd);
  }
  oci::Config config = HV_TRY(parse_oci_config(default_oci_config_json(false)));
  config.root.path = container.rootfs;
  config.root.readonly = false;
  config.hostname = container.hostname;
  oci::Process& process = *config.process;
  process.args = container.args;
  process.cwd = container.cwd;
  process.terminal = container.terminal;
  for (const std::string& entry : container.env) {
    const std::string_view key = env_key(entry);
    auto same = std::ranges::find_if(process.env,
                                     [key](const std::string& e) { return env_key(e) == key; });
    if (same != process.env.end()) {
      *same = entry;
    } else {
      process.env.push_back(entry);
    }
  }
  if (container.host_network) {
    std::erase_if(config.linux.namespaces,
                  [](const oci::Namespace& ns) { return ns.type == oci::NamespaceType::Network; });
  }
  // Deny every device but the ones the runtime puts in /dev (runc's default allow-list): the
  // container cannot reach a host disk even where it could create a node for one.
  oci::Resources& resources = config.linux.resources.emplace();
  resources.devices.push_back({false, 'a', std::nullopt, std::nullopt, "rwm"});
  for (const auto& [major, minor] :
       {std::pair{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}}) {
    resources.devices.push_back({true, 'c', major, minor, "rwm"});
  }
  resources.devices.push_back({true, 'c', 136, std::nullopt, "rwm"});  // /dev/pts/*
  apply_simple_limits(config, container.memory_bytes, container.cpus, container.pids);
  return config;
}

}  // namespace hv::container
