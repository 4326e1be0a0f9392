// The 8254 programmable interval timer at 0x40-0x43 and the speaker/gate bits of port 0x61
// (port B of the 8255 on the original PC).
//
// Counters are not ticked: each one is computed from the host-monotonic time elapsed since its
// count was loaded, at the PC's 1.193182 MHz input clock, so reading a counter costs nothing and
// stays exact however late the host schedules us. Channel 0's output drives IRQ 0 through a
// TimerService callback: modes 2 and 3 pulse the line (raise then lower) once per period, mode 4
// pulses once at terminal count, mode 0 raises it at terminal count and holds it high until the
// channel is reprogrammed. Periods shorter than kMinIrqPeriod raise interrupts only every
// kMinIrqPeriod, so a hostile guest cannot make the timer thread spin.
// Channel 2's gate is port 0x61 bit 0 and its output is readable at bit 5 (how Linux calibrates
// the TSC); channels 0 and 1 have their gates tied high. Bit 4 of port 0x61 (the DRAM refresh
// clock) toggles on every read, which is what its pollers wait for.
//
// Simplifications: a new count in modes 2/3 takes effect at once rather than at the end of the
// current period; mode 3 with an odd count has equal half periods.
//
// Locking: one mutex. The IRQ 0 callback is called with it held (lock order: PIT -> whatever
// the callback takes, e.g. InterruptRouter -> PIC/IOAPIC); it must not call back into the PIT.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>

#include "devices/timer_service.hpp"
#include "vm/io_bus.hpp"
#include "vm/io_device.hpp"

namespace hv {

class Pit8254 final : public IoDevice {
 public:
  using Clock = TimerService::Clock;
  static constexpr uint64_t kBasePort = 0x40;
  static constexpr uint64_t kPortCount = 4;
  static constexpr uint64_t kPortB = 0x61;
  static constexpr uint64_t kInputHz = 1'193'182;
  static constexpr std::chrono::microseconds kMinIrqPeriod{100};

  // `irq0` is called with the new level of IRQ 0. `timers` must outlive the PIT.
  Pit8254(TimerService& timers, std::function<void(bool)> irq0);
  ~Pit8254() override;

  std::string_view name() const override { return "pit-8254"; }
  // Offsets 0-2: counters 0-2, 3: control word. Wider accesses touch consecutive ports.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Port 0x61 as its own device (one byte, offset 0).
  IoDevice& port_b() { return port_b_; }
  // Registers 0x40-0x43 and 0x61 on `pio`.
  Status install(IoBus& pio);

  // Channel 2's gate (port 0x61 bit 0) and output (bit 5), also for tests.
  void set_gate2(bool level);
  bool out2();

 private:
  struct Channel {
    uint8_t mode = 0;
    uint8_t access = 3;  // 1: low byte, 2: high byte, 3: low then high
    bool bcd = false;
    uint32_t reload = 0x10000;  // the count N as the counter sees it (0 means 65536 or 10000)
    bool loaded = false;        // a count was written since the control word
    bool running = false;       // counting (modes 1 and 5 also need a gate trigger)
    Clock::time_point start;    // when counting (re)started, shifted by gate pauses
    bool paused = false;        // gate low in modes 0 and 4
    Clock::time_point paused_at;
    bool gate = true;
    bool null_count = true;
    bool write_high_next = false;
    uint8_t pending_low = 0;
    bool read_high_next = false;
    bool count_latched = false;
    bool latched_high_next = false;
    uint16_t latched_count = 0;
    bool status_latched = false;
    uint8_t latched_status = 0;
  };

  class PortB final : public IoDevice {
   public:
    explicit PortB(Pit8254* pit) : pit_(pit) {}
    std::string_view name() const override { return "port-61"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

   private:
    Pit8254* pit_;
  };

  uint8_t read_port(uint64_t index);
  void write_port(uint64_t index, uint8_t value);
  void write_control(uint8_t value);
  void load_count(Channel& channel, uint16_t raw);
  void set_gate_locked(Channel& channel, bool level, Clock::time_point now);
  uint64_t elapsed_ticks(const Channel& channel, Clock::time_point now) const;
  uint16_t counter_value(const Channel& channel, Clock::time_point now) const;
  bool output(const Channel& channel, Clock::time_point now) const;
  uint8_t status(const Channel& channel, Clock::time_point now) const;
  uint8_t read_port_b();
  void write_port_b(uint8_t value);
  // Re-evaluates channel 0's interrupt schedule after reprogramming or on a timer callback.
  void update_irq0();
  void on_timer();
  void set_irq0(bool level);

  TimerService& timers_;
  const std::function<void(bool)> irq0_;
  PortB port_b_{this};
  TimerService::TimerId timer_ = TimerService::kNoTimer;

  std::mutex mutex_;  // guards everything below
  std::array<Channel, 3> channels_;
  uint8_t port_b_bits_ = 0;  // bits 0-3 as written
  bool refresh_toggle_ = false;
  bool irq0_level_ = false;
  bool irq0_fired_ = false;  // modes 0 and 4: the one interrupt of this count was raised
  Clock::time_point next_irq_;
  bool irq_scheduled_ = false;
};

}  // namespace hv
