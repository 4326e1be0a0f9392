#include "api/http.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <exception>
#include <system_error>

#include <nlohmann/json.hpp>

namespace hv::api {
namespace {

using Clock = std::chrono::steady_clock;
using Deadline = std::optional<Clock::time_point>;

// Enough for any request head or a good slice of a body; a connection never buffers more than one.
constexpr size_t kReadChunk = 16 * 1024;
// The client does not stream http_request's body, so it bounds what it keeps.
constexpr size_t kMaxClientBodyBytes = 64 * 1024 * 1024;

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::optional<std::string> find_header(
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key == name) {
      return value;
    }
  }
  return std::nullopt;
}

void trim_trailing_space(std::string& text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.pop_back();
  }
}

// CR or LF in a header we write would let a caller inject headers.
bool safe_header_value(std::string_view text) {
  return text.find_first_of("\r\n") == std::string_view::npos;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

const char* reason_phrase(int status) {
  const char* phrase = ::http_status_str(static_cast<http_status>(status));
  // http_parser answers "<unknown>" for codes it has no name for; a status line needs some text.
  return std::strcmp(phrase, "<unknown>") == 0 ? "Status" : phrase;
}

int poll_timeout_ms(Deadline deadline) {
  if (!deadline) {
    return -1;
  }
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
}

// Waits until `fd` has `events`; false when the deadline passed first.
Result<bool> wait_for(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd entry{fd, events, 0};
    const int ready = ::poll(&entry, 1, poll_timeout_ms(deadline));
    if (ready > 0) {
      return true;
    }
    if (ready == 0) {
      return false;
    }
    if (errno != EINTR) {
      return Error::from_errno("cannot poll a socket");
    }
  }
}

// MSG_NOSIGNAL: a client that went away must be an error, never a SIGPIPE. A client that stops
// reading is given until `deadline`, so it cannot hold a thread forever.
Status send_all(int fd, std::string_view data, Deadline deadline) {
  while (!data.empty()) {
    const ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      data.remove_prefix(static_cast<size_t>(sent));
      continue;
    }
    if (sent < 0 && errno == EINTR) {
      continue;
    }
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!HV_TRY(wait_for(fd, POLLOUT, deadline))) {
        return make_error(ExitStatus::Timeout, "the peer stopped reading");
      }
      continue;
    }
    return Error::from_errno("cannot write to the peer");
  }
  return {};
}

std::string response_head(int status, std::string_view content_type) {
  return fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\n", status, reason_phrase(status),
                     content_type);
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

Status check_socket_path(const std::string& path) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return make_error(ExitStatus::Usage, "socket path '{}' is empty or longer than {} bytes", path,
                      sizeof(sockaddr_un::sun_path) - 1);
  }
  if (path.find('\0') != std::string::npos) {
    return make_error(ExitStatus::Usage, "socket path '{}' contains a NUL byte", path);
  }
  return {};
}

}  // namespace

// ---- requests ---------------------------------------------------------------------------------

std::optional<std::string> HttpRequest::header(std::string_view lower_name) const {
  return find_header(headers, lower_name);
}

std::optional<std::string> HttpRequest::query_value(std::string_view name) const {
  return find_header(query, name);
}

std::optional<std::string> HttpResponse::header(std::string_view lower_name) const {
  return find_header(headers, lower_name);
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (text.size() - i < 3) {
      return std::nullopt;
    }
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> pairs;
  while (!text.empty()) {
    const size_t end = std::min(text.find('&'), text.size());
    std::string item(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
    if (item.empty()) {
      continue;
    }
    std::replace(item.begin(), item.end(), '+', ' ');
    const size_t equals = item.find('=');
    auto name = percent_decode(std::string_view(item).substr(0, equals));
    auto value =
        percent_decode(equals == std::string::npos ? std::string_view()
                                                   : std::string_view(item).substr(equals + 1));
    if (!name || !value) {
      return std::nullopt;
    }
    pairs.emplace_back(std::move(*name), std::move(*value));
  }
  return pairs;
}

std::string error_json(std::string_view message) {
  // replace: a message quoting hostile bytes must not make dump() throw on bad UTF-8.
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace);
}

const http_parser_settings RequestParser::kSettings = {
    .on_message_begin = &RequestParser::on_message_begin,
    .on_url = &RequestParser::on_url,
    .on_status = nullptr,
    .on_header_field = &RequestParser::on_header_field,
    .on_header_value = &RequestParser::on_header_value,
    .on_headers_complete = &RequestParser::on_headers_complete,
    .on_body = &RequestParser::on_body,
    .on_message_complete = &RequestParser::on_message_complete,
    .on_chunk_header = nullptr,
    .on_chunk_complete = nullptr,
};

RequestParser::RequestParser(const HttpLimits& limits) : limits_(limits) {
  ::http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

int RequestParser::fail(int status, std::string message) {
  error_status_ = status;
  error_message_ = std::move(message);
  return -1;  // any value but 0, 1 and 2 stops http_parser, on_headers_complete included
}

size_t RequestParser::feed(std::string_view bytes) {
  // Chunk extensions and trailers are not buffered but cost parsing time: bound the whole request.
  const size_t max_request_bytes = limits_.max_header_bytes + 2 * limits_.max_body_bytes + 65536;
  size_t consumed = 0;
  while (!bytes.empty() && state_ == State::Incomplete) {
    size_t piece = bytes.size();
    if (!headers_complete_) {
      // Never hand the parser more head bytes than the limit allows plus one, so that a head
      // that ends exactly at the limit passes and one byte more is caught.
      piece = std::min(piece, limits_.max_header_bytes + 1 - head_bytes_);
    }
    const bool head_before = !headers_complete_;
    const size_t parsed = ::http_parser_execute(&parser_, &kSettings, bytes.data(), piece);
    consumed += parsed;
    bytes.remove_prefix(parsed);
    if (head_before) {
      head_bytes_ += parsed;
    }
    request_bytes_ += parsed;
    const auto parser_errno = HTTP_PARSER_ERRNO(&parser_);
    if (state_ == State::Complete) {
      break;
    }
    if (error_status_ != 0) {
      state_ = State::Failed;
      break;
    }
    if (parser_errno != HPE_OK) {
      state_ = State::Failed;
      error_status_ = parser_errno == HPE_HEADER_OVERFLOW   ? 431
                      : parser_errno == HPE_INVALID_VERSION ? 505
                                                            : 400;
      error_message_ = fmt::format("malformed request: {}", ::http_errno_description(parser_errno));
      break;
    }
    if (!headers_complete_ && head_bytes_ > limits_.max_header_bytes) {
      fail(431, fmt::format("request head exceeds {} bytes", limits_.max_header_bytes));
      state_ = State::Failed;
      break;
    }
    if (request_bytes_ > max_request_bytes) {
      fail(413, fmt::format("request exceeds {} bytes", max_request_bytes));
      state_ = State::Failed;
      break;
    }
    if (parsed != piece) {
      fail(400, "malformed request");
      state_ = State::Failed;
      break;
    }
  }
  return consumed;
}

HttpRequest RequestParser::take_request() {
  HttpRequest request = std::move(request_);
  request_ = {};
  state_ = State::Incomplete;
  started_ = false;
  headers_complete_ = false;
  last_was_value_ = false;
  head_bytes_ = 0;
  request_bytes_ = 0;
  ::http_parser_pause(&parser_, 0);
  return request;
}

int RequestParser::on_message_begin(http_parser* parser) {
  auto& self = *static_cast<RequestParser*>(parser->data);
  self.started_ = true;
  self.request_ = {};
  self.last_was_value_ = false;
  return 0;
}

int RequestParser::on_url(http_parser* parser, const char* at, size_t length) {
  auto& self = *static_cast<RequestParser*>(parser->data);
  self.request_.target.append(at, length);
  return 0;
}

int RequestParser::on_header_field(http_parser* parser, const char* at, size_t length) {
  auto& self = *static_cast<RequestParser*>(parser->data);
  auto& headers = self.request_.headers;
  if (headers.empty() || self.last_was_value_) {
    if (headers.size() >= kMaxHeaderCount) {
      return self.fail(431, fmt::format("more than {} header lines", kMaxHeaderCount));
    }
    headers.emplace_back();
  }
  headers.back().first += lower(std::string_view(at, length));
  self.last_was_value_ = false;
  return 0;
}

int RequestParser::on_header_value(http_parser* parser, const char* at, size_t length) {
  auto& self = *static_cast<RequestParser*>(parser->data);
  if (self.request_.headers.empty()) {
    return self.fail(400, "header value without a name");
  }
  self.request_.headers.back().second.append(at, length);
  self.last_was_value_ = true;
  return 0;
}

int RequestParser::on_headers_complete(http_parser* parser) {
  auto& self = *static_cast<RequestParser*>(parser->data);
  self.headers_complete_ = true;
  if (parser->http_major != 1 || parser->http_minor > 1) {
    return self.fail(505, fmt::format("HTTP/{}.{} is not supported; use HTTP/1.1",
                                      parser->http_major, parser->http_minor));
  }
  self.http_1_0_ = parser->http_minor == 0;
  // Refused before a single body byte is read: the declared length is the client's word, and
  // the limit stands whatever it says.
  if ((parser->flags & F_CHUNKED) == 0 && parser->content_length != ULLONG_MAX &&
      parser->content_length > self.limits_.max_body_bytes) {
    return self.fail(413,
                     fmt::format("request body exceeds {} bytes", self.limits_.max_body_bytes));
  }
  return 0;
}

int RequestParser::on_body(http_parser* parser, const char* at, size_t length) {
  auto& self = *static_cast<RequestParser*>(parser->data);
  if (length > self.limits_.max_body_bytes - self.request_.body.size()) {
    return self.fail(413,
                     fmt::format("request body exceeds {} bytes", self.limits_.max_body_bytes));
  }
  self.request_.body.append(at, length);
  return 0;
}

int RequestParser::on_message_complete(http_parser* parser) {
  auto& self = *static_cast<RequestParser*>(parser->data);
  if (!self.finish_request()) {
    return -1;
  }
  self.request_.upgrade = parser->upgrade != 0;
  // After an upgrade the bytes that follow are another protocol's.
  self.keep_alive_ = ::http_should_keep_alive(parser) != 0 && !self.request_.upgrade;
  self.state_ = State::Complete;
  // Stops http_parser right after this request, leaving pipelined bytes unparsed.
  ::http_parser_pause(parser, 1);
  return 0;
}

bool RequestParser::reject(int status, std::string message) {
  fail(status, std::move(message));
  return false;
}

bool RequestParser::finish_request() {
  request_.method = ::http_method_str(static_cast<http_method>(parser_.method));
  for (auto& header : request_.headers) {
    trim_trailing_space(header.second);
  }
  // Only origin-form ("/path?query"): absolute URLs and CONNECT's authority mean nothing here.
  const std::string_view target = request_.target;
  if (target.empty() || target.front() != '/') {
    return reject(400, "the request target must be a path starting with '/'");
  }
  const size_t fragment = std::min(target.find('#'), target.size());
  const size_t query_start = std::min(target.find('?'), fragment);
  const std::string_view raw_path = target.substr(0, query_start);
  // An encoded slash would let one path segment pose as two (or hide a "..").
  if (lower(raw_path).find("%2f") != std::string::npos) {
    return reject(400, "encoded '/' in the request path");
  }
  auto path = percent_decode(raw_path);
  if (!path) {
    return reject(400, "bad percent-escape in the request path");
  }
  if (path->find('\0') != std::string::npos) {
    return reject(400, "NUL in the request path");
  }
  for (size_t start = 0; start <= path->size();) {
    const size_t end = std::min(path->find('/', start), path->size());
    if (std::string_view(*path).substr(start, end - start) == "..") {
      return reject(400, "'..' in the request path");
    }
    start = end + 1;
  }
  request_.path = std::move(*path);
  const std::string_view raw_query =
      query_start < fragment ? target.substr(query_start + 1, fragment - query_start - 1)
                             : std::string_view();
  auto query = parse_query(raw_query);
  if (!query) {
    return reject(400, "bad percent-escape in the query");
  }
  request_.query = std::move(*query);
  return true;
}

// ---- server connections -------------------------------------------------------------------------

HttpConnection::HttpConnection(int fd, const HttpServer& server, const RequestParser& parser,
                               bool upgrade, std::string early_bytes)
    : fd_(fd),
      server_(server),
      keep_alive_(parser.keep_alive()),
      http_1_0_(parser.http_1_0()),
      upgrade_requested_(upgrade),
      early_bytes_(std::move(early_bytes)) {}

bool HttpConnection::stopping() const {
  return server_.stopping();
}

bool HttpConnection::will_close() const {
  return !keep_alive_ || server_.stopping();
}

Status HttpConnection::send_all(std::string_view data) {
  auto sent = api::send_all(fd_, data, Clock::now() + server_.limits().read_timeout);
  if (!sent) {
    phase_ = Phase::Broken;
  }
  return sent;
}

std::string HttpConnection::status_line_and_headers(int status, std::string_view content_type) {
  closes_after_response_ = will_close();
  std::string head = response_head(status, content_type);
  if (closes_after_response_) {
    head += "Connection: close\r\n";
  }
  return head;
}

Status HttpConnection::respond(int status, std::string_view content_type, std::string_view body) {
  if (phase_ != Phase::Fresh) {
    return make_error(ExitStatus::HostError, "a response was already sent on this connection");
  }
  if (status < 100 || status > 999 || !safe_header_value(content_type)) {
    return make_error(ExitStatus::HostError, "invalid response status {} or content type", status);
  }
  std::string message = status_line_and_headers(status, content_type);
  message += fmt::format("Content-Length: {}\r\n\r\n", body.size());
  message += body;
  phase_ = Phase::Responded;
  return send_all(message);
}

Status HttpConnection::begin_chunked(int status, std::string_view content_type) {
  if (phase_ != Phase::Fresh) {
    return make_error(ExitStatus::HostError, "a response was already sent on this connection");
  }
  if (status < 100 || status > 999 || !safe_header_value(content_type)) {
    return make_error(ExitStatus::HostError, "invalid response status {} or content type", status);
  }
  // HTTP/1.0 knows no chunks: the body runs until the connection closes.
  if (http_1_0_) {
    keep_alive_ = false;
  }
  std::string head = status_line_and_headers(status, content_type);
  if (!http_1_0_) {
    head += "Transfer-Encoding: chunked\r\n";
  }
  head += "\r\n";
  phase_ = Phase::Streaming;
  return send_all(head);
}

Status HttpConnection::write_chunk(std::string_view data) {
  if (phase_ != Phase::Streaming) {
    return make_error(ExitStatus::HostError, "no chunked response is under way");
  }
  if (data.empty()) {
    return {};  // an empty chunk would end the body
  }
  if (http_1_0_) {
    return send_all(data);
  }
  std::string chunk = fmt::format("{:x}\r\n", data.size());
  chunk += data;
  chunk += "\r\n";
  return send_all(chunk);
}

Status HttpConnection::end_chunked() {
  if (phase_ != Phase::Streaming) {
    return make_error(ExitStatus::HostError, "no chunked response is under way");
  }
  phase_ = Phase::StreamEnded;
  if (http_1_0_) {
    return {};
  }
  return send_all("0\r\n\r\n");
}

Result<std::string> HttpConnection::switch_protocols(std::string_view protocol) {
  if (phase_ != Phase::Fresh) {
    return make_error(ExitStatus::HostError, "a response was already sent on this connection");
  }
  if (!upgrade_requested_) {
    return make_error(ExitStatus::HostError, "the request did not ask for a protocol upgrade");
  }
  if (protocol.empty() || !safe_header_value(protocol)) {
    return make_error(ExitStatus::HostError, "invalid upgrade protocol name");
  }
  phase_ = Phase::Upgraded;
  HV_TRY(send_all(fmt::format(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {}\r\n\r\n", protocol)));
  return std::move(early_bytes_);
}

// ---- server -------------------------------------------------------------------------------------

HttpServer::HttpServer(std::string socket_path, Fd listener, Fd wake, Fd reap, HttpLimits limits,
                       dev_t device, ino_t inode)
    : socket_path_(std::move(socket_path)),
      listener_(std::move(listener)),
      wake_(std::move(wake)),
      reap_(std::move(reap)),
      limits_(limits),
      socket_device_(device),
      socket_inode_(inode) {}

Result<std::unique_ptr<HttpServer>> HttpServer::listen(const std::string& socket_path, mode_t mode,
                                                       HttpLimits limits) {
  HV_TRY(check_socket_path(socket_path));
  const sockaddr_un address = unix_address(socket_path);
  const auto* raw_address = reinterpret_cast<const sockaddr*>(&address);
  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener.valid()) {
    return Error::from_errno("cannot create the API socket");
  }
  if (::bind(listener.get(), raw_address, sizeof(address)) != 0) {
    if (errno != EADDRINUSE) {
      return Error::from_errno(fmt::format("cannot bind the API socket {}", socket_path));
    }
    struct stat existing {};
    if (::lstat(socket_path.c_str(), &existing) == 0 && !S_ISSOCK(existing.st_mode)) {
      return make_error(ExitStatus::HostError, "{} exists and is not a socket", socket_path);
    }
    // Only a socket file nobody listens on is stale; a live server keeps its socket.
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!probe.valid()) {
      return Error::from_errno("cannot create a socket");
    }
    if (::connect(probe.get(), raw_address, sizeof(address)) == 0 || errno == EAGAIN) {
      return make_error(ExitStatus::HostError, "another server listens on {}", socket_path);
    }
    if (errno != ECONNREFUSED && errno != ENOENT) {
      return Error::from_errno(fmt::format("cannot probe the existing socket {}", socket_path));
    }
    if (::unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
      return Error::from_errno(fmt::format("cannot remove the stale socket {}", socket_path));
    }
    if (::bind(listener.get(), raw_address, sizeof(address)) != 0) {
      return Error::from_errno(fmt::format("cannot bind the API socket {}", socket_path));
    }
  }
  // From here on the file is ours; remove it again if the server cannot start.
  auto abandon = [&](Error error) {
    ::unlink(socket_path.c_str());
    return error;
  };
  // Before listen(): no client can connect while the mode is still the umask's.
  if (::chmod(socket_path.c_str(), mode) != 0) {
    return abandon(Error::from_errno(fmt::format("cannot chmod the API socket {}", socket_path)));
  }
  struct stat created {};
  if (::stat(socket_path.c_str(), &created) != 0) {
    return abandon(Error::from_errno(fmt::format("cannot stat the API socket {}", socket_path)));
  }
  const int backlog = static_cast<int>(std::clamp<size_t>(limits.max_connections, 16, SOMAXCONN));
  if (::listen(listener.get(), backlog) != 0) {
    return abandon(Error::from_errno(fmt::format("cannot listen on {}", socket_path)));
  }
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  Fd reap(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid() || !reap.valid()) {
    return abandon(Error::from_errno("cannot create the API server's eventfds"));
  }
  return std::unique_ptr<HttpServer>(new HttpServer(socket_path, std::move(listener),
                                                    std::move(wake), std::move(reap), limits,
                                                    created.st_dev, created.st_ino));
}

HttpServer::~HttpServer() {
  stop();
  // A newer server may have replaced the file since; that one is not ours to remove.
  struct stat current {};
  if (::lstat(socket_path_.c_str(), &current) == 0 && current.st_dev == socket_device_ &&
      current.st_ino == socket_inode_) {
    ::unlink(socket_path_.c_str());
  }
}

void HttpServer::stop() {
  stopping_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t written = ::write(wake_.get(), &one, sizeof(one));
}

Status HttpServer::serve(HttpHandler handler) {
  if (serving_.exchange(true)) {
    return make_error(ExitStatus::HostError, "the API server on {} is already serving",
                      socket_path_);
  }
  Status status;
  while (!stopping()) {
    std::array<pollfd, 3> fds{
        {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}, {reap_.get(), POLLIN, 0}}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      status = Error::from_errno("cannot poll the API socket");
      break;
    }
    if (fds[1].revents != 0) {
      break;
    }
    if (fds[2].revents != 0) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t n = ::read(reap_.get(), &count, sizeof(count));
      reap_finished();
    }
    if (fds[0].revents != 0) {
      accept_one(handler);
    }
  }
  // Wakes connections blocked in a handler's read or write; idle ones already saw wake_.
  for (auto& connection : connections_) {
    ::shutdown(connection->socket.get(), SHUT_RDWR);
  }
  for (auto& connection : connections_) {
    connection->thread.join();
  }
  connections_.clear();
  serving_.store(false);
  return status;
}

void HttpServer::reap_finished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->finished.load(std::memory_order_acquire)) {
      (*it)->thread.join();
      it = connections_.erase(it);  // closes the socket; only now may its number be reused
    } else {
      ++it;
    }
  }
}

void HttpServer::refuse(int fd, int status, std::string_view message) const {
  const std::string body = error_json(message);
  const std::string response =
      fmt::format("{}Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                  response_head(status, "application/json"), body.size(), body);
  (void)api::send_all(fd, response, Clock::now() + std::chrono::milliseconds(100));
}

void HttpServer::accept_one(const HttpHandler& handler) {
  Fd socket(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!socket.valid()) {
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      // The pending client stays in the backlog and keeps the listener readable: pause rather
      // than spin until a descriptor frees up.
      pollfd wake{wake_.get(), POLLIN, 0};
      ::poll(&wake, 1, 50);
    }
    return;
  }
  reap_finished();
  if (connections_.size() >= limits_.max_connections) {
    refuse(socket.get(), 503, "too many connections");
    return;
  }
  auto connection = std::make_unique<Connection>();
  connection->socket = std::move(socket);
  Connection& accepted = *connection;
  try {
    accepted.thread = std::thread([this, &accepted, &handler] {
      try {
        serve_connection(accepted, handler);
      } catch (...) {  // NOLINT: a connection's failure must not take the server down
      }
      // EOF for the peer now; the descriptor itself is closed by serve()'s thread after join.
      ::shutdown(accepted.socket.get(), SHUT_RDWR);
      accepted.finished.store(true, std::memory_order_release);
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(reap_.get(), &one, sizeof(one));
    });
  } catch (const std::system_error&) {
    refuse(accepted.socket.get(), 503, "cannot start a connection thread");
    return;
  }
  ::pthread_setname_np(accepted.thread.native_handle(), "hv-api-conn");
  connections_.push_back(std::move(connection));
}

void HttpServer::serve_connection(Connection& connection, const HttpHandler& handler) {
  const int fd = connection.socket.get();
  RequestParser parser(limits_);
  std::string pending;  // received but not yet parsed: at most one read's worth
  std::array<char, kReadChunk> buffer{};
  for (;;) {
    // An idle keep-alive connection is closed quietly after the timeout; a request under way
    // must be complete within the timeout from its first byte (slow-loris gets 408).
    const auto idle_deadline = Clock::now() + limits_.read_timeout;
    Deadline request_deadline;
    while (parser.state() == RequestParser::State::Incomplete) {
      if (!pending.empty()) {
        pending.erase(0, parser.feed(pending));
        if (parser.started() && !request_deadline) {
          request_deadline = Clock::now() + limits_.read_timeout;
        }
        if (parser.state() != RequestParser::State::Incomplete) {
          break;
        }
      }
      std::array<pollfd, 2> fds{{{fd, POLLIN, 0}, {wake_.get(), POLLIN, 0}}};
      const int ready =
          ::poll(fds.data(), fds.size(), poll_timeout_ms(request_deadline.value_or(idle_deadline)));
      if (ready < 0 && errno == EINTR) {
        continue;
      }
      if (ready < 0 || fds[1].revents != 0) {
        return;
      }
      if (ready == 0) {
        if (parser.started()) {
          refuse(fd, 408, "the request was not complete in time");
        }
        return;
      }
      const ssize_t received = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (received < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
        continue;
      }
      if (received <= 0) {
        return;  // the client left (mid-request or not); nobody to answer
      }
      pending.assign(buffer.data(), static_cast<size_t>(received));
    }
    if (parser.state() == RequestParser::State::Failed) {
      refuse(fd, parser.error_status(), parser.error_message());
      return;
    }
    HttpRequest request = parser.take_request();
    HttpConnection client(fd, *this, parser, request.upgrade,
                          request.upgrade ? std::move(pending) : std::string());
    try {
      handler(request, client);
    } catch (const std::exception& error) {
      if (client.phase_ == HttpConnection::Phase::Fresh) {
        refuse(fd, 500, fmt::format("internal error: {}", error.what()));
      }
      return;
    }
    if (client.phase_ == HttpConnection::Phase::Fresh) {
      refuse(fd, 500, "the handler sent no response");
      return;
    }
    const bool finished_cleanly = client.phase_ == HttpConnection::Phase::Responded ||
                                  client.phase_ == HttpConnection::Phase::StreamEnded;
    if (!finished_cleanly || client.closes_after_response_) {
      return;
    }
  }
}

// ---- client -------------------------------------------------------------------------------------

namespace {

Result<Fd> connect_to(const std::string& socket_path) {
  HV_TRY(check_socket_path(socket_path));
  const sockaddr_un address = unix_address(socket_path);
  // Non-blocking: a server with a full backlog is reported, not waited on forever.
  Fd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!socket.valid()) {
    return Error::from_errno("cannot create a socket");
  }
  if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR) {
      return Error::from_errno(fmt::format("no supervisor listens on {}", socket_path),
                               ExitStatus::FileMissing);
    }
    if (errno == EAGAIN) {
      return make_error(ExitStatus::HostError, "the supervisor on {} accepts no more connections",
                        socket_path);
    }
    return Error::from_errno(fmt::format("cannot connect to {}", socket_path));
  }
  return socket;
}

// Collects a response with http_parser; the body goes to on_data when given, else into
// response.body (bounded).
class ResponseParser {
 public:
  explicit ResponseParser(const std::function<bool(std::string_view)>* on_data)
      : on_data_(on_data) {
    ::http_parser_init(&parser_, HTTP_RESPONSE);
    parser_.data = this;
  }
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  size_t feed(std::string_view bytes) {
    const size_t parsed = ::http_parser_execute(&parser_, &kSettings, bytes.data(), bytes.size());
    const auto parser_errno = HTTP_PARSER_ERRNO(&parser_);
    if (!complete_ && !stopped_ && parser_errno != HPE_OK && error_.empty()) {
      error_ = ::http_errno_description(parser_errno);
    }
    return parsed;
  }
  // EOF ends a body that has neither length nor chunks.
  void feed_eof() { feed({}); }

  bool done() const { return complete_ || stopped_ || !error_.empty(); }
  bool complete() const { return complete_; }
  const std::string& error() const { return error_; }
  HttpResponse& response() { return response_; }

 private:
  static ResponseParser& self(http_parser* parser) {
    return *static_cast<ResponseParser*>(parser->data);
  }
  static int on_header_field(http_parser* parser, const char* at, size_t length) {
    auto& me = self(parser);
    auto& headers = me.response_.headers;
    if (headers.empty() || me.last_was_value_) {
      if (headers.size() >= kMaxHeaderCount) {
        me.error_ = "too many response headers";
        return -1;
      }
      headers.emplace_back();
    }
    headers.back().first += lower(std::string_view(at, length));
    me.last_was_value_ = false;
    return 0;
  }
  static int on_header_value(http_parser* parser, const char* at, size_t length) {
    auto& me = self(parser);
    if (me.response_.headers.empty()) {
      return -1;
    }
    me.response_.headers.back().second.append(at, length);
    me.last_was_value_ = true;
    return 0;
  }
  static int on_headers_complete(http_parser* parser) {
    auto& me = self(parser);
    me.response_.status = static_cast<int>(parser->status_code);
    for (auto& header : me.response_.headers) {
      trim_trailing_space(header.second);
    }
    return 0;
  }
  static int on_body(http_parser* parser, const char* at, size_t length) {
    auto& me = self(parser);
    if (me.on_data_ != nullptr && *me.on_data_) {
      if (!(*me.on_data_)(std::string_view(at, length))) {
        me.stopped_ = true;
        return -1;
      }
      return 0;
    }
    if (length > kMaxClientBodyBytes - me.response_.body.size()) {
      me.error_ = "response body too large";
      return -1;
    }
    me.response_.body.append(at, length);
    return 0;
  }
  static int on_message_complete(http_parser* parser) {
    self(parser).complete_ = true;
    // The bytes after a 101's head belong to the new protocol.
    ::http_parser_pause(parser, 1);
    return 0;
  }
  static constexpr http_parser_settings kSettings = {
      .on_message_begin = nullptr,
      .on_url = nullptr,
      .on_status = nullptr,
      .on_header_field = &ResponseParser::on_header_field,
      .on_header_value = &ResponseParser::on_header_value,
      .on_headers_complete = &ResponseParser::on_headers_complete,
      .on_body = &ResponseParser::on_body,
      .on_message_complete = &ResponseParser::on_message_complete,
      .on_chunk_header = nullptr,
      .on_chunk_complete = nullptr,
  };

  http_parser parser_{};
  const std::function<bool(std::string_view)>* on_data_;
  HttpResponse response_;
  bool last_was_value_ = false;
  bool complete_ = false;
  bool stopped_ = false;
  std::string error_;
};

std::string request_head(std::string_view method, std::string_view target,
                         std::string_view extra_headers) {
  return fmt::format("{} {} HTTP/1.1\r\nHost: localhost\r\n{}\r\n", method, target, extra_headers);
}

Status check_request_line(std::string_view method, std::string_view target) {
  const auto bad = [](std::string_view text) {
    return text.empty() || text.find_first_of(" \t\r\n") != std::string_view::npos;
  };
  if (bad(method) || bad(target) || target.front() != '/') {
    return make_error(ExitStatus::Usage, "invalid HTTP request '{} {}'", method, target);
  }
  return {};
}

// Reads until the response (or, for a 101, its head) is complete; `rest` receives what arrived
// after it.
Status receive_response(int fd, ResponseParser& parser, Deadline deadline,
                        const std::string& socket_path, std::string* rest) {
  std::vector<char> buffer(kReadChunk);
  while (!parser.done()) {
    if (!HV_TRY(wait_for(fd, POLLIN, deadline))) {
      return make_error(ExitStatus::Timeout, "the supervisor on {} did not answer in time",
                        socket_path);
    }
    const ssize_t received = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (received < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
        continue;
      }
      return Error::from_errno(fmt::format("cannot read the answer from {}", socket_path));
    }
    if (received == 0) {
      parser.feed_eof();
      if (!parser.complete()) {
        return make_error(ExitStatus::HostError, "{} closed the connection mid-response",
                          socket_path);
      }
      break;
    }
    const std::string_view bytes(buffer.data(), static_cast<size_t>(received));
    const size_t parsed = parser.feed(bytes);
    if (!parser.error().empty()) {
      return make_error(ExitStatus::HostError, "bad response from {}: {}", socket_path,
                        parser.error());
    }
    if (parser.complete() && rest != nullptr) {
      rest->assign(bytes.substr(parsed));
    }
  }
  return {};
}

std::string server_error_text(const HttpResponse& response) {
  auto parsed = nlohmann::json::parse(response.body, nullptr, false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    return parsed["error"].get<std::string>();
  }
  return fmt::format("HTTP {}: {}", response.status, response.body.substr(0, 200));
}

}  // namespace

Result<HttpResponse> http_request(const std::string& socket_path, std::string_view method,
                                  std::string_view target, std::string_view json_body,
                                  std::chrono::milliseconds timeout) {
  HV_TRY(check_request_line(method, target));
  const Deadline deadline = Clock::now() + timeout;
  Fd socket = HV_TRY(connect_to(socket_path));
  std::string headers = "Connection: close\r\n";
  if (!json_body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    headers +=
        fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", json_body.size());
  }
  std::string message = request_head(method, target, headers);
  message += json_body;
  HV_TRY(send_all(socket.get(), message, deadline));
  ResponseParser parser(nullptr);
  HV_TRY(receive_response(socket.get(), parser, deadline, socket_path, nullptr));
  return std::move(parser.response());
}

Result<int> http_stream(const std::string& socket_path, std::string_view method,
                        std::string_view target,
                        const std::function<bool(std::string_view)>& on_data) {
  HV_TRY(check_request_line(method, target));
  Fd socket = HV_TRY(connect_to(socket_path));
  std::string headers = "Connection: close\r\n";
  if (method == "POST" || method == "PUT" || method == "PATCH") {
    headers += "Content-Length: 0\r\n";
  }
  HV_TRY(send_all(socket.get(), request_head(method, target, headers), std::nullopt));
  ResponseParser parser(&on_data);
  HV_TRY(receive_response(socket.get(), parser, std::nullopt, socket_path, nullptr));
  return parser.response().status;
}

Result<Upgraded> http_upgrade(const std::string& socket_path, std::string_view target,
                              std::string_view protocol) {
  HV_TRY(check_request_line("POST", target));
  if (protocol.empty() || !safe_header_value(protocol)) {
    return make_error(ExitStatus::Usage, "invalid upgrade protocol '{}'", protocol);
  }
  const Deadline deadline = Clock::now() + std::chrono::seconds(60);
  Fd socket = HV_TRY(connect_to(socket_path));
  HV_TRY(send_all(
      socket.get(),
      request_head("POST", target, fmt::format("Connection: Upgrade\r\nUpgrade: {}\r\n", protocol)),
      deadline));
  ResponseParser parser(nullptr);
  std::string early_bytes;
  HV_TRY(receive_response(socket.get(), parser, deadline, socket_path, &early_bytes));
  if (parser.response().status != 101) {
    return make_error(ExitStatus::HostError, "{}", server_error_text(parser.response()));
  }
  // The caller gets an ordinary blocking socket for the new protocol.
  const int flags = ::fcntl(socket.get(), F_GETFL);
  if (flags < 0 || ::fcntl(socket.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return Error::from_errno("cannot make the upgraded socket blocking");
  }
  return Upgraded{std::move(socket), std::move(early_bytes)};
}

}  // namespace hv::api
