#include "kvm/kvm_engine.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "boot/layout.hpp"
#include "kvm/kvm_abi.hpp"
#include "kvm/kvm_vcpu.hpp"

namespace hv::kvm {

namespace {

// Where KVM keeps the three pages of the real-mode TSS and the identity-map page that VMX needs
// for unrestricted-guest-less hosts: just below the BIOS ROM, inside the 32-bit hole.
constexpr uint64_t kTssAddress = 0xfffb'd000;
constexpr uint64_t kIdentityMapAddress = 0xfffb'c000;

int ioctl_retry(int fd, unsigned long request, auto arg) {
  int rc;
  do {
    rc = ::ioctl(fd, request, arg);
  } while (rc < 0 && (errno == EINTR || errno == EAGAIN));
  return rc;
}

}  // namespace

KvmHostInfo KvmHostInfo::probe() {
  KvmHostInfo info;
  std::error_code ec;
  info.is_pvm = std::filesystem::exists("/sys/module/kvm_pvm", ec);
  return info;
}

std::string KvmHostInfo::limitations() const {
  if (!is_pvm) {
    return {};
  }
  return "hv: note: /dev/kvm on this host is the PVM nested hypervisor (kvm_pvm), not VT-x/AMD-V: "
         "guest ring-0 code is emulated by the host kernel (slow); in ring 0, int n/int3/MOVBE/"
         "XGETBV end in a KVM internal error; from ring 3, syscall raises #GP and int 0x80 shuts "
         "the guest down; vmcall hangs; 32-bit paging without long mode (legacy or PAE) faults; "
         "stock Linux kernels do not boot. Use --engine emulate for such guests.";
}

Result<std::unique_ptr<KvmEngine>> KvmEngine::create(Machine& machine, const KvmOptions& options) {
  std::unique_ptr<KvmEngine> engine(new KvmEngine(machine, options));
  HV_TRY(engine->init());
  machine.set_interrupt_sink(engine.get());
  return engine;
}

KvmEngine::~KvmEngine() {
  machine_.set_interrupt_sink(nullptr);
}

Status KvmEngine::init() {
  const std::string& path = options_.device_path;
  kvm_.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!kvm_.valid()) {
    if (errno == ENOENT) {
      return make_error(ExitStatus::NoHypervisor,
                        "{} does not exist: this host offers no KVM (load the kvm module, "
                        "or use another engine)",
                        path);
    }
    if (errno == EACCES || errno == EPERM) {
      return make_error(ExitStatus::NoHypervisor,
                        "{} is not accessible to this user (add the user to the 'kvm' group, or "
                        "use another engine)",
                        path);
    }
    return Error::from_errno(fmt::format("cannot open {}", path), ExitStatus::NoHypervisor);
  }
  int version = ::ioctl(kvm_.get(), KVM_GET_API_VERSION, 0);
  if (version < 0) {
    return make_error(ExitStatus::NoHypervisor, "{} is not a KVM device", path);
  }
  if (version != KVM_API_VERSION) {
    return make_error(ExitStatus::NoHypervisor, "{} speaks KVM API version {}, hv needs {}", path,
                      version, KVM_API_VERSION);
  }
  for (auto [cap, what] : {std::pair{KVM_CAP_IRQCHIP, "in-kernel interrupt controllers"},
                           {KVM_CAP_USER_MEMORY, "user memory regions"},
                           {KVM_CAP_PIT2, "in-kernel PIT"},
                           {KVM_CAP_IMMEDIATE_EXIT, "immediate exit"},
                           {KVM_CAP_EXT_CPUID, "KVM_GET_SUPPORTED_CPUID"}}) {
    if (::ioctl(kvm_.get(), KVM_CHECK_EXTENSION, cap) <= 0) {
      return make_error(ExitStatus::NoHypervisor, "this host's KVM lacks {} (capability {})", what,
                        cap);
    }
  }
  int mmap_size = ::ioctl(kvm_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size < static_cast<int>(sizeof(kvm_run))) {
    return Error::from_errno("KVM_GET_VCPU_MMAP_SIZE", ExitStatus::NoHypervisor);
  }
  run_mmap_size_ = static_cast<size_t>(mmap_size);

  vm_.reset(ioctl_retry(kvm_.get(), KVM_CREATE_VM, 0));
  if (!vm_.valid()) {
    return Error::from_errno("KVM_CREATE_VM", ExitStatus::NoHypervisor);
  }
  if (::ioctl(vm_.get(), KVM_SET_TSS_ADDR, kTssAddress) < 0) {
    return Error::from_errno("KVM_SET_TSS_ADDR", ExitStatus::NoHypervisor);
  }
  uint64_t identity_map = kIdentityMapAddress;
  if (::ioctl(vm_.get(), KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0) {
    return Error::from_errno("KVM_SET_IDENTITY_MAP_ADDR", ExitStatus::NoHypervisor);
  }
  // Memory slots go in before the interrupt controllers: once those have registered their
  // in-kernel I/O devices, every slot change waits for an SRCU grace period (measured here at
  // 4-12 ms, against 0.1 ms before).
  uint32_t slot = 0;
  for (const GuestMemory::Region& region : machine_.memory().regions()) {
    kvm_userspace_memory_region mr{};
    mr.slot = slot++;
    mr.guest_phys_addr = region.guest_address;
    mr.memory_size = region.size;
    mr.userspace_addr = reinterpret_cast<uint64_t>(region.host);
    if (::ioctl(vm_.get(), KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
      return Error::from_errno(
          fmt::format("KVM_SET_USER_MEMORY_REGION {:#x}+{:#x}", region.guest_address, region.size),
          ExitStatus::NoHypervisor);
    }
  }

  if (::ioctl(vm_.get(), KVM_CREATE_IRQCHIP, 0) < 0) {
    return Error::from_errno("KVM_CREATE_IRQCHIP", ExitStatus::NoHypervisor);
  }
  // The PC wiring: ISA IRQ n reaches 8259 input n and IOAPIC pin n, except the PIT's IRQ 0,
  // which is on IOAPIC pin 2 (the MP table says so, and Linux checks it).
  {
    constexpr uint32_t kIoApicPins = 24;
    std::vector<kvm_irq_routing_entry> entries;
    for (uint32_t gsi = 0; gsi < kIoApicPins; ++gsi) {
      if (gsi < 16) {
        kvm_irq_routing_entry pic{};
        pic.gsi = gsi;
        pic.type = KVM_IRQ_ROUTING_IRQCHIP;
        pic.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
        pic.u.irqchip.pin = gsi % 8;
        entries.push_back(pic);
      }
      if (gsi == 2) {
        continue;  // the cascade: pin 2 belongs to IRQ 0
      }
      kvm_irq_routing_entry ioapic{};
      ioapic.gsi = gsi;
      ioapic.type = KVM_IRQ_ROUTING_IRQCHIP;
      ioapic.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
      ioapic.u.irqchip.pin = gsi == 0 ? 2 : gsi;
      entries.push_back(ioapic);
    }
    FlexBuffer<kvm_irq_routing_entry> routing{std::span<const kvm_irq_routing_entry>(entries)};
    if (::ioctl(vm_.get(), kSetGsiRouting, routing.data()) < 0) {
      return Error::from_errno("KVM_SET_GSI_ROUTING", ExitStatus::NoHypervisor);
    }
  }
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (::ioctl(vm_.get(), KVM_CREATE_PIT2, &pit) < 0) {
    return Error::from_errno("KVM_CREATE_PIT2", ExitStatus::NoHypervisor);
  }

  for (int capacity = 128; capacity <= 4096; capacity *= 2) {
    FlexBuffer<kvm_cpuid_entry2> cpuid(static_cast<size_t>(capacity));
    if (::ioctl(kvm_.get(), kGetSupportedCpuid, cpuid.data()) == 0) {
      supported_cpuid_ = cpuid.entries();
      break;
    }
    if (errno != E2BIG) {
      return Error::from_errno("KVM_GET_SUPPORTED_CPUID", ExitStatus::NoHypervisor);
    }
  }
  if (supported_cpuid_.empty()) {
    return make_error(ExitStatus::NoHypervisor, "KVM_GET_SUPPORTED_CPUID returned no leaves");
  }
  return {};
}

Result<std::unique_ptr<Vcpu>> KvmEngine::create_vcpu(uint32_t index) {
  return HV_TRY(KvmVcpu::create(*this, index));
}

void KvmEngine::set_irq_line(uint32_t gsi, bool level) {
  kvm_irq_level irq{};
  irq.irq = gsi;
  irq.level = level ? 1 : 0;
  ioctl_retry(vm_.get(), KVM_IRQ_LINE, &irq);
}

std::vector<ExitCount> KvmEngine::exit_counts() const {
  return counters_.snapshot(true);
}

Result<bool> KvmEngine::add_mmio_doorbell(uint64_t address, uint32_t length,
                                          std::optional<uint64_t> value, int event_fd) {
  kvm_ioeventfd doorbell{};
  doorbell.addr = address;
  doorbell.len = length;
  doorbell.fd = event_fd;
  if (value) {
    doorbell.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    doorbell.datamatch = *value;
  }
  if (::ioctl(vm_.get(), KVM_IOEVENTFD, &doorbell) != 0) {
    return Error::from_errno(
        fmt::format("cannot make MMIO {:#x} (+{}) a doorbell (KVM_IOEVENTFD)", address, length));
  }
  return true;
}

Result<bool> KvmEngine::add_interrupt_event(uint32_t gsi, int event_fd) {
  kvm_irqfd route{};
  route.fd = static_cast<uint32_t>(event_fd);
  route.gsi = gsi;
  if (::ioctl(vm_.get(), KVM_IRQFD, &route) != 0) {
    return Error::from_errno(fmt::format("cannot route an eventfd to GSI {} (KVM_IRQFD)", gsi));
  }
  return true;
}

}  // namespace hv::kvm
