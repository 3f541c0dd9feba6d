// Fuzzes socket addresses: ParseSocketAddress (daemon/base/socket_address.h,
// the one parser of an app's daemon-held sockets, "tcp://HOST:PORT" or
// "unix:/PATH") and its round trip through ToString, "NAME=ADDRESS" from
// `--socket`, the http ready check's URL, and the check that a ready address
// reaches a listener.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "daemon/base/socket_address.h"
#include "daemon/config/app_spec.h"
#include "daemon/config/ready_sockets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto addr = ParseSocketAddress(text);
  if (addr.ok()) {
    // What ToString prints parses back to the same address.
    auto again = ParseSocketAddress(addr->ToString());
    if (!again.ok() || !(*again == *addr)) std::abort();
    sockaddr_storage ss{};
    if (addr->ToSockaddr(&ss) > sizeof(ss)) std::abort();
  }
  if (ValidateSocketAddress(text).ok() != addr.ok()) std::abort();
  auto arg = ParseSocketArg(text);
  if (arg.ok() && !ValidateSocketAddress(arg->address).ok()) std::abort();

  auto url = ParseHttpUrl(text);
  if (url.ok() && (url->port < 0 || url->port > 65535 || url->host.empty()))
    std::abort();

  // The input as a listener, against fixed ready addresses, and as a ready
  // URL against fixed listeners.
  for (const char* host : {"127.0.0.1", "::1", "0.0.0.0", "localhost", "::ffff:127.0.0.1"}) {
    const bool reaches = ReachesListener(ReadyAddress{host, 8080}, text);
    // Only a tcp:// address can be reached.
    if (reaches && text.rfind("tcp://", 0) != 0) std::abort();
  }
  ReadyCheck check;
  check.kind = ReadyKind::kHttp;
  check.target = text;
  if (auto at = ReadyCheckAddress(check)) {
    for (const char* listen : {"tcp://0.0.0.0:80", "tcp://[::]:8080", "tcp://127.0.0.1:8080",
                               "tcp://[::ffff:127.0.0.1]:80", "unix:/run/x.sock"})
      ReachesListener(*at, listen);
  }
  return 0;
}
