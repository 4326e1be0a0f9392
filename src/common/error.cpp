#include "common/error.hpp"

#include <cstring>

namespace hv {

std::string Error::to_string() const {
  if (sys_errno == 0) {
    return message;
  }
  return fmt::format("{}: {}", message, std::strerror(sys_errno));
}

Error Error::from_errno(std::string what, ExitStatus status) {
  return Error{std::move(what), errno, status};
}

}  // namespace hv
