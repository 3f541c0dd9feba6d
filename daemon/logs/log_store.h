#pragma once
// LogStore: the daemon's store of app process output (stdout and stderr).
//
// Who owns what: the daemon owns one LogStore for STATE/logs; the supervisor
// feeds it records (one per line or line piece, see line_splitter.h) and the
// control server reads from it for `relsupd ctl logs APP [-f]`. Loop thread
// only: no method may be called from another thread, and none blocks on
// anything but local file I/O.
//
// On disk: STATE/logs/APP/current.log, one JSON object per line (the keys of
// LogRecordToJson; strings are valid UTF-8, invalid bytes in a child's
// output become U+FFFD). When the next record would take current.log past
// max_file_bytes, the files are rotated by a rename chain (current.log.N-2 ->
// current.log.N-1 (the oldest is replaced, i.e. dropped) ... current.log ->
// current.log.1) and a fresh current.log is opened. So each file holds at
// most max_file_bytes (unless one single record is larger) and an app uses at
// most max_file_bytes * max_files bytes. seq is per app, starts at 1 and
// continues across daemon restarts from the last record on disk. A corrupt
// or truncated line (the daemon killed mid-write) is skipped by every reader,
// and the next write starts on a fresh line.
//
// Buffering: Append encodes the record into a per-app buffer; the buffer is
// written (one write(2)) when it reaches kWriteBufferBytes, on Flush(), and
// before Tail/Since read the files. The supervisor calls Flush() after each
// read burst, so what a crash of the daemon can lose is at most one burst.
//
// Errors: Append never fails: write, rotation and journal errors are logged
// (spdlog warn, "..., ignoring") once per app and kind, and logged again only
// after the same kind of operation has succeeded once more. Tail and Since
// return a Status for an I/O error while reading.
//
// Follow: each app's newest records are also kept in memory (at most
// ring_lines records and ring_bytes of text); Since serves them from there
// and reads the files only for older ones.
//
// Journal: with options.journal each Append also sends the record to
// journald (sd_journal_sendv, one datagram) with SYSLOG_IDENTIFIER= the
// app and OBJECT_PID= the instance's main process. journald's own rate
// limit counts relsupd as one service, so one flooding app would silence
// every other app and the daemon: the packaged unit turns it off
// (LogRateLimitIntervalSec=0) and each app gets journal_burst records per
// journal_interval_ms instead. Past it that app's records still go to its
// files, not to the journal, and when its interval ends one record says
// how many were held back.
//
// Time: time_us comes from clock.WallMs() * 1000, except for the real
// SystemClock, whose microseconds are read directly so records are ordered
// finely; tests pass a fake Clock and get whole milliseconds.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/clock.h"
#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/logs/log_record.h"

namespace relsupd {

struct LogStoreOptions {
  uint64_t max_file_bytes = 8 << 20;  // rotate current.log when it would pass this
  int max_files = 4;                  // current.log + .1 .. .(max_files-1); oldest dropped
  size_t ring_lines = 10'000;         // per app, in memory, for follow
  size_t ring_bytes = 16 << 20;       // per app, bound on the ring's text bytes too
  bool journal = false;               // also sd_journal_send each line
  uint64_t journal_burst = 2'000;     // records per app per interval to the journal
  int64_t journal_interval_ms = 30'000;
  // Sends one journal record (tests: a fake); empty: sd_journal_sendv.
  std::function<int(const struct iovec*, int)> journal_send{};
};

class LogStore {
 public:
  // Per-app write buffer size that triggers a write before Flush().
  static constexpr size_t kWriteBufferBytes = 64 * 1024;

  // dir: STATE/logs; created (0750) if missing. Loop thread only.
  // REQUIRES: `clock` outlives the store. Fails on a bad option
  // (max_files < 1, max_file_bytes == 0) or if `dir` cannot be created or
  // listed.
  static Result<std::unique_ptr<LogStore>> Open(const std::string& dir, LogStoreOptions options, const Clock& clock);

  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;
  // Flushes.
  ~LogStore();

  // Assigns seq and time_us (if 0), writes it, keeps it in the ring. Write errors are
  // logged once per app (spdlog warn, ", ignoring") and never thrown.
  // A record whose app is empty, ".", or holds '/', ".." or NUL is dropped
  // (warned once).
  // `pid`: the process that wrote it (the journal's OBJECT_PID=), 0 if
  // none. Calls the on_append hook with the app's name.
  void Append(LogRecord record, pid_t pid = 0);
  void set_on_append(std::function<void(const std::string& app)> f) { on_append_ = std::move(f); }
  // Writes every app's buffered records to its file (one write(2) per app
  // with data). The supervisor calls it after each read burst, so unflushed
  // data is at most one burst (a crash of the daemon loses that much).
  void Flush();

  // The last n records of the app matching the filter, oldest first, from the files
  // (all rotated generations), so it works after a daemon restart.
  // An app without logs gives an empty vector; a bad app name
  // kInvalidArgument. With `before_seq`, only records with a smaller seq
  // count (the next page back). One call looks at kScanBudget records at
  // most, for kScanBudgetUs at most (a filter that matches rarely, or an
  // expensive pattern, holds no loop step for long): when it stopped there, `*resume_before` is set to the seq to
  // go on before, else to 0. A filter's since_us ends the walk at the
  // first older record.
  static constexpr size_t kScanBudget = 20'000;
  static constexpr int64_t kScanBudgetUs = 10'000;  // and at most this long
  Result<std::vector<LogRecord>> Tail(const std::string& app, const LogFilter& filter, size_t n,
                                      uint64_t before_seq = UINT64_MAX,
                                      uint64_t* resume_before = nullptr) const;
  // Records with seq > after_seq, oldest first, at most limit, from the in-memory ring
  // (falling back to the files when after_seq is older than the ring). For `logs -f`.
  // `*scanned`, when given: the seq a next call may start after (the last
  // record looked at, matching or not; at most kScanBudget of them).
  Result<std::vector<LogRecord>> Since(const std::string& app, uint64_t after_seq,
                                       const LogFilter& filter, size_t limit,
                                       uint64_t* scanned = nullptr) const;
  // 0 for an app without records.
  uint64_t LastSeq(const std::string& app) const;
  // `app delete`: drops what the store holds of the app (its buffered
  // records, its open file, its ring and counters); its directory is the
  // caller's to remove. A record appended later starts the app afresh,
  // its seq going on from the last one (in this image).
  void Forget(const std::string& app);

  const std::string& dir() const { return dir_; }
  const LogStoreOptions& options() const { return options_; }

  // Counters since this image started, per app (metrics): records taken by
  // stream ("out", "err", "relsupd"...), and records lost (a write to
  // current.log failed). Records of a bad app name count under "".
  struct AppCounters {
    std::map<std::string, uint64_t> lines;  // by stream
    uint64_t dropped = 0;
  };
  std::map<std::string, AppCounters> Counters() const;

 private:
  struct AppLog {
    const std::string* name = nullptr;  // its key in apps_
    std::string dir;        // STATE/logs/APP
    uint64_t last_seq = 0;
    Fd fd;                  // current.log, O_APPEND; opened on first write
    uint64_t file_bytes = 0;  // size of current.log including `pending`
    std::string pending;    // encoded records not yet written
    size_t pending_records = 0;  // in `pending`
    AppCounters counters;
    std::deque<LogRecord> ring;  // consecutive seqs, the newest last
    size_t ring_text_bytes = 0;  // sum of ring[i].text.size()
    bool open_tried = false;  // Append opened (or tried to open) current.log
    bool write_warned = false;
    bool rotate_warned = false;
    bool journal_warned = false;
    int64_t journal_window_ms = 0;  // start of the journal interval
    uint64_t journal_sent = 0;      // records sent in it
    uint64_t journal_held = 0;      // and held back
  };

  LogStore(std::string dir, LogStoreOptions options, const Clock& clock);
  Status LoadExisting();
  AppLog& GetApp(const std::string& app);
  // Opens current.log for appending, ending a torn last line first.
  Status OpenCurrent(AppLog& log) const;
  void FlushApp(AppLog& log) const;
  void Rotate(AppLog& log);
  void SendJournal(AppLog& log, const LogRecord& record, pid_t pid);
  void SendJournalFields(AppLog& log, const LogRecord& r, const std::string& text, int priority,
                         pid_t pid);
  int64_t NowUs() const;
  std::string GenerationPath(const std::string& app, int generation) const;
  Result<std::vector<LogRecord>> SinceFromFiles(const std::string& app, uint64_t after_seq,
                                                const LogFilter& filter, size_t limit,
                                                uint64_t files_end, uint64_t* scanned) const;

  std::string dir_;
  LogStoreOptions options_;
  const Clock& clock_;
  bool real_clock_ = false;
  bool bad_name_warned_ = false;
  uint64_t bad_name_dropped_ = 0;
  // mutable: Tail and Since write out buffered records before reading the
  // files; that changes no state a caller can observe.
  mutable std::map<std::string, AppLog, std::less<>> apps_;
  std::map<std::string, uint64_t> forgotten_seq_;  // Forget: the last seq, by app
  std::function<void(const std::string&)> on_append_;
  // Reused by Append to encode without allocating.
  std::string scratch_;
};

}  // namespace relsupd
