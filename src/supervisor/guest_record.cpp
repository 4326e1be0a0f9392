#include "supervisor/guest_record.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <fstream>
#include <sstream>

#include "common/fd.hpp"

namespace hv {

namespace {

constexpr std::array kStateNames = {"created", "running", "paused", "exited", "failed"};

template <typename T>
Result<T> field(const nlohmann::json& json, const char* name) {
  if (!json.contains(name)) {
    return make_error(ExitStatus::BadConfig, "the record has no \"{}\"", name);
  }
  try {
    return json.at(name).get<T>();
  } catch (const nlohmann::json::exception&) {
    return make_error(ExitStatus::BadConfig, "the record's \"{}\" has the wrong type", name);
  }
}

}  // namespace

std::string_view guest_state_name(GuestState state) {
  return kStateNames[static_cast<size_t>(state)];
}

std::optional<GuestState> parse_guest_state(std::string_view name) {
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (name == kStateNames[i]) {
      return static_cast<GuestState>(i);
    }
  }
  return std::nullopt;
}

bool end_is_failure(const GuestEnd& end) {
  return end.kind == "crash" || end.kind == "timeout" || end.kind == "killed" ||
         end.kind == "oom" || end.kind == "error" || end.kind == "lost";
}

nlohmann::json to_json(const GuestEnd& end) {
  return {{"kind", end.kind}, {"status", end.status}, {"message", end.message}};
}

Result<GuestEnd> guest_end_from_json(const nlohmann::json& json) {
  if (!json.is_object()) {
    return make_error(ExitStatus::BadConfig, "a guest's end is not a JSON object");
  }
  GuestEnd end;
  end.kind = HV_TRY(field<std::string>(json, "kind"));
  end.status = HV_TRY(field<int>(json, "status"));
  end.message = HV_TRY(field<std::string>(json, "message"));
  return end;
}

nlohmann::json to_json(const GuestRecord& r) {
  nlohmann::json json = {{"name", r.name},
                         {"engine", r.engine},
                         {"state", guest_state_name(r.state)},
                         {"pid", r.pid},
                         {"pid_start_time", r.pid_start_time},
                         {"cgroup", r.cgroup},
                         {"created_at_ms", r.created_at_ms},
                         {"started_at_ms", r.started_at_ms},
                         {"ended_at_ms", r.ended_at_ms}};
  json["end"] = r.end ? to_json(*r.end) : nlohmann::json(nullptr);
  return json;
}

Result<GuestRecord> guest_record_from_json(const nlohmann::json& json) {
  if (!json.is_object()) {
    return make_error(ExitStatus::BadConfig, "the record is not a JSON object");
  }
  GuestRecord r;
  r.name = HV_TRY(field<std::string>(json, "name"));
  r.engine = HV_TRY(field<std::string>(json, "engine"));
  const std::string state = HV_TRY(field<std::string>(json, "state"));
  const std::optional<GuestState> parsed = parse_guest_state(state);
  if (!parsed) {
    return make_error(ExitStatus::BadConfig, "the record's state \"{}\" is unknown", state);
  }
  r.state = *parsed;
  r.pid = HV_TRY(field<pid_t>(json, "pid"));
  r.pid_start_time = HV_TRY(field<uint64_t>(json, "pid_start_time"));
  r.cgroup = HV_TRY(field<std::string>(json, "cgroup"));
  r.created_at_ms = HV_TRY(field<int64_t>(json, "created_at_ms"));
  r.started_at_ms = HV_TRY(field<int64_t>(json, "started_at_ms"));
  r.ended_at_ms = HV_TRY(field<int64_t>(json, "ended_at_ms"));
  if (json.contains("end") && !json.at("end").is_null()) {
    r.end = HV_TRY(guest_end_from_json(json.at("end")));
  }
  return r;
}

Status save_record(const std::string& guest_dir, const GuestRecord& record) {
  return write_file_atomically(guest_dir + "/record.json", to_json(record).dump(2) + "\n",
                               Durability::Synced);
}

Result<GuestRecord> load_record(const std::string& guest_dir) {
  const std::string path = guest_dir + "/record.json";
  const std::string text = HV_TRY(read_text_file(path));
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) {
    return make_error(ExitStatus::BadConfig, "{} is not valid JSON", path);
  }
  Result<GuestRecord> record = guest_record_from_json(json);
  if (!record.ok()) {
    return make_error(ExitStatus::BadConfig, "{}: {}", path, record.error().message);
  }
  return record;
}

Status save_end(const std::string& guest_dir, const GuestEnd& end) {
  return write_file_atomically(guest_dir + "/result.json", to_json(end).dump() + "\n",
                               Durability::Synced);
}

std::optional<GuestEnd> load_end(const std::string& guest_dir) {
  Result<std::string> text = read_text_file(guest_dir + "/result.json");
  if (!text.ok()) {
    return std::nullopt;
  }
  const nlohmann::json json = nlohmann::json::parse(*text, nullptr, false);
  Result<GuestEnd> end = guest_end_from_json(json);
  if (json.is_discarded() || !end.ok()) {
    return std::nullopt;
  }
  return *end;
}

std::optional<uint64_t> process_start_time(pid_t pid) {
  Result<std::string> stat = read_text_file(fmt::format("/proc/{}/stat", pid));
  if (!stat.ok()) {
    return std::nullopt;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  const size_t close = stat->rfind(')');
  if (close == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream fields(stat->substr(close + 2));
  std::string value;
  // Field 3 (state) is the first after the name; field 22 is 19 further on.
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> value)) {
      return std::nullopt;
    }
  }
  try {
    return std::stoull(value);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace hv
