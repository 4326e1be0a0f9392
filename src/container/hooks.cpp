#include "container/hooks.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/fd.hpp"

namespace hv::container {

Status run_hook(const oci::Hook& hook, const std::string& state_json) {
  int input[2];
  if (::pipe2(input, O_CLOEXEC) != 0) {
    return Error::from_errno("cannot create a pipe for a hook");
  }
  Fd read_end(input[0]), write_end(input[1]);
  std::vector<char*> argv;
  for (const std::string& arg : hook.args) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  if (argv.empty()) {
    argv.push_back(const_cast<char*>(hook.path.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& entry : hook.env) {
    envp.push_back(const_cast<char*>(entry.c_str()));
  }
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    return Error::from_errno(fmt::format("cannot start the hook {}", hook.path));
  }
  if (pid == 0) {
    ::dup2(read_end.get(), STDIN_FILENO);
    ::execve(hook.path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  read_end.reset();
  // A hook that does not read its input must not block the runtime: a broken pipe is fine.
  ::signal(SIGPIPE, SIG_IGN);
  [[maybe_unused]] ssize_t n = ::write(write_end.get(), state_json.data(), state_json.size());
  write_end.reset();

  using Clock = std::chrono::steady_clock;
  const bool limited = hook.timeout_seconds.has_value();
  const auto deadline = Clock::now() + std::chrono::seconds(hook.timeout_seconds.value_or(0));
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, limited ? WNOHANG : 0);
    if (done == pid) {
      break;
    }
    if (done < 0 && errno != EINTR) {
      return Error::from_errno(fmt::format("cannot wait for the hook {}", hook.path));
    }
    if (limited && Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return make_error(ExitStatus::HostError, "hook {} timed out after {} s", hook.path,
                        *hook.timeout_seconds);
    }
    if (limited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return make_error(ExitStatus::HostError, "hook {} could not be executed", hook.path);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return make_error(ExitStatus::HostError, "hook {} failed ({})", hook.path,
                      WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                        : fmt::format("signal {}", WTERMSIG(status)));
  }
  return {};
}

Status run_hooks(const std::vector<oci::Hook>& hooks, const std::string& stage,
                 const std::string& state_json) {
  for (const oci::Hook& hook : hooks) {
    if (Status status = run_hook(hook, state_json); !status.ok()) {
      return make_error(status.error().status, "{} hook: {}", stage, status.error().message);
    }
  }
  return {};
}

}  // namespace hv::container
