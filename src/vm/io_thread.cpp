#include "vm/io_thread.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>

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
    handlers_[fd] = std::move(handler);
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

Status IoThread::start() {
  if (thread_.joinable()) {
    return make_error(ExitStatus::HostError, "I/O thread {} is already running", name_);
  }
  thread_ = std::thread([this] { loop(); });
  // The name shows in top -H and in crash reports (15 characters at most).
  ::pthread_setname_np(thread_.native_handle(), name_.substr(0, 15).c_str());
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
        if (it == handlers_.end()) {
          continue;
        }
        handler = it->second;
      }
      handler();
    }
  }
}

}  // namespace hv
