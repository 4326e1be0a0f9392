// The host side of the guest's serial console: output to a file descriptor (the terminal or a
// pipe), input from stdin on its own thread. When stdin is a terminal it is put in raw mode and
// the QEMU-style escape applies: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A.
#pragma once

#include <termios.h>

#include <functional>
#include <optional>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "devices/char_sink.hpp"
#include "vm/stop_control.hpp"

namespace hv {

class FdSink final : public CharSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  void write(std::span<const uint8_t> bytes) override;

 private:
  int fd_;
};

class ConsoleInput {
 public:
  // deliver() hands bytes to the guest's console device and returns how many it accepted.
  using Deliver = std::function<size_t(std::span<const uint8_t>)>;

  ConsoleInput(int input_fd, Deliver deliver, StopControl& stop);
  ~ConsoleInput();  // stops the thread and restores the terminal
  ConsoleInput(const ConsoleInput&) = delete;
  ConsoleInput& operator=(const ConsoleInput&) = delete;

  Status start();
  void stop();

 private:
  void loop();
  // Applies the Ctrl-A escape to one chunk of terminal input.
  void filter_escape(std::span<const uint8_t> in, std::vector<uint8_t>& out);
  void deliver_all(std::span<const uint8_t> bytes);

  int input_fd_;
  Deliver deliver_;
  StopControl& stop_;
  bool is_terminal_ = false;
  bool escape_pending_ = false;
  std::optional<termios> saved_termios_;
  Fd wakeup_;  // eventfd that ends the thread
  std::thread thread_;
};

}  // namespace hv
