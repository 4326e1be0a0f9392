// Virtqueue on its own: ring layout checks, chain walking and every malformation, the used ring,
// and both notification-suppression schemes. Guest memory is written as a driver would.
#include "virtio/virtqueue.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>

#include "virtio/virtio_test_support.hpp"

namespace hv {
namespace {

using virtio_test::kBuffers;
using virtio_test::SplitRing;
using virtio_test::test_layout;
using virtio_test::TestDescriptor;

constexpr uint64_t kIndirect = 1ull << kVirtioRingFeatureIndirectDesc;
constexpr uint64_t kEventIdx = 1ull << kVirtioRingFeatureEventIdx;
constexpr uint64_t kMemorySize = 2 << 20;

class VirtqueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = GuestMemory::create(kMemorySize);
    ASSERT_TRUE(created.ok());
    memory_ = std::make_unique<GuestMemory>(std::move(created).value());
  }

  // A ready queue of `size` entries at the standard test addresses.
  Virtqueue& make_queue(uint32_t size, uint64_t features = kIndirect) {
    EXPECT_TRUE(memory_->fill(0, 0, kMemorySize).ok());  // rings start zeroed
    queue_ = std::make_unique<Virtqueue>(*memory_, 0, Virtqueue::kMaxSize);
    ring_ = std::make_unique<SplitRing>(*memory_, test_layout(size));
    Status enabled = queue_->enable(test_layout(size), features);
    EXPECT_TRUE(enabled.ok()) << enabled.error().to_string();
    return *queue_;
  }

  // Pops expecting an error; returns its message.
  std::string pop_error() {
    DescriptorChain chain;
    Result<bool> popped = queue_->pop(chain);
    EXPECT_FALSE(popped.ok());
    return popped.ok() ? std::string("(no error)") : popped.error().message;
  }

  std::unique_ptr<GuestMemory> memory_;
  std::unique_ptr<Virtqueue> queue_;
  std::unique_ptr<SplitRing> ring_;
};

TEST_F(VirtqueueTest, AcceptsPowerOfTwoSizesUpToTheDeviceMaximum) {
  Virtqueue queue(*memory_, 0, 256);
  for (uint32_t size : {1u, 2u, 64u, 256u}) {
    EXPECT_TRUE(queue.validate_layout(test_layout(size), 0).ok()) << size;
  }
  for (uint32_t size : {0u, 3u, 100u, 255u, 512u, 65536u}) {
    Status checked = queue.validate_layout(test_layout(size), 0);
    ASSERT_FALSE(checked.ok()) << size;
    EXPECT_EQ(
        checked.error().message,
        fmt::format("virtqueue 0: queue size {} is not a power of two between 1 and 256", size));
  }
}

TEST_F(VirtqueueTest, MaximumSizeIsCappedAt32768) {
  Virtqueue queue(*memory_, 3, 1u << 20);
  EXPECT_EQ(queue.max_size(), Virtqueue::kMaxSize);
  VirtqueueLayout layout{
      .size = 32768, .desc_table = 0, .avail_ring = 0x80000, .used_ring = 0xa0000};
  EXPECT_TRUE(queue.validate_layout(layout, kEventIdx).ok());
  layout.size = 65536;
  EXPECT_FALSE(queue.validate_layout(layout, 0).ok());
}

TEST_F(VirtqueueTest, RejectsMisalignedRings) {
  Virtqueue queue(*memory_, 1, 256);
  VirtqueueLayout layout = test_layout(16);
  layout.desc_table += 8;
  Status checked = queue.validate_layout(layout, 0);
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().message,
            "virtqueue 1: descriptor table at 0x10008 is not aligned to 16 bytes");
  layout = test_layout(16);
  layout.avail_ring += 1;
  EXPECT_FALSE(queue.validate_layout(layout, 0).ok());
  layout = test_layout(16);
  layout.used_ring += 2;
  EXPECT_FALSE(queue.validate_layout(layout, 0).ok());
}

TEST_F(VirtqueueTest, RejectsRingsNotEntirelyInRam) {
  Virtqueue queue(*memory_, 0, 256);
  VirtqueueLayout layout = test_layout(16);
  layout.desc_table = kMemorySize - 128;  // 16 descriptors need 256 bytes
  Status checked = queue.validate_layout(layout, 0);
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().message,
            "virtqueue 0: descriptor table at 0x1fff80+0x100 is not entirely in guest RAM");

  // The used ring fits exactly without its avail_event field, not with it.
  layout = test_layout(16);
  layout.used_ring = kMemorySize - (4 + 8 * 16);
  EXPECT_TRUE(queue.validate_layout(layout, 0).ok());
  EXPECT_FALSE(queue.validate_layout(layout, kEventIdx).ok());

  layout = test_layout(16);
  layout.avail_ring = 0xffff'ffff'ffff'fffe;
  EXPECT_FALSE(queue.validate_layout(layout, 0).ok());
}

TEST_F(VirtqueueTest, RejectsRingsInTheMmioHole) {
  // Above 3 GiB the PC layout leaves a hole up to 4 GiB; MAP_NORESERVE keeps this cheap.
  auto created = GuestMemory::create(GuestMemory::kLowMemoryLimit + (2 << 20));
  if (!created.ok()) {
    GTEST_SKIP() << "cannot map a guest big enough to have a hole: " << created.error().to_string();
  }
  GuestMemory big = std::move(created).value();
  Virtqueue queue(big, 0, 256);
  VirtqueueLayout layout = test_layout(16);
  layout.desc_table = 0xfec0'0000;  // the IOAPIC, in the hole
  EXPECT_FALSE(queue.validate_layout(layout, 0).ok());
  layout.desc_table = GuestMemory::kLowMemoryLimit - 128;  // straddles the start of the hole
  EXPECT_FALSE(queue.validate_layout(layout, 0).ok());
  layout.desc_table = GuestMemory::kHighMemoryStart;  // RAM again
  EXPECT_TRUE(queue.validate_layout(layout, 0).ok());
}

TEST_F(VirtqueueTest, EmptyRingPopsNothing) {
  Virtqueue& queue = make_queue(16);
  DescriptorChain chain;
  Result<bool> popped = queue.pop(chain);
  ASSERT_TRUE(popped.ok());
  EXPECT_FALSE(*popped);
  EXPECT_FALSE(*queue.has_available());
}

TEST_F(VirtqueueTest, DisabledQueuePopsNothing) {
  Virtqueue queue(*memory_, 0, 256);
  DescriptorChain chain;
  Result<bool> popped = queue.pop(chain);
  ASSERT_TRUE(popped.ok());
  EXPECT_FALSE(*popped);
  EXPECT_FALSE(queue.should_notify());
  EXPECT_FALSE(queue.push_used(0, 0).ok());
}

TEST_F(VirtqueueTest, PopsAChainWithReadableThenWritableBuffers) {
  Virtqueue& queue = make_queue(16);
  ring_->set_descriptor(3, {kBuffers, 10, kVirtqDescNext, 7});
  ring_->set_descriptor(7, {kBuffers + 0x100, 6, kVirtqDescNext, 1});
  ring_->set_descriptor(1, {kBuffers + 0x200, 8, kVirtqDescNext | kVirtqDescWrite, 2});
  ring_->set_descriptor(2, {kBuffers + 0x300, 4, kVirtqDescWrite, 0});
  ring_->offer(3);

  DescriptorChain chain;
  Result<bool> popped = queue.pop(chain);
  ASSERT_TRUE(popped.ok()) << popped.error().message;
  ASSERT_TRUE(*popped);
  EXPECT_EQ(chain.head(), 3);
  ASSERT_EQ(chain.readable().size(), 2u);
  ASSERT_EQ(chain.writable().size(), 2u);
  EXPECT_EQ(chain.readable_length(), 16u);
  EXPECT_EQ(chain.writable_length(), 12u);
  EXPECT_EQ(chain.readable()[0].data(), memory_->host_pointer(kBuffers, 10));
  EXPECT_EQ(chain.writable()[1].data(), memory_->host_pointer(kBuffers + 0x300, 4));
  EXPECT_FALSE(*queue.has_available());
}

TEST_F(VirtqueueTest, CopiesAcrossBufferBoundaries) {
  Virtqueue& queue = make_queue(16);
  const std::array<uint8_t, 7> first = {1, 2, 3, 4, 5, 6, 7};
  const std::array<uint8_t, 5> second = {8, 9, 10, 11, 12};
  ASSERT_TRUE(memory_->write(kBuffers, first).ok());
  ASSERT_TRUE(memory_->write(kBuffers + 0x100, second).ok());
  ASSERT_TRUE(memory_->fill(kBuffers + 0x200, 0xee, 0x300).ok());
  ring_->set_descriptor(0, {kBuffers, 7, kVirtqDescNext, 1});
  ring_->set_descriptor(1, {kBuffers + 0x100, 5, kVirtqDescNext, 2});
  ring_->set_descriptor(2, {kBuffers + 0x200, 3, kVirtqDescNext | kVirtqDescWrite, 3});
  ring_->set_descriptor(3, {kBuffers + 0x280, 4, kVirtqDescWrite, 0});
  ring_->offer(0);
  DescriptorChain chain;
  ASSERT_TRUE(*queue.pop(chain));

  std::array<uint8_t, 8> gathered{};
  EXPECT_EQ(chain.read_from_chain(5, gathered), 7u);  // only 12 - 5 bytes left
  EXPECT_EQ((std::array<uint8_t, 8>{6, 7, 8, 9, 10, 11, 12, 0}), gathered);
  EXPECT_EQ(chain.read_from_chain(12, gathered), 0u);

  const std::array<uint8_t, 6> reply = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6};
  EXPECT_EQ(chain.write_to_chain(2, reply), 5u);  // 7 writable bytes, starting 2 in
  std::array<uint8_t, 4> head{};
  std::array<uint8_t, 5> tail{};
  ASSERT_TRUE(memory_->read(kBuffers + 0x200, head).ok());
  ASSERT_TRUE(memory_->read(kBuffers + 0x280, tail).ok());
  EXPECT_EQ((std::array<uint8_t, 4>{0xee, 0xee, 0xa1, 0xee}), head);
  EXPECT_EQ((std::array<uint8_t, 5>{0xa2, 0xa3, 0xa4, 0xa5, 0xee}), tail);
}

TEST_F(VirtqueueTest, SkipsZeroLengthDescriptorsWithoutLookingAtTheirAddress) {
  Virtqueue& queue = make_queue(16);
  ring_->set_descriptor(0, {0xdead'0000'0000, 0, kVirtqDescNext, 1});
  ring_->set_descriptor(1, {kBuffers, 4, kVirtqDescWrite, 0});
  ring_->offer(0);
  DescriptorChain chain;
  Result<bool> popped = queue.pop(chain);
  ASSERT_TRUE(popped.ok()) << popped.error().message;
  EXPECT_TRUE(chain.readable().empty());
  EXPECT_EQ(chain.writable_length(), 4u);
}

TEST_F(VirtqueueTest, FollowsAnIndirectTable) {
  Virtqueue& queue = make_queue(16);
  const uint64_t table = kBuffers + 0x1000;
  ring_->set_table_entry(table, 0, {kBuffers, 16, kVirtqDescNext, 2});
  ring_->set_table_entry(table, 2, {kBuffers + 0x100, 32, kVirtqDescNext | kVirtqDescWrite, 1});
  ring_->set_table_entry(table, 1, {kBuffers + 0x200, 64, kVirtqDescWrite, 0});
  // The spec tells the device to ignore WRITE on the descriptor naming the table.
  ring_->set_descriptor(5, {table, 3 * 16, kVirtqDescIndirect | kVirtqDescWrite, 0});
  ring_->offer(5);
  DescriptorChain chain;
  Result<bool> popped = queue.pop(chain);
  ASSERT_TRUE(popped.ok()) << popped.error().message;
  ASSERT_TRUE(*popped);
  EXPECT_EQ(chain.head(), 5);
  EXPECT_EQ(chain.readable_length(), 16u);
  EXPECT_EQ(chain.writable_length(), 96u);
  EXPECT_EQ(chain.writable().size(), 2u);
}

TEST_F(VirtqueueTest, IndirectTableMayEndADirectChain) {
  Virtqueue& queue = make_queue(16);
  const uint64_t table = kBuffers + 0x1000;
  ring_->set_table_entry(table, 0, {kBuffers + 0x100, 8, kVirtqDescWrite, 0});
  ring_->set_descriptor(0, {kBuffers, 4, kVirtqDescNext, 1});
  ring_->set_descriptor(1, {table, 16, kVirtqDescIndirect, 0});
  ring_->offer(0);
  DescriptorChain chain;
  Result<bool> popped = queue.pop(chain);
  ASSERT_TRUE(popped.ok()) << popped.error().message;
  EXPECT_EQ(chain.readable_length(), 4u);
  EXPECT_EQ(chain.writable_length(), 8u);
}

TEST_F(VirtqueueTest, ReusesTheChainsStorage) {
  Virtqueue& queue = make_queue(16);
  for (uint16_t i = 0; i < 4; ++i) {
    ring_->set_descriptor(i, {kBuffers + 0x100ull * i, 8, kVirtqDescWrite, 0});
    ring_->offer(i);
  }
  DescriptorChain chain;
  ASSERT_TRUE(*queue.pop(chain));
  const auto* storage = chain.writable().data();
  for (int i = 1; i < 4; ++i) {
    ASSERT_TRUE(*queue.pop(chain));
    EXPECT_EQ(chain.writable().data(), storage);
  }
}

TEST_F(VirtqueueTest, DescriptorLoopIsAnError) {
  make_queue(16);
  ring_->set_descriptor(0, {kBuffers, 8, kVirtqDescNext, 1});
  ring_->set_descriptor(1, {kBuffers, 8, kVirtqDescNext, 0});
  ring_->offer(0);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: descriptor chain from head 0 is longer than its table's 16 entries (a "
            "loop?)");
}

TEST_F(VirtqueueTest, NextIndexOutOfRangeIsAnError) {
  make_queue(256);
  ring_->set_descriptor(5, {kBuffers, 8, kVirtqDescNext, 300});
  ring_->offer(5);
  EXPECT_EQ(pop_error(), "virtqueue 0: descriptor 5 next index 300 >= queue size 256");
}

TEST_F(VirtqueueTest, HeadIndexOutOfRangeIsAnError) {
  make_queue(16);
  ring_->offer(16);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: available ring entry 0 names descriptor 16 >= queue size 16");
}

TEST_F(VirtqueueTest, BufferOutsideRamIsAnError) {
  make_queue(16);
  ring_->set_descriptor(0, {kMemorySize - 4, 8, kVirtqDescWrite, 0});
  ring_->offer(0);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: descriptor 0 buffer 0x1ffffc+0x8 is not entirely in guest RAM");
}

TEST_F(VirtqueueTest, BufferWrappingTheAddressSpaceIsAnError) {
  make_queue(16);
  ring_->set_descriptor(0, {0xffff'ffff'ffff'f000, 0x2000, kVirtqDescWrite, 0});
  ring_->offer(0);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: descriptor 0 buffer 0xfffffffffffff000+0x2000 wraps around the address "
            "space");
}

TEST_F(VirtqueueTest, WritableBeforeReadableIsAnError) {
  make_queue(16);
  ring_->set_descriptor(0, {kBuffers, 8, kVirtqDescNext | kVirtqDescWrite, 1});
  ring_->set_descriptor(1, {kBuffers + 0x100, 8, 0, 0});
  ring_->offer(0);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: descriptor 1 is device-readable but follows a device-writable one");
}

TEST_F(VirtqueueTest, WritableBeforeReadableAcrossAnIndirectTableIsAnError) {
  make_queue(16);
  const uint64_t table = kBuffers + 0x1000;
  ring_->set_table_entry(table, 0, {kBuffers + 0x100, 8, 0, 0});
  ring_->set_descriptor(0, {kBuffers, 8, kVirtqDescNext | kVirtqDescWrite, 1});
  ring_->set_descriptor(1, {table, 16, kVirtqDescIndirect, 0});
  ring_->offer(0);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: indirect descriptor 0 is device-readable but follows a "
            "device-writable one");
}

TEST_F(VirtqueueTest, NestedIndirectTableIsAnError) {
  make_queue(16);
  const uint64_t outer = kBuffers + 0x1000;
  const uint64_t inner = kBuffers + 0x2000;
  ring_->set_table_entry(inner, 0, {kBuffers, 8, kVirtqDescWrite, 0});
  ring_->set_table_entry(outer, 0, {inner, 16, kVirtqDescIndirect, 0});
  ring_->set_descriptor(0, {outer, 16, kVirtqDescIndirect, 0});
  ring_->offer(0);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: indirect descriptor 0 points to another indirect table "
            "(nesting is not allowed)");
}

TEST_F(VirtqueueTest, IndirectTableOfBadLengthIsAnError) {
  for (uint32_t length : {0u, 24u, 17u, (Virtqueue::kMaxIndirectEntries + 1) * 16}) {
    make_queue(16);
    ring_->set_descriptor(0, {kBuffers, length, kVirtqDescIndirect, 0});
    ring_->offer(0);
    EXPECT_EQ(pop_error(),
              fmt::format("virtqueue 0: descriptor 0 has an indirect table of {} bytes (must be a "
                          "nonzero multiple of 16 and at most 32768 entries)",
                          length));
  }
}

TEST_F(VirtqueueTest, IndirectTableOutsideRamIsAnError) {
  make_queue(16);
  ring_->set_descriptor(0, {kMemorySize - 16, 32, kVirtqDescIndirect, 0});
  ring_->offer(0);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: descriptor 0 has an indirect table at 0x1ffff0+0x20 "
            "outside guest RAM");
}

TEST_F(VirtqueueTest, IndirectWithNextIsAnError) {
  make_queue(16);
  ring_->set_table_entry(kBuffers + 0x1000, 0, {kBuffers, 8, kVirtqDescWrite, 0});
  ring_->set_descriptor(0, {kBuffers + 0x1000, 16, kVirtqDescIndirect | kVirtqDescNext, 1});
  ring_->offer(0);
  EXPECT_EQ(pop_error(), "virtqueue 0: descriptor 0 is indirect and also has NEXT set");
}

TEST_F(VirtqueueTest, IndirectWithoutTheFeatureIsAnError) {
  make_queue(16, /*features=*/0);
  ring_->set_table_entry(kBuffers + 0x1000, 0, {kBuffers, 8, kVirtqDescWrite, 0});
  ring_->set_descriptor(0, {kBuffers + 0x1000, 16, kVirtqDescIndirect, 0});
  ring_->offer(0);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: descriptor 0 is indirect but VIRTIO_RING_F_INDIRECT_DESC "
            "was not negotiated");
}

TEST_F(VirtqueueTest, LoopInsideAnIndirectTableIsAnError) {
  make_queue(16);
  const uint64_t table = kBuffers + 0x1000;
  ring_->set_table_entry(table, 0, {kBuffers, 8, kVirtqDescNext, 1});
  ring_->set_table_entry(table, 1, {kBuffers, 8, kVirtqDescNext, 0});
  ring_->set_descriptor(0, {table, 32, kVirtqDescIndirect, 0});
  ring_->offer(0);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: descriptor chain from head 0 is longer than its table's 2 entries (a "
            "loop?)");
}

TEST_F(VirtqueueTest, AvailableIndexMoreThanSizeAheadIsAnError) {
  make_queue(16);
  ring_->set_avail_idx(17);
  EXPECT_EQ(pop_error(),
            "virtqueue 0: available index 17 is 17 entries ahead of the device's 0, "
            "more than the queue size 16");
  // Exactly `size` ahead is a full ring, which is fine.
  make_queue(16);
  for (uint16_t i = 0; i < 16; ++i) {
    ring_->set_descriptor(i, {kBuffers, 8, kVirtqDescWrite, 0});
    ring_->offer(i);
  }
  DescriptorChain chain;
  for (int i = 0; i < 16; ++i) {
    Result<bool> popped = queue_->pop(chain);
    ASSERT_TRUE(popped.ok() && *popped) << i;
  }
}

TEST_F(VirtqueueTest, ChainOverFourGigabytesIsAnError) {
  auto created = GuestMemory::create(GuestMemory::kLowMemoryLimit + (2ull << 30));
  if (!created.ok()) {
    GTEST_SKIP() << created.error().to_string();
  }
  GuestMemory big = std::move(created).value();
  Virtqueue queue(big, 0, 16);
  SplitRing ring(big, test_layout(16));
  ASSERT_TRUE(queue.enable(test_layout(16), 0).ok());
  // Two descriptors of almost 4 GiB... RAM is split by the hole, so use 2 GiB pieces above it.
  ring.set_descriptor(0, {GuestMemory::kHighMemoryStart, 0x8000'0000, kVirtqDescNext, 1});
  ring.set_descriptor(1, {GuestMemory::kHighMemoryStart, 0x8000'0000, kVirtqDescNext, 2});
  ring.set_descriptor(2, {0, 1, 0, 0});
  ring.offer(0);
  DescriptorChain chain;
  Result<bool> popped = queue.pop(chain);
  ASSERT_FALSE(popped.ok());
  EXPECT_EQ(popped.error().message,
            "virtqueue 0: descriptor chain from head 0 is longer than 4294967296 bytes");
}

TEST_F(VirtqueueTest, PushUsedPublishesTheElementThenTheIndex) {
  Virtqueue& queue = make_queue(4);
  for (uint16_t i = 0; i < 6; ++i) {
    ASSERT_TRUE(queue.push_used(static_cast<uint16_t>(i % 4), 100u + i).ok());
  }
  EXPECT_EQ(ring_->used_idx(), 6);
  EXPECT_EQ(ring_->used(4).id, 0u);  // slot 0 was reused for the fifth element
  EXPECT_EQ(ring_->used(4).len, 104u);
  EXPECT_EQ(ring_->used(5).len, 105u);
  EXPECT_EQ(queue.push_used(4, 0).error().message,
            "virtqueue 0: used buffer head 4 >= queue size 4");
}

TEST_F(VirtqueueTest, ShouldNotifyHonoursNoInterrupt) {
  Virtqueue& queue = make_queue(16, 0);
  EXPECT_FALSE(queue.should_notify());  // nothing used yet
  ASSERT_TRUE(queue.push_used(0, 1).ok());
  EXPECT_TRUE(queue.should_notify());
  EXPECT_FALSE(queue.should_notify());  // nothing new since
  ring_->set_avail_flags(kVirtqAvailNoInterrupt);
  ASSERT_TRUE(queue.push_used(0, 1).ok());
  EXPECT_FALSE(queue.should_notify());
  ring_->set_avail_flags(0);
  ASSERT_TRUE(queue.push_used(0, 1).ok());
  EXPECT_TRUE(queue.should_notify());
}

TEST_F(VirtqueueTest, ShouldNotifyWithEventIdxFollowsUsedEvent) {
  Virtqueue& queue = make_queue(16, kEventIdx);
  ring_->set_avail_flags(kVirtqAvailNoInterrupt);  // ignored with EVENT_IDX
  ring_->set_used_event(2);                        // "interrupt me once used->idx passes 2"
  ASSERT_TRUE(queue.push_used(0, 1).ok());         // idx 1
  EXPECT_FALSE(queue.should_notify());
  ASSERT_TRUE(queue.push_used(0, 1).ok());  // idx 2
  EXPECT_FALSE(queue.should_notify());
  ASSERT_TRUE(queue.push_used(0, 1).ok());  // idx 3: entry 2 was written
  EXPECT_TRUE(queue.should_notify());
  // A batch that jumps over used_event still notifies once.
  ring_->set_used_event(4);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(queue.push_used(0, 1).ok());
  }
  EXPECT_TRUE(queue.should_notify());
  // used_event behind the batch: the driver has not caught up, no new interrupt.
  ASSERT_TRUE(queue.push_used(0, 1).ok());
  EXPECT_FALSE(queue.should_notify());
}

TEST_F(VirtqueueTest, EventIdxWrapsAround) {
  Virtqueue& queue = make_queue(16, kEventIdx);
  // Drive the used index to 65534 in batches, then expect an interrupt for entry 65535.
  ring_->set_used_event(0);
  for (int i = 0; i < 65534; ++i) {
    ASSERT_TRUE(queue.push_used(0, 1).ok());
  }
  (void)queue.should_notify();
  ring_->set_used_event(65535);
  ASSERT_TRUE(queue.push_used(0, 1).ok());  // idx 65535
  EXPECT_FALSE(queue.should_notify());
  ASSERT_TRUE(queue.push_used(0, 1).ok());  // idx 0 (wrapped): entry 65535 written
  EXPECT_TRUE(queue.should_notify());
  EXPECT_EQ(ring_->used_idx(), 0);
}

TEST_F(VirtqueueTest, NotificationSuppressionWithoutEventIdx) {
  Virtqueue& queue = make_queue(16, 0);
  queue.disable_notification();
  EXPECT_EQ(ring_->used_flags(), kVirtqUsedNoNotify);
  Result<bool> more = queue.enable_notification();
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
  EXPECT_EQ(ring_->used_flags(), 0);
  // Buffers that arrived while notifications were off are reported.
  queue.disable_notification();
  ring_->set_descriptor(0, {kBuffers, 8, kVirtqDescWrite, 0});
  ring_->offer(0);
  EXPECT_TRUE(*queue.enable_notification());
}

TEST_F(VirtqueueTest, NotificationSuppressionWithEventIdxWritesAvailEvent) {
  Virtqueue& queue = make_queue(16, kEventIdx);
  for (uint16_t i = 0; i < 3; ++i) {
    ring_->set_descriptor(i, {kBuffers, 8, kVirtqDescWrite, 0});
    ring_->offer(i);
  }
  queue.disable_notification();
  EXPECT_EQ(ring_->used_flags(), 0);  // EVENT_IDX does not use the flag
  DescriptorChain chain;
  ASSERT_TRUE(*queue.pop(chain));
  ASSERT_TRUE(*queue.pop(chain));
  EXPECT_TRUE(*queue.enable_notification());  // one still waiting
  EXPECT_EQ(ring_->avail_event(), 2);
  ASSERT_TRUE(*queue.pop(chain));
  EXPECT_FALSE(*queue.enable_notification());
  EXPECT_EQ(ring_->avail_event(), 3);
}

TEST_F(VirtqueueTest, EnableResetsTheIndices) {
  Virtqueue& queue = make_queue(16);
  ring_->set_descriptor(0, {kBuffers, 8, kVirtqDescWrite, 0});
  ring_->offer(0);
  DescriptorChain chain;
  ASSERT_TRUE(*queue.pop(chain));
  ASSERT_TRUE(queue.push_used(0, 8).ok());
  queue.disable();
  EXPECT_FALSE(queue.ready());
  ASSERT_TRUE(memory_->fill(0, 0, kMemorySize).ok());  // the driver re-zeroes its rings
  ASSERT_TRUE(queue.enable(test_layout(16), 0).ok());
  ring_->offer(0);
  ASSERT_TRUE(*queue.pop(chain));
  ASSERT_TRUE(queue.push_used(0, 8).ok());
  EXPECT_EQ(ring_->used_idx(), 1);
}

}  // namespace
}  // namespace hv
