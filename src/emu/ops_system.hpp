// Private helpers shared by the system side of the CPU: segments.cpp, interrupts.cpp,
// system.cpp and ops_system.cpp. Nothing outside those files should include this.
#pragma once

#include <cstdint>

#include "emu/cpu.hpp"
#include "emu/insn.hpp"

namespace hv::emu {

// Descriptor attribute bits in SegmentCache::attributes (the VMX access-rights layout).
namespace attr {
constexpr uint16_t kAccessed = 0x01, kS = 0x10, kPresent = 0x80, kAvl = 0x1000, kL = 0x2000,
                   kDb = 0x4000, kG = 0x8000;
// Flat segments as SYSCALL/SYSENTER load them (they do not read the GDT).
constexpr uint16_t kCode64Ring0 = 0xa09b, kCode32Ring0 = 0xc09b, kData32Ring0 = 0xc093;
constexpr uint16_t kCode64Ring3 = 0xa0fb, kCode32Ring3 = 0xc0fb, kData32Ring3 = 0xc0f3;
// Real-mode/V86 data segment: present, read/write, accessed; DPL 3 for V86.
constexpr uint16_t kV86 = 0xf3;
}  // namespace attr

// Implicit supervisor accesses (descriptor tables, TSS, the new stack of an interrupt) are made
// at the privilege they need, whatever the CPL: the memory path takes user/supervisor from
// cpu.cpl, so this scope overrides it and restores it even when the access faults.
class CplScope {
 public:
  CplScope(Cpu& cpu, uint8_t cpl) : cpu_(cpu), saved_(cpu.cpl) { cpu.cpl = cpl; }
  ~CplScope() { cpu_.cpl = saved_; }
  CplScope(const CplScope&) = delete;
  CplScope& operator=(const CplScope&) = delete;

 private:
  Cpu& cpu_;
  uint8_t saved_;
};

// Linear address of a system structure (GDT, IDT, TSS): 32-bit outside long mode.
inline uint64_t system_address(const Cpu& cpu, uint64_t la) {
  return cpu.long_mode() ? la : (la & 0xffffffff);
}
uint64_t read_system(Cpu& cpu, uint64_t la, uint8_t size);
void write_system(Cpu& cpu, uint64_t la, uint8_t size, uint64_t value);

// The hidden-cache image of an 8-byte descriptor (plus the high half of a 16-byte one).
SegmentCache cache_from_descriptor(uint16_t selector, uint64_t low, uint64_t high = 0);
// Sets the accessed bit of a code/data descriptor in memory, as the CPU does on a load.
void set_descriptor_accessed(Cpu& cpu, uint16_t selector, uint64_t descriptor);
// Whether the selector's descriptor lies inside its table (LAR/LSL/VERR/VERW test this
// instead of faulting).
bool selector_in_table(const Cpu& cpu, uint16_t selector);
// A segment register that was loaded with the null selector: unusable.
SegmentCache null_segment(uint16_t selector);

// Checks SS for a privilege change to `cpl` (IRET, RETF, interrupt stack switch) and returns
// its cache; `fault`/`error_base` choose #GP or #TS with the architecture's error codes.
SegmentCache check_stack_segment(Cpu& cpu, uint16_t selector, uint8_t cpl, uint8_t fault);

// Event delivery with an explicit return address. `software` (INT n/INT3/INTO) applies the
// gate DPL check; INT1 passes dpl_check=false. deliver_interrupt() uses rip for faults and
// external interrupts and next_rip for software interrupts.
void deliver_event(Cpu& cpu, uint8_t vector, bool has_error_code, uint32_t error_code,
                   bool software, bool dpl_check, uint64_t return_rip);

// Handlers for the forms of mnemonics that the integer group also registers (MOV, PUSH, POP,
// JMP, CALL, RET): returns the system handler for Sreg/CR/DR moves, PUSH/POP Sreg and far
// transfers, nullptr for every other form. register_system_ops() chains this in front of the
// binder registered before it; a binder registered after it should call this first.
Handler bind_system_form(const Insn& insn);

}  // namespace hv::emu
