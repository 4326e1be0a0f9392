// Control registers, EFER, MSRs, the TSC and the I/O permission check.
#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <utility>

#include "emu/cpu.hpp"
#include "emu/cpuid.hpp"
#include "emu/ops_system.hpp"

namespace hv::emu {
namespace {

namespace cr4x {  // CR4 bits beyond those cpu_state.hpp names
constexpr uint64_t kTSD = 1u << 2, kDE = 1u << 3, kPCE = 1u << 8;
}
constexpr uint64_t kCr0Writable = cr0::kPE | cr0::kMP | cr0::kEM | cr0::kTS | cr0::kET | cr0::kNE |
                                  cr0::kWP | cr0::kAM | cr0::kNW | cr0::kCD | cr0::kPG;
// Only what CPUID advertises (DE, PSE, PAE, PGE, TSC, FXSR/SSE); VME, MCE, SMEP, SMAP,
// FSGSBASE, PCIDE, OSXSAVE, UMIP stay reserved.
constexpr uint64_t kCr4Supported = cr4x::kTSD | cr4x::kDE | cr4::kPSE | cr4::kPAE | cr4::kPGE |
                                   cr4x::kPCE | cr4::kOSFXSR | cr4::kOSXMMEXCPT;
constexpr uint64_t kEferWritable = efer::kSCE | efer::kLME | efer::kNXE;

namespace msr_index {
constexpr uint32_t kTsc = 0x10, kPlatformId = 0x17, kApicBase = 0x1b, kBiosSignId = 0x8b,
                   kMtrrCap = 0xfe, kSysenterCs = 0x174, kSysenterEsp = 0x175, kSysenterEip = 0x176,
                   kMcgCap = 0x179, kMcgStatus = 0x17a, kMiscEnable = 0x1a0, kMtrrPhysBase0 = 0x200,
                   kMtrrPhysLast = 0x20f, kMtrrFix64k = 0x250, kMtrrFix16k0 = 0x258,
                   kMtrrFix16k1 = 0x259, kMtrrFix4kFirst = 0x268, kMtrrFix4kLast = 0x26f,
                   kPat = 0x277, kMtrrDefType = 0x2ff, kEfer = 0xc0000080, kStar = 0xc0000081,
                   kLstar = 0xc0000082, kCstar = 0xc0000083, kSfmask = 0xc0000084,
                   kFsBase = 0xc0000100, kGsBase = 0xc0000101, kKernelGsBase = 0xc0000102,
                   kTscAux = 0xc0000103, kTscAdjust = 0x3b, kSpecCtrl = 0x48, kPredCmd = 0x49,
                   kArchCapabilities = 0x10a;
}
// SPEC_CTRL bits that exist with only IBRS advertised (no STIBP, no SSBD).
constexpr uint64_t kSpecCtrlIbrs = 1;
constexpr uint64_t kPredCmdIbpb = 1;

constexpr uint32_t kVariableMtrrs = 8;
// MTRRcap: 8 variable ranges, fixed ranges, write-combining.
constexpr uint64_t kMtrrCapValue = kVariableMtrrs | (1u << 8) | (1u << 10);

// MTRR contents per CPU. Msrs (cpu.hpp) has no room for them, so they live here, keyed by CPU.
// TODO(lead): move into Msrs; until then a Cpu constructed at a freed Cpu's address inherits
// stale values (harmless: MTRRs only describe cacheability, which the emulator ignores).
struct Mtrrs {
  uint64_t def_type = 0;
  std::array<uint64_t, 11> fixed{};
  std::array<uint64_t, kVariableMtrrs * 2> variable{};
};
std::mutex g_mtrr_mutex;
std::map<const Cpu*, Mtrrs> g_mtrrs;

uint64_t* mtrr_slot(const Cpu* cpu, uint32_t index) {
  Mtrrs& m = g_mtrrs[cpu];
  if (index == msr_index::kMtrrDefType)
    return &m.def_type;
  if (index >= msr_index::kMtrrPhysBase0 && index <= msr_index::kMtrrPhysLast) {
    return &m.variable[index - msr_index::kMtrrPhysBase0];
  }
  if (index == msr_index::kMtrrFix64k)
    return &m.fixed[0];
  if (index == msr_index::kMtrrFix16k0)
    return &m.fixed[1];
  if (index == msr_index::kMtrrFix16k1)
    return &m.fixed[2];
  if (index >= msr_index::kMtrrFix4kFirst && index <= msr_index::kMtrrFix4kLast) {
    return &m.fixed[3 + index - msr_index::kMtrrFix4kFirst];
  }
  return nullptr;
}

bool valid_memory_type(uint64_t t) {
  return t == 0 || t == 1 || t == 4 || t == 5 || t == 6;
}

bool valid_pat(uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    const uint64_t t = (value >> (i * 8)) & 0xff;
    if (!(valid_memory_type(t) || t == 7)) {
      return false;
    }
  }
  return true;
}

uint64_t host_tsc() {
  // One epoch for the process so every vCPU's TSC agrees (Linux checks TSC synchronisation).
  static const auto epoch = std::chrono::steady_clock::now();
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - epoch)
          .count();
  // Whole seconds and the remainder separately, so the product cannot overflow 64 bits.
  const uint64_t n = static_cast<uint64_t>(ns);
  constexpr uint64_t kNsPerSecond = 1'000'000'000;
  return (n / kNsPerSecond) * kTscHz + (n % kNsPerSecond) * kTscHz / kNsPerSecond;
}

}  // namespace

void Cpu::write_cr0(uint64_t value) {
  if (value >> 32) {
    raise_fault(kGeneralProtection, 0);
  }
  value &= kCr0Writable;
  value |= cr0::kET;  // hardwired to 1 since the i486
  if ((value & cr0::kPG) && !(value & cr0::kPE)) {
    raise_fault(kGeneralProtection, 0);
  }
  if ((value & cr0::kNW) && !(value & cr0::kCD)) {
    raise_fault(kGeneralProtection, 0);
  }
  const uint64_t old = cr0;
  uint64_t new_efer = efer;
  const bool enabling_paging = (value & cr0::kPG) && !(old & cr0::kPG);
  const bool disabling_paging = !(value & cr0::kPG) && (old & cr0::kPG);
  if (enabling_paging && (efer & efer::kLME)) {
    if (!(cr4 & cr4::kPAE) || seg[kCs].long_mode()) {
      raise_fault(kGeneralProtection, 0);
    }
    new_efer |= efer::kLMA;
  }
  if (disabling_paging && long_mode()) {
    if (seg[kCs].long_mode()) {
      raise_fault(kGeneralProtection, 0);  // 64-bit code cannot turn paging off under itself
    }
    new_efer &= ~efer::kLMA;
  }
  cr0 = value;
  efer = new_efer;
  if ((old ^ value) & (cr0::kPG | cr0::kWP | cr0::kPE | cr0::kCD)) {
    flush_tlb(true);
  }
  update_mode();
}

void Cpu::write_cr3(uint64_t value) {
  // Bits above MAXPHYADDR are reserved (PCID is not offered, so bit 63 is too).
  if (value >> kPhysicalAddressBits) {
    raise_fault(kGeneralProtection, 0);
  }
  cr3 = long_mode() ? value : (value & 0xffffffff);
  flush_tlb(false);
}

void Cpu::write_cr4(uint64_t value) {
  if (value & ~kCr4Supported) {
    raise_fault(kGeneralProtection, 0);
  }
  if (long_mode() && !(value & cr4::kPAE)) {
    raise_fault(kGeneralProtection, 0);
  }
  const uint64_t old = cr4;
  cr4 = value;
  if ((old ^ value) & (cr4::kPGE | cr4::kPAE | cr4::kPSE)) {
    flush_tlb(true);
  }
  update_mode();
}

void Cpu::write_efer(uint64_t value) {
  if (value & ~(kEferWritable | efer::kLMA)) {
    raise_fault(kGeneralProtection, 0);
  }
  if (((value ^ efer) & efer::kLME) && (cr0 & cr0::kPG)) {
    raise_fault(kGeneralProtection, 0);
  }
  const uint64_t old = efer;
  efer = (value & kEferWritable) | (efer & efer::kLMA);  // LMA is the CPU's to set
  if ((old ^ efer) & efer::kNXE) {
    flush_tlb(true);
  }
  update_mode();
}

uint64_t Cpu::read_tsc() {
  return host_tsc() + msr.tsc_offset;
}

bool Cpu::read_msr(uint32_t index, uint64_t& value) {
  using namespace msr_index;
  switch (index) {
    case kEfer:
      value = efer;
      return true;
    case kStar:
      value = msr.star;
      return true;
    case kLstar:
      value = msr.lstar;
      return true;
    case kCstar:
      value = msr.cstar;
      return true;
    case kSfmask:
      value = msr.sfmask;
      return true;
    case kFsBase:
      value = seg[kFs].base;
      return true;
    case kGsBase:
      value = seg[kGs].base;
      return true;
    case kKernelGsBase:
      value = msr.kernel_gs_base;
      return true;
    case kTscAux:
      value = msr.tsc_aux;
      return true;
    case kSysenterCs:
      value = msr.sysenter_cs;
      return true;
    case kSysenterEsp:
      value = msr.sysenter_esp;
      return true;
    case kSysenterEip:
      value = msr.sysenter_eip;
      return true;
    case kTsc:
      value = read_tsc();
      return true;
    case kTscAdjust:
      value = msr.tsc_adjust;
      return true;
    case kPat:
      value = msr.pat;
      return true;
    case kApicBase:
      value = msr.apic_base;
      return true;
    case kMiscEnable:
      value = msr.misc_enable;
      return true;
    case kMtrrCap:
      value = kMtrrCapValue;
      return true;
    case kBiosSignId:
    case kPlatformId:
    case kMcgCap:
    case kMcgStatus:
      value = 0;
      return true;
    case kSpecCtrl:
      value = msr.spec_ctrl;
      return true;
    case kArchCapabilities:
      value = arch_capabilities::kValue;
      return true;
    default:
      break;  // PRED_CMD is write-only: #GP, as on hardware
  }
  std::lock_guard lock(g_mtrr_mutex);
  if (uint64_t* slot = mtrr_slot(this, index)) {
    value = *slot;
    return true;
  }
  return false;  // unknown: #GP
}

bool Cpu::write_msr(uint32_t index, uint64_t value) {
  using namespace msr_index;
  switch (index) {
    case kEfer:
      write_efer(value);
      return true;
    case kStar:
      msr.star = value;
      return true;
    case kLstar:
    case kCstar:
    case kKernelGsBase:
    case kFsBase:
    case kGsBase:
    case kSysenterEsp:
    case kSysenterEip: {
      if (!is_canonical(value)) {
        return false;
      }
      uint64_t* target = index == kLstar          ? &msr.lstar
                         : index == kCstar        ? &msr.cstar
                         : index == kKernelGsBase ? &msr.kernel_gs_base
                         : index == kFsBase       ? &seg[kFs].base
                         : index == kGsBase       ? &seg[kGs].base
                         : index == kSysenterEsp  ? &msr.sysenter_esp
                                                  : &msr.sysenter_eip;
      *target = value;
      return true;
    }
    case kSfmask:
      msr.sfmask = value & 0xffffffff;
      return true;
    case kTscAux:
      if (value >> 32) {
        return false;
      }
      msr.tsc_aux = value;
      return true;
    case kSysenterCs:
      msr.sysenter_cs = value & 0xffff;
      return true;
    case kTsc: {
      // Writing the TSC moves TSC_ADJUST by the same amount, and the other way round (SDM
      // 17.17.3): the adjustment shows how far software has moved this CPU's TSC.
      const uint64_t new_offset = value - host_tsc();
      msr.tsc_adjust += new_offset - msr.tsc_offset;
      msr.tsc_offset = new_offset;
      return true;
    }
    case kTscAdjust:
      msr.tsc_offset += value - msr.tsc_adjust;
      msr.tsc_adjust = value;
      return true;
    case kPat:
      if (!valid_pat(value)) {
        return false;
      }
      msr.pat = value;
      flush_tlb(true);
      return true;
    case kApicBase:
      // Bits 8 (BSP), 10 (x2APIC, not offered: must stay 0), 11 (enable), 12.. the base.
      if (value & ((1u << 10) | 0xffull) || (value >> kPhysicalAddressBits)) {
        return false;
      }
      msr.apic_base = (value & ~0x100ull) | (msr.apic_base & 0x100);  // BSP is read-only
      flush_tlb(true);  // the APIC page moved or was switched off
      return true;
    case kMiscEnable:
      msr.misc_enable = value;
      return true;
    case kBiosSignId:
      return true;  // microcode revision probe: writes are ignored
    case kSpecCtrl:
      // Kept for the guest to read back; there is no speculation for IBRS to restrict.
      if (value & ~kSpecCtrlIbrs) {
        return false;
      }
      msr.spec_ctrl = value;
      return true;
    case kPredCmd:
      return (value & ~kPredCmdIbpb) == 0;  // IBPB: no predictor state to flush
    default:
      break;  // ARCH_CAPABILITIES is read-only: #GP
  }
  std::lock_guard lock(g_mtrr_mutex);
  if (uint64_t* slot = mtrr_slot(this, index)) {
    *slot = value;
    return true;
  }
  return false;
}

bool Cpu::io_permitted(uint16_t port, uint8_t size) {
  if (!protected_mode()) {
    return true;
  }
  const uint8_t iopl = (rflags >> 12) & 3;
  if (!virtual_8086() && cpl <= iopl) {
    return true;
  }
  // The TSS I/O bitmap: only 32-bit and 64-bit TSSs (available 9 / busy 11) have one.
  if (tr.code_or_data() || (tr.type() != 0x9 && tr.type() != 0xb) || tr.limit < 0x67) {
    return false;
  }
  const uint32_t map = static_cast<uint32_t>(read_system(*this, tr.base + 0x66, 2));
  const uint32_t byte = map + port / 8u;
  if (byte + 1u > tr.limit) {
    return false;
  }
  const uint32_t bits = static_cast<uint32_t>(read_system(*this, tr.base + byte, 2));
  const uint32_t need = ((1u << size) - 1u) << (port & 7);
  return (bits & need) == 0;
}

}  // namespace hv::emu
