#pragma once
// JSON-RPC 2.0 framing for the control socket: one JSON message per line.
//
// Shared by the daemon's control server and the `relsupd ctl` client. Pure
// functions and value types; any thread.

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace relsupd::rpc {

using Json = nlohmann::json;

// Error codes: the JSON-RPC 2.0 standard ones, then relsupd's own from -32001.
enum ErrorCode : int {
  kParseError = -32700,
  kInvalidRequest = -32600,
  kMethodNotFound = -32601,
  kInvalidParams = -32602,
  kInternalError = -32603,
  kServerError = -32000,
  kNotFound = -32001,
  kAlreadyExists = -32002,
  kPermissionDenied = -32003,
  kFailedPrecondition = -32004,
  kBusy = -32005,
  kRequestTooLarge = -32006,
  kCorruption = -32007,
};

// The JSON-RPC error code that reports `status` to a client.
int CodeForStatus(const Status& status);
// The Status a client builds from an error object it received.
Status StatusFromError(const Json& error);

Json MakeRequest(const Json& id, std::string_view method, Json params);
Json MakeResult(const Json& id, Json result);
Json MakeError(const Json& id, int code, std::string_view message);

// Serialises one message as a line. Invalid UTF-8 is replaced, never thrown.
std::string Frame(const Json& message);

// Splits a byte stream into lines, refusing a line longer than `limit`.
// REQUIRES: limit > 0.
class LineBuffer {
 public:
  explicit LineBuffer(size_t limit) : limit_(limit) {}
  void set_limit(size_t limit) { limit_ = limit; }
  void Append(std::string_view data) { buf_.append(data); }
  enum class Next { kLine, kNeedMore, kTooLong };
  // Moves the next complete line (without '\n') into `line`.
  Next Pop(std::string* line);
  size_t buffered() const { return buf_.size() - start_; }

 private:
  std::string buf_;
  size_t start_ = 0;
  size_t limit_;
};

}  // namespace relsupd::rpc
