// The runtime's messages in runc's formats: errors always (on standard error, and in the --log
// file), debug lines with --debug (in the --log file, else on standard error). podman and
// containerd read the last JSON line of the log file to tell the user why the runtime failed,
// and show debug lines when asked to.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace hv::container {

struct RuntimeLogSettings {
  std::string path;    // --log: empty for none
  bool json = false;   // --log-format json
  bool debug = false;  // --debug
};

// RFC 3339 in UTC ("2026-11-24T16:44:41Z"), with nanoseconds as the OCI state's "created" has
// them, or without as in log lines.
std::string utc_timestamp(bool nanoseconds);

// Called once by the command line before any command runs.
void configure_runtime_log(RuntimeLogSettings settings);

void log_error(std::string_view message);

bool debug_enabled();
void log_debug_line(std::string_view message);

// Formats only when --debug is on: the runtime's hot paths pay nothing otherwise.
template <typename... Args>
void log_debug(fmt::format_string<Args...> format, Args&&... args) {
  if (debug_enabled()) {
    log_debug_line(fmt::format(format, std::forward<Args>(args)...));
  }
}

}  // namespace hv::container
