// How a machine ends. Any thread (a vCPU hitting a triple fault, a device seeing the debug-exit
// port, the console seeing Ctrl-A x, the timeout) requests a stop; the first request wins, every
// vCPU is kicked out of guest code, and the thread that waits gets the reason.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/exit_status.hpp"

namespace hv {

enum class StopKind { PowerOff, Reset, DebugExit, GuestCrash, Timeout, UserQuit, HostError };

struct StopReason {
  StopKind kind = StopKind::PowerOff;
  int exit_status = 0;
  std::string message;  // one line, for stderr
  std::string details;  // register dump and the like, may be empty
};

class StopControl {
 public:
  // Returns true when this call was the first and decided the outcome.
  bool request(StopReason reason);
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  // Waits for a stop; with a timeout, returns nullopt when it expires first.
  std::optional<StopReason> wait(std::optional<std::chrono::milliseconds> timeout);
  // Called (from the requesting thread) once a stop has been requested, to interrupt vCPUs.
  void on_stop(std::function<void()> kick);

 private:
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<StopReason> reason_;
  std::vector<std::function<void()>> kicks_;
};

}  // namespace hv
