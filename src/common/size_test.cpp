#include "common/size.hpp"

#include <gtest/gtest.h>

namespace hv {
namespace {

TEST(ParseSize, AcceptsBinarySuffixes) {
  EXPECT_EQ(*parse_size("256M"), 256ull << 20);
  EXPECT_EQ(*parse_size("1g"), 1ull << 30);
  EXPECT_EQ(*parse_size("4096K"), 4096ull << 10);
  EXPECT_EQ(*parse_size("512MiB"), 512ull << 20);
  EXPECT_EQ(*parse_size("2GB"), 2ull << 30);
  EXPECT_EQ(*parse_size("1048576"), 1048576u);
}

TEST(ParseSize, RejectsGarbage) {
  for (const char* bad : {"", "M", "12Q", "12MX", "-5M", "99999999999T"}) {
    auto r = parse_size(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().status, ExitStatus::Usage) << bad;
  }
}

}  // namespace
}  // namespace hv
