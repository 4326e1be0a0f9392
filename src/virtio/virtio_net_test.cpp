// virtio-net behind virtio-mmio, driven as a guest driver drives it, against a real TAP interface.
// Every test runs in a child process inside a network namespace of its own (nothing on the host
// changes): the child's "host" is the namespace's network stack, its "guest" the rings in guest
// memory. A failed check in the child reports its line through a pipe and exits.
#include "virtio/virtio_net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "devices/device_test_support.hpp"
#include "virtio/virtio_mmio.hpp"
#include "virtio/virtio_test_support.hpp"
#include "vm/io_thread.hpp"

namespace hv {
namespace {

using namespace std::chrono_literals;
using device_test::TestMachine;
using virtio_test::MmioDriver;
using virtio_test::snapshot;
using virtio_test::SplitRing;
using virtio_test::test_layout;

constexpr const char* kTapName = "hvnet0";
constexpr std::array<uint8_t, 6> kGuestMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
constexpr uint8_t kHostIp[4] = {10, 11, 0, 1};
constexpr uint8_t kGuestIp[4] = {10, 11, 0, 2};
constexpr uint32_t kGsi = 6;
constexpr uint32_t kQueueSize = 16;
constexpr uint64_t kVersion1 = 1ull << kVirtioFeatureVersion1;
constexpr uint64_t kIndirect = 1ull << kVirtioRingFeatureIndirectDesc;
constexpr size_t kHeader = VirtioNet::kHeaderSize;
constexpr uint16_t kTestEtherType = 0x88b5;  // IEEE "local experimental"

const VirtqueueLayout kRxLayout = test_layout(kQueueSize);
const VirtqueueLayout kTxLayout{
    .size = kQueueSize, .desc_table = 0x20000, .avail_ring = 0x28000, .used_ring = 0x29000};
constexpr uint64_t kRxBuffers = 0x40000;  // buffer i at kRxBuffers + i * kRxBufferSize
constexpr uint32_t kRxBufferSize = 2048;  // what Linux posts: 1518 + header, rounded up
constexpr uint64_t kTxIndirectTable = 0x30000;
constexpr uint64_t kTxBuffers = 0x80000;  // up to 0x20000 bytes
constexpr int kNoNamespace = 77;

// ---- The child's side: checks that report through a pipe ------------------------------------

int report_fd = -1;

[[noreturn]] void child_failed(int line, const std::string& what) {
  const std::string message = fmt::format("virtio_net_test.cpp:{}: {}", line, what);
  [[maybe_unused]] ssize_t n = ::write(report_fd, message.data(), message.size());
  ::_exit(1);
}

#define NET_CHECK(condition)                   \
  do {                                         \
    if (!(condition)) {                        \
      child_failed(__LINE__, "! " #condition); \
    }                                          \
  } while (0)
#define NET_CHECK_EQ(actual, expected)                                                           \
  do {                                                                                           \
    const auto actual_value = (actual);                                                          \
    const auto expected_value = (expected);                                                      \
    if (!(actual_value == expected_value)) {                                                     \
      child_failed(__LINE__,                                                                     \
                   fmt::format("{} is {}, expected {}", #actual, actual_value, expected_value)); \
    }                                                                                            \
  } while (0)

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 3s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(1ms);
  }
  return condition();
}

// Runs `body` in a forked child inside a new network namespace; the child's first failed check,
// a crash or a hang (20 s) fails the test.
void run_in_network_namespace(const std::function<void()>& body) {
  if (::geteuid() != 0 || ::access("/dev/net/tun", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "needs root and /dev/net/tun";
  }
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(report[0]);
    report_fd = report[1];
    ::alarm(20);
    if (::unshare(CLONE_NEWNET) != 0) {
      ::_exit(kNoNamespace);
    }
    // No IPv6 in the namespace: its router solicitations would arrive at random moments.
    for (const char* path : {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
                             "/proc/sys/net/ipv6/conf/default/disable_ipv6"}) {
      const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
      if (fd >= 0) {
        [[maybe_unused]] ssize_t n = ::write(fd, "1", 1);
        ::close(fd);
      }
    }
    body();
    if (::testing::Test::HasFailure()) {
      child_failed(0, "a gtest assertion failed in the child (see above)");
    }
    ::_exit(0);
  }
  ::close(report[1]);
  std::string message;
  char buffer[512];
  for (ssize_t n; (n = ::read(report[0], buffer, sizeof(buffer))) > 0;) {
    message.append(buffer, static_cast<size_t>(n));
  }
  ::close(report[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  if (WIFSIGNALED(status)) {
    FAIL() << "the child died of signal " << WTERMSIG(status) << " (14: it hung)";
  }
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == kNoNamespace) {
    GTEST_SKIP() << "cannot create a network namespace here";
  }
  EXPECT_EQ(WEXITSTATUS(status), 0) << message;
}

// ---- Frames ----------------------------------------------------------------------------------

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

void put_be16(uint8_t* at, uint16_t value) {
  at[0] = static_cast<uint8_t>(value >> 8);
  at[1] = static_cast<uint8_t>(value);
}
uint16_t get_be16(const uint8_t* at) {
  return static_cast<uint16_t>(at[0] << 8 | at[1]);
}

std::vector<uint8_t> ethernet(const std::array<uint8_t, 6>& destination,
                              const std::array<uint8_t, 6>& source, uint16_t type,
                              size_t payload_length) {
  std::vector<uint8_t> frame(14 + payload_length);
  std::memcpy(frame.data(), destination.data(), 6);
  std::memcpy(frame.data() + 6, source.data(), 6);
  put_be16(frame.data() + 12, type);
  return frame;
}

// A UDP datagram from the guest (10.11.0.2:5000) to the host's 10.11.0.1:7777.
std::vector<uint8_t> udp_to_host(const std::array<uint8_t, 6>& host_mac,
                                 const std::string& payload) {
  std::vector<uint8_t> frame = ethernet(host_mac, kGuestMac, 0x0800, 20 + 8 + payload.size());
  uint8_t* ip = frame.data() + 14;
  ip[0] = 0x45;
  put_be16(ip + 2, static_cast<uint16_t>(20 + 8 + payload.size()));
  ip[8] = 64;  // TTL
  ip[9] = 17;  // UDP
  std::memcpy(ip + 12, kGuestIp, 4);
  std::memcpy(ip + 16, kHostIp, 4);
  put_be16(ip + 10, ip_checksum(ip, 20));
  uint8_t* udp = ip + 20;
  put_be16(udp, 5000);
  put_be16(udp + 2, 7777);
  put_be16(udp + 4, static_cast<uint16_t>(8 + payload.size()));  // checksum 0: none (IPv4)
  std::memcpy(udp + 8, payload.data(), payload.size());
  return frame;
}

// The guest's answer to the host's "who has 10.11.0.2?".
std::vector<uint8_t> arp_reply(const std::array<uint8_t, 6>& host_mac) {
  std::vector<uint8_t> frame = ethernet(host_mac, kGuestMac, 0x0806, 28);
  uint8_t* arp = frame.data() + 14;
  put_be16(arp, 1);  // Ethernet
  put_be16(arp + 2, 0x0800);
  arp[4] = 6;
  arp[5] = 4;
  put_be16(arp + 6, 2);  // reply
  std::memcpy(arp + 8, kGuestMac.data(), 6);
  std::memcpy(arp + 14, kGuestIp, 4);
  std::memcpy(arp + 18, host_mac.data(), 6);
  std::memcpy(arp + 24, kHostIp, 4);
  return frame;
}

// ---- The host side of the namespace --------------------------------------------------------

std::array<uint8_t, 6> configure_host_interface() {
  const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq request{};
  std::strncpy(request.ifr_name, kTapName, IFNAMSIZ - 1);
  auto* address = reinterpret_cast<sockaddr_in*>(&request.ifr_addr);
  address->sin_family = AF_INET;
  std::memcpy(&address->sin_addr, kHostIp, 4);
  NET_CHECK(::ioctl(sock, SIOCSIFADDR, &request) == 0);
  ::inet_pton(AF_INET, "255.255.255.0", &address->sin_addr);
  NET_CHECK(::ioctl(sock, SIOCSIFNETMASK, &request) == 0);
  NET_CHECK(::ioctl(sock, SIOCGIFFLAGS, &request) == 0);
  request.ifr_flags |= IFF_UP | IFF_RUNNING;
  NET_CHECK(::ioctl(sock, SIOCSIFFLAGS, &request) == 0);
  NET_CHECK(::ioctl(sock, SIOCGIFHWADDR, &request) == 0);
  std::array<uint8_t, 6> mac{};
  std::memcpy(mac.data(), request.ifr_hwaddr.sa_data, 6);
  ::close(sock);
  return mac;
}

// Sends raw Ethernet frames out of the TAP interface, i.e. to the guest.
class FrameSender {
 public:
  FrameSender() : fd_(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)) {
    NET_CHECK(fd_.valid());
    address_.sll_family = AF_PACKET;
    address_.sll_ifindex = static_cast<int>(::if_nametoindex(kTapName));
    address_.sll_halen = 6;
    std::memcpy(address_.sll_addr, kGuestMac.data(), 6);
    NET_CHECK(address_.sll_ifindex > 0);
  }
  bool send(std::span<const uint8_t> frame) {
    return ::sendto(fd_.get(), frame.data(), frame.size(), 0,
                    reinterpret_cast<const sockaddr*>(&address_),
                    sizeof(address_)) == static_cast<ssize_t>(frame.size());
  }

 private:
  Fd fd_;
  sockaddr_ll address_{};
};

// A test frame for the guest: kTestEtherType, `length` bytes in all, bytes after the Ethernet
// header numbered from `seed`.
std::vector<uint8_t> test_frame(const std::array<uint8_t, 6>& host_mac, size_t length,
                                uint8_t seed) {
  std::vector<uint8_t> frame = ethernet(kGuestMac, host_mac, kTestEtherType, length - 14);
  for (size_t i = 14; i < length; ++i) {
    frame[i] = static_cast<uint8_t>(seed + i);
  }
  return frame;
}

// ---- The guest side: a VirtioNet behind virtio-mmio, its IoThread, the driver ----------------

class NetRig {
 public:
  NetRig() {
    Result<std::unique_ptr<TapDevice>> opened = TapDevice::open(kTapName, true);
    NET_CHECK(opened.ok());
    tap_ = std::move(*opened);
    host_mac = configure_host_interface();
    auto device = std::make_unique<VirtioNet>(*tap_, kGuestMac);
    net = device.get();
    mmio = std::make_unique<VirtioMmio>(memory(), tm.machine->irq_line(kGsi), std::move(device));
    mmio->set_error_log([this](std::string_view line) {
      std::lock_guard lock(log_mutex_);
      log_.emplace_back(line);
    });
    driver = std::make_unique<MmioDriver>(*mmio);
    Result<std::unique_ptr<IoThread>> created = IoThread::create("hv-net-test");
    NET_CHECK(created.ok());
    io_ = std::move(*created);
    NET_CHECK(net->attach(*io_).ok());
    NET_CHECK(io_->start().ok());
  }

  GuestMemory& memory() { return tm.machine->memory(); }
  size_t log_lines() {
    std::lock_guard lock(log_mutex_);
    return log_.size();
  }

  // Negotiates (without EVENT_IDX, so the used ring's flags show the kick suppression), sets up
  // both queues on zeroed rings, DRIVER_OK.
  void bring_up(uint64_t features = kVersion1 | kIndirect | (1ull << kVirtioNetFMac) |
                                    (1ull << kVirtioNetFStatus) | (1ull << kVirtioNetFMtu)) {
    for (const VirtqueueLayout& layout : {kRxLayout, kTxLayout}) {
      NET_CHECK(memory().fill(layout.desc_table, 0, 16 * kQueueSize).ok());
      NET_CHECK(memory().fill(layout.avail_ring, 0, 6 + 2 * kQueueSize).ok());
      NET_CHECK(memory().fill(layout.used_ring, 0, 6 + 8 * kQueueSize).ok());
    }
    NET_CHECK((driver->negotiate(features) & kVirtioStatusFeaturesOk) != 0);
    NET_CHECK(driver->setup_queue(VirtioNet::kReceiveQueue, kRxLayout));
    NET_CHECK(driver->setup_queue(VirtioNet::kTransmitQueue, kTxLayout));
    driver->driver_ok();
    NET_CHECK((driver->status() & kVirtioStatusDriverOk) != 0);
  }

  // Posts receive buffer `index` (descriptor `index`) of `size` bytes.
  void post_rx(uint16_t index, uint32_t size = kRxBufferSize) {
    rx_ring.set_descriptor(
        index, {kRxBuffers + uint64_t{index} * kRxBufferSize, size, kVirtqDescWrite, 0});
    rx_ring.offer(index);
  }
  // The frame (header included) that the device returned in used slot `slot`.
  std::vector<uint8_t> received(uint16_t slot) {
    const virtio_test::UsedElement used = rx_ring.used(slot);
    NET_CHECK(used.id < kQueueSize && used.len <= kRxBufferSize);
    std::vector<uint8_t> bytes(used.len);
    NET_CHECK(memory().read(kRxBuffers + uint64_t{used.id} * kRxBufferSize, bytes).ok());
    return bytes;
  }
  bool wait_for_received(uint16_t count, std::chrono::milliseconds limit = 3s) {
    return eventually([&] { return rx_ring.used_idx() >= count; }, limit);
  }

  // Sends `frame` behind an all-zero header, split in `pieces` descriptors (through an indirect
  // table beyond the queue size); returns the used length.
  uint32_t transmit(std::span<const uint8_t> frame, size_t pieces = 2) {
    NET_CHECK(memory().fill(kTxBuffers, 0, kHeader).ok());
    NET_CHECK(memory().write(kTxBuffers + kHeader, frame).ok());
    std::vector<virtio_test::TestDescriptor> chain;
    chain.push_back({kTxBuffers, static_cast<uint32_t>(kHeader), 0, 0});
    const size_t piece = (frame.size() + pieces - 1) / pieces;
    for (size_t offset = 0; offset < frame.size(); offset += piece) {
      const size_t length = std::min(piece, frame.size() - offset);
      chain.push_back({kTxBuffers + kHeader + offset, static_cast<uint32_t>(length), 0, 0});
    }
    return transmit_chain(chain);
  }
  uint32_t transmit_chain(std::vector<virtio_test::TestDescriptor> chain) {
    for (size_t i = 0; i + 1 < chain.size(); ++i) {
      chain[i].flags |= kVirtqDescNext;
      chain[i].next = static_cast<uint16_t>(i + 1);
    }
    if (chain.size() <= kQueueSize) {
      for (size_t i = 0; i < chain.size(); ++i) {
        tx_ring.set_descriptor(static_cast<uint32_t>(i), chain[i]);
      }
    } else {
      for (size_t i = 0; i < chain.size(); ++i) {
        tx_ring.set_table_entry(kTxIndirectTable, static_cast<uint32_t>(i), chain[i]);
      }
      tx_ring.set_descriptor(
          0, {kTxIndirectTable, static_cast<uint32_t>(16 * chain.size()), kVirtqDescIndirect, 0});
    }
    const uint16_t before = tx_ring.used_idx();
    tx_ring.offer(0);
    driver->kick(VirtioNet::kTransmitQueue);
    NET_CHECK_EQ(tx_ring.used_idx(), static_cast<uint16_t>(before + 1));
    return tx_ring.used(before).len;
  }

  // Declared in this order so that the IoThread stops first and the TAP goes last.
  TestMachine tm;
  std::array<uint8_t, 6> host_mac{};
  SplitRing rx_ring{tm.machine->memory(), kRxLayout};
  SplitRing tx_ring{tm.machine->memory(), kTxLayout};

 private:
  std::unique_ptr<TapDevice> tap_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;

 public:
  std::unique_ptr<VirtioMmio> mmio;
  VirtioNet* net = nullptr;
  std::unique_ptr<MmioDriver> driver;

 private:
  std::unique_ptr<IoThread> io_;
};

// A UDP socket of the host's, bound to 10.11.0.1:7777.
Fd host_udp_socket() {
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_port = htons(7777);
  std::memcpy(&local.sin_addr, kHostIp, 4);
  NET_CHECK(::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) == 0);
  return fd;
}

std::string receive_datagram(const Fd& socket) {
  pollfd ready{socket.get(), POLLIN, 0};
  if (::poll(&ready, 1, 2000) != 1) {
    return "(nothing)";
  }
  char bytes[256];
  const ssize_t n = ::recv(socket.get(), bytes, sizeof(bytes), 0);
  return n < 0 ? "(error)" : std::string(bytes, static_cast<size_t>(n));
}

// ---- Tests -----------------------------------------------------------------------------------

TEST(VirtioNet, ConfigSpaceAndFeatures) {
  run_in_network_namespace([] {
    NetRig rig;
    NET_CHECK_EQ(rig.driver->read32(virtio_mmio::kDeviceId), VirtioNet::kDeviceId);
    std::array<uint8_t, virtio_net_config::kSize> config{};
    for (uint32_t i = 0; i < config.size(); ++i) {
      rig.mmio->read(virtio_mmio::kConfig + i, std::span(config).subspan(i, 1));
    }
    NET_CHECK(std::equal(kGuestMac.begin(), kGuestMac.end(), config.begin()));
    NET_CHECK_EQ(config[6] | config[7] << 8, int{kVirtioNetSLinkUp});
    NET_CHECK_EQ(rig.driver->read32(virtio_mmio::kConfig + 8), 1u | 1500u << 16);
    const uint64_t features = rig.driver->device_features();
    NET_CHECK(has_feature(features, kVirtioNetFMac));
    NET_CHECK(has_feature(features, kVirtioNetFStatus));
    NET_CHECK(has_feature(features, kVirtioNetFMtu));
    NET_CHECK(has_feature(features, kVirtioFeatureVersion1));
    NET_CHECK(!has_feature(features, 0));   // CSUM: no offloads
    NET_CHECK(!has_feature(features, 15));  // MRG_RXBUF
    NET_CHECK(!has_feature(features, 22));  // MQ
    // A driver that takes only MAC gets FEATURES_OK; the header is the v1 one regardless.
    NET_CHECK((rig.driver->negotiate(kVersion1 | (1ull << kVirtioNetFMac)) &
               kVirtioStatusFeaturesOk) != 0);
    NET_CHECK_EQ(rig.driver->read32(virtio_mmio::kQueueNumMax), VirtioNet::kQueueSize);
  });
}

TEST(VirtioNet, TransmittedFramesReachTheHost) {
  run_in_network_namespace([] {
    NetRig rig;
    rig.bring_up();
    const Fd host_socket = host_udp_socket();
    NET_CHECK_EQ(rig.transmit(udp_to_host(rig.host_mac, "hello from the guest")), 0u);
    NET_CHECK_EQ(receive_datagram(host_socket), std::string("hello from the guest"));
    NET_CHECK_EQ(rig.driver->interrupt_status(), virtio_mmio::kInterruptUsedBuffer);
    NET_CHECK(rig.tm.irqs.level(kGsi));
    // More pieces than one TAP write gathers (an indirect table): copied into one frame.
    NET_CHECK_EQ(rig.transmit(udp_to_host(rig.host_mac, std::string(100, 'p')), 90), 0u);
    NET_CHECK_EQ(receive_datagram(host_socket), std::string(100, 'p'));
    NET_CHECK_EQ(rig.net->stats().tx_frames, 2u);
    NET_CHECK_EQ(rig.net->stats().tx_dropped, 0u);
  });
}

// The host wants to send a datagram to 10.11.0.2: its ARP request reaches the guest, the guest
// answers, and the datagram follows.
TEST(VirtioNet, ReceivedFramesReachTheGuest) {
  run_in_network_namespace([] {
    NetRig rig;
    rig.bring_up();
    for (uint16_t i = 0; i < 8; ++i) {
      rig.post_rx(i);
    }
    rig.driver->kick(VirtioNet::kReceiveQueue);
    const Fd sender(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in guest{};
    guest.sin_family = AF_INET;
    guest.sin_port = htons(9);
    std::memcpy(&guest.sin_addr, kGuestIp, 4);
    NET_CHECK(::sendto(sender.get(), "ping", 4, 0, reinterpret_cast<sockaddr*>(&guest),
                       sizeof(guest)) == 4);

    NET_CHECK(rig.wait_for_received(1));
    const std::vector<uint8_t> request = rig.received(0);
    NET_CHECK(request.size() >= kHeader + 42);
    NET_CHECK_EQ(rig.rx_ring.used(0).len, request.size());
    NET_CHECK(std::all_of(request.begin(), request.begin() + 10, [](uint8_t b) { return b == 0; }));
    NET_CHECK_EQ(request[10] | request[11] << 8, 1);  // num_buffers
    const uint8_t* frame = request.data() + kHeader;
    NET_CHECK_EQ(get_be16(frame + 12), 0x0806);  // ARP
    NET_CHECK_EQ(get_be16(frame + 14 + 6), 1);   // request
    NET_CHECK(std::memcmp(frame + 14 + 24, kGuestIp, 4) == 0);
    NET_CHECK(std::memcmp(frame + 6, rig.host_mac.data(), 6) == 0);
    NET_CHECK(rig.tm.irqs.level(kGsi));

    NET_CHECK_EQ(rig.transmit(arp_reply(rig.host_mac)), 0u);
    // The datagram, possibly after a repeated ARP request.
    bool found = false;
    for (uint16_t slot = 1; slot < 8 && !found; ++slot) {
      NET_CHECK(rig.wait_for_received(static_cast<uint16_t>(slot + 1)));
      const std::vector<uint8_t> bytes = rig.received(slot);
      const uint8_t* ip = bytes.data() + kHeader + 14;
      found = bytes.size() == kHeader + 14 + 20 + 8 + 4 && get_be16(ip - 2) == 0x0800 &&
              ip[9] == 17 && std::memcmp(ip + 28, "ping", 4) == 0;
    }
    NET_CHECK(found);
    NET_CHECK_EQ(rig.net->stats().rx_dropped, 0u);
  });
}

TEST(VirtioNet, WithoutReceiveBuffersTheTapIsPausedUntilTheGuestPostsOne) {
  run_in_network_namespace([] {
    NetRig rig;
    rig.bring_up();
    FrameSender sender;
    const std::vector<uint8_t> frame = test_frame(rig.host_mac, 100, 1);
    NET_CHECK(sender.send(frame));
    NET_CHECK(eventually([&] { return rig.net->stats().rx_pauses == 1; }));
    NET_CHECK_EQ(rig.rx_ring.used_flags(), 0);  // the guest's kicks are wanted again
    std::this_thread::sleep_for(50ms);
    NET_CHECK_EQ(rig.net->stats().rx_pauses, 1u);
    NET_CHECK_EQ(rig.net->stats().rx_dropped, 0u);  // the frame waits in the TAP
    NET_CHECK_EQ(rig.rx_ring.used_idx(), 0);

    rig.post_rx(0);
    rig.driver->kick(VirtioNet::kReceiveQueue);
    NET_CHECK(rig.wait_for_received(1));
    const std::vector<uint8_t> bytes = rig.received(0);
    NET_CHECK_EQ(bytes.size(), kHeader + frame.size());
    NET_CHECK(std::equal(frame.begin(), frame.end(), bytes.begin() + kHeader));
    // Out of buffers again: paused again, the next frame waits until a buffer comes.
    NET_CHECK(eventually([&] { return rig.net->stats().rx_pauses == 2; }));
    NET_CHECK(sender.send(test_frame(rig.host_mac, 200, 2)));
    std::this_thread::sleep_for(30ms);
    NET_CHECK_EQ(rig.rx_ring.used_idx(), 1);
    NET_CHECK_EQ(rig.net->stats().rx_pauses, 2u);
    rig.post_rx(1);
    rig.driver->kick(VirtioNet::kReceiveQueue);
    NET_CHECK(rig.wait_for_received(2));
    NET_CHECK_EQ(rig.received(1).size(), kHeader + 200);
    NET_CHECK_EQ(rig.net->stats().rx_frames, 2u);
  });
}

TEST(VirtioNet, OversizeFramesAreDroppedAndTheDeviceCarriesOn) {
  run_in_network_namespace([] {
    NetRig rig;
    rig.bring_up();
    // Receive: a 512-byte buffer; a 1000-byte frame is dropped, the next small one uses it.
    rig.post_rx(0, 512);
    rig.driver->kick(VirtioNet::kReceiveQueue);
    FrameSender sender;
    NET_CHECK(sender.send(test_frame(rig.host_mac, 1000, 3)));
    NET_CHECK(eventually([&] { return rig.net->stats().rx_dropped == 1; }));
    const std::vector<uint8_t> small = test_frame(rig.host_mac, 60, 4);
    NET_CHECK(sender.send(small));
    NET_CHECK(rig.wait_for_received(1));
    NET_CHECK_EQ(rig.rx_ring.used(0).id, 0u);
    NET_CHECK_EQ(rig.received(0).size(), kHeader + small.size());
    NET_CHECK(std::equal(small.begin(), small.end(), rig.received(0).begin() + kHeader));

    // Transmit: longer than the TAP takes, or shorter than the header: dropped, chain returned.
    const auto big = static_cast<uint32_t>(TapDevice::kMaxFrameSize + 1);
    NET_CHECK_EQ(rig.transmit_chain(
                     {{kTxBuffers, big / 2, 0, 0}, {kTxBuffers + big / 2, big - big / 2, 0, 0}}),
                 0u);
    NET_CHECK_EQ(rig.transmit_chain({{kTxBuffers, 8, 0, 0}}), 0u);
    NET_CHECK_EQ(rig.net->stats().tx_dropped, 2u);
    NET_CHECK_EQ(rig.driver->status() & kVirtioStatusNeedsReset, 0u);
    const Fd host_socket = host_udp_socket();
    NET_CHECK_EQ(rig.transmit(udp_to_host(rig.host_mac, "still here")), 0u);
    NET_CHECK_EQ(receive_datagram(host_socket), std::string("still here"));
    NET_CHECK_EQ(rig.log_lines(), 0u);
  });
}

TEST(VirtioNet, AMalformedRingNeedsAReset) {
  run_in_network_namespace([] {
    NetRig rig;
    // Transmit: a descriptor outside guest RAM.
    rig.bring_up();
    rig.tx_ring.set_descriptor(0, {0x7fff0000, 64, 0, 0});
    rig.tx_ring.offer(0);
    rig.driver->kick(VirtioNet::kTransmitQueue);
    NET_CHECK((rig.driver->status() & kVirtioStatusNeedsReset) != 0);
    NET_CHECK_EQ(rig.log_lines(), 1u);
    rig.driver->kick(VirtioNet::kTransmitQueue);  // idle now
    NET_CHECK_EQ(rig.log_lines(), 1u);

    // Receive: a looping chain, found when a frame arrives.
    rig.driver->reset();
    NET_CHECK_EQ(rig.driver->status(), 0u);
    rig.bring_up();
    rig.rx_ring.set_descriptor(0, {kRxBuffers, 64, kVirtqDescWrite | kVirtqDescNext, 0});
    rig.rx_ring.offer(0);
    rig.driver->kick(VirtioNet::kReceiveQueue);
    FrameSender sender;
    NET_CHECK(sender.send(test_frame(rig.host_mac, 60, 5)));
    NET_CHECK(eventually([&] { return rig.log_lines() == 2; }));
    NET_CHECK((rig.driver->status() & kVirtioStatusNeedsReset) != 0);
    // Frames arriving meanwhile are discarded, not read into guest memory.
    const std::vector<uint8_t> before = snapshot(rig.memory());
    NET_CHECK(sender.send(test_frame(rig.host_mac, 60, 6)));
    std::this_thread::sleep_for(30ms);
    NET_CHECK(snapshot(rig.memory()) == before);

    // After a reset, the device works again.
    rig.driver->reset();
    rig.bring_up();
    rig.post_rx(0);
    rig.driver->kick(VirtioNet::kReceiveQueue);
    const std::vector<uint8_t> frame = test_frame(rig.host_mac, 80, 7);
    NET_CHECK(sender.send(frame));
    NET_CHECK(rig.wait_for_received(1));
    NET_CHECK_EQ(rig.received(0).size(), kHeader + frame.size());
    NET_CHECK_EQ(rig.log_lines(), 2u);
  });
}

// The host floods the guest while the guest transmits and resets the device over and over: each
// reset waits for the receive path, and a reset device leaves guest memory alone.
TEST(VirtioNet, ResetWhileTrafficFlows) {
  run_in_network_namespace([] {
    NetRig rig;
    std::atomic<bool> flooding{true};
    std::thread flood([&] {
      FrameSender sender;
      const std::vector<uint8_t> frame = test_frame(rig.host_mac, 300, 8);
      while (flooding.load()) {
        if (!sender.send(frame)) {
          std::this_thread::yield();  // the TAP's queue is full
        }
      }
    });
    const std::vector<uint8_t> datagram = udp_to_host(rig.host_mac, "during the flood");
    for (int round = 0; round < 10; ++round) {
      rig.bring_up();
      for (uint16_t i = 0; i < kQueueSize; ++i) {
        rig.post_rx(i);
      }
      rig.driver->kick(VirtioNet::kReceiveQueue);
      NET_CHECK_EQ(rig.transmit(datagram), 0u);
      NET_CHECK(rig.wait_for_received(static_cast<uint16_t>(1 + round % 4)));
      rig.driver->reset();
      NET_CHECK_EQ(rig.driver->status(), 0u);
      const std::vector<uint8_t> after_reset = snapshot(rig.memory());
      std::this_thread::sleep_for(5ms);
      NET_CHECK(snapshot(rig.memory()) == after_reset);
    }
    flooding = false;
    flood.join();
    NET_CHECK(rig.net->stats().rx_frames >= 10u);
    NET_CHECK_EQ(rig.net->stats().tx_frames, 10u);
    NET_CHECK_EQ(rig.log_lines(), 0u);
  });
}

}  // namespace
}  // namespace hv
