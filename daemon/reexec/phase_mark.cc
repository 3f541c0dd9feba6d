#include "daemon/reexec/phase_mark.h"

#include <sys/resource.h>
#include <time.h>

#include <cstdio>

namespace relsupd {
namespace {

PhaseMark g_image_start;

__attribute__((constructor(101))) void TakeImageStartMark() { g_image_start = MarkNow(); }

}  // namespace

PhaseMark MarkNow() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return {static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000,
          static_cast<int64_t>(ru.ru_minflt + ru.ru_majflt)};
}

PhaseMark ImageStartMark() { return g_image_start; }

std::string Between(const PhaseMark& from, const PhaseMark& to) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f ms, %lld faults",
                static_cast<double>(to.us - from.us) / 1000.0,
                static_cast<long long>(to.faults - from.faults));
  return buf;
}

}  // namespace relsupd
