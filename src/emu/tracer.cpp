#include "emu/tracer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>

namespace hv::emu {

Result<std::unique_ptr<Tracer>> Tracer::open(const std::string& path) {
  if (path == "-") {
    return std::unique_ptr<Tracer>(new Tracer(stderr, false));
  }
  std::FILE* file = std::fopen(path.c_str(), "we");
  if (file == nullptr) {
    return Error::from_errno(fmt::format("cannot create trace file {}", path),
                             ExitStatus::HostError);
  }
  return std::unique_ptr<Tracer>(new Tracer(file, true));
}

Tracer::Tracer(std::FILE* file, bool owned) : file_(file), owned_(owned) {
  ZydisFormatterInit(&formatter_, ZYDIS_FORMATTER_STYLE_INTEL);
  ZydisDecoderInit(&decoder16_, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
  ZydisDecoderInit(&decoder32_, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
  ZydisDecoderInit(&decoder64_, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

Tracer::~Tracer() {
  if (owned_) {
    std::fclose(file_);
  } else {
    std::fflush(file_);
  }
}

void Tracer::write_line(const std::string& line) {
  std::lock_guard lock(mutex_);
  std::fputs(line.c_str(), file_);
}

void Tracer::instruction(Cpu& cpu, uint8_t length) {
  const uint8_t code_size = cpu.code_size();
  const uint64_t linear = cpu.seg[kCs].base + cpu.rip;
  uint8_t bytes[16] = {};
  std::string text;
  // The block was decoded from these bytes, so they are fetchable; the guard keeps a trace from
  // ever changing guest state (CR2) should the mapping have changed since.
  const uint64_t saved_cr2 = cpu.cr2;
  try {
    cpu.fetch(code_size == 8 ? linear : (linear & 0xffffffff), bytes, length);
    const ZydisDecoder& decoder = code_size == 8   ? decoder64_
                                  : code_size == 4 ? decoder32_
                                                   : decoder16_;
    // A fused Insn (branch_fusion.hpp) covers two instructions: show each.
    uint8_t offset = 0;
    while (offset < length) {
      ZydisDecodedInstruction zi;
      ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
      char buffer[160];
      if (ZYAN_FAILED(
              ZydisDecoderDecodeFull(&decoder, bytes + offset, length - offset, &zi, ops)) ||
          ZYAN_FAILED(ZydisFormatterFormatInstruction(&formatter_, &zi, ops,
                                                      zi.operand_count_visible, buffer,
                                                      sizeof(buffer), linear + offset, nullptr))) {
        text += "(undecodable)";
        break;
      }
      text += offset == 0 ? "" : "; ";
      text += buffer;
      offset = static_cast<uint8_t>(offset + zi.length);
    }
  } catch (const GuestFault&) {
    text = "(bytes no longer mapped)";
  }
  cpu.cr2 = saved_cr2;
  write_line(fmt::format("cpu{} {:04x}:{:016x}  {:<24}  {}\n", cpu.index(), cpu.seg[kCs].selector,
                         cpu.rip, fmt::format("{:02x}", fmt::join(bytes, bytes + length, "")),
                         text));
}

void Tracer::event(const Cpu& cpu, uint8_t vector, bool has_error_code, uint32_t error_code,
                   bool external) {
  std::string line =
      fmt::format("cpu{} {:04x}:{:016x}  {} vector {:#04x}", cpu.index(), cpu.seg[kCs].selector,
                  cpu.rip, external ? "interrupt" : "exception", vector);
  if (has_error_code) {
    line += fmt::format(" error {:#x}", error_code);
  }
  if (vector == kPageFault && !external) {
    line += fmt::format(" cr2 {:#x}", cpu.cr2);
  }
  line += '\n';
  write_line(line);
}

}  // namespace hv::emu
