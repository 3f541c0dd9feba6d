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
  kReplyTooLarge = -32008,
};

// Limits every message is held to, whoever sends it.
// Arrays and objects nested deeper than this are refused before parsing:
// nlohmann's copy, compare and destroy recurse once per level, so an
// unbounded depth is a stack overflow waiting for a long enough line.
inline constexpr size_t kMaxDepth = 64;
// A reply (a batch's replies together) is never longer than this; past it
// the request gets kReplyTooLarge naming the limit. Well under the control
// server's per-connection output cap, and small enough that finishing and
// sending one reply holds the loop a few ms only.
inline constexpr size_t kMaxReplyBytes = 1 << 20;

// The JSON-RPC error code that reports `status` to a client.
int CodeForStatus(const Status& status);
// The Status a client builds from an error object it received.
Status StatusFromError(const Json& error);

Json MakeRequest(const Json& id, std::string_view method, Json params);
Json MakeResult(const Json& id, Json result);
Json MakeError(const Json& id, int code, std::string_view message);

// Checks that no array or object in `text` nests deeper than `max_depth`,
// counting '[' and '{' outside strings, in one pass with O(1) memory; the
// error names the limit and the byte offset where it was passed. This is
// all the depth nlohmann's parser can build from `text`: its lexer splits
// strings exactly as this scan does (a '"' opens, a backslash escapes the
// next byte, an unescaped '"' closes), so every bracket it sees is counted
// here, and invalid JSON only stops it sooner.
Status CheckDepth(std::string_view text, size_t max_depth = kMaxDepth);
// CheckDepth, then Json::parse; never throws. kInvalidArgument with a
// message for a too-deep or invalid message.
Result<Json> ParseMessage(std::string_view text, size_t max_depth = kMaxDepth);

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
