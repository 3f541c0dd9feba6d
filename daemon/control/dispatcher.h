#pragma once
// Dispatcher: JSON-RPC 2.0 semantics over a table of methods.
//
// Takes one received line and sends back the line that answers it (none for
// notifications, or a batch of them). Handles parse errors, invalid
// requests, batches, unknown methods and the rights check; handlers see only
// valid params objects. A handler answers at once (Handler) or later, e.g.
// after work on the thread pool (AsyncHandler). Knows nothing of sockets, so
// unit tests drive it directly. Loop thread only.

#include <deque>
#include <functional>
#include <map>
#include <string>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/control/peer.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd {

// One call as a handler sees it.
struct Request {
  const rpc::Json& params;
  const Peer& peer;
  // File descriptors the client sent (SCM_RIGHTS) on this connection and
  // that no request has taken yet; a handler that expects one pops it.
  std::deque<Fd>* fds;
};

using Reply = std::function<void(Result<rpc::Json>)>;
using Handler = std::function<Result<rpc::Json>(const Request&)>;
using AsyncHandler = std::function<void(const Request&, Reply)>;

class Dispatcher {
 public:
  // Batches longer than this are refused as a whole.
  static constexpr size_t kMaxBatch = 1000;

  explicit Dispatcher(const AccessPolicy* policy) : policy_(policy) {}
  // REQUIRES: `name` not registered yet.
  void Register(std::string name, Right needed, Handler handler);
  void RegisterAsync(std::string name, Right needed, AsyncHandler handler);

  // Handles one line; calls `respond` exactly once, possibly after
  // HandleLine returned, with the framed response ("...\n") or with ""
  // when none is due (notifications).
  void HandleLine(const std::string& line, const Peer& peer,
                  std::deque<Fd>* fds,
                  std::function<void(std::string)> respond);
  // The synchronous form for tests: returns the framed response or "".
  // REQUIRES: every method the line calls answers at once.
  std::string HandleLine(const std::string& line, const Peer& peer);

 private:
  // Calls `done` with the response object, or null for a notification.
  void HandleOne(const rpc::Json& request, const Peer& peer,
                 std::deque<Fd>* fds, std::function<void(rpc::Json)> done);

  std::map<std::string, std::pair<Right, AsyncHandler>, std::less<>> methods_;
  const AccessPolicy* policy_;
};

}  // namespace relsupd
