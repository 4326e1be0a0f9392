#include "emu/profiler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace hv::emu {

Result<std::unique_ptr<Profiler>> Profiler::open(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    return Error::from_errno(fmt::format("cannot create the profile file '{}'", path));
  }
  return std::unique_ptr<Profiler>(new Profiler(file, path));
}

Profiler::~Profiler() {
  stop();
  write();
  std::fclose(file_);
}

void Profiler::stop() {
  std::call_once(started_, [] {});  // a later start() must not begin sampling
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (sampler_.joinable()) {
    sampler_.join();
  }
}

Profiler::Slot& Profiler::add_vcpu(std::function<void()> request) {
  slots_.push_back(std::make_unique<Slot>());
  slots_.back()->request = std::move(request);
  return *slots_.back();
}

void Profiler::start() {
  std::call_once(started_, [this] { sampler_ = std::thread([this] { sample_loop(); }); });
}

void Profiler::sample_loop() {
  std::unique_lock lock(mutex_);
  auto next = std::chrono::steady_clock::now() + kInterval;
  while (!stop_cv_.wait_until(lock, next, [this] { return stopping_; })) {
    for (auto& slot : slots_) {
      slot->request();
    }
    next += kInterval;
  }
}

void Profiler::write() {
  std::unordered_map<uint64_t, uint64_t> merged;
  uint64_t total = 0;
  for (const auto& slot : slots_) {
    for (auto [address, count] : slot->samples) {
      merged[address] += count;
      total += count;
    }
  }
  std::vector<std::pair<uint64_t, uint64_t>> sorted(merged.begin(), merged.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  fmt::print(file_, "# hv profile: {} samples of {} vCPU(s), one per {} us per vCPU\n", total,
             slots_.size(), kInterval.count());
  for (auto [address, count] : sorted) {
    fmt::print(file_, "{} {:016x}\n", count, address);
  }
}

}  // namespace hv::emu
