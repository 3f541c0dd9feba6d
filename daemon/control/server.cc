#include "daemon/control/server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace relsupd {

struct ControlServer::Connection {
  ControlServer* server = nullptr;
  UvHandle<uv_pipe_t> pipe;
  UvHandle<uv_timer_t> idle;
  rpc::LineBuffer input;
  Peer peer;
  // Set once the connection must end: no more reads, close when the
  // queued writes are done.
  bool closing = false;
  explicit Connection(size_t limit) : input(limit) {}
};

namespace {

struct WriteReq {
  uv_write_t req;
  std::string data;
};

}  // namespace

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
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno("cannot remove stale socket '" + path + "'", errno);
  int rc = uv_pipe_init(loop_, listener_.get(), 0);
  if (rc != 0) return Internal(std::string("uv_pipe_init: ") + uv_strerror(rc));
  listener_->data = this;
  // Create the socket owner-only, then widen it to `mode`: no moment exists
  // when it is more open than configured.
  mode_t old_umask = ::umask(0177);
  rc = uv_pipe_bind(listener_.get(), path.c_str());
  ::umask(old_umask);
  if (rc != 0)
    return Status(StatusCode::kIoError, "cannot bind control socket '" + path +
                                            "': " + uv_strerror(rc));
  RETURN_IF_ERROR(SetSocketAccess(mode, group));
  rc = uv_listen(listener_.stream(), 128, &ControlServer::OnConnection);
  if (rc != 0)
    return Status(StatusCode::kIoError, "cannot listen on '" + path +
                                            "': " + uv_strerror(rc));
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
  listener_.Close();
}

void ControlServer::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<ControlServer*>(server->data);
  if (self == nullptr) return;
  if (status < 0) {
    spdlog::warn("Control socket accept failed: {}, ignoring", uv_strerror(status));
    return;
  }
  self->Accept();
}

void ControlServer::Accept() {
  auto c = std::make_unique<Connection>(max_request_bytes_);
  c->server = this;
  uv_pipe_init(loop_, c->pipe.get(), 0);
  c->pipe->data = c.get();
  if (uv_accept(listener_.stream(), c->pipe.stream()) != 0) return;
  if (connections_.size() >= kMaxConnections) {
    spdlog::warn("Control socket has {} connections, refusing one more",
                 connections_.size());
    return;  // `c` is destroyed, which closes the socket.
  }
  uv_os_fd_t fd;
  uv_fileno(c->pipe.handle(), &fd);
  auto peer = PeerOf(fd);
  if (!peer.ok()) {
    spdlog::warn("{}, dropping the connection", peer.status().message());
    return;
  }
  c->peer = *peer;
  c->peer.right = RightOf(c->peer, *policy_);
  uv_timer_init(loop_, c->idle.get());
  c->idle->data = c.get();
  uv_timer_start(c->idle.get(), &ControlServer::OnIdle, kIdleTimeoutMs, 0);
  uv_read_start(
      c->pipe.stream(),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* conn = static_cast<Connection*>(h->data);
        *buf = uv_buf_init(conn->server->read_buf_, sizeof conn->server->read_buf_);
      },
      &ControlServer::OnRead);
  spdlog::debug("Control connection from pid {} uid {} ({}), {} right",
                c->peer.pid, c->peer.uid, c->peer.name, RightName(c->peer.right));
  Connection* raw = c.get();
  connections_.emplace(raw, std::move(c));
}

void ControlServer::OnIdle(uv_timer_t* timer) {
  auto* c = static_cast<Connection*>(timer->data);
  if (c == nullptr) return;
  spdlog::debug("Control connection from uid {} idle too long, closing",
                c->peer.uid);
  c->server->Drop(c);
}

void ControlServer::OnRead(uv_stream_t* stream, ssize_t nread,
                           const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  if (c == nullptr || nread == 0) return;
  ControlServer* self = c->server;
  if (nread < 0) {
    // EOF or error: answer a last request sent without its newline, then
    // close once the answers are written.
    if (nread == UV_EOF && c->input.buffered() > 0) c->input.Append("\n");
    uv_read_stop(stream);
    c->closing = true;
    self->HandleInput(c);
    if (self->connections_.count(c) != 0 &&
        uv_stream_get_write_queue_size(stream) == 0)
      self->Drop(c);
    return;
  }
  uv_timer_start(c->idle.get(), &ControlServer::OnIdle, kIdleTimeoutMs, 0);
  c->input.Append(std::string_view(buf->base, static_cast<size_t>(nread)));
  self->HandleInput(c);
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
        uv_read_stop(c->pipe.stream());
        c->closing = true;
        Send(c, rpc::Frame(rpc::MakeError(
                    nullptr, rpc::kRequestTooLarge,
                    "request exceeds max_request_bytes (" +
                        std::to_string(max_request_bytes_) + " bytes)")));
        return;
      case rpc::LineBuffer::Next::kLine:
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        std::string response = dispatcher_->HandleLine(line, c->peer);
        if (!response.empty()) Send(c, std::move(response));
        if (connections_.count(c) == 0) return;  // dropped by Send
        break;
    }
  }
}

void ControlServer::Send(Connection* c, std::string data) {
  if (uv_stream_get_write_queue_size(c->pipe.stream()) + data.size() >
      kMaxPendingWriteBytes) {
    spdlog::warn("Client uid {} does not read its responses, closing",
                 c->peer.uid);
    Drop(c);
    return;
  }
  auto* w = new WriteReq;
  w->data = std::move(data);
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, c->pipe.stream(), &buf, 1, [](uv_write_t* req, int) {
    std::unique_ptr<WriteReq> owned(reinterpret_cast<WriteReq*>(req));
    auto* conn = static_cast<Connection*>(req->handle->data);
    if (conn == nullptr) return;  // the connection is gone
    if (conn->closing && uv_stream_get_write_queue_size(req->handle) == 0)
      conn->server->Drop(conn);
  });
  if (rc != 0) {
    delete w;
    Drop(c);
  }
}

void ControlServer::Drop(Connection* c) { connections_.erase(c); }

}  // namespace relsupd
