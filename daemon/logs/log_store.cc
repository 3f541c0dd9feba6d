#include "daemon/logs/log_store.h"

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
constexpr size_t kReadBlock = 64 * 1024;
// A "line" longer than this in a log file is corruption (records are far
// smaller); readers skip it instead of buffering it.
constexpr size_t kMaxLineBytes = 8 << 20;

bool ValidAppName(std::string_view app) {
  return !app.empty() && app != "." && app.find('/') == std::string_view::npos &&
         app.find("..") == std::string_view::npos &&
         app.find('\0') == std::string_view::npos;
}

// Length of the valid UTF-8 sequence at p (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF), or 0 if it is not valid.
size_t Utf8SequenceLength(const unsigned char* p, size_t n) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < n && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
    return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

void SanitizeInPlace(std::string& s) {
  if (!IsValidUtf8(s)) s = SanitizeUtf8(s);
}

// Bytes that JSON strings must escape: '"', '\\' and controls.
constexpr auto kEscape = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t['"'] = t['\\'] = true;
  return t;
}();

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the current run of bytes copied as they are
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (!kEscape[c]) continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(esc, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendNumber(uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// Parses exactly "YYYY-MM-DDTHH:MM:SS.ffffffZ".
bool ParseTimeUtcMicros(std::string_view s, int64_t* unix_us) {
  if (s.size() != 27 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
      s[13] != ':' || s[16] != ':' || s[19] != '.' || s[26] != 'Z')
    return false;
  auto num = [&](size_t pos, size_t len, int64_t* v) {
    *v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      *v = *v * 10 + (s[i] - '0');
    }
    return true;
  };
  int64_t y, mo, d, h, mi, se, us;
  if (!num(0, 4, &y) || !num(5, 2, &mo) || !num(8, 2, &d) || !num(11, 2, &h) ||
      !num(14, 2, &mi) || !num(17, 2, &se) || !num(20, 6, &us))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
    return false;
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  *unix_us = ((days * 24 + h) * 60 + mi) * 60 * 1'000'000 + se * 1'000'000 + us;
  return true;
}

// The seq of an on-disk line from its fixed prefix `{"seq":N,`, without
// parsing the rest. A line that passes may still be torn; use it only to
// skip lines.
bool PeekSeq(std::string_view line, uint64_t* seq) {
  constexpr std::string_view kPrefix = "{\"seq\":";
  if (line.substr(0, kPrefix.size()) != kPrefix) return false;
  const char* first = line.data() + kPrefix.size();
  const char* last = line.data() + line.size();
  auto r = std::from_chars(first, last, *seq);
  return r.ec == std::errc() && r.ptr != first && r.ptr < last && *r.ptr == ',';
}

using LineFn = std::function<bool(std::string_view line)>;

Status PreadFull(int fd, char* buf, size_t len, off_t offset,
                 const std::string& path) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot read '" + path + "'", errno);
    }
    if (n == 0) return Corruption("'" + path + "' shrank while being read");
    buf += n;
    len -= static_cast<size_t>(n);
    offset += n;
  }
  return Status::Ok();
}

// Opens `path` for reading; a missing file is an invalid Fd, not an error.
Result<Fd> OpenForRead(const std::string& path) {
  Result<Fd> fd = OpenFile(path, O_RDONLY);
  if (!fd.ok() && fd.status().error_number() == ENOENT) return Fd();
  return fd;
}

// Calls fn for each non-empty line of `path`, last line first, until fn
// returns false. A final line without '\n' is passed too (a torn record
// fails to decode). A missing file has no lines.
Status ForEachLineBackward(const std::string& path, const LineFn& fn) {
  ASSIGN_OR_RETURN(Fd fd, OpenForRead(path));
  if (!fd.valid()) return Status::Ok();
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return Status::FromErrno("cannot stat '" + path + "'", errno);
  off_t pos = st.st_size;
  std::string chunk, carry;
  bool skipping = false;  // inside an over-long line; drop up to its start
  while (pos > 0) {
    size_t len = static_cast<size_t>(std::min<off_t>(pos, kReadBlock));
    pos -= static_cast<off_t>(len);
    chunk.resize(len);
    RETURN_IF_ERROR(PreadFull(fd.get(), chunk.data(), len, pos, path));
    chunk += carry;
    size_t end = chunk.size();
    while (end > 0) {
      size_t nl = chunk.rfind('\n', end - 1);
      if (nl == std::string::npos) break;
      std::string_view line(chunk.data() + nl + 1, end - nl - 1);
      if (skipping) {
        skipping = false;
      } else if (!line.empty() && !fn(line)) {
        return Status::Ok();
      }
      end = nl;
    }
    carry.assign(chunk, 0, end);
    if (carry.size() > kMaxLineBytes) {
      carry.clear();
      skipping = true;
    }
  }
  if (!skipping && !carry.empty()) fn(carry);
  return Status::Ok();
}

// Calls fn for each non-empty line of `path`, first line first, until fn
// returns false. Same rules as ForEachLineBackward.
Status ForEachLineForward(const std::string& path, const LineFn& fn) {
  ASSIGN_OR_RETURN(Fd fd, OpenForRead(path));
  if (!fd.valid()) return Status::Ok();
  std::string block(kReadBlock, '\0');
  std::string carry;
  bool skipping = false;
  for (;;) {
    ssize_t n = ::read(fd.get(), block.data(), block.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot read '" + path + "'", errno);
    }
    if (n == 0) break;
    std::string_view data(block.data(), static_cast<size_t>(n));
    while (!data.empty()) {
      const void* hit = std::memchr(data.data(), '\n', data.size());
      if (hit == nullptr) {
        if (!skipping) carry.append(data);
        if (carry.size() > kMaxLineBytes) {
          carry.clear();
          skipping = true;
        }
        break;
      }
      size_t len = static_cast<size_t>(static_cast<const char*>(hit) - data.data());
      std::string_view line = data.substr(0, len);
      data.remove_prefix(len + 1);
      if (skipping) {
        skipping = false;
        continue;
      }
      if (!carry.empty()) {
        carry.append(line);
        line = carry;
      }
      if (!line.empty() && !fn(line)) return Status::Ok();
      carry.clear();
    }
  }
  if (!skipping && !carry.empty()) fn(carry);
  return Status::Ok();
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  for (size_t i = 0; i < n;) {
    // Most output is ASCII: check 8 bytes at a time.
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = Utf8SequenceLength(p + i, n - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    size_t len = Utf8SequenceLength(p + i, s.size() - i);
    if (len == 0) {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      ++i;
    } else {
      out.append(s.data() + i, len);
      i += len;
    }
  }
  return out;
}

namespace {

// Appends "2026-11-27T10:58:50.123456Z" for `unix_us`.
void AppendTimeUtcMicros(int64_t unix_us, std::string* out) {
  int64_t secs = unix_us / 1'000'000;
  int64_t frac = unix_us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  // Records come in bursts within one second: format its prefix once.
  thread_local int64_t cached_secs = INT64_MIN;
  thread_local char prefix[32];
  thread_local size_t prefix_len = 0;
  if (secs != cached_secs) {
    time_t t = static_cast<time_t>(secs);
    struct tm tm;
    gmtime_r(&t, &tm);
    prefix_len = strftime(prefix, sizeof prefix, "%Y-%m-%dT%H:%M:%S.", &tm);
    cached_secs = secs;
  }
  char digits[8] = {'0', '0', '0', '0', '0', '0', 'Z'};
  for (int i = 5; i >= 0; --i, frac /= 10) digits[i] = static_cast<char>('0' + frac % 10);
  out->append(prefix, prefix_len);
  out->append(digits, 7);
}

}  // namespace

std::string FormatTimeUtcMicros(int64_t unix_us) {
  std::string out;
  AppendTimeUtcMicros(unix_us, &out);
  return out;
}

bool LogFilter::Matches(const LogRecord& record) const {
  if (!stream.empty() && record.stream != stream) return false;
  if (process.empty() || record.process == process) return true;
  // "web" matches "web.1"; "web.2" matches only itself (handled above).
  if (process.find('.') != std::string::npos) return false;
  return record.process.size() > process.size() &&
         record.process.compare(0, process.size(), process) == 0 &&
         record.process[process.size()] == '.';
}

nlohmann::json LogRecordToJson(const LogRecord& r) {
  auto utf8 = [](const std::string& s) {
    return IsValidUtf8(s) ? s : SanitizeUtf8(s);
  };
  return nlohmann::json{{"seq", r.seq},
                        {"time", FormatTimeUtcMicros(r.time_us)},
                        {"app", utf8(r.app)},
                        {"release", utf8(r.release)},
                        {"process", utf8(r.process)},
                        {"stream", utf8(r.stream)},
                        {"text", utf8(r.text)},
                        {"partial", r.partial}};
}

void EncodeLogRecord(const LogRecord& r, std::string* out) {
  // seq comes first, always: PeekSeq relies on it.
  out->append("{\"seq\":");
  AppendNumber(r.seq, out);
  out->append(",\"time\":\"");
  AppendTimeUtcMicros(r.time_us, out);
  out->append("\",\"app\":");
  AppendJsonString(r.app, out);
  out->append(",\"release\":");
  AppendJsonString(r.release, out);
  out->append(",\"process\":");
  AppendJsonString(r.process, out);
  out->append(",\"stream\":");
  AppendJsonString(r.stream, out);
  out->append(",\"text\":");
  AppendJsonString(r.text, out);
  out->append(r.partial ? ",\"partial\":true}" : ",\"partial\":false}");
}

Result<LogRecord> DecodeLogRecord(std::string_view line) {
  try {
    nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr,
                                             /*allow_exceptions=*/false);
    if (!j.is_object()) return Corruption("log line is not a JSON object");
    LogRecord r;
    auto seq = j.find("seq");
    auto time = j.find("time");
    auto partial = j.find("partial");
    if (seq == j.end() || !seq->is_number_unsigned() || time == j.end() ||
        !time->is_string() || partial == j.end() || !partial->is_boolean())
      return Corruption("log line lacks seq, time or partial");
    r.seq = seq->get<uint64_t>();
    if (!ParseTimeUtcMicros(time->get_ref<const std::string&>(), &r.time_us))
      return Corruption("log line has a bad time");
    r.partial = partial->get<bool>();
    for (auto [key, field] :
         {std::pair{"app", &r.app}, std::pair{"release", &r.release},
          std::pair{"process", &r.process}, std::pair{"stream", &r.stream},
          std::pair{"text", &r.text}}) {
      auto it = j.find(key);
      if (it == j.end() || !it->is_string())
        return Corruption(std::string("log line lacks ") + key);
      *field = std::move(it->get_ref<std::string&>());
    }
    return r;
  } catch (const std::exception& e) {
    return Corruption(std::string("cannot decode log line: ") + e.what());
  }
}

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
    AppLog& log = apps_[app];
    log.dir = dir_ + "/" + app;
    log.last_seq = last_seq;
  }
  return Status::Ok();
}

LogStore::AppLog& LogStore::GetApp(const std::string& app) {
  auto it = apps_.find(app);
  if (it != apps_.end()) return it->second;
  AppLog& log = apps_[app];
  log.dir = dir_ + "/" + app;
  return log;
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
  }
  log.pending.clear();
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

int64_t LogStore::NowUs() const {
  if (real_clock_) {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  }
  return clock_.WallMs() * 1000;
}

void LogStore::SendJournal(AppLog& log, const LogRecord& r) {
  const bool err = r.stream == "err";
  std::string fields[] = {
      "MESSAGE=" + r.text,
      err ? "PRIORITY=3" : "PRIORITY=6",
      "SYSLOG_IDENTIFIER=" + r.app,
      "RELSUPD_APP=" + r.app,
      "RELSUPD_RELEASE=" + r.release,
      "RELSUPD_PROCESS=" + r.process,
      "RELSUPD_STREAM=" + r.stream,
  };
  struct iovec iov[std::size(fields)];
  for (size_t i = 0; i < std::size(fields); ++i) {
    iov[i].iov_base = fields[i].data();
    iov[i].iov_len = fields[i].size();
  }
  // sd_journal_sendv takes each field as is (text may hold '\n' or NUL).
  int rc = sd_journal_sendv(iov, static_cast<int>(std::size(fields)));
  if (rc >= 0) {
    log.journal_warned = false;
    return;
  }
  if (!log.journal_warned)
    spdlog::warn("Failed to send logs of app '{}' to the journal: {}, ignoring",
                 r.app, std::strerror(-rc));
  log.journal_warned = true;
}

void LogStore::Append(LogRecord record) {
  if (!ValidAppName(record.app)) {
    if (!bad_name_warned_)
      spdlog::warn("Refused log records of app '{}': bad app name, ignoring",
                   SanitizeUtf8(record.app));
    bad_name_warned_ = true;
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
  log.file_bytes += scratch_.size();
  if (log.pending.size() >= kWriteBufferBytes) FlushApp(log);
  if (options_.journal) SendJournal(log, record);

  // The ring is bounded in lines and in bytes, so a child printing long
  // lines cannot make it hold ring_lines * max_line bytes.
  log.ring_text_bytes += record.text.size();
  log.ring.push_back(std::move(record));
  while (!log.ring.empty() && (log.ring.size() > options_.ring_lines ||
                               log.ring_text_bytes > options_.ring_bytes)) {
    log.ring_text_bytes -= log.ring.front().text.size();
    log.ring.pop_front();
  }
}

uint64_t LogStore::LastSeq(const std::string& app) const {
  auto it = apps_.find(app);
  return it == apps_.end() ? 0 : it->second.last_seq;
}

Result<std::vector<LogRecord>> LogStore::Tail(const std::string& app,
                                              const LogFilter& filter,
                                              size_t n,
                                              uint64_t before_seq) const {
  if (!ValidAppName(app)) return InvalidArgument("bad app name '" + app + "'");
  std::vector<LogRecord> out;
  if (n == 0) return out;
  auto it = apps_.find(app);
  if (it != apps_.end()) FlushApp(it->second);
  // Newest generation first, each read from its end.
  for (int g = 0; g < options_.max_files && out.size() < n; ++g) {
    RETURN_IF_ERROR(ForEachLineBackward(GenerationPath(app, g), [&](std::string_view line) {
      uint64_t seq;
      if (PeekSeq(line, &seq) && seq >= before_seq) return true;  // cheap skip
      Result<LogRecord> r = DecodeLogRecord(line);
      if (r.ok() && r->seq < before_seq && filter.Matches(*r))
        out.push_back(std::move(r).value());
      return out.size() < n;
    }).WithContext("cannot read logs of app '" + app + "'"));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<LogRecord>> LogStore::Since(const std::string& app,
                                               uint64_t after_seq,
                                               const LogFilter& filter,
                                               size_t limit) const {
  if (!ValidAppName(app)) return InvalidArgument("bad app name '" + app + "'");
  std::vector<LogRecord> out;
  auto it = apps_.find(app);
  if (limit == 0 || it == apps_.end() || after_seq >= it->second.last_seq) return out;
  const std::deque<LogRecord>& ring = it->second.ring;
  if (ring.empty() || after_seq + 1 < ring.front().seq)
    return SinceFromFiles(app, after_seq, filter, limit);
  // The ring holds consecutive seqs, so after_seq + 1 is found by index.
  size_t i = static_cast<size_t>(after_seq + 1 - ring.front().seq);
  assert(i < ring.size() && ring[i].seq == after_seq + 1);
  for (; i < ring.size() && out.size() < limit; ++i)
    if (filter.Matches(ring[i])) out.push_back(ring[i]);
  return out;
}

Result<std::vector<LogRecord>> LogStore::SinceFromFiles(const std::string& app,
                                                        uint64_t after_seq,
                                                        const LogFilter& filter,
                                                        size_t limit) const {
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
  for (int g = start; g >= 0 && out.size() < limit; --g) {
    RETURN_IF_ERROR(ForEachLineForward(GenerationPath(app, g), [&](std::string_view line) {
      uint64_t seq;
      if (PeekSeq(line, &seq) && seq <= after_seq) return true;  // cheap skip
      Result<LogRecord> r = DecodeLogRecord(line);
      if (r.ok() && r->seq > after_seq && filter.Matches(*r))
        out.push_back(std::move(r).value());
      return out.size() < limit;
    }).WithContext(context));
  }
  return out;
}

}  // namespace relsupd
