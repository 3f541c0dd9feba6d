// Fuzzes an artifact's Procfile ("name: command" lines), read when it has
// no relsupd.yaml with processes.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "daemon/config/process_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto file = ParseProcfile(text, "Procfile");
  if (!file.ok()) {
    if (file.status().message().empty()) std::abort();
    return 0;
  }
  for (const auto& [name, spec] : file->processes)
    if (name.empty()) std::abort();
  return 0;
}
