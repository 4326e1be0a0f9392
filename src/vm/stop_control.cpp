#include "vm/stop_control.hpp"

namespace hv {

bool StopControl::request(StopReason reason) {
  std::vector<std::function<void()>> kicks;
  {
    std::lock_guard lock(mutex_);
    if (reason_) {
      return false;
    }
    reason_ = std::move(reason);
    stopping_.store(true, std::memory_order_release);
    kicks = kicks_;
  }
  cv_.notify_all();
  for (auto& kick : kicks) {
    kick();
  }
  return true;
}

std::optional<StopReason> StopControl::wait(std::optional<std::chrono::milliseconds> timeout) {
  std::unique_lock lock(mutex_);
  if (timeout) {
    if (!cv_.wait_for(lock, *timeout, [&] { return reason_.has_value(); })) {
      return std::nullopt;
    }
  } else {
    cv_.wait(lock, [&] { return reason_.has_value(); });
  }
  return reason_;
}

void StopControl::on_stop(std::function<void()> kick) {
  bool already;
  {
    std::lock_guard lock(mutex_);
    kicks_.push_back(kick);
    already = reason_.has_value();
  }
  if (already) {
    kick();
  }
}

}  // namespace hv
