#pragma once
// ControlServer: the daemon's Unix socket, one JSON-RPC message per line.
//
// Owns the listening socket and every client connection, all non-blocking
// fds watched with uv_poll, so reads use recvmsg(MSG_CMSG_CLOEXEC) and a
// client may pass open files (SCM_RIGHTS) along with a request. Nothing a
// client does blocks the loop, so a silent or slow client delays nobody.
// Each connection is bounded: a request longer than max_request_bytes gets
// an error and the connection is closed; a client silent for kIdleTimeoutMs
// is dropped unless a request of its is still running; a client that does
// not read its responses is dropped once kMaxPendingWriteBytes are queued;
// at most kMaxPassedFds files wait per connection and kMaxConnections
// connections are open. Loop thread only.

#include <uv.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/peer.h"

namespace relsupd {

class ControlServer {
 public:
  static constexpr size_t kMaxConnections = 1024;
  static constexpr uint64_t kIdleTimeoutMs = 5 * 60 * 1000;
  static constexpr size_t kMaxPendingWriteBytes = 16 << 20;
  static constexpr size_t kMaxPassedFds = 8;

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
  static void OnListenerReady(uv_poll_t* poll, int status, int events);
  static void OnResumeAccept(uv_timer_t* timer);
  // Out of fds: stop accepting for kAcceptPauseMs instead of spinning on a
  // listener that stays readable.
  void PauseAccepting(int err);
  static constexpr uint64_t kAcceptPauseMs = 100;
  static void OnConnectionReady(uv_poll_t* poll, int status, int events);
  static void OnIdle(uv_timer_t* timer);
  void Accept();
  void Read(Connection* c);
  void HandleInput(Connection* c);
  void Send(Connection* c, std::string data);
  void Flush(Connection* c);
  void UpdatePoll(Connection* c);
  void Drop(Connection* c);

  uv_loop_t* loop_;
  Dispatcher* dispatcher_;
  const AccessPolicy* policy_;
  size_t max_request_bytes_;
  std::string path_;
  Fd listen_fd_;
  UvHandle<uv_poll_t> listener_;
  UvHandle<uv_timer_t> resume_accept_;
  int64_t last_accept_warning_ms_ = -1'000'000;
  std::map<Connection*, std::shared_ptr<Connection>> connections_;
  char read_buf_[64 * 1024];
};

}  // namespace relsupd
