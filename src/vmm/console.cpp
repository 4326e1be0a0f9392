#include "vmm/console.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "vmm/sandbox.hpp"

namespace hv {

namespace {
constexpr uint8_t kCtrlA = 0x01;
}

void FdSink::write(std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;  // a closed pipe must not stop the guest
    }
    done += static_cast<size_t>(n);
  }
}

ConsoleInput::ConsoleInput(int input_fd, Deliver deliver, StopControl& stop)
    : input_fd_(input_fd), deliver_(std::move(deliver)), stop_(stop) {}

ConsoleInput::~ConsoleInput() {
  stop();
}

Status ConsoleInput::start() {
  wakeup_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wakeup_.valid()) {
    return Error::from_errno("eventfd for the console");
  }
  is_terminal_ = ::isatty(input_fd_) == 1;
  if (is_terminal_) {
    termios t{};
    if (::tcgetattr(input_fd_, &t) == 0) {
      saved_termios_ = t;
      ::cfmakeraw(&t);
      // Keep output post-processing so the guest's "\n" is still a new line on the terminal
      // only if the guest does not send "\r\n" itself: raw output is what QEMU does, follow it.
      ::tcsetattr(input_fd_, TCSANOW, &t);
    }
  }
  thread_ = std::thread([this] {
    confine_this_thread(ThreadRole::Console);
    loop();
  });
  return {};
}

void ConsoleInput::stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wakeup_.get(), &one, sizeof(one));
    thread_.join();
  }
  if (saved_termios_) {
    ::tcsetattr(input_fd_, TCSANOW, &*saved_termios_);
    saved_termios_.reset();
  }
}

void ConsoleInput::filter_escape(std::span<const uint8_t> in, std::vector<uint8_t>& out) {
  for (uint8_t c : in) {
    if (escape_pending_) {
      escape_pending_ = false;
      if (c == 'x' || c == 'X') {
        stop_.request({StopKind::UserQuit, 0, "quit from the console (Ctrl-A x)", {}});
        return;
      }
      if (c == kCtrlA) {
        out.push_back(kCtrlA);
      }
      // Any other key after Ctrl-A is swallowed, as in QEMU.
      continue;
    }
    if (c == kCtrlA) {
      escape_pending_ = true;
      continue;
    }
    out.push_back(c);
  }
}

void ConsoleInput::deliver_all(std::span<const uint8_t> bytes) {
  // The UART's receive buffer may be full; wait for the guest to drain it rather than drop
  // input (a paste of a long line must arrive whole).
  while (!bytes.empty() && !stop_.stopping()) {
    size_t n = deliver_(bytes);
    bytes = bytes.subspan(n);
    if (!bytes.empty()) {
      pollfd p{wakeup_.get(), POLLIN, 0};
      ::poll(&p, 1, 2);
      if (p.revents & POLLIN) {
        return;
      }
    }
  }
}

void ConsoleInput::loop() {
  std::vector<uint8_t> buffer(4096);
  std::vector<uint8_t> filtered;
  bool input_open = true;
  while (!stop_.stopping()) {
    pollfd fds[2] = {{wakeup_.get(), POLLIN, 0}, {input_fd_, POLLIN, 0}};
    int n = ::poll(fds, input_open ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[0].revents & POLLIN) {
      return;
    }
    if (!input_open || !(fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      continue;
    }
    ssize_t got = ::read(input_fd_, buffer.data(), buffer.size());
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (got <= 0) {
      input_open = false;  // end of input: the guest keeps running without it
      continue;
    }
    std::span<const uint8_t> chunk(buffer.data(), static_cast<size_t>(got));
    if (is_terminal_) {
      filtered.clear();
      filter_escape(chunk, filtered);
      deliver_all(filtered);
    } else {
      deliver_all(chunk);
    }
  }
}

}  // namespace hv
