#include "kvm/kvm_vcpu.hpp"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cstring>
#include <mutex>

#include "boot/layout.hpp"
#include "kvm/kvm_abi.hpp"
#include "kvm/kvm_engine.hpp"

namespace hv::kvm {

namespace {

// A signal that interrupts KVM_RUN: its handler does nothing, it only makes the ioctl return
// EINTR. Installed once per process without SA_RESTART.
int kick_signal() {
  static const int signal_number = [] {
    int sig = SIGRTMIN + 1;
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
    return sig;
  }();
  return signal_number;
}

const char* exit_reason_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_UNKNOWN:
      return "unknown";
    case KVM_EXIT_EXCEPTION:
      return "exception";
    case KVM_EXIT_IO:
      return "port I/O";
    case KVM_EXIT_HYPERCALL:
      return "hypercall";
    case KVM_EXIT_DEBUG:
      return "debug";
    case KVM_EXIT_HLT:
      return "hlt";
    case KVM_EXIT_MMIO:
      return "MMIO";
    case KVM_EXIT_IRQ_WINDOW_OPEN:
      return "irq window open";
    case KVM_EXIT_SHUTDOWN:
      return "shutdown (triple fault)";
    case KVM_EXIT_FAIL_ENTRY:
      return "VM entry failure";
    case KVM_EXIT_INTR:
      return "interrupted by signal";
    case KVM_EXIT_SET_TPR:
      return "set TPR";
    case KVM_EXIT_TPR_ACCESS:
      return "TPR access";
    case KVM_EXIT_NMI:
      return "NMI";
    case KVM_EXIT_INTERNAL_ERROR:
      return "KVM internal error";
    case KVM_EXIT_SYSTEM_EVENT:
      return "system event";
    case KVM_EXIT_IOAPIC_EOI:
      return "IOAPIC EOI";
    default:
      return nullptr;
  }
}

const char* internal_error_name(uint32_t suberror) {
  switch (suberror) {
    case KVM_INTERNAL_ERROR_EMULATION:
      return "instruction emulation failed";
    case KVM_INTERNAL_ERROR_SIMUL_EX:
      return "exception while delivering an exception";
    case KVM_INTERNAL_ERROR_DELIVERY_EV:
      return "VM exit while delivering an event";
    default:
      return "unknown internal error";
  }
}

Segment from_kvm(const kvm_segment& k) {
  Segment s;
  s.base = k.base;
  s.limit = k.limit;
  s.selector = k.selector;
  s.type = k.type;
  s.present = k.present;
  s.dpl = k.dpl;
  s.default_big = k.db;
  s.system_or_code_data = k.s;
  s.long_mode = k.l;
  s.granularity = k.g;
  s.avl = k.avl;
  s.unusable = k.unusable;
  return s;
}

kvm_segment to_kvm(const Segment& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.default_big;
  k.s = s.system_or_code_data;
  k.l = s.long_mode;
  k.g = s.granularity;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}

}  // namespace

Result<std::unique_ptr<KvmVcpu>> KvmVcpu::create(KvmEngine& engine, uint32_t index) {
  std::unique_ptr<KvmVcpu> vcpu(new KvmVcpu(engine, index));
  HV_TRY(vcpu->init());
  return vcpu;
}

KvmVcpu::~KvmVcpu() {
  if (run_ != nullptr) {
    ::munmap(run_, engine_.run_mmap_size());
  }
}

Status KvmVcpu::init() {
  kick_signal();
  fd_.reset(::ioctl(engine_.vm_fd(), KVM_CREATE_VCPU, index_));
  if (!fd_.valid()) {
    return Error::from_errno(fmt::format("KVM_CREATE_VCPU {}", index_), ExitStatus::NoHypervisor);
  }
  void* p =
      ::mmap(nullptr, engine_.run_mmap_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED) {
    return Error::from_errno("mmap of the vCPU run area", ExitStatus::HostError);
  }
  run_ = static_cast<kvm_run*>(p);
  HV_TRY(setup_cpuid());
  HV_TRY(setup_local_apic());
  HV_TRY(setup_fpu());
  return {};
}

Status KvmVcpu::setup_cpuid() {
  std::vector<kvm_cpuid_entry2> entries = engine_.supported_cpuid();
  const uint32_t apic_id = index_;
  const uint32_t cpu_count = engine_.machine().config().cpu_count;
  // The guest sees one package of cpu_count cores, one thread each, whatever the host has:
  // guests size their CPU loops from these fields, not from the MP table alone.
  uint32_t core_bits = 0;
  while ((1u << core_bits) < cpu_count) {
    ++core_bits;
  }
  for (kvm_cpuid_entry2& e : entries) {
    switch (e.function) {
      case 1:
        // Initial APIC ID, logical processors per package, and "running under a hypervisor".
        e.ebx = (e.ebx & 0x0000ffff) | (apic_id << 24) | ((cpu_count & 0xff) << 16);
        e.edx = cpu_count > 1 ? (e.edx | (1u << 28)) : (e.edx & ~(1u << 28));  // HTT
        e.ecx |= 1u << 31;
        break;
      case 4:
        // Cores per package - 1 in bits 31:26; keep the cache description.
        e.eax = (e.eax & 0x03ffffff) | (((1u << core_bits) - 1) << 26);
        break;
      case 0xb:
      case 0x1f:
        if (e.index == 0) {  // SMT level: one thread per core
          e.eax = 0;
          e.ebx = 1;
          e.ecx = 1u << 8;
        } else if (e.index == 1) {  // core level
          e.eax = core_bits;
          e.ebx = cpu_count;
          e.ecx = (2u << 8) | 1;
        } else {
          e.eax = e.ebx = 0;
          e.ecx = e.index;
        }
        e.edx = apic_id;  // x2APIC ID
        break;
      default:
        break;
    }
  }
  // hv's hypercall leaves (devices/hypercalls.hpp), above KVM's own at 0x40000000. KVM keeps
  // VMCALL for its own hypercalls, so only the doorbell port is advertised here.
  if (engine_.machine().hypercalls() != nullptr) {
    std::erase_if(entries, [](const kvm_cpuid_entry2& e) {
      return e.function == hypercall::kCpuidBaseLeaf || e.function == hypercall::kCpuidFeaturesLeaf;
    });
    for (uint32_t leaf : {hypercall::kCpuidBaseLeaf, hypercall::kCpuidFeaturesLeaf}) {
      const hypercall::CpuidLeaf hv = *hypercall::cpuid_leaf(leaf, false);
      kvm_cpuid_entry2 e{};
      e.function = leaf;
      e.eax = hv.eax;
      e.ebx = hv.ebx;
      e.ecx = hv.ecx;
      e.edx = hv.edx;
      entries.push_back(e);
    }
  }
  FlexBuffer<kvm_cpuid_entry2> cpuid{std::span<const kvm_cpuid_entry2>(entries)};
  if (::ioctl(fd_.get(), kSetCpuid2, cpuid.data()) < 0) {
    return Error::from_errno("KVM_SET_CPUID2", ExitStatus::NoHypervisor);
  }
  return {};
}

Status KvmVcpu::setup_local_apic() {
  // As on a PC: the 8259's output enters through LINT0 (ExtINT), NMIs through LINT1.
  kvm_lapic_state lapic{};
  if (::ioctl(fd_.get(), KVM_GET_LAPIC, &lapic) < 0) {
    return Error::from_errno("KVM_GET_LAPIC", ExitStatus::NoHypervisor);
  }
  auto set_lvt = [&](size_t offset, uint32_t delivery_mode) {
    uint32_t value;
    std::memcpy(&value, lapic.regs + offset, 4);
    value = (value & ~0x700u & ~(1u << 16)) | (delivery_mode << 8);
    std::memcpy(lapic.regs + offset, &value, 4);
  };
  constexpr size_t kLvtLint0 = 0x350, kLvtLint1 = 0x360;
  set_lvt(kLvtLint0, 7);  // ExtINT
  set_lvt(kLvtLint1, 4);  // NMI
  if (::ioctl(fd_.get(), KVM_SET_LAPIC, &lapic) < 0) {
    return Error::from_errno("KVM_SET_LAPIC", ExitStatus::NoHypervisor);
  }
  return {};
}

Status KvmVcpu::setup_fpu() {
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;  // FNINIT state
  fpu.mxcsr = 0x1f80;
  if (::ioctl(fd_.get(), KVM_SET_FPU, &fpu) < 0) {
    return Error::from_errno("KVM_SET_FPU", ExitStatus::NoHypervisor);
  }
  return {};
}

Result<CpuState> KvmVcpu::state() {
  kvm_regs regs{};
  kvm_sregs sregs{};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &regs) < 0) {
    return Error::from_errno("KVM_GET_REGS");
  }
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &sregs) < 0) {
    return Error::from_errno("KVM_GET_SREGS");
  }
  CpuState s;
  s.gpr = {regs.rax, regs.rcx, regs.rdx, regs.rbx, regs.rsp, regs.rbp, regs.rsi, regs.rdi,
           regs.r8,  regs.r9,  regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15};
  s.rip = regs.rip;
  s.rflags = regs.rflags;
  s.cs = from_kvm(sregs.cs);
  s.ds = from_kvm(sregs.ds);
  s.es = from_kvm(sregs.es);
  s.fs = from_kvm(sregs.fs);
  s.gs = from_kvm(sregs.gs);
  s.ss = from_kvm(sregs.ss);
  s.tr = from_kvm(sregs.tr);
  s.ldt = from_kvm(sregs.ldt);
  s.gdt = {sregs.gdt.base, sregs.gdt.limit};
  s.idt = {sregs.idt.base, sregs.idt.limit};
  s.cr0 = sregs.cr0;
  s.cr2 = sregs.cr2;
  s.cr3 = sregs.cr3;
  s.cr4 = sregs.cr4;
  s.cr8 = sregs.cr8;
  s.efer = sregs.efer;
  return s;
}

Status KvmVcpu::set_state(const CpuState& s) {
  kvm_sregs sregs{};
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &sregs) < 0) {
    return Error::from_errno("KVM_GET_SREGS");
  }
  sregs.cs = to_kvm(s.cs);
  sregs.ds = to_kvm(s.ds);
  sregs.es = to_kvm(s.es);
  sregs.fs = to_kvm(s.fs);
  sregs.gs = to_kvm(s.gs);
  sregs.ss = to_kvm(s.ss);
  sregs.tr = to_kvm(s.tr);
  sregs.ldt = to_kvm(s.ldt);
  sregs.gdt.base = s.gdt.base;
  sregs.gdt.limit = s.gdt.limit;
  sregs.idt.base = s.idt.base;
  sregs.idt.limit = s.idt.limit;
  sregs.cr0 = s.cr0;
  sregs.cr2 = s.cr2;
  sregs.cr3 = s.cr3;
  sregs.cr4 = s.cr4;
  sregs.cr8 = s.cr8;
  sregs.efer = s.efer;
  if (::ioctl(fd_.get(), KVM_SET_SREGS, &sregs) < 0) {
    return Error::from_errno("KVM_SET_SREGS");
  }
  kvm_regs regs{};
  const auto& g = s.gpr;
  regs.rax = g[kRax];
  regs.rcx = g[kRcx];
  regs.rdx = g[kRdx];
  regs.rbx = g[kRbx];
  regs.rsp = g[kRsp];
  regs.rbp = g[kRbp];
  regs.rsi = g[kRsi];
  regs.rdi = g[kRdi];
  regs.r8 = g[kR8];
  regs.r9 = g[kR9];
  regs.r10 = g[kR10];
  regs.r11 = g[kR11];
  regs.r12 = g[kR12];
  regs.r13 = g[kR13];
  regs.r14 = g[kR14];
  regs.r15 = g[kR15];
  regs.rip = s.rip;
  regs.rflags = s.rflags;
  if (::ioctl(fd_.get(), KVM_SET_REGS, &regs) < 0) {
    return Error::from_errno("KVM_SET_REGS");
  }
  return {};
}

void KvmVcpu::kick() {
  // immediate_exit covers a kick that lands before the thread enters KVM_RUN; the signal covers
  // one that lands while the thread is inside it.
  __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (running_.load(std::memory_order_acquire)) {
    pthread_kill(thread_.load(), kick_signal());
  }
}

void KvmVcpu::count(uint32_t reason) {
  exit_counts_[reason < exit_counts_.size() ? reason : exit_counts_.size() - 1]++;
}

void KvmVcpu::run() {
  thread_.store(pthread_self());
  running_.store(true, std::memory_order_release);
  StopControl& stop = engine_.machine().stop();
  // The kick signal must be deliverable on this thread.
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, kick_signal());
  pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);

  while (!stop.stopping()) {
    int rc = ::ioctl(fd_.get(), KVM_RUN, 0);
    if (rc < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        count(KVM_EXIT_INTR);
        continue;
      }
      stop.request({StopKind::HostError,
                    to_int(ExitStatus::HostError),
                    fmt::format("vCPU {}: KVM_RUN failed: {}", index_, std::strerror(errno)),
                    {}});
      break;
    }
    count(run_->exit_reason);
    if (!handle_exit()) {
      break;
    }
  }
  running_.store(false, std::memory_order_release);

  std::vector<ExitCount> counts;
  for (uint32_t reason = 0; reason < exit_counts_.size(); ++reason) {
    if (exit_counts_[reason] != 0) {
      const char* name = exit_reason_name(reason);
      counts.push_back(
          {name != nullptr ? name : fmt::format("exit reason {}", reason), exit_counts_[reason]});
    }
  }
  hypercall_counts_.append_to(counts);
  for (auto [key, n] : port_counts_) {
    counts.push_back({fmt::format("  port {:#06x} {}", key >> 1, (key & 1) ? "out" : "in"), n});
  }
  engine_.counters().add(counts);
}

bool KvmVcpu::handle_exit() {
  switch (run_->exit_reason) {
    case KVM_EXIT_IO:
      handle_port_io();
      return true;
    case KVM_EXIT_MMIO:
      handle_mmio();
      return true;
    case KVM_EXIT_HLT:
      // Only without an in-kernel LAPIC; ours has one, so this is a CPU halted for good.
      report_crash("halted with interrupts unavailable (KVM_EXIT_HLT)");
      return false;
    case KVM_EXIT_INTR:
      return true;
    case KVM_EXIT_IRQ_WINDOW_OPEN:
      return true;
    case KVM_EXIT_SHUTDOWN:
      report_crash("guest triple fault (KVM_EXIT_SHUTDOWN)");
      return false;
    case KVM_EXIT_INTERNAL_ERROR: {
      std::string extra;
      for (uint32_t i = 0; i < run_->internal.ndata && i < 16; ++i) {
        extra += fmt::format(" {:#x}", run_->internal.data[i]);
      }
      report_crash(fmt::format("KVM internal error: {} (suberror {}{}{})",
                               internal_error_name(run_->internal.suberror),
                               run_->internal.suberror, extra.empty() ? "" : ", data", extra));
      return false;
    }
    case KVM_EXIT_FAIL_ENTRY:
      report_crash(fmt::format("VM entry failed, hardware reason {:#x}",
                               run_->fail_entry.hardware_entry_failure_reason));
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run_->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
          engine_.machine().stop().request({StopKind::PowerOff, 0, "guest powered off", {}});
          return false;
        case KVM_SYSTEM_EVENT_RESET:
          engine_.machine().stop().request({StopKind::Reset, 0, "guest reset", {}});
          return false;
        default:
          report_crash(fmt::format("guest system event {}", run_->system_event.type));
          return false;
      }
    default: {
      const char* name = exit_reason_name(run_->exit_reason);
      report_crash(fmt::format("unexpected VM exit: {}",
                               name != nullptr ? name : std::to_string(run_->exit_reason)));
      return false;
    }
  }
}

void KvmVcpu::handle_port_io() {
  auto& io = run_->io;
  auto* data = reinterpret_cast<uint8_t*>(run_) + io.data_offset;
  const IoBus& bus = engine_.machine().pio();
  const bool is_write = io.direction == KVM_EXIT_IO_OUT;
  if (engine_.options().trace_exits) {
    port_counts_[(static_cast<uint32_t>(io.port) << 1) | (is_write ? 1 : 0)]++;
  }
  // A single 32-bit write to the doorbell is a hypercall (string I/O, which KVM batches, is not).
  if (io.port == hypercall::kDoorbellPort && is_write && io.size == hypercall::kDoorbellWidth &&
      io.count == 1) {
    if (HypercallService* service = engine_.machine().hypercalls()) {
      handle_hypercall(*service);
      return;
    }
  }
  // KVM guarantees data_offset + size * count lies inside the run area (string I/O batches).
  for (uint32_t i = 0; i < io.count; ++i) {
    std::span<uint8_t> bytes(data + static_cast<size_t>(i) * io.size, io.size);
    if (is_write) {
      bus.write(io.port, bytes);
    } else {
      bus.read(io.port, bytes);
    }
  }
}

void KvmVcpu::handle_hypercall(HypercallService& service) {
  // KVM has not yet moved RIP past the OUT (it does so on the next KVM_RUN, when RIP is still the
  // one it saw), so the registers go back with RIP unchanged.
  kvm_regs regs{};
  kvm_sregs sregs{};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &regs) < 0 ||
      ::ioctl(fd_.get(), KVM_GET_SREGS, &sregs) < 0) {
    engine_.machine().stop().request(
        {StopKind::HostError,
         to_int(ExitStatus::HostError),
         fmt::format("vCPU {}: cannot read the registers of a hypercall: {}", index_,
                     std::strerror(errno)),
         {}});
    return;
  }
  HypercallFrame frame;
  frame.wide = sregs.cs.l != 0 && (sregs.efer & efer::kLMA) != 0;
  frame.rax = regs.rax;
  frame.rbx = regs.rbx;
  frame.rcx = regs.rcx;
  frame.rdx = regs.rdx;
  frame.rsi = regs.rsi;
  frame.rdi = regs.rdi;
  hypercall_counts_.count(frame.number());
  service.dispatch(frame);
  regs.rax = frame.rax;
  regs.rdx = frame.rdx;
  if (::ioctl(fd_.get(), KVM_SET_REGS, &regs) < 0) {
    engine_.machine().stop().request(
        {StopKind::HostError,
         to_int(ExitStatus::HostError),
         fmt::format("vCPU {}: cannot write the result of a hypercall: {}", index_,
                     std::strerror(errno)),
         {}});
  }
}

void KvmVcpu::handle_mmio() {
  auto& mmio = run_->mmio;
  uint32_t len = mmio.len <= sizeof(mmio.data) ? mmio.len : sizeof(mmio.data);
  std::span<uint8_t> bytes(mmio.data, len);
  if (mmio.is_write) {
    engine_.machine().mmio().write(mmio.phys_addr, bytes);
  } else {
    engine_.machine().mmio().read(mmio.phys_addr, bytes);
  }
}

void KvmVcpu::report_crash(std::string reason) {
  std::string dump;
  if (auto s = state(); s.ok()) {
    dump = s->dump();
  }
  engine_.machine().stop().request({StopKind::GuestCrash, to_int(ExitStatus::GuestCrashed),
                                    fmt::format("vCPU {}: {}", index_, reason), dump});
}

}  // namespace hv::kvm
