// Measures the supervisor through its API (bench/supervisor.sh runs it against a fresh
// `hv serve`): guests created and started per second, request latency, the VMM's memory
// overhead, and what idle micro-VMs cost the host.
//
//   hv_api_bench SOCKET GUESTS_DIR ROOTFS [IDLE_COUNTS...]
//   hv_api_bench --memory-of PID GUEST_BYTES      (a peer VMM, measured the same way)
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/http.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string g_socket;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

nlohmann::json call(const std::string& method, const std::string& target,
                    const std::string& body = "", double* latency_ms = nullptr) {
  const auto start = Clock::now();
  hv::Result<hv::api::HttpResponse> response =
      hv::api::http_request(g_socket, method, target, body);
  if (latency_ms != nullptr) {
    *latency_ms = ms_since(start);
  }
  if (!response.ok()) {
    fmt::print(stderr, "api_bench: {} {}: {}\n", method, target, response.error().to_string());
    std::exit(1);
  }
  if (response->status >= 300) {
    fmt::print(stderr, "api_bench: {} {}: HTTP {} {}\n", method, target, response->status,
               response->body);
    std::exit(1);
  }
  return response->body.empty() ? nlohmann::json() : nlohmann::json::parse(response->body);
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  return values[index];
}

void wait_until_all_ended() {
  for (;;) {
    bool running = false;
    for (const auto& g : call("GET", "/v1/guests")) {
      running = running || g["state"] == "running";
    }
    if (!running) {
      return;
    }
    std::this_thread::sleep_for(20ms);
  }
}

void remove_all() {
  for (const auto& g : call("GET", "/v1/guests")) {
    call("DELETE", fmt::format("/v1/guests/{}?force=true", g["name"].get<std::string>()));
  }
}

// Creates and starts `count` guests one after the other from one client, as fast as the API
// takes them; prints guests per second and the latency of each kind of request.
void start_rate(const std::string& label, int count,
                const std::function<nlohmann::json(int)>& spec) {
  std::vector<double> creates, starts;
  const auto begin = Clock::now();
  for (int i = 0; i < count; ++i) {
    double latency = 0;
    call("POST", "/v1/guests", spec(i).dump(), &latency);
    creates.push_back(latency);
    call("POST", fmt::format("/v1/guests/{}-{}/start", label, i), "", &latency);
    starts.push_back(latency);
  }
  const double elapsed = ms_since(begin);
  wait_until_all_ended();
  const double to_end = ms_since(begin);
  fmt::print(
      "{:<10} {} guests: {:.1f} created+started/s ({:.0f} ms); all ended after {:.0f} ms\n"
      "{:<10} create latency median {:.2f} ms p99 {:.2f} ms; start latency median {:.2f} ms p99 "
      "{:.2f} ms\n",
      label, count, count / (elapsed / 1000), elapsed, to_end, label, percentile(creates, 0.5),
      percentile(creates, 0.99), percentile(starts, 0.5), percentile(starts, 0.99));
  remove_all();
}

std::vector<double> get_latencies(int count, const std::string& target) {
  std::vector<double> latencies;
  for (int i = 0; i < count; ++i) {
    double latency = 0;
    call("GET", target, "", &latency);
    latencies.push_back(latency);
  }
  return latencies;
}

struct Memory {
  uint64_t rss_kib = 0;      // all resident pages, shared library text included
  uint64_t private_kib = 0;  // pages only this process has: what one more VMM really costs
  uint64_t guest_kib = 0;    // resident in the guest-memory mapping (the one of guest_bytes)
};

Memory memory_of(int pid, uint64_t guest_bytes) {
  std::ifstream smaps(fmt::format("/proc/{}/smaps", pid));
  std::string line;
  Memory m;
  bool in_guest = false;
  while (std::getline(smaps, line)) {
    unsigned long long from = 0, to = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx ", &from, &to) == 2 && line.find(':') > 20) {
      in_guest = to - from == guest_bytes;
      continue;
    }
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "Rss: %llu kB", &kib) == 1) {
      m.rss_kib += kib;
      if (in_guest) {
        m.guest_kib += kib;
      }
    } else if (std::sscanf(line.c_str(), "Private_Clean: %llu kB", &kib) == 1 ||
               std::sscanf(line.c_str(), "Private_Dirty: %llu kB", &kib) == 1) {
      m.private_kib += kib;
    }
  }
  return m;
}

double guests_cpu_seconds() {
  double total = 0;
  for (const auto& g : call("GET", "/v1/guests")) {
    if (g["cpu_seconds"].is_number()) {
      total += g["cpu_seconds"].get<double>();
    }
  }
  return total;
}

uint64_t busy_jiffies() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return user + nice + system + irq + softirq;
}

}  // namespace

int main(int argc, char** argv) {
  // A peer's process (QEMU), measured the same way as hv's VMM.
  if (argc == 4 && std::string_view(argv[1]) == "--memory-of") {
    const Memory m = memory_of(std::atoi(argv[2]), std::stoull(argv[3]));
    fmt::print(
        "RSS {} KiB, guest memory resident {} KiB; RSS - guest = {} KiB ({:.2f} MiB); private - "
        "guest = {} KiB ({:.2f} MiB)\n",
        m.rss_kib, m.guest_kib, m.rss_kib - m.guest_kib, (m.rss_kib - m.guest_kib) / 1024.0,
        m.private_kib - m.guest_kib, (m.private_kib - m.guest_kib) / 1024.0);
    return 0;
  }
  if (argc < 4) {
    fmt::print(stderr, "usage: hv_api_bench SOCKET GUESTS_DIR ROOTFS [IDLE_COUNTS...]\n");
    return 2;
  }
  g_socket = argv[1];
  const std::string guests = argv[2];
  const std::string rootfs = argv[3];
  std::vector<int> idle_counts;
  for (int i = 4; i < argc; ++i) {
    idle_counts.push_back(std::atoi(argv[i]));
  }
  remove_all();

  auto machine = [&](const std::string& name, const std::string& image, int memory_mib) {
    return nlohmann::json{{"name", name},
                          {"engine", "kvm"},
                          {"kernel", guests + "/" + image},
                          {"memory_mib", memory_mib}};
  };
  start_rate("kvm", 40, [&](int i) { return machine(fmt::format("kvm-{}", i), "hello.elf", 16); });
  start_rate("container", 40, [&](int i) {
    return nlohmann::json{{"name", fmt::format("container-{}", i)},
                          {"engine", "container"},
                          {"rootfs", rootfs},
                          {"args", {"true"}}};
  });

  // Request latency of a state query, on a quiet supervisor with one guest.
  call("POST", "/v1/guests", machine("probe", "idle.elf", 16).dump());
  const std::vector<double> quiet = get_latencies(2000, "/v1/guests/probe");
  fmt::print("GET /v1/guests/probe x2000: median {:.3f} ms p99 {:.3f} ms\n", percentile(quiet, 0.5),
             percentile(quiet, 0.99));
  remove_all();

  // Memory overhead of one idle 128 MiB, 1-vCPU micro-VM: its VMM's RSS minus guest memory.
  call("POST", "/v1/guests", machine("mem", "idle.elf", 128).dump());
  call("POST", "/v1/guests/mem/start");
  std::this_thread::sleep_for(1s);
  const int pid = call("GET", "/v1/guests/mem")["pid"].get<int>();
  const Memory m = memory_of(pid, 128ull << 20);
  fmt::print(
      "memory (128 MiB guest): VMM RSS {} KiB, guest memory resident {} KiB; RSS - guest = {} KiB "
      "({:.2f} MiB); private - guest = {} KiB ({:.2f} MiB)\n",
      m.rss_kib, m.guest_kib, m.rss_kib - m.guest_kib, (m.rss_kib - m.guest_kib) / 1024.0,
      m.private_kib - m.guest_kib, (m.private_kib - m.guest_kib) / 1024.0);
  remove_all();

  // Idle density: n idle 16 MiB micro-VMs; what the host spends on them, and what a request and
  // one more guest's start cost while they sit there.
  for (int count : idle_counts) {
    const auto begin = Clock::now();
    for (int i = 0; i < count; ++i) {
      const std::string name = fmt::format("idle-{}", i);
      call("POST", "/v1/guests", machine(name, "idle.elf", 16).dump());
      call("POST", fmt::format("/v1/guests/{}/start", name));
    }
    const double started_ms = ms_since(begin);
    std::this_thread::sleep_for(2s);
    const uint64_t busy_before = busy_jiffies();
    const double guests_before = guests_cpu_seconds();
    const auto window = Clock::now();
    std::this_thread::sleep_for(10s);
    const double host_seconds = static_cast<double>(busy_jiffies() - busy_before) /
                                static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double cpu_seconds = guests_cpu_seconds() - guests_before;
    const double window_s = ms_since(window) / 1000;
    uint64_t private_kib = 0;
    int running = 0;
    for (const auto& g : call("GET", "/v1/guests")) {
      if (g["state"] == "running") {
        ++running;
        private_kib += memory_of(g["pid"].get<int>(), 16ull << 20).private_kib;
      }
    }
    const std::vector<double> latencies = get_latencies(200, "/v1/guests/idle-0");
    double one_more = 0;
    call("POST", "/v1/guests", machine("one-more", "hello.elf", 16).dump());
    const auto one_more_begin = Clock::now();
    call("POST", "/v1/guests/one-more/start");
    while (call("GET", "/v1/guests/one-more")["state"] == "running") {
      std::this_thread::sleep_for(1ms);
    }
    one_more = ms_since(one_more_begin);
    fmt::print(
        "idle {}: {} running (started in {:.0f} ms); their cgroups' CPU {:.4f} s per s ({:.4f} "
        "ms/s per VM; whole host busy {:.3f} s per s); private memory {:.1f} MiB ({:.2f} MiB per "
        "VM, guest memory included); GET median {:.3f} ms p99 {:.3f} ms; one more hello VM "
        "start-to-end {:.1f} ms\n",
        count, running, started_ms, cpu_seconds / window_s,
        running > 0 ? 1000 * cpu_seconds / window_s / running : 0.0, host_seconds / window_s,
        private_kib / 1024.0, running > 0 ? private_kib / 1024.0 / running : 0.0,
        percentile(latencies, 0.5), percentile(latencies, 0.99), one_more);
    remove_all();
  }
  return 0;
}
