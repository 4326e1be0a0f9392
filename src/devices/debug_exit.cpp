#include "devices/debug_exit.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace hv {

void DebugExit::read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
}

void DebugExit::write(uint64_t, std::span<const uint8_t> data) {
  const uint64_t value = io_value(data);
  stop_.request(StopReason{StopKind::DebugExit, exit_status_for(value),
                           fmt::format("guest wrote {:#x} to the debug-exit port", value), ""});
}

}  // namespace hv
