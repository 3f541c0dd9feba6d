#include "daemon/logs/log_record.h"

#include <re2/re2.h>

#include <array>
#include <charconv>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>

namespace relsupd {
namespace {

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
  int64_t days =
      DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  *unix_us = ((days * 24 + h) * 60 + mi) * 60 * 1'000'000 + se * 1'000'000 + us;
  return true;
}

}  // namespace

bool PeekLogSeq(std::string_view line, uint64_t* seq) {
  constexpr std::string_view kPrefix = "{\"seq\":";
  if (line.substr(0, kPrefix.size()) != kPrefix) return false;
  const char* first = line.data() + kPrefix.size();
  const char* last = line.data() + line.size();
  auto r = std::from_chars(first, last, *seq);
  return r.ec == std::errc() && r.ptr != first && r.ptr < last && *r.ptr == ',';
}

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
  for (int i = 5; i >= 0; --i, frac /= 10)
    digits[i] = static_cast<char>('0' + frac % 10);
  out->append(prefix, prefix_len);
  out->append(digits, 7);
}

// A record's string fields and their keys, in the order they are encoded
// (after seq and time); decoding reads the same keys.
constexpr std::pair<const char*, std::string LogRecord::*>
    kStringFields[] = {{"app", &LogRecord::app},
                       {"release", &LogRecord::release},
                       {"process", &LogRecord::process},
                       {"stream", &LogRecord::stream},
                       {"text", &LogRecord::text}};

}  // namespace

std::string FormatTimeUtcMicros(int64_t unix_us) {
  std::string out;
  AppendTimeUtcMicros(unix_us, &out);
  return out;
}

bool LogFilter::Matches(const LogRecord& record) const {
  if (!stream.empty() && record.stream != stream) return false;
  if (!release.empty() && record.release != release) return false;
  if (record.time_us < since_us) return false;
  if (!process.empty() && record.process != process) {
    // "web" matches "web.1"; "web.2" matches only itself.
    if (process.find('.') != std::string::npos) return false;
    if (record.process.size() <= process.size() ||
        record.process.compare(0, process.size(), process) != 0 ||
        record.process[process.size()] != '.')
      return false;
  }
  // Last: the one test that costs more than a compare.
  return grep == nullptr || re2::RE2::PartialMatch(record.text, *grep);
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
  // seq comes first, always: PeekLogSeq relies on it.
  out->append("{\"seq\":");
  AppendNumber(r.seq, out);
  out->append(",\"time\":\"");
  AppendTimeUtcMicros(r.time_us, out);
  out->push_back('"');
  for (const auto& [key, field] : kStringFields) {
    out->append(",\"").append(key).append("\":");
    AppendJsonString(r.*field, out);
  }
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
    for (const auto& [key, field] : kStringFields) {
      auto it = j.find(key);
      if (it == j.end() || !it->is_string())
        return Corruption(std::string("log line lacks ") + key);
      r.*field = std::move(it->get_ref<std::string&>());
    }
    return r;
  } catch (const std::exception& e) {
    return Corruption(std::string("cannot decode log line: ") + e.what());
  }
}

}  // namespace relsupd
