#include "vm/io_thread.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "vmm/sandbox.hpp"

namespace hv {

Result<std::unique_ptr<IoThread>> IoThread::create(std::string name) {
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll.valid() || !wake.valid()) {
    return Error::from_errno("cannot create an I/O thread's epoll set");
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake.get();
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &event) != 0) {
    return Error::from_errno("cannot watch the I/O thread's wake-up eventfd");
  }
  return std::unique_ptr<IoThread>(
      new IoThread(std::move(name), std::move(epoll), std::move(wake)));
}

IoThread::~IoThread() {
  stop();
}

Status IoThread::add(int fd, Handler handler) {
  {
    std::lock_guard lock(mutex_);
    handlers_[fd] = Watch{std::move(handler), false};
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    std::lock_guard lock(mutex_);
    handlers_.erase(fd);
    return Error::from_errno(fmt::format("cannot watch descriptor {} on I/O thread {}", fd, name_));
  }
  return {};
}

Status IoThread::pause(int fd) {
  std::lock_guard lock(mutex_);
  auto it = handlers_.find(fd);
  if (it == handlers_.end()) {
    return make_error(ExitStatus::HostError, "I/O thread {} does not watch descriptor {}", name_,
                      fd);
  }
  if (it->second.paused) {
    return {};
  }
  // Removed from the set rather than left with no events: epoll reports errors and hang-ups
  // whatever the event mask says, and a paused descriptor must not wake the thread at all.
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return Error::from_errno(fmt::format("cannot pause descriptor {} on I/O thread {}", fd, name_));
  }
  it->second.paused = true;
  return {};
}

Status IoThread::resume(int fd) {
  std::lock_guard lock(mutex_);
  auto it = handlers_.find(fd);
  if (it == handlers_.end()) {
    return make_error(ExitStatus::HostError, "I/O thread {} does not watch descriptor {}", name_,
                      fd);
  }
  if (!it->second.paused) {
    return {};
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return Error::from_errno(
        fmt::format("cannot resume descriptor {} on I/O thread {}", fd, name_));
  }
  it->second.paused = false;
  return {};
}

Status IoThread::start() {
  if (thread_.joinable()) {
    return make_error(ExitStatus::HostError, "I/O thread {} is already running", name_);
  }
  thread_ = std::thread([this] {
    // The name shows in top -H and in crash reports (15 characters at most). Set by the thread
    // itself (prctl), which needs no /proc/self/task/N/comm: the sandbox has no /proc.
    ::pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
    confine_this_thread(ThreadRole::Io);
    loop();
  });
  return {};
}

void IoThread::stop() {
  if (!thread_.joinable()) {
    return;
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof(one));
  thread_.join();
}

void IoThread::loop() {
  std::array<epoll_event, 16> events{};
  for (;;) {
    const int ready =
        ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), -1);
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    for (int i = 0; i < ready; ++i) {
      const int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == wake_.get()) {
        return;
      }
      Handler handler;
      {
        std::lock_guard lock(mutex_);
        auto it = handlers_.find(fd);
        // Paused by an earlier handler of this batch (or another thread) after epoll_wait
        // collected the event.
        if (it == handlers_.end() || it->second.paused) {
          continue;
        }
        handler = it->second.handler;
      }
      handler();
    }
  }
}

}  // namespace hv
