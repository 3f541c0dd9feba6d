#pragma once
// LogRecord: one line (or line piece) of an app process's output, and its
// forms: the on-disk line LogStore writes and reads, its JSON object (what
// `ctl logs` shows), and the UTF-8 and time helpers they need. Value types
// and pure functions; any thread.
//
// The on-disk line, one record per line, fields separated by one space:
//
//   SEQ TIME RELEASE PROCESS STREAM FLAGS LEN TEXT
//   17 2026-11-27T10:58:50.123456Z v3 web.1 out - 11 hello world
//
// SEQ in decimal; TIME as FormatTimeUtcMicros gives it; RELEASE, PROCESS
// and STREAM as they are, except "-" for an empty one and %XX (two
// upper-case hex digits) for a space, '%', a control byte, DEL, and for
// the '-' of a field that is just "-"; FLAGS "-", or the letters of
// p (partial) and e (TEXT escaped: a newline written as \n and a
// backslash as \\; only a record whose text holds a newline is); LEN
// the bytes of TEXT as written, so a line cut short (a daemon killed
// mid-write) never decodes. The app is the directory the file is in. It
// is cheap to write (no per-character escaping of ordinary text) and to
// read with grep, awk or cut. Lines that start with '{' are the JSON
// objects earlier versions wrote (LogRecordToJson's keys); they are read,
// never written.

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

// The largest seq a record may have: a client's cursor (after_seq,
// before_seq) is a JSON int64. A line with a larger one, or 0, is corrupt
// (a hand-edited file must not make the next seq wrap to 0).
constexpr uint64_t kMaxLogSeq = INT64_MAX;

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

// Whose lines these are, as every log record names it.
struct LogSource {
  std::string app;
  std::string release;  // "v3"
  std::string process;  // "web.1"
};

// Appends the on-disk line for `record` (without the '\n'; record.app is
// not written).
void EncodeLogRecord(const LogRecord& record, std::string* out);
// The line in two parts, for many lines that share a time and a source:
// AppendLogMiddle gives " TIME RELEASE PROCESS STREAM " once, and
// AppendLogLine one whole line ('\n' included) with it, told whether
// `text` holds a '\n' (ScanText finds out).
void AppendLogMiddle(int64_t time_us, std::string_view release, std::string_view process,
                     std::string_view stream, std::string* out);
void AppendLogLine(uint64_t seq, std::string_view middle, std::string_view text, bool partial,
                   bool newline, std::string* out);
// Parses one on-disk line (either form, no '\n'); kCorruption if it is not
// a complete record. `app` names the app of the line (its file's
// directory); a JSON line's own "app" is used only when `app` is empty.
Result<LogRecord> DecodeLogRecord(std::string_view line, std::string_view app = {});
// "2026-11-27T10:58:50.123456Z".
std::string FormatTimeUtcMicros(int64_t unix_us);
// Returns `s` with each invalid UTF-8 sequence replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view s);
bool IsValidUtf8(std::string_view s);
// What storing a text needs to know of it, in one pass over ASCII text:
// whether it is valid UTF-8, and whether it holds a '\n'.
struct TextScan {
  bool utf8 = true;
  bool newline = false;
};
TextScan ScanText(std::string_view s);
// Whether every byte is below 0x80 (a whole read of a pipe at once: lines
// cut from ASCII are valid UTF-8 whatever their ends).
bool IsAscii(std::string_view s);

// The seq of an on-disk line (either form) from its prefix (`N ` or
// `{"seq":N,`), without parsing the rest. A line that passes may still be torn; use it only to
// skip lines.
bool PeekLogSeq(std::string_view line, uint64_t* seq);

}  // namespace relsupd
