#include "host_state.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace hv::test {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> host_mounts(const std::string& ignored_prefix) {
  std::vector<std::string> mounts;
  std::istringstream in(read_text("/proc/self/mountinfo"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string field;
    for (int i = 0; i < 5 && fields >> field; ++i) {
    }
    if (ignored_prefix.empty() || !field.starts_with(ignored_prefix)) {
      mounts.push_back(field);
    }
  }
  std::sort(mounts.begin(), mounts.end());
  return mounts;
}

}  // namespace hv::test
