#include "devices/i8042.hpp"

#include <memory>

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"
#include "devices/io_window.hpp"

namespace hv {
namespace {

constexpr uint64_t kData = 0x60;
constexpr uint64_t kCommand = 0x64;
constexpr uint32_t kKeyboardIrq = 1;
constexpr uint32_t kAuxIrq = 12;

class I8042Test : public ::testing::Test {
 protected:
  void SetUp() override {
    i8042_ = std::make_unique<I8042>(vm_.machine->irq_line(kKeyboardIrq),
                                     vm_.machine->irq_line(kAuxIrq), vm_.machine->stop());
    command_port_ = std::make_unique<IoWindow>(i8042_.get(), I8042::kCommandOffset);
    ASSERT_TRUE(vm_.pio().add(kData, 1, i8042_.get()).ok());
    ASSERT_TRUE(vm_.pio().add(kCommand, 1, command_port_.get()).ok());
  }

  bool output_full() { return (vm_.inb(kCommand) & 0x01) != 0; }
  // The controller's answer to a command, read the way a polling driver does.
  uint8_t command(uint8_t command) {
    vm_.outb(kCommand, command);
    EXPECT_TRUE(output_full()) << "no answer to command " << int{command};
    return vm_.inb(kData);
  }
  uint8_t next_byte() {
    EXPECT_TRUE(output_full());
    return vm_.inb(kData);
  }

  device_test::TestMachine vm_;
  std::unique_ptr<I8042> i8042_;
  std::unique_ptr<IoWindow> command_port_;
};

TEST_F(I8042Test, StatusShowsSystemFlagAndEmptyBuffer) {
  const uint8_t status = vm_.inb(kCommand);
  EXPECT_EQ(status & 0x01, 0);     // output buffer empty
  EXPECT_EQ(status & 0x02, 0);     // input buffer always empty: commands complete at once
  EXPECT_EQ(status & 0x04, 0x04);  // system flag: POST passed
  EXPECT_EQ(status & 0x10, 0x10);  // keylock open
}

TEST_F(I8042Test, SelfTestAndInterfaceTests) {
  EXPECT_EQ(command(0xaa), 0x55);
  EXPECT_FALSE(output_full());
  EXPECT_EQ(command(0xab), 0x00);
  EXPECT_EQ(command(0xa9), 0x00);
  EXPECT_NE(vm_.inb(kCommand) & 0x04, 0);
}

TEST_F(I8042Test, CommandByteReadWriteAndPortEnables) {
  EXPECT_EQ(command(0x20), 0x65);  // translate, aux off, system, keyboard interrupt
  vm_.outb(kCommand, 0x60);
  vm_.outb(kData, 0x47);
  EXPECT_EQ(command(0x20), 0x47);
  vm_.outb(kCommand, 0xad);
  EXPECT_EQ(command(0x20), 0x57);
  vm_.outb(kCommand, 0xae);
  vm_.outb(kCommand, 0xa7);
  EXPECT_EQ(command(0x20), 0x67);
  vm_.outb(kCommand, 0xa8);
  EXPECT_EQ(command(0x20), 0x47);
}

TEST_F(I8042Test, KeyboardResetAnswersAckThenSelfTestWithAnEdgeEach) {
  vm_.outb(kData, 0xff);
  EXPECT_EQ(vm_.inb(kCommand) & 0x20, 0);  // from the keyboard, not the aux port
  EXPECT_TRUE(vm_.irqs.level(kKeyboardIrq));
  EXPECT_EQ(vm_.inb(kData), 0xfa);
  EXPECT_TRUE(vm_.irqs.level(kKeyboardIrq));
  EXPECT_EQ(next_byte(), 0xaa);
  EXPECT_FALSE(vm_.irqs.level(kKeyboardIrq));
  EXPECT_FALSE(output_full());
  EXPECT_EQ(vm_.irqs.rising_edges(kKeyboardIrq), 2);
  EXPECT_EQ(vm_.inb(kData), 0xaa);  // the last byte stays readable
}

TEST_F(I8042Test, KeyboardCommandsAreAcknowledged) {
  vm_.outb(kData, 0xf4);
  EXPECT_EQ(next_byte(), 0xfa);
  vm_.outb(kData, 0xf5);
  EXPECT_EQ(next_byte(), 0xfa);
  vm_.outb(kData, 0xed);
  EXPECT_EQ(next_byte(), 0xfa);
  vm_.outb(kData, 0x07);  // LED argument
  EXPECT_EQ(next_byte(), 0xfa);
  vm_.outb(kData, 0xf2);
  EXPECT_EQ(next_byte(), 0xfa);
  EXPECT_EQ(next_byte(), 0xab);
  EXPECT_EQ(next_byte(), 0x83);
  vm_.outb(kData, 0xf0);
  EXPECT_EQ(next_byte(), 0xfa);
  vm_.outb(kData, 0x00);  // get scan code set
  EXPECT_EQ(next_byte(), 0xfa);
  EXPECT_EQ(next_byte(), 0x02);
  vm_.outb(kData, 0xee);
  EXPECT_EQ(next_byte(), 0xee);
  vm_.outb(kData, 0x42);  // not a command
  EXPECT_EQ(next_byte(), 0xfe);
  EXPECT_FALSE(output_full());
}

TEST_F(I8042Test, DisabledKeyboardHoldsItsBytesButNotControllerAnswers) {
  vm_.outb(kData, 0xff);     // answers 0xfa, 0xaa
  vm_.outb(kCommand, 0xad);  // disable the keyboard port
  EXPECT_EQ(next_byte(), 0xfa);
  EXPECT_FALSE(output_full());  // 0xaa is held back
  EXPECT_EQ(command(0x20), 0x75);
  vm_.outb(kCommand, 0xae);
  EXPECT_EQ(next_byte(), 0xaa);
  // Writing to the keyboard re-enables its port, as real controllers do.
  vm_.outb(kCommand, 0xad);
  vm_.outb(kData, 0xee);
  EXPECT_EQ(next_byte(), 0xee);
  EXPECT_EQ(command(0x20), 0x65);
}

TEST_F(I8042Test, AuxLoopbackRaisesIrq12AndMissingMouseTimesOut) {
  vm_.outb(kCommand, 0x60);
  vm_.outb(kData, 0x47);  // aux port and interrupt enabled
  vm_.outb(kCommand, 0xd3);
  vm_.outb(kData, 0x5a);
  EXPECT_EQ(vm_.inb(kCommand) & 0x21, 0x21);  // full, from aux
  EXPECT_TRUE(vm_.irqs.level(kAuxIrq));
  EXPECT_FALSE(vm_.irqs.level(kKeyboardIrq));
  EXPECT_EQ(vm_.inb(kData), 0x5a);
  EXPECT_FALSE(vm_.irqs.level(kAuxIrq));

  vm_.outb(kCommand, 0xd4);
  vm_.outb(kData, 0xf2);                      // identify, to a mouse that is not there
  EXPECT_EQ(vm_.inb(kCommand) & 0x61, 0x61);  // full, from aux, timeout
  EXPECT_EQ(vm_.inb(kData), 0xfe);
  EXPECT_EQ(vm_.inb(kCommand) & 0x61, 0x00);

  vm_.outb(kCommand, 0xd2);
  vm_.outb(kData, 0x33);
  EXPECT_EQ(vm_.inb(kCommand) & 0x21, 0x01);
  EXPECT_TRUE(vm_.irqs.level(kKeyboardIrq));
  EXPECT_EQ(vm_.inb(kData), 0x33);
}

TEST_F(I8042Test, PulseResetLineResetsTheMachine) {
  vm_.outb(kCommand, 0xfe);
  auto reason = vm_.stop_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->kind, StopKind::Reset);
  EXPECT_EQ(reason->exit_status, 0);
  EXPECT_EQ(reason->message, "guest reset the machine through the keyboard controller");
}

TEST_F(I8042Test, OutputPortWriteWithResetBitClearResetsTheMachine) {
  vm_.outb(kCommand, 0xd1);
  vm_.outb(kData, 0xdf);  // A20 on, reset line high: what Linux's boot code writes
  EXPECT_FALSE(vm_.stop_reason(10).has_value());
  EXPECT_EQ(command(0xd0) & 0x03, 0x03);
  vm_.outb(kCommand, 0xff);  // pulses no line
  EXPECT_FALSE(vm_.stop_reason(10).has_value());
  vm_.outb(kCommand, 0xd1);
  vm_.outb(kData, 0xde);
  auto reason = vm_.stop_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->kind, StopKind::Reset);
  EXPECT_EQ(reason->exit_status, 0);
}

TEST_F(I8042Test, WideAccessesOnlyReachTheFirstByte) {
  vm_.outb(kCommand, 0xaa);
  EXPECT_EQ(vm_.inl(kData), 0xffffff55u);
  EXPECT_EQ(vm_.inw(kCommand) & 0xff00, 0xff00);
}

TEST_F(I8042Test, HostileSequencesStayBounded) {
  for (int round = 0; round < 4; ++round) {
    for (unsigned value = 0; value < 0x100; ++value) {
      if (value >= 0xf0 || value == 0xd1) {
        continue;  // reset requests are tested above
      }
      vm_.outb(kCommand, static_cast<uint8_t>(value));
      vm_.outb(kData, static_cast<uint8_t>(value));
      for (size_t width : {1u, 2u, 4u, 8u}) {
        vm_.out(kData, 0xffull, width);
        vm_.in(kData, width);
        vm_.in(kCommand, width);
      }
    }
  }
  for (int i = 0; i < 1000; ++i) {
    vm_.outb(kData, 0xff);  // far more answers than the queue holds
  }
  int drained = 0;
  while (output_full() && drained < 1000) {
    vm_.inb(kData);
    ++drained;
  }
  EXPECT_LT(drained, 40);
  EXPECT_FALSE(vm_.stop_reason(1).has_value());
}

}  // namespace
}  // namespace hv
