#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace hv::cli {

struct RunOptions {
  std::string engine = "kvm";
  std::string kernel;
  std::vector<std::string> initrds;
  std::string cmdline;
  std::string memory = "256M";
  uint32_t cpus = 1;
  std::string format = "auto";
  std::string load_address = "0x7c00";
  double timeout_seconds = 0;
  bool trace_exits = false;
  std::string trace_path;
};

void add_run_options(CLI::App& command, RunOptions& options);
int run_command(const RunOptions& options);

}  // namespace hv::cli
