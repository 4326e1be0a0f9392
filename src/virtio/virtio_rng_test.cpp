// virtio-rng behind virtio-mmio, driven the way a guest driver drives it: requests in guest
// memory, register accesses through the IoDevice interface, interrupts on a recording sink. Also
// the end-to-end malformed-ring cases: each one must set DEVICE_NEEDS_RESET, touch no guest
// memory, and leave a device that a reset brings back.
#include "virtio/virtio_rng.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "devices/device_test_support.hpp"
#include "virtio/virtio_mmio.hpp"
#include "virtio/virtio_test_support.hpp"

namespace hv {
namespace {

using device_test::TestMachine;
using virtio_test::kAvailRing;
using virtio_test::kBuffers;
using virtio_test::kDescTable;
using virtio_test::kUsedRing;
using virtio_test::MmioDriver;
using virtio_test::snapshot;
using virtio_test::SplitRing;
using virtio_test::test_layout;

constexpr uint32_t kGsi = 5;
constexpr uint32_t kQueueSize = 256;
constexpr uint8_t kPattern = 0x5a;  // what guest RAM holds outside the rings
constexpr uint64_t kVersion1 = 1ull << kVirtioFeatureVersion1;
constexpr uint64_t kIndirect = 1ull << kVirtioRingFeatureIndirectDesc;
constexpr uint64_t kEventIdx = 1ull << kVirtioRingFeatureEventIdx;

bool all_bytes_are(std::span<const uint8_t> bytes, uint8_t value) {
  return std::all_of(bytes.begin(), bytes.end(), [value](uint8_t b) { return b == value; });
}

// Random bytes: 1 KiB of them with fewer than 100 distinct values would be a 1-in-2^1000 event.
bool looks_random(std::span<const uint8_t> bytes) {
  std::set<uint8_t> distinct(bytes.begin(), bytes.end());
  return distinct.size() >= std::min<size_t>(100, bytes.size() / 4);
}

class VirtioRngTest : public ::testing::Test {
 protected:
  VirtioRngTest() : ring(memory(), test_layout(kQueueSize)) {
    auto device = std::make_unique<VirtioRng>();
    mmio = std::make_unique<VirtioMmio>(memory(), tm.machine->irq_line(kGsi), std::move(device));
    mmio->set_error_log([this](std::string_view line) { log.emplace_back(line); });
    driver = std::make_unique<MmioDriver>(*mmio);
  }

  GuestMemory& memory() { return tm.machine->memory(); }

  // Guest RAM full of kPattern, zeroed rings, the device negotiated and running.
  void bring_up(uint64_t features = kVersion1 | kIndirect) {
    ASSERT_TRUE(memory().fill(0, kPattern, memory().size()).ok());
    ASSERT_TRUE(memory().fill(kDescTable, 0, 16 * kQueueSize).ok());
    ASSERT_TRUE(memory().fill(kAvailRing, 0, 6 + 2 * kQueueSize).ok());
    ASSERT_TRUE(memory().fill(kUsedRing, 0, 6 + 8 * kQueueSize).ok());
    ASSERT_NE(driver->negotiate(features) & kVirtioStatusFeaturesOk, 0u);
    ASSERT_TRUE(driver->setup_queue(0, test_layout(kQueueSize)));
    driver->driver_ok();
    ASSERT_EQ(driver->status(), kVirtioStatusAcknowledge | kVirtioStatusDriver |
                                    kVirtioStatusFeaturesOk | kVirtioStatusDriverOk);
  }

  std::vector<uint8_t> guest_bytes(uint64_t gpa, size_t length) {
    std::vector<uint8_t> bytes(length);
    EXPECT_TRUE(memory().read(gpa, bytes).ok());
    return bytes;
  }

  // One writable buffer of `length` bytes at `gpa` as request `head`, offered and kicked.
  void request(uint16_t head, uint64_t gpa, uint32_t length) {
    ring.set_descriptor(head, {gpa, length, kVirtqDescWrite, 0});
    ring.offer(head);
    driver->kick(0);
  }

  TestMachine tm;
  SplitRing ring;
  std::unique_ptr<VirtioMmio> mmio;
  std::unique_ptr<MmioDriver> driver;
  std::vector<std::string> log;
};

TEST_F(VirtioRngTest, IsAnEntropyDevice) {
  EXPECT_EQ(driver->read32(virtio_mmio::kDeviceId), 4u);
  driver->write32(virtio_mmio::kQueueSel, 0);
  EXPECT_EQ(driver->read32(virtio_mmio::kQueueNumMax), kQueueSize);
  driver->write32(virtio_mmio::kQueueSel, 1);
  EXPECT_EQ(driver->read32(virtio_mmio::kQueueNumMax), 0u);
}

TEST_F(VirtioRngTest, FillsTheBufferWithRandomBytesAndInterrupts) {
  bring_up();
  request(0, kBuffers + 0x100, 1024);
  ASSERT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(ring.used(0).id, 0u);
  EXPECT_EQ(ring.used(0).len, 1024u);
  const std::vector<uint8_t> first = guest_bytes(kBuffers + 0x100, 1024);
  EXPECT_TRUE(looks_random(first));
  EXPECT_TRUE(all_bytes_are(guest_bytes(kBuffers, 0x100), kPattern));
  EXPECT_TRUE(all_bytes_are(guest_bytes(kBuffers + 0x500, 0x100), kPattern));

  EXPECT_EQ(driver->interrupt_status(), virtio_mmio::kInterruptUsedBuffer);
  EXPECT_TRUE(tm.irqs.level(kGsi));
  driver->acknowledge(virtio_mmio::kInterruptUsedBuffer);
  EXPECT_FALSE(tm.irqs.level(kGsi));

  request(1, kBuffers + 0x100, 1024);
  ASSERT_EQ(ring.used_idx(), 2);
  EXPECT_NE(guest_bytes(kBuffers + 0x100, 1024), first);
  EXPECT_EQ(tm.irqs.rising_edges(kGsi), 2);
}

TEST_F(VirtioRngTest, FillsEveryWritableBufferOfAChain) {
  bring_up();
  ring.set_descriptor(0, {kBuffers, 64, kVirtqDescNext, 1});  // readable: left alone
  ring.set_descriptor(1, {kBuffers + 0x1000, 100, kVirtqDescNext | kVirtqDescWrite, 2});
  ring.set_descriptor(2, {kBuffers + 0x2000, 200, kVirtqDescNext | kVirtqDescWrite, 3});
  ring.set_descriptor(3, {kBuffers + 0x3000, 300, kVirtqDescWrite, 0});
  ring.offer(0);
  driver->kick(0);
  ASSERT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(ring.used(0).len, 600u);
  EXPECT_TRUE(all_bytes_are(guest_bytes(kBuffers, 64), kPattern));
  EXPECT_TRUE(looks_random(guest_bytes(kBuffers + 0x1000, 100)));
  EXPECT_TRUE(looks_random(guest_bytes(kBuffers + 0x2000, 200)));
  EXPECT_TRUE(looks_random(guest_bytes(kBuffers + 0x3000, 300)));
  EXPECT_TRUE(all_bytes_are(guest_bytes(kBuffers + 0x3000 + 300, 100), kPattern));
}

TEST_F(VirtioRngTest, ServesIndirectRequests) {
  bring_up();
  const uint64_t table = kBuffers + 0x8000;
  ring.set_table_entry(table, 0, {kBuffers + 0x1000, 128, kVirtqDescNext | kVirtqDescWrite, 1});
  ring.set_table_entry(table, 1, {kBuffers + 0x2000, 256, kVirtqDescWrite, 0});
  ring.set_descriptor(9, {table, 32, kVirtqDescIndirect, 0});
  ring.offer(9);
  driver->kick(0);
  ASSERT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(ring.used(0).id, 9u);
  EXPECT_EQ(ring.used(0).len, 384u);
  EXPECT_TRUE(looks_random(guest_bytes(kBuffers + 0x1000, 128)));
  EXPECT_TRUE(looks_random(guest_bytes(kBuffers + 0x2000, 256)));
}

TEST_F(VirtioRngTest, GivesAtMost64KiBPerRequest) {
  bring_up();
  request(0, kBuffers, 96 * 1024);
  ASSERT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(ring.used(0).len, VirtioRng::kMaxBytesPerRequest);
  EXPECT_TRUE(looks_random(guest_bytes(kBuffers + 0xff00, 0x100)));
  EXPECT_TRUE(all_bytes_are(guest_bytes(kBuffers + 0x10000, 32 * 1024), kPattern));
}

TEST_F(VirtioRngTest, ServesEveryWaitingRequestOnOneKickWithOneInterrupt) {
  bring_up();
  for (uint16_t i = 0; i < 5; ++i) {
    ring.set_descriptor(i, {kBuffers + 0x100ull * i, 32, kVirtqDescWrite, 0});
    ring.offer(i);
  }
  driver->kick(0);
  ASSERT_EQ(ring.used_idx(), 5);
  for (uint16_t i = 0; i < 5; ++i) {
    EXPECT_EQ(ring.used(i).id, i);
    EXPECT_EQ(ring.used(i).len, 32u);
  }
  EXPECT_EQ(tm.irqs.rising_edges(kGsi), 1);
  EXPECT_EQ(ring.used_flags(), 0);  // kicks are re-enabled when the device goes idle
}

TEST_F(VirtioRngTest, NoInterruptFlagSuppressesTheInterrupt) {
  bring_up();
  ring.set_avail_flags(kVirtqAvailNoInterrupt);
  request(0, kBuffers, 16);
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(driver->interrupt_status(), 0u);
  EXPECT_FALSE(tm.irqs.level(kGsi));
  ring.set_avail_flags(0);
  request(1, kBuffers, 16);
  EXPECT_TRUE(tm.irqs.level(kGsi));
}

TEST_F(VirtioRngTest, EventIdxSuppressesInterruptsUntilUsedEvent) {
  bring_up(kVersion1 | kEventIdx);
  ring.set_used_event(1);  // "interrupt me when used entry 1 is written"
  request(0, kBuffers, 16);
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_FALSE(tm.irqs.level(kGsi));
  EXPECT_EQ(ring.avail_event(), 1);  // the device asks for a kick at the next request
  request(1, kBuffers + 0x100, 16);
  EXPECT_EQ(ring.used_idx(), 2);
  EXPECT_TRUE(tm.irqs.level(kGsi));
  EXPECT_EQ(ring.avail_event(), 2);
  EXPECT_EQ(tm.irqs.rising_edges(kGsi), 1);
}

TEST_F(VirtioRngTest, ConcurrentKicksServeEachRequestOnce) {
  bring_up();
  constexpr uint16_t kRequests = 200;
  std::atomic<bool> done{false};
  std::vector<std::thread> kickers;
  for (int t = 0; t < 3; ++t) {
    kickers.emplace_back([&] {
      MmioDriver kicker(*mmio);
      while (!done.load()) {
        kicker.kick(0);
      }
    });
  }
  for (uint16_t i = 0; i < kRequests; ++i) {
    request(i, kBuffers + 64ull * i, 64);
  }
  done.store(true);
  for (std::thread& t : kickers) {
    t.join();
  }
  ASSERT_EQ(ring.used_idx(), kRequests);
  std::set<uint32_t> ids;
  for (uint16_t i = 0; i < kRequests; ++i) {
    ids.insert(ring.used(i).id);
    EXPECT_EQ(ring.used(i).len, 64u);
  }
  EXPECT_EQ(ids.size(), kRequests);
  EXPECT_TRUE(log.empty());
}

// A malformed request: how to build it, and what the log line must say.
struct MalformedCase {
  const char* name;
  std::function<void(SplitRing&)> build;
  std::string message;
};

void PrintTo(const MalformedCase& malformed, std::ostream* out) {
  *out << malformed.name;
}

class VirtioRngMalformedTest : public VirtioRngTest,
                               public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(VirtioRngMalformedTest, NeedsResetTouchesNothingAndRecoversAfterReset) {
  bring_up();
  GetParam().build(ring);
  std::vector<uint8_t> expected = snapshot(memory());
  driver->kick(0);

  EXPECT_NE(driver->status() & kVirtioStatusNeedsReset, 0u);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0],
            "virtio-mmio (virtio-rng): " + GetParam().message + "; the device needs a reset");
  EXPECT_EQ(driver->interrupt_status(), virtio_mmio::kInterruptConfigChange);
  EXPECT_TRUE(tm.irqs.level(kGsi));
  // Nothing changed in guest memory but the device's own "no kicks, I'm busy" flag.
  expected[kUsedRing] = kVirtqUsedNoNotify;
  EXPECT_TRUE(snapshot(memory()) == expected);

  // Stopped: a good request now goes unanswered.
  ring.set_descriptor(20, {kBuffers + 0x9000, 16, kVirtqDescWrite, 0});
  ring.offer(20);
  driver->kick(0);
  EXPECT_EQ(ring.used_idx(), 0);
  EXPECT_EQ(log.size(), 1u);

  driver->reset();
  EXPECT_EQ(driver->status(), 0u);
  EXPECT_FALSE(tm.irqs.level(kGsi));
  bring_up();
  request(0, kBuffers + 0x100, 32);
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(ring.used(0).len, 32u);
  EXPECT_EQ(log.size(), 1u);
}

const uint64_t kTable = kBuffers + 0x8000;

INSTANTIATE_TEST_SUITE_P(
    VirtioRng, VirtioRngMalformedTest,
    ::testing::Values(
        MalformedCase{"DescriptorLoop",
                      [](SplitRing& r) {
                        r.set_descriptor(0, {kBuffers, 8, kVirtqDescNext | kVirtqDescWrite, 1});
                        r.set_descriptor(1, {kBuffers, 8, kVirtqDescNext | kVirtqDescWrite, 0});
                        r.offer(0);
                      },
                      "virtqueue 0: descriptor chain from head 0 is longer than its table's 256 "
                      "entries (a loop?)"},
        MalformedCase{"NextOutOfRange",
                      [](SplitRing& r) {
                        r.set_descriptor(5, {kBuffers, 8, kVirtqDescNext | kVirtqDescWrite, 300});
                        r.offer(5);
                      },
                      "virtqueue 0: descriptor 5 next index 300 >= queue size 256"},
        MalformedCase{"HeadOutOfRange", [](SplitRing& r) { r.offer(256); },
                      "virtqueue 0: available ring entry 0 names descriptor 256 >= queue size 256"},
        MalformedCase{"AddressOutsideRam",
                      [](SplitRing& r) {
                        r.set_descriptor(0, {kBuffers, 8, kVirtqDescNext | kVirtqDescWrite, 1});
                        r.set_descriptor(1, {0xd000'0000, 16, kVirtqDescWrite, 0});
                        r.offer(0);
                      },
                      "virtqueue 0: descriptor 1 buffer 0xd0000000+0x10 is not entirely in guest "
                      "RAM"},
        MalformedCase{"AddressPlusLengthWraps",
                      [](SplitRing& r) {
                        r.set_descriptor(0, {~0ull - 0xff, 0x200, kVirtqDescWrite, 0});
                        r.offer(0);
                      },
                      "virtqueue 0: descriptor 0 buffer 0xffffffffffffff00+0x200 wraps around the "
                      "address space"},
        MalformedCase{
            "IndirectInsideIndirect",
            [](SplitRing& r) {
              r.set_table_entry(kTable, 0, {kBuffers, 8, kVirtqDescNext | kVirtqDescWrite, 1});
              r.set_table_entry(kTable, 1, {kTable + 0x100, 16, kVirtqDescIndirect, 0});
              r.set_table_entry(kTable + 0x100, 0, {kBuffers, 8, kVirtqDescWrite, 0});
              r.set_descriptor(0, {kTable, 32, kVirtqDescIndirect, 0});
              r.offer(0);
            },
            "virtqueue 0: indirect descriptor 1 points to another indirect table "
            "(nesting is not allowed)"},
        MalformedCase{"IndirectWithBadLength",
                      [](SplitRing& r) {
                        r.set_table_entry(kTable, 0, {kBuffers, 8, kVirtqDescWrite, 0});
                        r.set_descriptor(0, {kTable, 24, kVirtqDescIndirect, 0});
                        r.offer(0);
                      },
                      "virtqueue 0: descriptor 0 has an indirect table of 24 bytes (must be a "
                      "nonzero multiple of 16 and at most 32768 entries)"},
        MalformedCase{"WritableBeforeReadable",
                      [](SplitRing& r) {
                        r.set_descriptor(0, {kBuffers, 8, kVirtqDescNext | kVirtqDescWrite, 1});
                        r.set_descriptor(1, {kBuffers + 0x100, 8, 0, 0});
                        r.offer(0);
                      },
                      "virtqueue 0: descriptor 1 is device-readable but follows a "
                      "device-writable one"},
        MalformedCase{"AvailIndexJumpsPastQueueSize",
                      [](SplitRing& r) {
                        r.set_descriptor(0, {kBuffers, 8, kVirtqDescWrite, 0});
                        r.set_avail_idx(kQueueSize + 1);
                      },
                      "virtqueue 0: available index 257 is 257 entries ahead of the device's 0, "
                      "more than the queue size 256"}),
    [](const ::testing::TestParamInfo<MalformedCase>& case_info) { return case_info.param.name; });

TEST_F(VirtioRngTest, BadQueueSetupNeedsResetAndResetRecovers) {
  ASSERT_TRUE(memory().fill(0, 0, memory().size()).ok());
  ASSERT_NE(driver->negotiate(kVersion1) & kVirtioStatusFeaturesOk, 0u);
  EXPECT_FALSE(driver->setup_queue(0, test_layout(100)));
  EXPECT_NE(driver->status() & kVirtioStatusNeedsReset, 0u);
  driver->reset();
  EXPECT_EQ(driver->status(), 0u);
  bring_up();
  request(0, kBuffers, 16);
  EXPECT_EQ(ring.used_idx(), 1);
}

}  // namespace
}  // namespace hv
