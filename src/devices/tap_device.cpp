#include "devices/tap_device.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace hv {

Result<std::unique_ptr<TapDevice>> TapDevice::open(const std::string& name, bool vnet_header) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return make_error(ExitStatus::Usage, "--net tap={}: an interface name has 1 to {} characters",
                      name, IFNAMSIZ - 1);
  }
  Fd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    return Error::from_errno("cannot open /dev/net/tun (TAP networking)",
                             errno == ENOENT ? ExitStatus::FileMissing : ExitStatus::HostError);
  }
  ifreq request{};
  std::memcpy(request.ifr_name, name.c_str(), name.size());
  request.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | (vnet_header ? IFF_VNET_HDR : 0));
  if (::ioctl(fd.get(), TUNSETIFF, &request) != 0) {
    return Error::from_errno(fmt::format(
        "cannot attach to the TAP interface {} (it may be in use, or not a TAP, or need "
        "CAP_NET_ADMIN to create)",
        name));
  }
  if (vnet_header) {
    int size = static_cast<int>(kVirtioNetHeaderSize);
    if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &size) != 0) {
      return Error::from_errno(fmt::format("cannot set {}'s virtio-net header size", name));
    }
  }
  auto tap = std::unique_ptr<TapDevice>(new TapDevice(std::move(fd), name, vnet_header));
  HV_TRY(tap->set_offloads(0));
  return tap;
}

Status TapDevice::set_offloads(unsigned flags) {
  if (!vnet_header_ && flags != 0) {
    return make_error(ExitStatus::HostError,
                      "TAP {}: offloads need the virtio-net header on the frames", name_);
  }
  if (::ioctl(fd_.get(), TUNSETOFFLOAD, flags) != 0) {
    return Error::from_errno(fmt::format("cannot set the offloads of TAP {}", name_));
  }
  return {};
}

Result<size_t> TapDevice::read_frame(std::span<uint8_t> buffer) {
  for (;;) {
    const ssize_t n = ::read(fd_.get(), buffer.data(), buffer.size());
    if (n >= 0) {
      return static_cast<size_t>(n);
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN) {
      return size_t{0};
    }
    return Error::from_errno(fmt::format("cannot read a frame from TAP {}", name_));
  }
}

Status TapDevice::write_frame(std::span<const std::span<const uint8_t>> pieces) {
  std::array<iovec, 64> vectors{};
  if (pieces.size() > vectors.size()) {
    return make_error(ExitStatus::HostError, "a frame in {} pieces is more than TAP {} takes",
                      pieces.size(), name_);
  }
  size_t total = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    vectors[i] = {const_cast<uint8_t*>(pieces[i].data()), pieces[i].size()};
    total += pieces[i].size();
  }
  for (;;) {
    const ssize_t n = ::writev(fd_.get(), vectors.data(), static_cast<int>(pieces.size()));
    if (n >= 0) {
      if (static_cast<size_t>(n) != total) {
        return make_error(ExitStatus::HostError, "TAP {} took {} of a {}-byte frame", name_, n,
                          total);
      }
      return {};
    }
    if (errno == EINTR) {
      continue;
    }
    // A full queue on the host side drops the frame, as a real wire would.
    if (errno == EAGAIN) {
      return {};
    }
    return Error::from_errno(fmt::format("cannot write a frame to TAP {}", name_));
  }
}

}  // namespace hv
