#include "daemon/logs/log_record.h"

#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
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
  constexpr std::string_view kJsonPrefix = "{\"seq\":";
  char after = ' ';  // what ends the number: ' ', or ',' in a JSON line
  if (line.starts_with(kJsonPrefix)) {
    line.remove_prefix(kJsonPrefix.size());
    after = ',';
  }
  const char* first = line.data();
  const char* last = line.data() + line.size();
  auto r = std::from_chars(first, last, *seq);
  return r.ec == std::errc() && r.ptr != first && r.ptr < last && *r.ptr == after &&
         *seq != 0 && *seq <= kMaxLogSeq;
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

bool IsAscii(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  uint64_t any = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    any |= word;
  }
  for (; i < n; ++i) any |= p[i];
  return (any & 0x8080808080808080ull) == 0;
}

TextScan ScanText(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  TextScan scan;
  for (size_t i = 0; i < n;) {
    // Most output is ASCII: 8 bytes at a time, a newline found by the
    // classic zero-byte test on word ^ "\n\n\n\n\n\n\n\n".
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & kHigh) == 0) {
        const uint64_t x = word ^ (kOnes * '\n');
        if (((x - kOnes) & ~x & kHigh) != 0) scan.newline = true;
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      if (p[i] == '\n') scan.newline = true;
      ++i;
      continue;
    }
    const size_t len = Utf8SequenceLength(p + i, n - i);
    if (len == 0) {
      scan.utf8 = false;
      scan.newline = std::memchr(p, '\n', n) != nullptr;
      return scan;
    }
    i += len;
  }
  return scan;
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
    // The year in four digits, as ParseTimeUtcMicros reads it (strftime's
    // %Y would write year 506 as "506").
    const int n = std::snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d.",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                tm.tm_min, tm.tm_sec);
    prefix_len = n > 0 ? std::min(static_cast<size_t>(n), sizeof prefix - 1) : 0;
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

namespace {

constexpr char kHexUpper[] = "0123456789ABCDEF";

// Bytes a field (release, process, stream) writes as %XX: they would end
// the field or the line, or hide in a terminal.
bool FieldByteEscaped(unsigned char c) { return c <= 0x20 || c == 0x7F || c == '%'; }

void AppendField(std::string_view field, std::string* out) {
  if (field.empty()) {
    out->push_back('-');
    return;
  }
  if (field == "-") {
    out->append("%2D");
    return;
  }
  for (char ch : field) {
    const auto c = static_cast<unsigned char>(ch);
    if (!FieldByteEscaped(c)) {
      out->push_back(ch);
      continue;
    }
    const char esc[3] = {'%', kHexUpper[c >> 4], kHexUpper[c & 0xF]};
    out->append(esc, 3);
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool DecodeField(std::string_view in, std::string* out) {
  out->clear();
  if (in == "-") return true;
  if (in.empty()) return false;
  for (size_t i = 0; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c != '%') {
      if (FieldByteEscaped(c)) return false;
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// The next space-ended token of `*rest`, taken off it.
bool NextToken(std::string_view* rest, std::string_view* token) {
  const size_t sp = rest->find(' ');
  if (sp == std::string_view::npos) return false;
  *token = rest->substr(0, sp);
  rest->remove_prefix(sp + 1);
  return true;
}

Result<LogRecord> DecodeJsonLine(std::string_view line) {
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
    if (r.seq == 0 || r.seq > kMaxLogSeq) return Corruption("log line has a bad seq");
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

}  // namespace

void AppendLogMiddle(int64_t time_us, std::string_view release, std::string_view process,
                     std::string_view stream, std::string* out) {
  out->push_back(' ');
  AppendTimeUtcMicros(time_us, out);
  out->push_back(' ');
  AppendField(release, out);
  out->push_back(' ');
  AppendField(process, out);
  out->push_back(' ');
  AppendField(stream, out);
  out->push_back(' ');
}

void AppendLogLine(uint64_t seq, std::string_view middle, std::string_view text, bool partial,
                   bool newline, std::string* out) {
  std::string escaped;  // only for a text that holds a newline (rare)
  const bool escape = newline;
  if (escape) {
    escaped.reserve(text.size() + 8);
    for (char c : text) {
      if (c == '\n' || c == '\\') {
        escaped.push_back('\\');
        escaped.push_back(c == '\n' ? 'n' : '\\');
      } else {
        escaped.push_back(c);
      }
    }
    text = escaped;
  }
  char head[24];
  const char* head_end = std::to_chars(head, head + sizeof head, seq).ptr;
  char tail[32];
  char* t = tail;
  if (partial) *t++ = 'p';
  if (escape) *t++ = 'e';
  if (t == tail) *t++ = '-';
  *t++ = ' ';
  t = std::to_chars(t, tail + sizeof tail - 1, text.size()).ptr;
  *t++ = ' ';
  // Appended piece by piece (no resize: it would zero the bytes first).
  out->append(head, static_cast<size_t>(head_end - head));
  out->append(middle);
  out->append(tail, static_cast<size_t>(t - tail));
  out->append(text);
  out->push_back('\n');
}

void EncodeLogRecord(const LogRecord& r, std::string* out) {
  std::string middle;
  AppendLogMiddle(r.time_us, r.release, r.process, r.stream, &middle);
  AppendLogLine(r.seq, middle, r.text, r.partial,
                r.text.find('\n') != std::string::npos, out);
  out->pop_back();  // the '\n'
}

Result<LogRecord> DecodeLogRecord(std::string_view line, std::string_view app) {
  if (line.starts_with('{')) {
    Result<LogRecord> r = DecodeJsonLine(line);
    // The file's directory names the app, whatever the line says.
    if (r.ok() && !app.empty()) r->app = std::string(app);
    return r;
  }
  auto bad = [](const char* what) {
    return Corruption(std::string("log line has a bad ") + what);
  };
  LogRecord r;
  std::string_view rest = line, token;
  if (!NextToken(&rest, &token)) return bad("seq");
  auto num = std::from_chars(token.data(), token.data() + token.size(), r.seq);
  if (token.empty() || num.ec != std::errc() || num.ptr != token.data() + token.size() ||
      r.seq == 0 || r.seq > kMaxLogSeq)
    return bad("seq");
  if (!NextToken(&rest, &token) || !ParseTimeUtcMicros(token, &r.time_us)) return bad("time");
  if (!NextToken(&rest, &token) || !DecodeField(token, &r.release)) return bad("release");
  if (!NextToken(&rest, &token) || !DecodeField(token, &r.process)) return bad("process");
  if (!NextToken(&rest, &token) || !DecodeField(token, &r.stream)) return bad("stream");
  if (!NextToken(&rest, &token) || token.empty()) return bad("flags");
  bool escaped = false;
  if (token != "-") {
    for (char c : token) {
      if (c == 'p' && !r.partial) {
        r.partial = true;
      } else if (c == 'e' && !escaped) {
        escaped = true;
      } else {
        return bad("flags");
      }
    }
  }
  size_t len = 0;
  if (!NextToken(&rest, &token)) return bad("length");
  num = std::from_chars(token.data(), token.data() + token.size(), len);
  if (token.empty() || num.ec != std::errc() || num.ptr != token.data() + token.size() ||
      len != rest.size())
    return bad("length");
  if (!escaped) {
    r.text.assign(rest);
  } else {
    r.text.reserve(rest.size());
    for (size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] != '\\') {
        r.text.push_back(rest[i]);
        continue;
      }
      if (i + 1 == rest.size() || (rest[i + 1] != 'n' && rest[i + 1] != '\\'))
        return bad("escape");
      r.text.push_back(rest[++i] == 'n' ? '\n' : '\\');
    }
  }
  r.app.assign(app);
  return r;
}

}  // namespace relsupd
