// The emulation engine: each vCPU is a software x86-64 CPU (Cpu + decoded-block cache) on its
// own host thread. The interrupt controllers and timers are the software ones in src/devices;
// every other device is the Machine's, the same objects the KVM engine uses.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "devices/interrupt_router.hpp"
#include "devices/timer_service.hpp"
#include "emu/cpu.hpp"
#include "emu/profiler.hpp"
#include "emu/tracer.hpp"
#include "vm/engine.hpp"

namespace hv::emu {

class EmuVcpu;

struct EmuOptions {
  std::string trace_path;    // empty: no trace; "-": standard error
  std::string profile_path;  // empty: no profile
  bool trace_exits = false;  // count port I/O per port as well (--trace-exits)
};

class EmuEngine final : public Engine {
 public:
  static Result<std::unique_ptr<EmuEngine>> create(Machine& machine,
                                                   const EmuOptions& options = {});
  ~EmuEngine() override;

  std::string_view name() const override { return "emulate"; }
  Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t index) override;
  std::vector<ExitCount> exit_counts() const override;
  void set_irq_line(uint32_t gsi, bool level) override { router_->set_irq_line(gsi, level); }

 private:
  explicit EmuEngine(Machine& machine);

  Machine& machine_;
  TimerService timers_;
  CodePages code_pages_;
  std::unique_ptr<InterruptRouter> router_;
  ExitCounters counters_;
  bool trace_exits_ = false;
  std::unique_ptr<Tracer> tracer_;
  std::unique_ptr<Profiler> profiler_;  // destroyed (and written) before the vCPUs' counters

  friend class EmuVcpu;
};

}  // namespace hv::emu
