// Fuzzes the app spec file (`relsupd ctl app apply FILE`): YAML text to a
// validated AppSpec. A spec that parses must survive the JSON round trip the
// ledger and the control protocol make (AppSpecToJson, AppSpecFromJson).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "daemon/config/app_spec.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  auto spec = ParseAppSpecYaml(fuzz::InputText(data, size), "app.yaml");
  if (fuzz::Refused(spec)) return 0;
  auto back = AppSpecFromJson(AppSpecToJson(*spec));
  if (!back.ok() || !(*back == *spec)) {
    std::fprintf(stderr, "app spec does not round-trip: %s\n",
                 back.ok() ? AppSpecToJson(*back).dump().c_str()
                           : back.status().message().c_str());
    std::abort();
  }
  return 0;
}
