// Segment registers: descriptor table reads and the protected-mode checks of segment loads.
#include "emu/cpu.hpp"
#include "emu/ops_system.hpp"

namespace hv::emu {

uint64_t read_system(Cpu& cpu, uint64_t la, uint8_t size) {
  // Descriptor tables and the TSS are read with supervisor rights even from ring 3.
  CplScope scope(cpu, 0);
  const uint64_t a = system_address(cpu, la);
  switch (size) {
    case 1:
      return cpu.read_linear<uint8_t>(a);
    case 2:
      return cpu.read_linear<uint16_t>(a);
    case 4:
      return cpu.read_linear<uint32_t>(a);
    default:
      return cpu.read_linear<uint64_t>(a);
  }
}

void write_system(Cpu& cpu, uint64_t la, uint8_t size, uint64_t value) {
  CplScope scope(cpu, 0);
  const uint64_t a = system_address(cpu, la);
  switch (size) {
    case 1:
      cpu.write_linear<uint8_t>(a, static_cast<uint8_t>(value));
      break;
    case 2:
      cpu.write_linear<uint16_t>(a, static_cast<uint16_t>(value));
      break;
    case 4:
      cpu.write_linear<uint32_t>(a, static_cast<uint32_t>(value));
      break;
    default:
      cpu.write_linear<uint64_t>(a, value);
      break;
  }
}

SegmentCache cache_from_descriptor(uint16_t selector, uint64_t low, uint64_t high) {
  SegmentCache c;
  c.selector = selector;
  c.base = ((low >> 16) & 0xffffff) | (((low >> 56) & 0xff) << 24);
  const bool system = !((low >> 44) & 1);
  if (system) {
    c.base |= (high & 0xffffffff) << 32;  // 16-byte system descriptors in long mode
  }
  uint32_t limit = static_cast<uint32_t>((low & 0xffff) | ((low >> 32) & 0xf0000));
  c.attributes = static_cast<uint16_t>(((low >> 40) & 0xff) | (((low >> 52) & 0xf) << 12));
  if (c.granularity()) {
    limit = (limit << 12) | 0xfff;
  }
  c.limit = limit;
  return c;
}

SegmentCache null_segment(uint16_t selector) {
  SegmentCache c;
  c.selector = selector;
  c.base = 0;
  c.limit = 0;
  // Not present: every access through it faults outside 64-bit mode. The DPL keeps the RPL so
  // that a null SS in 64-bit mode still tells its privilege.
  c.attributes = static_cast<uint16_t>((selector & 3) << 5);
  return c;
}

namespace {

struct Table {
  uint64_t base;
  uint32_t limit;
};

bool table_of(const Cpu& cpu, uint16_t selector, Table& t) {
  if (selector & 4) {
    if (!cpu.ldtr.present() || (cpu.ldtr.selector & 0xfffc) == 0) {
      return false;
    }
    t = {cpu.ldtr.base, cpu.ldtr.limit};
  } else {
    t = {cpu.gdtr_base, cpu.gdtr_limit};
  }
  return true;
}

}  // namespace

bool selector_in_table(const Cpu& cpu, uint16_t selector) {
  Table t;
  return table_of(cpu, selector, t) && (selector & 0xfff8u) + 7u <= t.limit;
}

uint64_t Cpu::read_descriptor(uint16_t selector, uint64_t* high) {
  Table t;
  const uint32_t index = selector & 0xfff8u;
  if (!table_of(*this, selector, t) || index + 7u > t.limit) {
    raise_fault(kGeneralProtection, selector & 0xfffc);
  }
  const uint64_t low = read_system(*this, t.base + index, 8);
  if (high != nullptr) {
    *high = 0;
    // Only system descriptors grow to 16 bytes, and only in long mode.
    if (long_mode() && !((low >> 44) & 1)) {
      if (index + 15u > t.limit) {
        raise_fault(kGeneralProtection, selector & 0xfffc);
      }
      *high = read_system(*this, t.base + index + 8, 8);
    }
  }
  return low;
}

void set_descriptor_accessed(Cpu& cpu, uint16_t selector, uint64_t descriptor) {
  // Only code/data descriptors have the bit, and hardware writes only when it is clear (so a
  // read-only GDT with preset bits works).
  if (!((descriptor >> 44) & 1) || ((descriptor >> 40) & 1)) {
    return;
  }
  Table t;
  if (!table_of(cpu, selector, t)) {
    return;
  }
  const uint64_t la = t.base + (selector & 0xfff8u) + 5;
  write_system(cpu, la, 1, ((descriptor >> 40) & 0xff) | 1);
}

SegmentCache check_stack_segment(Cpu& cpu, uint16_t selector, uint8_t cpl, uint8_t fault) {
  const uint16_t error = selector & 0xfffc;
  if ((selector & 3) != cpl) {
    raise_fault(fault, error);
  }
  const uint64_t d = cpu.read_descriptor(selector);
  SegmentCache c = cache_from_descriptor(selector, d);
  if (!c.writable() || c.dpl() != cpl) {
    raise_fault(fault, error);
  }
  if (!c.present()) {
    raise_fault(kStackFault, error);
  }
  set_descriptor_accessed(cpu, selector, d);
  c.attributes |= attr::kAccessed;
  return c;
}

void Cpu::load_segment(uint8_t segment, uint16_t selector) {
  if (segment == kCs) {
    raise_fault(kInvalidOpcode);  // MOV/POP CS do not exist; far transfers load CS
  }
  SegmentCache& s = seg[segment];
  if (!protected_mode() || virtual_8086()) {
    // Real mode keeps the cached limit and attributes (this is what "unreal mode" relies on);
    // V86 mode forces 64 KiB ring-3 data segments.
    s.selector = selector;
    s.base = static_cast<uint64_t>(selector) << 4;
    if (virtual_8086()) {
      s.limit = 0xffff;
      s.attributes = attr::kV86;
    }
    return;
  }
  const uint16_t error = selector & 0xfffc;
  const uint8_t rpl = selector & 3;
  const bool mode64 = long_mode() && seg[kCs].long_mode();
  if (segment == kSs) {
    if (error == 0) {
      // 64-bit mode allows a null SS below ring 3 (interrupts and SYSCALL leave one there).
      if (!mode64 || cpl == 3 || rpl != cpl) {
        raise_fault(kGeneralProtection, 0);
      }
      s = null_segment(selector);
      update_mode();
      return;
    }
    if (rpl != cpl) {
      raise_fault(kGeneralProtection, error);
    }
    const uint64_t d = read_descriptor(selector);
    SegmentCache c = cache_from_descriptor(selector, d);
    if (!c.writable() || c.dpl() != cpl) {
      raise_fault(kGeneralProtection, error);
    }
    if (!c.present()) {
      raise_fault(kStackFault, error);
    }
    set_descriptor_accessed(*this, selector, d);
    c.attributes |= attr::kAccessed;
    s = c;
    update_mode();
    return;
  }
  if (error == 0) {
    // Intel clears the base of a nulled FS/GS (AMD keeps it; Linux handles both).
    s = null_segment(selector);
    return;
  }
  const uint64_t d = read_descriptor(selector);
  SegmentCache c = cache_from_descriptor(selector, d);
  if (!c.readable()) {
    raise_fault(kGeneralProtection, error);  // system descriptors and execute-only code
  }
  const bool conforming_code = c.is_code() && (c.type() & 4);
  if (!conforming_code && (c.dpl() < cpl || c.dpl() < rpl)) {
    raise_fault(kGeneralProtection, error);
  }
  if (!c.present()) {
    raise_fault(kSegmentNotPresent, error);
  }
  set_descriptor_accessed(*this, selector, d);
  c.attributes |= attr::kAccessed;
  s = c;
}

void Cpu::load_code_segment(uint16_t selector, uint8_t new_cpl) {
  SegmentCache& cs = seg[kCs];
  if (!protected_mode() || virtual_8086()) {
    cs.selector = selector;
    cs.base = static_cast<uint64_t>(selector) << 4;
    if (virtual_8086()) {
      cs.limit = 0xffff;
      cs.attributes = 0xfb;
    }
    update_mode();
    return;
  }
  const uint16_t error = selector & 0xfffc;
  if (error == 0) {
    raise_fault(kGeneralProtection, 0);
  }
  const uint64_t d = read_descriptor(selector);
  SegmentCache c = cache_from_descriptor(static_cast<uint16_t>(error | new_cpl), d);
  if (!c.is_code() || (long_mode() && c.long_mode() && c.default_big())) {
    raise_fault(kGeneralProtection, error);
  }
  if (!c.present()) {
    raise_fault(kSegmentNotPresent, error);
  }
  set_descriptor_accessed(*this, selector, d);
  c.attributes |= attr::kAccessed;
  cs = c;
  update_mode();  // derives cpl from the RPL just stored
}

}  // namespace hv::emu
