#pragma once
// AppSockets: the listening sockets the daemon holds for apps.
//
// An app's named sockets ("http" = tcp://0.0.0.0:8080, "admin" =
// unix:/run/shop/admin.sock) are bound by the daemon, so a privileged port
// works for an unprivileged app, and passed to every instance that lists
// them, as systemd socket activation does (LISTEN_FDS from fd 3). The same
// socket serves the old and the new release during a start-first switch,
// so no client is refused. Sockets stay open until the app's spec changes
// them or the daemon exits. Loop thread only.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/config/app_spec.h"

namespace relsupd {

class AppSockets {
 public:
  // The fds of `spec`'s sockets by name, binding those not yet bound (or
  // bound to another address). Sockets the spec no longer names are closed.
  Result<std::map<std::string, int>> For(const AppSpec& spec);
  // The fd held now for the app's socket `name`, or -1. Instances look
  // their sockets up at each spawn, so a restart after the app's sockets
  // changed gets the current ones, never a closed (or reused) fd number.
  int Find(const std::string& app, const std::string& name) const;

 private:
  struct Held {
    std::string address;
    Fd fd;
  };
  std::map<std::pair<std::string, std::string>, Held> held_;  // (app, name)
};

// Binds and listens on "tcp://HOST:PORT" or "unix:/PATH" (close-on-exec,
// blocking: the children accept on it).
Result<Fd> BindListener(const std::string& address);

}  // namespace relsupd
