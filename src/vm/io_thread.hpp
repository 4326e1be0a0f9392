// A thread that waits on file descriptors and runs their handlers: where para-virtual devices do
// their work (queue notifications arriving as eventfds, TAP frames, timers), so vCPU threads
// never wait on a device. One epoll set; handlers run one at a time on this thread, in the order
// the kernel reports the descriptors ready.
//
// Handlers are added before start() or from a handler; stop() (or the destructor) ends the thread
// after the handler that is running, if any. A descriptor can be paused and resumed from any
// thread, a handler included: a device with nowhere to put what its descriptor carries (a TAP
// frame and no guest buffer) stops watching it instead of being woken again and again.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace hv {

class IoThread {
 public:
  using Handler = std::function<void()>;

  static Result<std::unique_ptr<IoThread>> create(std::string name);
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  // Runs `handler` each time `fd` is readable (level-triggered: the handler must consume what
  // made it readable, e.g. read the eventfd). `fd` must stay open until the thread has stopped.
  Status add(int fd, Handler handler);
  // Stops watching `fd` (added before) until resume(): its handler does not run, not even for an
  // event the thread has already collected. Pausing a paused descriptor, or resuming a watched
  // one, does nothing.
  Status pause(int fd);
  Status resume(int fd);
  Status start();
  void stop();

 private:
  IoThread(std::string name, Fd epoll, Fd wake)
      : name_(std::move(name)), epoll_(std::move(epoll)), wake_(std::move(wake)) {}
  void loop();

  std::string name_;
  Fd epoll_;
  Fd wake_;  // an eventfd that stop() signals
  std::mutex mutex_;
  struct Watch {
    Handler handler;
    bool paused = false;
  };
  std::unordered_map<int, Watch> handlers_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace hv
