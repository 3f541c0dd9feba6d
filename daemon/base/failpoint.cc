#include "daemon/base/failpoint.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace relsupd {

namespace {

const std::string& Armed() {
  static const std::string armed = [] {
    const char* v = std::getenv("RELSUPD_FAILPOINT");
    return std::string(v ? v : "");
  }();
  return armed;
}

}  // namespace

void Failpoint(std::string_view name) {
  if (!Armed().empty() && Armed() == name) _exit(137);
}

bool FailpointFails(std::string_view name) {
  return !Armed().empty() && Armed() == name;
}

}  // namespace relsupd
