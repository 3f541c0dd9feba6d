// Where a re-exec's time and page faults go (docs/reexec.md §7.4): a mark
// is the monotonic clock and this process's page faults at one point.
#pragma once

#include <cstdint>
#include <string>

namespace relsupd {

struct PhaseMark {
  int64_t us = 0;     // CLOCK_MONOTONIC, microseconds
  int64_t faults = 0; // minor + major page faults of this process so far
};

PhaseMark MarkNow();

// The mark taken by a constructor before main(): the new image's first.
PhaseMark ImageStartMark();

// "12.3 ms, 456 faults" between two marks.
std::string Between(const PhaseMark& from, const PhaseMark& to);

}  // namespace relsupd
