// OCI hooks: programs the runtime runs at fixed points of a container's life, each with the
// container's state JSON on its standard input, its own args and env, and an optional timeout.
#pragma once

#include <string>
#include <vector>

#include "common/error.hpp"
#include "container/oci_spec.hpp"

namespace hv::container {

// Runs one hook to completion: an error if it cannot start, exits non-zero, dies of a signal or
// outlives its timeout (then it is killed).
Status run_hook(const oci::Hook& hook, const std::string& state_json);

// Runs `hooks` in order and stops at the first failure; `stage` names them in the error.
Status run_hooks(const std::vector<oci::Hook>& hooks, const std::string& stage,
                 const std::string& state_json);

}  // namespace hv::container
