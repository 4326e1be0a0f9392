#include "cli/run_command.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "common/size.hpp"
#include "supervisor/guest_spec.hpp"
#include "supervisor/monitor.hpp"
#include "vmm/vm_runner.hpp"

namespace hv::cli {

void add_run_options(CLI::App& command, RunOptions& o) {
  command.add_option("-f,--file", o.spec_file,
                     "run the guest a JSON guest spec describes (machine or container; the format "
                     "`hv create -f` takes), in the foreground, without a supervisor");
  command
      .add_option("--engine", o.engine,
                  "CPU engine: kvm (hardware-assisted) or emulate (software CPU)")
      ->capture_default_str()
      ->each([&o](const std::string&) { o.engine_given = true; });
  command.add_option("--kernel", o.kernel, "kernel image: ELF, multiboot, bzImage or flat binary");
  command.add_option("--demo", o.demo,
                     "linux: boot Debian's cloud kernel and hv's busybox initramfs from the image "
                     "cache (guests/linux/build-images.sh) on the software CPU, no other argument "
                     "needed");
  command.add_option("--initrd", o.initrds,
                     "initial ramdisk (Linux); multiboot: a module, may be repeated");
  command.add_option("--cmdline", o.cmdline, "kernel command line")->each([&o](const std::string&) {
    o.cmdline_given = true;
  });
  command.add_option("--memory,-m", o.memory, "guest RAM, e.g. 256M or 2G")->capture_default_str();
  command.add_option("--cpus", o.cpus, "number of vCPUs")->capture_default_str();
  command.add_option("--format", o.format, "kernel format: auto, multiboot, elf, linux, flat")
      ->capture_default_str();
  command
      .add_option("--load-address", o.load_address,
                  "flat binaries: physical load address, started in real mode")
      ->capture_default_str();
  command.add_option("--timeout", o.timeout_seconds,
                     "stop the guest after this many seconds (exit status 14)");
  command.add_flag("--trace-exits", o.trace_exits,
                   "print VM-exit counts by reason, port and hypercall (emulator: instruction, "
                   "port and hypercall counts) at the end");
  command.add_option("--trace", o.trace_path,
                     "emulator: write every executed instruction (disassembled) and every "
                     "interrupt/exception to FILE ('-' for stderr)");
  command.add_option("--profile", o.profile_path,
                     "emulator: sample the guest's code address every millisecond and write the "
                     "counts to FILE (bench/linux_profile.sh names the kernel functions)");
  command.add_option("--disk", o.disks,
                     "disk image: FILE[,ro][,direct][,serial=ID][,if=virtio|ide] (repeatable; "
                     "virtio-blk by default; IDE: primary, then secondary channel)");
  command.add_option("--net", o.nets,
                     "a virtio-net card on a TAP interface: tap=NAME[,mac=52:54:00:12:34:56] "
                     "(repeatable; the interface is created if missing)");
  command
      .add_option("--console", o.console,
                  "the guest's console device: serial (16550 UART, ttyS0) or virtio "
                  "(virtio-console, hvc0; the UART stays for early output)")
      ->capture_default_str();
  command.add_flag("--rng", o.rng, "a virtio-rng device fed by the host's getrandom()");
  command.add_flag("--no-reboot", o.no_reboot,
                   "exit (status 0) when the guest resets instead of restarting it");
  command.add_flag("--sandbox", o.sandbox,
                   "confine the VMM before the guest runs: a private mount namespace whose root "
                   "holds only the device nodes it needs, no capabilities, and seccomp "
                   "allow-lists per thread (needs root; see docs/security.md)");
}

namespace {

Result<uint64_t> parse_address(const std::string& text) {
  std::string_view s = text;
  int base = 10;
  if (s.starts_with("0x") || s.starts_with("0X")) {
    s.remove_prefix(2);
    base = 16;
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return make_error(ExitStatus::Usage, "--load-address '{}' is not a number", text);
  }
  return value;
}

// Where guests/linux/build-images.sh leaves Debian's kernel and hv's initramfs.
std::string linux_image_cache() {
  if (const char* cache = std::getenv("HV_CACHE"); cache != nullptr && *cache != 0) {
    return std::string(cache) + "/linux";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != 0 ? home : "/root") + "/.cache/hv/linux";
}

Status apply_demo(RunOptions& o) {
  if (o.demo.empty()) {
    if (o.kernel.empty()) {
      return make_error(ExitStatus::Usage, "--kernel is required (or --demo linux)");
    }
    return {};
  }
  if (o.demo != "linux") {
    return make_error(ExitStatus::Usage, "unknown demo '{}' (available: linux)", o.demo);
  }
  if (!o.kernel.empty() || !o.initrds.empty()) {
    return make_error(ExitStatus::Usage, "--demo linux brings its own kernel and initrd");
  }
  const std::string cache = linux_image_cache();
  o.kernel = cache + "/vmlinuz";
  o.initrds = {cache + "/initrd.img"};
  if (::access(o.kernel.c_str(), R_OK) != 0 || ::access(o.initrds[0].c_str(), R_OK) != 0) {
    return make_error(ExitStatus::FileMissing,
                      "the Linux demo images are not in {}: build them with "
                      "guests/linux/build-images.sh",
                      cache);
  }
  if (!o.cmdline_given) {
    o.cmdline = "console=ttyS0";
  }
  // Debian's kernel needs hardware virtualization to boot on the KVM engine; the software CPU
  // boots it anywhere.
  if (!o.engine_given) {
    o.engine = "emulate";
  }
  return {};
}

Result<VmConfig> to_config(RunOptions o) {
  HV_TRY(apply_demo(o));
  VmConfig c;
  c.engine = o.engine;
  c.kernel_path = o.kernel;
  c.initrd_paths = o.initrds;
  c.cmdline = o.cmdline;
  c.memory_bytes = HV_TRY(parse_size(o.memory));
  c.cpu_count = o.cpus;
  c.format = HV_TRY(parse_kernel_format(o.format));
  c.flat_load_address = HV_TRY(parse_address(o.load_address));
  if (o.timeout_seconds < 0) {
    return make_error(ExitStatus::Usage, "--timeout must not be negative");
  }
  if (o.timeout_seconds > 0) {
    c.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_seconds * 1000));
  }
  c.trace_exits = o.trace_exits;
  c.trace_path = o.trace_path;
  c.profile_path = o.profile_path;
  c.restart_on_reset = !o.no_reboot;
  c.rng = o.rng;
  c.sandbox = o.sandbox;
  for (const std::string& disk : o.disks) {
    c.disks.push_back(HV_TRY(parse_disk_option(disk)));
  }
  for (const std::string& net : o.nets) {
    c.nets.push_back(HV_TRY(parse_net_option(net, c.nets.size())));
  }
  c.console = HV_TRY(parse_console_option(o.console));
  return c;
}

// Entries whose reason starts with a space break other counts down: "  port 0x03f8 out" per
// port and direction, "  hypercall 1 CONSOLE_WRITE" per call number (on KVM each hypercall is
// one of the port-I/O exits too). They are listed apart and left out of the totals.
void print_breakdown(const std::vector<ExitCount>& exits, std::string_view prefix,
                     std::string_view header) {
  bool printed_header = false;
  for (const ExitCount& e : exits) {
    if (e.reason.starts_with(prefix)) {
      if (!printed_header) {
        fmt::print(stderr, "{}\n", header);
        printed_header = true;
      }
      fmt::print(stderr, "  {:>12}  {}\n", e.count, e.reason.substr(prefix.size()));
    }
  }
}

void print_exit_counts(const std::string& engine, const std::vector<ExitCount>& exits) {
  const bool kvm = engine == "kvm";
  if (kvm) {
    uint64_t total = 0;
    for (const ExitCount& e : exits) {
      if (!e.reason.starts_with(" ")) {
        total += e.count;
      }
    }
    fmt::print(stderr, "VM exits: {} in total\n", total);
  } else {
    // The software CPU has no VM exits; it reports what it did instead.
    fmt::print(stderr, "emulation counters:\n");
  }
  for (const ExitCount& e : exits) {
    if (!e.reason.starts_with(" ")) {
      fmt::print(stderr, "  {:>12}  {}\n", e.count, e.reason);
    }
  }
  print_breakdown(exits, "  port ", kvm ? "port I/O exits by port:" : "port I/O by port:");
  print_breakdown(exits, "  hypercall ", "hypercalls by number:");
  print_breakdown(exits, "  virtio ", "virtio devices:");
}

// `hv run -f`: the spec's machine, or its container, here in the foreground.
Result<VmConfig> config_from_spec(const RunOptions& options, std::optional<GuestSpec>* container) {
  if (!options.kernel.empty() || !options.demo.empty() || !options.initrds.empty() ||
      !options.disks.empty() || !options.nets.empty()) {
    return make_error(ExitStatus::Usage,
                      "-f takes the whole guest from the spec: --kernel, --demo, --initrd, "
                      "--disk and --net go in the spec instead");
  }
  Result<GuestSpec> spec = load_guest_spec_file(options.spec_file);
  if (!spec.ok()) {
    return std::move(spec).error();
  }
  if (!spec->is_machine()) {
    container->emplace(std::move(*spec));
    return VmConfig{};
  }
  VmConfig config = HV_TRY(to_vm_config(*spec));
  // Confined as under the supervisor where hv may confine itself (root).
  config.sandbox = options.sandbox || ::geteuid() == 0;
  config.trace_exits = options.trace_exits;
  return config;
}

}  // namespace

int run_command(const RunOptions& options) {
  std::optional<GuestSpec> container;
  Result<VmConfig> config =
      options.spec_file.empty() ? to_config(options) : config_from_spec(options, &container);
  if (!config) {
    fmt::print(stderr, "hv: error: {}\n", config.error().to_string());
    return to_int(config.error().status);
  }
  if (container) {
    return run_container_in_foreground(*container, "/run/hv");
  }
  Result<VmOutcome> outcome = run_vm(*config);
  if (!outcome) {
    fmt::print(stderr, "hv: error: {}\n", outcome.error().to_string());
    return to_int(outcome.error().status);
  }
  const StopReason& reason = outcome->reason;
  switch (reason.kind) {
    case StopKind::PowerOff:
    case StopKind::DebugExit:
      break;
    case StopKind::UserQuit:
      if (reason.exit_status != 0) {
        fmt::print(stderr, "\nhv: {}\n", reason.message);
      }
      break;
    case StopKind::Reset:
      fmt::print(stderr, "hv: {}; exiting (--no-reboot)\n", reason.message);
      break;
    case StopKind::GuestCrash:
      fmt::print(stderr, "hv: guest crashed: {}\n", reason.message);
      if (!reason.details.empty()) {
        fmt::print(stderr, "{}\n", reason.details);
      }
      break;
    case StopKind::Timeout:
    case StopKind::HostError:
      fmt::print(stderr, "hv: {}\n", reason.message);
      break;
  }
  if (config->trace_exits) {
    print_exit_counts(config->engine, outcome->exits);
  }
  return reason.exit_status;
}

}  // namespace hv::cli
