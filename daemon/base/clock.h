#pragma once
// Clock: the source of time, behind an interface so tests can fake it.

#include <chrono>
#include <cstdint>
#include <string>

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

}  // namespace relsupd
