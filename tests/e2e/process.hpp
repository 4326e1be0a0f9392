// Runs a command to completion for end-to-end tests, capturing stdout and stderr separately,
// with a hard time limit (the child is killed when it runs over).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace hv::test {

struct ProcessResult {
  int exit_status = -1;  // exit code, or 128 + signal when killed
  bool timed_out = false;
  std::string out;
  std::string err;
};

ProcessResult run_process(const std::vector<std::string>& argv,
                          std::chrono::milliseconds limit = std::chrono::seconds(60),
                          const std::string& stdin_data = {});

bool executable_exists(const std::string& name);

}  // namespace hv::test

namespace hv::test {

// A process on a pseudo-terminal, driven like a user at a keyboard: wait for text, type keys.
// Standard input, output and error are the terminal, so the program sees an interactive session.
class TerminalSession {
 public:
  explicit TerminalSession(const std::vector<std::string>& argv);
  ~TerminalSession();  // kills the process if it still runs
  TerminalSession(const TerminalSession&) = delete;
  TerminalSession& operator=(const TerminalSession&) = delete;

  // Reads until `text` appears after the previous expect()'s match; false on timeout or EOF.
  bool expect(const std::string& text, std::chrono::milliseconds limit);
  void type(const std::string& keys);
  // Waits for the process to end and returns its exit status (128 + signal); -1 on timeout.
  int wait(std::chrono::milliseconds limit);
  const std::string& output() const { return output_; }

 private:
  bool read_some(std::chrono::milliseconds limit);

  int master_ = -1;
  int pid_ = -1;
  std::string output_;
  size_t matched_ = 0;  // output_ before this offset has been consumed by expect()
  int status_ = -1;
};

}  // namespace hv::test
