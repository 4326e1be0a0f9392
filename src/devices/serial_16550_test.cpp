#include "devices/serial_16550.hpp"

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"

namespace hv {
namespace {

constexpr uint64_t kBase = 0x3f8;
constexpr uint64_t kThr = kBase + 0;
constexpr uint64_t kIer = kBase + 1;
constexpr uint64_t kIir = kBase + 2;
constexpr uint64_t kFcr = kBase + 2;
constexpr uint64_t kLcr = kBase + 3;
constexpr uint64_t kMcr = kBase + 4;
constexpr uint64_t kLsr = kBase + 5;
constexpr uint64_t kMsr = kBase + 6;
constexpr uint64_t kScr = kBase + 7;
constexpr uint32_t kIrq = 4;

class Serial16550Test : public ::testing::Test {
 protected:
  void SetUp() override {
    serial_ = std::make_unique<Serial16550>(vm_.machine->irq_line(kIrq), &sink_);
    ASSERT_TRUE(vm_.pio().add(kBase, Serial16550::kRegisterCount, serial_.get()).ok());
  }
  void TearDown() override { vm_.machine->set_interrupt_sink(nullptr); }

  size_t receive(const std::string& text) {
    return serial_->receive(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }

  device_test::TestMachine vm_;
  device_test::RecordingSink sink_;
  std::unique_ptr<Serial16550> serial_;
};

TEST_F(Serial16550Test, TransmittedBytesReachTheSinkAndThrStaysEmpty) {
  for (char c : std::string("hi\n")) {
    EXPECT_EQ(vm_.inb(kLsr) & 0x60, 0x60);  // THRE | TEMT
    vm_.outb(kThr, static_cast<uint8_t>(c));
  }
  EXPECT_EQ(sink_.bytes(), (std::vector<uint8_t>{'h', 'i', '\n'}));
  EXPECT_EQ(vm_.inb(kLsr), 0x60);
}

TEST_F(Serial16550Test, WideWriteSplitsIntoConsecutiveRegisters) {
  vm_.outw(kThr, 0x0041);  // 'A' to THR, 0 to IER
  EXPECT_EQ(sink_.bytes(), std::vector<uint8_t>{'A'});
  EXPECT_EQ(vm_.inb(kIer), 0);
  // Bytes past the last register read all ones.
  EXPECT_EQ(vm_.in(kScr, 4), 0xffffff00u);
}

TEST_F(Serial16550Test, DivisorLatchOverlaysRbrThrAndIer) {
  vm_.outb(kIer, 0x05);
  vm_.outb(kLcr, 0x83);            // DLAB, 8N1
  EXPECT_EQ(vm_.inb(kThr), 0x0c);  // the 9600-baud default
  vm_.outb(kThr, 0x01);
  vm_.outb(kIer, 0x02);
  EXPECT_EQ(vm_.inb(kThr), 0x01);
  EXPECT_EQ(vm_.inb(kIer), 0x02);
  EXPECT_TRUE(sink_.bytes().empty());  // divisor writes are not transmitted
  vm_.outb(kLcr, 0x03);
  EXPECT_EQ(vm_.inb(kLcr), 0x03);
  EXPECT_EQ(vm_.inb(kIer), 0x05);
  vm_.outb(kLcr, 0x83);
  EXPECT_EQ(vm_.inb(kIer), 0x02);
}

TEST_F(Serial16550Test, ScratchRegisterAndIerMaskAsLinuxProbesThem) {
  vm_.outb(kScr, 0xa5);
  EXPECT_EQ(vm_.inb(kScr), 0xa5);
  vm_.outb(kScr, 0x5a);
  EXPECT_EQ(vm_.inb(kScr), 0x5a);
  vm_.outb(kIer, 0x00);
  EXPECT_EQ(vm_.inb(kIer) & 0x0f, 0x00);
  vm_.outb(kIer, 0xff);
  EXPECT_EQ(vm_.inb(kIer), 0x0f);
  // FIFO enable makes IIR bits 7:6 read 11: a 16550A.
  vm_.outb(kFcr, 0x01);
  EXPECT_EQ(vm_.inb(kIir) >> 6, 3);
  vm_.outb(kFcr, 0x00);
  EXPECT_EQ(vm_.inb(kIir) >> 6, 0);
  // Never all ones, or Linux's LSR safety check rejects the port.
  EXPECT_NE(vm_.inb(kLsr), 0xff);
}

TEST_F(Serial16550Test, LoopbackMapsModemOutputsAndReturnsTransmittedBytes) {
  EXPECT_EQ(vm_.inb(kMsr) & 0xf0, 0xb0);  // CTS, DSR, DCD: a peer is connected
  vm_.outb(kMcr, 0x10 | 0x08 | 0x02);     // LOOP | OUT2 | RTS: Linux's probe
  EXPECT_EQ(vm_.inb(kMsr) & 0xf0, 0x90);  // DCD | CTS
  vm_.outb(kMcr, 0x10 | 0x01 | 0x04);     // LOOP | DTR | OUT1
  EXPECT_EQ(vm_.inb(kMsr) & 0xf0, 0x60);  // DSR | RI

  vm_.outb(kThr, 'x');
  vm_.outb(kThr, 'y');
  EXPECT_TRUE(sink_.bytes().empty());
  EXPECT_EQ(vm_.inb(kLsr) & 0x01, 0x01);
  EXPECT_EQ(vm_.inb(kThr), 'x');
  EXPECT_EQ(vm_.inb(kThr), 'y');
  EXPECT_EQ(vm_.inb(kLsr) & 0x01, 0x00);
  // The line input is disconnected in loopback: console input waits.
  EXPECT_EQ(receive("z"), 0u);

  vm_.outb(kMcr, 0x0b);
  vm_.outb(kThr, 'o');
  EXPECT_EQ(sink_.bytes(), std::vector<uint8_t>{'o'});
  EXPECT_EQ(receive("z"), 1u);
}

TEST_F(Serial16550Test, ModemStatusDeltasAreReportedAndClearedByReading) {
  vm_.outb(kMcr, 0x10 | 0x0f);  // loopback, all outputs on: CTS DSR RI DCD
  vm_.inb(kMsr);                // clear the deltas of entering loopback
  vm_.outb(kIer, 0x08);
  EXPECT_EQ(vm_.inb(kIir) & 0x0f, 0x01);
  vm_.outb(kMcr, 0x10);  // all off: every delta, RI's trailing edge included
  EXPECT_TRUE(vm_.irqs.level(kIrq));
  EXPECT_EQ(vm_.inb(kIir) & 0x0f, 0x00);
  EXPECT_EQ(vm_.inb(kMsr), 0x0f);
  EXPECT_EQ(vm_.inb(kMsr), 0x00);
  EXPECT_EQ(vm_.inb(kIir) & 0x0f, 0x01);
  EXPECT_FALSE(vm_.irqs.level(kIrq));
}

TEST_F(Serial16550Test, ThreInterruptRaisedByIerAndClearedByReadingIir) {
  EXPECT_EQ(vm_.inb(kIir), 0x01);
  vm_.outb(kIer, 0x02);
  EXPECT_TRUE(vm_.irqs.level(kIrq));
  EXPECT_EQ(vm_.inb(kIir), 0x02);
  EXPECT_FALSE(vm_.irqs.level(kIrq));
  EXPECT_EQ(vm_.inb(kIir), 0x01);
  // Writing THR empties it again: a new THR-empty interrupt.
  vm_.outb(kThr, 'a');
  EXPECT_TRUE(vm_.irqs.level(kIrq));
  EXPECT_EQ(vm_.inb(kIir), 0x02);
  // Re-enabling raises it even though it was acknowledged (Linux's THRE re-assert probe).
  vm_.outb(kIer, 0x00);
  EXPECT_EQ(vm_.inb(kIir), 0x01);
  vm_.outb(kIer, 0x02);
  EXPECT_EQ(vm_.inb(kIir), 0x02);
  // Disabling drops it.
  vm_.outb(kThr, 'b');
  EXPECT_TRUE(vm_.irqs.level(kIrq));
  vm_.outb(kIer, 0x00);
  EXPECT_FALSE(vm_.irqs.level(kIrq));
  EXPECT_EQ(vm_.inb(kIir), 0x01);
}

TEST_F(Serial16550Test, InterruptIdentificationFollowsPriorities) {
  vm_.outb(kFcr, 0x01);  // FIFOs on, trigger level 1
  vm_.outb(kMcr, 0x10);  // loopback, to provoke an overrun and a modem delta
  for (size_t i = 0; i <= Serial16550::kReceiveCapacity; ++i) {
    vm_.outb(kThr, 'x');  // one more than fits: overrun
  }
  vm_.outb(kMcr, 0x12);  // RTS → CTS delta
  vm_.outb(kIer, 0x0f);  // everything enabled, THRE pending from the write
  EXPECT_TRUE(vm_.irqs.level(kIrq));

  EXPECT_EQ(vm_.inb(kIir), 0xc6);         // receiver line status first
  EXPECT_EQ(vm_.inb(kLsr) & 0x03, 0x03);  // OE | DR; reading clears OE
  EXPECT_EQ(vm_.inb(kIir), 0xc4);         // then received data
  for (size_t i = 0; i < Serial16550::kReceiveCapacity; ++i) {
    vm_.inb(kThr);
  }
  EXPECT_EQ(vm_.inb(kIir), 0xc2);  // then THR empty, cleared by this read
  EXPECT_EQ(vm_.inb(kIir), 0xc0);  // then modem status
  vm_.inb(kMsr);
  EXPECT_EQ(vm_.inb(kIir), 0xc1);
  EXPECT_FALSE(vm_.irqs.level(kIrq));
}

TEST_F(Serial16550Test, ReceivedDataRaisesAndDrainingLowersTheIrq) {
  vm_.outb(kIer, 0x01);
  EXPECT_FALSE(vm_.irqs.level(kIrq));
  EXPECT_EQ(vm_.inb(kLsr) & 0x01, 0);
  EXPECT_EQ(receive("abc"), 3u);
  EXPECT_TRUE(vm_.irqs.level(kIrq));
  EXPECT_EQ(vm_.inb(kIir), 0x04);  // FIFOs off: plain data available
  EXPECT_EQ(vm_.inb(kLsr) & 0x01, 1);
  EXPECT_EQ(vm_.inb(kThr), 'a');
  EXPECT_EQ(vm_.inb(kThr), 'b');
  EXPECT_TRUE(vm_.irqs.level(kIrq));
  EXPECT_EQ(vm_.inb(kThr), 'c');
  EXPECT_FALSE(vm_.irqs.level(kIrq));
  EXPECT_EQ(vm_.inb(kLsr) & 0x01, 0);
  EXPECT_EQ(vm_.inb(kThr), 'c');  // RBR keeps its last byte
  EXPECT_EQ(vm_.irqs.rising_edges(kIrq), 1);
}

TEST_F(Serial16550Test, FifoTriggerLevelSelectsDataAvailableOrTimeout) {
  vm_.outb(kFcr, 0x81);  // FIFOs on, trigger at 8 bytes
  vm_.outb(kIer, 0x01);
  receive("1234567");
  EXPECT_EQ(vm_.inb(kIir), 0xcc);  // below the trigger: character timeout
  receive("8");
  EXPECT_EQ(vm_.inb(kIir), 0xc4);
  // Clearing the receive FIFO drops the data and the interrupt.
  vm_.outb(kFcr, 0x83);
  EXPECT_EQ(vm_.inb(kLsr) & 0x01, 0);
  EXPECT_EQ(vm_.inb(kIir), 0xc1);
  EXPECT_FALSE(vm_.irqs.level(kIrq));
}

TEST_F(Serial16550Test, ReceiveTakesOnlyWhatFitsAndKeepsOrder) {
  std::string big(Serial16550::kReceiveCapacity + 100, '\0');
  for (size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>('a' + i % 26);
  }
  EXPECT_EQ(receive(big), Serial16550::kReceiveCapacity);
  EXPECT_EQ(receive("more"), 0u);
  // Back-pressure, not loss: no overrun is reported.
  EXPECT_EQ(vm_.inb(kLsr) & 0x02, 0);
  for (size_t i = 0; i < Serial16550::kReceiveCapacity; ++i) {
    ASSERT_EQ(vm_.inb(kThr), static_cast<uint8_t>(big[i])) << i;
  }
  EXPECT_EQ(vm_.inb(kLsr) & 0x01, 0);
  EXPECT_EQ(receive(big.substr(Serial16550::kReceiveCapacity)), 100u);
}

TEST_F(Serial16550Test, OverrunWhenFullKeepsTheFifoAndSetsOeUntilLsrIsRead) {
  vm_.outb(kIer, 0x04);  // line status interrupts only
  vm_.outb(kMcr, 0x10);
  for (size_t i = 0; i < Serial16550::kReceiveCapacity; ++i) {
    vm_.outb(kThr, static_cast<uint8_t>(i));
  }
  EXPECT_FALSE(vm_.irqs.level(kIrq));
  vm_.outb(kThr, 0xee);  // lost
  EXPECT_TRUE(vm_.irqs.level(kIrq));
  EXPECT_EQ(vm_.inb(kIir), 0x06);
  EXPECT_EQ(vm_.inb(kLsr), 0x63);  // TEMT | THRE | OE | DR
  EXPECT_EQ(vm_.inb(kLsr), 0x61);  // OE cleared by the read
  EXPECT_FALSE(vm_.irqs.level(kIrq));
  for (size_t i = 0; i < Serial16550::kReceiveCapacity; ++i) {
    ASSERT_EQ(vm_.inb(kThr), static_cast<uint8_t>(i));
  }
  EXPECT_EQ(vm_.inb(kLsr), 0x60);
}

TEST_F(Serial16550Test, ConsoleThreadAndVcpuThreadsShareTheDevice) {
  // The console thread pushes a long sequence with back-pressure while one "vCPU" drains it and
  // another transmits: nothing is lost, reordered or duplicated.
  constexpr size_t kTotal = 100'000;
  std::thread console([this] {
    size_t sent = 0;
    while (sent < kTotal) {
      uint8_t chunk[64];
      const size_t count = std::min(sizeof(chunk), kTotal - sent);
      for (size_t i = 0; i < count; ++i) {
        chunk[i] = static_cast<uint8_t>((sent + i) % 251);
      }
      size_t taken = 0;
      while (taken < count) {
        taken += serial_->receive(std::span(chunk + taken, count - taken));
        if (taken < count) {
          std::this_thread::yield();
        }
      }
      sent += count;
    }
  });
  std::thread transmitter([this] {
    for (int i = 0; i < 10'000; ++i) {
      vm_.outb(kThr, 't');
      vm_.inb(kIir);
    }
  });
  vm_.outb(kIer, 0x0f);
  size_t received = 0;
  bool in_order = true;
  while (received < kTotal) {
    if ((vm_.inb(kLsr) & 0x01) != 0) {
      in_order = in_order && vm_.inb(kThr) == received % 251;
      ++received;
    }
  }
  console.join();
  transmitter.join();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(sink_.bytes().size(), 10'000u);
  EXPECT_EQ(vm_.inb(kLsr) & 0x03, 0);
}

TEST_F(Serial16550Test, EveryOffsetAndWidthIsSafe) {
  for (uint64_t port = kBase; port < kBase + 8; ++port) {
    for (size_t width : {1u, 2u, 4u, 8u}) {
      for (uint64_t value : {0ull, 0xffull, ~0ull, 0x8080808080808080ull}) {
        vm_.out(port, value, width);
        vm_.in(port, width);
      }
    }
  }
  SUCCEED();
}

}  // namespace
}  // namespace hv
