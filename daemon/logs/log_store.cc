#include "daemon/logs/log_store.h"

#include "daemon/logs/log_lines.h"

#include "daemon/base/suggest.h"

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
      // Anything but a regular file (a directory, a FIFO, a symlink) is
      // passed over by every reader, as if missing; said here, once.
      struct stat st;
      if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        spdlog::warn("Log file '{}' is not a regular file, ignoring it", path);
      Status s = ForEachLineBackward(path, [&](std::string_view line) {
        Result<LogRecord> r = DecodeLogRecord(line, app);
        // Torn or corrupt: skip it. So is a seq a hand edit put so high
        // that the seqs after it would run out.
        if (!r.ok() || r->seq > kMaxLogSeq / 2) return true;
        last_seq = r->seq;
        found = true;
        return false;
      });
      // One unreadable file (an I/O error) costs that file, not the
      // daemon's start: the seq goes on from an older generation's.
      if (!s.ok())
        spdlog::warn("Cannot load logs of app '{}': {}, ignoring", app, s.ToString());
    }
    AppLog& log = GetApp(app);
    log.last_seq = last_seq;
    log.ring_first = last_seq + 1;
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
  pos->second.ring_first = pos->second.last_seq + 1;
  return pos->second;
}

Status LogStore::OpenCurrent(AppLog& log) const {
  log.fd.Reset();
  RETURN_IF_ERROR(MakeDirs(log.dir, kDirMode));
  const std::string path = log.dir + "/" + kCurrent;
  // O_NONBLOCK: a FIFO in its place fails (ENXIO) instead of blocking the
  // loop until something reads it; a regular file ignores the flag.
  ASSIGN_OR_RETURN(Fd fd, OpenFile(path,
                                   O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_NOFOLLOW |
                                       O_NOCTTY,
                                   kFileMode));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return Status::FromErrno("cannot stat '" + path + "'", errno);
  if (!S_ISREG(st.st_mode)) return FailedPrecondition("'" + path + "' is not a regular file");
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > 0) {
    // A daemon killed mid-write leaves a torn last line; end it so the next
    // record starts on a line of its own (readers skip the torn one).
    ASSIGN_OR_RETURN(Fd rfd, OpenFile(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY));
    char last = '\n';
    RETURN_IF_ERROR(PreadFull(rfd.get(), &last, 1, static_cast<off_t>(size - 1), path));
    if (last != '\n') {
      RETURN_IF_ERROR(WriteAll(fd.get(), "\n", "'" + path + "'"));
      ++size;
    }
  }
  log.fd = std::move(fd);
  log.file_bytes = size + log.pending_bytes();
  return Status::Ok();
}

void LogStore::FlushApp(AppLog& log) const {
  const size_t pending = log.pending_bytes();
  if (pending == 0) return;
  Status s;
  if (!log.fd.valid()) s = OpenCurrent(log);
  if (s.ok()) {
    const std::string& bytes = log.chunks.back().bytes;
    s = WriteAll(log.fd.get(), std::string_view(bytes).substr(log.written),
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
    log.file_bytes -= std::min<uint64_t>(log.file_bytes, pending);
    log.counters.dropped += log.pending_records;
  }
  log.written = log.chunks.back().bytes.size();
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
    log.file_bytes = log.pending_bytes();
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

void LogStore::SendJournal(AppLog& log, const LogSource& source, std::string_view stream,
                           std::string_view text, pid_t pid) {
  // The app's own budget (see the header): a flood of one app never
  // reaches journald's limit for relsupd as a whole.
  const int64_t now = clock_.MonotonicMs();
  if (now - log.journal_window_ms >= options_.journal_interval_ms) {
    if (log.journal_held > 0)
      SendJournalFields(log, source, stream,
                        "relsupd: " + std::to_string(log.journal_held) + " lines of app '" +
                            source.app + "' were not sent to the journal (over " +
                            std::to_string(options_.journal_burst) + " in " +
                            std::to_string(options_.journal_interval_ms / 1000) +
                            " s); they are in its logs: relsupd ctl logs " + source.app,
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
  SendJournalFields(log, source, stream, text, stream == "err" ? 3 : 6, pid);
}

void LogStore::SendJournalFields(AppLog& log, const LogSource& source, std::string_view stream,
                                 std::string_view text, int priority, pid_t pid) {
  auto field = [](std::string_view key, std::string_view value) {
    std::string f(key);
    f.append(value);
    return f;
  };
  std::string fields[] = {
      field("MESSAGE=", text),
      "PRIORITY=" + std::to_string(priority),
      "SYSLOG_IDENTIFIER=" + source.app,
      "RELSUPD_APP=" + source.app,
      "RELSUPD_RELEASE=" + source.release,
      "RELSUPD_PROCESS=" + source.process,
      field("RELSUPD_STREAM=", stream),
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
                 source.app, std::strerror(-rc));
  log.journal_warned = true;
}

std::string_view LogStore::Chunk::LineOf(uint64_t seq) const {
  const size_t i = static_cast<size_t>(seq - first_seq);
  const size_t begin = entries[i].offset;
  const size_t end = i + 1 < entries.size() ? entries[i + 1].offset : bytes.size();
  return std::string_view(bytes).substr(begin, end - begin - 1);
}

LogStore::AppLog* LogStore::AppLogFor(const std::string& app) {
  if (!ValidAppName(app)) {
    if (!bad_name_warned_)
      spdlog::warn("Refused log records of app '{}': bad app name, ignoring",
                   SanitizeUtf8(app));
    bad_name_warned_ = true;
    return nullptr;
  }
  AppLog& log = GetApp(app);
  if (!log.fd.valid() && !log.open_tried) {
    // Learn current.log's size before the first rotation decision. Later
    // failures to open are retried by FlushApp, once per flush.
    log.open_tried = true;
    Status s = OpenCurrent(log);
    if (!s.ok()) {
      spdlog::warn("Failed to write logs of app '{}': {}, ignoring", app, s.ToString());
      log.write_warned = true;
    }
  }
  return &log;
}

void LogStore::AddLine(AppLog& log, std::string_view middle, std::string_view text,
                       bool partial, bool newline) {
  // A full chunk is written and a new one begun (in a dropped chunk's
  // buffer when there is one: no allocation, no fresh pages).
  if (log.chunks.empty() || log.chunks.back().bytes.size() >= kWriteBufferBytes) {
    FlushApp(log);
    TrimRing(log);  // also drops chunks wholly out of the ring
    Chunk& c = log.chunks.emplace_back();
    c.first_seq = log.last_seq + 1;
    c.bytes.swap(log.spare);
    c.bytes.clear();
    c.entries.swap(log.spare_entries);
    c.entries.clear();
    log.written = 0;
  }
  Chunk& chunk = log.chunks.back();
  const size_t before = chunk.bytes.size();
  const uint64_t seq = ++log.last_seq;
  AppendLogLine(seq, middle, text, partial, newline, &chunk.bytes);
  const size_t line_bytes = chunk.bytes.size() - before;
  if (log.file_bytes > 0 && log.file_bytes + line_bytes > options_.max_file_bytes) {
    // The line goes to the next file: write what is before it, rotate.
    chunk.bytes.resize(before);
    FlushApp(log);
    Rotate(log);
    AppendLogLine(seq, middle, text, partial, newline, &chunk.bytes);
  }
  chunk.entries.push_back({static_cast<uint32_t>(before), static_cast<uint32_t>(text.size())});
  ++log.pending_records;
  log.file_bytes += line_bytes;
  log.ring_text_bytes += text.size();
  if (log.last_seq - log.ring_first + 1 > options_.ring_lines ||
      log.ring_text_bytes > options_.ring_bytes)
    TrimRing(log);
  if (log.pending_bytes() >= kWriteBufferBytes) FlushApp(log);
}

void LogStore::TrimRing(AppLog& log) {
  // Chunks wholly before the ring go (not the newest: it is the buffer);
  // the last one dropped keeps its buffers for the next chunk.
  auto drop_passed = [&log] {
    while (log.chunks.size() > 1 && log.ring_first >= log.chunks.front().end_seq()) {
      log.spare.swap(log.chunks.front().bytes);
      log.spare_entries.swap(log.chunks.front().entries);
      log.chunks.pop_front();
    }
  };
  drop_passed();
  // The ring is bounded in lines and in bytes, so a child printing long
  // lines cannot make it hold ring_lines * max_line bytes.
  while (log.ring_first <= log.last_seq &&
         (log.last_seq - log.ring_first + 1 > options_.ring_lines ||
          log.ring_text_bytes > options_.ring_bytes)) {
    const Chunk& front = log.chunks.front();
    log.ring_text_bytes -= front.entries[log.ring_first - front.first_seq].text_bytes;
    if (++log.ring_first >= front.end_seq()) drop_passed();
  }
}

LogStore::Batch::Batch(LogStore& store, const LogSource& source, std::string_view stream,
                       pid_t pid, int64_t time_us)
    : store_(store), source_(source), stream_(stream), pid_(pid), time_us_(time_us) {}

bool LogStore::Batch::Start() {
  started_ = true;
  log_ = store_.AppLogFor(source_.app);
  if (log_ == nullptr) return false;
  // Files, ring and journal get the same valid UTF-8, so Tail and Since
  // return what was written.
  auto utf8 = [](std::string_view s, std::string* keep) -> std::string_view {
    if (IsValidUtf8(s)) return s;
    *keep = SanitizeUtf8(s);
    return *keep;
  };
  release_ = utf8(source_.release, &kept_[0]);
  process_ = utf8(source_.process, &kept_[1]);
  stream_ = utf8(stream_, &kept_[2]);
  if (time_us_ == 0) time_us_ = store_.NowUs();
  AppendLogMiddle(time_us_, release_, process_, stream_, &middle_);
  lines_counter_ = &log_->counters.lines[std::string(stream_)];
  return true;
}

void LogStore::Batch::Line(std::string_view text, bool partial) {
  const TextScan scan = ScanText(text);
  if (!scan.utf8) {
    text_ = SanitizeUtf8(text);
    text = text_;
  }
  Add(text, partial, scan.newline);
}

void LogStore::Batch::PlainLine(std::string_view text, bool partial) {
  assert(IsAscii(text) && text.find('\n') == std::string_view::npos);
  Add(text, partial, /*newline=*/false);
}

void LogStore::Batch::Add(std::string_view text, bool partial, bool newline) {
  if (log_ == nullptr && (started_ || !Start())) {
    ++store_.bad_name_dropped_;
    return;
  }
  store_.AddLine(*log_, middle_, text, partial, newline);
  ++*lines_counter_;
  if (store_.options_.journal) store_.SendJournal(*log_, source_, stream_, text, pid_);
}

LogStore::Batch::~Batch() {
  if (log_ != nullptr && store_.on_append_) store_.on_append_(*log_->name);
}

void LogStore::Append(LogRecord record, pid_t pid) {
  const LogSource source{std::move(record.app), std::move(record.release),
                         std::move(record.process)};
  Batch(*this, source, record.stream, pid, record.time_us).Line(record.text, record.partial);
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
  if (!ValidAppName(app)) return InvalidArgument("bad app name '" + Excerpt(app) + "'");
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
      Result<LogRecord> r = DecodeLogRecord(line, app);
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
                                               size_t limit, uint64_t* scanned,
                                               uint64_t* missed) const {
  uint64_t ignored = 0, ignored_missed = 0;
  if (scanned == nullptr) scanned = &ignored;
  if (missed == nullptr) missed = &ignored_missed;
  *scanned = after_seq;
  *missed = 0;
  if (!ValidAppName(app)) return InvalidArgument("bad app name '" + Excerpt(app) + "'");
  std::vector<LogRecord> out;
  auto it = apps_.find(app);
  if (limit == 0 || it == apps_.end() || after_seq >= it->second.last_seq) return out;
  const AppLog& log = it->second;
  const bool ring_empty = log.ring_first > log.last_seq;
  if (ring_empty || after_seq + 1 < log.ring_first) {
    // Whatever the files lack before the ring (a write that failed, files
    // removed by hand) is passed over, so a follow moves on.
    const uint64_t files_end = log.ring_first - 1;
    ASSIGN_OR_RETURN(out, SinceFromFiles(app, after_seq, filter, limit, files_end, scanned,
                                         missed));
    // Stopped before the ring (the limit, the budget): the next call goes on.
    if (ring_empty || out.size() >= limit || *scanned < files_end) return out;
    after_seq = *scanned;
  }
  // The ring holds consecutive seqs: the chunk of after_seq + 1 is the last
  // one that starts at or before it.
  uint64_t seq = after_seq + 1;
  auto chunk = std::upper_bound(log.chunks.begin(), log.chunks.end(), seq,
                                [](uint64_t v, const Chunk& c) { return v < c.first_seq; });
  assert(chunk != log.chunks.begin());
  --chunk;
  const ScanClock timer;
  for (size_t looked = 0; seq <= log.last_seq && out.size() < limit && looked < kScanBudget &&
                          !timer.Over(looked + 1);
       ++seq, ++looked) {
    if (seq >= chunk->end_seq()) ++chunk;
    *scanned = seq;
    Result<LogRecord> r = DecodeLogRecord(chunk->LineOf(seq), app);
    if (!r.ok()) continue;  // cannot happen: the store encoded it
    if (filter.Matches(*r)) out.push_back(std::move(r).value());
  }
  return out;
}

Result<std::vector<LogRecord>> LogStore::SinceFromFiles(const std::string& app,
                                                        uint64_t after_seq,
                                                        const LogFilter& filter,
                                                        size_t limit, uint64_t files_end,
                                                        uint64_t* scanned,
                                                        uint64_t* missed) const {
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
      Result<LogRecord> r = DecodeLogRecord(line, app);
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
      Result<LogRecord> r = DecodeLogRecord(line, app);
      if (!r.ok() || r->seq <= after_seq) return true;
      if (r->seq > files_end) {  // the ring's part
        stopped = true;
        return false;
      }
      // Seqs between the last record seen and this one are in no file
      // (counted up to the first match: a follower's cursor may stop at
      // any match, and the next call counts what lies after it).
      if (r->seq > *scanned + 1 && out.empty()) *missed += r->seq - *scanned - 1;
      *scanned = r->seq;
      if (filter.Matches(*r)) out.push_back(std::move(r).value());
      ++looked;
      stopped = out.size() >= limit || looked >= kScanBudget || timer.Over(looked);
      return !stopped;
    }).WithContext(context));
  }
  if (!stopped) {
    // The files end before the ring begins: what lies between is passed
    // over, and counted.
    if (files_end > *scanned && out.empty()) *missed += files_end - *scanned;
    *scanned = std::max(*scanned, files_end);
  }
  // Past the last generation's end: nothing newer left in the files (the
  // rest, if any, is in the ring, whose seqs follow on).
  return out;
}

}  // namespace relsupd
