// Fuzzes durations written by people ("1m30s"), read in the app spec, the
// daemon config and the process file. What parses must format and parse
// back to the same value.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "daemon/base/duration.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ms = ParseDurationMs(text);
  if (!ms.ok()) return 0;
  if (*ms < 0) std::abort();
  const std::string shown = FormatDurationMs(*ms);
  auto back = ParseDurationMs(shown);
  if (!back.ok() || *back != *ms) {
    std::fprintf(stderr, "%lld ms formats as '%s', which does not read back\n",
                 static_cast<long long>(*ms), shown.c_str());
    std::abort();
  }
  return 0;
}
