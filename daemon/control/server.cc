#include "daemon/control/server.h"

#include <spdlog/spdlog.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include "daemon/base/fd_passing.h"
#include "daemon/control/server_connection.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd {


ControlServer::ControlServer(uv_loop_t* loop, Dispatcher* dispatcher,
                             const AccessPolicy* policy, FdCloser* closer,
                             size_t max_request_bytes)
    : loop_(loop),
      dispatcher_(dispatcher),
      policy_(policy),
      closer_(closer),
      max_request_bytes_(max_request_bytes) {}

void ControlServer::SetLimitsFromRlimit() {
  // Connections may use a quarter of the fd table: the rest is for the
  // apps' pipes and sockets, the closer's queue and the ledger.
  rlimit nofile{};
  size_t quarter = kMaxConnections;
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY)
    quarter = static_cast<size_t>(nofile.rlim_cur / 4);
  max_connections_ = std::clamp<size_t>(quarter, 16, kMaxConnections);
  reserved_for_change_ = std::min(kReservedForChange, max_connections_ / 4);
  max_per_uid_ = std::min(kMaxConnectionsPerUid,
                          max_connections_ - reserved_for_change_);
  if (max_connections_ < kMaxConnections)
    spdlog::warn("The fd limit ({}) allows {} control connections (of {}), "
                 "{} kept for the change right",
                 nofile.rlim_cur, max_connections_, kMaxConnections,
                 reserved_for_change_);
}

ControlServer::~ControlServer() { Close(); }

Status ControlServer::Listen(const std::string& path, mode_t mode,
                             std::optional<gid_t> group) {
  path_ = path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return InvalidArgument("control socket path '" + path + "' is longer than " +
                           std::to_string(sizeof addr.sun_path - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno("cannot remove stale socket '" + path + "'", errno);
  listen_fd_ = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_fd_.valid()) return Status::FromErrno("cannot create socket", errno);
  // Create the socket owner-only, then widen it to `mode`: no moment exists
  // when it is more open than configured.
  mode_t old_umask = ::umask(0177);
  int rc = ::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old_umask);
  if (rc != 0)
    return Status::FromErrno("cannot bind control socket '" + path + "'", err);
  RememberPath();
  RETURN_IF_ERROR(SetSocketAccess(mode, group));
  if (::listen(listen_fd_.get(), 128) != 0)
    return Status::FromErrno("cannot listen on '" + path + "'", errno);
  InitHandles();
  return Status::Ok();
}

void ControlServer::InitHandles() {
  SetLimitsFromRlimit();
  uv_poll_init(loop_, listener_.get(), listen_fd_.get());
  listener_->data = this;
  uv_timer_init(loop_, resume_accept_.get());
  resume_accept_->data = this;
  uv_timer_init(loop_, fd_retry_.get());
  fd_retry_->data = this;
  uv_poll_start(listener_.get(), UV_READABLE, &ControlServer::OnListenerReady);
}

Status ControlServer::SetSocketAccess(mode_t mode, std::optional<gid_t> group) {
  if (group && ::chown(path_.c_str(), static_cast<uid_t>(-1), *group) != 0)
    return Status::FromErrno("cannot set the group of '" + path_ + "'", errno);
  if (::chmod(path_.c_str(), mode) != 0)
    return Status::FromErrno("cannot set the mode of '" + path_ + "'", errno);
  return Status::Ok();
}

void ControlServer::Close() {
  while (!connections_.empty()) Drop(connections_.begin()->first);
  fd_retry_.Close();
  resume_accept_.Close();
  listener_.Close();  // before the fd it watches is closed
  listen_fd_.Reset();
}

void ControlServer::RememberPath() {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    path_dev_ = st.st_dev;
    path_ino_ = st.st_ino;
  }
}

void ControlServer::RemovePath() {
  struct stat st {};
  if (path_dev_ == 0 || ::lstat(path_.c_str(), &st) != 0 || st.st_dev != path_dev_ ||
      st.st_ino != path_ino_)
    return;
  if (::unlink(path_.c_str()) != 0)
    spdlog::warn("Cannot remove the control socket '{}': {}", path_, std::strerror(errno));
  path_dev_ = 0;
}

void ControlServer::OnListenerReady(uv_poll_t* poll, int status, int) {
  auto* self = static_cast<ControlServer*>(poll->data);
  if (self == nullptr) return;
  if (status < 0) {
    spdlog::warn("Control socket poll failed: {}, ignoring", uv_strerror(status));
    return;
  }
  self->Accept();
}

void ControlServer::Accept() {
  for (;;) {
    Fd fd(::accept4(listen_fd_.get(), nullptr, nullptr,
                    SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd.valid()) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        return PauseAccepting(errno);
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        spdlog::warn("Control socket accept failed: {}, ignoring",
                     std::strerror(errno));
      return;
    }
    TakeConnection(std::move(fd));
  }
}

void ControlServer::TakeConnection(Fd fd) {
  if (!listen_fd_.valid()) return CloseSocket(std::move(fd));  // closed: stopping
  // A refused socket is closed unread (CloseSocket: off the loop when the
  // peer sent something before we accepted, which may carry files).
  auto peer = PeerOf(fd.get());
  if (!peer.ok()) {
    spdlog::warn("{}, dropping the connection", peer.status().message());
    return CloseSocket(std::move(fd));
  }
  peer->right = Right::kNone;
  if (connections_.size() >= max_connections_) {
    LogRefusal(*peer, "the control socket is full");
    return Refuse(std::move(fd), "relsupd's control socket has its most connections open (" +
                                     std::to_string(max_connections_) + "); retry later");
  }
  peer->right = RightOf(*peer, *policy_);
  if (std::string why; !Admit(*peer, &why)) return Refuse(std::move(fd), why);
  AddConnection(std::move(fd), *peer);
}

void ControlServer::Refuse(Fd fd, const std::string& why) {
  // Said to the peer before the close, so that its CLI prints why instead
  // of "Connection reset by peer": one line into an empty send buffer, not
  // waited for (MSG_DONTWAIT), lost if it does not fit.
  const std::string line = rpc::Frame(rpc::MakeError(nullptr, rpc::kBusy, why));
  (void)::send(fd.get(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  CloseSocket(std::move(fd));
}

ControlServer::Connection* ControlServer::AddConnection(Fd fd, const Peer& peer) {
  auto c = std::make_shared<Connection>(max_request_bytes_);
  c->server = this;
  c->fd = std::move(fd);
  c->peer = peer;
  c->peer.connection_id = next_connection_id_++;
  if (!c->change()) {
    ++not_change_connections_;
    ++per_uid_[c->peer.uid];
  }
  uv_poll_init(loop_, c->poll.get(), c->fd.get());
  c->poll->data = c.get();
  uv_timer_init(loop_, c->idle.get());
  c->idle->data = c.get();
  uv_timer_start(c->idle.get(), &ControlServer::OnIdle, kIdleTimeoutMs, 0);
  spdlog::debug("Control connection from pid {} uid {} ({}), {} right",
                c->peer.pid, c->peer.uid, c->peer.name, RightName(c->peer.right));
  Connection* raw = c.get();
  connections_.emplace(raw, std::move(c));
  UpdatePoll(raw);
  return raw;
}

bool ControlServer::Admit(const Peer& peer, std::string* why) {
  if (peer.right == Right::kChange) return true;
  if (not_change_connections_ >= max_connections_ - reserved_for_change_) {
    LogRefusal(peer, "the connections without the change right are all taken");
    *why = "the control socket's connections without the change right are all taken (" +
           std::to_string(max_connections_ - reserved_for_change_) + "); retry later";
    return false;
  }
  auto it = per_uid_.find(peer.uid);
  if (it != per_uid_.end() && it->second >= max_per_uid_) {
    LogRefusal(peer, "the uid has its most connections open");
    *why = "uid " + std::to_string(peer.uid) + " has its most connections to relsupd open (" +
           std::to_string(max_per_uid_) + "); close some and retry";
    return false;
  }
  return true;
}

void ControlServer::LogRefusal(const Peer& peer, const char* why) {
  // A peer refused at accept reconnects at once: one line a minute.
  ++refused_since_log_;
  const int64_t now = static_cast<int64_t>(uv_now(loop_));
  if (now - last_refusal_log_ms_ < 60'000) return;
  last_refusal_log_ms_ = now;
  spdlog::warn("Control socket refused a connection from uid {} ({}): {} "
               "({} connections, {} without the change right, at most {} "
               "and {} per uid; {} refused since the last such line)",
               peer.uid, peer.name, why, connections_.size(),
               not_change_connections_, max_connections_ - reserved_for_change_,
               max_per_uid_, refused_since_log_);
  refused_since_log_ = 0;
}

bool ControlServer::FdRoomFor(const Connection* c) const {
  size_t need = FdCloser::kMaxFdsPerMessage +
                (c->change() ? 0 : kFdRoomKeptForChange);
  return closer_->room() >= need;
}

void ControlServer::PauseForFds(Connection* c) {
  c->fd_paused = true;
  if (!fd_pause_logged_) {
    fd_pause_logged_ = true;
    spdlog::warn("Passed files wait to be closed ({} queued, a close() "
                 "running for {} ms): pausing reads from clients that could "
                 "pass more",
                 closer_->pending(), closer_->stuck_ms());
  }
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(fd_retry_.get())))
    uv_timer_start(fd_retry_.get(), &ControlServer::OnFdRetry, kFdPauseRetryMs, 0);
}

void ControlServer::OnFdRetry(uv_timer_t* timer) {
  auto* self = static_cast<ControlServer*>(timer->data);
  if (self == nullptr) return;
  bool still = false;
  for (auto& [raw, conn] : self->connections_) {
    if (!raw->fd_paused) continue;
    if (self->FdRoomFor(raw)) {
      raw->fd_paused = false;
      self->UpdatePoll(raw);  // level-triggered: readable data wakes it
    } else {
      still = true;
    }
  }
  if (still) {
    uv_timer_start(timer, &ControlServer::OnFdRetry, kFdPauseRetryMs, 0);
  } else if (self->fd_pause_logged_) {
    self->fd_pause_logged_ = false;
    spdlog::info("Passed files are being closed again; reads resumed");
  }
}

void ControlServer::PauseAccepting(int err) {
  uv_poll_stop(listener_.get());
  uv_timer_start(resume_accept_.get(), &ControlServer::OnResumeAccept, kAcceptPauseMs, 0);
  // One warning a minute at most: the condition can last.
  const int64_t now = static_cast<int64_t>(uv_now(loop_));
  if (now - last_accept_warning_ms_ >= 60'000) {
    last_accept_warning_ms_ = now;
    spdlog::warn("Control socket cannot accept: {}; pausing accepts for {} ms",
                 std::strerror(err), kAcceptPauseMs);
  }
}

void ControlServer::OnResumeAccept(uv_timer_t* timer) {
  auto* self = static_cast<ControlServer*>(timer->data);
  if (self == nullptr || !self->listen_fd_.valid() || self->frozen_) return;
  uv_poll_start(self->listener_.get(), UV_READABLE, &ControlServer::OnListenerReady);
  self->Accept();
}

void ControlServer::CloseSocket(Fd fd) {
  // Closing a Unix socket with unread messages releases the files passed
  // with them, in this thread, and such a close() can block. Nothing more
  // can arrive once we shut reading down (the sender checks under the
  // socket's lock); an empty queue then means there is nothing to release.
  ::shutdown(fd.get(), SHUT_RD);
  int unread = 0;
  if (::ioctl(fd.get(), SIOCINQ, &unread) != 0 || unread > 0)
    closer_->Close(std::move(fd));
  // else `fd` closes here, quickly.
}

// Whether the peer of connected Unix stream socket `fd` closed it
// entirely: poll(2) says POLLHUP once both directions are shut down, and
// only then (a peer's shutdown(SHUT_WR) gives POLLRDHUP alone).
bool ControlServer::PeerClosed(int fd) {
  struct pollfd p = {fd, POLLOUT, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) != 0;
}

void ControlServer::UpdatePoll(Connection* c) {
  if (c->dropped) return;
  int events = (c->reading && !c->fd_paused && !frozen_ ? UV_READABLE : 0) |
               (c->pending() ? UV_WRITABLE : 0);
  if (events == c->poll_events) return;
  c->poll_events = events;
  if (events == 0)
    uv_poll_stop(c->poll.get());
  else
    uv_poll_start(c->poll.get(), events, &ControlServer::OnConnectionReady);
}

void ControlServer::OnIdle(uv_timer_t* timer) {
  auto* c = static_cast<Connection*>(timer->data);
  if (c == nullptr) return;
  if (c->in_flight > 0) {  // waiting on us, not on the client
    uv_timer_start(timer, &ControlServer::OnIdle, kIdleTimeoutMs, 0);
    return;
  }
  spdlog::debug("Control connection from uid {} idle too long, closing",
                c->peer.uid);
  c->server->Drop(c);
}

void ControlServer::OnConnectionReady(uv_poll_t* poll, int status, int events) {
  auto* c = static_cast<Connection*>(poll->data);
  if (c == nullptr) return;
  ControlServer* self = c->server;
  if (status < 0) return self->Drop(c);
  // Hold the connection: handlers may drop it while we are still here.
  auto it = self->connections_.find(c);
  if (it == self->connections_.end()) return;
  std::shared_ptr<Connection> hold = it->second;
  if (events & UV_WRITABLE) self->Flush(c);
  if ((events & UV_READABLE) && self->connections_.count(c)) self->Read(c);
}

void ControlServer::Read(Connection* c) {
  for (int rounds = 0; rounds < 16 && c->reading; ++rounds) {
    if (!FdRoomFor(c)) {
      PauseForFds(c);
      break;
    }
    // Room for the most fds one message can carry (and no credentials:
    // SO_PASSCRED is off), so the kernel never has to drop, and close in
    // this thread, fds that did not fit (MSG_CTRUNC). What the helper
    // refuses goes to the closer thread.
    std::vector<Fd> passed;
    Result<ReceivedFds> got =
        ReceiveFds(c->fd.get(), read_buf_, MSG_DONTWAIT,
                   FdCloser::kMaxFdsPerMessage, &passed, closer_);
    if (!got.ok() && got.status().error_number() == EAGAIN) break;
    for (Fd& fd : passed) c->fds.push_back(std::move(fd));
    if (got.ok() && got->truncated) {
      spdlog::warn("Client uid {} sent more control data than {} files, closing",
                   c->peer.uid, FdCloser::kMaxFdsPerMessage);
      return Drop(c);
    }
    if (c->fds.size() > kMaxPassedFds) {
      spdlog::warn("Client uid {} passed {} files (at most {} may wait), closing",
                   c->peer.uid, c->fds.size(), kMaxPassedFds);
      return Drop(c);
    }
    // An error other than EAGAIN ends the reading as EOF does.
    const ssize_t n = got.ok() ? static_cast<ssize_t>(got->bytes) : -1;
    if (n <= 0) {
      // EOF or error: answer a last request sent without its newline, then
      // close once every answer is written.
      if (n == 0 && c->input.buffered() > 0) c->input.Append("\n");
      c->reading = false;
      HandleInput(c);
      // A client that closed its socket (not just its sending half, as
      // `printf ... | nc -U` does and still reads) can read no answer:
      // its requests still in flight (a parked `logs -f`) are given up
      // now, not held, with their places in the limits, until they end.
      if (connections_.count(c) != 0 && c->in_flight > 0 && PeerClosed(c->fd.get()))
        return Drop(c);
      break;
    }
    uv_timer_start(c->idle.get(), &ControlServer::OnIdle, kIdleTimeoutMs, 0);
    if (!c->change() &&
        input_read_only_ - c->input_counted + c->input.buffered() +
                static_cast<size_t>(n) > kMaxInputBytesReadOnly) {
      if (!input_cap_logged_) {
        input_cap_logged_ = true;
        spdlog::warn("Unfinished requests of peers without the change right "
                     "reach the daemon's cap ({} bytes): closing each such "
                     "connection that sends more, starting with uid {}",
                     kMaxInputBytesReadOnly, c->peer.uid);
      }
      return Drop(c);
    }
    c->input.Append(std::string_view(read_buf_, static_cast<size_t>(n)));
    HandleInput(c);
    if (connections_.count(c) == 0) return;
    CountInput(c);
  }
  if (connections_.count(c) == 0) return;
  CountInput(c);
  if (!c->reading && c->in_flight == 0 && c->pending() == 0) return Drop(c);
  UpdatePoll(c);
}

void ControlServer::HandleInput(Connection* c) {
  c->input.set_limit(max_request_bytes_);
  std::string line;
  for (;;) {
    switch (c->input.Pop(&line)) {
      case rpc::LineBuffer::Next::kNeedMore:
        return;
      case rpc::LineBuffer::Next::kTooLong:
        spdlog::warn("Request from uid {} exceeds max_request_bytes ({}), closing",
                     c->peer.uid, max_request_bytes_);
        c->reading = false;
        Send(c, rpc::Frame(rpc::MakeError(
                    nullptr, rpc::kRequestTooLarge,
                    "request exceeds max_request_bytes (" +
                        std::to_string(max_request_bytes_) + " bytes)")));
        return;
      case rpc::LineBuffer::Next::kLine: {
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        ++c->in_flight;
        std::weak_ptr<Connection> weak = connections_[c];
        // Files ride on the first byte of their request, so by now the
        // ones sent with this line are queued; whatever the handler did
        // not take is closed after it, never handed to a later request.
        dispatcher_->HandleLine(line, c->peer, &c->fds,
                                [this, weak](std::string response) {
                                  auto conn = weak.lock();
                                  if (!conn) return;  // the client left
                                  --conn->in_flight;
                                  if (!response.empty())
                                    Send(conn.get(), std::move(response));
                                  else if (!conn->reading && conn->in_flight == 0 &&
                                           conn->pending() == 0)
                                    Drop(conn.get());
                                });
        if (connections_.count(c) == 0) return;
        closer_->CloseAll(&c->fds);
        break;
      }
    }
  }
}

void ControlServer::Send(Connection* c, std::string data) {
  if (c->dropped) return;
  size_t off = 0;
  if (c->pending() == 0) {
    // Straight to the socket: only what it does not take waits.
    for (;;) {
      ssize_t n = ::send(c->fd.get(), data.data() + off, data.size() - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) return Drop(c);  // the client went away
      off += static_cast<size_t>(n);
      if (off == data.size()) break;
    }
  }
  const size_t rest = data.size() - off;
  if (rest == 0) {
    if (!c->reading && c->in_flight == 0) return Drop(c);
    return UpdatePoll(c);
  }
  if (c->pending() + rest > kMaxPendingWriteBytes) {
    spdlog::warn("Client uid {} does not read its responses ({} bytes "
                 "waiting, at most {}), closing",
                 c->peer.uid, c->pending() + rest, kMaxPendingWriteBytes);
    return Drop(c);
  }
  const bool over =
      c->change() ? pending_total_ + rest > kMaxPendingWriteBytesTotal
                  : pending_read_only_ + rest > kMaxPendingWriteBytesReadOnly;
  if (over) {
    if (!output_cap_logged_) {
      output_cap_logged_ = true;
      spdlog::warn("Replies waiting for clients that do not read reach the "
                   "daemon's cap ({} bytes, {} of them for peers without the "
                   "change right; at most {} and {}): closing each connection "
                   "whose reply would pass it, starting with uid {}",
                   pending_total_, pending_read_only_, kMaxPendingWriteBytesTotal,
                   kMaxPendingWriteBytesReadOnly, c->peer.uid);
    }
    return Drop(c);
  }
  // Kept at its size: a serialized reply's capacity can be twice that.
  if (off > 0 || data.capacity() > data.size() + data.size() / 8)
    data = data.substr(off);
  c->output.push_back(std::move(data));
  CountPending(c, static_cast<int64_t>(rest));
  UpdatePoll(c);
}

void ControlServer::CountInput(Connection* c) {
  // A buffer with no unfinished line is replaced, not kept at the capacity
  // of the largest request it ever held.
  // (Swapped, not move-assigned: a string moved from an empty one keeps
  // its own allocation.)
  if (c->input.buffered() == 0) {
    rpc::LineBuffer fresh(max_request_bytes_);
    std::swap(c->input, fresh);
  }
  if (c->change()) return;
  input_read_only_ = input_read_only_ - c->input_counted + c->input.buffered();
  c->input_counted = c->input.buffered();
  if (input_cap_logged_ && input_read_only_ < kMaxInputBytesReadOnly / 2)
    input_cap_logged_ = false;
}

void ControlServer::CountPending(Connection* c, int64_t delta) {
  auto apply = [delta](size_t& v) { v = static_cast<size_t>(static_cast<int64_t>(v) + delta); };
  apply(c->pending_bytes);
  apply(pending_total_);
  if (!c->change()) apply(pending_read_only_);
  if (output_cap_logged_ && pending_read_only_ < kMaxPendingWriteBytesReadOnly / 2 &&
      pending_total_ < kMaxPendingWriteBytesTotal / 2) {
    output_cap_logged_ = false;
    spdlog::info("Replies waiting for clients are below half the daemon's cap again");
  }
}

void ControlServer::Flush(Connection* c) {
  if (c->dropped) return;
  while (!c->output.empty()) {
    const std::string& chunk = c->output.front();
    ssize_t n = ::send(c->fd.get(), chunk.data() + c->output_off,
                       chunk.size() - c->output_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return Drop(c);  // the client went away
    c->output_off += static_cast<size_t>(n);
    CountPending(c, -n);
    if (c->output_off == chunk.size()) {
      c->output.pop_front();
      c->output_off = 0;
    }
  }
  if (c->pending() == 0 && !c->reading && c->in_flight == 0) return Drop(c);
  UpdatePoll(c);
}

void ControlServer::Drop(Connection* c, bool shared) {
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  CountPending(c, -static_cast<int64_t>(c->pending()));
  c->output.clear();
  input_read_only_ -= c->input_counted;
  c->input_counted = 0;
  // Files no handler took are closed off the loop: a close() can block.
  closer_->CloseAll(&c->fds);
  // The poll handle first: uv_close removes the fd from epoll now, before
  // the closer thread may close it and the number be reused.
  c->dropped = true;
  c->poll.Close();
  c->idle.Close();
  if (shared)
    c->fd.Reset();
  else
    CloseSocket(std::move(c->fd));
  if (!c->change()) {
    --not_change_connections_;
    auto u = per_uid_.find(c->peer.uid);
    if (u != per_uid_.end() && --u->second == 0) per_uid_.erase(u);
  }
  const uint64_t id = c->peer.connection_id;
  connections_.erase(it);
  if (on_drop_) on_drop_(id);
}

}  // namespace relsupd
