// libFuzzer target: arbitrary bytes as a container's config.json (hostile input from a bundle).
// Parsing must succeed or fail with ExitStatus::BadConfig, never crash or throw.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "container/oci_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = hv::container::parse_oci_config(text);
  if (!parsed.ok() && parsed.error().status != hv::ExitStatus::BadConfig) {
    std::abort();
  }
  return 0;
}
