#include "devices/tap_device.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

namespace hv {
namespace {

// Each check in the child process has its own exit status, so a failure says which one.
enum ChildResult : int {
  kPassed = 0,
  kNoNamespace = 10,
  kOpenFailed,
  kConfigureFailed,
  kNoArpRequest,
  kWrongArpRequest,
  kWriteFailed,
  kNothingReceived,
  kWrongPayload,
};

constexpr const char* kTapName = "hvtap0";
constexpr uint8_t kGuestMac[6] = {0x02, 0, 0, 0, 0, 0x02};

uint16_t ip_checksum(const uint8_t* data, size_t length) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < length; i += 2) {
    sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  }
  while (sum >> 16) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}

bool configure_interface(std::array<uint8_t, 6>& mac) {
  const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq request{};
  std::strncpy(request.ifr_name, kTapName, IFNAMSIZ - 1);
  auto* address = reinterpret_cast<sockaddr_in*>(&request.ifr_addr);
  address->sin_family = AF_INET;
  ::inet_pton(AF_INET, "10.11.0.1", &address->sin_addr);
  bool ok = ::ioctl(sock, SIOCSIFADDR, &request) == 0;
  ::inet_pton(AF_INET, "255.255.255.0", &address->sin_addr);
  ok = ok && ::ioctl(sock, SIOCSIFNETMASK, &request) == 0;
  ok = ok && ::ioctl(sock, SIOCGIFFLAGS, &request) == 0;
  request.ifr_flags |= IFF_UP | IFF_RUNNING;
  ok = ok && ::ioctl(sock, SIOCSIFFLAGS, &request) == 0;
  ok = ok && ::ioctl(sock, SIOCGIFHWADDR, &request) == 0;
  std::memcpy(mac.data(), request.ifr_hwaddr.sa_data, 6);
  ::close(sock);
  return ok;
}

// In a network namespace of its own (nothing on the host changes): the host's stack talks to
// "the guest" (this process, at the TAP's file descriptor) in both directions.
int exchange_frames(bool vnet_header) {
  if (::unshare(CLONE_NEWNET) != 0) {
    return kNoNamespace;
  }
  Result<std::unique_ptr<TapDevice>> tap = TapDevice::open(kTapName, vnet_header);
  if (!tap.ok()) {
    return kOpenFailed;
  }
  std::array<uint8_t, 6> host_mac{};
  if (!configure_interface(host_mac)) {
    return kConfigureFailed;
  }
  const size_t header = vnet_header ? TapDevice::kVirtioNetHeaderSize : 0;

  // Host to guest: a datagram for 10.11.0.2 makes the host ask for its MAC address (ARP).
  const int sender = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in guest{};
  guest.sin_family = AF_INET;
  guest.sin_port = htons(9);
  ::inet_pton(AF_INET, "10.11.0.2", &guest.sin_addr);
  ::sendto(sender, "x", 1, 0, reinterpret_cast<sockaddr*>(&guest), sizeof(guest));
  std::vector<uint8_t> frame(TapDevice::kMaxFrameSize);
  bool found_arp = false;
  for (int attempt = 0; attempt < 50 && !found_arp; ++attempt) {
    pollfd ready{(*tap)->fd(), POLLIN, 0};
    ::poll(&ready, 1, 100);
    Result<size_t> n = (*tap)->read_frame(frame);
    if (!n.ok()) {
      return kNoArpRequest;
    }
    // IPv6 router solicitations and the like may come first: look for the ARP request.
    found_arp = *n >= header + 42 && frame[header + 12] == 0x08 && frame[header + 13] == 0x06;
    if (found_arp) {
      const uint8_t* arp = frame.data() + header + 14;
      const uint8_t wanted[4] = {10, 11, 0, 2};
      if (arp[7] != 1 || std::memcmp(arp + 24, wanted, 4) != 0) {
        return kWrongArpRequest;
      }
    }
  }
  if (!found_arp) {
    return kNoArpRequest;
  }

  // Guest to host: a UDP datagram from 10.11.0.2 to a socket listening on 10.11.0.1:7777.
  const int receiver = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_port = htons(7777);
  ::inet_pton(AF_INET, "10.11.0.1", &local.sin_addr);
  ::bind(receiver, reinterpret_cast<sockaddr*>(&local), sizeof(local));
  const std::string payload = "hello from the guest side";
  std::vector<uint8_t> packet(14 + 20 + 8 + payload.size());
  std::memcpy(packet.data(), host_mac.data(), 6);
  std::memcpy(packet.data() + 6, kGuestMac, 6);
  packet[12] = 0x08;  // IPv4
  uint8_t* ip = packet.data() + 14;
  ip[0] = 0x45;
  const uint16_t ip_length = static_cast<uint16_t>(20 + 8 + payload.size());
  ip[2] = static_cast<uint8_t>(ip_length >> 8);
  ip[3] = static_cast<uint8_t>(ip_length);
  ip[8] = 64;  // TTL
  ip[9] = 17;  // UDP
  const uint8_t source[4] = {10, 11, 0, 2}, destination[4] = {10, 11, 0, 1};
  std::memcpy(ip + 12, source, 4);
  std::memcpy(ip + 16, destination, 4);
  const uint16_t checksum = ip_checksum(ip, 20);
  ip[10] = static_cast<uint8_t>(checksum >> 8);
  ip[11] = static_cast<uint8_t>(checksum);
  uint8_t* udp = ip + 20;
  udp[0] = 5000 >> 8;
  udp[1] = 5000 & 0xff;
  udp[2] = 7777 >> 8;
  udp[3] = 7777 & 0xff;
  udp[4] = static_cast<uint8_t>((8 + payload.size()) >> 8);
  udp[5] = static_cast<uint8_t>(8 + payload.size());  // checksum 0: none, allowed over IPv4
  std::memcpy(udp + 8, payload.data(), payload.size());
  const std::array<uint8_t, TapDevice::kVirtioNetHeaderSize> no_offload{};
  std::vector<std::span<const uint8_t>> pieces;
  if (vnet_header) {
    pieces.push_back(no_offload);
  }
  pieces.push_back(std::span(packet).first(20));  // split, as guest buffers may be
  pieces.push_back(std::span(packet).subspan(20));
  if (!(*tap)->write_frame(pieces).ok()) {
    return kWriteFailed;
  }
  pollfd ready{receiver, POLLIN, 0};
  if (::poll(&ready, 1, 2000) != 1) {
    return kNothingReceived;
  }
  char received[128] = {};
  const ssize_t n = ::recv(receiver, received, sizeof(received), 0);
  return n == static_cast<ssize_t>(payload.size()) && payload == std::string(received, n)
             ? kPassed
             : kWrongPayload;
}

void expect_exchange(bool vnet_header) {
  if (::geteuid() != 0 || ::access("/dev/net/tun", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "needs root and /dev/net/tun";
  }
  const pid_t child = ::fork();
  if (child == 0) {
    ::_exit(exchange_frames(vnet_header));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == kNoNamespace) {
    GTEST_SKIP() << "cannot create a network namespace here";
  }
  EXPECT_EQ(WEXITSTATUS(status), kPassed) << "failed check " << WEXITSTATUS(status);
}

TEST(TapDevice, FramesPassBothWays) {
  expect_exchange(false);
}

TEST(TapDevice, FramesPassBothWaysWithTheVirtioNetHeader) {
  expect_exchange(true);
}

TEST(TapDevice, BadNamesAreRefused) {
  for (const std::string& name : {std::string(), std::string(16, 'x')}) {
    Result<std::unique_ptr<TapDevice>> tap = TapDevice::open(name, false);
    ASSERT_FALSE(tap.ok());
    EXPECT_EQ(tap.error().status, ExitStatus::Usage);
    EXPECT_NE(tap.error().message.find("--net tap="), std::string::npos);
  }
}

}  // namespace
}  // namespace hv
