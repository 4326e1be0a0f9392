// A managed guest's console, inside its VMM process: the guest's output goes to a log file (what
// `hv logs` reads) and to the one client attached to the console socket (what `hv console`
// reaches through the supervisor); that client's keystrokes become the guest's input.
//
// The guest never waits for a client: output to a client that does not keep up is dropped for
// that client (the log keeps it), and input beyond what the pipe holds is dropped.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace hv {

class ConsoleRelay {
 public:
  // The log is appended to and capped at `log_limit` bytes (a note marks where it stops).
  static Result<std::unique_ptr<ConsoleRelay>> create(const std::string& log_path,
                                                      const std::string& socket_path,
                                                      uint64_t log_limit = 64ull << 20);
  ~ConsoleRelay();
  ConsoleRelay(const ConsoleRelay&) = delete;
  ConsoleRelay& operator=(const ConsoleRelay&) = delete;

  int guest_input_fd() const { return input_read_.get(); }
  int guest_output_fd() const { return output_write_.get(); }

  // On a thread of this process (a machine's VMM, started once it is confined).
  Status start();
  // In a child process, for a container's monitor: the OCI runtime forks and keeps working in
  // the child, which is only safe while the forking process has a single thread.
  Status start_process();
  // The guest is done: closes this process's end of the output pipe, copies what is still in it
  // once every other writer (a container's processes) has closed theirs, and stops.
  void finish();

 private:
  ConsoleRelay() = default;
  void loop();
  void forward_output();
  void forward_input();
  void accept_client();

  Fd output_read_, output_write_;  // guest -> relay
  Fd input_read_, input_write_;    // relay -> guest
  Fd listener_, client_, log_, wakeup_;
  uint64_t logged_ = 0;
  uint64_t log_limit_ = 0;
  bool output_closed_ = false;
  std::thread thread_;
  pid_t process_ = -1;
};

}  // namespace hv
