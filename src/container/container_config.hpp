// The OCI configuration of a "simple" container: one command in a root directory, with hv's
// default configuration around it (the document `hv oci spec` writes). `hv container run` and
// the guest spec (supervisor/guest_spec.hpp) both build their containers here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "container/oci_spec.hpp"

namespace hv::container {

struct SimpleContainer {
  std::string rootfs;             // the root directory, absolute (not checked for existence)
  std::vector<std::string> args;  // the program and its arguments; non-empty
  // "KEY=value" entries merged into the default environment (PATH, TERM): an entry replaces the
  // default of the same KEY, others are appended in order.
  std::vector<std::string> env;
  std::string cwd = "/";
  std::string hostname = "hv";
  bool host_network = false;  // false: a new, empty network namespace
  bool terminal = false;
  // Limits, applied as linux.resources (which then holds nothing else, as `hv container run`
  // has always done: no device rules).
  std::optional<uint64_t> memory_bytes;  // memory.limit and memory+swap limit
  std::optional<double> cpus;            // CPU quota per 100 ms period, in CPUs
  std::optional<int64_t> pids;           // most processes at once
};

// Period of the CPU quota `cpus` becomes, in microseconds.
constexpr uint64_t kCpuPeriodMicroseconds = 100'000;

// Sets the limits in `config.linux.resources` (created if absent), keeping its other entries:
// memory limit and memory+swap limit, CPU quota over kCpuPeriodMicroseconds, pids limit.
void apply_simple_limits(oci::Config& config, std::optional<uint64_t> memory_bytes,
                         std::optional<double> cpus, std::optional<int64_t> pids);

// The default configuration with the container's root, process and namespaces. Fails
// (ExitStatus::BadConfig) on an empty args or a relative rootfs/cwd.
Result<oci::Config> simple_container_config(const SimpleContainer& container);

}  // namespace hv::container
