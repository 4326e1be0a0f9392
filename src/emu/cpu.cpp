#include "emu/cpu.hpp"

#include <algorithm>

namespace hv::emu {

namespace {

constexpr uint64_t kPhysicalAddressMask = 0x000f'ffff'ffff'f000ull;
constexpr uint64_t kPtePresent = 1u << 0, kPteWrite = 1u << 1, kPteUser = 1u << 2,
                   kPteAccessed = 1u << 5, kPteDirty = 1u << 6, kPteLarge = 1u << 7,
                   kPteGlobal = 1u << 8;
constexpr uint64_t kPteNoExecute = 1ull << 63;

uint16_t attributes_from(const Segment& s) {
  return static_cast<uint16_t>((s.type & 0xf) | (s.system_or_code_data ? 0x10 : 0) |
                               ((s.dpl & 3) << 5) | (s.present ? 0x80 : 0) | (s.avl ? 0x1000 : 0) |
                               (s.long_mode ? 0x2000 : 0) | (s.default_big ? 0x4000 : 0) |
                               (s.granularity ? 0x8000 : 0));
}

SegmentCache to_cache(const Segment& s) {
  return SegmentCache{s.base, s.limit, s.selector, attributes_from(s)};
}

Segment from_cache(const SegmentCache& c) {
  Segment s;
  s.base = c.base;
  s.limit = c.limit;
  s.selector = c.selector;
  s.type = c.type();
  s.system_or_code_data = c.code_or_data();
  s.dpl = c.dpl();
  s.present = c.present();
  s.avl = c.attributes & 0x1000;
  s.long_mode = c.long_mode();
  s.default_big = c.default_big();
  s.granularity = c.granularity();
  return s;
}

}  // namespace

CodePages::CodePages(uint64_t max_physical_address)
    : count_((max_physical_address + 4095) / 4096),
      has_code_(new std::atomic<uint8_t>[count_]()),
      version_(new std::atomic<uint32_t>[count_]()) {}

void CodePages::mark_code(uint64_t page) {
  if (page < count_ && !has_code_[page].exchange(1, std::memory_order_acq_rel)) {
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void CodePages::invalidate(uint64_t page) {
  if (page < count_ && has_code_[page].exchange(0, std::memory_order_acq_rel)) {
    version_[page].fetch_add(1, std::memory_order_acq_rel);
    invalidations_.fetch_add(1, std::memory_order_acq_rel);
  }
}

Cpu::Cpu(Machine& machine, CodePages& code_pages, uint32_t index)
    : machine_(machine), code_pages_(code_pages), index_(index) {
  if (index != 0) {
    msr.apic_base &= ~0x100ull;  // only vCPU 0 is the bootstrap processor
  }
  CpuState reset;  // power-on state: real mode at F000:FFF0
  reset.cs.selector = 0xf000;
  reset.cs.base = 0xffff0000;
  reset.cs.type = 0xb;
  reset.ds.type = reset.es.type = reset.fs.type = reset.gs.type = reset.ss.type = 0x3;
  load_state(reset);
}

void Cpu::update_mode() {
  ++translation_epoch_;
  if (!protected_mode()) {
    cpl = 0;
  } else if (virtual_8086()) {
    cpl = 3;
  } else {
    cpl = seg[kCs].selector & 3;
  }
  if (long_mode() && seg[kCs].long_mode()) {
    code_size_ = 8;
    stack_size_ = 8;
  } else {
    code_size_ = seg[kCs].default_big() && !virtual_8086() ? 4 : 2;
    stack_size_ = seg[kSs].default_big() && protected_mode() && !virtual_8086() ? 4 : 2;
  }
}

void Cpu::set_flags(uint64_t value, uint64_t mask) {
  constexpr uint64_t kWritable = flag::kTF | flag::kIF | flag::kDF | flag::kIOPL | flag::kNT |
                                 flag::kRF | flag::kVM | flag::kAC | flag::kVIF | flag::kVIP |
                                 flag::kID;
  const uint64_t system_mask = mask & kWritable;
  rflags = ((rflags & ~system_mask) | (value & system_mask)) | flag::kFixedOne;
  if (mask & flag::kArithmetic) {
    const uint64_t keep = lazy.arithmetic_bits() & ~mask;
    lazy.set_materialized(keep | (value & mask & flag::kArithmetic));
  }
}

void Cpu::check_segment_access(uint8_t segment, uint64_t offset, uint32_t size, Access access) {
  const SegmentCache& s = seg[segment];
  const uint8_t fault = segment == kSs ? kStackFault : kGeneralProtection;
  if (protected_mode() && !virtual_8086()) {
    if (!s.present() || (s.selector < 4 && segment != kCs && segment != kSs && s.attributes == 0)) {
      raise_fault(fault, 0);  // null selector or unusable segment
    }
    if (access == Access::kWrite && !s.writable()) {
      raise_fault(fault, 0);
    }
    if (access == Access::kRead && !s.readable()) {
      raise_fault(fault, 0);
    }
  }
  const uint64_t last = offset + size - 1;
  if (s.expand_down()) {
    const uint64_t upper = s.default_big() ? 0xffffffffull : 0xffffull;
    if (offset <= s.limit || last > upper) {
      raise_fault(fault, 0);
    }
  } else if (last > s.limit || last < offset) {
    raise_fault(fault, 0);
  }
}

uint64_t Cpu::translate(uint64_t la, Access access, bool user) {
  if (!(cr0 & cr0::kPG)) {
    return long_mode() ? la : (la & 0xffffffff);
  }
  const bool write = access == Access::kWrite;
  const bool execute = access == Access::kExecute;
  const bool nx_enabled = efer & efer::kNXE;
  GuestMemory& memory = machine_.memory();
  auto page_fault = [&](bool present, bool reserved) {
    cr2 = la;
    uint32_t code = (present ? 1u : 0u) | (write ? 2u : 0u) | (user ? 4u : 0u) |
                    (reserved ? 8u : 0u) | (execute && nx_enabled ? 16u : 0u);
    raise_fault(kPageFault, code);
  };

  bool writable = true, user_ok = true, no_execute = false;
  uint8_t* entries[4] = {};
  int levels_used = 0;
  uint64_t physical = 0;
  uint64_t page_mask = 0xfff;
  bool global = false;

  auto load = [&](uint64_t address, bool wide) -> uint8_t* {
    uint8_t* p = memory.host_pointer(address, wide ? 8 : 4);
    return p;
  };
  auto read_entry = [&](uint8_t* p, bool wide) -> uint64_t {
    if (wide) {
      return __atomic_load_n(reinterpret_cast<uint64_t*>(p), __ATOMIC_RELAXED);
    }
    return __atomic_load_n(reinterpret_cast<uint32_t*>(p), __ATOMIC_RELAXED);
  };

  if (cr4 & cr4::kPAE) {
    uint64_t table;
    int level;
    if (long_mode()) {
      table = cr3 & kPhysicalAddressMask;
      level = 4;
    } else {
      // PAE: CR3 points at four PDPTEs; they carry no permission bits.
      uint8_t* p = load((cr3 & 0xffffffe0) + ((la >> 30) & 3) * 8, true);
      uint64_t pdpte = p ? read_entry(p, true) : 0;
      if (!(pdpte & kPtePresent)) {
        page_fault(false, false);
      }
      table = pdpte & kPhysicalAddressMask;
      level = 2;
    }
    for (; level >= 1; --level) {
      const int shift = 12 + 9 * (level - 1);
      uint8_t* p = load(table + ((la >> shift) & 0x1ff) * 8, true);
      uint64_t entry = p ? read_entry(p, true) : 0;
      if (!(entry & kPtePresent)) {
        page_fault(false, false);
      }
      entries[levels_used++] = p;
      writable &= (entry & kPteWrite) != 0;
      user_ok &= (entry & kPteUser) != 0;
      no_execute |= nx_enabled && (entry & kPteNoExecute);
      const bool large = (level == 2 || level == 3) && (entry & kPteLarge);
      if (level == 1 || large) {
        page_mask = (1ull << shift) - 1;
        physical = (entry & kPhysicalAddressMask & ~page_mask) | (la & page_mask);
        global = (cr4 & cr4::kPGE) && (entry & kPteGlobal);
        break;
      }
      table = entry & kPhysicalAddressMask;
    }
  } else {
    uint8_t* pde_p = load((cr3 & 0xfffff000) + ((la >> 22) & 0x3ff) * 4, false);
    uint64_t pde = pde_p ? read_entry(pde_p, false) : 0;
    if (!(pde & kPtePresent)) {
      page_fault(false, false);
    }
    entries[levels_used++] = pde_p;
    writable &= (pde & kPteWrite) != 0;
    user_ok &= (pde & kPteUser) != 0;
    if ((pde & kPteLarge) && (cr4 & cr4::kPSE)) {
      physical = (pde & 0xffc00000) | (la & 0x3fffff);
      global = (cr4 & cr4::kPGE) && (pde & kPteGlobal);
    } else {
      uint8_t* pte_p = load((pde & 0xfffff000) + ((la >> 12) & 0x3ff) * 4, false);
      uint64_t pte = pte_p ? read_entry(pte_p, false) : 0;
      if (!(pte & kPtePresent)) {
        page_fault(false, false);
      }
      entries[levels_used++] = pte_p;
      writable &= (pte & kPteWrite) != 0;
      user_ok &= (pte & kPteUser) != 0;
      physical = (pte & 0xfffff000) | (la & 0xfff);
      global = (cr4 & cr4::kPGE) && (pte & kPteGlobal);
    }
  }

  if (user && !user_ok) {
    page_fault(true, false);
  }
  if (write && !writable && (user || (cr0 & cr0::kWP))) {
    page_fault(true, false);
  }
  if (execute && no_execute) {
    page_fault(true, false);
  }
  // Accessed on every level, dirty on the last for writes: atomically, other CPUs may walk too.
  const bool wide = (cr4 & cr4::kPAE) != 0;
  for (int i = 0; i < levels_used; ++i) {
    uint64_t bits = kPteAccessed | ((write && i == levels_used - 1) ? kPteDirty : 0);
    if (wide) {
      __atomic_fetch_or(reinterpret_cast<uint64_t*>(entries[i]), bits, __ATOMIC_RELAXED);
    } else {
      __atomic_fetch_or(reinterpret_cast<uint32_t*>(entries[i]), static_cast<uint32_t>(bits),
                        __ATOMIC_RELAXED);
    }
  }
  last_walk_global_ = global;
  return physical;
}

uint8_t* Cpu::resolve(uint64_t la, Access access, uint64_t& physical) {
  const bool user = cpl == 3;
  physical = translate(la, access, user);
  last_walk_global_ = last_walk_global_ && (cr0 & cr0::kPG);
  const uint64_t page_physical = physical & ~0xfffull;
  if (local_apic != nullptr && page_physical == (msr.apic_base & ~0xfffull)) {
    return nullptr;
  }
  uint8_t* page = machine_.memory().host_pointer(page_physical, 4096);
  if (page == nullptr) {
    return nullptr;  // MMIO or nothing: never cached
  }
  const uint64_t page_number = la >> 12;
  const int context = user ? 1 : 0;
  TlbEntry entry{page_number, page, page_physical, last_walk_global_};
  switch (access) {
    case Access::kRead:
      read_tlb_[context][page_number & kTlbMask] = entry;
      break;
    case Access::kWrite:
      if (code_pages_.has_code(physical >> 12)) {
        code_pages_.invalidate(physical >> 12);
      }
      write_tlb_[context][page_number & kTlbMask] = entry;
      read_tlb_[context][page_number & kTlbMask] = entry;
      break;
    case Access::kExecute:
      fetch_tlb_[context][page_number & kTlbMask] = entry;
      break;
  }
  return page + (physical & 0xfff);
}

void Cpu::read_slow(uint64_t la, void* out, uint32_t size, Access access) {
  auto* dst = static_cast<uint8_t*>(out);
  // Split at the page boundary; each part is translated (and may fault) on its own, and both
  // are translated before any byte is used.
  const uint32_t first = std::min<uint32_t>(size, 0x1000 - (la & 0xfff));
  uint64_t physical[2];
  uint8_t* host[2];
  host[0] = resolve(la, access, physical[0]);
  host[1] = first < size ? resolve(la + first, access, physical[1]) : nullptr;
  const uint32_t lengths[2] = {first, size - first};
  uint32_t done = 0;
  for (int part = 0; part < 2 && done < size; ++part) {
    if (host[part] != nullptr) {
      std::memcpy(dst + done, host[part], lengths[part]);
    } else {
      std::span<uint8_t> bytes(dst + done, lengths[part]);
      const uint64_t apic_page = msr.apic_base & ~0xfffull;
      if (local_apic != nullptr && (physical[part] & ~0xfffull) == apic_page) {
        local_apic->read(physical[part] - apic_page, bytes);
      } else {
        machine_.mmio().read(physical[part], bytes);
      }
    }
    done += lengths[part];
  }
}

void Cpu::write_slow(uint64_t la, const void* in, uint32_t size) {
  const auto* src = static_cast<const uint8_t*>(in);
  const uint32_t first = std::min<uint32_t>(size, 0x1000 - (la & 0xfff));
  uint64_t physical[2];
  uint8_t* host[2];
  host[0] = resolve(la, Access::kWrite, physical[0]);
  host[1] = first < size ? resolve(la + first, Access::kWrite, physical[1]) : nullptr;
  const uint32_t lengths[2] = {first, size - first};
  uint32_t done = 0;
  for (int part = 0; part < 2 && done < size; ++part) {
    if (host[part] != nullptr) {
      std::memcpy(host[part], src + done, lengths[part]);
    } else {
      std::span<const uint8_t> bytes(src + done, lengths[part]);
      const uint64_t apic_page = msr.apic_base & ~0xfffull;
      if (local_apic != nullptr && (physical[part] & ~0xfffull) == apic_page) {
        local_apic->write(physical[part] - apic_page, bytes);
      } else {
        machine_.mmio().write(physical[part], bytes);
      }
    }
    done += lengths[part];
  }
}

uint64_t Cpu::read_sized(uint8_t segment, uint64_t offset, uint8_t size) {
  switch (size) {
    case 1:
      return read<uint8_t>(segment, offset);
    case 2:
      return read<uint16_t>(segment, offset);
    case 4:
      return read<uint32_t>(segment, offset);
    default:
      return read<uint64_t>(segment, offset);
  }
}

void Cpu::write_sized(uint8_t segment, uint64_t offset, uint8_t size, uint64_t value) {
  switch (size) {
    case 1:
      write<uint8_t>(segment, offset, static_cast<uint8_t>(value));
      break;
    case 2:
      write<uint16_t>(segment, offset, static_cast<uint16_t>(value));
      break;
    case 4:
      write<uint32_t>(segment, offset, static_cast<uint32_t>(value));
      break;
    default:
      write<uint64_t>(segment, offset, value);
      break;
  }
}

uint8_t* Cpu::host_pointer_for_rmw(uint8_t segment, uint64_t offset, uint32_t size) {
  const uint64_t la = linear_address(segment, offset, size, Access::kWrite);
  if ((la & 0xfff) + size > 0x1000) {
    return nullptr;
  }
  uint64_t physical;
  return resolve(la, Access::kWrite, physical);
}

void Cpu::push(uint64_t value, uint8_t size) {
  const uint64_t rsp = truncate_address(gpr[kRsp] - size, stack_size_);
  write_sized(kSs, rsp, size, value);
  set_reg(kRsp, stack_size_, rsp);
}

uint64_t Cpu::pop(uint8_t size) {
  const uint64_t rsp = truncate_address(gpr[kRsp], stack_size_);
  const uint64_t value = read_sized(kSs, rsp, size);
  set_reg(kRsp, stack_size_, rsp + size);
  return value;
}

uint64_t Cpu::fetch(uint64_t la, uint8_t* out, uint32_t len) {
  uint64_t first_physical = 0;
  uint32_t done = 0;
  while (done < len) {
    const uint64_t address = la + done;
    const uint32_t chunk = std::min<uint32_t>(len - done, 0x1000 - (address & 0xfff));
    const TlbEntry& e = fetch_tlb_[user_tlb()][(address >> 12) & kTlbMask];
    uint64_t physical;
    uint8_t* host;
    if (e.page == (address >> 12)) {
      host = e.host + (address & 0xfff);
      physical = e.physical | (address & 0xfff);
    } else {
      host = resolve(address, Access::kExecute, physical);
    }
    if (done == 0) {
      first_physical = physical;
    }
    if (host != nullptr) {
      std::memcpy(out + done, host, chunk);
    } else {
      machine_.mmio().read(physical, std::span<uint8_t>(out + done, chunk));
    }
    done += chunk;
  }
  return first_physical;
}

void Cpu::flush_tlb(bool include_global) {
  ++translation_epoch_;
  for (auto* tlbs : {&read_tlb_, &write_tlb_, &fetch_tlb_}) {
    for (auto& context : *tlbs) {
      for (TlbEntry& e : context) {
        if (include_global || !e.global) {
          e = TlbEntry{};
        }
      }
    }
  }
}

void Cpu::flush_tlb_page(uint64_t la) {
  ++translation_epoch_;
  const uint64_t page = la >> 12;
  for (auto* tlbs : {&read_tlb_, &write_tlb_, &fetch_tlb_}) {
    for (auto& context : *tlbs) {
      TlbEntry& e = context[page & kTlbMask];
      if (e.page == page) {
        e = TlbEntry{};
      }
    }
  }
}

void Cpu::flush_write_tlb() {
  for (auto& context : write_tlb_) {
    context.fill(TlbEntry{});
  }
}

uint64_t Cpu::port_in(uint16_t port, uint8_t size) {
  count_port(port, false);
  uint8_t bytes[4] = {};
  machine_.pio().read(port, std::span<uint8_t>(bytes, size));
  return io_value(std::span<const uint8_t>(bytes, size));
}

void Cpu::port_out(uint16_t port, uint8_t size, uint64_t value) {
  count_port(port, true);
  uint8_t bytes[4] = {};
  set_io_value(std::span<uint8_t>(bytes, size), value);
  machine_.pio().write(port, std::span<const uint8_t>(bytes, size));
}

void Cpu::load_state(const CpuState& s) {
  gpr = s.gpr;
  rip = s.rip;
  rflags = (s.rflags & ~flag::kArithmetic) | flag::kFixedOne;
  lazy.set_materialized(s.rflags & flag::kArithmetic);
  seg[kCs] = to_cache(s.cs);
  seg[kDs] = to_cache(s.ds);
  seg[kEs] = to_cache(s.es);
  seg[kFs] = to_cache(s.fs);
  seg[kGs] = to_cache(s.gs);
  seg[kSs] = to_cache(s.ss);
  tr = to_cache(s.tr);
  ldtr = to_cache(s.ldt);
  gdtr_base = s.gdt.base;
  gdtr_limit = s.gdt.limit;
  idtr_base = s.idt.base;
  idtr_limit = s.idt.limit;
  cr0 = s.cr0 | cr0::kET;
  cr2 = s.cr2;
  cr3 = s.cr3;
  cr4 = s.cr4;
  cr8 = s.cr8;
  efer = s.efer;
  flush_tlb(true);
  update_mode();
}

CpuState Cpu::save_state() const {
  CpuState s;
  s.gpr = gpr;
  s.rip = rip;
  s.rflags = flags();
  s.cs = from_cache(seg[kCs]);
  s.ds = from_cache(seg[kDs]);
  s.es = from_cache(seg[kEs]);
  s.fs = from_cache(seg[kFs]);
  s.gs = from_cache(seg[kGs]);
  s.ss = from_cache(seg[kSs]);
  s.tr = from_cache(tr);
  s.ldt = from_cache(ldtr);
  s.gdt = {gdtr_base, gdtr_limit};
  s.idt = {idtr_base, idtr_limit};
  s.cr0 = cr0;
  s.cr2 = cr2;
  s.cr3 = cr3;
  s.cr4 = cr4;
  s.cr8 = cr8;
  s.efer = efer;
  return s;
}

}  // namespace hv::emu
