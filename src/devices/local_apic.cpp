#include "devices/local_apic.hpp"

#include <algorithm>

namespace hv {
namespace {

using std::chrono::nanoseconds;

// Register offsets in the APIC page.
constexpr uint64_t kRegId = 0x20;
constexpr uint64_t kRegVersion = 0x30;
constexpr uint64_t kRegTpr = 0x80;
constexpr uint64_t kRegApr = 0x90;
constexpr uint64_t kRegPpr = 0xa0;
constexpr uint64_t kRegEoi = 0xb0;
constexpr uint64_t kRegRrd = 0xc0;
constexpr uint64_t kRegLdr = 0xd0;
constexpr uint64_t kRegDfr = 0xe0;
constexpr uint64_t kRegSvr = 0xf0;
constexpr uint64_t kRegIsr = 0x100;
constexpr uint64_t kRegTmr = 0x180;
constexpr uint64_t kRegIrr = 0x200;
constexpr uint64_t kRegEsr = 0x280;
constexpr uint64_t kRegIcrLow = 0x300;
constexpr uint64_t kRegIcrHigh = 0x310;
constexpr uint64_t kRegLvtTimer = 0x320;
constexpr uint64_t kRegLvtError = 0x370;
constexpr uint64_t kRegInitialCount = 0x380;
constexpr uint64_t kRegCurrentCount = 0x390;
constexpr uint64_t kRegDivideConfig = 0x3e0;

constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kLvtLevelTriggered = 1u << 15;
constexpr uint32_t kLvtTimerPeriodic = 1u << 17;
// Writable bits per LVT entry (timer, thermal, perf, LINT0, LINT1, error). Delivery status and
// remote IRR are read-only; the timer's TSC-deadline bit is absent.
constexpr std::array<uint32_t, 6> kLvtWritable = {0x300ff, 0x107ff, 0x107ff,
                                                  0x1a7ff, 0x1a7ff, 0x100ff};

constexpr uint32_t kSvrWritable = 0x3ff;  // vector, APIC enable, focus checking
constexpr uint32_t kIcrLowWritable = 0xcdfff;
constexpr uint32_t kIcrLevelAssert = 1u << 14;

constexpr uint32_t kEsrSendIllegalVector = 1u << 5;
constexpr uint32_t kEsrReceiveIllegalVector = 1u << 6;
constexpr uint32_t kEsrIllegalRegister = 1u << 7;

constexpr uint32_t kDfrFlat = 0xf;
constexpr std::chrono::milliseconds kMaxCatchUp{100};

int highest(const std::array<uint32_t, 8>& bits) {
  for (int word = 7; word >= 0; --word) {
    if (bits[word] != 0) {
      return word * 32 + 31 - __builtin_clz(bits[word]);
    }
  }
  return -1;
}

bool test_bit(const std::array<uint32_t, 8>& bits, int vector) {
  return ((bits[vector / 32] >> (vector % 32)) & 1) != 0;
}

void set_bit(std::array<uint32_t, 8>& bits, int vector, bool value) {
  const uint32_t mask = 1u << (vector % 32);
  bits[vector / 32] = value ? (bits[vector / 32] | mask) : (bits[vector / 32] & ~mask);
}

}  // namespace

// --- ApicBus -------------------------------------------------------------------------------

void ApicBus::attach(LocalApic* apic) {
  apics_.push_back(apic);
}

size_t ApicBus::deliver(const ApicMessage& message, const LocalApic* source) {
  std::vector<LocalApic*> targets;
  for (LocalApic* apic : apics_) {
    bool selected = false;
    switch (message.shorthand) {
      case ApicShorthand::Self:
        selected = apic == source;
        break;
      case ApicShorthand::All:
        selected = true;
        break;
      case ApicShorthand::AllButSelf:
        selected = apic != source;
        break;
      case ApicShorthand::None:
        selected = apic->matches(message.destination, message.logical);
        break;
    }
    if (selected) {
      targets.push_back(apic);
    }
  }
  if (message.mode == ApicDeliveryMode::LowestPriority && targets.size() > 1) {
    LocalApic* chosen = targets.front();
    uint8_t lowest = chosen->task_priority();
    for (LocalApic* apic : targets) {
      const uint8_t priority = apic->task_priority();
      if ((priority >> 4) < (lowest >> 4)) {
        chosen = apic;
        lowest = priority;
      }
    }
    targets.assign(1, chosen);
  }
  size_t accepted = 0;
  for (LocalApic* apic : targets) {
    accepted += apic->accept(message) ? 1 : 0;
  }
  return accepted;
}

void ApicBus::broadcast_eoi(uint8_t vector) {
  if (eoi_listener_) {
    eoi_listener_(vector);
  }
}

// --- LocalApic ------------------------------------------------------------------------------

LocalApic::LocalApic(uint8_t id, bool bsp, ApicBus& bus, TimerService& timers, CpuSignals* signals)
    : id_(id),
      bsp_(bsp),
      bus_(bus),
      timers_(timers),
      signals_(signals),
      base_(kDefaultBase | kBaseEnable | (bsp ? kBaseBsp : 0)) {
  timer_ = timers_.add([this] { on_timer(); });
  std::lock_guard lock(mutex_);
  reset_locked();
}

LocalApic::~LocalApic() {
  timers_.remove(timer_);
}

void LocalApic::reset_locked() {
  tpr_ = 0;
  ldr_ = 0;
  dfr_ = 0xffffffff;
  svr_ = 0xff;
  esr_ = 0;
  esr_pending_ = 0;
  icr_low_ = 0;
  icr_high_ = 0;
  lvt_.fill(kLvtMasked);
  if (bsp_) {
    lvt_[kLvtLint0] = static_cast<uint32_t>(ApicDeliveryMode::ExtInt) << 8;
  }
  isr_ = {};
  tmr_ = {};
  irr_ = {};
  initial_count_ = 0;
  divide_config_ = 0;
  timer_running_ = false;
  timers_.cancel(timer_);
  nmi_pending_ = false;
  ext_int_pending_ = false;
}

void LocalApic::read(uint64_t offset, std::span<uint8_t> data) {
  uint32_t value = 0;
  const uint64_t within = offset & 0xf;
  if (offset < kMmioSize && within < 4) {
    std::lock_guard lock(mutex_);
    value = read_register(offset & ~uint64_t{0xf});
  }
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t byte = within + i;
    data[i] = byte < 4 && offset < kMmioSize ? static_cast<uint8_t>(value >> (8 * byte)) : 0;
  }
}

void LocalApic::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= kMmioSize || (offset & 0xf) != 0 || data.size() < 4) {
    return;
  }
  const uint32_t value = static_cast<uint32_t>(io_value(data.first(4)));
  const uint64_t reg = offset;
  if (reg == kRegEoi) {
    int vector;
    bool level;
    {
      std::lock_guard lock(mutex_);
      vector = highest(isr_);
      if (vector < 0) {
        return;
      }
      set_bit(isr_, vector, false);
      level = test_bit(tmr_, vector);
    }
    if (level) {
      bus_.broadcast_eoi(static_cast<uint8_t>(vector));
    }
    notify_interrupt();  // a lower-priority request may be deliverable now
    return;
  }
  if (reg == kRegIcrLow) {
    ApicMessage message;
    {
      std::lock_guard lock(mutex_);
      icr_low_ = value & kIcrLowWritable;
      message.vector = static_cast<uint8_t>(icr_low_);
      message.mode = static_cast<ApicDeliveryMode>((icr_low_ >> 8) & 7);
      message.logical = (icr_low_ & (1u << 11)) != 0;
      message.assert = (icr_low_ & kIcrLevelAssert) != 0;
      message.level_triggered = (icr_low_ & (1u << 15)) != 0;
      message.shorthand = static_cast<ApicShorthand>((icr_low_ >> 18) & 3);
      message.destination = static_cast<uint8_t>(icr_high_ >> 24);
      const bool fixed = message.mode == ApicDeliveryMode::Fixed ||
                         message.mode == ApicDeliveryMode::LowestPriority;
      if ((fixed && message.vector < 16) || message.mode == ApicDeliveryMode::ExtInt ||
          static_cast<uint8_t>(message.mode) == 3) {
        report_error_locked(kEsrSendIllegalVector);
        return;
      }
      if (message.mode != ApicDeliveryMode::Init) {
        message.assert = true;  // the level bit only matters for INIT
      }
    }
    bus_.deliver(message, this);
    return;
  }
  std::lock_guard lock(mutex_);
  write_register(reg, value);
}

uint32_t LocalApic::read_register(uint64_t reg) {
  if (reg >= kRegIsr && reg < kRegIsr + 0x80) {
    return isr_[(reg - kRegIsr) >> 4];
  }
  if (reg >= kRegTmr && reg < kRegTmr + 0x80) {
    return tmr_[(reg - kRegTmr) >> 4];
  }
  if (reg >= kRegIrr && reg < kRegIrr + 0x80) {
    return irr_[(reg - kRegIrr) >> 4];
  }
  if (reg >= kRegLvtTimer && reg <= kRegLvtError) {
    return lvt_[(reg - kRegLvtTimer) >> 4];
  }
  switch (reg) {
    case kRegId:
      return static_cast<uint32_t>(id_) << 24;
    case kRegVersion:
      return kVersion;
    case kRegTpr:
      return tpr_;
    case kRegApr:
      return 0;  // arbitration priority: not modelled (lowest-priority uses TPR)
    case kRegPpr:
      return processor_priority();
    case kRegLdr:
      return ldr_;
    case kRegDfr:
      return dfr_;
    case kRegSvr:
      return svr_;
    case kRegEsr:
      return esr_;
    case kRegIcrLow:
      return icr_low_;  // delivery status (bit 12) is always idle
    case kRegIcrHigh:
      return icr_high_;
    case kRegInitialCount:
      return initial_count_;
    case kRegCurrentCount:
      return current_count(Clock::now());
    case kRegDivideConfig:
      return divide_config_;
    case kRegEoi:
    case kRegRrd:
      return 0;
    default:
      report_error_locked(kEsrIllegalRegister);
      return 0;
  }
}

void LocalApic::write_register(uint64_t reg, uint32_t value) {
  if (reg >= kRegLvtTimer && reg <= kRegLvtError) {
    const size_t index = (reg - kRegLvtTimer) >> 4;
    uint32_t entry = (value & kLvtWritable[index]) | (lvt_[index] & ~kLvtWritable[index]);
    if (!software_enabled()) {
      entry |= kLvtMasked;
    }
    const bool was_periodic = (lvt_[index] & kLvtTimerPeriodic) != 0;
    lvt_[index] = entry;
    if (index == kLvtTimer && was_periodic != ((entry & kLvtTimerPeriodic) != 0) &&
        timer_running_) {
      start_timer_locked(timer_start_);  // the next event depends on the mode
    }
    if (index == kLvtLint0) {
      notify_interrupt();  // unmasking ExtINT may expose a pending PIC interrupt
    }
    return;
  }
  switch (reg) {
    case kRegTpr:
      tpr_ = value & 0xff;
      notify_interrupt();
      break;
    case kRegLdr:
      ldr_ = value & 0xff000000;
      break;
    case kRegDfr:
      dfr_ = (value & 0xf0000000) | 0x0fffffff;
      break;
    case kRegSvr:
      svr_ = value & kSvrWritable;
      if (!software_enabled()) {
        for (uint32_t& entry : lvt_) {
          entry |= kLvtMasked;
        }
      }
      break;
    case kRegEsr:
      esr_ = esr_pending_;
      esr_pending_ = 0;
      break;
    case kRegIcrHigh:
      icr_high_ = value & 0xff000000;
      break;
    case kRegInitialCount:
      initial_count_ = value;
      if (value == 0) {
        timer_running_ = false;
        timers_.cancel(timer_);
      } else {
        start_timer_locked(Clock::now());
      }
      break;
    case kRegDivideConfig: {
      const Clock::time_point now = Clock::now();
      const uint32_t remaining = current_count(now);
      divide_config_ = value & 0xb;
      if (timer_running_) {
        // Keep the current count continuous: pretend the elapsed counts ran at the new rate.
        const uint64_t elapsed = initial_count_ - remaining;
        start_timer_locked(now - nanoseconds(elapsed * timer_divide()));
      }
      break;
    }
    case kRegId:
    case kRegVersion:
    case kRegApr:
    case kRegPpr:
    case kRegRrd:
    case kRegCurrentCount:
      break;  // read-only (the APIC ID is fixed: the bus indexes APICs by it)
    default:
      if (!(reg >= kRegIsr && reg < kRegIrr + 0x80)) {
        report_error_locked(kEsrIllegalRegister);
      }
      break;
  }
}

uint64_t LocalApic::base() {
  std::lock_guard lock(mutex_);
  return base_;
}

bool LocalApic::set_base(uint64_t value) {
  const uint64_t allowed = kDefaultBase | kBaseEnable | kBaseBsp;
  if ((value & ~allowed) != 0 || (value & kDefaultBase) != kDefaultBase) {
    return false;
  }
  {
    std::lock_guard lock(mutex_);
    if ((value & kBaseBsp) != (base_ & kBaseBsp)) {
      return false;  // the BSP flag is read-only
    }
    const bool was_enabled = hardware_enabled();
    base_ = value;
    if (was_enabled && !hardware_enabled()) {
      reset_locked();
      // A disabled APIC passes LINT0 through as the CPU's INTR: nothing ExtINT-specific left.
      lvt_[kLvtLint0] = kLvtMasked;
    }
  }
  notify_interrupt();
  return true;
}

bool LocalApic::pic_routed_locked() const {
  if (!hardware_enabled()) {
    return true;
  }
  const uint32_t lint0 = lvt_[kLvtLint0];
  return (lint0 & kLvtMasked) == 0 &&
         ((lint0 >> 8) & 7) == static_cast<uint32_t>(ApicDeliveryMode::ExtInt);
}

uint32_t LocalApic::processor_priority() const {
  const int isr_vector = std::max(highest(isr_), 0);
  if ((tpr_ >> 4) >= (static_cast<uint32_t>(isr_vector) >> 4)) {
    return tpr_ & 0xff;
  }
  return static_cast<uint32_t>(isr_vector) & 0xf0;
}

bool LocalApic::has_interrupt() {
  std::lock_guard lock(mutex_);
  if ((pic_intr_ && pic_routed_locked()) || ext_int_pending_) {
    return true;
  }
  if (!hardware_enabled()) {
    return false;
  }
  const int vector = highest(irr_);
  return vector >= 0 && (static_cast<uint32_t>(vector) & 0xf0) > (processor_priority() & 0xf0);
}

int LocalApic::acknowledge() {
  {
    std::lock_guard lock(mutex_);
    const bool from_pic = (pic_intr_ && pic_routed_locked()) || ext_int_pending_;
    if (!from_pic) {
      const int vector = highest(irr_);
      if (!hardware_enabled() || vector < 0 ||
          (static_cast<uint32_t>(vector) & 0xf0) <= (processor_priority() & 0xf0)) {
        return -1;
      }
      set_bit(irr_, vector, false);
      set_bit(isr_, vector, true);
      return vector;
    }
    ext_int_pending_ = false;
  }
  // The INTA cycle goes to the PIC without this APIC's lock (the PIC calls into us).
  ExternalInterruptController* pic = pic_.load();
  return pic != nullptr ? pic->acknowledge() : -1;
}

bool LocalApic::take_nmi() {
  std::lock_guard lock(mutex_);
  const bool pending = nmi_pending_;
  nmi_pending_ = false;
  return pending;
}

uint8_t LocalApic::task_priority() {
  std::lock_guard lock(mutex_);
  return static_cast<uint8_t>(tpr_);
}

void LocalApic::set_task_priority(uint8_t value) {
  std::lock_guard lock(mutex_);
  tpr_ = value;
  notify_interrupt();
}

void LocalApic::set_lint(int pin, bool level) {
  if (pin != 0 && pin != 1) {
    return;
  }
  std::lock_guard lock(mutex_);
  const bool rising = level && !lint_levels_[pin];
  lint_levels_[pin] = level;
  if (pin == 0) {
    pic_intr_ = level;
    if (level && pic_routed_locked()) {
      notify_interrupt();
      return;
    }
  }
  if (!hardware_enabled()) {
    if (pin == 1 && rising) {
      nmi_pending_ = true;  // a disabled APIC passes LINT1 through as the NMI pin
      notify_nmi();
    }
    return;
  }
  const uint32_t entry = lvt_[kLvtLint0 + pin];
  if ((entry & kLvtMasked) != 0 || !rising) {
    return;
  }
  switch (static_cast<ApicDeliveryMode>((entry >> 8) & 7)) {
    case ApicDeliveryMode::Fixed:
      accept_vector_locked(static_cast<uint8_t>(entry), (entry & kLvtLevelTriggered) != 0);
      break;
    case ApicDeliveryMode::Nmi:
      nmi_pending_ = true;
      notify_nmi();
      break;
    default:  // ExtINT was handled above; SMI and INIT through LINT are not modelled
      break;
  }
}

bool LocalApic::matches(uint8_t destination, bool logical) {
  std::lock_guard lock(mutex_);
  if (!hardware_enabled()) {
    return false;
  }
  if (!logical) {
    return destination == 0xff || destination == id_;
  }
  const uint8_t logical_id = static_cast<uint8_t>(ldr_ >> 24);
  if ((dfr_ >> 28) == kDfrFlat) {
    return (logical_id & destination) != 0;
  }
  // Cluster model: high nibble selects the cluster (15 = all), low nibble the members.
  if (destination == 0xff) {
    return true;
  }
  const bool cluster_matches = (destination >> 4) == 0xf || (destination >> 4) == (logical_id >> 4);
  return cluster_matches && (destination & logical_id & 0xf) != 0;
}

bool LocalApic::accept(const ApicMessage& message) {
  std::lock_guard lock(mutex_);
  if (!hardware_enabled()) {
    return false;
  }
  switch (message.mode) {
    case ApicDeliveryMode::Fixed:
    case ApicDeliveryMode::LowestPriority:
      if (!software_enabled()) {
        return false;
      }
      if (message.vector < 16) {
        report_error_locked(kEsrReceiveIllegalVector);
        return false;
      }
      accept_vector_locked(message.vector, message.level_triggered);
      return true;
    case ApicDeliveryMode::Nmi:
      nmi_pending_ = true;
      notify_nmi();
      return true;
    case ApicDeliveryMode::Init:
      if (message.assert) {
        reset_locked();
        if (CpuSignals* signals = signals_.load(std::memory_order_acquire)) {
          signals->init();
        }
      }
      return true;
    case ApicDeliveryMode::Startup:
      if (CpuSignals* signals = signals_.load(std::memory_order_acquire)) {
        signals->startup(message.vector);
      }
      return true;
    case ApicDeliveryMode::ExtInt:
      ext_int_pending_ = true;
      notify_interrupt();
      return true;
    default:  // SMI: System Management Mode is not modelled
      return true;
  }
}

void LocalApic::accept_vector_locked(uint8_t vector, bool level_triggered) {
  set_bit(irr_, vector, true);
  set_bit(tmr_, vector, level_triggered);
  notify_interrupt();
}

void LocalApic::report_error_locked(uint32_t bits) {
  const bool first = esr_pending_ == 0;
  esr_pending_ |= bits;
  const uint32_t entry = lvt_[kLvtError];
  if (first && (entry & kLvtMasked) == 0 && static_cast<uint8_t>(entry) >= 16) {
    accept_vector_locked(static_cast<uint8_t>(entry), false);
  }
}

void LocalApic::notify_interrupt() {
  if (CpuSignals* signals = signals_.load(std::memory_order_acquire)) {
    signals->interrupt_pending();
  }
}

void LocalApic::notify_nmi() {
  if (CpuSignals* signals = signals_.load(std::memory_order_acquire)) {
    signals->nmi();
  }
}

// Divide configuration bits 3, 1:0 encode 2, 4, ..., 128; 0b111 means 1.
uint64_t LocalApic::timer_divide() const {
  const uint32_t code = (divide_config_ & 3) | ((divide_config_ >> 1) & 4);
  return code == 7 ? 1 : 2u << code;
}

uint32_t LocalApic::current_count(Clock::time_point now) const {
  if (!timer_running_ || initial_count_ == 0) {
    return 0;
  }
  const auto elapsed_ns = std::max<int64_t>(nanoseconds(now - timer_start_).count(), 0);
  // kApicTimerHz is 1 GHz: one count per nanosecond before the divider.
  static_assert(kApicTimerHz == 1'000'000'000);
  const uint64_t ticks = static_cast<uint64_t>(elapsed_ns) / timer_divide();
  if ((lvt_[kLvtTimer] & kLvtTimerPeriodic) != 0) {
    return static_cast<uint32_t>(initial_count_ - ticks % initial_count_);
  }
  return ticks >= initial_count_ ? 0 : static_cast<uint32_t>(initial_count_ - ticks);
}

void LocalApic::start_timer_locked(Clock::time_point start) {
  timer_start_ = start;
  timer_running_ = true;
  next_timer_event_ = start + nanoseconds(uint64_t{initial_count_} * timer_divide());
  if ((lvt_[kLvtTimer] & kLvtTimerPeriodic) != 0) {
    next_timer_event_ = std::max(next_timer_event_, start + kMinPeriodicInterval);
  }
  timers_.arm(timer_, next_timer_event_);
}

void LocalApic::on_timer() {
  std::lock_guard lock(mutex_);
  if (!timer_running_) {
    return;  // stopped after this callback was dispatched
  }
  const Clock::time_point now = Clock::now();
  if (now < next_timer_event_) {
    timers_.arm(timer_, next_timer_event_);
    return;
  }
  const uint32_t entry = lvt_[kLvtTimer];
  if ((entry & kLvtMasked) == 0) {
    accept_vector_locked(static_cast<uint8_t>(entry), false);
  }
  if ((entry & kLvtTimerPeriodic) == 0) {
    timer_running_ = false;  // one-shot: the count stays at 0
    return;
  }
  const auto period = std::max<nanoseconds>(nanoseconds(uint64_t{initial_count_} * timer_divide()),
                                            kMinPeriodicInterval);
  next_timer_event_ += period;
  if (now - next_timer_event_ > kMaxCatchUp) {
    // Far behind (host stalled): drop the backlog, keep the phase. A few periods behind, the
    // events follow back to back (they coalesce in IRR unless the guest keeps up).
    next_timer_event_ += ((now - next_timer_event_) / period + 1) * period;
  }
  timers_.arm(timer_, next_timer_event_);
}

}  // namespace hv
