#include "devices/post_code.hpp"

#include <algorithm>

namespace hv {

void PostCodePort::read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
}

void PostCodePort::write(uint64_t, std::span<const uint8_t>) {}

}  // namespace hv
