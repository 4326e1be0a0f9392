// General-purpose integer instructions: registration of the groups in ops_integer_*.cpp.
#include <array>

#include "emu/ops_integer.hpp"

namespace hv::emu {

namespace integer {
namespace {

// Binders other groups registered before us (see chain_to_other_group).
std::array<Binder, ZYDIS_MNEMONIC_MAX_VALUE + 1> g_other_groups{};

}  // namespace

Handler chain_to_other_group(const Insn& insn) {
  const Binder b = insn.mnemonic < g_other_groups.size() ? g_other_groups[insn.mnemonic] : nullptr;
  return b != nullptr ? b(insn) : nullptr;
}

}  // namespace integer

void register_integer_ops(HandlerRegistry& registry) {
  for (size_t m = 0; m < integer::g_other_groups.size(); ++m) {
    integer::g_other_groups[m] = registry.find(static_cast<uint16_t>(m));
  }
  integer::register_alu_ops(registry);
  integer::register_move_ops(registry);
  integer::register_branch_ops(registry);
  integer::register_string_ops(registry);
}

}  // namespace hv::emu
