// What the end-to-end tests read from the host: files whole, and the mount table, so that a test
// can check that a guest or container left nothing behind.
#pragma once

#include <string>
#include <vector>

namespace hv::test {

// The file's bytes; empty if it cannot be read.
std::string read_text(const std::string& path);

// Mount points, as /proc/self/mountinfo lists them (field 5), sorted; those starting with
// `ignored_prefix` (another test's, running at the same time) left out.
std::vector<std::string> host_mounts(const std::string& ignored_prefix = "");

// The podman tests' temporary directories: podman mounts a tmpfs for each container's /dev/shm
// there, on the host, while a podman test runs.
inline constexpr const char* kPodmanTestDirPrefix = "/tmp/hv-podman-test-";

}  // namespace hv::test
