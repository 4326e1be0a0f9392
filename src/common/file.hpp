#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace hv {

// Reads a whole regular file; errors name the path and use ExitStatus::FileMissing.
Result<std::vector<uint8_t>> read_file(const std::string& path);

// A whole file as text, however the file system reports its size (/proc files say 0); errors
// name the path and use ExitStatus::FileMissing.
Result<std::string> read_text_file(const std::string& path);

// Replaces `path` with `text` through a temporary file beside it and a rename, so that a reader,
// or a process that dies half-way, finds the old file or the new one, never a mix. Synced also
// makes it survive a crash of the host: fsync of the file before the rename, of the directory
// after it.
enum class Durability { Replaced, Synced };
Status write_file_atomically(const std::string& path, std::string_view text, Durability durability);

}  // namespace hv
