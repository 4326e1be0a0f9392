// The hardware-assisted engine: each vCPU is a KVM vCPU on its own host thread. KVM runs the
// interrupt controllers and the PIT in the kernel; every other device is the Machine's, reached
// through port-I/O and MMIO exits.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "vm/engine.hpp"

namespace hv::kvm {

struct KvmOptions {
  bool trace_exits = false;  // count port-I/O exits per port as well as per reason
  std::string device_path = "/dev/kvm";
};

// What the host's /dev/kvm is; PVM (a nested paravirtual KVM) cannot run everything.
struct KvmHostInfo {
  bool is_pvm = false;
  static KvmHostInfo probe();
  // One paragraph for stderr, naming what will not work on this host; empty when nothing.
  std::string limitations() const;
};

class KvmVcpu;

class KvmEngine final : public Engine {
 public:
  static Result<std::unique_ptr<KvmEngine>> create(Machine& machine, const KvmOptions& options);
  ~KvmEngine() override;

  std::string_view name() const override { return "kvm"; }
  Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t index) override;
  std::vector<ExitCount> exit_counts() const override;
  void set_irq_line(uint32_t gsi, bool level) override;
  Result<bool> add_mmio_doorbell(uint64_t address, uint32_t length, std::optional<uint64_t> value,
                                 int event_fd) override;
  Result<bool> add_interrupt_event(uint32_t gsi, int event_fd) override;

  Machine& machine() { return machine_; }
  const KvmOptions& options() const { return options_; }
  int vm_fd() const { return vm_.get(); }
  size_t run_mmap_size() const { return run_mmap_size_; }
  const std::vector<kvm_cpuid_entry2>& supported_cpuid() const { return supported_cpuid_; }

  // vCPU threads add their counts here when they finish.
  ExitCounters& counters() { return counters_; }

 private:
  KvmEngine(Machine& machine, const KvmOptions& options) : machine_(machine), options_(options) {}
  Status init();

  Machine& machine_;
  KvmOptions options_;
  Fd kvm_;
  Fd vm_;
  size_t run_mmap_size_ = 0;
  std::vector<kvm_cpuid_entry2> supported_cpuid_;
  ExitCounters counters_;
};

}  // namespace hv::kvm
