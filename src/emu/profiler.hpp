// `hv run --engine emulate --profile FILE`: a sampling profile of where the guest spends its
// time. A host thread asks every vCPU for a sample once per millisecond; the vCPU takes it at its
// next block boundary (the check it makes anyway), recording the linear address of the code it
// is running, so the run loop pays nothing between samples. A vCPU asleep in HLT answers when it
// wakes, so idle time shows at the guest's idle loop, as in a host profiler.
//
// The file lists "samples address" lines, most sampled first; bench/linux_profile.sh folds them
// into kernel functions with the kernel's System.map.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"

namespace hv::emu {

class Profiler {
 public:
  static constexpr std::chrono::microseconds kInterval{1000};

  // Fails when `path` cannot be created; nothing runs before start().
  static Result<std::unique_ptr<Profiler>> open(const std::string& path);
  ~Profiler();  // stops the sampler and writes the file
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  // One per vCPU, before start(): `request` asks that vCPU for a sample (any thread).
  struct Slot {
    std::function<void()> request;
    std::unordered_map<uint64_t, uint64_t> samples;  // written by the vCPU's thread only
  };
  Slot& add_vcpu(std::function<void()> request);
  // The first call starts the sampler (once every vCPU is added); stop() ends it before the
  // vCPUs it calls go away. Both may be called any number of times.
  void start();
  void stop();
  // On the vCPU's thread.
  static void record(Slot& slot, uint64_t linear_rip) { ++slot.samples[linear_rip]; }

 private:
  Profiler(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  void sample_loop();
  void write();

  std::FILE* file_;
  std::string path_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by mutex_
  std::once_flag started_;
  std::thread sampler_;
};

}  // namespace hv::emu
