// libFuzzer target: arbitrary files through kernel-format detection and every loader (the image
// is hostile input). Loading must fail cleanly or succeed inside guest memory, never crash.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "boot/kernel_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hv::GuestMemory memory = std::move(*hv::GuestMemory::create(32ull << 20));
  hv::BootConfig config;
  config.kernel_path = "fuzz";
  config.kernel.assign(data, data + size);
  config.cmdline = "console=ttyS0";
  for (hv::KernelFormat format : {hv::KernelFormat::Auto, hv::KernelFormat::Elf,
                                  hv::KernelFormat::Multiboot, hv::KernelFormat::Linux}) {
    config.format = format;
    (void)hv::load_kernel(memory, config);
  }
  return 0;
}
