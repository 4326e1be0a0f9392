#include "api/http.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace hv::api {
namespace {

using namespace std::chrono_literals;

// A raw client, for what http_request would never send.
Fd connect_raw(const std::string& path) {
  Fd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    ADD_FAILURE() << "connect: " << std::strerror(errno);
  }
  return socket;
}

void send_raw(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    ASSERT_GT(sent, 0) << std::strerror(errno);
    data.remove_prefix(static_cast<size_t>(sent));
  }
}

// Reads until `done(received)` or EOF, or gives up after `timeout`.
std::string read_raw(int fd, std::chrono::milliseconds timeout,
                     const std::function<bool(const std::string&)>& done = {}) {
  std::string received;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done || !done(received)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd entry{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&entry, 1, static_cast<int>(left.count())) <= 0) {
      break;
    }
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      break;
    }
    received.append(buffer, static_cast<size_t>(n));
  }
  return received;
}

// True once `text` holds a whole response with a Content-Length body.
bool has_complete_response(const std::string& text, size_t count = 1) {
  size_t start = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t head_end = text.find("\r\n\r\n", start);
    if (head_end == std::string::npos) {
      return false;
    }
    const size_t length_at = text.find("Content-Length: ", start);
    if (length_at == std::string::npos || length_at > head_end) {
      return false;
    }
    const size_t length = std::strtoul(text.c_str() + length_at + 16, nullptr, 10);
    if (text.size() < head_end + 4 + length) {
      return false;
    }
    start = head_end + 4 + length;
  }
  return true;
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/hv-http-XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_path_ = dir_.path() + "/api.sock";
    HttpLimits limits;
    limits.read_timeout = 300ms;
    limits.max_header_bytes = 4096;
    limits.max_connections = 4;
    auto server = HttpServer::listen(socket_path_, 0600, limits);
    ASSERT_TRUE(server.ok()) << server.error().to_string();
    server_ = std::move(*server);
    serve_thread_ = std::thread([this] {
      auto served = server_->serve([this](const HttpRequest& request, HttpConnection& connection) {
        handle(request, connection);
      });
      EXPECT_TRUE(served.ok()) << served.error().to_string();
    });
  }

  void TearDown() override {
    if (server_) {
      server_->stop();
    }
    if (serve_thread_.joinable()) {
      serve_thread_.join();
    }
    server_.reset();
  }

  void handle(const HttpRequest& request, HttpConnection& connection) {
    ++handler_calls_;
    if (request.path == "/v1/stream") {
      ASSERT_TRUE(connection.begin_chunked(200, "text/plain; charset=utf-8").ok());
      for (const char* piece : {"one ", "two ", "three"}) {
        // A client that stopped early shows as a failed write: the handler just ends.
        if (!connection.write_chunk(piece).ok()) {
          return;
        }
        std::this_thread::sleep_for(10ms);  // separate pieces on the wire
      }
      (void)connection.end_chunked();
      return;
    }
    if (request.path == "/v1/echo-socket") {
      auto early = connection.switch_protocols("echo");
      ASSERT_TRUE(early.ok()) << early.error().to_string();
      send_raw(connection.fd(), *early);
      char buffer[256];
      ssize_t n;
      while ((n = ::recv(connection.fd(), buffer, sizeof(buffer), 0)) > 0) {
        send_raw(connection.fd(), std::string_view(buffer, static_cast<size_t>(n)));
      }
      return;
    }
    if (request.path == "/v1/missing") {
      (void)connection.respond(404, "application/json", error_json("no such guest"));
      return;
    }
    nlohmann::json query = nlohmann::json::array();
    for (const auto& [name, value] : request.query) {
      query.push_back({name, value});
    }
    const nlohmann::json answer = {
        {"method", request.method}, {"path", request.path},
        {"target", request.target}, {"query", query},
        {"body", request.body},     {"content_type", request.header("content-type").value_or("")}};
    ASSERT_TRUE(connection.respond(200, "application/json", answer.dump()).ok());
  }

  TempDir dir_;
  std::string socket_path_;
  std::unique_ptr<HttpServer> server_;
  std::thread serve_thread_;
  std::atomic<int> handler_calls_{0};
};

TEST(HttpPercentDecode, DecodesEscapesAndRejectsBadOnes) {
  EXPECT_EQ(percent_decode("a%20b%2fc"), "a b/c");
  EXPECT_EQ(percent_decode("plain+text"), "plain+text");
  EXPECT_EQ(percent_decode(""), "");
  EXPECT_EQ(percent_decode("%"), std::nullopt);
  EXPECT_EQ(percent_decode("%4"), std::nullopt);
  EXPECT_EQ(percent_decode("%zz"), std::nullopt);
  auto query = parse_query("a=1&&b=x+y%21&flag&c=");
  ASSERT_TRUE(query.has_value());
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"a", "1"}, {"b", "x y!"}, {"flag", ""}, {"c", ""}};
  EXPECT_EQ(*query, expected);
  EXPECT_FALSE(parse_query("a=%g0").has_value());
}

TEST(HttpRequestParser, SplitsPipelinedRequestsAndKeepsTheRest) {
  RequestParser parser(HttpLimits{});
  const std::string bytes =
      "POST /a HTTP/1.1\r\nContent-Length: 2\r\nX-Name:  Value  \r\n\r\nhi"
      "GET /b?x=1 HTTP/1.1\r\n\r\nextra";
  size_t used = parser.feed(bytes);
  ASSERT_EQ(parser.state(), RequestParser::State::Complete);
  auto first = parser.take_request();
  EXPECT_EQ(first.method, "POST");
  EXPECT_EQ(first.body, "hi");
  EXPECT_EQ(first.header("x-name"), "Value");
  used += parser.feed(std::string_view(bytes).substr(used));
  ASSERT_EQ(parser.state(), RequestParser::State::Complete);
  auto second = parser.take_request();
  EXPECT_EQ(second.path, "/b");
  EXPECT_EQ(second.query_value("x"), "1");
  EXPECT_EQ(std::string_view(bytes).substr(used), "extra");
}

TEST(HttpRequestParser, FeedsByteByByte) {
  RequestParser parser(HttpLimits{});
  const std::string bytes =
      "PUT /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  for (char c : bytes) {
    ASSERT_EQ(parser.state(), RequestParser::State::Incomplete);
    ASSERT_EQ(parser.feed(std::string_view(&c, 1)), 1u);
  }
  ASSERT_EQ(parser.state(), RequestParser::State::Complete);
  EXPECT_EQ(parser.take_request().body, "abcde");
}

TEST(HttpRequestParser, LimitsChunkedBodyAndHeaderCount) {
  HttpLimits limits;
  limits.max_body_bytes = 4;
  RequestParser chunked(limits);
  chunked.feed("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n");
  EXPECT_EQ(chunked.state(), RequestParser::State::Failed);
  EXPECT_EQ(chunked.error_status(), 413);

  RequestParser many(HttpLimits{});
  std::string head = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHeaderCount; ++i) {
    head += fmt::format("h{}: v\r\n", i);
  }
  many.feed(head + "\r\n");
  EXPECT_EQ(many.state(), RequestParser::State::Failed);
  EXPECT_EQ(many.error_status(), 431);
}

TEST_F(HttpServerTest, GetRoundTrip) {
  auto response = http_request(socket_path_, "GET", "/v1/guests/a");
  ASSERT_TRUE(response.ok()) << response.error().to_string();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("content-type"), "application/json");
  const auto body = nlohmann::json::parse(response->body);
  EXPECT_EQ(body["method"], "GET");
  EXPECT_EQ(body["path"], "/v1/guests/a");
}

TEST_F(HttpServerTest, PostJsonBodyRoundTrip) {
  const std::string json = R"({"name":"a","memory_mib":256})";
  auto response = http_request(socket_path_, "POST", "/v1/guests", json);
  ASSERT_TRUE(response.ok()) << response.error().to_string();
  EXPECT_EQ(response->status, 200);
  const auto body = nlohmann::json::parse(response->body);
  EXPECT_EQ(body["method"], "POST");
  EXPECT_EQ(body["body"], json);
  EXPECT_EQ(body["content_type"], "application/json");
}

TEST_F(HttpServerTest, ErrorStatusReachesTheClient) {
  auto response = http_request(socket_path_, "GET", "/v1/missing");
  ASSERT_TRUE(response.ok()) << response.error().to_string();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(nlohmann::json::parse(response->body)["error"], "no such guest");
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  Fd client = connect_raw(socket_path_);
  send_raw(client.get(), "GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string first =
      read_raw(client.get(), 2s, [](const std::string& s) { return has_complete_response(s); });
  ASSERT_TRUE(has_complete_response(first)) << first;
  EXPECT_EQ(first.find("Connection: close"), std::string::npos);
  EXPECT_NE(first.find("\"/first\""), std::string::npos);

  // The second one pipelines a third behind it; "Connection: close" ends the connection.
  send_raw(
      client.get(),
      "GET /second HTTP/1.1\r\nHost: x\r\n\r\nGET /third HTTP/1.1\r\nConnection: close\r\n\r\n");
  const std::string rest = read_raw(client.get(), 2s);  // until EOF
  ASSERT_TRUE(has_complete_response(rest, 2)) << rest;
  EXPECT_NE(rest.find("\"/second\""), std::string::npos);
  EXPECT_NE(rest.find("\"/third\""), std::string::npos);
  EXPECT_NE(rest.find("Connection: close"), std::string::npos);
  EXPECT_EQ(handler_calls_.load(), 3);
}

TEST_F(HttpServerTest, DecodesQuery) {
  auto response =
      http_request(socket_path_, "GET", "/v1/guests/my%20vm/logs?follow=true&tail=10&q=a%26b");
  ASSERT_TRUE(response.ok()) << response.error().to_string();
  const auto body = nlohmann::json::parse(response->body);
  EXPECT_EQ(body["path"], "/v1/guests/my vm/logs");
  EXPECT_EQ(body["target"], "/v1/guests/my%20vm/logs?follow=true&tail=10&q=a%26b");
  const auto expected = nlohmann::json::parse(R"([["follow","true"],["tail","10"],["q","a&b"]])");
  EXPECT_EQ(body["query"], expected);
}

TEST_F(HttpServerTest, RejectsDotDotAndEncodedSlashBeforeHandler) {
  for (const char* target :
       {"/v1/guests/../../etc", "/v1/guests/a%2F..%2Fb", "/v1/%2e%2e/x", "/v1/a%00b", "/v1/%zz"}) {
    auto response = http_request(socket_path_, "GET", target);
    ASSERT_TRUE(response.ok()) << response.error().to_string();
    EXPECT_EQ(response->status, 400) << target;
    EXPECT_TRUE(nlohmann::json::parse(response->body)["error"].is_string());
  }
  EXPECT_EQ(handler_calls_.load(), 0);
}

TEST_F(HttpServerTest, MalformedRequestLineGets400) {
  Fd client = connect_raw(socket_path_);
  send_raw(client.get(), "this is not http\r\n\r\n");
  const std::string answer = read_raw(client.get(), 2s);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0u) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos);
  EXPECT_NE(answer.find("{\"error\":"), std::string::npos);
  EXPECT_EQ(handler_calls_.load(), 0);
}

TEST_F(HttpServerTest, OversizedHeadersGet431) {
  Fd client = connect_raw(socket_path_);
  send_raw(client.get(), "GET / HTTP/1.1\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n");
  const std::string answer = read_raw(client.get(), 2s);
  EXPECT_EQ(answer.rfind("HTTP/1.1 431 ", 0), 0u) << answer;
}

TEST_F(HttpServerTest, OversizedBodyGets413WithoutReadingIt) {
  Fd client = connect_raw(socket_path_);
  // Only the head and a few body bytes are sent: the answer must not wait for the 2 MiB.
  send_raw(client.get(), "PUT /v1/x HTTP/1.1\r\nContent-Length: 2097152\r\n\r\n{\"a\":");
  const std::string answer = read_raw(client.get(), 2s);
  EXPECT_EQ(answer.rfind("HTTP/1.1 413 ", 0), 0u) << answer;
  EXPECT_EQ(handler_calls_.load(), 0);
}

TEST_F(HttpServerTest, StalledClientGets408) {
  Fd client = connect_raw(socket_path_);
  const auto start = std::chrono::steady_clock::now();
  send_raw(client.get(), "GET /v1/guests HTTP/1.1\r\nHost: x\r\n");
  const std::string answer = read_raw(client.get(), 2s);
  EXPECT_EQ(answer.rfind("HTTP/1.1 408 ", 0), 0u) << answer;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

TEST_F(HttpServerTest, Http2PrefaceIsRejected) {
  Fd client = connect_raw(socket_path_);
  send_raw(client.get(), std::string_view("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  const std::string answer = read_raw(client.get(), 2s);
  EXPECT_TRUE(answer.rfind("HTTP/1.1 505 ", 0) == 0 || answer.rfind("HTTP/1.1 400 ", 0) == 0)
      << answer;

  Fd versioned = connect_raw(socket_path_);
  send_raw(versioned.get(), "GET / HTTP/2.0\r\n\r\n");
  EXPECT_EQ(read_raw(versioned.get(), 2s).rfind("HTTP/1.1 505 ", 0), 0u);
}

TEST_F(HttpServerTest, StreamsChunkedBodyInPieces) {
  std::vector<std::string> pieces;
  auto status = http_stream(socket_path_, "GET", "/v1/stream", [&](std::string_view data) {
    pieces.emplace_back(data);
    return true;
  });
  ASSERT_TRUE(status.ok()) << status.error().to_string();
  EXPECT_EQ(*status, 200);
  std::string joined;
  for (const auto& piece : pieces) {
    joined += piece;
  }
  EXPECT_EQ(joined, "one two three");
  EXPECT_GE(pieces.size(), 2u);
}

TEST_F(HttpServerTest, StreamStopsEarlyWhenAsked) {
  std::string first;
  auto status = http_stream(socket_path_, "GET", "/v1/stream", [&](std::string_view data) {
    first = data;
    return false;
  });
  ASSERT_TRUE(status.ok()) << status.error().to_string();
  EXPECT_EQ(first, "one ");
}

TEST_F(HttpServerTest, UpgradeHandsOverRawSocket) {
  auto upgraded = http_upgrade(socket_path_, "/v1/echo-socket", "echo");
  ASSERT_TRUE(upgraded.ok()) << upgraded.error().to_string();
  send_raw(upgraded->socket.get(), "ping");
  std::string echoed =
      upgraded->early_bytes + read_raw(upgraded->socket.get(), 2s, [&](const std::string& s) {
        return upgraded->early_bytes.size() + s.size() >= 4;
      });
  EXPECT_EQ(echoed, "ping");
}

TEST_F(HttpServerTest, UpgradeKeepsBytesSentBehindTheHead) {
  Fd client = connect_raw(socket_path_);
  send_raw(client.get(),
           "GET /v1/echo-socket HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly");
  const std::string answer = read_raw(
      client.get(), 2s, [](const std::string& s) { return s.find("early") != std::string::npos; });
  EXPECT_EQ(answer.rfind("HTTP/1.1 101 ", 0), 0u) << answer;
  EXPECT_NE(answer.find("Upgrade: echo\r\n"), std::string::npos);
  EXPECT_EQ(answer.substr(answer.find("\r\n\r\n") + 4), "early");
}

TEST_F(HttpServerTest, UpgradeRefusalCarriesTheServerMessage) {
  auto upgraded = http_upgrade(socket_path_, "/v1/missing", "echo");
  ASSERT_FALSE(upgraded.ok());
  EXPECT_EQ(upgraded.error().message, "no such guest");
}

TEST_F(HttpServerTest, StopEndsServeWhileClientConnected) {
  Fd idle = connect_raw(socket_path_);
  Fd half = connect_raw(socket_path_);
  send_raw(half.get(), "GET / HTTP/1.1\r\n");
  std::this_thread::sleep_for(20ms);
  const auto start = std::chrono::steady_clock::now();
  server_->stop();
  serve_thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 250ms);  // well before the read timeout
  EXPECT_TRUE(server_->stopping());
}

TEST_F(HttpServerTest, TooManyConnectionsGet503) {
  std::vector<Fd> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(connect_raw(socket_path_));
  }
  Fd extra = connect_raw(socket_path_);
  const std::string answer = read_raw(extra.get(), 2s);
  EXPECT_EQ(answer.rfind("HTTP/1.1 503 ", 0), 0u) << answer;
}

TEST_F(HttpServerTest, SocketModeIs0600) {
  struct stat st {};
  ASSERT_EQ(::stat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(HttpServerTest, SecondListenOnLiveSocketFails) {
  auto second = HttpServer::listen(socket_path_, 0600);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().message, "another server listens on " + socket_path_);
  // The live server still answers.
  auto response = http_request(socket_path_, "GET", "/v1/ping");
  ASSERT_TRUE(response.ok()) << response.error().to_string();
}

TEST(HttpListen, StaleSocketFileIsReplacedAndRemovedOnExit) {
  TempDir dir;
  const std::string path = dir.path() + "/api.sock";
  {
    // A socket bound but never served or closed cleanly: what a crashed server leaves behind.
    Fd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  {
    auto server = HttpServer::listen(path, 0600);
    ASSERT_TRUE(server.ok()) << server.error().to_string();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(HttpListen, RefusesToReplaceAFileThatIsNotASocket) {
  TempDir dir;
  const std::string path = dir.path() + "/api.sock";
  {
    std::FILE* file = std::fopen(path.c_str(), "w");
    std::fclose(file);
  }
  auto server = HttpServer::listen(path, 0600);
  ASSERT_FALSE(server.ok());
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(HttpClient, MissingSocketIsFileMissing) {
  TempDir dir;
  const std::string path = dir.path() + "/nobody.sock";
  auto response = http_request(path, "GET", "/v1/guests");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().status, ExitStatus::FileMissing);
  EXPECT_NE(response.error().to_string().find("no supervisor listens on " + path),
            std::string::npos);
}

}  // namespace
}  // namespace hv::api
