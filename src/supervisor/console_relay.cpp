#include "supervisor/console_relay.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "vmm/sandbox.hpp"

namespace hv {

namespace {

Result<std::pair<Fd, Fd>> make_pipe(int read_flags, int write_flags) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Error::from_errno("cannot create the console pipe");
  }
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  if (read_flags != 0) {
    ::fcntl(read_end.get(), F_SETFL, read_flags);
  }
  if (write_flags != 0) {
    ::fcntl(write_end.get(), F_SETFL, write_flags);
  }
  return std::pair{std::move(read_end), std::move(write_end)};
}

void write_fully(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

Result<std::unique_ptr<ConsoleRelay>> ConsoleRelay::create(const std::string& log_path,
                                                           const std::string& socket_path,
                                                           uint64_t log_limit) {
  std::unique_ptr<ConsoleRelay> relay(new ConsoleRelay());
  relay->log_limit_ = log_limit;
  // The guest blocks on a full output pipe (a console is slow, not lossy); the relay reads it
  // without blocking so it can serve the socket too.
  auto [output_read, output_write] = HV_TRY(make_pipe(O_NONBLOCK, 0));
  relay->output_read_ = std::move(output_read);
  relay->output_write_ = std::move(output_write);
  auto [input_read, input_write] = HV_TRY(make_pipe(0, O_NONBLOCK));
  relay->input_read_ = std::move(input_read);
  relay->input_write_ = std::move(input_write);

  relay->log_.reset(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!relay->log_.valid()) {
    return Error::from_errno(fmt::format("cannot open the console log {}", log_path));
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(address.sun_path)) {
    return make_error(ExitStatus::Usage, "the console socket path {} is too long", socket_path);
  }
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  relay->listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!relay->listener_.valid()) {
    return Error::from_errno("cannot create the console socket");
  }
  ::unlink(socket_path.c_str());
  if (::bind(relay->listener_.get(), reinterpret_cast<const sockaddr*>(&address),
             sizeof(address)) != 0 ||
      ::chmod(socket_path.c_str(), 0600) != 0 || ::listen(relay->listener_.get(), 4) != 0) {
    return Error::from_errno(fmt::format("cannot listen on the console socket {}", socket_path));
  }
  relay->wakeup_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!relay->wakeup_.valid()) {
    return Error::from_errno("eventfd for the console relay");
  }
  return relay;
}

ConsoleRelay::~ConsoleRelay() {
  finish();
}

Status ConsoleRelay::start() {
  thread_ = std::thread([this] { loop(); });
  return {};
}

Status ConsoleRelay::start_process() {
  const pid_t pid = ::fork();
  if (pid < 0) {
    return Error::from_errno("cannot fork the console relay");
  }
  if (pid == 0) {
    // Only the relay's ends stay open here, so the guest's side reaches EOF when its last
    // writer (the container's processes, the monitor) closes.
    output_write_.reset();
    input_read_.reset();
    loop();
    ::_exit(0);
  }
  process_ = pid;
  output_read_.reset();
  input_write_.reset();
  listener_.reset();
  log_.reset();
  return {};
}

void ConsoleRelay::finish() {
  output_write_.reset();
  if (process_ > 0) {
    // EOF on the output pipe ends the relay once the container's processes are gone too.
    while (::waitpid(process_, nullptr, 0) < 0 && errno == EINTR) {
    }
    process_ = -1;
  }
  if (thread_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wakeup_.get(), &one, sizeof(one));
    thread_.join();
  }
}

void ConsoleRelay::loop() {
  confine_this_thread(ThreadRole::ConsoleRelay);
  bool finishing = false;
  for (;;) {
    std::array<pollfd, 4> fds{};
    fds[0] = {output_read_.get(), POLLIN, 0};
    fds[1] = {listener_.get(), POLLIN, 0};
    fds[2] = {wakeup_.get(), POLLIN, 0};
    fds[3] = {client_.get(), POLLIN, 0};  // -1 is ignored by poll
    // Once the guest is done, wait only briefly for the last writers (container processes).
    const int timeout_ms = finishing ? 200 : -1;
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) {
      return;
    }
    if (ready == 0 && finishing) {
      forward_output();
      return;
    }
    if ((fds[0].revents & (POLLIN | POLLHUP)) != 0) {
      forward_output();
      if (output_closed_) {
        return;
      }
    }
    if ((fds[1].revents & POLLIN) != 0) {
      accept_client();
    }
    if ((fds[3].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      forward_input();
    }
    if ((fds[2].revents & POLLIN) != 0) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t n = ::read(wakeup_.get(), &count, sizeof(count));
      finishing = true;
    }
  }
}

void ConsoleRelay::forward_output() {
  std::array<char, 16384> buffer;
  for (;;) {
    const ssize_t n = ::read(output_read_.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == 0) {
      output_closed_ = true;
      return;
    }
    if (n < 0) {
      return;  // EAGAIN: drained
    }
    const auto size = static_cast<size_t>(n);
    if (logged_ < log_limit_) {
      const size_t room = static_cast<size_t>(std::min<uint64_t>(size, log_limit_ - logged_));
      write_fully(log_.get(), buffer.data(), room);
      logged_ += room;
      if (logged_ >= log_limit_) {
        static constexpr char kNote[] =
            "\n[hv: console log limit reached; later output not kept]\n";
        write_fully(log_.get(), kNote, sizeof(kNote) - 1);
      }
    }
    if (client_.valid()) {
      const ssize_t sent = ::send(client_.get(), buffer.data(), size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0 && errno != EAGAIN && errno != EINTR) {
        client_.reset();
      }
    }
  }
}

void ConsoleRelay::forward_input() {
  std::array<char, 4096> buffer;
  const ssize_t n = ::recv(client_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    client_.reset();
    return;
  }
  if (n > 0) {
    // A full pipe means the guest is not reading: drop rather than stall the relay.
    [[maybe_unused]] ssize_t written =
        ::write(input_write_.get(), buffer.data(), static_cast<size_t>(n));
  }
}

void ConsoleRelay::accept_client() {
  Fd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!client.valid()) {
    return;
  }
  if (client_.valid()) {
    static constexpr char kBusy[] = "hv: another client is attached to this console\n";
    [[maybe_unused]] ssize_t n = ::send(client.get(), kBusy, sizeof(kBusy) - 1, MSG_NOSIGNAL);
    return;
  }
  client_ = std::move(client);
}

}  // namespace hv
