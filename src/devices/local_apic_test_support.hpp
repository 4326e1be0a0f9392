// Fakes and register helpers shared by the APIC tests (header-only, test code only).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include "devices/local_apic.hpp"
#include "vm/io_device.hpp"

namespace hv::apic_test {

// Counts what a CPU would be told.
class RecordingSignals final : public CpuSignals {
 public:
  void interrupt_pending() override { ++interrupts; }
  void nmi() override { ++nmis; }
  void init() override { ++inits; }
  void startup(uint8_t vector) override {
    ++startups;
    last_startup_vector = vector;
  }

  std::atomic<int> interrupts{0};
  std::atomic<int> nmis{0};
  std::atomic<int> inits{0};
  std::atomic<int> startups{0};
  std::atomic<int> last_startup_vector{-1};
};

inline uint32_t read32(IoDevice& device, uint64_t offset) {
  uint8_t data[4] = {};
  device.read(offset, data);
  return static_cast<uint32_t>(io_value(data));
}

inline void write32(IoDevice& device, uint64_t offset, uint32_t value) {
  uint8_t data[4] = {};
  set_io_value(data, value);
  device.write(offset, std::span<const uint8_t>(data));
}

inline bool irr_bit(LocalApic& apic, uint8_t vector) {
  return ((read32(apic, 0x200 + (vector / 32) * 0x10) >> (vector % 32)) & 1) != 0;
}

inline bool isr_bit(LocalApic& apic, uint8_t vector) {
  return ((read32(apic, 0x100 + (vector / 32) * 0x10) >> (vector % 32)) & 1) != 0;
}

inline void software_enable(LocalApic& apic) {
  write32(apic, 0xf0, 0x1ff);
}

}  // namespace hv::apic_test
