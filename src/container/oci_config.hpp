// config.json: parsing and validating an OCI runtime configuration into the oci:: model, and the
// default document `hv oci spec` writes.
//
// Every validation error has ExitStatus::BadConfig and a message naming the offending value by
// its jq path:
//   config.json: .process.args: must be a non-empty array of strings
//   config.json: .linux.namespaces[2].type: unknown namespace type "foo"
//   config.json: .annotations["org.example.key"]: must be a string
// A JSON syntax error names the byte offset, line and column:
//   config.json: invalid JSON at byte 17 (line 2, column 5): syntax error while parsing ...
//
// Unknown members are ignored (the spec allows extensions); a JSON null counts as absent, as in
// runc; members of the wrong JSON type, out-of-range numbers and unknown enum values are errors.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "container/oci_spec.hpp"

namespace hv::container {

// Parses and validates a config.json document. `process` may be absent here (e.g. `hv oci
// state` never needs it); load_oci_bundle_config() requires it.
Result<oci::Config> parse_oci_config(std::string_view json_text);

// Reads <bundle_dir>/config.json (ExitStatus::FileMissing naming the full path if it cannot be
// read), parses it, requires .root and .process, and makes root.path absolute (a relative one is
// relative to the bundle directory).
Result<oci::Config> load_oci_bundle_config(const std::string& bundle_dir);

// The document `hv oci spec [--rootless]` writes: the same as `runc spec [--rootless]`, with
// hostname "hv". The rootless variant maps the caller's effective uid/gid to 0 in a new user
// namespace, keeps the host's network namespace, bind-mounts /sys and has no cgroup mount or
// cgroup resources. Tab-indented, newline-terminated.
std::string default_oci_config_json(bool rootless);

}  // namespace hv::container
