// ControlServer's part of daemon-reexec (docs/reexec.md §2.5, §4.3): the
// input frozen for the drain, the other connections dropped, and in the new
// image the listener and the requester's connection taken over.
#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <vector>

#include "daemon/control/server.h"
#include "daemon/control/server_connection.h"

namespace relsupd {

Status ControlServer::AdoptListener(Fd fd, const std::string& path) {
  path_ = path;
  RememberPath();
  listen_fd_ = std::move(fd);
  // Blocking or not as it crossed the exec: accept4 needs it non-blocking.
  int flags = ::fcntl(listen_fd_.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listen_fd_.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return Status::FromErrno("cannot make the control socket non-blocking", errno);
  InitHandles();
  return Status::Ok();
}

bool ControlServer::AdoptConnection(Fd fd, std::string reply) {
  auto peer = PeerOf(fd.get());
  if (!peer.ok()) {
    spdlog::warn("The re-exec's requester: {}, not answered", peer.status().message());
    return false;
  }
  peer->right = RightOf(*peer, *policy_);
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  Connection* c = AddConnection(std::move(fd), *peer);
  Send(c, std::move(reply));
  return connections_.count(c) > 0;
}

void ControlServer::Freeze() {
  frozen_ = true;
  if (listener_.initialized()) uv_poll_stop(listener_.get());
  if (resume_accept_.initialized()) uv_timer_stop(resume_accept_.get());
  for (auto& [raw, conn] : connections_) UpdatePoll(raw);
}

void ControlServer::Thaw() {
  frozen_ = false;
  for (auto& [raw, conn] : connections_) UpdatePoll(raw);
  if (!listen_fd_.valid()) return;
  uv_poll_start(listener_.get(), UV_READABLE, &ControlServer::OnListenerReady);
}

int ControlServer::ConnectionFd(uint64_t id) const {
  for (const auto& [raw, conn] : connections_)
    if (raw->peer.connection_id == id && !raw->dropped) return raw->fd.get();
  return -1;
}

// Nothing read, queued, running or to write: a connection that can change
// hands between a line and the next.
bool ControlServer::Idle(const Connection& c) {
  return !c.dropped && c.reading && c.in_flight == 0 && c.input.buffered() == 0 &&
         c.fds.empty() && c.output.empty();
}

void ControlServer::DropBusyBut(uint64_t keep) {
  std::vector<Connection*> drop;
  for (auto& [raw, conn] : connections_)
    if (raw->peer.connection_id != keep && !Idle(*raw)) drop.push_back(raw);
  for (Connection* c : drop) Drop(c);
}

std::vector<int> ControlServer::IdleConnectionFds() const {
  std::vector<int> out;
  for (const auto& [raw, conn] : connections_)
    if (Idle(*raw)) out.push_back(raw->fd.get());
  return out;
}

void ControlServer::DropIdle(bool shared) {
  std::vector<Connection*> drop;
  for (auto& [raw, conn] : connections_)
    if (Idle(*raw)) drop.push_back(raw);
  for (Connection* c : drop) Drop(c, shared);
}

}  // namespace relsupd
