// Fuzzes an artifact's relsupd.yaml as the daemon and the build stage read
// it: the `processes:` map (ParseProcessYaml, with the ready-check check
// against daemon-held sockets that BuildSlot runs) and the `build:` section
// (ParseBuildSpec).

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "daemon/config/build_spec.h"
#include "daemon/config/process_file.h"
#include "daemon/config/ready_sockets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto processes = ParseProcessYaml(text, "relsupd.yaml");
  if (processes.ok()) {
    static const std::vector<SocketSpec> kSockets = {
        {"http", "tcp://0.0.0.0:8080"},
        {"admin", "tcp://[::1]:9000"},
        {"local", "unix:/run/app.sock"}};
    CheckReadyAgainstSockets(*processes, kSockets).IgnoreError();
  } else if (processes.status().message().empty()) {
    std::abort();
  }
  auto build = ParseBuildSpec(text, "relsupd.yaml");
  if (!build.ok() && build.status().message().empty()) std::abort();
  return 0;
}
