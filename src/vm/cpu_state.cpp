#include "vm/cpu_state.hpp"

#include <fmt/format.h>

namespace hv {

CpuState CpuState::real_mode(uint16_t cs_selector, uint16_t ip) {
  CpuState s;
  auto real_segment = [](uint16_t selector, uint8_t type) {
    Segment seg;
    seg.selector = selector;
    seg.base = static_cast<uint64_t>(selector) << 4;
    seg.limit = 0xffff;
    seg.type = type;
    return seg;
  };
  s.cs = real_segment(cs_selector, 0xb);                    // execute/read, accessed
  s.ds = s.es = s.fs = s.gs = s.ss = real_segment(0, 0x3);  // read/write, accessed
  s.tr = Segment{.type = 0xb, .system_or_code_data = false};
  s.ldt = Segment{.type = 0x2, .system_or_code_data = false};
  s.rip = ip;
  s.cr0 = cr0::kET;
  return s;
}

std::string CpuState::dump() const {
  static constexpr const char* kNames[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp",
                                             "rsi", "rdi", "r8",  "r9",  "r10", "r11",
                                             "r12", "r13", "r14", "r15"};
  std::string out;
  for (int i = 0; i < 16; ++i) {
    out += fmt::format("{:>3}={:016x}{}", kNames[i], gpr[i], i % 4 == 3 ? "\n" : " ");
  }
  out += fmt::format("rip={:016x} rflags={:08x}\n", rip, rflags);
  auto seg = [&](const char* n, const Segment& sg) {
    out += fmt::format("{:>3}={:04x} base={:016x} limit={:08x} type={:x} dpl={} p={} l={} db={}\n",
                       n, sg.selector, sg.base, sg.limit, sg.type, sg.dpl, sg.present ? 1 : 0,
                       sg.long_mode ? 1 : 0, sg.default_big ? 1 : 0);
  };
  seg("cs", cs);
  seg("ss", ss);
  seg("ds", ds);
  seg("es", es);
  seg("fs", fs);
  seg("gs", gs);
  seg("tr", tr);
  out += fmt::format("gdt={:016x}/{:04x} idt={:016x}/{:04x}\n", gdt.base, gdt.limit, idt.base,
                     idt.limit);
  out += fmt::format("cr0={:08x} cr2={:016x} cr3={:016x} cr4={:08x} efer={:x}", cr0, cr2, cr3, cr4,
                     efer);
  return out;
}

}  // namespace hv
