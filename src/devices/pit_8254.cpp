#include "devices/pit_8254.hpp"

#include <algorithm>

namespace hv {
namespace {

using std::chrono::nanoseconds;

constexpr uint64_t kControlPort = 3;
constexpr uint8_t kReadBack = 3;            // control word bits 7:6
constexpr uint8_t kReadBackNoCount = 0x20;  // read-back: do not latch the count
constexpr uint8_t kReadBackNoStatus = 0x10;
constexpr uint8_t kAccessLatch = 0;
constexpr uint8_t kAccessLow = 1;
constexpr uint8_t kAccessHigh = 2;

constexpr uint8_t kPortBGate2 = 0x01;
constexpr uint8_t kPortBWritable = 0x0f;
constexpr uint8_t kPortBRefresh = 0x10;
constexpr uint8_t kPortBOut2 = 0x20;

constexpr uint64_t kNanosPerSecond = 1'000'000'000;
constexpr std::chrono::milliseconds kMaxCatchUp{100};

nanoseconds ticks_to_duration(uint64_t ticks) {
  return nanoseconds((ticks * kNanosPerSecond + Pit8254::kInputHz - 1) / Pit8254::kInputHz);
}

uint16_t to_bcd(uint32_t value) {
  return static_cast<uint16_t>((value % 10) | ((value / 10 % 10) << 4) | ((value / 100 % 10) << 8) |
                               ((value / 1000 % 10) << 12));
}

uint32_t from_bcd(uint16_t raw) {
  // Hostile nibbles above 9 just make a larger number; the caller reduces it modulo 10000.
  return (raw & 0xf) + ((raw >> 4) & 0xf) * 10 + ((raw >> 8) & 0xf) * 100 +
         ((raw >> 12) & 0xf) * 1000u;
}

}  // namespace

Pit8254::Pit8254(TimerService& timers, std::function<void(bool)> irq0)
    : timers_(timers), irq0_(std::move(irq0)) {
  timer_ = timers_.add([this] { on_timer(); });
}

Pit8254::~Pit8254() {
  timers_.remove(timer_);
}

Status Pit8254::install(IoBus& pio) {
  HV_TRY(pio.add(kBasePort, kPortCount, this));
  HV_TRY(pio.add(kPortB, 1, &port_b_));
  return {};
}

void Pit8254::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = read_port(offset + i);
  }
}

void Pit8254::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    write_port(offset + i, data[i]);
  }
}

void Pit8254::PortB::read(uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i == 0 ? pit_->read_port_b() : 0xff;
  }
}

void Pit8254::PortB::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == 0 && !data.empty()) {
    pit_->write_port_b(data[0]);
  }
}

uint8_t Pit8254::read_port_b() {
  std::lock_guard lock(mutex_);
  refresh_toggle_ = !refresh_toggle_;
  const bool out = output(channels_[2], Clock::now());
  return static_cast<uint8_t>((port_b_bits_ & kPortBWritable) |
                              (refresh_toggle_ ? kPortBRefresh : 0) | (out ? kPortBOut2 : 0));
}

void Pit8254::write_port_b(uint8_t value) {
  std::lock_guard lock(mutex_);
  port_b_bits_ = value & kPortBWritable;
  set_gate_locked(channels_[2], (value & kPortBGate2) != 0, Clock::now());
}

void Pit8254::set_gate2(bool level) {
  std::lock_guard lock(mutex_);
  port_b_bits_ = static_cast<uint8_t>((port_b_bits_ & ~kPortBGate2) | (level ? kPortBGate2 : 0));
  set_gate_locked(channels_[2], level, Clock::now());
}

bool Pit8254::out2() {
  std::lock_guard lock(mutex_);
  return output(channels_[2], Clock::now());
}

uint8_t Pit8254::read_port(uint64_t index) {
  if (index >= kControlPort) {
    return 0xff;  // the control word register is write-only
  }
  Channel& channel = channels_[index];
  if (channel.status_latched) {
    channel.status_latched = false;
    return channel.latched_status;
  }
  uint16_t value;
  bool* high_next;
  if (channel.count_latched) {
    value = channel.latched_count;
    high_next = &channel.latched_high_next;
  } else {
    value = counter_value(channel, Clock::now());
    high_next = &channel.read_high_next;
  }
  bool high;
  bool done = true;
  switch (channel.access) {
    case kAccessLow:
      high = false;
      break;
    case kAccessHigh:
      high = true;
      break;
    default:
      high = *high_next;
      *high_next = !*high_next;
      done = high;
      break;
  }
  if (channel.count_latched && done) {
    channel.count_latched = false;
  }
  return static_cast<uint8_t>(high ? value >> 8 : value);
}

void Pit8254::write_port(uint64_t index, uint8_t value) {
  if (index > kControlPort) {
    return;
  }
  if (index == kControlPort) {
    write_control(value);
    return;
  }
  Channel& channel = channels_[index];
  switch (channel.access) {
    case kAccessLow:
      load_count(channel, value);
      break;
    case kAccessHigh:
      load_count(channel, static_cast<uint16_t>(value << 8));
      break;
    default:
      if (!channel.write_high_next) {
        channel.pending_low = value;
        channel.write_high_next = true;
        if (channel.mode == 0) {
          // Mode 0: the first byte stops the count and drops the output.
          channel.loaded = false;
          channel.running = false;
          if (index == 0) {
            irq0_fired_ = false;
            update_irq0();
          }
        }
      } else {
        channel.write_high_next = false;
        load_count(channel, static_cast<uint16_t>(channel.pending_low | (value << 8)));
      }
      break;
  }
}

void Pit8254::write_control(uint8_t value) {
  const Clock::time_point now = Clock::now();
  const uint8_t select = value >> 6;
  if (select == kReadBack) {
    for (size_t i = 0; i < channels_.size(); ++i) {
      if ((value & (2u << i)) == 0) {
        continue;
      }
      Channel& channel = channels_[i];
      if ((value & kReadBackNoCount) == 0 && !channel.count_latched) {
        channel.latched_count = counter_value(channel, now);
        channel.count_latched = true;
        channel.latched_high_next = false;
      }
      if ((value & kReadBackNoStatus) == 0 && !channel.status_latched) {
        channel.latched_status = status(channel, now);
        channel.status_latched = true;
      }
    }
    return;
  }
  Channel& channel = channels_[select];
  const uint8_t access = (value >> 4) & 3;
  if (access == kAccessLatch) {
    if (!channel.count_latched) {
      channel.latched_count = counter_value(channel, now);
      channel.count_latched = true;
      channel.latched_high_next = false;
    }
    return;
  }
  uint8_t mode = (value >> 1) & 7;
  if (mode > 5) {
    mode -= 4;  // 6 and 7 are aliases of 2 and 3
  }
  const bool gate = channel.gate;
  channel = Channel{};
  channel.gate = gate;
  channel.mode = mode;
  channel.access = access;
  channel.bcd = (value & 1) != 0;
  if (select == 0) {
    irq0_fired_ = false;
    update_irq0();
  }
}

void Pit8254::load_count(Channel& channel, uint16_t raw) {
  const Clock::time_point now = Clock::now();
  if (channel.bcd) {
    const uint32_t count = from_bcd(raw) % 10000;
    channel.reload = count == 0 ? 10000 : count;
  } else {
    channel.reload = raw == 0 ? 0x10000 : raw;
  }
  channel.loaded = true;
  channel.null_count = false;
  channel.start = now;
  channel.paused = false;
  switch (channel.mode) {
    case 0:
    case 4:
      channel.running = true;
      if (!channel.gate) {
        channel.paused = true;
        channel.paused_at = now;
      }
      break;
    case 2:
    case 3:
      channel.running = channel.gate;
      break;
    default:  // 1 and 5 wait for a rising edge on the gate
      break;
  }
  if (&channel == &channels_[0]) {
    irq0_fired_ = false;
    update_irq0();
  }
}

void Pit8254::set_gate_locked(Channel& channel, bool level, Clock::time_point now) {
  if (level == channel.gate) {
    return;
  }
  channel.gate = level;
  if (!channel.loaded) {
    return;
  }
  switch (channel.mode) {
    case 0:
    case 4:
      if (!level && channel.running && !channel.paused) {
        channel.paused = true;
        channel.paused_at = now;
      } else if (level && channel.paused) {
        channel.start += now - channel.paused_at;
        channel.paused = false;
      }
      break;
    case 2:
    case 3:
      // Gate low stops the count (output high); the rising edge reloads it.
      channel.running = level;
      channel.start = now;
      break;
    default:  // 1 and 5: the rising edge (re)triggers
      if (level) {
        channel.running = true;
        channel.start = now;
      }
      break;
  }
}

uint64_t Pit8254::elapsed_ticks(const Channel& channel, Clock::time_point now) const {
  const Clock::time_point end = channel.paused ? channel.paused_at : now;
  if (end <= channel.start) {
    return 0;
  }
  const uint64_t ns = static_cast<uint64_t>(nanoseconds(end - channel.start).count());
  // Split to keep ns * kInputHz within 64 bits for any uptime.
  return ns / kNanosPerSecond * kInputHz + ns % kNanosPerSecond * kInputHz / kNanosPerSecond;
}

uint16_t Pit8254::counter_value(const Channel& channel, Clock::time_point now) const {
  const uint64_t modulus = channel.bcd ? 10000 : 0x10000;
  const uint64_t n = channel.reload;
  uint64_t value = n;
  if (channel.running) {
    const uint64_t t = elapsed_ticks(channel, now);
    switch (channel.mode) {
      case 2:
        value = n - t % n;
        break;
      case 3: {
        const uint64_t half = std::max<uint64_t>(n / 2, 1);
        value = n - 2 * (t % n % half);
        break;
      }
      default:  // 0, 1, 4, 5 count down once and then wrap
        value = (n + modulus - t % modulus) % modulus;
        break;
    }
  }
  value %= modulus;
  return channel.bcd ? to_bcd(static_cast<uint32_t>(value)) : static_cast<uint16_t>(value);
}

bool Pit8254::output(const Channel& channel, Clock::time_point now) const {
  if (!channel.loaded || !channel.running) {
    return channel.mode != 0;  // mode 0 starts low, every other mode high
  }
  const uint64_t n = channel.reload;
  const uint64_t t = elapsed_ticks(channel, now);
  switch (channel.mode) {
    case 0:
    case 1:
      return t >= n;
    case 2:
      return t % n != n - 1;
    case 3:
      return t % n < (n + 1) / 2;
    default:  // 4 and 5: one low clock at terminal count
      return t != n;
  }
}

uint8_t Pit8254::status(const Channel& channel, Clock::time_point now) const {
  return static_cast<uint8_t>((output(channel, now) ? 0x80 : 0) | (channel.null_count ? 0x40 : 0) |
                              (channel.access << 4) | (channel.mode << 1) | (channel.bcd ? 1 : 0));
}

void Pit8254::set_irq0(bool level) {
  irq0_level_ = level;
  if (irq0_) {
    irq0_(level);
  }
}

void Pit8254::update_irq0() {
  const Channel& channel = channels_[0];
  // Reprogramming drops a mode 0 output that was held high.
  if (irq0_level_ && !(irq0_fired_ && channel.mode == 0)) {
    set_irq0(false);
  }
  irq_scheduled_ = false;
  if (!channel.loaded || !channel.running || channel.paused || irq0_fired_) {
    timers_.cancel(timer_);
    return;
  }
  const nanoseconds count_duration = ticks_to_duration(channel.reload);
  if (channel.mode == 2 || channel.mode == 3) {
    next_irq_ = channel.start + std::max<nanoseconds>(count_duration, kMinIrqPeriod);
  } else {
    next_irq_ = channel.start + count_duration;
  }
  irq_scheduled_ = true;
  timers_.arm(timer_, next_irq_);
}

void Pit8254::on_timer() {
  std::lock_guard lock(mutex_);
  if (!irq_scheduled_) {
    return;  // reprogrammed after this callback was dispatched
  }
  const Clock::time_point now = Clock::now();
  if (now < next_irq_) {
    timers_.arm(timer_, next_irq_);
    return;
  }
  const Channel& channel = channels_[0];
  switch (channel.mode) {
    case 0:
    case 1:
      // The output rises at terminal count and stays high.
      irq0_fired_ = true;
      irq_scheduled_ = false;
      set_irq0(true);
      break;
    case 2:
    case 3: {
      set_irq0(true);
      set_irq0(false);
      const nanoseconds period =
          std::max<nanoseconds>(ticks_to_duration(channel.reload), kMinIrqPeriod);
      next_irq_ += period;
      if (now - next_irq_ > kMaxCatchUp) {
        // Far behind (host stalled, e.g. suspended): drop the backlog, keep the phase.
        next_irq_ += ((now - next_irq_) / period + 1) * period;
      }
      // A few periods behind (a busy host), the missed edges follow back to back so that a
      // guest counting ticks keeps time.
      timers_.arm(timer_, next_irq_);
      break;
    }
    default:  // 4 and 5: a strobe
      irq0_fired_ = true;
      irq_scheduled_ = false;
      set_irq0(true);
      set_irq0(false);
      break;
  }
}

}  // namespace hv
