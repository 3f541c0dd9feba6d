#pragma once
// Ready checks against an app's daemon-held sockets.
//
// A daemon-held socket (app setting `sockets`) is bound and listened on by
// the daemon itself, so the kernel completes a connect to it whether or not
// any instance serves it: a `{tcp: PORT}` or `{http: URL}` ready check aimed
// at it passes at once (tcp) or measures whichever instance happens to
// accept (http), and says nothing about the instance being checked. Such a
// check is refused when a release is made and when it is activated; such a
// process should send READY=1 (`ready: notify`) instead. Value types; any
// thread.

#include <optional>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/config/app_spec.h"
#include "daemon/config/process_file.h"

namespace relsupd {

// An http ready check's URL, read once for the probe and for the check
// below.
struct ProbeTarget {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";  // http only
};

// "http://127.0.0.1:8080/health", "http://[::1]:80/", "http://localhost/":
// plain http; the host is not checked here (the probe resolves only a
// literal address or localhost, ReadyCheckAddress the same).
Result<ProbeTarget> ParseHttpUrl(const std::string& url);

// Where a tcp or http ready check connects.
struct ReadyAddress {
  std::string host;  // as written: "127.0.0.1", "localhost", "::1"
  int port = 0;
};

// tcp: 127.0.0.1:PORT (the probe always dials loopback); http: the URL's
// host and port (80 by default). nullopt for notify, none and exec, and for
// a URL the probe would refuse anyway (it reports that itself).
std::optional<ReadyAddress> ReadyCheckAddress(const ReadyCheck& check);

// Whether a connect to `target` would reach a listener bound to `listen`
// ("tcp://HOST:PORT"; never for unix: addresses). Same port, and the same
// host, where localhost is 127.0.0.1, 0.0.0.0 and :: as a destination are
// the loopback address, an IPv4-mapped IPv6 address is its IPv4 address,
// and a wildcard listener (0.0.0.0, [::]) matches any host.
bool ReachesListener(const ReadyAddress& target, const std::string& listen);

// FailedPrecondition naming the first process type (in name order) whose
// ready check, or health check, would reach one of `sockets`:
//   process 'web': ready check tcp 127.0.0.1:8080 would reach the
//   daemon-held socket 'http' (tcp://127.0.0.1:8080), which always accepts;
//   use 'ready: notify'
// The caller adds which release it is.
Status CheckReadyAgainstSockets(const ProcessFile& processes,
                                const std::vector<SocketSpec>& sockets);

// FailedPrecondition naming every process type that lists in `sockets:` a
// socket the app does not have, one per line:
//   process 'web' uses socket 'htp', which app 'shop' does not have (its
//   sockets: 'http'); fix 'sockets:' in relsupd.yaml or add the socket
//   with 'ctl app apply'
// Checked when a release is made and again when it runs.
Status CheckProcessSockets(const ProcessFile& processes,
                           const std::vector<SocketSpec>& sockets,
                           const std::string& app);

}  // namespace relsupd
