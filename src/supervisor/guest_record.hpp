// What the supervisor knows of one guest, and how it survives the supervisor: every change is
// written to <state-dir>/guests/<name>/record.json by write-then-rename, so a supervisor killed at
// any moment finds either the old record or the new one, never half of one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/file.hpp"

namespace hv {

enum class GuestState { Created, Running, Paused, Exited, Failed };
std::string_view guest_state_name(GuestState state);
std::optional<GuestState> parse_guest_state(std::string_view name);

// How a guest ended. `kind` is one word a script can switch on; `message` is for people.
//   poweroff, debug-exit, exited (container process ended), stopped (asked to), reset: Exited
//   crash, timeout, killed (the VMM process died by a signal), oom, error, lost: Failed
struct GuestEnd {
  std::string kind;
  int status = 0;  // hv run's exit status for machines; the process's status for containers
  std::string message;
};
bool end_is_failure(const GuestEnd& end);
nlohmann::json to_json(const GuestEnd& end);
Result<GuestEnd> guest_end_from_json(const nlohmann::json& json);

struct GuestRecord {
  std::string name;
  std::string engine;  // "kvm", "emulate", "container"
  GuestState state = GuestState::Created;
  pid_t pid = 0;                // the VMM process while running or paused
  uint64_t pid_start_time = 0;  // its start time (/proc/PID/stat field 22): tells a reused PID
  std::string cgroup;           // "/hv-guests/<name>", empty until started
  int64_t created_at_ms = 0;    // wall clock, milliseconds since the epoch
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  std::optional<GuestEnd> end;
};
nlohmann::json to_json(const GuestRecord& record);
Result<GuestRecord> guest_record_from_json(const nlohmann::json& json);

Status save_record(const std::string& guest_dir, const GuestRecord& record);
Result<GuestRecord> load_record(const std::string& guest_dir);

// The VMM process's own account of the end, written by it as its last act (result.json).
Status save_end(const std::string& guest_dir, const GuestEnd& end);
std::optional<GuestEnd> load_end(const std::string& guest_dir);

// Field 22 of /proc/PID/stat (start time in clock ticks since boot), or nullopt when the process
// does not exist.
std::optional<uint64_t> process_start_time(pid_t pid);

int64_t wall_clock_ms();

}  // namespace hv
