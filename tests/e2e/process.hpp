// Runs a command to completion for end-to-end tests, capturing stdout and stderr separately,
// with a hard time limit (the child is killed when it runs over).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace hv::test {

struct ProcessResult {
  int exit_status = -1;  // exit code, or 128 + signal when killed
  bool timed_out = false;
  std::string out;
  std::string err;
};

ProcessResult run_process(const std::vector<std::string>& argv,
                          std::chrono::milliseconds limit = std::chrono::seconds(60),
                          const std::string& stdin_data = {});

bool executable_exists(const std::string& name);

}  // namespace hv::test
