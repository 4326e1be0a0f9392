// An Engine with (or without) the ioeventfd/irqfd fast paths, recording what devices register,
// for the tests of virtio's I/O-thread path (header-only, test code only).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "vm/engine.hpp"

namespace hv::virtio_test {

class FakeEngine final : public Engine {
 public:
  struct Doorbell {
    uint64_t address;
    uint32_t length;
    std::optional<uint64_t> value;
    int event_fd;
  };
  struct InterruptEvent {
    uint32_t gsi;
    int event_fd;
  };

  FakeEngine(bool has_doorbells, bool has_interrupt_events)
      : has_doorbells_(has_doorbells), has_interrupt_events_(has_interrupt_events) {}

  std::string_view name() const override { return "fake"; }
  Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t) override {
    return make_error(ExitStatus::HostError, "the fake engine has no vCPUs");
  }
  std::vector<ExitCount> exit_counts() const override { return {}; }
  void set_irq_line(uint32_t, bool) override {}
  Result<bool> add_mmio_doorbell(uint64_t address, uint32_t length, std::optional<uint64_t> value,
                                 int event_fd) override {
    if (!has_doorbells_) {
      return false;
    }
    doorbells.push_back({address, length, value, event_fd});
    return true;
  }
  Result<bool> add_interrupt_event(uint32_t gsi, int event_fd) override {
    if (!has_interrupt_events_) {
      return false;
    }
    interrupt_events.push_back({gsi, event_fd});
    return true;
  }

  std::vector<Doorbell> doorbells;
  std::vector<InterruptEvent> interrupt_events;

 private:
  bool has_doorbells_;
  bool has_interrupt_events_;
};

// What the kernel does for a doorbell: add `kicks` to the eventfd.
inline void ring(int event_fd, uint64_t kicks = 1) {
  [[maybe_unused]] ssize_t n = ::write(event_fd, &kicks, sizeof(kicks));
}

// The eventfd's counter, consumed; 0 when nothing was signalled (the eventfds are nonblocking).
inline uint64_t take(int event_fd) {
  uint64_t value = 0;
  return ::read(event_fd, &value, sizeof(value)) == static_cast<ssize_t>(sizeof(value)) ? value : 0;
}

// Polls `condition` for up to 10 s: long enough for a loaded machine, returns as soon as it holds.
inline bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace hv::virtio_test
