// Fuzzes the decoder of the log store's on-disk lines (daemon/logs/
// log_record.h): a log file is outside input (a torn write, a file edited
// or planted by hand) that every `ctl logs` and the daemon's start-up read.
// Whatever the bytes, decoding must not crash, and a line that decodes
// must encode back to a line that decodes to the same record.
//
// Input: the line (without its '\n').

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "daemon/logs/log_record.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_log_record: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  uint64_t peeked = 0;
  const bool peek_ok = relsupd::PeekLogSeq(line, &peeked);
  relsupd::Result<relsupd::LogRecord> r = relsupd::DecodeLogRecord(line, "app");
  if (!r.ok()) return 0;
  // (A JSON line of an earlier version may be spaced otherwise: only the
  // store's own lines are peeked at reliably.)
  if (!line.starts_with('{') && (!peek_ok || peeked != r->seq))
    Fail("a decoded line's seq is not what PeekLogSeq reads");
  std::string again;
  relsupd::EncodeLogRecord(*r, &again);
  if (again.find('\n') != std::string::npos) Fail("an encoded line holds a newline");
  relsupd::Result<relsupd::LogRecord> back = relsupd::DecodeLogRecord(again, r->app);
  if (!back.ok()) Fail("an encoded record does not decode");
  if (!(*back == *r)) Fail("a record does not survive encode and decode");
  return 0;
}
