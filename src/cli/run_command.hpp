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
  std::string profile_path;
  bool no_reboot = false;
  std::vector<std::string> disks;  // --disk FILE[,ro][,direct][,serial=ID][,if=virtio|ide]
  std::vector<std::string> nets;   // --net tap=NAME[,mac=MAC]
  std::string console = "serial";
  bool rng = false;
  std::string spec_file;      // -f: a guest spec (supervisor/guest_spec.hpp) instead of the options
  bool sandbox = false;       // --sandbox: confine the VMM (mount jail, no capabilities, seccomp)
  std::string demo;           // "linux": Debian's kernel and hv's initramfs from the image cache
  bool engine_given = false;  // set by the parser when --engine was on the command line
  bool cmdline_given = false;
};

void add_run_options(CLI::App& command, RunOptions& options);
int run_command(const RunOptions& options);

}  // namespace hv::cli
