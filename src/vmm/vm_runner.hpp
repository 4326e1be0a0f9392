// Builds one virtual machine from a validated configuration and runs it to the end, in one
// readable sequence: memory, devices, firmware tables, kernel, engine, vCPUs, console, wait.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boot/kernel_loader.hpp"
#include "common/error.hpp"
#include "vm/engine.hpp"
#include "vm/stop_control.hpp"

namespace hv {

// A disk image and how the guest sees it.
struct DiskConfig {
  enum class Interface { Virtio, Ide };
  std::string path;
  bool read_only = false;
  bool direct = false;  // O_DIRECT: the host's page cache is bypassed
  std::string serial;   // empty: derived from the file name
  Interface interface = Interface::Virtio;
};

// `--disk FILE[,ro][,direct][,serial=ID][,if=virtio|ide]`: the options after the file name, in
// any order.
Result<DiskConfig> parse_disk_option(std::string_view text);

// A virtio-net card and its host end.
struct NetConfig {
  std::string tap;  // the TAP interface, created if it does not exist
  std::array<uint8_t, 6> mac{};
};

// "52:54:00:12:34:56": six hex pairs, unicast (the first byte even).
Result<std::array<uint8_t, 6>> parse_mac(std::string_view text);

// `--net tap=NAME[,mac=52:54:00:12:34:56]`; without a MAC the card gets 52:54:00:12:34:(56 +
// index), QEMU's scheme, so that several cards differ.
Result<NetConfig> parse_net_option(std::string_view text, size_t index);

// Which device carries the guest's console (the terminal's input and the guest's output): the
// 16550 UART (ttyS0), or a virtio-console (hvc0). The UART exists either way, for early output.
enum class ConsoleDevice { Serial, Virtio };
Result<ConsoleDevice> parse_console_option(std::string_view text);

// The legacy IDE channels a PC has, each with one disk (the master): primary 0x1f0/0x3f6 on
// IRQ 14, secondary 0x170/0x376 on IRQ 15.
constexpr size_t kMaximumIdeDisks = 2;

struct VmConfig {
  std::string engine = "kvm";
  std::string kernel_path;
  std::vector<std::string> initrd_paths;
  std::string cmdline;
  KernelFormat format = KernelFormat::Auto;
  uint64_t flat_load_address = 0x7c00;
  uint64_t memory_bytes = 256ull << 20;
  uint32_t cpu_count = 1;
  std::optional<std::chrono::milliseconds> timeout;
  bool trace_exits = false;
  std::string trace_path;        // emulation engine: instruction trace ("-" = stderr)
  std::string profile_path;      // emulation engine: sampling profile of guest addresses
  bool restart_on_reset = true;  // false: a guest reset ends hv with status 0 (--no-reboot)
  int console_input_fd = 0;
  int console_output_fd = 1;
  std::vector<DiskConfig> disks;
  std::vector<NetConfig> nets;
  ConsoleDevice console = ConsoleDevice::Serial;
  bool rng = false;  // virtio-rng, fed by the host's getrandom()
  // Confine the VMM before the guest runs (vmm/sandbox.hpp): a mount jail, no capabilities, and
  // seccomp filters for the process and each thread. Needs root (CAP_SYS_ADMIN for the jail).
  bool sandbox = false;
  // Directories the VMM still writes once confined, bound read-write at the same absolute path
  // (the supervisor's state directory for the guest, where it writes the result file).
  std::vector<std::string> sandbox_writable_dirs;
  // Runs once the process is confined (or at that point without a sandbox), before any thread of
  // the machine starts: a caller's own threads start here, since the mount jail can only be
  // entered while the process has one thread (the supervisor's console relay).
  std::function<Status()> on_confined;
};

// Where virtio-mmio devices go: one 4 KiB window each from kVirtioMmioBase in the 32-bit MMIO
// hole, each with its own ISA interrupt (edge, as the legacy IRQs are declared). Guests learn of
// them from the DSDT (_HID "LNRO0005", Linux's virtio_mmio ACPI ID).
constexpr uint64_t kVirtioMmioBase = 0xd000'0000;
constexpr uint64_t kVirtioMmioStride = 0x1000;
inline constexpr uint32_t kVirtioIrqs[] = {5, 6, 7, 10, 11, 3};
constexpr size_t kMaximumVirtioDevices = std::size(kVirtioIrqs);

struct VmOutcome {
  StopReason reason;
  std::vector<ExitCount> exits;
};

constexpr uint64_t kMinimumMemory = 2ull << 20;
constexpr uint32_t kMaximumCpus = 64;

// How many virtio-mmio windows the configuration needs.
size_t virtio_device_count(const VmConfig& config);

// Checks sizes against the host before anything is allocated.
Status validate(const VmConfig& config);

// Runs the machine; the error path is for problems before the guest starts (bad image, no KVM).
Result<VmOutcome> run_vm(const VmConfig& config);

}  // namespace hv
