#include "vmm/vm_runner.hpp"

#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "common/fd.hpp"
#include "common/file.hpp"
#include "devices/ata_disk.hpp"
#include "devices/block_image.hpp"
#include "devices/pc_platform.hpp"
#include "devices/serial_16550.hpp"
#include "devices/tap_device.hpp"
#include "emu/emu_engine.hpp"
#include "kvm/kvm_engine.hpp"
#include "virtio/virtio_blk.hpp"
#include "virtio/virtio_console.hpp"
#include "virtio/virtio_mmio.hpp"
#include "virtio/virtio_net.hpp"
#include "virtio/virtio_rng.hpp"
#include "vm/io_thread.hpp"
#include "vmm/console.hpp"
#include "vmm/sandbox.hpp"
#include "vmm/virtio_io.hpp"

namespace hv {

namespace {

uint64_t host_memory_bytes() {
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page_size = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * page_size : 0;
}

// Lets tests and unusual hosts point hv at another KVM device node.
std::string kvm_device_path() {
  if (const char* device = std::getenv("HV_KVM_DEVICE"); device != nullptr && *device != 0) {
    return device;
  }
  return kvm::KvmOptions{}.device_path;
}

Result<std::unique_ptr<Engine>> create_engine(const VmConfig& config, Machine& machine) {
  if (config.engine == "kvm") {
    kvm::KvmHostInfo host = kvm::KvmHostInfo::probe();
    if (std::string note = host.limitations(); !note.empty()) {
      fmt::print(stderr, "{}\n", note);
    }
    kvm::KvmOptions options{.trace_exits = config.trace_exits};
    options.device_path = kvm_device_path();
    return std::unique_ptr<Engine>(HV_TRY(kvm::KvmEngine::create(machine, options)));
  }
  if (config.engine == "emulate") {
    return std::unique_ptr<Engine>(
        HV_TRY(emu::EmuEngine::create(machine, {.trace_path = config.trace_path,
                                                .profile_path = config.profile_path,
                                                .trace_exits = config.trace_exits})));
  }
  return make_error(ExitStatus::Usage, "unknown engine '{}' (available: kvm, emulate)",
                    config.engine);
}

// SIGINT/SIGTERM/SIGHUP end the guest cleanly (terminal restored, exit status 128 + signal).
class TerminationSignals {
 public:
  TerminationSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    fd_.reset(::signalfd(-1, &set_, SFD_NONBLOCK | SFD_CLOEXEC));
  }
  ~TerminationSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  int fd() const { return fd_.get(); }
  std::optional<int> pending() {
    signalfd_siginfo info{};
    if (fd_.valid() && ::read(fd_.get(), &info, sizeof(info)) == sizeof(info)) {
      return static_cast<int>(info.ssi_signo);
    }
    return std::nullopt;
  }

 private:
  sigset_t set_{};
  sigset_t old_{};
  Fd fd_;
};

}  // namespace

Status validate(const VmConfig& config) {
  if (config.memory_bytes < kMinimumMemory) {
    return make_error(ExitStatus::BadMemorySize, "memory size {} KiB is too small (minimum {} MiB)",
                      config.memory_bytes >> 10, kMinimumMemory >> 20);
  }
  if (config.memory_bytes % 4096 != 0) {
    return make_error(ExitStatus::BadMemorySize, "memory size {} is not a multiple of 4 KiB",
                      config.memory_bytes);
  }
  if (uint64_t host = host_memory_bytes(); host != 0 && config.memory_bytes > host) {
    return make_error(ExitStatus::BadMemorySize,
                      "memory size {} MiB is larger than this host's {} MiB of RAM",
                      config.memory_bytes >> 20, host >> 20);
  }
  if (!config.trace_path.empty() && config.engine != "emulate") {
    return make_error(ExitStatus::Usage,
                      "--trace needs --engine emulate (hardware-assisted guests run natively)");
  }
  if (!config.profile_path.empty() && config.engine != "emulate") {
    return make_error(ExitStatus::Usage,
                      "--profile needs --engine emulate (profile KVM guests with perf kvm)");
  }
  if (config.cpu_count < 1 || config.cpu_count > kMaximumCpus) {
    return make_error(ExitStatus::Usage, "--cpus {} is out of range (1..{})", config.cpu_count,
                      kMaximumCpus);
  }
  const auto ide_disks = static_cast<size_t>(
      std::ranges::count(config.disks, DiskConfig::Interface::Ide, &DiskConfig::interface));
  if (ide_disks > kMaximumIdeDisks) {
    return make_error(ExitStatus::Usage,
                      "{} IDE disks: a PC has {} legacy IDE channels (one disk on each here)",
                      ide_disks, kMaximumIdeDisks);
  }
  if (const size_t virtio = virtio_device_count(config); virtio > kMaximumVirtioDevices) {
    return make_error(ExitStatus::Usage,
                      "{} virtio devices (disks, network cards, console, rng): hv has interrupt "
                      "lines for {}",
                      virtio, kMaximumVirtioDevices);
  }
  return {};
}

size_t virtio_device_count(const VmConfig& config) {
  const auto virtio_disks = static_cast<size_t>(
      std::ranges::count(config.disks, DiskConfig::Interface::Virtio, &DiskConfig::interface));
  return virtio_disks + config.nets.size() + (config.console == ConsoleDevice::Virtio ? 1 : 0) +
         (config.rng ? 1 : 0);
}

Result<DiskConfig> parse_disk_option(std::string_view text) {
  DiskConfig disk;
  size_t comma = text.find(',');
  disk.path = std::string(text.substr(0, comma));
  if (disk.path.empty()) {
    return make_error(ExitStatus::Usage, "--disk '{}': the image file name is missing", text);
  }
  while (comma != std::string_view::npos) {
    const size_t next = text.find(',', comma + 1);
    const std::string_view option = text.substr(comma + 1, next - comma - 1);
    if (option == "ro") {
      disk.read_only = true;
    } else if (option == "direct") {
      disk.direct = true;
    } else if (option.starts_with("serial=")) {
      disk.serial = std::string(option.substr(7));
    } else if (option == "if=ide") {
      disk.interface = DiskConfig::Interface::Ide;
    } else if (option == "if=virtio") {
      disk.interface = DiskConfig::Interface::Virtio;
    } else {
      return make_error(
          ExitStatus::Usage,
          "--disk '{}': unknown option '{}' (ro, direct, serial=ID, if=virtio or if=ide)", text,
          option);
    }
    comma = next;
  }
  return disk;
}

Result<std::array<uint8_t, 6>> parse_mac(std::string_view text) {
  std::array<uint8_t, 6> mac{};
  std::string_view rest = text;
  for (size_t i = 0; i < mac.size(); ++i) {
    if (i > 0) {
      if (rest.empty() || rest.front() != ':') {
        return make_error(ExitStatus::Usage, "'{}' is not a MAC address like 52:54:00:12:34:56",
                          text);
      }
      rest.remove_prefix(1);
    }
    auto [end, ec] =
        std::from_chars(rest.data(), rest.data() + std::min<size_t>(rest.size(), 2), mac[i], 16);
    if (ec != std::errc() || end != rest.data() + std::min<size_t>(rest.size(), 2) ||
        rest.size() < 2) {
      return make_error(ExitStatus::Usage, "'{}' is not a MAC address like 52:54:00:12:34:56",
                        text);
    }
    rest.remove_prefix(2);
  }
  if (!rest.empty()) {
    return make_error(ExitStatus::Usage, "'{}' is not a MAC address like 52:54:00:12:34:56", text);
  }
  if ((mac[0] & 1) != 0) {
    return make_error(ExitStatus::Usage,
                      "MAC address {} is a multicast address (the first byte must be even)", text);
  }
  return mac;
}

Result<NetConfig> parse_net_option(std::string_view text, size_t index) {
  NetConfig net;
  net.mac = {0x52, 0x54, 0x00, 0x12, 0x34, static_cast<uint8_t>(0x56 + index)};
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string_view option = text.substr(start, comma - start);
    if (option.starts_with("tap=")) {
      net.tap = std::string(option.substr(4));
    } else if (option.starts_with("mac=")) {
      net.mac = HV_TRY(parse_mac(option.substr(4)));
    } else {
      return make_error(ExitStatus::Usage, "--net '{}': unknown option '{}' (tap=NAME, mac=MAC)",
                        text, option);
    }
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  if (net.tap.empty()) {
    return make_error(ExitStatus::Usage, "--net '{}': the TAP interface is missing (tap=NAME)",
                      text);
  }
  if (net.tap.size() >= IFNAMSIZ) {
    return make_error(ExitStatus::Usage, "--net '{}': interface name '{}' is longer than {}", text,
                      net.tap, IFNAMSIZ - 1);
  }
  return net;
}

Result<ConsoleDevice> parse_console_option(std::string_view text) {
  if (text == "serial") {
    return ConsoleDevice::Serial;
  }
  if (text == "virtio") {
    return ConsoleDevice::Virtio;
  }
  return make_error(ExitStatus::Usage, "--console '{}': expected serial or virtio", text);
}

namespace {

using Clock = std::chrono::steady_clock;

// The disk images, opened (and locked) once for the whole run, reboots included.
struct OpenDisks {
  std::vector<std::pair<const DiskConfig*, std::unique_ptr<BlockImage>>> images;
};

Result<OpenDisks> open_disks(const VmConfig& config) {
  OpenDisks disks;
  for (const DiskConfig& disk : config.disks) {
    disks.images.emplace_back(
        &disk, HV_TRY(BlockImage::open(
                   disk.path,
                   {.read_only = disk.read_only, .direct = disk.direct, .serial = disk.serial})));
  }
  return disks;
}

Status install_disks(Machine& machine, const OpenDisks& disks) {
  struct IdeChannel {
    uint64_t command_block;
    uint64_t control_port;
    uint32_t irq;
  };
  static constexpr std::array<IdeChannel, kMaximumIdeDisks> kIdeChannels = {{
      {AtaDisk::kCommandBlockBase, AtaDisk::kControlPort, AtaDisk::kIrq},
      {0x170, 0x376, 15},
  }};
  size_t ide = 0;
  for (const auto& [disk, image] : disks.images) {
    if (disk->interface != DiskConfig::Interface::Ide) {
      continue;
    }
    const IdeChannel& channel = kIdeChannels.at(ide++);
    AtaDisk* ata =
        machine.own(std::make_unique<AtaDisk>(machine.irq_line(channel.irq), image.get()));
    HV_TRY(machine.pio().add(channel.command_block, AtaDisk::kCommandBlockLength,
                             ata->command_block()));
    HV_TRY(machine.pio().add(channel.control_port, AtaDisk::kControlBlockLength,
                             ata->control_block()));
  }
  return {};
}

// The TAP interfaces of the network cards, opened once for the whole run, reboots included.
struct OpenNets {
  std::vector<std::unique_ptr<TapDevice>> taps;  // one per config.nets entry
};

Result<OpenNets> open_nets(const VmConfig& config) {
  OpenNets nets;
  for (const NetConfig& net : config.nets) {
    nets.taps.push_back(HV_TRY(TapDevice::open(net.tap, /*vnet_header=*/true)));
  }
  return nets;
}

// The virtio devices of one boot, as the machine owns them.
struct VirtioDevices {
  std::vector<VirtioMmio*> transports;  // window i at kVirtioMmioBase + i * kVirtioMmioStride
  VirtioConsole* console = nullptr;     // with --console virtio
};

// The virtio devices of the configuration, in the order their windows and IRQs are handed out
// (and the DSDT lists them, so that Linux names disks vda, vdb, ... in --disk order).
Result<std::vector<std::unique_ptr<VirtioDevice>>> make_virtio_devices(const VmConfig& config,
                                                                       const OpenDisks& disks,
                                                                       const OpenNets& nets,
                                                                       IoThread& io,
                                                                       CharSink* console_output) {
  std::vector<std::unique_ptr<VirtioDevice>> devices;
  for (const auto& [disk, image] : disks.images) {
    if (disk->interface == DiskConfig::Interface::Virtio) {
      devices.push_back(std::make_unique<VirtioBlk>(*image));
    }
  }
  for (size_t i = 0; i < nets.taps.size(); ++i) {
    auto net = std::make_unique<VirtioNet>(*nets.taps[i], config.nets[i].mac);
    HV_TRY(net->attach(io));
    devices.push_back(std::move(net));
  }
  if (config.console == ConsoleDevice::Virtio) {
    devices.push_back(std::make_unique<VirtioConsole>(console_output));
  }
  if (config.rng) {
    devices.push_back(std::make_unique<VirtioRng>());
  }
  return devices;
}

// The virtio devices as the DSDT announces them: Debian's kernel, like most distribution kernels,
// is built without virtio_mmio's command-line device list, so ACPI is how they are found.
std::vector<acpi::MmioDevice> virtio_acpi_devices(const VmConfig& config) {
  std::vector<acpi::MmioDevice> devices;
  for (size_t i = 0; i < virtio_device_count(config); ++i) {
    devices.push_back({"LNRO0005", kVirtioMmioBase + i * kVirtioMmioStride,
                       static_cast<uint32_t>(VirtioMmio::kRegionSize), kVirtioIrqs[i]});
  }
  return devices;
}

// Network cards receive on `io`, which must be stopped before the machine is destroyed.
Result<VirtioDevices> install_virtio_devices(Machine& machine, const VmConfig& config,
                                             const OpenDisks& disks, const OpenNets& nets,
                                             IoThread& io, CharSink* console_output) {
  VirtioDevices installed;
  std::vector<std::unique_ptr<VirtioDevice>> devices =
      HV_TRY(make_virtio_devices(config, disks, nets, io, console_output));
  for (size_t i = 0; i < devices.size(); ++i) {
    if (auto* console = dynamic_cast<VirtioConsole*>(devices[i].get())) {
      installed.console = console;
    }
    VirtioMmio* transport = machine.own(std::make_unique<VirtioMmio>(
        machine.memory(), machine.irq_line(kVirtioIrqs[i]), std::move(devices[i])));
    HV_TRY(machine.mmio().add(kVirtioMmioBase + i * kVirtioMmioStride, VirtioMmio::kRegionSize,
                              transport));
    installed.transports.push_back(transport);
  }
  return installed;
}

// How each virtio device was driven, as "  virtio ..." breakdown entries of the exit counts: a
// QueueNotify that reached the device model on a vCPU thread cost an exit (or, on the emulator,
// an MMIO write), one that rang a KVM doorbell did not.
void append_virtio_counts(const VirtioDevices& virtio, std::vector<ExitCount>& exits) {
  for (size_t i = 0; i < virtio.transports.size(); ++i) {
    const VirtioMmio& transport = *virtio.transports[i];
    const VirtioMmioCounts counts = transport.counts();
    const std::string device =
        fmt::format("{}@{:#x}", transport.name(), kVirtioMmioBase + i * kVirtioMmioStride);
    exits.push_back(
        {fmt::format("  virtio {} notifies on the vCPU", device), counts.register_notifies});
    exits.push_back(
        {fmt::format("  virtio {} notifies by doorbell", device), counts.doorbell_notifies});
    exits.push_back(
        {fmt::format("  virtio {} interrupts by irqfd", device), counts.interrupt_events});
  }
}

StopReason stopped_by_signal(int signal) {
  return {
      StopKind::UserQuit, 128 + signal, fmt::format("stopped by signal {}", strsignal(signal)), {}};
}

StopReason timed_out(const VmConfig& config) {
  return {StopKind::Timeout,
          to_int(ExitStatus::Timeout),
          fmt::format("guest still running after the {} ms timeout", config.timeout->count()),
          {}};
}

// One boot of the guest: a fresh machine, devices, firmware tables and vCPUs, run until it stops.
Result<VmOutcome> boot_once(const VmConfig& config, const BootConfig& boot, const OpenDisks& disks,
                            const OpenNets& nets, TerminationSignals& signals,
                            Clock::time_point deadline) {
  std::unique_ptr<Machine> machine =
      HV_TRY(Machine::create({.memory_bytes = config.memory_bytes, .cpu_count = config.cpu_count}));
  FdSink console_output(config.console_output_fd);
  // Device work that does not belong on a vCPU thread (frames arriving on a TAP). Declared after
  // the machine, so it stops before the devices its handlers use are destroyed.
  std::unique_ptr<IoThread> io = HV_TRY(IoThread::create("hv-io"));
  PcDevices devices{};
  HV_TRY(install_pc_devices(*machine, &console_output, &devices));
  HV_TRY(install_disks(*machine, disks));
  const VirtioDevices virtio =
      HV_TRY(install_virtio_devices(*machine, config, disks, nets, *io, &console_output));
  BootPlan plan = HV_TRY(load_kernel(machine->memory(), boot));

  std::unique_ptr<Engine> engine = HV_TRY(create_engine(config, *machine));
  // On KVM, queue notifications (ioeventfd) and interrupts (irqfd) bypass the vCPU threads: the
  // device work runs here. Null on the emulator. Declared after the engine and the machine, so
  // it stops before either is destroyed.
  const std::unique_ptr<IoThread> virtio_io = HV_TRY(
      start_virtio_io_thread(*engine, virtio.transports, kVirtioMmioBase, kVirtioMmioStride));
  std::vector<std::unique_ptr<Vcpu>> vcpus;
  for (uint32_t i = 0; i < config.cpu_count; ++i) {
    vcpus.push_back(HV_TRY(engine->create_vcpu(i)));
  }
  HV_TRY(vcpus[0]->set_state(plan.bsp));

  for (auto& vcpu : vcpus) {
    machine->stop().on_stop([v = vcpu.get()] { v->kick(); });
  }
  ConsoleInput::Deliver deliver = [serial = devices.serial](std::span<const uint8_t> bytes) {
    return serial->receive(bytes);
  };
  if (virtio.console != nullptr) {
    deliver = [console = virtio.console](std::span<const uint8_t> bytes) {
      return console->receive(bytes);
    };
  }
  ConsoleInput input(config.console_input_fd, std::move(deliver), machine->stop());
  HV_TRY(input.start());
  HV_TRY(io->start());

  std::vector<std::thread> threads;
  for (auto& vcpu : vcpus) {
    threads.emplace_back([v = vcpu.get()] {
      confine_this_thread(ThreadRole::Vcpu);
      v->run();
    });
  }

  // The main thread sleeps until something happens: a stop (a device, a vCPU), a signal, or the
  // timeout. An idle guest costs its VMM no wake-ups (bench/supervisor.sh: idle density).
  Fd stopped(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stopped.valid()) {
    machine->stop().request({StopKind::HostError,
                             to_int(ExitStatus::HostError),
                             "eventfd for the main loop failed",
                             {}});
  } else {
    machine->stop().on_stop([fd = stopped.get()] {
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof(one));
    });
  }
  StopReason reason;
  for (;;) {
    if (auto r = machine->stop().wait(std::chrono::milliseconds(0))) {
      reason = *r;
      break;
    }
    int timeout_ms = -1;
    if (deadline != Clock::time_point::max()) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, 60'000));
    }
    std::array<pollfd, 2> fds{};
    fds[0] = {signals.fd(), POLLIN, 0};
    fds[1] = {stopped.get(), POLLIN, 0};
    ::poll(fds.data(), fds.size(), timeout_ms);
    if (auto sig = signals.pending()) {
      machine->stop().request(stopped_by_signal(*sig));
      continue;
    }
    if (Clock::now() >= deadline) {
      machine->stop().request(timed_out(config));
    }
  }
  for (auto& t : threads) {
    t.join();
  }
  input.stop();
  std::vector<ExitCount> exits = engine->exit_counts();
  append_virtio_counts(virtio, exits);
  return VmOutcome{reason, std::move(exits)};
}

// A file the emulator opens on every boot (--trace, --profile), as an absolute path that is the
// same inside the sandbox's jail ("-", stderr, stays).
Result<std::string> absolute_output_path(const std::string& path) {
  if (path.empty() || path == "-" || path.starts_with('/')) {
    return path;
  }
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) {
    return make_error(ExitStatus::HostError, "cannot resolve {}: {}", path, ec.message());
  }
  return absolute.lexically_normal().string();
}

// What the jail holds for this configuration: the KVM device (reopened on every boot), the TUN
// clone device with network cards, the emulator's output files, the caller's writable
// directories. The KVM engine also tests whether /sys/module/kvm_pvm exists (for a note).
Result<SandboxPlan> sandbox_plan(const VmConfig& config) {
  SandboxPlan plan;
  if (config.engine == "kvm") {
    plan.devices.push_back(kvm_device_path());
    plan.existence_probes.emplace_back("/sys/module/kvm_pvm");
  }
  if (!config.nets.empty()) {
    plan.devices.emplace_back("/dev/net/tun");
  }
  for (const std::string& dir : config.sandbox_writable_dirs) {
    std::error_code ec;
    std::filesystem::path absolute = std::filesystem::absolute(dir, ec);
    if (ec) {
      return make_error(ExitStatus::HostError, "sandbox: cannot resolve {}: {}", dir, ec.message());
    }
    plan.writable_dirs.push_back(absolute.lexically_normal().string());
  }
  for (const std::string& file : {config.trace_path, config.profile_path}) {
    if (!file.empty() && file != "-") {
      plan.writable_files.push_back(file);
    }
  }
  return plan;
}

}  // namespace

Result<VmOutcome> run_vm(const VmConfig& original_config) {
  HV_TRY(validate(original_config));
  VmConfig absolute_config = original_config;
  if (original_config.sandbox) {
    absolute_config.trace_path = HV_TRY(absolute_output_path(original_config.trace_path));
    absolute_config.profile_path = HV_TRY(absolute_output_path(original_config.profile_path));
  }
  const VmConfig& config = absolute_config;

  BootConfig boot;
  boot.kernel_path = config.kernel_path;
  boot.kernel = HV_TRY(read_file(config.kernel_path));
  for (const std::string& path : config.initrd_paths) {
    boot.initrds.push_back({path, HV_TRY(read_file(path))});
  }
  boot.cmdline = config.cmdline;
  boot.acpi_devices = virtio_acpi_devices(config);
  boot.format = config.format;
  boot.flat_load_address = config.flat_load_address;
  boot.cpu_count = config.cpu_count;
  // Check the image before allocating anything for it.
  if (config.format == KernelFormat::Auto) {
    HV_TRY(detect_kernel_format(boot.kernel, config.kernel_path));
  }

  const OpenDisks disks = HV_TRY(open_disks(config));
  const OpenNets nets = HV_TRY(open_nets(config));
  TerminationSignals signals;  // blocked before any thread starts, so threads inherit the mask
  // Everything the guest needs from the host's file systems is open (or bound into the jail):
  // confine the process before guest memory exists and any thread starts.
  if (config.sandbox) {
    const SandboxPlan plan = HV_TRY(sandbox_plan(config));
    HV_TRY(enter_sandbox(plan));
  }
  if (config.on_confined) {
    HV_TRY(config.on_confined());
  }
  // --timeout bounds the whole run, restarts included.
  const auto deadline = config.timeout ? Clock::now() + *config.timeout : Clock::time_point::max();
  for (;;) {
    VmOutcome outcome = HV_TRY(boot_once(config, boot, disks, nets, signals, deadline));
    if (outcome.reason.kind != StopKind::Reset || !config.restart_on_reset) {
      return outcome;
    }
    // A guest that resets at once would otherwise never reach boot_once's checks.
    if (auto sig = signals.pending()) {
      outcome.reason = stopped_by_signal(*sig);
      return outcome;
    }
    if (Clock::now() >= deadline) {
      outcome.reason = timed_out(config);
      return outcome;
    }
    // A reset is a reboot, as on a PC: the same kernel, initrd and command line on a machine
    // as fresh as the first one.
    fmt::print(stderr, "hv: {}; restarting the guest\n", outcome.reason.message);
  }
}

}  // namespace hv
