// libFuzzer target: arbitrary bytes through the emulator's decoder in all three code sizes.
// The decoder must never crash or read past its input, and always produce a handler.
#include <cstddef>
#include <cstdint>
#include <span>

#include "emu/decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const hv::emu::Decoder decoders[3] = {hv::emu::Decoder(2), hv::emu::Decoder(4),
                                               hv::emu::Decoder(8)};
  for (const auto& decoder : decoders) {
    hv::emu::Insn insn;
    decoder.decode(std::span<const uint8_t>(data, size < 15 ? size : 15), insn);
    if (insn.handler == nullptr || insn.length == 0 || insn.length > 15) {
      __builtin_trap();
    }
  }
  return 0;
}
