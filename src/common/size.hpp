#pragma once

#include <cstdint>
#include <string_view>

#include "common/error.hpp"

namespace hv {

// "256M", "1G", "4096K", "1048576" (bytes). Suffixes are binary (K = 1024), case-insensitive,
// with an optional trailing "B" / "iB".
Result<uint64_t> parse_size(std::string_view text);

}  // namespace hv
