// Event delivery: exceptions, software and external interrupts through the real-mode IVT or
// the protected/long-mode IDT, with the double-fault and triple-fault escalation.
//
// Delivery reads and writes guest memory (IDT, GDT, TSS, the handler's stack) and may fault;
// nothing architectural changes until every access has succeeded, so a fault during delivery
// can be delivered in its place (or escalated) from the unchanged state.
#include "emu/cpu.hpp"
#include "emu/ops_system.hpp"

namespace hv::emu {
namespace {

// Builds an interrupt frame below a stack top without touching RSP; pushes are made at the
// handler's privilege and become visible only when the caller commits `sp`.
class Frame {
 public:
  Frame(Cpu& cpu, uint64_t base, uint64_t sp, uint8_t stack_size, bool flat64, uint8_t cpl)
      : cpu_(cpu), base_(base), sp_(sp), stack_size_(stack_size), flat64_(flat64), cpl_(cpl) {}

  void push(uint64_t value, uint8_t size) {
    sp_ = Cpu::truncate_address(sp_ - size, stack_size_);
    uint64_t la;
    if (flat64_) {
      la = sp_;
      if (!Cpu::is_canonical(la)) {
        raise_fault(kStackFault, 0);
      }
    } else {
      la = (base_ + sp_) & 0xffffffff;
    }
    CplScope scope(cpu_, cpl_);
    switch (size) {
      case 2:
        cpu_.write_linear<uint16_t>(la, static_cast<uint16_t>(value));
        break;
      case 4:
        cpu_.write_linear<uint32_t>(la, static_cast<uint32_t>(value));
        break;
      default:
        cpu_.write_linear<uint64_t>(la, value);
        break;
    }
  }
  uint64_t sp() const { return sp_; }

 private:
  Cpu& cpu_;
  uint64_t base_;
  uint64_t sp_;
  uint8_t stack_size_;
  bool flat64_;
  uint8_t cpl_;
};

struct Gate {
  uint64_t offset;
  uint16_t selector;
  uint8_t type;
  uint8_t dpl;
  bool present;
  uint8_t ist;
};

Gate parse_gate(uint64_t low, uint64_t high) {
  Gate g;
  g.offset = (low & 0xffff) | ((low >> 32) & 0xffff0000) | ((high & 0xffffffff) << 32);
  g.selector = static_cast<uint16_t>(low >> 16);
  g.type = (low >> 40) & 0xf;
  g.dpl = (low >> 45) & 3;
  g.present = (low >> 47) & 1;
  g.ist = (low >> 32) & 7;
  return g;
}

void set_rsp(Cpu& cpu, uint64_t sp, uint8_t stack_size) {
  cpu.set_reg(kRsp, stack_size, sp);
}

void deliver_real_mode(Cpu& cpu, uint8_t vector, uint64_t return_rip) {
  if (vector * 4u + 3u > cpu.idtr_limit) {
    raise_fault(kGeneralProtection, 0);
  }
  const uint32_t entry = static_cast<uint32_t>(read_system(cpu, cpu.idtr_base + vector * 4u, 4));
  Frame frame(cpu, cpu.seg[kSs].base, cpu.gpr[kRsp], 2, false, 0);
  frame.push(cpu.flags() & 0xffff, 2);
  frame.push(cpu.seg[kCs].selector, 2);
  frame.push(return_rip & 0xffff, 2);
  set_rsp(cpu, frame.sp(), 2);
  cpu.rflags &= ~(flag::kIF | flag::kTF | flag::kAC | flag::kRF);
  cpu.seg[kCs].selector = static_cast<uint16_t>(entry >> 16);
  cpu.seg[kCs].base = (entry >> 16) << 4;
  cpu.rip = cpu.next_rip = entry & 0xffff;
  cpu.update_mode();
}

// TSS stack pointer for ring `dpl` (RSP0-2) or IST slot `ist` (1-7).
uint64_t tss_read(Cpu& cpu, uint32_t offset, uint8_t size, bool ext) {
  if (offset + size - 1u > cpu.tr.limit || !cpu.tr.present()) {
    raise_fault(kInvalidTss, (cpu.tr.selector & 0xfffc) | (ext ? 1u : 0u));
  }
  return read_system(cpu, cpu.tr.base + offset, size);
}

void deliver_protected(Cpu& cpu, uint8_t vector, bool has_error_code, uint32_t error_code,
                       bool dpl_check, uint64_t return_rip, bool ext) {
  const bool lm = cpu.long_mode();
  const uint32_t gate_size = lm ? 16 : 8;
  const uint32_t idt_error = vector * 8u + 2u + (ext ? 1u : 0u);
  if (vector * gate_size + gate_size - 1 > cpu.idtr_limit) {
    raise_fault(kGeneralProtection, idt_error);
  }
  const uint64_t low = read_system(cpu, cpu.idtr_base + vector * gate_size, 8);
  const uint64_t high = lm ? read_system(cpu, cpu.idtr_base + vector * gate_size + 8, 8) : 0;
  Gate gate = parse_gate(low, high);
  bool gate32 = true;
  bool trap = false;
  switch (gate.type) {
    case 0x6:
      gate32 = false;
      break;
    case 0x7:
      gate32 = false;
      trap = true;
      break;
    case 0xe:
      break;
    case 0xf:
      trap = true;
      break;
    default:
      // Task gates (0x5) are not implemented: hardware task switching is absent from long mode
      // and unused by the guests this emulator runs.
      raise_fault(kGeneralProtection, idt_error);
  }
  if (lm && !gate32) {
    raise_fault(kGeneralProtection, idt_error);  // 16-bit gates do not exist in long mode
  }
  if (!lm) {
    gate.offset &= gate32 ? 0xffffffff : 0xffff;
    gate.ist = 0;
  }
  if (dpl_check && gate.dpl < cpu.cpl) {
    raise_fault(kGeneralProtection, idt_error);
  }
  if (!gate.present) {
    raise_fault(kSegmentNotPresent, idt_error);
  }

  const uint32_t ext_bit = ext ? 1u : 0u;
  const uint16_t cs_error = static_cast<uint16_t>((gate.selector & 0xfffc) | ext_bit);
  if ((gate.selector & 0xfffc) == 0) {
    raise_fault(kGeneralProtection, ext_bit);
  }
  const uint64_t cs_desc = cpu.read_descriptor(gate.selector);
  SegmentCache cs = cache_from_descriptor(gate.selector, cs_desc);
  if (!cs.is_code() || cs.dpl() > cpu.cpl) {
    raise_fault(kGeneralProtection, cs_error);
  }
  if (!cs.present()) {
    raise_fault(kSegmentNotPresent, cs_error);
  }
  if (lm && (!cs.long_mode() || cs.default_big())) {
    raise_fault(kGeneralProtection, cs_error);  // long-mode handlers run in 64-bit code
  }
  const bool conforming = cs.type() & 4;
  const uint8_t new_cpl = conforming ? cpu.cpl : cs.dpl();
  const bool v86 = cpu.virtual_8086();
  if (v86 && new_cpl != 0) {
    raise_fault(kGeneralProtection, cs_error);
  }
  const bool switch_stack = new_cpl < cpu.cpl;

  const uint64_t old_flags = cpu.flags();
  const uint16_t old_ss = cpu.seg[kSs].selector;
  const uint64_t old_rsp = cpu.gpr[kRsp];

  SegmentCache ss = cpu.seg[kSs];
  uint64_t sp = old_rsp;
  uint8_t stack_size = cpu.stack_size();
  if (lm) {
    if (switch_stack) {
      sp = tss_read(cpu, 4 + new_cpl * 8u, 8, ext);
      ss = null_segment(new_cpl);  // long mode runs handlers on a null SS with RPL = CPL
    }
    if (gate.ist != 0) {
      sp = tss_read(cpu, 0x24 + (gate.ist - 1u) * 8u, 8, ext);
    }
    sp &= ~0xfull;  // the frame is 16-byte aligned in long mode
    stack_size = 8;
  } else if (switch_stack) {
    const uint8_t tss_type = cpu.tr.type();
    uint16_t ss_selector;
    if (tss_type == 0x1 || tss_type == 0x3) {  // 16-bit TSS
      sp = tss_read(cpu, 2 + new_cpl * 4u, 2, ext);
      ss_selector = static_cast<uint16_t>(tss_read(cpu, 4 + new_cpl * 4u, 2, ext));
    } else {
      sp = tss_read(cpu, 4 + new_cpl * 8u, 4, ext);
      ss_selector = static_cast<uint16_t>(tss_read(cpu, 8 + new_cpl * 8u, 2, ext));
    }
    if ((ss_selector & 0xfffc) == 0) {
      raise_fault(kInvalidTss, ext_bit);
    }
    const uint16_t ss_error = static_cast<uint16_t>((ss_selector & 0xfffc) | ext_bit);
    if ((ss_selector & 3) != new_cpl) {
      raise_fault(kInvalidTss, ss_error);
    }
    const uint64_t ss_desc = cpu.read_descriptor(ss_selector);
    ss = cache_from_descriptor(ss_selector, ss_desc);
    if (!ss.writable() || ss.dpl() != new_cpl) {
      raise_fault(kInvalidTss, ss_error);
    }
    if (!ss.present()) {
      raise_fault(kStackFault, ss_error);
    }
    set_descriptor_accessed(cpu, ss_selector, ss_desc);
    ss.attributes |= attr::kAccessed;
    stack_size = ss.default_big() ? 4 : 2;
  }

  const uint8_t slot = lm ? 8 : gate32 ? 4 : 2;
  Frame frame(cpu, ss.base, sp, stack_size, lm, new_cpl);
  if (v86) {
    frame.push(cpu.seg[kGs].selector, slot);
    frame.push(cpu.seg[kFs].selector, slot);
    frame.push(cpu.seg[kDs].selector, slot);
    frame.push(cpu.seg[kEs].selector, slot);
  }
  if (lm || switch_stack) {
    frame.push(old_ss, slot);
    frame.push(old_rsp, slot);
  }
  frame.push(old_flags, slot);
  frame.push(cpu.seg[kCs].selector, slot);
  frame.push(return_rip, slot);
  if (has_error_code) {
    frame.push(error_code, slot);
  }
  if (lm && !Cpu::is_canonical(gate.offset)) {
    raise_fault(kGeneralProtection, ext_bit);
  }
  set_descriptor_accessed(cpu, gate.selector, cs_desc);

  // Commit.
  cs.selector = static_cast<uint16_t>((gate.selector & 0xfffc) | new_cpl);
  cs.attributes |= attr::kAccessed;
  if (v86) {
    for (uint8_t s : {kGs, kFs, kDs, kEs}) {
      cpu.seg[s] = null_segment(0);
    }
  }
  cpu.seg[kSs] = ss;
  cpu.seg[kCs] = cs;
  cpu.rflags &= ~(flag::kTF | flag::kNT | flag::kRF | flag::kVM);
  if (!trap) {
    cpu.rflags &= ~flag::kIF;
  }
  cpu.update_mode();
  set_rsp(cpu, frame.sp(), stack_size);
  cpu.rip = cpu.next_rip = gate.offset;
}

enum class Class { kBenign, kContributory, kPageFault, kDoubleFault };

Class classify(uint8_t vector) {
  switch (vector) {
    case kDivideError:
    case kInvalidTss:
    case kSegmentNotPresent:
    case kStackFault:
    case kGeneralProtection:
      return Class::kContributory;
    case kPageFault:
      return Class::kPageFault;
    case kDoubleFault:
      return Class::kDoubleFault;
    default:
      return Class::kBenign;
  }
}

// `benign`: the event cannot start a double fault (software and external interrupts).
void deliver(Cpu& cpu, uint8_t vector, bool has_error_code, uint32_t error_code, bool software,
             bool dpl_check, bool benign, uint64_t return_rip, int depth) {
  try {
    // Software interrupts and external events set EXT = 0/1 in error codes of nested faults.
    const bool ext = !software;
    if (!cpu.protected_mode()) {
      deliver_real_mode(cpu, vector, return_rip);
    } else {
      deliver_protected(cpu, vector, has_error_code, error_code, dpl_check, return_rip, ext);
    }
    cpu.halted = false;
  } catch (const GuestFault& fault) {
    const Class first = benign ? Class::kBenign : classify(vector);
    const Class second = classify(fault.vector);
    if (first == Class::kDoubleFault || depth >= 4) {
      cpu.triple_faulted = true;  // the engine reports a shutdown
      return;
    }
    const bool double_fault = (first == Class::kContributory && second == Class::kContributory) ||
                              (first == Class::kPageFault &&
                               (second == Class::kContributory || second == Class::kPageFault));
    // The nested fault belongs to the instruction (or boundary) at cpu.rip, which delivery has
    // not changed.
    if (double_fault) {
      deliver(cpu, kDoubleFault, true, 0, false, false, false, cpu.rip, depth + 1);
    } else {
      deliver(cpu, fault.vector, fault.has_error_code, fault.error_code, false, false, false,
              cpu.rip, depth + 1);
    }
  }
}

}  // namespace

void deliver_event(Cpu& cpu, uint8_t vector, bool has_error_code, uint32_t error_code,
                   bool software, bool dpl_check, uint64_t return_rip) {
  deliver(cpu, vector, has_error_code, error_code, software, dpl_check, software, return_rip, 0);
}

void Cpu::deliver_interrupt(uint8_t vector, bool has_error_code, uint32_t error_code, bool software,
                            bool external) {
  // Faults return to the faulting instruction (rip); external interrupts arrive between
  // instructions where rip is the next one; software interrupts return past the INT (next_rip).
  deliver(*this, vector, has_error_code, error_code, software, software, software || external,
          software ? next_rip : rip, 0);
}

}  // namespace hv::emu
