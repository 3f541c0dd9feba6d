#pragma once
// ControlServer: the daemon's Unix socket, one JSON-RPC message per line.
//
// Owns the listening socket and every client connection, all non-blocking
// fds watched with uv_poll, so reads use recvmsg(MSG_CMSG_CLOEXEC) and a
// client may pass open files (SCM_RIGHTS) along with a request. Nothing a
// client does blocks the loop, so a silent or slow client delays nobody.
// Loop thread only; the FdCloser it is given closes on its own thread.
//
// Limits (every one a thing a client could otherwise grow):
// - Connections: at most max_connections() open (kMaxConnections, less
//   when the fd limit is low: a quarter of RLIMIT_NOFILE). Peers without
//   the change right (read-only and no-right peers) together hold at most
//   max_connections() - kReservedForChange of them, and each such uid at
//   most kMaxConnectionsPerUid, so a read-only user who opens every
//   connection he can still leaves root and the admin group room for
//   `activate` or `rollback`. A refused peer is closed at accept, before
//   anything is read from it; refusals are logged at most once a minute.
// - Requests: a line longer than max_request_bytes gets an error and the
//   connection is closed; a client silent for kIdleTimeoutMs is dropped
//   unless a request of its is still running. Unfinished lines of peers
//   without the change right hold at most kMaxInputBytesReadOnly together
//   (else each such connection that sends more is dropped, logged once per
//   episode): without it, 960 connections x max_request_bytes.
// - Output waiting for a client that does not read: kMaxPendingWriteBytes
//   per connection, and kMaxPendingWriteBytesTotal for all connections
//   together, of which peers without the change right may fill at most
//   kMaxPendingWriteBytesReadOnly. A reply that would pass a limit drops
//   its connection (logged once per episode for the global caps): the
//   bytes already waiting are that client's unread replies, so an error
//   line queued behind them would not reach it either, and the memory is
//   freed at once. Replies are written straight to the socket first; only
//   what the socket does not take counts as waiting.
// - Passed files: at most kMaxPassedFds wait per connection for a handler
//   to take them (a message with more drops the connection); the ones no
//   handler took, and every one left on a connection that goes away, are
//   handed to the FdCloser, never closed on the loop (a close() can block,
//   see fd_closer.h). So is a connection's own socket when unread messages
//   wait in it (closing it would release the files they carry here); a
//   socket is shut down for reading first, so nothing more arrives. The receive buffer holds SCM_MAX_FD (253) fds, so the
//   kernel never truncates and closes fds in our thread (MSG_CTRUNC). A
//   connection is read only while the closer has room for a full message
//   (FdCloser::kMaxFdsPerMessage), and for peers without the change right
//   also kFdRoomKeptForChange more: when the closer is stuck, reading from
//   them pauses (re-checked every kFdPauseRetryMs, logged once per episode)
//   and change-right peers still get through.

#include <sys/types.h>
#include <uv.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "daemon/base/fd.h"
#include "daemon/base/fd_closer.h"
#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/peer.h"

namespace relsupd {

class ControlServer {
 public:
  static constexpr size_t kMaxConnections = 1024;
  static constexpr size_t kReservedForChange = 64;
  static constexpr size_t kMaxConnectionsPerUid = 64;
  static constexpr uint64_t kIdleTimeoutMs = 5 * 60 * 1000;
  static constexpr size_t kMaxPendingWriteBytes = size_t{16} << 20;
  static constexpr size_t kMaxPendingWriteBytesTotal = size_t{256} << 20;
  static constexpr size_t kMaxPendingWriteBytesReadOnly = size_t{192} << 20;
  static constexpr size_t kMaxInputBytesReadOnly = size_t{128} << 20;
  static constexpr size_t kMaxPassedFds = 8;
  static constexpr size_t kFdRoomKeptForChange = 2 * FdCloser::kMaxFdsPerMessage;
  static constexpr uint64_t kFdPauseRetryMs = 50;

  // `dispatcher`, `policy` and `closer` must outlive the server.
  ControlServer(uv_loop_t* loop, Dispatcher* dispatcher,
                const AccessPolicy* policy, FdCloser* closer,
                size_t max_request_bytes);
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
  // Called with Peer::connection_id when a connection is dropped (its
  // client left, or the daemon closed it): what waits to answer it can go
  // (LongPolls::Forget). Must not call back into the server.
  void set_on_drop(std::function<void(uint64_t)> fn) { on_drop_ = std::move(fn); }
  size_t connection_count() const { return connections_.size(); }
  size_t max_connections() const { return max_connections_; }
  // Bytes of replies waiting for clients to read them, all connections.
  size_t pending_write_bytes() const { return pending_total_; }
  // Stops listening and drops every connection.
  void Close();
  // Removes the socket file at shutdown (not at a daemon-reexec, whose new
  // image keeps it), when the file is still the one this server bound or
  // adopted: a daemon started meanwhile on the same path keeps its own.
  void RemovePath();

  // daemon-reexec (docs/reexec.md §2.5, §4.3). Freeze: the listener is
  // no longer polled (clients wait in its backlog; the new image accepts
  // them) and no connection is read (nothing new arrives, files passed
  // along included); Thaw undoes it. DropBusyBut: drops every connection
  // but the idle ones and the one with Peer::connection_id `keep`. ConnectionFd: the socket
  // of connection `id`, or -1 when it is gone. AdoptListener: takes the
  // listening socket of a handover, bound at `path`, instead of Listen.
  // AdoptConnection: takes the requester's connection of a handover and
  // sends it `reply` (one framed line); false when it is gone.
  void Freeze();
  void Thaw();
  int listen_fd() const { return listen_fd_.get(); }
  void DropBusyBut(uint64_t keep);
  // Idle connections (nothing read, queued, running or to write) change
  // hands at a re-exec: the stand-in serves them (its copies), then this
  // image drops its own.
  std::vector<int> IdleConnectionFds() const;
  void DropIdle(bool shared);
  int ConnectionFd(uint64_t id) const;
  Status AdoptListener(Fd fd, const std::string& path);
  bool AdoptConnection(Fd fd, std::string reply);
  // An accepted connection, as if from the listener (the limits, the
  // rights, the admission): the ones the re-exec's stand-in hands back
  // unanswered (daemon/reexec/standin.h). REQUIRES: non-blocking, CLOEXEC.
  void TakeConnection(Fd fd);

 private:
  struct Connection;
  static bool Idle(const Connection& c);
  static void OnListenerReady(uv_poll_t* poll, int status, int events);
  static void OnResumeAccept(uv_timer_t* timer);
  // Out of fds: stop accepting for kAcceptPauseMs instead of spinning on a
  // listener that stays readable.
  void PauseAccepting(int err);
  static constexpr uint64_t kAcceptPauseMs = 100;
  static void OnConnectionReady(uv_poll_t* poll, int status, int events);
  static void OnIdle(uv_timer_t* timer);
  void Accept();
  // Starts watching a connection of `peer` (its right already set).
  Connection* AddConnection(Fd fd, const Peer& peer);
  void InitHandles();
  void Read(Connection* c);
  void HandleInput(Connection* c);
  void Send(Connection* c, std::string data);
  void Flush(Connection* c);
  void UpdatePoll(Connection* c);
  static bool PeerClosed(int fd);
  // `shared`: another process holds the socket too (the re-exec's
  // stand-in): only this copy closes, the socket is not shut down.
  void Drop(Connection* c, bool shared = false);
  // Closes a connection's socket, on the closer's thread when unread
  // messages (which may carry files) wait in it.
  void CloseSocket(Fd fd);
  // Whether the peer may open one more connection; logs a refusal.
  // Whether `peer` may have one more connection; if not, `*why` says so.
  bool Admit(const Peer& peer, std::string* why);
  // Closes a refused connection, telling the peer why first.
  void Refuse(Fd fd, const std::string& why);
  void LogRefusal(const Peer& peer, const char* why);
  // Whether the closer has room for what one more read of `c` may bring.
  bool FdRoomFor(const Connection* c) const;
  void PauseForFds(Connection* c);
  static void OnFdRetry(uv_timer_t* timer);
  // Adds (or, negative, removes) `delta` waiting bytes of `c`.
  void CountPending(Connection* c, int64_t delta);
  // Brings the total of unfinished requests up to date after a read.
  void CountInput(Connection* c);
  void SetLimitsFromRlimit();

  uv_loop_t* loop_;
  Dispatcher* dispatcher_;
  const AccessPolicy* policy_;
  FdCloser* closer_;
  dev_t path_dev_ = 0;  // the socket file bound or adopted; 0: unknown
  ino_t path_ino_ = 0;
  void RememberPath();
  size_t max_request_bytes_;
  std::function<void(uint64_t)> on_drop_;
  size_t max_connections_ = kMaxConnections;
  size_t reserved_for_change_ = kReservedForChange;
  size_t max_per_uid_ = kMaxConnectionsPerUid;
  size_t not_change_connections_ = 0;
  std::map<uid_t, size_t> per_uid_;  // connections of peers without change
  size_t pending_total_ = 0;
  size_t pending_read_only_ = 0;
  bool output_cap_logged_ = false;
  size_t input_read_only_ = 0;  // unfinished request bytes, read-only peers
  bool input_cap_logged_ = false;
  int64_t last_refusal_log_ms_ = -1'000'000;
  size_t refused_since_log_ = 0;
  bool fd_pause_logged_ = false;
  UvHandle<uv_timer_t> fd_retry_;
  std::string path_;
  Fd listen_fd_;
  UvHandle<uv_poll_t> listener_;
  UvHandle<uv_timer_t> resume_accept_;
  bool frozen_ = false;  // Freeze
  uint64_t next_connection_id_ = 1;
  int64_t last_accept_warning_ms_ = -1'000'000;
  std::map<Connection*, std::shared_ptr<Connection>> connections_;
  char read_buf_[64 * 1024];
};

}  // namespace relsupd
