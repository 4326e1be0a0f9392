// libFuzzer target: arbitrary bytes as what a client sends to the API socket (hostile input).
// The first byte picks where the stream is cut in two, so that requests split across reads are
// exercised too. The parser must never crash, exceed its limits or stop making progress.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/http.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  hv::api::HttpLimits limits;
  limits.max_header_bytes = 512;  // small limits so that the fuzzer reaches them
  limits.max_body_bytes = 1024;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t cut = input.empty() ? 0 : data[0] % (input.size() + 1);

  hv::api::RequestParser parser(limits);
  for (std::string_view piece : {input.substr(0, cut), input.substr(cut)}) {
    while (!piece.empty() && parser.state() == hv::api::RequestParser::State::Incomplete) {
      const size_t used = parser.feed(piece);
      if (used > piece.size()) {
        std::abort();
      }
      piece.remove_prefix(used);
      if (parser.state() == hv::api::RequestParser::State::Complete) {
        const hv::api::HttpRequest request = parser.take_request();
        if (request.body.size() > limits.max_body_bytes ||
            request.headers.size() > hv::api::kMaxHeaderCount ||
            request.path.find('\0') != std::string::npos) {
          std::abort();
        }
        if (!parser.keep_alive()) {
          break;
        }
      } else if (used == 0) {
        break;
      }
    }
  }
  if (parser.state() == hv::api::RequestParser::State::Failed &&
      (parser.error_status() < 400 || parser.error_status() > 599)) {
    std::abort();
  }
  (void)hv::api::percent_decode(input);
  (void)hv::api::parse_query(input);
  return 0;
}
