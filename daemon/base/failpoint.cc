#include "daemon/base/failpoint.h"

#include <fcntl.h>
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

void FailpointWait(std::string_view name) {
  if (Armed().empty() || Armed() != name) return;
  const char* gate = std::getenv("RELSUPD_FAILPOINT_GATE");
  if (gate == nullptr) return;
  // GATE.reached says the job is here (the test waits for it).
  const int reached = ::open((std::string(gate) + ".reached").c_str(),
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (reached >= 0) ::close(reached);
  for (int i = 0; i < 6000 && ::access(gate, F_OK) != 0; ++i) ::usleep(10'000);
}

}  // namespace relsupd
