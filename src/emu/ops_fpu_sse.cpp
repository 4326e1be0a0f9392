// x87, SSE and SSE2 instructions: registration. The handlers live in ops_x87.cpp (x87, FXSAVE)
// and ops_sse.cpp (SSE/SSE2, MXCSR).
#include "emu/ops_fpu_sse.hpp"

#include <array>

namespace hv::emu {

namespace fpu {
namespace {

// Per mnemonic: this group's binder and the one registered before it (or null).
std::array<Binder, ZYDIS_MNEMONIC_MAX_VALUE + 1> own_binders{};
std::array<Binder, ZYDIS_MNEMONIC_MAX_VALUE + 1> previous_binders{};

Handler chained_binder(const Insn& insn) {
  Handler h = own_binders[insn.mnemonic](insn);
  if (h == nullptr && previous_binders[insn.mnemonic] != nullptr) {
    h = previous_binders[insn.mnemonic](insn);
  }
  return h;
}

}  // namespace

void add_chained(HandlerRegistry& registry, ZydisMnemonic mnemonic, Binder binder) {
  const Binder previous = registry.find(mnemonic);
  if (previous == nullptr || previous == chained_binder) {
    registry.add(mnemonic, binder);
    return;
  }
  own_binders[mnemonic] = binder;
  previous_binders[mnemonic] = previous;
  registry.add(mnemonic, chained_binder);
}

}  // namespace fpu

void register_fpu_sse_ops(HandlerRegistry& registry) {
  fpu::register_x87_ops(registry);
  fpu::register_sse_ops(registry);
}

}  // namespace hv::emu
