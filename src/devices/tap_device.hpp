// The host end of a guest's network card: a TAP interface (`--net tap=NAME`). Frames the guest
// sends are written to it and appear on the host as received by NAME; frames the host sends out
// of NAME are read from it for the guest.
//
// With a virtio-net header (`vnet_header`), every frame read or written starts with the 12-byte
// struct virtio_net_hdr_v1 (the kernel's TUNSETVNETHDRSZ), so checksum and segmentation offload
// information passes between the guest's driver and the host's stack without being looked at.
// Offloads stay off until set_offloads() enables those the guest negotiated.
//
// The descriptor is non-blocking; an I/O thread polls fd() for readability.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace hv {

class TapDevice {
 public:
  static constexpr size_t kVirtioNetHeaderSize = 12;
  static constexpr size_t kMaxFrameSize = 65536 + kVirtioNetHeaderSize;

  // Attaches to the TAP interface NAME, creating it if it does not exist (a persistent interface
  // made beforehand with `ip tuntap add` is what lets an unprivileged hv use it). Needs
  // /dev/net/tun.
  static Result<std::unique_ptr<TapDevice>> open(const std::string& name, bool vnet_header);

  const std::string& name() const { return name_; }
  int fd() const { return fd_.get(); }
  bool vnet_header() const { return vnet_header_; }

  // TUN_F_* flags: what the guest's driver accepts in frames coming from the host.
  Status set_offloads(unsigned flags);

  // One frame into `buffer`; 0 when none is waiting. A frame larger than the buffer is dropped by
  // the kernel's truncation rules and reported as an error.
  Result<size_t> read_frame(std::span<uint8_t> buffer);
  // One frame gathered from `pieces` (the guest's buffers, in order), written in one call.
  Status write_frame(std::span<const std::span<const uint8_t>> pieces);

 private:
  TapDevice(Fd fd, std::string name, bool vnet_header)
      : fd_(std::move(fd)), name_(std::move(name)), vnet_header_(vnet_header) {}

  Fd fd_;
  std::string name_;
  bool vnet_header_;
};

}  // namespace hv
