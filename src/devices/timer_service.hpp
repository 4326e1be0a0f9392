// One host thread that runs device callbacks at host-monotonic deadlines: the PIT's periodic
// interrupt, the local APIC timers. Devices compute their counters from elapsed host time, so a
// late callback only delays an interrupt, it never skews a counter the guest reads.
//
// Locking: arm()/cancel()/add()/remove() take the service's own mutex only, so a device may call
// them while holding its own lock (device lock -> service lock). Callbacks run on the service
// thread with no service lock held; they may take device locks and re-arm timers. A callback may
// run once more after cancel() if it was already due and being dispatched: devices re-check their
// own state in the callback instead of trusting that it is still wanted.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

namespace hv {

class TimerService {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void()>;
  using TimerId = uint64_t;
  static constexpr TimerId kNoTimer = 0;

  TimerService();
  ~TimerService();  // stops the thread; pending timers never fire
  TimerService(const TimerService&) = delete;
  TimerService& operator=(const TimerService&) = delete;

  // Registers a callback, initially disarmed.
  TimerId add(Callback callback);
  // (Re)arms `id` to fire once at `deadline` (a deadline in the past fires at once). Unknown ids
  // are ignored.
  void arm(TimerId id, Clock::time_point deadline);
  void cancel(TimerId id);
  // Cancels and forgets `id`. Waits until a running invocation of its callback has returned
  // (unless called from that callback), so the callback's captures may be destroyed afterwards.
  // The caller must not hold a lock that the callback takes.
  void remove(TimerId id);

 private:
  struct Entry {
    std::shared_ptr<Callback> callback;
    bool armed = false;
    Clock::time_point deadline;
  };
  void run();

  std::mutex mutex_;                  // guards everything below
  std::condition_variable wake_;      // the schedule changed or stop requested
  std::condition_variable finished_;  // a callback returned
  std::map<TimerId, Entry> entries_;
  std::set<std::pair<Clock::time_point, TimerId>> schedule_;  // armed entries by deadline
  TimerId next_id_ = 1;
  TimerId running_ = kNoTimer;
  bool stopping_ = false;
  std::thread thread_;  // last: starts after the members above exist
};

}  // namespace hv
