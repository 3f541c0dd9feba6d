// Fuzzes an artifact's Procfile ("name: command" lines), read when it has
// no relsupd.yaml with processes.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "daemon/config/process_file.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  auto file = ParseProcfile(fuzz::InputText(data, size), "Procfile");
  if (fuzz::Refused(file)) return 0;
  for (const auto& [name, spec] : file->processes)
    if (name.empty()) std::abort();
  return 0;
}
