#include "devices/post_code.hpp"

#include <gtest/gtest.h>

#include "devices/device_test_support.hpp"

namespace hv {
namespace {

TEST(PostCodePortTest, WritesVanishAndReadsReturnAllOnes) {
  device_test::TestMachine vm;
  PostCodePort port;
  ASSERT_TRUE(vm.pio().add(0x80, PostCodePort::kPortCount, &port).ok());
  ASSERT_TRUE(vm.pio().add(0xed, PostCodePort::kPortCount, &port).ok());
  for (size_t width : {1u, 2u, 4u, 8u}) {
    vm.out(0x80, 0x42, width);
    vm.out(0xed, 0x42, width);
    EXPECT_EQ(vm.in(0x80, width), width == 8 ? ~0ull : (1ull << (8 * width)) - 1);
  }
  EXPECT_FALSE(vm.stop_reason(1).has_value());
}

}  // namespace
}  // namespace hv
