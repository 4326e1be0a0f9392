#include "devices/timer_service.hpp"

#include "vmm/sandbox.hpp"

namespace hv {

TimerService::TimerService() : thread_([this] { run(); }) {}

TimerService::~TimerService() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

TimerService::TimerId TimerService::add(Callback callback) {
  std::lock_guard lock(mutex_);
  const TimerId id = next_id_++;
  entries_[id].callback = std::make_shared<Callback>(std::move(callback));
  return id;
}

void TimerService::arm(TimerId id, Clock::time_point deadline) {
  bool new_first = false;
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      return;
    }
    Entry& entry = it->second;
    if (entry.armed) {
      schedule_.erase({entry.deadline, id});
    }
    entry.armed = true;
    entry.deadline = deadline;
    schedule_.insert({deadline, id});
    new_first = schedule_.begin()->second == id;
  }
  // Only an earlier first deadline shortens the thread's wait.
  if (new_first) {
    wake_.notify_one();
  }
}

void TimerService::cancel(TimerId id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second.armed) {
    schedule_.erase({it->second.deadline, id});
    it->second.armed = false;
  }
}

void TimerService::remove(TimerId id) {
  std::unique_lock lock(mutex_);
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    if (it->second.armed) {
      schedule_.erase({it->second.deadline, id});
    }
    entries_.erase(it);
  }
  if (std::this_thread::get_id() != thread_.get_id()) {
    finished_.wait(lock, [&] { return running_ != id; });
  }
}

void TimerService::run() {
  confine_this_thread(ThreadRole::Timer);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (schedule_.empty()) {
      wake_.wait(lock);
      continue;
    }
    const auto [deadline, id] = *schedule_.begin();
    if (Clock::now() < deadline) {
      // libstdc++ waits on CLOCK_MONOTONIC (pthread_cond_clockwait) for steady_clock.
      wake_.wait_until(lock, deadline);
      continue;
    }
    schedule_.erase(schedule_.begin());
    Entry& entry = entries_.at(id);
    entry.armed = false;
    std::shared_ptr<Callback> callback = entry.callback;
    running_ = id;
    lock.unlock();
    (*callback)();
    lock.lock();
    running_ = kNoTimer;
    finished_.notify_all();
  }
}

}  // namespace hv
