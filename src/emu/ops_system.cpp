// Privileged and system instructions: descriptor tables, control/debug registers, MSRs, CPUID,
// TSC, port I/O, interrupt flag, software interrupts, IRET, far transfers, segment loads,
// SYSCALL/SYSRET/SYSENTER/SYSEXIT.
//
// Conventions: every handler finishes all checks and all reads that may fault before it changes
// architectural state. Handlers that transfer control write next_rip (the run loop moves it to
// rip); software interrupts deliver through deliver_event(), which sets rip and next_rip to the
// handler and returns to next_rip.
#include <atomic>

#include "devices/hypercalls.hpp"
#include "emu/cpu.hpp"
#include "emu/cpuid.hpp"
#include "emu/decoder.hpp"
#include "emu/operands.hpp"
#include "emu/ops_system.hpp"

namespace hv::emu {
namespace {

constexpr uint64_t kCr4Tsd = 1u << 2;
constexpr uint64_t kCr4De = 1u << 3;

uint8_t iopl(const Cpu& cpu) {
  return (cpu.rflags >> 12) & 3;
}
bool mode64(const Cpu& cpu) {
  return cpu.long_mode() && cpu.seg[kCs].long_mode();
}

// Instructions only ring 0 may run (#GP(0) elsewhere, including V86 mode where CPL is 3).
void require_cpl0(const Cpu& cpu) {
  if (cpu.cpl != 0) {
    raise_fault(kGeneralProtection, 0);
  }
}
// Instructions that do not exist in real and V86 mode.
void require_protected(const Cpu& cpu) {
  if (!cpu.protected_mode() || cpu.virtual_8086()) {
    raise_fault(kInvalidOpcode);
  }
}

void set_zf(Cpu& cpu, bool zf) {
  cpu.lazy.set_materialized((cpu.lazy.arithmetic_bits() & ~flag::kZF) | (zf ? flag::kZF : 0));
}

// --- stack access without committing RSP (multi-item pops/pushes must be restartable) ---

uint64_t stack_read(Cpu& cpu, uint64_t sp, uint8_t size) {
  return cpu.read_sized(kSs, Cpu::truncate_address(sp, cpu.stack_size()), size);
}
void stack_write(Cpu& cpu, uint64_t sp, uint8_t size, uint64_t value) {
  cpu.write_sized(kSs, Cpu::truncate_address(sp, cpu.stack_size()), size, value);
}

// --- descriptor tables ---

void op_lgdt_lidt(Cpu& cpu, const Insn& insn) {
  require_cpl0(cpu);
  const uint64_t ea = cpu.effective_address(insn);
  const uint8_t s = insn.mem.segment;
  const uint16_t limit = cpu.read<uint16_t>(s, ea);
  uint64_t base;
  if (mode64(cpu)) {
    base = cpu.read<uint64_t>(s, Cpu::truncate_address(ea + 2, insn.address_size));
    if (!Cpu::is_canonical(base)) {
      raise_fault(kGeneralProtection, 0);
    }
  } else {
    base = cpu.read<uint32_t>(s, Cpu::truncate_address(ea + 2, insn.address_size));
    if (insn.operand_size == 2) {
      base &= 0xffffff;  // 16-bit operand size loads a 24-bit base
    }
  }
  if (insn.mnemonic == ZYDIS_MNEMONIC_LGDT) {
    cpu.gdtr_base = base;
    cpu.gdtr_limit = limit;
  } else {
    cpu.idtr_base = base;
    cpu.idtr_limit = limit;
  }
}

void op_sgdt_sidt(Cpu& cpu, const Insn& insn) {
  const bool gdt = insn.mnemonic == ZYDIS_MNEMONIC_SGDT;
  const uint64_t ea = cpu.effective_address(insn);
  const uint8_t s = insn.mem.segment;
  const uint64_t base = gdt ? cpu.gdtr_base : cpu.idtr_base;
  const uint16_t limit = gdt ? cpu.gdtr_limit : cpu.idtr_limit;
  const uint64_t base_at = Cpu::truncate_address(ea + 2, insn.address_size);
  // Probe both parts before writing either.
  cpu.linear_address(s, ea, 2, Access::kWrite);
  if (mode64(cpu)) {
    cpu.linear_address(s, base_at, 8, Access::kWrite);
    cpu.write<uint16_t>(s, ea, limit);
    cpu.write<uint64_t>(s, base_at, base);
  } else {
    cpu.linear_address(s, base_at, 4, Access::kWrite);
    cpu.write<uint16_t>(s, ea, limit);
    cpu.write<uint32_t>(s, base_at, static_cast<uint32_t>(base));
  }
}

void op_lldt(Cpu& cpu, const Insn& insn) {
  require_protected(cpu);
  require_cpl0(cpu);
  const uint16_t selector = static_cast<uint16_t>(read_operand(cpu, insn, 0));
  if ((selector & 0xfffc) == 0) {
    cpu.ldtr = null_segment(0);
    return;
  }
  if (selector & 4) {
    raise_fault(kGeneralProtection, selector & 0xfffc);
  }
  uint64_t high = 0;
  const uint64_t low = cpu.read_descriptor(selector, &high);
  SegmentCache c = cache_from_descriptor(selector, low, high);
  if (c.code_or_data() || c.type() != 0x2) {
    raise_fault(kGeneralProtection, selector & 0xfffc);
  }
  if (!c.present()) {
    raise_fault(kSegmentNotPresent, selector & 0xfffc);
  }
  cpu.ldtr = c;
}

void op_ltr(Cpu& cpu, const Insn& insn) {
  require_protected(cpu);
  require_cpl0(cpu);
  const uint16_t selector = static_cast<uint16_t>(read_operand(cpu, insn, 0));
  if ((selector & 0xfffc) == 0 || (selector & 4)) {
    raise_fault(kGeneralProtection, selector & 0xfffc);
  }
  uint64_t high = 0;
  const uint64_t low = cpu.read_descriptor(selector, &high);
  SegmentCache c = cache_from_descriptor(selector, low, high);
  const bool available = c.type() == 0x9 || (!cpu.long_mode() && c.type() == 0x1);
  if (c.code_or_data() || !available) {
    raise_fault(kGeneralProtection, selector & 0xfffc);
  }
  if (!c.present()) {
    raise_fault(kSegmentNotPresent, selector & 0xfffc);
  }
  // Mark the TSS busy in the GDT, as LTR does.
  write_system(cpu, cpu.gdtr_base + (selector & 0xfff8u) + 5, 1, ((low >> 40) & 0xff) | 2);
  c.attributes |= 2;
  cpu.tr = c;
}

void store_selector(Cpu& cpu, const Insn& insn, uint16_t value) {
  if (insn.operands[0].kind == OperandKind::kMem) {
    cpu.write<uint16_t>(insn.mem.segment, cpu.effective_address(insn), value);
  } else {
    // Register forms zero-extend to the operand size.
    const Operand& op = insn.operands[0];
    cpu.set_reg(op.reg, op.size == 2 ? 2 : 8, value);
  }
}

void op_sldt(Cpu& cpu, const Insn& insn) {
  require_protected(cpu);
  store_selector(cpu, insn, cpu.ldtr.selector);
}
void op_str(Cpu& cpu, const Insn& insn) {
  require_protected(cpu);
  store_selector(cpu, insn, cpu.tr.selector);
}

void op_smsw(Cpu& cpu, const Insn& insn) {
  if (insn.operands[0].kind == OperandKind::kMem) {
    cpu.write<uint16_t>(insn.mem.segment, cpu.effective_address(insn),
                        static_cast<uint16_t>(cpu.cr0));
  } else {
    const Operand& op = insn.operands[0];
    cpu.set_reg(op.reg, op.size, cpu.cr0 & size_mask(op.size));
  }
}

void op_lmsw(Cpu& cpu, const Insn& insn) {
  require_cpl0(cpu);
  const uint64_t v = read_operand(cpu, insn, 0) & 0xf;
  // LMSW sets PE but cannot clear it; it touches only PE, MP, EM, TS.
  cpu.write_cr0((cpu.cr0 & ~0xeull) | v | (cpu.cr0 & cr0::kPE));
}

void op_clts(Cpu& cpu, const Insn&) {
  require_cpl0(cpu);
  cpu.cr0 &= ~cr0::kTS;
}

// --- control and debug registers ---

void op_mov_cr(Cpu& cpu, const Insn& insn) {
  require_cpl0(cpu);
  const bool to_cr = insn.operands[0].kind == OperandKind::kCr;
  const uint8_t cr = to_cr ? insn.operands[0].reg : insn.operands[1].reg;
  const uint8_t gpr = to_cr ? insn.operands[1].reg : insn.operands[0].reg;
  const bool wide = mode64(cpu);
  if (cr == 8 && !wide) {
    raise_fault(kInvalidOpcode);
  }
  if (to_cr) {
    const uint64_t v = wide ? cpu.gpr[gpr] : (cpu.gpr[gpr] & 0xffffffff);
    switch (cr) {
      case 0:
        cpu.write_cr0(v);
        break;
      case 2:
        cpu.cr2 = v;
        break;
      case 3:
        cpu.write_cr3(v);
        break;
      case 4:
        cpu.write_cr4(v);
        break;
      case 8:
        if (v > 15) {
          raise_fault(kGeneralProtection, 0);
        }
        cpu.cr8 = v;
        break;
      default:
        raise_fault(kInvalidOpcode);
    }
    return;
  }
  uint64_t v;
  switch (cr) {
    case 0:
      v = cpu.cr0;
      break;
    case 2:
      v = cpu.cr2;
      break;
    case 3:
      v = cpu.cr3;
      break;
    case 4:
      v = cpu.cr4;
      break;
    case 8:
      v = cpu.cr8;
      break;
    default:
      raise_fault(kInvalidOpcode);
  }
  cpu.set_reg(gpr, wide ? 8 : 4, v);
}

// Debug registers are stored only: breakpoints and single-step via DR7 are not implemented.
void op_mov_dr(Cpu& cpu, const Insn& insn) {
  require_cpl0(cpu);
  const bool to_dr = insn.operands[0].kind == OperandKind::kDr;
  uint8_t dr = to_dr ? insn.operands[0].reg : insn.operands[1].reg;
  const uint8_t gpr = to_dr ? insn.operands[1].reg : insn.operands[0].reg;
  const bool wide = mode64(cpu);
  if (dr == 4 || dr == 5) {
    if (cpu.cr4 & kCr4De) {
      raise_fault(kInvalidOpcode);
    }
    dr += 2;  // aliases of DR6/DR7 without CR4.DE
  }
  if (dr > 7) {
    raise_fault(kInvalidOpcode);
  }
  if (to_dr) {
    uint64_t v = wide ? cpu.gpr[gpr] : (cpu.gpr[gpr] & 0xffffffff);
    if ((dr == 6 || dr == 7) && (v >> 32)) {
      raise_fault(kGeneralProtection, 0);
    }
    if (dr < 4 && !wide) {
      v &= 0xffffffff;
    }
    if (dr == 6) {
      v = (v & 0x0000e00f) | 0xffff0ff0;
    } else if (dr == 7) {
      v = (v & 0xffff2bff) | 0x400;
    }
    cpu.dr[dr] = v;
    return;
  }
  cpu.set_reg(gpr, wide ? 8 : 4, cpu.dr[dr]);
}

// --- MSRs, CPUID, TSC ---

void op_rdmsr(Cpu& cpu, const Insn&) {
  require_cpl0(cpu);
  uint64_t v;
  if (!cpu.read_msr(static_cast<uint32_t>(cpu.gpr[kRcx]), v)) {
    raise_fault(kGeneralProtection, 0);
  }
  cpu.set_reg(kRax, 4, v & 0xffffffff);
  cpu.set_reg(kRdx, 4, v >> 32);
}

void op_wrmsr(Cpu& cpu, const Insn&) {
  require_cpl0(cpu);
  const uint64_t v = (cpu.gpr[kRdx] << 32) | (cpu.gpr[kRax] & 0xffffffff);
  if (!cpu.write_msr(static_cast<uint32_t>(cpu.gpr[kRcx]), v)) {
    raise_fault(kGeneralProtection, 0);
  }
}

void op_cpuid(Cpu& cpu, const Insn&) {
  uint32_t a, b, c, d;
  cpuid(cpu, static_cast<uint32_t>(cpu.gpr[kRax]), static_cast<uint32_t>(cpu.gpr[kRcx]), a, b, c,
        d);
  cpu.set_reg(kRax, 4, a);
  cpu.set_reg(kRbx, 4, b);
  cpu.set_reg(kRcx, 4, c);
  cpu.set_reg(kRdx, 4, d);
}

void check_tsd(const Cpu& cpu) {
  if ((cpu.cr4 & kCr4Tsd) && cpu.cpl != 0 && cpu.protected_mode()) {
    raise_fault(kGeneralProtection, 0);
  }
}

void op_rdtsc(Cpu& cpu, const Insn&) {
  check_tsd(cpu);
  const uint64_t t = cpu.read_tsc();
  cpu.set_reg(kRax, 4, t & 0xffffffff);
  cpu.set_reg(kRdx, 4, t >> 32);
}

void op_rdtscp(Cpu& cpu, const Insn& insn) {
  op_rdtsc(cpu, insn);
  cpu.set_reg(kRcx, 4, cpu.msr.tsc_aux & 0xffffffff);
}

void op_gp0(Cpu&, const Insn&) {
  raise_fault(kGeneralProtection, 0);
}  // RDPMC: no counters
void op_ud(Cpu&, const Insn&) {
  raise_fault(kInvalidOpcode);
}
void op_nop(Cpu&, const Insn&) {}
void op_fence(Cpu&, const Insn&) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void op_invlpg(Cpu& cpu, const Insn& insn) {
  require_cpl0(cpu);
  const uint64_t ea = cpu.effective_address(insn);
  const uint8_t s = insn.mem.segment;
  uint64_t la;
  if (mode64(cpu)) {
    la = ea + (s >= kFs ? cpu.seg[s].base : 0);
  } else {
    la = (cpu.seg[s].base + ea) & 0xffffffff;
  }
  cpu.flush_tlb_page(la);
}

void op_cpl0_nop(Cpu& cpu, const Insn&) {
  require_cpl0(cpu);
}  // WBINVD, INVD: no caches

void op_swapgs(Cpu& cpu, const Insn&) {
  if (!mode64(cpu)) {
    raise_fault(kInvalidOpcode);
  }
  require_cpl0(cpu);
  std::swap(cpu.seg[kGs].base, cpu.msr.kernel_gs_base);
}

// --- port I/O ---

void check_io(Cpu& cpu, uint16_t port, uint8_t size) {
  if (!cpu.io_permitted(port, size)) {
    raise_fault(kGeneralProtection, 0);
  }
}

void op_in(Cpu& cpu, const Insn& insn) {
  const uint8_t size = insn.operands[0].size;
  const uint16_t port = insn.operands[1].kind == OperandKind::kImm
                            ? static_cast<uint16_t>(insn.immediate & 0xff)
                            : static_cast<uint16_t>(cpu.gpr[kRdx]);
  check_io(cpu, port, size);
  cpu.set_reg(kRax, size, cpu.port_in(port, size));
}

void op_out(Cpu& cpu, const Insn& insn) {
  const uint8_t size = insn.operands[1].size;
  const uint16_t port = insn.operands[0].kind == OperandKind::kImm
                            ? static_cast<uint16_t>(insn.immediate & 0xff)
                            : static_cast<uint16_t>(cpu.gpr[kRdx]);
  check_io(cpu, port, size);
  // A 32-bit write to the doorbell is a hypercall, which needs the registers the bus never sees.
  // Only this OUT form pays for the check: the interpreter's other paths are untouched.
  if (port == hypercall::kDoorbellPort && size == hypercall::kDoorbellWidth) [[unlikely]] {
    if (cpu.hypercall()) {
      cpu.count_port(port, true);
      return;
    }
  }
  cpu.port_out(port, size, cpu.reg(kRax, size));
}

// VMCALL: hv's hypercall instruction on this engine, from ring 0 (docs/hypercalls.md). Elsewhere,
// and on a machine without hypercalls, #UD, as VMCALL outside a virtual machine is on hardware:
// user code must not reach the hypervisor behind its kernel's back.
void op_vmcall(Cpu& cpu, const Insn&) {
  if (cpu.cpl != 0 || !cpu.hypercall()) {
    raise_fault(kInvalidOpcode);
  }
}

uint8_t string_size(uint16_t mnemonic) {
  switch (mnemonic) {
    case ZYDIS_MNEMONIC_INSB:
    case ZYDIS_MNEMONIC_OUTSB:
      return 1;
    case ZYDIS_MNEMONIC_INSW:
    case ZYDIS_MNEMONIC_OUTSW:
      return 2;
    default:
      return 4;
  }
}

// INS/OUTS, with REP running the whole count. Registers advance per element, so a fault part
// way leaves a state the guest can restart from, as on hardware.
void op_ins_outs(Cpu& cpu, const Insn& insn) {
  const bool in = insn.mnemonic == ZYDIS_MNEMONIC_INSB || insn.mnemonic == ZYDIS_MNEMONIC_INSW ||
                  insn.mnemonic == ZYDIS_MNEMONIC_INSD;
  const uint8_t size = string_size(insn.mnemonic);
  const uint8_t as = insn.address_size;
  const uint16_t port = static_cast<uint16_t>(cpu.gpr[kRdx]);
  const bool rep = insn.prefixes & (kPrefixRep | kPrefixRepne);
  check_io(cpu, port, size);
  const int64_t step = (cpu.rflags & flag::kDF) ? -int64_t{size} : int64_t{size};
  const uint8_t index = in ? kRdi : kRsi;
  while (!rep || cpu.reg(kRcx, as) != 0) {
    const uint64_t offset = cpu.reg(index, as);
    if (in) {
      // Probe the destination first so a #PF does not swallow a device read.
      cpu.linear_address(kEs, offset, size, Access::kWrite);
      const uint64_t v = cpu.port_in(port, size);
      cpu.write_sized(kEs, offset, size, v);
    } else {
      cpu.port_out(port, size, cpu.read_sized(insn.mem.segment, offset, size));
    }
    cpu.set_reg(index, as, offset + static_cast<uint64_t>(step));
    if (!rep) {
      break;
    }
    cpu.set_reg(kRcx, as, cpu.reg(kRcx, as) - 1);
  }
}

// --- interrupt flag, flags register ---

bool may_change_if(const Cpu& cpu) {
  if (!cpu.protected_mode()) {
    return true;
  }
  return cpu.virtual_8086() ? iopl(cpu) == 3 : cpu.cpl <= iopl(cpu);
}

void op_cli(Cpu& cpu, const Insn&) {
  if (!may_change_if(cpu)) {
    raise_fault(kGeneralProtection, 0);
  }
  cpu.rflags &= ~flag::kIF;
}

void op_sti(Cpu& cpu, const Insn&) {
  if (!may_change_if(cpu)) {
    raise_fault(kGeneralProtection, 0);
  }
  if (!(cpu.rflags & flag::kIF)) {
    cpu.interrupt_shadow = true;  // interrupts wait until after the next instruction
  }
  cpu.rflags |= flag::kIF;
}

void op_pushf(Cpu& cpu, const Insn& insn) {
  if (cpu.virtual_8086() && iopl(cpu) < 3) {
    raise_fault(kGeneralProtection, 0);
  }
  cpu.push(cpu.flags() & ~(flag::kVM | flag::kRF), insn.operand_size);
}

void op_popf(Cpu& cpu, const Insn& insn) {
  if (cpu.virtual_8086() && iopl(cpu) < 3) {
    raise_fault(kGeneralProtection, 0);
  }
  const uint8_t size = insn.operand_size;
  const uint64_t v = cpu.pop(size);
  uint64_t mask =
      flag::kArithmetic | flag::kTF | flag::kDF | flag::kNT | flag::kAC | flag::kID | flag::kRF;
  if (!cpu.protected_mode() || (cpu.cpl == 0 && !cpu.virtual_8086())) {
    mask |= flag::kIOPL | flag::kIF;
  } else if (may_change_if(cpu)) {
    mask |= flag::kIF;
  }
  if (size == 2) {
    mask &= 0xffff;
  }
  cpu.set_flags(v & ~flag::kRF, mask);  // POPF always clears RF, never touches VM/VIF/VIP
}

void op_hlt(Cpu& cpu, const Insn&) {
  require_cpl0(cpu);
  cpu.halted = true;
}

// --- software interrupts ---

void op_int(Cpu& cpu, const Insn& insn) {
  if (cpu.virtual_8086() && iopl(cpu) < 3) {
    raise_fault(kGeneralProtection, 0);  // no VME: IOPL-sensitive in V86 mode
  }
  deliver_event(cpu, static_cast<uint8_t>(insn.immediate), false, 0, true, true, cpu.next_rip);
}
void op_int3(Cpu& cpu, const Insn&) {
  deliver_event(cpu, kBreakpoint, false, 0, true, true, cpu.next_rip);
}
void op_into(Cpu& cpu, const Insn&) {
  if (mode64(cpu)) {
    raise_fault(kInvalidOpcode);
  }
  if (cpu.lazy.of()) {
    deliver_event(cpu, kOverflow, false, 0, true, true, cpu.next_rip);
  }
}
void op_int1(Cpu& cpu, const Insn&) {
  // ICEBP: a #DB trap without the gate DPL check.
  deliver_event(cpu, kDebug, false, 0, true, false, cpu.next_rip);
}

// --- far transfers ---

// Data segments the new (outer) privilege may not use become null on a return outward.
void null_inaccessible_segments(Cpu& cpu) {
  for (uint8_t s : {kEs, kDs, kFs, kGs}) {
    const SegmentCache& c = cpu.seg[s];
    const bool conforming_code = c.is_code() && (c.type() & 4);
    if ((c.selector & 0xfffc) != 0 && c.code_or_data() && !conforming_code && c.dpl() < cpu.cpl) {
      cpu.seg[s] = null_segment(0);
    }
  }
}

// Checks a far JMP/CALL target code segment in protected mode; call gates, task gates and TSS
// targets are not implemented (#GP(selector)).
void check_far_target(Cpu& cpu, uint16_t selector, uint64_t offset) {
  const uint16_t error = selector & 0xfffc;
  if (error == 0) {
    raise_fault(kGeneralProtection, 0);
  }
  const SegmentCache c = cache_from_descriptor(selector, cpu.read_descriptor(selector));
  if (!c.is_code()) {
    raise_fault(kGeneralProtection, error);
  }
  if (c.type() & 4) {
    if (c.dpl() > cpu.cpl) {
      raise_fault(kGeneralProtection, error);
    }
  } else if ((selector & 3) > cpu.cpl || c.dpl() != cpu.cpl) {
    raise_fault(kGeneralProtection, error);
  }
  if (!c.present()) {
    raise_fault(kSegmentNotPresent, error);
  }
  if (cpu.long_mode() && c.long_mode()) {
    if (!Cpu::is_canonical(offset)) {
      raise_fault(kGeneralProtection, 0);
    }
  } else if (offset > c.limit) {
    raise_fault(kGeneralProtection, 0);
  }
}

struct FarPointer {
  uint16_t selector;
  uint64_t offset;
};

FarPointer far_operand(Cpu& cpu, const Insn& insn) {
  const uint8_t size = insn.operand_size;
  if (insn.operands[0].kind == OperandKind::kMem) {
    const uint64_t ea = cpu.effective_address(insn);
    const uint64_t offset = cpu.read_sized(insn.mem.segment, ea, size);
    const uint16_t selector =
        cpu.read<uint16_t>(insn.mem.segment, Cpu::truncate_address(ea + size, insn.address_size));
    return {selector, offset};
  }
  return {static_cast<uint16_t>(insn.immediate2), insn.immediate & size_mask(size)};
}

void far_jump(Cpu& cpu, uint16_t selector, uint64_t offset, uint8_t size) {
  if (cpu.protected_mode() && !cpu.virtual_8086()) {
    check_far_target(cpu, selector, offset);
    cpu.load_code_segment(selector, cpu.cpl);
  } else {
    cpu.load_code_segment(selector, cpu.cpl);
  }
  branch_to(cpu, offset, size == 8 ? 8 : size);
}

void op_jmp_far(Cpu& cpu, const Insn& insn) {
  const FarPointer p = far_operand(cpu, insn);
  far_jump(cpu, p.selector, p.offset, insn.operand_size);
}

void op_call_far(Cpu& cpu, const Insn& insn) {
  const FarPointer p = far_operand(cpu, insn);
  const uint8_t size = insn.operand_size;
  if (cpu.protected_mode() && !cpu.virtual_8086()) {
    check_far_target(cpu, p.selector, p.offset);
  }
  const uint64_t sp = cpu.gpr[kRsp];
  stack_write(cpu, sp - size, size, cpu.seg[kCs].selector);
  stack_write(cpu, sp - 2 * size, size, cpu.next_rip);
  cpu.load_code_segment(p.selector, cpu.cpl);
  cpu.set_reg(kRsp, cpu.stack_size(), sp - 2 * size);
  branch_to(cpu, p.offset, size);
}

// Checks the CS of a far return/IRET to `rpl` (>= CPL) and returns its descriptor cache.
SegmentCache check_return_cs(Cpu& cpu, uint16_t selector) {
  const uint16_t error = selector & 0xfffc;
  if (error == 0) {
    raise_fault(kGeneralProtection, 0);
  }
  const uint8_t rpl = selector & 3;
  if (rpl < cpu.cpl) {
    raise_fault(kGeneralProtection, error);
  }
  const SegmentCache c = cache_from_descriptor(selector, cpu.read_descriptor(selector));
  if (!c.is_code() || (cpu.long_mode() && c.long_mode() && c.default_big())) {
    raise_fault(kGeneralProtection, error);
  }
  if ((c.type() & 4) ? c.dpl() > rpl : c.dpl() != rpl) {
    raise_fault(kGeneralProtection, error);
  }
  if (!c.present()) {
    raise_fault(kSegmentNotPresent, error);
  }
  return c;
}

// SS for a return to `rpl`: a null SS is allowed only into 64-bit code below ring 3.
SegmentCache check_return_ss(Cpu& cpu, uint16_t selector, uint8_t rpl, bool to_64bit) {
  if ((selector & 0xfffc) == 0) {
    if (!to_64bit || rpl == 3 || (selector & 3) != rpl) {
      raise_fault(kGeneralProtection, 0);
    }
    return null_segment(selector);
  }
  return check_stack_segment(cpu, selector, rpl, kGeneralProtection);
}

void op_ret_far(Cpu& cpu, const Insn& insn) {
  const uint8_t size = insn.operand_size;
  const uint64_t release = insn.operands[0].kind == OperandKind::kImm ? insn.immediate & 0xffff : 0;
  const uint64_t sp = cpu.gpr[kRsp];
  const uint64_t ip = stack_read(cpu, sp, size);
  const uint16_t cs = static_cast<uint16_t>(stack_read(cpu, sp + size, size));
  const uint8_t stack_size = cpu.stack_size();
  if (!cpu.protected_mode() || cpu.virtual_8086()) {
    cpu.load_code_segment(cs, cpu.cpl);
    cpu.set_reg(kRsp, stack_size, sp + 2 * size + release);
    branch_to(cpu, ip, size);
    return;
  }
  const SegmentCache target = check_return_cs(cpu, cs);
  const uint8_t rpl = cs & 3;
  const bool to_64bit = cpu.long_mode() && target.long_mode();
  if (to_64bit ? !Cpu::is_canonical(ip) : (ip & size_mask(size)) > target.limit) {
    raise_fault(kGeneralProtection, 0);
  }
  if (rpl == cpu.cpl) {
    cpu.load_code_segment(cs, rpl);
    cpu.set_reg(kRsp, stack_size, sp + 2 * size + release);
    branch_to(cpu, ip, size);
    return;
  }
  const uint64_t outer = sp + 2 * size + release;
  const uint64_t new_sp = stack_read(cpu, outer, size);
  const uint16_t ss_sel = static_cast<uint16_t>(stack_read(cpu, outer + size, size));
  const SegmentCache ss = check_return_ss(cpu, ss_sel, rpl, to_64bit);
  cpu.load_code_segment(cs, rpl);
  cpu.seg[kSs] = ss;
  cpu.update_mode();
  cpu.set_reg(kRsp, cpu.stack_size() == 8 ? 8 : size, new_sp + release);
  null_inaccessible_segments(cpu);
  branch_to(cpu, ip, size);
}

// --- IRET ---

void iret_real(Cpu& cpu, uint8_t size) {
  const uint64_t sp = cpu.gpr[kRsp];
  const uint64_t ip = stack_read(cpu, sp, size);
  const uint16_t cs = static_cast<uint16_t>(stack_read(cpu, sp + size, size));
  const uint64_t fl = stack_read(cpu, sp + 2 * size, size);
  // V86 IRET (allowed only at IOPL 3) must not change IOPL; real mode may.
  uint64_t mask = size == 2 ? 0x7fd5 : 0x257fd5;
  if (cpu.virtual_8086()) {
    mask &= ~flag::kIOPL;
  }
  cpu.load_code_segment(cs, cpu.cpl);
  cpu.set_reg(kRsp, cpu.stack_size(), sp + 3 * size);
  cpu.set_flags(fl, mask);
  branch_to(cpu, ip, size == 8 ? 8 : size);
}

uint64_t iret_flag_mask(const Cpu& cpu, uint8_t size) {
  uint64_t mask =
      flag::kArithmetic | flag::kTF | flag::kDF | flag::kNT | flag::kRF | flag::kAC | flag::kID;
  if (cpu.cpl <= iopl(cpu)) {
    mask |= flag::kIF;
  }
  if (cpu.cpl == 0) {
    mask |= flag::kIOPL | flag::kVIF | flag::kVIP;
  }
  return size == 2 ? mask & 0xffff : mask;
}

void iret_to_v86(Cpu& cpu, uint64_t sp) {
  uint32_t v[9];
  for (int i = 0; i < 9; ++i) {
    v[i] = static_cast<uint32_t>(stack_read(cpu, sp + 4u * i, 4));
  }
  // eip, cs, eflags, esp, ss, es, ds, fs, gs
  cpu.set_flags(v[2], flag::kArithmetic | flag::kTF | flag::kIF | flag::kDF | flag::kIOPL |
                          flag::kNT | flag::kRF | flag::kVM | flag::kAC | flag::kVIF | flag::kVIP |
                          flag::kID);
  const uint8_t order[] = {kCs, kSs, kEs, kDs, kFs, kGs};
  const uint32_t values[] = {v[1], v[4], v[5], v[6], v[7], v[8]};
  for (int i = 0; i < 6; ++i) {
    SegmentCache& s = cpu.seg[order[i]];
    s.selector = static_cast<uint16_t>(values[i]);
    s.base = (values[i] & 0xffffu) << 4;
    s.limit = 0xffff;
    s.attributes = order[i] == kCs ? 0xfb : attr::kV86;
  }
  cpu.update_mode();
  cpu.gpr[kRsp] = v[3];
  cpu.next_rip = v[0] & 0xffff;
}

void op_iret(Cpu& cpu, const Insn& insn) {
  const uint8_t size = insn.operand_size;
  if (!cpu.protected_mode()) {
    iret_real(cpu, size);
    return;
  }
  if (cpu.virtual_8086()) {
    if (iopl(cpu) < 3) {
      raise_fault(kGeneralProtection, 0);
    }
    iret_real(cpu, size);
    return;
  }
  if (cpu.rflags & flag::kNT) {
    // Returning from a nested task needs hardware task switching, which is not implemented.
    raise_fault(kGeneralProtection, 0);
  }
  const uint64_t sp = cpu.gpr[kRsp];
  const uint64_t ip = stack_read(cpu, sp, size);
  const uint16_t cs = static_cast<uint16_t>(stack_read(cpu, sp + size, size));
  const uint64_t fl = stack_read(cpu, sp + 2 * size, size);
  if (!cpu.long_mode() && (fl & flag::kVM) && cpu.cpl == 0 && size == 4) {
    iret_to_v86(cpu, sp);
    return;
  }
  const SegmentCache target = check_return_cs(cpu, cs);
  const uint8_t rpl = cs & 3;
  const bool to_64bit = cpu.long_mode() && target.long_mode();
  // IRET in 64-bit mode always pops SS:RSP; elsewhere only on a return to an outer ring.
  const bool pop_stack = mode64(cpu) || rpl > cpu.cpl;
  if (to_64bit ? !Cpu::is_canonical(ip) : (ip & size_mask(size)) > target.limit) {
    raise_fault(kGeneralProtection, 0);
  }
  const uint64_t mask = iret_flag_mask(cpu, size);
  if (!pop_stack) {
    cpu.load_code_segment(cs, rpl);
    cpu.set_reg(kRsp, cpu.stack_size(), sp + 3 * size);
    cpu.set_flags(fl, mask);
    branch_to(cpu, ip, size);
    return;
  }
  const uint64_t new_sp = stack_read(cpu, sp + 3 * size, size);
  const uint16_t ss_sel = static_cast<uint16_t>(stack_read(cpu, sp + 4 * size, size));
  const SegmentCache ss = check_return_ss(cpu, ss_sel, rpl, to_64bit);
  const bool outer = rpl > cpu.cpl;
  cpu.set_flags(fl, mask);  // mask was computed at the old CPL
  cpu.load_code_segment(cs, rpl);
  cpu.seg[kSs] = ss;
  cpu.update_mode();
  if (size == 8 || to_64bit) {
    cpu.gpr[kRsp] = new_sp;
  } else {
    cpu.set_reg(kRsp, cpu.stack_size(), new_sp);
  }
  if (outer) {
    null_inaccessible_segments(cpu);
  }
  branch_to(cpu, ip, size);
}

// --- segment registers ---

void op_mov_to_sreg(Cpu& cpu, const Insn& insn) {
  const uint16_t selector = static_cast<uint16_t>(read_operand(cpu, insn, 1));
  const uint8_t s = insn.operands[0].reg;
  if (s == kCs) {
    raise_fault(kInvalidOpcode);
  }
  cpu.load_segment(s, selector);
  if (s == kSs) {
    cpu.interrupt_shadow = true;  // so SS and (E)SP can be loaded back to back
  }
}

void op_mov_from_sreg(Cpu& cpu, const Insn& insn) {
  const uint16_t selector = cpu.seg[insn.operands[1].reg].selector;
  if (insn.operands[0].kind == OperandKind::kMem) {
    cpu.write<uint16_t>(insn.mem.segment, cpu.effective_address(insn), selector);
  } else {
    const Operand& op = insn.operands[0];
    cpu.set_reg(op.reg, op.size == 2 ? 2 : 8, selector);  // zero-extends on 32/64-bit sizes
  }
}

uint8_t sreg_of_push_pop(const Insn& insn) {
  if (insn.operand_count > 0 && insn.operands[0].kind == OperandKind::kSeg) {
    return insn.operands[0].reg;
  }
  switch (insn.opcode) {
    case 0x06:
    case 0x07:
      return kEs;
    case 0x0e:
      return kCs;
    case 0x16:
    case 0x17:
      return kSs;
    case 0x1e:
    case 0x1f:
      return kDs;
    case 0x1a0:
    case 0x1a1:
      return kFs;
    default:
      return kGs;
  }
}

void op_push_sreg(Cpu& cpu, const Insn& insn) {
  cpu.push(cpu.seg[sreg_of_push_pop(insn)].selector, insn.operand_size);
}

void op_pop_sreg(Cpu& cpu, const Insn& insn) {
  const uint8_t s = sreg_of_push_pop(insn);
  const uint8_t size = insn.operand_size;
  const uint8_t stack_size = cpu.stack_size();
  const uint64_t sp = cpu.gpr[kRsp];
  const uint16_t selector = static_cast<uint16_t>(stack_read(cpu, sp, size));
  cpu.load_segment(s, selector);
  cpu.set_reg(kRsp, stack_size, sp + size);  // with the stack size before a POP SS
  if (s == kSs) {
    cpu.interrupt_shadow = true;
  }
}

void op_load_far_pointer(Cpu& cpu, const Insn& insn) {
  uint8_t s;
  switch (insn.mnemonic) {
    case ZYDIS_MNEMONIC_LDS:
      s = kDs;
      break;
    case ZYDIS_MNEMONIC_LES:
      s = kEs;
      break;
    case ZYDIS_MNEMONIC_LFS:
      s = kFs;
      break;
    case ZYDIS_MNEMONIC_LGS:
      s = kGs;
      break;
    default:
      s = kSs;
      break;
  }
  const uint8_t size = insn.operands[0].size;
  const uint64_t ea = cpu.effective_address(insn);
  const uint64_t offset = cpu.read_sized(insn.mem.segment, ea, size);
  const uint16_t selector =
      cpu.read<uint16_t>(insn.mem.segment, Cpu::truncate_address(ea + size, insn.address_size));
  cpu.load_segment(s, selector);
  cpu.set_reg(insn.operands[0].reg, size, offset);
}

// --- LAR, LSL, VERR, VERW ---

// The descriptor of `selector` if LAR/LSL/VERR/VERW may see it (table limit and privilege);
// the system types they accept differ and are checked by the callers.
bool visible_descriptor(Cpu& cpu, uint16_t selector, uint64_t& low, SegmentCache& c) {
  if ((selector & 0xfffc) == 0 || !selector_in_table(cpu, selector)) {
    return false;
  }
  low = cpu.read_descriptor(selector);
  c = cache_from_descriptor(selector, low);
  const bool conforming_code = c.is_code() && (c.type() & 4);
  return conforming_code || (c.dpl() >= cpu.cpl && c.dpl() >= (selector & 3));
}

bool system_type_ok(const Cpu& cpu, uint8_t type, bool lar) {
  if (cpu.long_mode()) {
    return type == 0x2 || type == 0x9 || type == 0xb || (lar && type == 0xc);
  }
  switch (type) {
    case 0x1:
    case 0x2:
    case 0x3:
    case 0x9:
    case 0xb:
      return true;
    case 0x4:
    case 0x5:
    case 0xc:
      return lar;
    default:
      return false;
  }
}

void op_lar_lsl(Cpu& cpu, const Insn& insn) {
  require_protected(cpu);
  const bool lar = insn.mnemonic == ZYDIS_MNEMONIC_LAR;
  const uint16_t selector = static_cast<uint16_t>(read_operand(cpu, insn, 1));
  uint64_t low = 0;
  SegmentCache c;
  bool ok = visible_descriptor(cpu, selector, low, c);
  if (ok && !c.code_or_data()) {
    ok = system_type_ok(cpu, c.type(), lar);
  }
  set_zf(cpu, ok);
  if (!ok) {
    return;
  }
  const uint8_t size = insn.operands[0].size;
  const uint64_t v = lar ? ((low >> 32) & 0x00f0ff00) : c.limit;
  cpu.set_reg(insn.operands[0].reg, size == 2 ? 2 : 4, v & size_mask(size));
}

void op_verr_verw(Cpu& cpu, const Insn& insn) {
  require_protected(cpu);
  const uint16_t selector = static_cast<uint16_t>(read_operand(cpu, insn, 0));
  uint64_t low = 0;
  SegmentCache c;
  bool ok = visible_descriptor(cpu, selector, low, c) && c.code_or_data();
  if (ok) {
    ok = insn.mnemonic == ZYDIS_MNEMONIC_VERR ? c.readable() : c.writable();
  }
  set_zf(cpu, ok);
}

// --- fast system calls ---

SegmentCache flat(uint16_t selector, uint16_t attributes) {
  SegmentCache c;
  c.selector = selector;
  c.base = 0;
  c.limit = 0xffffffff;
  c.attributes = attributes;
  return c;
}

void op_syscall(Cpu& cpu, const Insn&) {
  // Intel: only in 64-bit mode and with EFER.SCE.
  if (!mode64(cpu) || !(cpu.efer & efer::kSCE)) {
    raise_fault(kInvalidOpcode);
  }
  const uint16_t cs = static_cast<uint16_t>((cpu.msr.star >> 32) & 0xfffc);
  cpu.gpr[kRcx] = cpu.next_rip;
  cpu.gpr[kR11] = cpu.flags() & ~flag::kRF;
  cpu.set_flags(cpu.flags() & ~(cpu.msr.sfmask | flag::kRF), ~0ull & ~flag::kVM);
  cpu.seg[kCs] = flat(cs, attr::kCode64Ring0);
  cpu.seg[kSs] = flat(static_cast<uint16_t>(cs + 8), attr::kData32Ring0);
  cpu.update_mode();
  cpu.next_rip = cpu.msr.lstar;
}

void op_sysret(Cpu& cpu, const Insn& insn) {
  if (!mode64(cpu) || !(cpu.efer & efer::kSCE)) {
    raise_fault(kInvalidOpcode);
  }
  require_cpl0(cpu);
  const bool to64 = insn.operand_size == 8;
  if (to64 && !Cpu::is_canonical(cpu.gpr[kRcx])) {
    raise_fault(kGeneralProtection, 0);  // Intel faults in ring 0 here
  }
  const uint16_t base = static_cast<uint16_t>(cpu.msr.star >> 48);
  const uint16_t cs = static_cast<uint16_t>((to64 ? base + 16 : base) | 3);
  const uint16_t ss = static_cast<uint16_t>((base + 8) | 3);
  cpu.set_flags((cpu.gpr[kR11] & 0x3c7fd7) | flag::kFixedOne, ~0ull & ~flag::kVM);
  cpu.seg[kCs] = flat(cs, to64 ? attr::kCode64Ring3 : attr::kCode32Ring3);
  cpu.seg[kSs] = flat(ss, attr::kData32Ring3);
  cpu.update_mode();
  cpu.next_rip = to64 ? cpu.gpr[kRcx] : (cpu.gpr[kRcx] & 0xffffffff);
}

void op_sysenter(Cpu& cpu, const Insn&) {
  if (!cpu.protected_mode()) {
    raise_fault(kGeneralProtection, 0);
  }
  const uint16_t cs = static_cast<uint16_t>(cpu.msr.sysenter_cs & 0xfffc);
  if (cs == 0) {
    raise_fault(kGeneralProtection, 0);
  }
  const bool lm = cpu.long_mode();
  cpu.rflags &= ~(flag::kVM | flag::kIF | flag::kRF);
  cpu.seg[kCs] = flat(cs, lm ? attr::kCode64Ring0 : attr::kCode32Ring0);
  cpu.seg[kSs] = flat(static_cast<uint16_t>(cs + 8), attr::kData32Ring0);
  cpu.update_mode();
  cpu.gpr[kRsp] = lm ? cpu.msr.sysenter_esp : (cpu.msr.sysenter_esp & 0xffffffff);
  cpu.next_rip = lm ? cpu.msr.sysenter_eip : (cpu.msr.sysenter_eip & 0xffffffff);
}

void op_sysexit(Cpu& cpu, const Insn& insn) {
  if (!cpu.protected_mode() || cpu.virtual_8086()) {
    raise_fault(kGeneralProtection, 0);
  }
  require_cpl0(cpu);
  const uint16_t base = static_cast<uint16_t>(cpu.msr.sysenter_cs & 0xfffc);
  if (base == 0) {
    raise_fault(kGeneralProtection, 0);
  }
  const bool to64 = insn.operand_size == 8;
  if (to64 && (!Cpu::is_canonical(cpu.gpr[kRdx]) || !Cpu::is_canonical(cpu.gpr[kRcx]))) {
    raise_fault(kGeneralProtection, 0);
  }
  const uint16_t cs = static_cast<uint16_t>((to64 ? base + 32 : base + 16) | 3);
  const uint16_t ss = static_cast<uint16_t>((to64 ? base + 40 : base + 24) | 3);
  cpu.seg[kCs] = flat(cs, to64 ? attr::kCode64Ring3 : attr::kCode32Ring3);
  cpu.seg[kSs] = flat(ss, attr::kData32Ring3);
  cpu.update_mode();
  cpu.gpr[kRsp] = to64 ? cpu.gpr[kRcx] : (cpu.gpr[kRcx] & 0xffffffff);
  cpu.next_rip = to64 ? cpu.gpr[kRdx] : (cpu.gpr[kRdx] & 0xffffffff);
}

// --- binders ---

template <Handler H>
Handler always(const Insn&) {
  return H;
}

bool is_push_pop_sreg(const Insn& insn) {
  if (insn.operand_count > 0 && insn.operands[0].kind == OperandKind::kSeg) {
    return true;
  }
  switch (insn.opcode) {
    case 0x06:
    case 0x07:
    case 0x0e:
    case 0x16:
    case 0x17:
    case 0x1e:
    case 0x1f:
    case 0x1a0:
    case 0x1a1:
    case 0x1a8:
    case 0x1a9:
      return true;
    default:
      return false;
  }
}

// Binders registered before ours for the shared mnemonics (see bind_system_form).
Binder g_previous[6] = {};
enum Shared { kMov, kPush, kPop, kJmp, kCall, kRet };

template <int kIndex>
Handler chained(const Insn& insn) {
  if (Handler h = bind_system_form(insn)) {
    return h;
  }
  Binder previous = g_previous[kIndex];
  return previous != nullptr ? previous(insn) : nullptr;
}

}  // namespace

Handler bind_system_form(const Insn& insn) {
  switch (insn.mnemonic) {
    case ZYDIS_MNEMONIC_MOV: {
      const OperandKind k0 = insn.operands[0].kind, k1 = insn.operands[1].kind;
      if (k0 == OperandKind::kCr || k1 == OperandKind::kCr)
        return op_mov_cr;
      if (k0 == OperandKind::kDr || k1 == OperandKind::kDr)
        return op_mov_dr;
      if (k0 == OperandKind::kSeg)
        return op_mov_to_sreg;
      if (k1 == OperandKind::kSeg)
        return op_mov_from_sreg;
      return nullptr;
    }
    case ZYDIS_MNEMONIC_PUSH:
      return is_push_pop_sreg(insn) ? op_push_sreg : nullptr;
    case ZYDIS_MNEMONIC_POP:
      return is_push_pop_sreg(insn) ? op_pop_sreg : nullptr;
    case ZYDIS_MNEMONIC_JMP:
      if (insn.opcode == 0xea || (insn.opcode == 0xff && insn.modrm_reg == 5))
        return op_jmp_far;
      return nullptr;
    case ZYDIS_MNEMONIC_CALL:
      if (insn.opcode == 0x9a || (insn.opcode == 0xff && insn.modrm_reg == 3)) {
        return op_call_far;
      }
      return nullptr;
    case ZYDIS_MNEMONIC_RET:
      return insn.opcode == 0xca || insn.opcode == 0xcb ? op_ret_far : nullptr;
    default:
      return nullptr;
  }
}

void register_system_ops(HandlerRegistry& r) {
  // Shared mnemonics: keep what the integer group registered and put ours in front.
  const ZydisMnemonic shared[] = {ZYDIS_MNEMONIC_MOV, ZYDIS_MNEMONIC_PUSH, ZYDIS_MNEMONIC_POP,
                                  ZYDIS_MNEMONIC_JMP, ZYDIS_MNEMONIC_CALL, ZYDIS_MNEMONIC_RET};
  const Binder chain[] = {chained<kMov>, chained<kPush>, chained<kPop>,
                          chained<kJmp>, chained<kCall>, chained<kRet>};
  for (int i = 0; i < 6; ++i) {
    const Binder previous = r.find(shared[i]);
    if (previous != chain[i]) {
      g_previous[i] = previous;
    }
    r.add(shared[i], chain[i]);
  }

  r.add(ZYDIS_MNEMONIC_LGDT, always<op_lgdt_lidt>);
  r.add(ZYDIS_MNEMONIC_LIDT, always<op_lgdt_lidt>);
  r.add(ZYDIS_MNEMONIC_SGDT, always<op_sgdt_sidt>);
  r.add(ZYDIS_MNEMONIC_SIDT, always<op_sgdt_sidt>);
  r.add(ZYDIS_MNEMONIC_LLDT, always<op_lldt>);
  r.add(ZYDIS_MNEMONIC_LTR, always<op_ltr>);
  r.add(ZYDIS_MNEMONIC_SLDT, always<op_sldt>);
  r.add(ZYDIS_MNEMONIC_STR, always<op_str>);
  r.add(ZYDIS_MNEMONIC_SMSW, always<op_smsw>);
  r.add(ZYDIS_MNEMONIC_LMSW, always<op_lmsw>);
  r.add(ZYDIS_MNEMONIC_CLTS, always<op_clts>);
  r.add(ZYDIS_MNEMONIC_RDMSR, always<op_rdmsr>);
  r.add(ZYDIS_MNEMONIC_WRMSR, always<op_wrmsr>);
  r.add(ZYDIS_MNEMONIC_CPUID, always<op_cpuid>);
  r.add(ZYDIS_MNEMONIC_RDTSC, always<op_rdtsc>);
  r.add(ZYDIS_MNEMONIC_RDTSCP, always<op_rdtscp>);
  r.add(ZYDIS_MNEMONIC_RDPMC, always<op_gp0>);
  r.add(ZYDIS_MNEMONIC_INVLPG, always<op_invlpg>);
  r.add(ZYDIS_MNEMONIC_WBINVD, always<op_cpl0_nop>);
  r.add(ZYDIS_MNEMONIC_INVD, always<op_cpl0_nop>);
  r.add(ZYDIS_MNEMONIC_SWAPGS, always<op_swapgs>);
  r.add(ZYDIS_MNEMONIC_SYSCALL, always<op_syscall>);
  r.add(ZYDIS_MNEMONIC_SYSRET, always<op_sysret>);
  r.add(ZYDIS_MNEMONIC_SYSENTER, always<op_sysenter>);
  r.add(ZYDIS_MNEMONIC_SYSEXIT, always<op_sysexit>);
  r.add(ZYDIS_MNEMONIC_IN, always<op_in>);
  r.add(ZYDIS_MNEMONIC_OUT, always<op_out>);
  for (ZydisMnemonic m : {ZYDIS_MNEMONIC_INSB, ZYDIS_MNEMONIC_INSW, ZYDIS_MNEMONIC_INSD,
                          ZYDIS_MNEMONIC_OUTSB, ZYDIS_MNEMONIC_OUTSW, ZYDIS_MNEMONIC_OUTSD}) {
    r.add(m, always<op_ins_outs>);
  }
  r.add(ZYDIS_MNEMONIC_CLI, always<op_cli>);
  r.add(ZYDIS_MNEMONIC_STI, always<op_sti>);
  for (ZydisMnemonic m : {ZYDIS_MNEMONIC_PUSHF, ZYDIS_MNEMONIC_PUSHFD, ZYDIS_MNEMONIC_PUSHFQ}) {
    r.add(m, always<op_pushf>);
  }
  for (ZydisMnemonic m : {ZYDIS_MNEMONIC_POPF, ZYDIS_MNEMONIC_POPFD, ZYDIS_MNEMONIC_POPFQ}) {
    r.add(m, always<op_popf>);
  }
  r.add(ZYDIS_MNEMONIC_HLT, always<op_hlt>);
  r.add(ZYDIS_MNEMONIC_VMCALL, always<op_vmcall>);
  r.add(ZYDIS_MNEMONIC_PAUSE, always<op_nop>);
  for (ZydisMnemonic m : {ZYDIS_MNEMONIC_UD0, ZYDIS_MNEMONIC_UD1, ZYDIS_MNEMONIC_UD2}) {
    r.add(m, always<op_ud>);
  }
  r.add(ZYDIS_MNEMONIC_INT, always<op_int>);
  r.add(ZYDIS_MNEMONIC_INT3, always<op_int3>);
  r.add(ZYDIS_MNEMONIC_INTO, always<op_into>);
  r.add(ZYDIS_MNEMONIC_INT1, always<op_int1>);
  for (ZydisMnemonic m : {ZYDIS_MNEMONIC_IRET, ZYDIS_MNEMONIC_IRETD, ZYDIS_MNEMONIC_IRETQ}) {
    r.add(m, always<op_iret>);
  }
  for (ZydisMnemonic m : {ZYDIS_MNEMONIC_LDS, ZYDIS_MNEMONIC_LES, ZYDIS_MNEMONIC_LFS,
                          ZYDIS_MNEMONIC_LGS, ZYDIS_MNEMONIC_LSS}) {
    r.add(m, always<op_load_far_pointer>);
  }
  r.add(ZYDIS_MNEMONIC_LAR, always<op_lar_lsl>);
  r.add(ZYDIS_MNEMONIC_LSL, always<op_lar_lsl>);
  r.add(ZYDIS_MNEMONIC_VERR, always<op_verr_verw>);
  r.add(ZYDIS_MNEMONIC_VERW, always<op_verr_verw>);
  for (ZydisMnemonic m : {ZYDIS_MNEMONIC_LFENCE, ZYDIS_MNEMONIC_MFENCE, ZYDIS_MNEMONIC_SFENCE}) {
    r.add(m, always<op_fence>);
  }
  for (ZydisMnemonic m :
       {ZYDIS_MNEMONIC_CLFLUSH, ZYDIS_MNEMONIC_CLFLUSHOPT, ZYDIS_MNEMONIC_PREFETCH,
        ZYDIS_MNEMONIC_PREFETCHNTA, ZYDIS_MNEMONIC_PREFETCHT0, ZYDIS_MNEMONIC_PREFETCHT1,
        ZYDIS_MNEMONIC_PREFETCHT2, ZYDIS_MNEMONIC_PREFETCHW}) {
    r.add(m, always<op_nop>);
  }
  // XGETBV/XSETBV (no XSAVE advertised) and MONITOR/MWAIT stay unregistered: #UD.
}

}  // namespace hv::emu
