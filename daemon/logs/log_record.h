#pragma once
// LogRecord: one line (or line piece) of an app process's output, and its
// forms: the on-disk line LogStore writes and reads (one JSON object per
// line, seq first), its JSON object, and the UTF-8 and time helpers they
// need. Value types and pure functions; any thread.

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace re2 {
class RE2;
}

namespace relsupd {

struct LogRecord {
  uint64_t seq = 0;     // per app, increasing, continues across restarts
  int64_t time_us = 0;  // wall clock, microseconds since the epoch
  std::string app, release /* "v3" */, process /* "web.1" */,
      stream /* "out"|"err" */;
  std::string text;
  bool partial =
      false;  // a piece of an over-long line; the next piece continues it

  bool operator==(const LogRecord&) const = default;
};

struct LogFilter {
  std::string
      process;  // "" all; "web" matches web.1, web.2; "web.2" only that one
  std::string stream;  // "" both
  std::string release;  // "" all; "v3" only that release's lines
  int64_t since_us = 0;  // only records at or after this time (0: all)
  // Only records whose text it matches somewhere (RE2 syntax: linear time,
  // whatever the pattern, so a peer's pattern cannot stall the daemon).
  std::shared_ptr<const re2::RE2> grep{};

  bool Matches(const LogRecord& record) const;
};

nlohmann::json LogRecordToJson(
    const LogRecord&);  // keys: seq, time (RFC 3339 UTC with µs), app, release,
                        // process, stream, text, partial

// The on-disk line for `record` (LogRecordToJson's object, compact, no '\n').
// REQUIRES: the strings are valid UTF-8 (Append makes them so).
void EncodeLogRecord(const LogRecord& record, std::string* out);
// Parses one on-disk line; kCorruption if it is not a complete record.
Result<LogRecord> DecodeLogRecord(std::string_view line);
// "2026-11-27T10:58:50.123456Z".
std::string FormatTimeUtcMicros(int64_t unix_us);
// Returns `s` with each invalid UTF-8 sequence replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view s);
bool IsValidUtf8(std::string_view s);

// The seq of an on-disk line from its fixed prefix `{"seq":N,`, without
// parsing the rest. A line that passes may still be torn; use it only to
// skip lines.
bool PeekLogSeq(std::string_view line, uint64_t* seq);

}  // namespace relsupd
