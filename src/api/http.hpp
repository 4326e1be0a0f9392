// A small HTTP/1.1 layer for the supervisor's JSON API on a Unix socket (like Firecracker's API
// socket): a threaded server with keep-alive, chunked streaming and protocol upgrades, and the
// client calls the CLI needs. Requests are parsed by Node's http_parser; the peer is hostile, so
// every buffer, every wait and the number of connection threads is bounded.
#pragma once

#include <sys/types.h>

#include <http_parser.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace hv::api {

struct HttpLimits {
  size_t max_header_bytes = 16 * 1024;             // request line + headers; more -> 431
  size_t max_body_bytes = 1024 * 1024;             // Content-Length or chunked total; more -> 413
  std::chrono::milliseconds read_timeout{10'000};  // a client that stalls mid-request -> 408
  size_t max_connections = 64;                     // more concurrent connections -> 503 and close
};

// More header lines than this get 431 whatever their size: each one costs a small allocation.
inline constexpr size_t kMaxHeaderCount = 100;

struct HttpRequest {
  std::string method;                                        // "GET"
  std::string target;                                        // "/v1/guests/a?follow=true" as sent
  std::string path;                                          // "/v1/guests/a", percent-decoded
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool upgrade = false;  // "Connection: Upgrade" + "Upgrade: x"

  std::optional<std::string> header(std::string_view lower_name) const;
  std::optional<std::string> query_value(std::string_view name) const;
};

// Incremental request parser over http_parser, shared by the server and the fuzzer. Bytes are fed
// as they arrive; it stops right after a complete request so that pipelined bytes (or an upgraded
// protocol's first bytes) stay with the caller. A malformed request ends in Failed with the
// status it deserves (400, 413, 431, 505); the path is checked here too (400 for %2F, NUL, "..").
class RequestParser {
 public:
  enum class State { Incomplete, Complete, Failed };

  explicit RequestParser(const HttpLimits& limits);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses a prefix of `bytes`; returns how many bytes were consumed.
  size_t feed(std::string_view bytes);
  State state() const { return state_; }
  // Whether a request has begun (an idle keep-alive connection has not).
  bool started() const { return started_; }

  // After Complete: the request; readies the parser for the next one on the same connection.
  HttpRequest take_request();
  // Of the request just completed: whether the connection may carry another request.
  bool keep_alive() const { return keep_alive_; }
  // HTTP/1.0 clients cannot read a chunked body.
  bool http_1_0() const { return http_1_0_; }

  // After Failed.
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  static int on_message_begin(http_parser* parser);
  static int on_url(http_parser* parser, const char* at, size_t length);
  static int on_header_field(http_parser* parser, const char* at, size_t length);
  static int on_header_value(http_parser* parser, const char* at, size_t length);
  static int on_headers_complete(http_parser* parser);
  static int on_body(http_parser* parser, const char* at, size_t length);
  static int on_message_complete(http_parser* parser);
  static const http_parser_settings kSettings;

  int fail(int status, std::string message);
  bool reject(int status, std::string message);  // fail() for the checks that answer a bool
  bool finish_request();

  HttpLimits limits_;
  http_parser parser_{};
  State state_ = State::Incomplete;
  HttpRequest request_;
  bool started_ = false;
  bool headers_complete_ = false;
  bool last_was_value_ = false;
  bool keep_alive_ = false;
  bool http_1_0_ = false;
  size_t head_bytes_ = 0;
  size_t request_bytes_ = 0;
  int error_status_ = 0;
  std::string error_message_;
};

// Percent-decoding, exposed for tests; nullopt on bad escapes.
std::optional<std::string> percent_decode(std::string_view text);
// Splits "a=1&b=x%20y" into decoded pairs ('+' is a space, as in forms); nullopt on bad escapes.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view text);
// The body of every error response: {"error":"<message>"}.
std::string error_json(std::string_view message);

class HttpServer;

// One accepted client, handed to the handler per request.
class HttpConnection {
 public:
  int fd() const { return fd_; }
  // Lets a long-running handler (a log follower) notice that the server shuts down.
  bool stopping() const;

  // A complete response with Content-Length. Adds "Connection: close" when the connection will
  // close after it.
  Status respond(int status, std::string_view content_type, std::string_view body);
  // Streaming with Transfer-Encoding: chunked (HTTP/1.0 clients: raw bytes up to the close).
  // write_chunk returns an error once the client went away.
  Status begin_chunked(int status, std::string_view content_type);
  Status write_chunk(std::string_view data);
  Status end_chunked();
  // 101 Switching Protocols; afterwards the handler owns the raw socket (fd()) until it returns,
  // and the server closes it then. Returns the bytes the client sent after the request head.
  Result<std::string> switch_protocols(std::string_view protocol);

 private:
  friend class HttpServer;
  enum class Phase { Fresh, Responded, Streaming, StreamEnded, Upgraded, Broken };

  HttpConnection(int fd, const HttpServer& server, const RequestParser& parser, bool upgrade,
                 std::string early_bytes);
  Status send_all(std::string_view data);
  std::string status_line_and_headers(int status, std::string_view content_type);
  bool will_close() const;

  int fd_;
  const HttpServer& server_;
  bool keep_alive_;
  bool http_1_0_;
  bool upgrade_requested_;
  bool closes_after_response_ = false;
  std::string early_bytes_;
  Phase phase_ = Phase::Fresh;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpConnection&)>;

class HttpServer {
 public:
  // Binds a Unix stream socket at `socket_path`, chmod'ed to `mode` before it listens. A socket
  // file nobody listens on is replaced; a live server's is not ("another server listens on ...").
  static Result<std::unique_ptr<HttpServer>> listen(const std::string& socket_path, mode_t mode,
                                                    HttpLimits limits = {});
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();  // unlinks the socket file if it is still the one it created

  // Accept loop, one thread per connection (at most max_connections; more get 503). Returns
  // after stop(), once every connection thread has finished: handlers must notice stopping().
  Status serve(HttpHandler handler);
  // Async-signal-safe: sets a flag and wakes serve() and every idle connection.
  void stop();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  const HttpLimits& limits() const { return limits_; }
  const std::string& socket_path() const { return socket_path_; }

 private:
  struct Connection {
    Fd socket;
    std::thread thread;
    std::atomic<bool> finished{false};
  };

  HttpServer(std::string socket_path, Fd listener, Fd wake, Fd reap, HttpLimits limits,
             dev_t device, ino_t inode);
  void accept_one(const HttpHandler& handler);
  void reap_finished();
  void serve_connection(Connection& connection, const HttpHandler& handler);
  void refuse(int fd, int status, std::string_view message) const;

  std::string socket_path_;
  Fd listener_;
  Fd wake_;  // readable forever once stop() was called
  Fd reap_;  // a connection thread finished
  HttpLimits limits_;
  dev_t socket_device_;
  ino_t socket_inode_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> serving_{false};
  // Touched by serve()'s thread only, which is what lets stop() be async-signal-safe.
  std::list<std::unique_ptr<Connection>> connections_;
};

// Client side (for the CLI), one request per connection ("Connection: close").
struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::optional<std::string> header(std::string_view lower_name) const;
};

Result<HttpResponse> http_request(const std::string& socket_path, std::string_view method,
                                  std::string_view target, std::string_view json_body = {},
                                  std::chrono::milliseconds timeout = std::chrono::seconds(60));
// Calls on_data for each piece of the decoded body as it arrives; on_data returning false stops
// early. Returns the status code.
Result<int> http_stream(const std::string& socket_path, std::string_view method,
                        std::string_view target,
                        const std::function<bool(std::string_view)>& on_data);

struct Upgraded {
  Fd socket;  // blocking
  std::string early_bytes;
};
// On 101 the connected socket plus bytes that arrived after the response head; on another status
// an Error whose message is the server's {"error":...} text.
Result<Upgraded> http_upgrade(const std::string& socket_path, std::string_view target,
                              std::string_view protocol);

}  // namespace hv::api
