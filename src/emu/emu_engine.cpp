#include "emu/emu_engine.hpp"

#include <algorithm>
#include <condition_variable>
#include <map>

#include <fmt/format.h>

#include "emu/block_cache.hpp"

namespace hv::emu {

class EmuVcpu final : public Vcpu, public CpuSignals {
 public:
  EmuVcpu(EmuEngine& engine, uint32_t index)
      : engine_(engine),
        cpu_(engine.machine_, engine.code_pages_, index),
        blocks_(engine.code_pages_) {
    LocalApic& apic = engine.router_->local_apic(index);
    apic_ = &apic;
    cpu_.local_apic = &apic;
    // Application processors sleep until the BSP sends them INIT and STARTUP.
    waiting_for_sipi_ = index != 0;
    apic.set_cpu_signals(this);
    if (engine.trace_exits_) {
      cpu_.port_counts = std::make_unique<std::map<uint32_t, uint64_t>>();
    }
    if (engine.profiler_) {
      profile_ = &engine.profiler_->add_vcpu([this] {
        sample_due_.store(true, std::memory_order_relaxed);
        attention_.store(true, std::memory_order_release);  // no wake-up: a sleeper answers later
      });
    }
  }
  ~EmuVcpu() override {
    if (profile_ != nullptr) {
      engine_.profiler_->stop();  // its sampler calls into this vCPU
    }
    apic_->set_cpu_signals(nullptr);
  }

  uint32_t index() const override { return cpu_.index(); }
  Result<CpuState> state() override { return cpu_.save_state(); }
  Status set_state(const CpuState& state) override {
    cpu_.load_state(state);
    return {};
  }
  void run() override;
  void kick() override { signal(); }

  // CpuSignals, called by the local APIC from any thread.
  void interrupt_pending() override { signal(); }
  void nmi() override { signal(); }
  void init() override {
    init_pending_.store(true, std::memory_order_release);
    signal();
  }
  void startup(uint8_t vector) override {
    sipi_vector_.store(vector, std::memory_order_relaxed);
    sipi_pending_.store(true, std::memory_order_release);
    signal();
  }

 private:
  void signal() {
    attention_.store(true, std::memory_order_release);
    std::lock_guard lock(sleep_mutex_);
    sleep_cv_.notify_all();
  }
  // Handles everything that may happen between blocks; returns false when the vCPU must stop.
  bool service_events();
  // Runs blocks back to back until one needs the event checks of run() or an event arrives.
  template <bool Traced>
  void run_blocks();
  void deliver(uint8_t vector, bool has_error_code, uint32_t error_code, bool external) {
    if (engine_.tracer_) [[unlikely]] {
      engine_.tracer_->event(cpu_, vector, has_error_code, error_code, external);
    }
    cpu_.deliver_interrupt(vector, has_error_code, error_code, false, external);
  }
  // The block at CS:RIP, through the links of the block that ran before it when possible.
  [[gnu::always_inline]] inline Block& next_block();
  Block& lookup_block(Block* previous, uint64_t linear, uint64_t epoch);
  void report_crash(const std::string& reason);
  uint64_t retired_before_fault() const;
  void sleep_until_signalled();

  EmuEngine& engine_;
  Cpu cpu_;
  BlockCache blocks_;
  LocalApic* apic_ = nullptr;
  std::atomic<bool> attention_{true};
  std::atomic<bool> init_pending_{false};
  std::atomic<bool> sipi_pending_{false};
  std::atomic<uint8_t> sipi_vector_{0};
  bool waiting_for_sipi_ = false;
  bool interrupts_possible_ = true;  // re-check the APIC at block boundaries while true
  std::mutex sleep_mutex_;
  std::condition_variable sleep_cv_;
  Block* previous_ = nullptr;  // the block that just ran, for chaining
  uint64_t previous_epoch_ = 0;
  // The running block and the RIP it started at: a fault counts the instructions before the
  // faulting one (the one at cpu_.rip) from these.
  const Block* running_ = nullptr;
  uint64_t running_rip_ = 0;
  uint64_t interrupts_delivered_ = 0;
  uint64_t exceptions_delivered_ = 0;
  Profiler::Slot* profile_ = nullptr;
  std::atomic<bool> sample_due_{false};
};

void EmuVcpu::sleep_until_signalled() {
  std::unique_lock lock(sleep_mutex_);
  sleep_cv_.wait(lock, [&] { return attention_.load(std::memory_order_acquire); });
}

bool EmuVcpu::service_events() {
  attention_.store(false, std::memory_order_relaxed);
  if (profile_ != nullptr && sample_due_.exchange(false, std::memory_order_relaxed)) {
    Profiler::record(*profile_, cpu_.seg[kCs].base + cpu_.rip);
  }
  previous_ = nullptr;  // an event may redirect execution: no chaining across it
  if (engine_.machine_.stop().stopping()) {
    return false;
  }
  if (init_pending_.exchange(false, std::memory_order_acq_rel)) {
    CpuState reset;
    reset.ds.type = reset.es.type = reset.fs.type = reset.gs.type = reset.ss.type = 0x3;
    reset.cs.type = 0xb;
    cpu_.load_state(reset);
    cpu_.halted = false;
    waiting_for_sipi_ = true;
  }
  if (sipi_pending_.exchange(false, std::memory_order_acq_rel) && waiting_for_sipi_) {
    const uint8_t vector = sipi_vector_.load(std::memory_order_relaxed);
    CpuState start = CpuState::real_mode(static_cast<uint16_t>(vector << 8), 0);
    cpu_.load_state(start);
    waiting_for_sipi_ = false;
  }
  if (waiting_for_sipi_) {
    return true;
  }
  if (apic_->take_nmi()) {
    cpu_.halted = false;
    deliver(kNmi, false, 0, true);
  }
  interrupts_possible_ = false;
  if (apic_->has_interrupt()) {
    if ((cpu_.rflags & flag::kIF) && !cpu_.interrupt_shadow) {
      int vector = apic_->acknowledge();
      if (vector >= 0) {
        cpu_.halted = false;
        deliver(static_cast<uint8_t>(vector), false, 0, true);
        ++interrupts_delivered_;
      }
    }
    // Another interrupt may be waiting, or this one is blocked by IF or an STI/MOV SS shadow:
    // look again at the next block boundary.
    interrupts_possible_ = true;
  }
  return true;
}

uint64_t EmuVcpu::retired_before_fault() const {
  if (running_ == nullptr) {
    return 0;
  }
  // Instructions of a block lie at distinct offsets (a block never crosses a page), so the
  // faulting one is found by walking the lengths from the block's start.
  // Only a block's last instruction may move RIP itself before faulting (far transfers): when
  // no start matches, that one faulted.
  uint64_t rip = running_rip_;
  const size_t size = running_->insns.size();
  for (size_t i = 0; i < size; ++i) {
    if (rip == cpu_.rip) {
      return i;
    }
    rip = (rip + running_->insns[i].length) & running_->rip_mask;
  }
  return size - 1;
}

void EmuVcpu::report_crash(const std::string& reason) {
  engine_.machine_.stop().request({StopKind::GuestCrash, to_int(ExitStatus::GuestCrashed),
                                   fmt::format("vCPU {}: {}", cpu_.index(), reason),
                                   cpu_.save_state().dump()});
}

Block& EmuVcpu::next_block() {
  const uint64_t linear = cpu_.seg[kCs].base + cpu_.rip;
  const uint64_t epoch = cpu_.translation_epoch();
  Block* const previous = previous_;
  previous_ = nullptr;  // a fault below must not chain to whatever runs next
  if (previous != nullptr) [[likely]] {
    for (Block::Link& link : previous->links) {
      if (link.linear == linear && link.epoch == epoch) {
        // Read the counter before the check: a write racing with it leaves the stamp old.
        const uint64_t invalidations = blocks_.invalidations();
        if (link.checked_at == invalidations) [[likely]] {
          return *link.target;
        }
        if (blocks_.valid(*link.target)) {
          link.checked_at = invalidations;
          return *link.target;
        }
      }
    }
  }
  return lookup_block(previous, linear, epoch);
}

Block& EmuVcpu::lookup_block(Block* previous, uint64_t linear, uint64_t epoch) {
  const uint64_t invalidations = blocks_.invalidations();
  Block& block = blocks_.lookup(cpu_);
  if (previous != nullptr && previous_epoch_ == epoch) {
    // Remember this successor in the free (or least recent) link slot of the previous block.
    Block::Link& slot = previous->links[previous->links[0].target == nullptr ? 0 : 1];
    slot = {&block, linear, epoch, invalidations};
  }
  // The lookup may have turned pages into code pages (here or on another vCPU): writes to them
  // must leave the TLB fast path so they invalidate the decoded blocks.
  cpu_.sync_code_generation();
  return block;
}

template <bool Traced>
void EmuVcpu::run_blocks() {
  // Another vCPU may have turned pages into code pages since this one last looked.
  cpu_.sync_code_generation();
  Block* block = &next_block();
  for (;;) {
    uint64_t rip = cpu_.rip;
    const uint64_t rip_mask = block->rip_mask;
    cpu_.interrupt_shadow = false;
    // HLT, like every instruction that changes how execution continues, ends its block, so the
    // loop needs no per-instruction check. Instructions are counted per block; a fault counts
    // the ones before it (see run()).
    const Insn* insn = block->insns.data();
    const Insn* const end = insn + block->insns.size();
    running_ = block;
    running_rip_ = rip;
    // Each position in a block has its own indirect call site (the steps below are not a loop):
    // a block's n-th instruction is nearly always the same handler, so the host's branch
    // predictor gets each site right, where one shared call site would mispredict constantly.
#define HV_EMU_STEP                                   \
  if (insn == end) {                                  \
    goto done;                                        \
  }                                                   \
  cpu_.rip = rip;                                     \
  if constexpr (Traced) {                             \
    engine_.tracer_->instruction(cpu_, insn->length); \
  }                                                   \
  cpu_.next_rip = (rip + insn->length) & rip_mask;    \
  insn->handler(cpu_, *insn);                         \
  rip = cpu_.next_rip;                                \
  ++insn;
    for (;;) {
      HV_EMU_STEP HV_EMU_STEP HV_EMU_STEP HV_EMU_STEP HV_EMU_STEP HV_EMU_STEP HV_EMU_STEP
          HV_EMU_STEP HV_EMU_STEP HV_EMU_STEP HV_EMU_STEP HV_EMU_STEP HV_EMU_STEP HV_EMU_STEP
              HV_EMU_STEP HV_EMU_STEP
    }
#undef HV_EMU_STEP
  done:
    cpu_.instructions_retired += block->instruction_count;
    running_ = nullptr;  // a fault while finding the next block retires nothing more
    cpu_.rip = rip;
    previous_ = block;
    previous_epoch_ = cpu_.translation_epoch();
    // Pending events (interrupts, INIT/SIPI, stop) and instructions after which they must be
    // looked at send execution back to run(); otherwise the next block follows directly.
    if (!block->continues || interrupts_possible_ || attention_.load(std::memory_order_relaxed)) {
      return;
    }
    block = &next_block();
  }
}

void EmuVcpu::run() {
  StopControl& stop = engine_.machine_.stop();
  if (profile_ != nullptr) {
    engine_.profiler_->start();  // every vCPU exists once they run
  }
  while (!stop.stopping()) {
    if (attention_.load(std::memory_order_acquire) || interrupts_possible_) {
      // Event delivery handles faults it meets itself (double fault, then triple fault): it
      // never throws, so no handler is needed here.
      if (!service_events()) {
        break;
      }
      if (cpu_.triple_faulted) {
        report_crash("guest triple fault (shutdown)");
        break;
      }
    }
    if (waiting_for_sipi_ || cpu_.halted) {
      // HLT sleeps until an interrupt, NMI, INIT/SIPI or stop: no busy waiting.
      if (!cpu_.halted || !(cpu_.rflags & flag::kIF) || !apic_->has_interrupt()) {
        sleep_until_signalled();
      }
      interrupts_possible_ = true;
      continue;
    }
    try {
      if (engine_.tracer_) [[unlikely]] {
        run_blocks<true>();
      } else {
        run_blocks<false>();
      }
    } catch (const GuestFault& fault) {
      cpu_.instructions_retired += retired_before_fault();
      ++exceptions_delivered_;
      deliver(fault.vector, fault.has_error_code, fault.error_code, false);
      if (cpu_.triple_faulted) {
        report_crash("guest triple fault (shutdown)");
        break;
      }
    }
  }
  std::vector<ExitCount> counts = {{"instructions executed", cpu_.instructions_retired},
                                   {"blocks decoded", blocks_.blocks_decoded()},
                                   {"external interrupts delivered", interrupts_delivered_},
                                   {"exceptions delivered", exceptions_delivered_}};
  cpu_.hypercall_counts.append_to(counts);
  if (cpu_.port_counts) {
    for (auto [key, n] : *cpu_.port_counts) {
      counts.push_back({fmt::format("  port {:#06x} {}", key >> 1, (key & 1) ? "out" : "in"), n});
    }
  }
  engine_.counters_.add(counts);
}

EmuEngine::EmuEngine(Machine& machine)
    : machine_(machine),
      code_pages_(machine.memory().regions().back().guest_address +
                  machine.memory().regions().back().size) {}

EmuEngine::~EmuEngine() = default;

Result<std::unique_ptr<EmuEngine>> EmuEngine::create(Machine& machine, const EmuOptions& options) {
  std::unique_ptr<EmuEngine> engine(new EmuEngine(machine));
  engine->trace_exits_ = options.trace_exits;
  if (!options.trace_path.empty()) {
    engine->tracer_ = HV_TRY(Tracer::open(options.trace_path));
  }
  if (!options.profile_path.empty()) {
    engine->profiler_ = HV_TRY(Profiler::open(options.profile_path));
  }
  std::vector<CpuSignals*> signals(machine.config().cpu_count, nullptr);
  engine->router_ = HV_TRY(InterruptRouter::create(machine, engine->timers_, signals));
  return engine;
}

Result<std::unique_ptr<Vcpu>> EmuEngine::create_vcpu(uint32_t index) {
  if (index >= router_->cpu_count()) {
    return make_error(ExitStatus::Usage, "vCPU {} is beyond the machine's {} CPUs", index,
                      router_->cpu_count());
  }
  return std::unique_ptr<Vcpu>(std::make_unique<EmuVcpu>(*this, index));
}

std::vector<ExitCount> EmuEngine::exit_counts() const {
  return counters_.snapshot(false);
}

}  // namespace hv::emu
