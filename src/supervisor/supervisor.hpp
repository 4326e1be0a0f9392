// `hv serve`: the supervisor. It keeps a record of every guest in its state directory, runs each
// started guest in its own VMM process (`hv vmm`, supervisor/monitor.hpp) inside its own cgroup
// (/hv-guests/<name>, with memory/CPU/pids limits), and answers the JSON API on a Unix socket.
//
// Guests do not depend on the supervisor: it can be killed and restarted, and finds the guests
// still running (same PID, same start time) and watches them again. Records are written
// atomically (guest_record.hpp), so none is lost or half-written whenever the supervisor dies.
//
// API (docs/api.yaml has the full description):
//   GET    /v1/version
//   GET    /v1/guests                      list
//   POST   /v1/guests                      create from a guest spec (guest_spec.hpp) -> 201
//   GET    /v1/guests/{name}               state
//   DELETE /v1/guests/{name}[?force=true]  remove (force: stop it first)
//   POST   /v1/guests/{name}/start | pause | resume
//   POST   /v1/guests/{name}/stop[?timeout=SECONDS]   SIGTERM (guest stop), then SIGKILL
//   GET    /v1/guests/{name}/logs[?follow=true]       console output (chunked while following)
//   POST   /v1/guests/{name}/console       Upgrade: hv-console -> 101, then raw console bytes
// Errors are {"error": "..."} with 400 (malformed), 404 (no such guest or route), 405, 409 (name
// taken, wrong state, another operation on the guest in progress), 413/415, 500.
#pragma once

#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/http.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "container/cgroups.hpp"
#include "supervisor/guest_record.hpp"
#include "supervisor/guest_spec.hpp"

namespace hv {

struct SupervisorOptions {
  std::string state_dir = "/run/hv/supervisor";
  std::string socket_path = "/run/hv/hv.sock";
  std::string vmm_binary;  // empty: this executable
  std::chrono::milliseconds stop_timeout{10'000};
};

// An API answer: a status and a JSON body.
struct ApiReply {
  int status = 200;
  nlohmann::json body;
};

class Supervisor {
 public:
  // Creates the state directory if needed, loads every record and re-adopts the guests whose
  // VMM processes still run.
  static Result<std::unique_ptr<Supervisor>> open(const SupervisorOptions& options);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Serves the API until stop() (SIGTERM/SIGINT in `hv serve`). Guests keep running after it.
  Status serve();
  void stop();

  // The API's operations, also callable directly.
  ApiReply create(std::string_view spec_json);
  ApiReply start(const std::string& name);
  ApiReply stop_guest(const std::string& name, std::chrono::milliseconds timeout);
  ApiReply pause(const std::string& name, bool pause);
  ApiReply remove(const std::string& name, bool force);
  ApiReply get(const std::string& name);
  ApiReply list();

  void handle(const api::HttpRequest& request, api::HttpConnection& connection);

 private:
  struct Guest;

  explicit Supervisor(SupervisorOptions options);
  Status load();
  std::shared_ptr<Guest> find(const std::string& name);
  // Finds the guest and takes its operation lock, or says why not (404, or 409 while another
  // lifecycle operation on it runs).
  std::optional<ApiReply> begin_operation(const std::string& name, std::shared_ptr<Guest>& guest,
                                          std::unique_lock<std::mutex>& operation);
  std::string guest_dir(const std::string& name) const;
  Status spawn_vmm(Guest& guest);
  void watch(std::shared_ptr<Guest> guest);
  void finish_guest(Guest& guest, std::optional<siginfo_t> status);
  nlohmann::json describe(Guest& guest);
  void stream_logs(Guest& guest, bool follow, api::HttpConnection& connection);
  void attach_console(Guest& guest, api::HttpConnection& connection);

  SupervisorOptions options_;
  container::CgroupLayout layout_;
  std::unique_ptr<api::HttpServer> server_;
  Fd shutdown_;  // readable once the supervisor stops: watchers end
  std::mutex guests_mutex_;
  std::map<std::string, std::shared_ptr<Guest>> guests_;
  std::mutex watchers_mutex_;
  std::vector<std::thread> watchers_;
};

}  // namespace hv
