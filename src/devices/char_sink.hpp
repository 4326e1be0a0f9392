// Where a console device's output goes (the terminal, a pipe, a log file, a test buffer).
#pragma once

#include <cstdint>
#include <span>

namespace hv {

class CharSink {
 public:
  virtual ~CharSink() = default;
  // Called from vCPU threads; must not block for long.
  virtual void write(std::span<const uint8_t> bytes) = 0;
};

}  // namespace hv
