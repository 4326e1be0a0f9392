// One emulated x86-64 CPU: architectural state, the memory path (segmentation, paging, a
// software TLB with host pointers) and the entry points instruction handlers use.
//
// Hot paths are inline here: register access, the TLB hit path of memory reads and writes.
// Everything that may fault throws GuestFault; the run loop catches it and delivers the
// exception to the guest (interrupts.cpp), so handlers contain no error plumbing.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <type_traits>

#include "devices/hypercalls.hpp"
#include "emu/flags.hpp"
#include "emu/insn.hpp"
#include "vm/cpu_state.hpp"
#include "vm/machine.hpp"

namespace hv::emu {

enum Vector : uint8_t {
  kDivideError = 0,
  kDebug = 1,
  kNmi = 2,
  kBreakpoint = 3,
  kOverflow = 4,
  kBoundRange = 5,
  kInvalidOpcode = 6,
  kDeviceNotAvailable = 7,
  kDoubleFault = 8,
  kInvalidTss = 10,
  kSegmentNotPresent = 11,
  kStackFault = 12,
  kGeneralProtection = 13,
  kPageFault = 14,
  kFpuError = 16,
  kAlignmentCheck = 17,
  kMachineCheck = 18,
  kSimdError = 19,
};

// Thrown by an instruction that faults. The run loop delivers it; rip still points at the
// faulting instruction, so the guest can restart it.
struct GuestFault {
  uint8_t vector;
  bool has_error_code;
  uint32_t error_code;
};

[[noreturn]] inline void raise_fault(uint8_t vector) {
  throw GuestFault{vector, false, 0};
}
[[noreturn]] inline void raise_fault(uint8_t vector, uint32_t error_code) {
  throw GuestFault{vector, true, error_code};
}

// A segment register with its hidden descriptor cache. `attributes` holds descriptor bits
// 40..47 (type, S, DPL, P) in its low byte and bits 52..55 (AVL, L, D/B, G) in bits 12..15,
// the VMX "access rights" layout.
struct SegmentCache {
  uint64_t base = 0;
  uint32_t limit = 0xffff;
  uint16_t selector = 0;
  uint16_t attributes = 0x93;

  uint8_t type() const { return attributes & 0xf; }
  bool code_or_data() const { return attributes & 0x10; }
  uint8_t dpl() const { return (attributes >> 5) & 3; }
  bool present() const { return attributes & 0x80; }
  bool long_mode() const { return attributes & 0x2000; }
  bool default_big() const { return attributes & 0x4000; }
  bool granularity() const { return attributes & 0x8000; }
  bool is_code() const { return code_or_data() && (type() & 0x8); }
  bool writable() const { return code_or_data() && !(type() & 0x8) && (type() & 0x2); }
  bool readable() const { return code_or_data() && (!(type() & 0x8) || (type() & 0x2)); }
  bool expand_down() const { return code_or_data() && !(type() & 0x8) && (type() & 0x4); }
};

enum class Access : uint8_t { kRead = 0, kWrite = 1, kExecute = 2 };

// Shared by all CPUs of a machine: which guest-physical pages hold decoded code, and a version
// per page that a write to such a page bumps, so every CPU's decoded blocks for it go stale
// (self- and cross-modifying code).
class CodePages {
 public:
  explicit CodePages(uint64_t max_physical_address);
  bool has_code(uint64_t page) const {
    return page < count_ && has_code_[page].load(std::memory_order_relaxed);
  }
  uint32_t version(uint64_t page) const {
    return page < count_ ? version_[page].load(std::memory_order_acquire) : 0;
  }
  // A page gets decoded code: write TLBs everywhere must stop bypassing the slow path for it.
  void mark_code(uint64_t page);
  // A guest write hit a code page: its blocks are stale.
  void invalidate(uint64_t page);
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // Counts invalidate() calls that staled a page: a block checked valid while this was n is
  // still valid while it is n (one shared counter instead of each block's page versions).
  uint64_t invalidations() const { return invalidations_.load(std::memory_order_acquire); }

 private:
  uint64_t count_;
  std::unique_ptr<std::atomic<uint8_t>[]> has_code_;
  std::unique_ptr<std::atomic<uint32_t>[]> version_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> invalidations_{0};
};

struct TlbEntry {
  uint64_t page = ~0ull;    // linear page number (la >> 12); ~0 = empty
  uint8_t* host = nullptr;  // host address of the page's first byte
  uint64_t physical = 0;    // guest-physical address of the page
  bool global = false;
};

struct FpuState {
  uint16_t fcw = 0x37f;
  uint16_t fsw = 0;
  uint8_t ftw = 0;  // abridged tag word (FXSAVE form): bit set = register valid
  uint16_t fop = 0;
  uint64_t fip = 0, fdp = 0;
  alignas(16) std::array<long double, 8> st{};  // physical registers R0-R7 (x87 80-bit)
  alignas(16) std::array<std::array<uint64_t, 2>, 16> xmm{};
  uint32_t mxcsr = 0x1f80;
};

struct Msrs {
  uint64_t star = 0, lstar = 0, cstar = 0, sfmask = 0;
  uint64_t kernel_gs_base = 0;
  uint64_t sysenter_cs = 0, sysenter_esp = 0, sysenter_eip = 0;
  uint64_t tsc_aux = 0;
  uint64_t pat = 0x0007040600070406ull;
  uint64_t apic_base = 0xfee00900;  // enabled, BSP; cleared BSP bit for APs
  uint64_t misc_enable = 1;         // fast strings
  uint64_t spec_ctrl = 0;
  uint64_t tsc_offset = 0;  // guest TSC = host-derived TSC + offset
  uint64_t tsc_adjust = 0;  // IA32_TSC_ADJUST: what software added to the TSC
};

class Cpu {
 public:
  Cpu(Machine& machine, CodePages& code_pages, uint32_t index);

  // --- architectural state (public: handlers are free functions) ---
  std::array<uint64_t, 16> gpr{};
  uint64_t rip = 0;                   // the executing instruction
  uint64_t next_rip = 0;              // fall-through; branch handlers overwrite it
  uint64_t rflags = flag::kFixedOne;  // all bits except the six arithmetic ones
  LazyFlags lazy;
  std::array<SegmentCache, 6> seg{};
  SegmentCache ldtr, tr;
  uint64_t gdtr_base = 0, idtr_base = 0;
  uint16_t gdtr_limit = 0xffff, idtr_limit = 0xffff;
  uint64_t cr0 = 0x60000010, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0, efer = 0;
  std::array<uint64_t, 8> dr{0, 0, 0, 0, 0xffff0ff0, 0x400, 0xffff0ff0, 0x400};
  Msrs msr;
  FpuState fpu;
  uint8_t cpl = 0;
  bool halted = false;
  bool interrupt_shadow = false;  // after STI / MOV SS: no interrupt before the next insn

  // This CPU's local APIC: accesses to the APIC page (msr.apic_base) go to it, not to the
  // machine's MMIO bus, because every CPU sees its own APIC at the same address.
  IoDevice* local_apic = nullptr;

  Machine& machine() { return machine_; }
  uint32_t index() const { return index_; }

  // --- modes (recomputed by update_mode() after CR0/EFER/CS changes) ---
  bool long_mode() const { return efer & efer::kLMA; }
  bool protected_mode() const { return cr0 & cr0::kPE; }
  bool virtual_8086() const { return rflags & flag::kVM; }
  uint8_t code_size() const { return code_size_; }    // 2, 4 or 8: default operand/address size
  uint8_t stack_size() const { return stack_size_; }  // 2, 4 or 8: SP/ESP/RSP width
  void update_mode();
  // Changes whenever the mapping from code addresses to decoded blocks may have changed (TLB
  // flushes, mode and privilege changes): chained blocks are only followed within one epoch.
  uint64_t translation_epoch() const { return translation_epoch_; }

  // --- flags ---
  uint64_t flags() const { return rflags | lazy.arithmetic_bits(); }
  // Writes RFLAGS as POPF/IRET do after the caller has applied privilege rules to `mask`.
  void set_flags(uint64_t value, uint64_t mask);

  // --- registers ---
  [[gnu::always_inline]] uint64_t reg(uint8_t r, uint8_t size) const {
    if (size == 1 && r >= kHighByteBase) {
      return (gpr[r - kHighByteBase] >> 8) & 0xff;
    }
    switch (size) {
      case 1:
        return gpr[r] & 0xff;
      case 2:
        return gpr[r] & 0xffff;
      case 4:
        return gpr[r] & 0xffffffff;
      default:
        return gpr[r];
    }
  }
  [[gnu::always_inline]] void set_reg(uint8_t r, uint8_t size, uint64_t v) {
    if (size == 1 && r >= kHighByteBase) {
      uint64_t& g = gpr[r - kHighByteBase];
      g = (g & ~0xff00ull) | ((v & 0xff) << 8);
      return;
    }
    uint64_t& g = gpr[r];
    switch (size) {
      case 1:
        g = (g & ~0xffull) | (v & 0xff);
        break;
      case 2:
        g = (g & ~0xffffull) | (v & 0xffff);
        break;
      case 4:
        g = v & 0xffffffff;
        break;  // 32-bit writes zero-extend, as in hardware
      default:
        g = v;
        break;
    }
  }

  // --- memory (segmented, paged) ---
  // Offset of a memory operand, truncated to the address size; RIP-relative uses next_rip.
  uint64_t effective_address(const Insn& insn) const {
    const MemOperand& m = insn.mem;
    uint64_t ea = static_cast<uint64_t>(m.displacement);
    if (m.base == kRipBase) {
      ea += next_rip;
    } else if (m.base != kNoRegister) {
      ea += gpr[m.base];
    }
    if (m.index != kNoRegister) {
      ea += gpr[m.index] * m.scale;
    }
    return truncate_address(ea, insn.address_size);
  }
  static uint64_t truncate_address(uint64_t a, uint8_t address_size) {
    return address_size == 8 ? a : address_size == 4 ? (a & 0xffffffff) : (a & 0xffff);
  }

  // Linear address of seg:offset for an access of `size` bytes, with the limit/type checks of
  // the current mode; raises #GP/#SS.
  uint64_t linear_address(uint8_t segment, uint64_t offset, uint32_t size, Access access) {
    const SegmentCache& s = seg[segment];
    if (code_size_ == 8) {  // 64-bit code: long mode with CS.L
      uint64_t la = offset + ((segment >= kFs) ? s.base : 0);
      // Both ends canonical, in one comparison: la + 2^47 must stay below 2^48 - size + 1.
      if ((la + (1ull << 47)) > (1ull << 48) - size) [[unlikely]] {
        raise_fault(segment == kSs ? kStackFault : kGeneralProtection, 0);
      }
      return la;
    }
    check_segment_access(segment, offset, size, access);
    return (s.base + offset) & 0xffffffff;
  }
  static bool is_canonical(uint64_t la) {
    return static_cast<uint64_t>(static_cast<int64_t>(la << 16) >> 16) == la;
  }

  template <typename T>
  T read(uint8_t segment, uint64_t offset) {
    return read_linear<T>(linear_address(segment, offset, sizeof(T), Access::kRead));
  }
  template <typename T>
  void write(uint8_t segment, uint64_t offset, T value) {
    write_linear<T>(linear_address(segment, offset, sizeof(T), Access::kWrite), value);
  }
  uint64_t read_sized(uint8_t segment, uint64_t offset, uint8_t size);
  void write_sized(uint8_t segment, uint64_t offset, uint8_t size, uint64_t value);

  template <typename T>
  T read_linear(uint64_t la) {
    static_assert(std::is_trivially_copyable_v<T>);
    const TlbEntry& e = read_tlb_[user_tlb()][(la >> 12) & kTlbMask];
    if (e.page == (la >> 12) && (la & 0xfff) <= 0x1000 - sizeof(T)) [[likely]] {
      T v;
      std::memcpy(&v, e.host + (la & 0xfff), sizeof(T));
      return v;
    }
    T v;
    read_slow(la, &v, sizeof(T), Access::kRead);
    return v;
  }
  template <typename T>
  void write_linear(uint64_t la, T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const TlbEntry& e = write_tlb_[user_tlb()][(la >> 12) & kTlbMask];
    if (e.page == (la >> 12) && (la & 0xfff) <= 0x1000 - sizeof(T)) [[likely]] {
      std::memcpy(e.host + (la & 0xfff), &value, sizeof(T));
      return;
    }
    write_slow(la, &value, sizeof(T));
  }
  // Host pointer for an atomic read-modify-write of `size` bytes at seg:offset (LOCK prefix,
  // XCHG with memory); null when the location is MMIO or crosses a page, in which case the
  // caller falls back to a plain read and write.
  uint8_t* host_pointer_for_rmw(uint8_t segment, uint64_t offset, uint32_t size);

  // Stack: push/pop with the current stack size (SS.B / 64-bit mode).
  void push(uint64_t value, uint8_t size);
  uint64_t pop(uint8_t size);

  // Instruction fetch for the decoder: reads `len` bytes at linear address `la` with execute
  // permission; returns the guest-physical address of the first byte.
  uint64_t fetch(uint64_t la, uint8_t* out, uint32_t len);
  // Guest-physical address of an instruction byte (fetch permission), through the fetch TLB.
  uint64_t code_physical_address(uint64_t la) {
    const TlbEntry& e = fetch_tlb_[user_tlb()][(la >> 12) & kTlbMask];
    if (e.page == (la >> 12)) [[likely]] {
      return e.physical | (la & 0xfff);
    }
    uint64_t physical;
    resolve(la, Access::kExecute, physical);
    return physical;
  }

  // Page walk without side effects on the TLB. Raises #PF (with CR2) when not allowed.
  uint64_t translate(uint64_t la, Access access, bool user);

  // --- TLB control ---
  void flush_tlb(bool include_global);
  void flush_tlb_page(uint64_t la);
  // Drops write translations so writes to pages that just became code take the slow path.
  void flush_write_tlb();
  void sync_code_generation() {
    const uint64_t generation = code_pages_.generation();
    if (generation != seen_code_generation_) [[unlikely]] {
      seen_code_generation_ = generation;
      flush_write_tlb();
    }
  }

  // --- port I/O (permission checks are the caller's: IOPL/TSS bitmap in io_permitted) ---
  uint64_t port_in(uint16_t port, uint8_t size);
  void port_out(uint16_t port, uint8_t size, uint64_t value);
  bool io_permitted(uint16_t port, uint8_t size);
  // Counts the access in port_counts (below) when --trace-exits asked for them.
  void count_port(uint16_t port, bool is_write) {
    if (port_counts) [[unlikely]] {
      ++(*port_counts)[(uint32_t{port} << 1) | (is_write ? 1 : 0)];
    }
  }

  // --- hypercalls (hypercall.cpp) ---
  // Runs the call in the registers if the machine has a hypercall service; returns false when it
  // has none, so the instruction behaves as it would without one.
  bool hypercall();

  // --- control registers, MSRs (system.cpp) ---
  void write_cr0(uint64_t value);
  void write_cr3(uint64_t value);
  void write_cr4(uint64_t value);
  void write_efer(uint64_t value);
  bool read_msr(uint32_t index, uint64_t& value);  // false = #GP
  bool write_msr(uint32_t index, uint64_t value);
  uint64_t read_tsc();

  // --- segments (segments.cpp) ---
  // Loads a segment register as MOV/POP do, with the protected-mode descriptor checks.
  void load_segment(uint8_t segment, uint16_t selector);
  // Loads CS as a far JMP/CALL/RET/IRET does after the caller's privilege checks.
  void load_code_segment(uint16_t selector, uint8_t new_cpl);
  // Reads the 8- or 16-byte descriptor for a selector from the GDT/LDT; #GP(selector) if out of
  // the table's limit.
  uint64_t read_descriptor(uint16_t selector, uint64_t* high = nullptr);

  // --- events (interrupts.cpp) ---
  // Delivers an exception, software interrupt or external interrupt through the IVT/IDT, with
  // privilege change, stack switch, IST and error code; escalates to #DF and triple fault.
  // Never throws: faults met while delivering are delivered in turn (or set triple_faulted).
  void deliver_interrupt(uint8_t vector, bool has_error_code, uint32_t error_code, bool software,
                         bool external);
  bool triple_faulted = false;

  // --- state exchange with the engine ---
  void load_state(const CpuState& state);
  CpuState save_state() const;

  uint64_t instructions_retired = 0;

 private:
  static constexpr size_t kTlbSize = 256;
  static constexpr uint64_t kTlbMask = kTlbSize - 1;

  int user_tlb() const { return cpl == 3 ? 1 : 0; }
  void check_segment_access(uint8_t segment, uint64_t offset, uint32_t size, Access access);
  void read_slow(uint64_t la, void* out, uint32_t size, Access access);
  void write_slow(uint64_t la, const void* in, uint32_t size);
  // Translates and fills the TLB; returns the host pointer of the byte or null for MMIO, and
  // the guest-physical address through `physical`.
  uint8_t* resolve(uint64_t la, Access access, uint64_t& physical);

  Machine& machine_;
  CodePages& code_pages_;
  uint32_t index_;
  uint8_t code_size_ = 2;
  uint8_t stack_size_ = 2;
  uint64_t seen_code_generation_ = 0;
  uint64_t translation_epoch_ = 0;
  bool last_walk_global_ = false;
  std::array<std::array<TlbEntry, kTlbSize>, 2> read_tlb_{};
  std::array<std::array<TlbEntry, kTlbSize>, 2> write_tlb_{};
  std::array<std::array<TlbEntry, kTlbSize>, 2> fetch_tlb_{};

 public:
  // Statistics for --trace-exits, after everything the hot paths touch.
  // Accesses per (port << 1 | is_write); null, and not counted, unless asked for. Only the
  // port-I/O path looks at it.
  std::unique_ptr<std::map<uint32_t, uint64_t>> port_counts;
  HypercallCounts hypercall_counts;

  friend class Executor;
};

}  // namespace hv::emu
