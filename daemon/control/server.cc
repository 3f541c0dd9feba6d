#include "daemon/control/server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

#include "daemon/protocol/jsonrpc.h"

namespace relsupd {

struct ControlServer::Connection {
  ControlServer* server = nullptr;
  Fd fd;
  UvHandle<uv_poll_t> poll;
  UvHandle<uv_timer_t> idle;
  rpc::LineBuffer input;
  std::deque<Fd> fds;  // passed with SCM_RIGHTS, not yet taken
  std::string output;  // framed responses not yet written
  size_t output_off = 0;
  Peer peer;
  int in_flight = 0;     // requests whose answer is still to come
  bool reading = true;   // false once the client sent EOF or was refused
  int poll_events = 0;
  explicit Connection(size_t limit) : input(limit) {}
  size_t pending() const { return output.size() - output_off; }
};

ControlServer::ControlServer(uv_loop_t* loop, Dispatcher* dispatcher,
                             const AccessPolicy* policy,
                             size_t max_request_bytes)
    : loop_(loop),
      dispatcher_(dispatcher),
      policy_(policy),
      max_request_bytes_(max_request_bytes) {}

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
  RETURN_IF_ERROR(SetSocketAccess(mode, group));
  if (::listen(listen_fd_.get(), 128) != 0)
    return Status::FromErrno("cannot listen on '" + path + "'", errno);
  uv_poll_init(loop_, listener_.get(), listen_fd_.get());
  listener_->data = this;
  uv_timer_init(loop_, resume_accept_.get());
  resume_accept_->data = this;
  uv_poll_start(listener_.get(), UV_READABLE, &ControlServer::OnListenerReady);
  return Status::Ok();
}

Status ControlServer::SetSocketAccess(mode_t mode, std::optional<gid_t> group) {
  if (group && ::chown(path_.c_str(), static_cast<uid_t>(-1), *group) != 0)
    return Status::FromErrno("cannot set the group of '" + path_ + "'", errno);
  if (::chmod(path_.c_str(), mode) != 0)
    return Status::FromErrno("cannot set the mode of '" + path_ + "'", errno);
  return Status::Ok();
}

void ControlServer::Close() {
  connections_.clear();
  resume_accept_.Close();
  listener_.Close();  // before the fd it watches is closed
  listen_fd_.Reset();
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
    if (connections_.size() >= kMaxConnections) {
      spdlog::warn("Control socket has {} connections, refusing one more",
                   connections_.size());
      continue;  // `fd` closes here.
    }
    auto peer = PeerOf(fd.get());
    if (!peer.ok()) {
      spdlog::warn("{}, dropping the connection", peer.status().message());
      continue;
    }
    auto c = std::make_shared<Connection>(max_request_bytes_);
    c->server = this;
    c->fd = std::move(fd);
    c->peer = *peer;
    c->peer.right = RightOf(c->peer, *policy_);
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
  if (self == nullptr || !self->listen_fd_.valid()) return;
  uv_poll_start(self->listener_.get(), UV_READABLE, &ControlServer::OnListenerReady);
  self->Accept();
}

void ControlServer::UpdatePoll(Connection* c) {
  int events = (c->reading ? UV_READABLE : 0) | (c->pending() ? UV_WRITABLE : 0);
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
    iovec iov{read_buf_, sizeof read_buf_};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    ssize_t n = ::recvmsg(c->fd.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
        c->fds.emplace_back(fd);
      }
    }
    if (c->fds.size() > kMaxPassedFds || (msg.msg_flags & MSG_CTRUNC)) {
      spdlog::warn("Client uid {} passed more than {} files, closing",
                   c->peer.uid, kMaxPassedFds);
      return Drop(c);
    }
    if (n <= 0) {
      // EOF or error: answer a last request sent without its newline, then
      // close once every answer is written.
      if (n == 0 && c->input.buffered() > 0) c->input.Append("\n");
      c->reading = false;
      HandleInput(c);
      break;
    }
    uv_timer_start(c->idle.get(), &ControlServer::OnIdle, kIdleTimeoutMs, 0);
    c->input.Append(std::string_view(read_buf_, static_cast<size_t>(n)));
    HandleInput(c);
    if (connections_.count(c) == 0) return;
  }
  if (connections_.count(c) == 0) return;
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
        if (connections_.count(c) != 0) c->fds.clear();
        if (connections_.count(c) == 0) return;
        break;
      }
    }
  }
}

void ControlServer::Send(Connection* c, std::string data) {
  if (c->pending() + data.size() > kMaxPendingWriteBytes) {
    spdlog::warn("Client uid {} does not read its responses, closing",
                 c->peer.uid);
    return Drop(c);
  }
  if (c->output_off > 0 && c->output_off == c->output.size()) {
    c->output.clear();
    c->output_off = 0;
  }
  c->output += data;
  Flush(c);
}

void ControlServer::Flush(Connection* c) {
  while (c->pending() > 0) {
    ssize_t n = ::send(c->fd.get(), c->output.data() + c->output_off,
                       c->pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return Drop(c);  // the client went away
    c->output_off += static_cast<size_t>(n);
  }
  if (c->pending() == 0) {
    c->output.clear();
    c->output_off = 0;
    if (!c->reading && c->in_flight == 0) return Drop(c);
  }
  UpdatePoll(c);
}

void ControlServer::Drop(Connection* c) { connections_.erase(c); }

}  // namespace relsupd
