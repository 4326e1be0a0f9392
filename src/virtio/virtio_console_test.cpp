// virtio-console behind virtio-mmio, driven as a guest driver would drive it.
#include "virtio/virtio_console.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "devices/device_test_support.hpp"
#include "virtio/virtio_mmio.hpp"
#include "virtio/virtio_test_support.hpp"

namespace hv {
namespace {

using device_test::TestMachine;
using virtio_test::kBuffers;
using virtio_test::MmioDriver;
using virtio_test::SplitRing;

constexpr uint32_t kGsi = 6;
constexpr uint32_t kQueueSize = 128;
constexpr uint64_t kVersion1 = 1ull << kVirtioFeatureVersion1;
const VirtqueueLayout kRxLayout{
    .size = kQueueSize, .desc_table = 0x10000, .avail_ring = 0x18000, .used_ring = 0x19000};
const VirtqueueLayout kTxLayout{
    .size = kQueueSize, .desc_table = 0x20000, .avail_ring = 0x28000, .used_ring = 0x29000};
constexpr uint64_t kRxBuffers = kBuffers;  // receive buffer i at kRxBuffers + 0x100 * i
constexpr uint64_t kTxBuffers = kBuffers + 0x10000;

class RecordingSink : public CharSink {
 public:
  void write(std::span<const uint8_t> bytes) override {
    std::lock_guard lock(mutex);
    writes.emplace_back(bytes.begin(), bytes.end());
  }
  std::mutex mutex;
  std::vector<std::string> writes;
};

class VirtioConsoleTest : public ::testing::Test {
 protected:
  VirtioConsoleTest() {
    auto device = std::make_unique<VirtioConsole>(&sink);
    console = device.get();
    mmio = std::make_unique<VirtioMmio>(memory(), tm.machine->irq_line(kGsi), std::move(device));
    driver = std::make_unique<MmioDriver>(*mmio);
  }
  GuestMemory& memory() { return tm.machine->memory(); }

  void bring_up() {
    ASSERT_TRUE(memory().fill(0, 0, memory().size()).ok());
    ASSERT_NE(driver->negotiate(kVersion1) & kVirtioStatusFeaturesOk, 0u);
    ASSERT_TRUE(driver->setup_queue(0, kRxLayout));
    ASSERT_TRUE(driver->setup_queue(1, kTxLayout));
    driver->driver_ok();
  }
  // Posts receive buffer `i` of `length` bytes (does not kick).
  void post_rx(uint16_t i, uint32_t length) {
    rx.set_descriptor(i, {kRxBuffers + 0x100ull * i, length, kVirtqDescWrite, 0});
    rx.offer(i);
  }
  // Everything the device has put in the receive buffers, in used-ring order.
  std::string received() {
    std::string out;
    for (uint16_t slot = 0; slot < rx.used_idx(); ++slot) {
      const virtio_test::UsedElement used = rx.used(slot);
      std::string bytes(used.len, '\0');
      EXPECT_TRUE(
          memory()
              .read(kRxBuffers + 0x100ull * used.id,
                    std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()))
              .ok());
      out += bytes;
    }
    return out;
  }
  static std::span<const uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
  }

  TestMachine tm;
  RecordingSink sink;
  VirtioConsole* console = nullptr;
  std::unique_ptr<VirtioMmio> mmio;
  std::unique_ptr<MmioDriver> driver;
  SplitRing rx{tm.machine->memory(), kRxLayout};
  SplitRing tx{tm.machine->memory(), kTxLayout};
};

TEST_F(VirtioConsoleTest, IsAConsole) {
  EXPECT_EQ(driver->read32(virtio_mmio::kDeviceId), 3u);
  EXPECT_EQ(driver->read32(virtio_mmio::kConfig) & 0xffff, 80u);
  EXPECT_EQ(driver->read32(virtio_mmio::kConfig) >> 16, 25u);
}

TEST_F(VirtioConsoleTest, TransmitsAChainInOneWrite) {
  bring_up();
  ASSERT_TRUE(memory().write(kTxBuffers, as_bytes("hel")).ok());
  ASSERT_TRUE(memory().write(kTxBuffers + 0x100, as_bytes("lo")).ok());
  tx.set_descriptor(0, {kTxBuffers, 3, kVirtqDescNext, 1});
  tx.set_descriptor(1, {kTxBuffers + 0x100, 2, 0, 0});
  tx.offer(0);
  driver->kick(1);
  ASSERT_EQ(tx.used_idx(), 1);
  EXPECT_EQ(tx.used(0).len, 0u);
  ASSERT_EQ(sink.writes.size(), 1u);
  EXPECT_EQ(sink.writes[0], "hello");
  EXPECT_TRUE(tm.irqs.level(kGsi));
}

TEST_F(VirtioConsoleTest, InputWaitsForBuffers) {
  EXPECT_EQ(console->receive(as_bytes("early")), 0u);  // not active yet
  bring_up();
  EXPECT_EQ(console->receive(as_bytes("abc")), 3u);  // taken into the pending buffer
  EXPECT_EQ(rx.used_idx(), 0);
  EXPECT_FALSE(tm.irqs.level(kGsi));
  post_rx(0, 64);
  driver->kick(0);
  ASSERT_EQ(rx.used_idx(), 1);
  EXPECT_EQ(received(), "abc");
  EXPECT_TRUE(tm.irqs.level(kGsi));
}

TEST_F(VirtioConsoleTest, PendingBufferIsBounded) {
  bring_up();
  std::string big(VirtioConsole::kPendingCapacity + 100, 'x');
  EXPECT_EQ(console->receive(as_bytes(big)), VirtioConsole::kPendingCapacity);
  EXPECT_EQ(console->receive(as_bytes("y")), 0u);
}

TEST_F(VirtioConsoleTest, InputIsSplitAcrossBuffers) {
  bring_up();
  post_rx(0, 4);
  post_rx(1, 4);
  driver->kick(0);
  EXPECT_EQ(console->receive(as_bytes("0123456789")), 10u);
  ASSERT_EQ(rx.used_idx(), 2);
  EXPECT_EQ(rx.used(0).len, 4u);
  EXPECT_EQ(rx.used(1).len, 4u);
  EXPECT_EQ(received(), "01234567");
  post_rx(2, 4);
  driver->kick(0);
  EXPECT_EQ(received(), "0123456789");
}

TEST_F(VirtioConsoleTest, ConcurrentReceiversKeepTheirOrder) {
  bring_up();
  for (uint16_t i = 0; i < kQueueSize; ++i) {
    post_rx(i, 0x100);
  }
  driver->kick(0);
  // 20 chunks of 20 bytes per thread: at most 40 chains are used.
  auto chunk_of = [](char base, int i) { return std::string(20, static_cast<char>(base + i)); };
  auto sender = [this, &chunk_of](char base) {
    for (int i = 0; i < 20; ++i) {
      const std::string chunk = chunk_of(base, i);
      size_t sent = 0;
      while (sent < chunk.size()) {
        sent += console->receive(as_bytes(std::string_view(chunk).substr(sent)));
      }
    }
  };
  std::thread a(sender, 'A');
  std::thread b(sender, 'a');
  a.join();
  b.join();
  const std::string all = received();
  ASSERT_EQ(all.size(), 800u);
  std::string from_a, from_b;
  for (char c : all) {
    (c >= 'a' ? from_b : from_a) += c;
  }
  std::string want_a, want_b;
  for (int i = 0; i < 20; ++i) {
    want_a += chunk_of('A', i);
    want_b += chunk_of('a', i);
  }
  EXPECT_EQ(from_a, want_a);
  EXPECT_EQ(from_b, want_b);
}

}  // namespace
}  // namespace hv
