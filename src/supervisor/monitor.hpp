// The per-guest VMM process (`hv vmm`): one process per managed guest, so a guest that crashes
// its VMM, or a VMM killed outright, ends only that guest. It reads the guest's spec from its
// state directory, serves the console (console.log, console.sock), runs the machine confined
// (vmm/sandbox.hpp) or the container in the foreground, and leaves its account of the end in
// result.json for the supervisor.
#pragma once

#include <string>

#include "common/error.hpp"
#include "supervisor/guest_record.hpp"
#include "supervisor/guest_spec.hpp"
#include "vmm/vm_runner.hpp"

namespace hv {

struct MonitorOptions {
  std::string guest_dir;     // <state-dir>/guests/<name>: spec.json in, result.json out
  std::string cgroup;        // the guest's cgroup ("/hv-guests/<name>"); empty: none
  std::string runtime_root;  // the OCI runtime's state directory for container guests
};

// Runs the guest to its end; the exit status is 0 when the guest ended as a guest should.
int run_guest_monitor(const MonitorOptions& options);

// The end a machine's run comes to, as the supervisor records it.
GuestEnd machine_end(const Result<VmOutcome>& outcome);

// `hv run -f spec.json` of a container: in the foreground, on this terminal, no supervisor.
// Returns the container process's exit status (hv's own on an error, with a message).
int run_container_in_foreground(const GuestSpec& spec, const std::string& runtime_root);

}  // namespace hv
