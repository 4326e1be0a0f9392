#include "devices/pci_host.hpp"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"
#include "devices/io_window.hpp"

namespace hv {
namespace {

constexpr uint64_t kAddress = 0xcf8;
constexpr uint64_t kData = 0xcfc;

// One function at 00:03.0 with a vendor/device ID dword and a scratch dword at 0x40.
class FakeFunction final : public PciConfigSpace {
 public:
  std::optional<uint32_t> config_read(PciAddress address, uint8_t reg) override {
    if (address.bus != 0 || address.device != 3 || address.function != 0) {
      return std::nullopt;
    }
    return reg == 0 ? 0x1234'8086u : reg == 0x40 ? scratch : 0u;
  }
  void config_write(PciAddress address, uint8_t reg, uint32_t value, uint8_t byte_enable) override {
    writes.push_back({address.device, reg, value, byte_enable});
    if (reg == 0x40) {
      for (int i = 0; i < 4; ++i) {
        if ((byte_enable & (1 << i)) != 0) {
          scratch = (scratch & ~(0xffu << (8 * i))) | (value & (0xffu << (8 * i)));
        }
      }
    }
  }
  struct Write {
    uint8_t device, reg;
    uint32_t value;
    uint8_t byte_enable;
  };
  std::vector<Write> writes;
  uint32_t scratch = 0;
};

class PciHostTest : public ::testing::Test {
 protected:
  void install(PciConfigSpace* functions) {
    bridge_ = std::make_unique<PciHostBridge>(functions);
    data_window_ = std::make_unique<IoWindow>(bridge_.get(), PciHostBridge::kDataOffset);
    ASSERT_TRUE(vm_.pio().add(kAddress, 1, bridge_.get()).ok());
    ASSERT_TRUE(vm_.pio().add(kData, PciHostBridge::kDataWidth, data_window_.get()).ok());
  }

  device_test::TestMachine vm_;
  std::unique_ptr<PciHostBridge> bridge_;
  std::unique_ptr<IoWindow> data_window_;
};

TEST_F(PciHostTest, ConfigAddressReadsBackWithLowBitsZero) {
  install(nullptr);
  vm_.outl(kAddress, 0x8000'0000);
  EXPECT_EQ(vm_.inl(kAddress), 0x8000'0000u);  // Linux's type 1 probe
  vm_.outl(kAddress, 0x8012'3457);
  EXPECT_EQ(vm_.inl(kAddress), 0x8012'3454u);
  EXPECT_EQ(bridge_->config_address(), 0x8012'3454u);
  // Narrower accesses are not CONFIG_ADDRESS: no-ops reading all ones.
  vm_.outw(kAddress, 0);
  vm_.outb(kAddress, 0);
  EXPECT_EQ(vm_.inw(kAddress), 0xffff);
  EXPECT_EQ(vm_.inb(kAddress), 0xff);
  EXPECT_EQ(vm_.in(kAddress, 8), ~0ull);
  EXPECT_EQ(vm_.inl(kAddress), 0x8012'3454u);
}

TEST_F(PciHostTest, EmptyBusReadsAllOnesAtEveryWidthAndOffset) {
  install(nullptr);
  for (uint32_t address : {0x8000'0000u, 0x8000'1800u, 0x0000'0000u, 0xffff'fffcu}) {
    vm_.outl(kAddress, address);
    for (uint64_t port = kData; port < kData + 4; ++port) {
      for (size_t width : {1u, 2u, 4u, 8u}) {
        vm_.out(port, 0, width);
        EXPECT_EQ(vm_.in(port, width), width == 8 ? ~0ull : (1ull << (8 * width)) - 1)
            << std::hex << address << " port " << port << " width " << width;
      }
    }
  }
}

TEST_F(PciHostTest, ConfigCyclesReachTheConfigSpaceHook) {
  FakeFunction function;
  install(&function);
  vm_.outl(kAddress, 0x8000'1800);  // 00:03.0, register 0
  EXPECT_EQ(vm_.inl(kData), 0x1234'8086u);
  EXPECT_EQ(vm_.inw(kData + 2), 0x1234);
  EXPECT_EQ(vm_.inb(kData + 1), 0x80);
  EXPECT_EQ(vm_.inl(kData + 2), 0xffff'1234u);  // bytes past the dword read all ones
  vm_.outl(kAddress, 0x0000'1800);              // enable bit clear: no cycle
  EXPECT_EQ(vm_.inl(kData), 0xffff'ffffu);
  vm_.outl(kAddress, 0x8000'2000);  // 00:04.0: absent
  EXPECT_EQ(vm_.inl(kData), 0xffff'ffffu);

  vm_.outl(kAddress, 0x8000'1840);
  vm_.outw(kData + 2, 0xbeef);
  EXPECT_EQ(vm_.inl(kData), 0xbeef'0000u);
  ASSERT_EQ(function.writes.size(), 1u);
  EXPECT_EQ(function.writes[0].device, 3);
  EXPECT_EQ(function.writes[0].reg, 0x40);
  EXPECT_EQ(function.writes[0].value, 0xbeef'0000u);
  EXPECT_EQ(function.writes[0].byte_enable, 0x0c);
}

}  // namespace
}  // namespace hv
