#pragma once

#include <linux/kvm.h>
#include <pthread.h>

#include <array>
#include <atomic>
#include <map>
#include <memory>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "devices/hypercalls.hpp"
#include "vm/engine.hpp"

namespace hv::kvm {

class KvmEngine;

class KvmVcpu final : public Vcpu {
 public:
  static Result<std::unique_ptr<KvmVcpu>> create(KvmEngine& engine, uint32_t index);
  ~KvmVcpu() override;

  uint32_t index() const override { return index_; }
  Result<CpuState> state() override;
  Status set_state(const CpuState& state) override;
  void run() override;
  void kick() override;

 private:
  KvmVcpu(KvmEngine& engine, uint32_t index) : engine_(engine), index_(index) {}
  Status init();
  Status setup_cpuid();
  Status setup_local_apic();
  Status setup_fpu();

  // Returns false when the guest can no longer run (the stop has been requested).
  bool handle_exit();
  void handle_port_io();
  // A hypercall through the doorbell port: the registers in, the service's result out.
  void handle_hypercall(HypercallService& service);
  void handle_mmio();
  void report_crash(std::string reason);
  void count(uint32_t reason);

  KvmEngine& engine_;
  uint32_t index_;
  Fd fd_;
  kvm_run* run_ = nullptr;
  std::atomic<pthread_t> thread_{};
  std::atomic<bool> running_{false};
  std::array<uint64_t, 64> exit_counts_{};
  std::map<uint32_t, uint64_t> port_counts_;  // (port << 1 | is_write), only with --trace-exits
  HypercallCounts hypercall_counts_;
};

}  // namespace hv::kvm
