// Fuzzes env files (`relsupd ctl release create --env-file FILE`).

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/base/env_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto pairs = ParseEnvFile(text, "app.env");
  if (!pairs.ok()) {
    if (pairs.status().message().find("app.env:") != 0) std::abort();
    return 0;
  }
  for (const auto& [key, value] : *pairs) {
    // A key is never empty and never holds '=' or a line break.
    if (key.empty() || key.find_first_of("=\n") != std::string::npos) std::abort();
    if (value.find('\n') != std::string::npos) std::abort();
  }
  return 0;
}
