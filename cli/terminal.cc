#include "cli/terminal.h"

#include <unistd.h>

#include <cstdio>

namespace relsupd::cli {
namespace {

// The length of the UTF-8 sequence at `s[i]` and its code point, or 0 when
// the bytes there are not a valid, shortest-form sequence.
size_t Utf8At(std::string_view s, size_t i, char32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t n;
  char32_t v;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, v = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, v = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(k) & 0x3F);
  }
  if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
      (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return n;
}

void AppendHex(std::string* out, const char* format, unsigned value) {
  char buf[8];
  std::snprintf(buf, sizeof buf, format, value);
  out->append(buf);
}

}  // namespace

std::string EscapeControls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      char32_t cp = 0;
      size_t n = Utf8At(text, i, &cp);
      if (n == 0) {
        AppendHex(&out, "\\x%02x", c);  // not UTF-8: one byte, shown
        ++i;
      } else if (cp <= 0x9F) {
        AppendHex(&out, "\\u%04x", static_cast<unsigned>(cp));  // C1 (CSI, OSC, ...)
        i += n;
      } else {
        out.append(text.substr(i, n));
        i += n;
      }
      continue;
    }
    ++i;
    if (c >= 0x20 && c != 0x7F) {
      out.push_back(static_cast<char>(c));
      continue;
    }
    switch (c) {
      case '\t': out.push_back('\t'); break;
      case '\a': out.append("\\a"); break;
      case '\b': out.append("\\b"); break;
      case 0x1B: out.append("\\e"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\v': out.append("\\v"); break;
      default: AppendHex(&out, "\\x%02x", c); break;
    }
  }
  return out;
}

std::string ForStdout(std::string_view text) {
  static const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  return terminal ? EscapeControls(text) : std::string(text);
}

std::string EscapeLines(std::string_view text, bool terminal) {
  if (!terminal) return std::string(text);
  std::string out;
  for (size_t start = 0;;) {
    const size_t end = text.find('\n', start);
    out += EscapeControls(text.substr(start, end - start));
    if (end == std::string_view::npos) return out;
    out += '\n';
    start = end + 1;
  }
}

std::string ForStderr(std::string_view text) {
  static const bool terminal = ::isatty(STDERR_FILENO) == 1;
  return EscapeLines(text, terminal);
}

}  // namespace relsupd::cli
