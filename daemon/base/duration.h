#pragma once
// Durations written by people: "500ms", "10s", "2m", "1h", "1m30s".

#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace relsupd {

// Parses a duration into milliseconds. A bare number is seconds. Each
// number is at most 1,000,000,000 and the sum at most 1000000000h.
Result<int64_t> ParseDurationMs(std::string_view text);

// Formats milliseconds the shortest way ParseDurationMs reads back ("1m30s").
std::string FormatDurationMs(int64_t ms);

// Formats an elapsed time for people (ps UPTIME, info uptime), to at most
// two units: "850ms", "7s", "10m7s", "3h4m", "2d5h". Truncates, never
// rounds up; "-" for 0 or less (nothing elapsed: not running).
std::string FormatElapsed(int64_t ms);

}  // namespace relsupd
