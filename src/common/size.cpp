#include "common/size.hpp"

#include <cctype>
#include <charconv>

namespace hv {

Result<uint64_t> parse_size(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) {
    return make_error(ExitStatus::Usage, "'{}' is not a size (expected e.g. 256M or 1G)", text);
  }
  std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
  int shift = 0;
  if (!suffix.empty()) {
    switch (std::tolower(static_cast<unsigned char>(suffix.front()))) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      case 'b':
        shift = 0;
        break;
      default:
        return make_error(ExitStatus::Usage, "'{}' has an unknown size suffix '{}'", text, suffix);
    }
    std::string_view rest = suffix.substr(1);
    if (shift != 0 && (rest == "iB" || rest == "ib" || rest == "B" || rest == "b")) {
      rest = {};
    }
    if (!rest.empty()) {
      return make_error(ExitStatus::Usage, "'{}' has an unknown size suffix '{}'", text, suffix);
    }
  }
  if (shift != 0 && value > (UINT64_MAX >> shift)) {
    return make_error(ExitStatus::Usage, "size '{}' is too large", text);
  }
  return value << shift;
}

}  // namespace hv
