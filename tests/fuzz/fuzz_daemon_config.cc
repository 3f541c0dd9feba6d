// Fuzzes the daemon config file (/etc/relsupd/relsupd.yaml, read at start
// and on reload): YAML text to a validated DaemonConfig.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "daemon/config/daemon_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = ParseDaemonConfig(text, "relsupd.yaml");
  // Every refusal says why.
  if (!config.ok() && config.status().message().empty()) std::abort();
  return 0;
}
