#pragma once
// Clock: the source of time, behind an interface so tests can fake it.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace relsupd {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds, for durations and timers.
  virtual int64_t MonotonicMs() const = 0;
  // Wall-clock time as Unix milliseconds, for the ledger.
  virtual int64_t WallMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t MonotonicMs() const override;
  int64_t WallMs() const override;
};

// The process-wide real clock.
const Clock& RealClock();

// Formats Unix milliseconds as RFC 3339 UTC: "2026-11-27T10:58:50.123Z".
std::string FormatTimeUtc(int64_t unix_ms);

// A point in time as `logs --since` takes it, in Unix milliseconds: a
// duration back from `now_ms` ("90s", "5m", "1h30m": ParseDurationMs), or
// a time: RFC 3339 ("2026-12-05T09:00:00Z", "...T09:00:00.5+01:00"), or
// "YYYY-MM-DD HH:MM[:SS]" and "YYYY-MM-DD" in local time. The error names
// the text and the forms taken.
Result<int64_t> ParseSince(std::string_view text, int64_t now_ms);

}  // namespace relsupd
