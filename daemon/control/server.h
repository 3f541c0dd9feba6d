#pragma once
// ControlServer: the daemon's Unix socket, one JSON-RPC message per line.
//
// Owns the listening pipe and every client connection. Reads never block
// the loop, so a silent or slow client delays nobody; each connection is
// bounded: a request longer than max_request_bytes gets an error and the
// connection is closed, a client that sends nothing for kIdleTimeoutMs is
// dropped, a client that does not read its responses is dropped once
// kMaxPendingWriteBytes are queued, and at most kMaxConnections are open.
// Loop thread only.

#include <uv.h>

#include <map>
#include <memory>
#include <string>

#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/peer.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd {

class ControlServer {
 public:
  static constexpr size_t kMaxConnections = 1024;
  static constexpr uint64_t kIdleTimeoutMs = 5 * 60 * 1000;
  static constexpr size_t kMaxPendingWriteBytes = 16 << 20;

  // `dispatcher` and `policy` must outlive the server.
  ControlServer(uv_loop_t* loop, Dispatcher* dispatcher,
                const AccessPolicy* policy, size_t max_request_bytes);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds `path` (removing a stale socket there: the caller holds the state
  // lock), sets its mode and group, and listens.
  Status Listen(const std::string& path, mode_t mode,
                std::optional<gid_t> group);
  // Re-applies mode and group to the socket file (after a config reload).
  Status SetSocketAccess(mode_t mode, std::optional<gid_t> group);
  void set_max_request_bytes(size_t n) { max_request_bytes_ = n; }
  size_t connection_count() const { return connections_.size(); }
  // Stops listening and drops every connection.
  void Close();

 private:
  struct Connection;
  static void OnConnection(uv_stream_t* server, int status);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnIdle(uv_timer_t* timer);
  void Accept();
  void HandleInput(Connection* c);
  void Send(Connection* c, std::string data);
  void Drop(Connection* c);

  uv_loop_t* loop_;
  Dispatcher* dispatcher_;
  const AccessPolicy* policy_;
  size_t max_request_bytes_;
  std::string path_;
  UvHandle<uv_pipe_t> listener_;
  std::map<Connection*, std::unique_ptr<Connection>> connections_;
  char read_buf_[64 * 1024];
};

}  // namespace relsupd
