// Fakes and port helpers shared by the device tests (header-only, test code only).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "devices/char_sink.hpp"
#include "vm/io_bus.hpp"
#include "vm/machine.hpp"
#include "vm/stop_control.hpp"

namespace hv::device_test {

class RecordingSink final : public CharSink {
 public:
  void write(std::span<const uint8_t> bytes) override {
    std::lock_guard lock(mutex_);
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  }
  std::vector<uint8_t> bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<uint8_t> bytes_;
};

// Records the level of every interrupt line and how often each one rose.
class RecordingInterruptSink final : public InterruptSink {
 public:
  void set_irq_line(uint32_t gsi, bool level) override {
    std::lock_guard lock(mutex_);
    if (level && !levels_[gsi]) {
      ++rising_edges_[gsi];
    }
    levels_[gsi] = level;
    ++calls_[gsi];
  }
  bool level(uint32_t gsi) const {
    std::lock_guard lock(mutex_);
    auto it = levels_.find(gsi);
    return it != levels_.end() && it->second;
  }
  int rising_edges(uint32_t gsi) const {
    std::lock_guard lock(mutex_);
    auto it = rising_edges_.find(gsi);
    return it == rising_edges_.end() ? 0 : it->second;
  }
  int calls(uint32_t gsi) const {
    std::lock_guard lock(mutex_);
    auto it = calls_.find(gsi);
    return it == calls_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<uint32_t, bool> levels_;
  std::map<uint32_t, int> rising_edges_;
  std::map<uint32_t, int> calls_;
};

// A 2 MiB machine with a recording interrupt sink attached.
struct TestMachine {
  TestMachine() {
    auto created = Machine::create({.memory_bytes = 2 << 20});
    EXPECT_TRUE(created.ok()) << created.error().to_string();
    machine = std::move(created).value();
    machine->set_interrupt_sink(&irqs);
  }
  ~TestMachine() { machine->set_interrupt_sink(nullptr); }

  IoBus& pio() { return machine->pio(); }
  uint8_t inb(uint64_t port) { return static_cast<uint8_t>(in(port, 1)); }
  uint16_t inw(uint64_t port) { return static_cast<uint16_t>(in(port, 2)); }
  uint32_t inl(uint64_t port) { return static_cast<uint32_t>(in(port, 4)); }
  uint64_t in(uint64_t port, size_t width) {
    uint8_t data[8] = {};
    machine->pio().read(port, std::span(data, width));
    return io_value(std::span<const uint8_t>(data, width));
  }
  void outb(uint64_t port, uint8_t value) { out(port, value, 1); }
  void outw(uint64_t port, uint16_t value) { out(port, value, 2); }
  void outl(uint64_t port, uint32_t value) { out(port, value, 4); }
  void out(uint64_t port, uint64_t value, size_t width) {
    uint8_t data[8] = {};
    set_io_value(std::span(data, width), value);
    machine->pio().write(port, std::span<const uint8_t>(data, width));
  }
  std::optional<StopReason> stop_reason(int milliseconds = 50) {
    return machine->stop().wait(std::chrono::milliseconds(milliseconds));
  }

  RecordingInterruptSink irqs;
  std::unique_ptr<Machine> machine;
};

}  // namespace hv::device_test
