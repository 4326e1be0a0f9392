// The emulation engine's side of hv's hypercalls (docs/hypercalls.md): reading the caller's
// registers and writing the result back. The calls themselves are the HypercallService's, the
// same the KVM engine uses; the doorbell OUT and VMCALL (ops_system.cpp) both come here.
#include "devices/hypercalls.hpp"
#include "emu/cpu.hpp"

namespace hv::emu {

bool Cpu::hypercall() {
  HypercallService* service = machine_.hypercalls();
  if (service == nullptr) {
    return false;
  }
  HypercallFrame frame;
  frame.wide = code_size_ == 8;
  frame.rax = gpr[kRax];
  frame.rbx = gpr[kRbx];
  frame.rcx = gpr[kRcx];
  frame.rdx = gpr[kRdx];
  frame.rsi = gpr[kRsi];
  frame.rdi = gpr[kRdi];
  hypercall_counts.count(frame.number());
  service->dispatch(frame);
  gpr[kRax] = frame.rax;
  gpr[kRdx] = frame.rdx;
  return true;
}

}  // namespace hv::emu
