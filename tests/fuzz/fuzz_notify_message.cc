// Fuzzes sd_notify datagrams ("READY=1\nSTATUS=up\n") as the notify socket
// (mode 0666: any local user can write to it) hands them to the supervisor.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "daemon/supervise/notify_socket.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& [key, value] : relsupd::ParseNotifyMessage(text)) {
    // A field never spans lines.
    if (key.find('\n') != std::string::npos || value.find('\n') != std::string::npos)
      std::abort();
  }
  return 0;
}
