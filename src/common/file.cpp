#include "common/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.hpp"

namespace hv {

Result<std::vector<uint8_t>> read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return Error::from_errno(fmt::format("cannot open '{}'", path), ExitStatus::FileMissing);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return Error::from_errno(fmt::format("cannot stat '{}'", path), ExitStatus::FileMissing);
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(ExitStatus::FileMissing, "'{}' is not a regular file", path);
  }
  std::vector<uint8_t> data(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Error::from_errno(fmt::format("cannot read '{}'", path), ExitStatus::FileMissing);
    }
    if (n == 0) {
      data.resize(done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  return data;
}

}  // namespace hv
