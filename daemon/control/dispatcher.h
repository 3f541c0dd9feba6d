#pragma once
// Dispatcher: JSON-RPC 2.0 semantics over a table of methods.
//
// Takes one received line and returns the line to send back (empty when
// nothing is due: notifications, or a batch of them). Handles parse errors,
// invalid requests, batches, unknown methods and the rights check; handlers
// see only valid params objects. Knows nothing of sockets, so unit tests
// drive it directly. Loop thread only.

#include <functional>
#include <map>
#include <string>

#include "daemon/base/status.h"
#include "daemon/control/peer.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd {

using Handler = std::function<Result<rpc::Json>(const rpc::Json& params,
                                                 const Peer& peer)>;

class Dispatcher {
 public:
  // Batches longer than this are refused as a whole.
  static constexpr size_t kMaxBatch = 1000;

  explicit Dispatcher(const AccessPolicy* policy) : policy_(policy) {}
  // REQUIRES: `name` not registered yet.
  void Register(std::string name, Right needed, Handler handler);
  // Returns the framed response ("...\n"), or "" when none is due.
  std::string HandleLine(const std::string& line, const Peer& peer);

 private:
  // Returns the response object, or null for a notification.
  rpc::Json HandleOne(const rpc::Json& request, const Peer& peer);

  struct Method {
    Right needed;
    Handler handler;
  };
  std::map<std::string, Method, std::less<>> methods_;
  const AccessPolicy* policy_;
};

}  // namespace relsupd
