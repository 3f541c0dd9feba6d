#include "daemon/base/clock.h"

#include <ctime>
#include <optional>

#include "daemon/base/duration.h"

namespace relsupd {

int64_t SystemClock::MonotonicMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch())
      .count();
}

int64_t SystemClock::WallMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
      .count();
}

const Clock& RealClock() {
  static const SystemClock clock;
  return clock;
}

std::string FormatTimeUtc(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[48];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return buf;
}

namespace {

// Reads `count` digits at `*p` as a number; false when they are not all
// there.
bool Digits(std::string_view s, size_t* p, int count, int* out) {
  if (*p + static_cast<size_t>(count) > s.size()) return false;
  int v = 0;
  for (int i = 0; i < count; ++i) {
    char c = s[*p + static_cast<size_t>(i)];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *p += static_cast<size_t>(count);
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* p, char c) {
  if (*p >= s.size() || s[*p] != c) return false;
  ++*p;
  return true;
}

// The time forms of ParseSince; nullopt when `s` is none of them.
std::optional<int64_t> ParseTimeText(std::string_view s) {
  struct tm tm{};
  size_t p = 0;
  int year, mon, day, hour = 0, min = 0, sec = 0;
  if (!Digits(s, &p, 4, &year) || !Expect(s, &p, '-') || !Digits(s, &p, 2, &mon) ||
      !Expect(s, &p, '-') || !Digits(s, &p, 2, &day))
    return std::nullopt;
  int64_t frac_ms = 0;
  bool local = true;
  int offset_min = 0;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != 't' && s[p] != ' ') return std::nullopt;
    ++p;
    if (!Digits(s, &p, 2, &hour) || !Expect(s, &p, ':') || !Digits(s, &p, 2, &min))
      return std::nullopt;
    if (p < s.size() && s[p] == ':') {
      ++p;
      if (!Digits(s, &p, 2, &sec)) return std::nullopt;
      if (p < s.size() && s[p] == '.') {
        ++p;
        int scale = 100, digits = 0;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          frac_ms += (s[p] - '0') * scale;
          scale /= 10;
          ++p;
          ++digits;
        }
        if (digits == 0) return std::nullopt;
      }
    }
    if (p < s.size()) {
      local = false;
      if (s[p] == 'Z' || s[p] == 'z') {
        ++p;
      } else if (s[p] == '+' || s[p] == '-') {
        const int sign = s[p] == '-' ? -1 : 1;
        ++p;
        int oh, om;
        if (!Digits(s, &p, 2, &oh) || !Expect(s, &p, ':') || !Digits(s, &p, 2, &om) ||
            oh > 23 || om > 59)
          return std::nullopt;
        offset_min = sign * (oh * 60 + om);
      } else {
        return std::nullopt;
      }
    }
  }
  if (p != s.size() || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
      sec > 60)
    return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  tm.tm_isdst = -1;
  time_t t = local ? mktime(&tm) : timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return (static_cast<int64_t>(t) - int64_t{offset_min} * 60) * 1000 + frac_ms;
}

}  // namespace

Result<int64_t> ParseSince(std::string_view text, int64_t now_ms) {
  if (auto t = ParseTimeText(text)) return *t;
  if (!text.empty() && text[0] >= '0' && text[0] <= '9' && text.find('-') == std::string_view::npos) {
    Result<int64_t> ago = ParseDurationMs(text);
    if (ago.ok()) return now_ms - *ago;
  }
  return InvalidArgument("'" + std::string(text) +
                         "' is neither a duration back from now (90s, 5m, 1h30m) nor a time "
                         "(2026-12-05T09:00:00Z, 2026-12-05 09:00, 2026-12-05)");
}

}  // namespace relsupd
