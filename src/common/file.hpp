#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace hv {

// Reads a whole regular file; errors name the path and use ExitStatus::FileMissing.
Result<std::vector<uint8_t>> read_file(const std::string& path);

}  // namespace hv
