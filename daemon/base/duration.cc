#include "daemon/base/duration.h"

#include <cctype>

namespace relsupd {

namespace {
constexpr int64_t kMaxMs = int64_t{1'000'000'000} * 3'600'000;
}  // namespace

Result<int64_t> ParseDurationMs(std::string_view text) {
  auto bad = [&] {
    return InvalidArgument("'" + std::string(text) +
                           "' is not a duration (use e.g. 500ms, 10s, 2m, 1h)");
  };
  if (text.empty()) return bad();
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return bad();
    const size_t start = i;
    int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      n = n * 10 + (text[i] - '0');
      if (n > 1'000'000'000) return bad();
      ++i;
    }
    size_t u = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])))
      ++i;
    std::string_view unit = text.substr(u, i - u);
    int64_t mult;
    if (unit.empty()) {
      // A bare number is the whole text ("0s5" is not 5s).
      if (i != text.size() || start != 0) return bad();
      mult = 1000;
    } else if (unit == "ms") {
      mult = 1;
    } else if (unit == "s") {
      mult = 1000;
    } else if (unit == "m" || unit == "min") {
      mult = 60'000;
    } else if (unit == "h") {
      mult = 3'600'000;
    } else {
      return bad();
    }
    // Many terms could overflow the sum ("1000000000h" repeated): no
    // duration is longer than the longest single term.
    if (n * mult > kMaxMs - total)
      return InvalidArgument("'" + std::string(text.substr(0, 80)) +
                             "' is longer than 1000000000h");
    total += n * mult;
  }
  return total;
}

std::string FormatDurationMs(int64_t ms) {
  if (ms == 0) return "0s";
  // Below a second, or a number ParseDurationMs takes whole: "1500ms".
  if (ms % 1000 != 0 && ms <= 1'000'000'000) return std::to_string(ms) + "ms";
  // Otherwise hours, minutes, seconds and the rest in ms, each at most
  // 1,000,000,000 for every duration ParseDurationMs returns
  // ("1h1ms71117112s" was formatted as one number of ms too large to read).
  std::string out;
  int64_t s = ms / 1000;
  if (s >= 3600) {
    out += std::to_string(s / 3600) + "h";
    s %= 3600;
  }
  if (s >= 60) {
    out += std::to_string(s / 60) + "m";
    s %= 60;
  }
  if (s > 0) out += std::to_string(s) + "s";
  if (ms % 1000 != 0) out += std::to_string(ms % 1000) + "ms";
  return out;
}

std::string FormatElapsed(int64_t ms) {
  if (ms <= 0) return "-";
  if (ms < 1000) return std::to_string(ms) + "ms";
  const int64_t s = ms / 1000;
  auto two = [](int64_t big, const char* big_unit, int64_t small, const char* small_unit) {
    std::string out = std::to_string(big) + big_unit;
    if (small > 0) out += std::to_string(small) + small_unit;
    return out;
  };
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return two(s / 60, "m", s % 60, "s");
  if (s < 86400) return two(s / 3600, "h", s / 60 % 60, "m");
  return two(s / 86400, "d", s / 3600 % 24, "h");
}

}  // namespace relsupd
