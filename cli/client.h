#pragma once
// Client: a blocking JSON-RPC client of the daemon's control socket.
//
// Used by `relsupd ctl`, the tests and the benchmarks. One request at a
// time; not thread-safe.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd {

// The socket `relsupd ctl` uses without --socket: $RELSUPD_SOCKET, else
// /run/relsupd/relsupd.sock.
std::string DefaultSocketPath();

// Sends `data` on a connected Unix socket with `fds` riding on its first
// byte (SCM_RIGHTS, by SendFds), then the rest: the control protocol's way
// of passing files with a request. The error keeps sendmsg's errno.
// REQUIRES: `data` not empty.
Status SendWithFds(int socket, std::string_view data, const std::vector<int>& fds);

class Client {
 public:
  // kUnavailable (naming `path`) when nothing listens there.
  static Result<Client> Connect(const std::string& path);

  // Sends one request and waits for its response. A JSON-RPC error comes
  // back as a Status built by rpc::StatusFromError; a broken connection
  // as kUnavailable.
  Result<rpc::Json> Call(std::string_view method,
                         rpc::Json params = rpc::Json::object());
  // Like Call; while it waits, `tick` runs about every 100 ms (e.g. to poll
  // progress on another connection).
  Result<rpc::Json> CallWithTick(std::string_view method, rpc::Json params,
                                 const std::function<void()>& tick);
  // Like Call, and passes `fd` along with the request (SCM_RIGHTS). While
  // it waits, `tick` runs about every 100 ms (e.g. to draw progress).
  Result<rpc::Json> CallWithFd(std::string_view method, rpc::Json params,
                               int fd, const std::function<void()>& tick);
  // Like Call, but returns the response line unparsed, for a caller that
  // reads it faster than a DOM can (ctl ps, cli/ps_rows.h); `*id` is the
  // request's id. ParseResponse does the rest of Call with it.
  Result<std::string> CallForLine(std::string_view method, rpc::Json params, int64_t* id);
  // The result of a response line to the request `id`, as Call returns it.
  Result<rpc::Json> ParseResponse(const std::string& line, int64_t id);
  // Sends `line` as is and returns the next line received (for tests).
  Result<std::string> RoundTrip(std::string_view line);
  int fd() const { return fd_.get(); }

 private:
  Client(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Result<std::string> ReadLine(const std::function<void()>& tick = {});
  // A request that could not be written: the daemon's refusal when it
  // left one (a line with an error) before it closed, else `write`.
  Status WriteFailed(const Status& write) const;

  Fd fd_;
  std::string path_;
  std::string buf_;
  int64_t next_id_ = 1;
};

}  // namespace relsupd
