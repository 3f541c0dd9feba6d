// Fuzzes the splitter that cuts an app's stdout and stderr into log lines
// (daemon/logs/line_splitter.h), against its contract: pieces of at most
// max_line bytes, partial only at max_line or up to 3 bytes before it where
// the next piece starts with a UTF-8 character, at most max_line + 1
// bytes held, and the same pieces however read(2) chunked the stream.
//
// Input: byte 0 gives max_line (1-64), byte 1 the chunk size; the rest is
// the stream.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "daemon/logs/line_splitter.h"

namespace {

using Pieces = std::vector<std::pair<std::string, bool>>;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_log_lines: %s\n", what);
  std::abort();
}

Pieces Split(std::string_view stream, size_t max_line, size_t chunk) {
  relsupd::LineSplitter splitter(max_line);
  Pieces out;
  auto emit = [&](std::string_view line, bool partial) {
    if (line.size() > max_line) Fail("a piece is longer than max_line");
    if (partial && line.size() + 3 < max_line) Fail("a partial piece is too short");
    if (line.find('\n') != std::string_view::npos) Fail("a piece holds a newline");
    out.emplace_back(std::string(line), partial);
  };
  for (size_t at = 0; at < stream.size(); at += chunk) {
    splitter.Feed(stream.substr(at, chunk), emit);
    if (splitter.buffered() > max_line + 1) Fail("more than max_line + 1 bytes held");
  }
  splitter.Flush(emit);
  if (splitter.buffered() != 0) Fail("bytes held after Flush");
  if (!out.empty() && out.back().second) Fail("the last piece is partial");
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (!out[i].second || out[i].first.size() == max_line) continue;
    // Cut short only before a UTF-8 lead byte (the character it starts
    // would have been cut).
    const std::string& next = out[i + 1].first;
    if (next.empty() || static_cast<unsigned char>(next[0]) < 0xC0)
      Fail("a partial piece is cut short but not before a UTF-8 character");
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max_line = 1 + data[0] % 64;
  const size_t chunk = 1 + data[1] % 97;
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (Split(stream, max_line, chunk) != Split(stream, max_line, stream.size() + 1))
    Fail("the pieces depend on how the stream was chunked");
  return 0;
}
