#include "container/runtime_log.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

namespace hv::container {

namespace {

RuntimeLogSettings g_settings;

std::string log_line(std::string_view level, std::string_view message) {
  if (g_settings.json) {
    const nlohmann::json line = {
        {"level", level}, {"msg", message}, {"time", utc_timestamp(false)}};
    return line.dump() + "\n";
  }
  // logrus's text format, as runc writes it; the message is a quoted Go string.
  return fmt::format("time=\"{}\" level={} msg={}\n", utc_timestamp(false), level,
                     nlohmann::json(std::string(message)).dump());
}

void append_to_log_file(const std::string& line) {
  std::ofstream(g_settings.path, std::ios::app) << line;
}

}  // namespace

std::string utc_timestamp(bool nanoseconds) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  if (!nanoseconds) {
    return fmt::format("{}Z", text);
  }
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() %
      1'000'000'000;
  return fmt::format("{}.{:09d}Z", text, nanos);
}

void configure_runtime_log(RuntimeLogSettings settings) {
  g_settings = std::move(settings);
}

void log_error(std::string_view message) {
  fmt::print(stderr, "hv: error: {}\n", message);
  if (!g_settings.path.empty()) {
    append_to_log_file(log_line("error", message));
  }
}

bool debug_enabled() {
  return g_settings.debug;
}

void log_debug_line(std::string_view message) {
  if (!g_settings.path.empty()) {
    append_to_log_file(log_line("debug", message));
  } else {
    fmt::print(stderr, "hv: debug: {}\n", message);
  }
}

}  // namespace hv::container
