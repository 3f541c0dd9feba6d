#pragma once
// LogStore: the daemon's store of app process output (stdout and stderr).
//
// Who owns what: the daemon owns one LogStore for STATE/logs; the supervisor
// feeds it records (one per line or line piece, see line_splitter.h) and the
// control server reads from it for `relsupd ctl logs APP [-f]`. Loop thread
// only: no method may be called from another thread, and none blocks on
// anything but local file I/O.
//
// On disk: STATE/logs/APP/current.log, one record per line in the plain
// text form log_record.h describes (strings are valid UTF-8: invalid bytes
// in a child's output become U+FFFD; files of older versions hold JSON
// lines, which are still read). When the next record would take current.log past
// max_file_bytes, the files are rotated by a rename chain (current.log.N-2 ->
// current.log.N-1 (the oldest is replaced, i.e. dropped) ... current.log ->
// current.log.1) and a fresh current.log is opened. So each file holds at
// most max_file_bytes (unless one single record is larger) and an app uses at
// most max_file_bytes * max_files bytes. seq is per app, starts at 1 and
// continues across daemon restarts from the last record on disk. A corrupt
// or truncated line (the daemon killed mid-write) is skipped by every reader,
// and the next write starts on a fresh line.
//
// Buffering: records are encoded once, into per-app chunks of at most about
// kWriteBufferBytes; what is not yet written is written (one write(2)) when
// it reaches kWriteBufferBytes, on Flush(), and before Tail reads the
// files. The supervisor calls Flush() after each loop iteration, so what a
// crash of the daemon can lose is at most one iteration's output.
//
// The write path: a Batch takes the lines of one read of one pipe with one
// time stamp, its source's fields encoded once, no allocation per line and
// one call of the on_append hook; Append is a batch of one record.
//
// Errors: Append never fails: write, rotation and journal errors are logged
// (spdlog warn, "..., ignoring") once per app and kind, and logged again only
// after the same kind of operation has succeeded once more. Tail and Since
// return a Status for an I/O error while reading.
//
// Follow: each app's newest records are also kept in memory (at most
// ring_lines records and ring_bytes of text), as the same encoded chunks
// (the newest one is the write buffer); Since decodes them from there and
// reads the files only for older ones.
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
  static constexpr size_t kWriteBufferBytes = 256 * 1024;

  // dir: STATE/logs; created (0750) if missing. Loop thread only.
  // REQUIRES: `clock` outlives the store. Fails on a bad option
  // (max_files < 1, max_file_bytes == 0) or if `dir` cannot be created or
  // listed.
  static Result<std::unique_ptr<LogStore>> Open(const std::string& dir, LogStoreOptions options, const Clock& clock);

  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;
  // Flushes.
  ~LogStore();

  // Lines of one source and stream that arrived together (one read of a
  // pipe): each gets the next seq and the batch's time. Live only within
  // one loop callback, and no other LogStore call in between. Write errors
  // are logged once per app (spdlog warn, ", ignoring") and never thrown.
  // A batch whose app is empty, ".", or holds '/', ".." or NUL drops its
  // lines (warned once). `pid`: the process that wrote them (the journal's
  // OBJECT_PID=), 0 if none. The end of a batch with lines calls the
  // on_append hook once with the app's name.
  class Batch;
  // A batch of one: assigns seq and time_us (if 0).
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
  // `*missed`, when given: how many seqs after after_seq, up to the first
  // record returned (or to *scanned when none is), are in neither the
  // files nor the ring (rotated out before a slow follower got to them, or
  // lost to a failed write).
  Result<std::vector<LogRecord>> Since(const std::string& app, uint64_t after_seq,
                                       const LogFilter& filter, size_t limit,
                                       uint64_t* scanned = nullptr,
                                       uint64_t* missed = nullptr) const;
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
  // Encoded records with consecutive seqs, in the order written.
  struct Chunk {
    struct Entry {
      uint32_t offset;      // of its line in `bytes`
      uint32_t text_bytes;  // of its text, as the ring counts it
    };
    uint64_t first_seq = 0;
    std::string bytes;
    std::vector<Entry> entries;
    uint64_t end_seq() const { return first_seq + entries.size(); }
    std::string_view LineOf(uint64_t seq) const;  // without the '\n'
  };
  struct AppLog {
    const std::string* name = nullptr;  // its key in apps_
    std::string dir;        // STATE/logs/APP
    uint64_t last_seq = 0;
    Fd fd;                  // current.log, O_APPEND; opened on first write
    uint64_t file_bytes = 0;  // size of current.log, unwritten bytes included
    // The ring: chunks.back() is the write buffer, its bytes from `written`
    // on not yet written; every other chunk is written. Records before
    // ring_first are out of the ring (a chunk goes when all of its are).
    std::deque<Chunk> chunks;
    size_t written = 0;
    size_t pending_records = 0;  // not yet written
    uint64_t ring_first = 1;     // last_seq + 1: the ring is empty
    size_t ring_text_bytes = 0;  // of the records from ring_first on
    std::string spare;           // a dropped chunk's buffers, reused
    std::vector<Chunk::Entry> spare_entries;
    AppCounters counters;
    size_t pending_bytes() const {
      return chunks.empty() ? 0 : chunks.back().bytes.size() - written;
    }
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
  // Adds one encoded line (and its text's size) to the app's newest chunk,
  // rotating first if the file would pass max_file_bytes, and keeps the
  // ring in its bounds.
  AppLog* AppLogFor(const std::string& app);
  void AddLine(AppLog& log, std::string_view middle, std::string_view text, bool partial,
               bool newline);
  void TrimRing(AppLog& log);
  void SendJournal(AppLog& log, const LogSource& source, std::string_view stream,
                   std::string_view text, pid_t pid);
  void SendJournalFields(AppLog& log, const LogSource& source, std::string_view stream,
                         std::string_view text, int priority, pid_t pid);
  int64_t NowUs() const;
  std::string GenerationPath(const std::string& app, int generation) const;
  Result<std::vector<LogRecord>> SinceFromFiles(const std::string& app, uint64_t after_seq,
                                                const LogFilter& filter, size_t limit,
                                                uint64_t files_end, uint64_t* scanned,
                                                uint64_t* missed) const;

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
};

class LogStore::Batch {
 public:
  // time_us 0: now. REQUIRES: `source` and what `stream` views outlive
  // the batch (a temporary source is refused at compile time).
  Batch(LogStore& store, const LogSource& source, std::string_view stream, pid_t pid = 0,
        int64_t time_us = 0);
  Batch(LogStore&, const LogSource&&, std::string_view, pid_t = 0, int64_t = 0) = delete;
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
  ~Batch();
  void Line(std::string_view text, bool partial = false);
  // The same for a text known to be plain: ASCII without a '\n' (a
  // LineSplitter's line cut from ASCII input, see IsAscii); not scanned.
  void PlainLine(std::string_view text, bool partial);

 private:
  void Add(std::string_view text, bool partial, bool newline);
  // At the first line: finds the app, encodes the shared part; false for a
  // bad app name.
  bool Start();

  LogStore& store_;
  const LogSource& source_;
  std::string_view release_, process_, stream_;  // valid UTF-8: the given
  std::string kept_[3];  // or these, made valid
  pid_t pid_;
  int64_t time_us_;
  LogStore::AppLog* log_ = nullptr;  // null: a bad app name
  uint64_t* lines_counter_ = nullptr;
  std::string middle_;  // AppendLogMiddle's part of each line
  std::string text_;    // a line made valid UTF-8
  bool started_ = false;
};

}  // namespace relsupd
