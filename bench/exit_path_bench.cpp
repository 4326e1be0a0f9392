// Costs on hv's side of a VM exit that do not depend on the hypervisor: the bus lookup and the
// guest-memory bounds check every device access goes through.
#include <benchmark/benchmark.h>

#include "vm/guest_memory.hpp"
#include "vm/io_bus.hpp"

namespace {

class NullDevice final : public hv::IoDevice {
 public:
  std::string_view name() const override { return "null"; }
  void read(uint64_t, std::span<uint8_t> data) override { hv::set_io_value(data, 0); }
  void write(uint64_t, std::span<const uint8_t> data) override {
    benchmark::DoNotOptimize(data.data());
  }
};

void BM_PortBusWrite(benchmark::State& state) {
  hv::IoBus bus("port-I/O");
  NullDevice devices[12];
  const uint16_t bases[12] = {0x20, 0x40, 0x60,  0x64,  0x70,  0x80,
                              0xa0, 0xf4, 0x2f8, 0x3f8, 0xcf8, 0xcfc};
  for (int i = 0; i < 12; ++i) {
    (void)bus.add(bases[i], bases[i] == 0x3f8 ? 8 : 4, &devices[i]);
  }
  uint8_t byte = 'x';
  for (auto _ : state) {
    benchmark::DoNotOptimize(bus.write(0x3f8, std::span<const uint8_t>(&byte, 1)));
  }
}
BENCHMARK(BM_PortBusWrite);

void BM_GuestMemoryHostPointer(benchmark::State& state) {
  auto memory = hv::GuestMemory::create(256ull << 20);
  uint64_t gpa = 0x123456;
  for (auto _ : state) {
    benchmark::DoNotOptimize(memory->host_pointer(gpa, 8));
    gpa = (gpa + 4096) & 0xfffffff;
  }
}
BENCHMARK(BM_GuestMemoryHostPointer);

}  // namespace
