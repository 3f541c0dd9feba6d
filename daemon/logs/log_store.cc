#include "daemon/logs/log_store.h"

#include "daemon/logs/log_lines.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <utility>

namespace relsupd {
namespace {

constexpr char kCurrent[] = "current.log";
constexpr mode_t kDirMode = 0750;
constexpr mode_t kFileMode = 0640;

bool ValidAppName(std::string_view app) {
  return !app.empty() && app != "." && app.find('/') == std::string_view::npos &&
         app.find("..") == std::string_view::npos &&
         app.find('\0') == std::string_view::npos;
}

void SanitizeInPlace(std::string& s) {
  if (!IsValidUtf8(s)) s = SanitizeUtf8(s);
}

}  // namespace

LogStore::LogStore(std::string dir, LogStoreOptions options, const Clock& clock)
    : dir_(std::move(dir)),
      options_(options),
      clock_(clock),
      real_clock_(dynamic_cast<const SystemClock*>(&clock) != nullptr) {}

LogStore::~LogStore() { Flush(); }

Result<std::unique_ptr<LogStore>> LogStore::Open(const std::string& dir,
                                                 LogStoreOptions options,
                                                 const Clock& clock) {
  if (options.max_files < 1)
    return InvalidArgument("log store: max_files must be at least 1, not " +
                           std::to_string(options.max_files));
  if (options.max_file_bytes == 0)
    return InvalidArgument("log store: max_file_bytes must not be 0");
  RETURN_IF_ERROR(MakeDirs(dir, kDirMode));
  std::unique_ptr<LogStore> store(new LogStore(dir, options, clock));
  RETURN_IF_ERROR(store->LoadExisting());
  return store;
}

std::string LogStore::GenerationPath(const std::string& app, int generation) const {
  std::string path = dir_ + "/" + app + "/" + kCurrent;
  if (generation > 0) path += "." + std::to_string(generation);
  return path;
}

Status LogStore::LoadExisting() {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec) return Status::FromErrno("cannot list '" + dir_ + "'", ec.value());
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return Status::FromErrno("cannot list '" + dir_ + "'", ec.value());
    std::string app = it->path().filename().string();
    std::error_code type_ec;
    if (!ValidAppName(app) || !it->is_directory(type_ec)) continue;
    // The newest record on disk is the last decodable line of the newest
    // generation that has one (current.log is empty right after a rotation).
    uint64_t last_seq = 0;
    bool found = false;
    for (int g = 0; g < options_.max_files && !found; ++g) {
      const std::string path = GenerationPath(app, g);
      RETURN_IF_ERROR(ForEachLineBackward(path, [&](std::string_view line) {
        Result<LogRecord> r = DecodeLogRecord(line);
        if (!r.ok()) return true;  // torn or corrupt: skip it
        last_seq = r->seq;
        found = true;
        return false;
      }).WithContext("cannot load logs of app '" + app + "'"));
    }
    GetApp(app).last_seq = last_seq;
  }
  return Status::Ok();
}

LogStore::AppLog& LogStore::GetApp(const std::string& app) {
  auto it = apps_.find(app);
  if (it != apps_.end()) return it->second;
  auto pos = apps_.try_emplace(app).first;
  pos->second.name = &pos->first;
  pos->second.dir = dir_ + "/" + app;
  // A name deleted and created again goes on from its old seq, so a
  // follower's cursor never skips the new app's first records.
  if (auto f = forgotten_seq_.find(app); f != forgotten_seq_.end())
    pos->second.last_seq = f->second;
  return pos->second;
}

Status LogStore::OpenCurrent(AppLog& log) const {
  log.fd.Reset();
  RETURN_IF_ERROR(MakeDirs(log.dir, kDirMode));
  const std::string path = log.dir + "/" + kCurrent;
  ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_WRONLY | O_APPEND | O_CREAT, kFileMode));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return Status::FromErrno("cannot stat '" + path + "'", errno);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > 0) {
    // A daemon killed mid-write leaves a torn last line; end it so the next
    // record starts on a line of its own (readers skip the torn one).
    ASSIGN_OR_RETURN(Fd rfd, OpenFile(path, O_RDONLY));
    char last = '\n';
    RETURN_IF_ERROR(PreadFull(rfd.get(), &last, 1, static_cast<off_t>(size - 1), path));
    if (last != '\n') {
      RETURN_IF_ERROR(WriteAll(fd.get(), "\n", "'" + path + "'"));
      ++size;
    }
  }
  log.fd = std::move(fd);
  log.file_bytes = size + log.pending.size();
  return Status::Ok();
}

void LogStore::FlushApp(AppLog& log) const {
  if (log.pending.empty()) return;
  Status s;
  if (!log.fd.valid()) s = OpenCurrent(log);
  if (s.ok()) {
    s = WriteAll(log.fd.get(), log.pending,
                 "logs to '" + log.dir + "/" + kCurrent + "'");
    // A short write may have torn a line: reopen (and mend) next time.
    if (!s.ok()) log.fd.Reset();
  }
  if (s.ok()) {
    log.write_warned = false;
  } else {
    if (!log.write_warned)
      spdlog::warn("Failed to write logs of app '{}': {}, ignoring",
                   std::filesystem::path(log.dir).filename().string(), s.ToString());
    log.write_warned = true;
    log.file_bytes -= std::min<uint64_t>(log.file_bytes, log.pending.size());
    log.counters.dropped += log.pending_records;
  }
  log.pending.clear();
  log.pending_records = 0;
}

std::map<std::string, LogStore::AppCounters> LogStore::Counters() const {
  std::map<std::string, AppCounters> out;
  for (const auto& [app, log] : apps_) out[app] = log.counters;
  if (bad_name_dropped_ > 0) out[""].dropped = bad_name_dropped_;
  return out;
}

void LogStore::Flush() {
  for (auto& [app, log] : apps_) FlushApp(log);
}

void LogStore::Rotate(AppLog& log) {
  log.fd.Reset();
  const std::string base = log.dir + "/" + kCurrent;
  Status failed;
  // current.log.(max-2) replaces (drops) the oldest, current.log.(max-1).
  for (int i = options_.max_files - 1; i >= 1; --i) {
    std::string from = i == 1 ? base : base + "." + std::to_string(i - 1);
    std::string to = base + "." + std::to_string(i);
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT && failed.ok())
      failed = Status::FromErrno("cannot rename '" + from + "'", errno);
  }
  if (options_.max_files == 1 && ::unlink(base.c_str()) != 0 && errno != ENOENT)
    failed = Status::FromErrno("cannot remove '" + base + "'", errno);
  const std::string app = std::filesystem::path(log.dir).filename().string();
  if (failed.ok()) {
    log.rotate_warned = false;
  } else {
    if (!log.rotate_warned)
      spdlog::warn("Failed to rotate logs of app '{}': {}, ignoring", app,
                   failed.ToString());
    log.rotate_warned = true;
  }
  Status s = OpenCurrent(log);
  if (!s.ok()) {
    if (!log.write_warned)
      spdlog::warn("Failed to write logs of app '{}': {}, ignoring", app, s.ToString());
    log.write_warned = true;
    log.file_bytes = log.pending.size();
  }
}

namespace {

// The scan's time budget (kScanBudgetUs), read every 64 records.
class ScanClock {
 public:
  ScanClock() : start_(std::chrono::steady_clock::now()) {}
  bool Over(size_t looked) const {
    if (looked % 64 != 0) return false;
    return std::chrono::steady_clock::now() - start_ >
           std::chrono::microseconds(LogStore::kScanBudgetUs);
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

int64_t LogStore::NowUs() const {
  if (real_clock_) {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  }
  return clock_.WallMs() * 1000;
}

void LogStore::SendJournal(AppLog& log, const LogRecord& r, pid_t pid) {
  // The app's own budget (see the header): a flood of one app never
  // reaches journald's limit for relsupd as a whole.
  const int64_t now = clock_.MonotonicMs();
  if (now - log.journal_window_ms >= options_.journal_interval_ms) {
    if (log.journal_held > 0)
      SendJournalFields(log, r,
                        "relsupd: " + std::to_string(log.journal_held) + " lines of app '" +
                            r.app + "' were not sent to the journal (over " +
                            std::to_string(options_.journal_burst) + " in " +
                            std::to_string(options_.journal_interval_ms / 1000) +
                            " s); they are in its logs: relsupd ctl logs " + r.app,
                        4, 0);
    log.journal_window_ms = now;
    log.journal_sent = 0;
    log.journal_held = 0;
  }
  if (log.journal_sent >= options_.journal_burst) {
    ++log.journal_held;
    return;
  }
  ++log.journal_sent;
  SendJournalFields(log, r, r.text, r.stream == "err" ? 3 : 6, pid);
}

void LogStore::SendJournalFields(AppLog& log, const LogRecord& r, const std::string& text,
                                 int priority, pid_t pid) {
  std::string fields[] = {
      "MESSAGE=" + text,
      "PRIORITY=" + std::to_string(priority),
      "SYSLOG_IDENTIFIER=" + r.app,
      "RELSUPD_APP=" + r.app,
      "RELSUPD_RELEASE=" + r.release,
      "RELSUPD_PROCESS=" + r.process,
      "RELSUPD_STREAM=" + r.stream,
      // Last: left out (the count below) when there is no process.
      "OBJECT_PID=" + std::to_string(pid),
  };
  const size_t count = std::size(fields) - (pid > 0 ? 0 : 1);
  struct iovec iov[std::size(fields)];
  for (size_t i = 0; i < count; ++i) {
    iov[i].iov_base = fields[i].data();
    iov[i].iov_len = fields[i].size();
  }
  // sd_journal_sendv takes each field as is (text may hold '\n' or NUL).
  const int rc = options_.journal_send ? options_.journal_send(iov, static_cast<int>(count))
                                       : sd_journal_sendv(iov, static_cast<int>(count));
  if (rc >= 0) {
    log.journal_warned = false;
    return;
  }
  if (!log.journal_warned)
    spdlog::warn("Failed to send logs of app '{}' to the journal: {}, ignoring",
                 r.app, std::strerror(-rc));
  log.journal_warned = true;
}

void LogStore::Append(LogRecord record, pid_t pid) {
  if (!ValidAppName(record.app)) {
    if (!bad_name_warned_)
      spdlog::warn("Refused log records of app '{}': bad app name, ignoring",
                   SanitizeUtf8(record.app));
    bad_name_warned_ = true;
    ++bad_name_dropped_;
    return;
  }
  // Files, ring and journal get the same valid UTF-8, so Tail and Since
  // return identical records.
  SanitizeInPlace(record.release);
  SanitizeInPlace(record.process);
  SanitizeInPlace(record.stream);
  SanitizeInPlace(record.text);
  AppLog& log = GetApp(record.app);
  if (!log.fd.valid() && !log.open_tried) {
    // Learn current.log's size before the first rotation decision. Later
    // failures to open are retried by FlushApp, once per flush.
    log.open_tried = true;
    Status s = OpenCurrent(log);
    if (!s.ok()) {
      spdlog::warn("Failed to write logs of app '{}': {}, ignoring", record.app,
                   s.ToString());
      log.write_warned = true;
    }
  }
  record.seq = ++log.last_seq;
  if (record.time_us == 0) record.time_us = NowUs();

  scratch_.clear();
  EncodeLogRecord(record, &scratch_);
  scratch_.push_back('\n');
  if (log.file_bytes > 0 && log.file_bytes + scratch_.size() > options_.max_file_bytes) {
    FlushApp(log);
    Rotate(log);
  }
  log.pending.append(scratch_);
  ++log.pending_records;
  ++log.counters.lines[record.stream];
  log.file_bytes += scratch_.size();
  if (log.pending.size() >= kWriteBufferBytes) FlushApp(log);
  if (options_.journal) SendJournal(log, record, pid);

  // The ring is bounded in lines and in bytes, so a child printing long
  // lines cannot make it hold ring_lines * max_line bytes.
  log.ring_text_bytes += record.text.size();
  log.ring.push_back(std::move(record));
  while (!log.ring.empty() && (log.ring.size() > options_.ring_lines ||
                               log.ring_text_bytes > options_.ring_bytes)) {
    log.ring_text_bytes -= log.ring.front().text.size();
    log.ring.pop_front();
  }
  if (on_append_) on_append_(*log.name);
}

void LogStore::Forget(const std::string& app) {
  auto it = apps_.find(app);
  if (it == apps_.end()) return;
  forgotten_seq_[app] = it->second.last_seq;
  apps_.erase(it);
}

uint64_t LogStore::LastSeq(const std::string& app) const {
  auto it = apps_.find(app);
  return it == apps_.end() ? 0 : it->second.last_seq;
}

Result<std::vector<LogRecord>> LogStore::Tail(const std::string& app,
                                              const LogFilter& filter,
                                              size_t n,
                                              uint64_t before_seq,
                                              uint64_t* resume_before) const {
  if (resume_before != nullptr) *resume_before = 0;
  if (!ValidAppName(app)) return InvalidArgument("bad app name '" + app + "'");
  std::vector<LogRecord> out;
  if (n == 0) return out;
  auto it = apps_.find(app);
  if (it != apps_.end()) FlushApp(it->second);
  size_t scanned = 0;
  const ScanClock timer;
  bool stop = false;  // the budget ran out, or since_us was passed
  // Newest generation first, each read from its end.
  for (int g = 0; g < options_.max_files && out.size() < n && !stop; ++g) {
    const std::string path = GenerationPath(app, g);
    off_t end = -1;
    if (before_seq != UINT64_MAX) {
      // Records from before_seq on are passed over by bisection, not read
      // (a page far back would otherwise walk every newer line first).
      Result<off_t> boundary =
          LineBoundary(path, [&](std::string_view line) -> std::optional<bool> {
            uint64_t seq;
            if (!PeekLogSeq(line, &seq)) return std::nullopt;
            return seq >= before_seq;
          });
      if (!boundary.ok())
        return boundary.status().WithContext("cannot read logs of app '" + app + "'");
      end = *boundary;
      if (end == 0) continue;  // all of it newer
    }
    RETURN_IF_ERROR(ForEachLineBackward(path, [&](std::string_view line) {
      uint64_t seq;
      if (PeekLogSeq(line, &seq) && seq >= before_seq) return true;  // cheap skip
      Result<LogRecord> r = DecodeLogRecord(line);
      if (!r.ok() || r->seq >= before_seq) return true;
      if (r->time_us < filter.since_us) {
        stop = true;
        return false;
      }
      if (++scanned > kScanBudget || timer.Over(scanned)) {
        stop = true;
        if (resume_before != nullptr) *resume_before = r->seq + 1;
        return false;
      }
      if (filter.Matches(*r)) out.push_back(std::move(r).value());
      return out.size() < n;
    }, end).WithContext("cannot read logs of app '" + app + "'"));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<LogRecord>> LogStore::Since(const std::string& app,
                                               uint64_t after_seq,
                                               const LogFilter& filter,
                                               size_t limit, uint64_t* scanned) const {
  uint64_t ignored = 0;
  if (scanned == nullptr) scanned = &ignored;
  *scanned = after_seq;
  if (!ValidAppName(app)) return InvalidArgument("bad app name '" + app + "'");
  std::vector<LogRecord> out;
  auto it = apps_.find(app);
  if (limit == 0 || it == apps_.end() || after_seq >= it->second.last_seq) return out;
  const std::deque<LogRecord>& ring = it->second.ring;
  if (ring.empty() || after_seq + 1 < ring.front().seq) {
    // Whatever the files lack before the ring (a write that failed, files
    // removed by hand) is passed over, so a follow moves on.
    const uint64_t files_end = ring.empty() ? it->second.last_seq : ring.front().seq - 1;
    ASSIGN_OR_RETURN(out, SinceFromFiles(app, after_seq, filter, limit, files_end, scanned));
    // Stopped before the ring (the limit, the budget): the next call goes on.
    if (ring.empty() || out.size() >= limit || *scanned < files_end) return out;
    after_seq = *scanned;
  }
  // The ring holds consecutive seqs, so after_seq + 1 is found by index.
  size_t i = static_cast<size_t>(after_seq + 1 - ring.front().seq);
  assert(i < ring.size() && ring[i].seq == after_seq + 1);
  const ScanClock timer;
  for (size_t looked = 0; i < ring.size() && out.size() < limit && looked < kScanBudget &&
                          !timer.Over(looked + 1);
       ++i, ++looked) {
    *scanned = ring[i].seq;
    if (filter.Matches(ring[i])) out.push_back(ring[i]);
  }
  return out;
}

Result<std::vector<LogRecord>> LogStore::SinceFromFiles(const std::string& app,
                                                        uint64_t after_seq,
                                                        const LogFilter& filter,
                                                        size_t limit, uint64_t files_end,
                                                        uint64_t* scanned) const {
  auto it = apps_.find(app);
  if (it != apps_.end()) FlushApp(it->second);
  const std::string context = "cannot read logs of app '" + app + "'";
  // Start in the newest generation whose first record is at most
  // after_seq + 1, or in the oldest one if none is.
  int start = -1;
  for (int g = 0; g < options_.max_files; ++g) {
    uint64_t first_seq = 0;
    bool found = false;
    RETURN_IF_ERROR(ForEachLineForward(GenerationPath(app, g), [&](std::string_view line) {
      Result<LogRecord> r = DecodeLogRecord(line);
      if (!r.ok()) return true;
      first_seq = r->seq;
      found = true;
      return false;
    }).WithContext(context));
    if (!found) continue;
    start = g;
    if (first_seq <= after_seq + 1) break;
  }
  std::vector<LogRecord> out;
  size_t looked = 0;
  const ScanClock timer;
  bool stopped = false;
  for (int g = start; g >= 0 && !stopped; --g) {
    RETURN_IF_ERROR(ForEachLineForward(GenerationPath(app, g), [&](std::string_view line) {
      uint64_t seq;
      if (PeekLogSeq(line, &seq) && seq <= after_seq) return true;  // cheap skip
      Result<LogRecord> r = DecodeLogRecord(line);
      if (!r.ok() || r->seq <= after_seq) return true;
      if (r->seq > files_end) {  // the ring's part
        stopped = true;
        return false;
      }
      *scanned = r->seq;
      if (filter.Matches(*r)) out.push_back(std::move(r).value());
      ++looked;
      stopped = out.size() >= limit || looked >= kScanBudget || timer.Over(looked);
      return !stopped;
    }).WithContext(context));
  }
  if (!stopped) *scanned = std::max(*scanned, files_end);
  // Past the last generation's end: nothing newer left in the files (the
  // rest, if any, is in the ring, whose seqs follow on).
  return out;
}

}  // namespace relsupd
