// `hv run --engine emulate --trace FILE`: one line per executed instruction (vCPU, CS:RIP,
// disassembly by Zydis) and one per interrupt or exception the CPU takes. Tracing runs the
// vCPUs through a separate instantiation of the run loop, so the untraced loop pays nothing.
#pragma once

#include <Zydis/Zydis.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "common/error.hpp"
#include "emu/cpu.hpp"

namespace hv::emu {

class Tracer {
 public:
  // `path` "-" writes to standard error; anything else is created (truncated).
  static Result<std::unique_ptr<Tracer>> open(const std::string& path);
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // The instruction at CS:RIP, about to run; `length` bytes long (already decoded once).
  void instruction(Cpu& cpu, uint8_t length);
  // An interrupt or exception being delivered.
  void event(const Cpu& cpu, uint8_t vector, bool has_error_code, uint32_t error_code,
             bool external);

 private:
  Tracer(std::FILE* file, bool owned);
  void write_line(const std::string& line);

  std::FILE* file_;
  bool owned_;
  std::mutex mutex_;
  ZydisFormatter formatter_{};
  ZydisDecoder decoder16_{}, decoder32_{}, decoder64_{};
};

}  // namespace hv::emu
