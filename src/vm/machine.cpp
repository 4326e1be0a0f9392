#include "vm/machine.hpp"

namespace hv {

Result<std::unique_ptr<Machine>> Machine::create(const MachineConfig& config) {
  GuestMemory memory = HV_TRY(GuestMemory::create(config.memory_bytes));
  return std::unique_ptr<Machine>(new Machine(config, std::move(memory)));
}

Machine::Machine(const MachineConfig& config, GuestMemory memory)
    : config_(config), memory_(std::move(memory)) {}

}  // namespace hv
