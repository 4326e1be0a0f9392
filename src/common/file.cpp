#include "common/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/fd.hpp"

namespace hv {

namespace {

Status write_all(int fd, std::string_view text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Error::from_errno(fmt::format("cannot write {}", path));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

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

Status write_file_atomically(const std::string& path, std::string_view text,
                             Durability durability) {
  const std::string temporary = path + ".tmp";
  {
    Fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) {
      return Error::from_errno(fmt::format("cannot create {}", temporary));
    }
    if (Status written = write_all(fd.get(), text, temporary); !written.ok()) {
      ::unlink(temporary.c_str());
      return written;
    }
    if (durability == Durability::Synced && ::fsync(fd.get()) != 0) {
      ::unlink(temporary.c_str());
      return Error::from_errno(fmt::format("cannot sync {}", temporary));
    }
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    ::unlink(temporary.c_str());
    return Error::from_errno(fmt::format("cannot rename {} to {}", temporary, path));
  }
  if (durability == Durability::Replaced) {
    return {};
  }
  // The rename itself must survive a crash of the host too.
  const size_t slash = path.rfind('/');
  const std::string directory = slash == std::string::npos ? "." : path.substr(0, slash);
  Fd dir(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) {
    ::fsync(dir.get());
  }
  return {};
}

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error::from_errno(fmt::format("cannot open {}", path), ExitStatus::FileMissing);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace hv
