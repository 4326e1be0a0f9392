// hv's process exit statuses. A guest that leaves through the debug-exit port makes hv exit with
// (value << 1) | 1, which is always odd; hv's own outcomes are therefore even, so a script can
// always tell a guest's answer from hv's.
#pragma once

namespace hv {

enum class ExitStatus : int {
  Ok = 0,             // guest powered off or reset, or the user quit with Ctrl-A x
  Usage = 2,          // unknown flag, malformed argument
  FileMissing = 4,    // kernel/initrd missing or unreadable
  BadImage = 6,       // kernel corrupt or in a format that cannot be loaded
  BadMemorySize = 8,  // memory size too small for the image, or too large for the host
  NoHypervisor = 10,  // /dev/kvm missing, not accessible, or unusable
  GuestCrashed = 12,  // triple fault, KVM internal error, emulation failure
  Timeout = 14,       // --timeout expired
  HostError = 16,     // a host system call failed
  BadConfig = 18,     // a container's config.json is malformed or asks for something invalid
};

constexpr int to_int(ExitStatus s) {
  return static_cast<int>(s);
}

}  // namespace hv
