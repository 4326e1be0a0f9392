#include "devices/pci_bus.hpp"

#include <gtest/gtest.h>

namespace hv {
namespace {

class ScratchFunction final : public PciFunction {
 public:
  uint32_t config_read(uint8_t reg) override { return reg == 0 ? 0x1af4'1000u : scratch; }
  void config_write(uint8_t, uint32_t value, uint8_t) override { scratch = value; }
  uint32_t scratch = 0;
};

TEST(PciBus, HostBridgeAnswersAt0000) {
  PciBus bus;
  EXPECT_EQ(bus.config_read({0, 0, 0}, 0x00), 0x1237'8086u);
  // Class 06 (bridge), subclass 00 (host), programming interface 00, revision 2.
  EXPECT_EQ(bus.config_read({0, 0, 0}, 0x08), 0x0600'0002u);
  EXPECT_EQ(bus.config_read({0, 0, 0}, 0x0c), 0u);  // header type 0, single function
  EXPECT_EQ(bus.config_read({0, 0, 0}, 0x10), 0u);  // no BARs
}

TEST(PciBus, EmptySlotsFunctionsAndBusesDoNotAnswer) {
  PciBus bus;
  EXPECT_FALSE(bus.config_read({0, 1, 0}, 0).has_value());
  EXPECT_FALSE(bus.config_read({0, 0, 1}, 0).has_value());
  EXPECT_FALSE(bus.config_read({1, 0, 0}, 0).has_value());
  EXPECT_FALSE(bus.config_read({0, 31, 0}, 0).has_value());
}

TEST(PciBus, HostBridgeKeepsOnlyItsWritableCommandBits) {
  PciBus bus;
  bus.config_write({0, 0, 0}, 0x04, 0xffff'ffff, 0xf);
  EXPECT_EQ(bus.config_read({0, 0, 0}, 0x04), 0x0146u);  // memory, master, parity, SERR
  bus.config_write({0, 0, 0}, 0x04, 0x0000'0000, 0x2);   // clears the high byte only
  EXPECT_EQ(bus.config_read({0, 0, 0}, 0x04), 0x0046u);
  bus.config_write({0, 0, 0}, 0x00, 0, 0xf);  // IDs are read-only
  EXPECT_EQ(bus.config_read({0, 0, 0}, 0x00), 0x1237'8086u);
}

TEST(PciBus, PluggedFunctionsAnswerInTheirSlot) {
  PciBus bus;
  ScratchFunction function;
  ASSERT_TRUE(bus.plug(3, &function).ok());
  EXPECT_EQ(bus.config_read({0, 3, 0}, 0x00), 0x1af4'1000u);
  bus.config_write({0, 3, 0}, 0x40, 0xabcd, 0xf);
  EXPECT_EQ(function.scratch, 0xabcdu);
  EXPECT_FALSE(bus.config_read({0, 3, 1}, 0).has_value());
  EXPECT_FALSE(bus.plug(3, &function).ok());   // taken
  EXPECT_FALSE(bus.plug(0, &function).ok());   // the host bridge's
  EXPECT_FALSE(bus.plug(32, &function).ok());  // no such slot
}

}  // namespace
}  // namespace hv
