#include "daemon/supervise/notify_socket.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

// Linux 6.16; not in older headers (Debian 12's). Only Adopt uses it.
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

namespace relsupd {

std::map<std::string, std::string> ParseNotifyMessage(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    size_t eq = line.find('=');
    if (eq != std::string_view::npos && eq > 0)
      out[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

Result<std::unique_ptr<NotifyListener>> NotifyListener::Open(
    uv_loop_t* loop, const std::string& path, FdCloser* closer,
    Callback callback) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return InvalidArgument("notify socket path '" + path + "' is too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  std::unique_ptr<NotifyListener> self(new NotifyListener());
  self->path_ = path;
  self->callback_ = std::move(callback);
  self->closer_ = closer;
  self->fd_ = Fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!self->fd_.valid()) return Status::FromErrno("notify socket", errno);
  int one = 1;
  if (::setsockopt(self->fd_.get(), SOL_SOCKET, SO_PASSCRED, &one,
                   sizeof(one)) != 0)
    return Status::FromErrno("notify socket: SO_PASSCRED", errno);
  // Big enough that a burst of READY=1 from 1,000 starting children waits
  // in the queue instead of being dropped.
  int rcvbuf = 4 << 20;
  ::setsockopt(self->fd_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
               sizeof(rcvbuf));
  ::unlink(path.c_str());
  if (::bind(self->fd_.get(), reinterpret_cast<sockaddr*>(&addr),
             sizeof(addr)) != 0)
    return Status::FromErrno("cannot bind notify socket '" + path + "'", errno);
  if (::chmod(path.c_str(), 0666) != 0)
    return Status::FromErrno("chmod '" + path + "'", errno);
  self->Watch(loop);
  return self;
}

std::unique_ptr<NotifyListener> NotifyListener::Adopt(uv_loop_t* loop,
                                                      const NotifySnapshot& snapshot,
                                                      FdCloser* closer, Callback callback) {
  std::unique_ptr<NotifyListener> self(new NotifyListener());
  self->path_ = snapshot.path;
  self->callback_ = std::move(callback);
  self->closer_ = closer;
  self->fd_ = Fd(snapshot.fd);
  // An older image set SO_PASSRIGHTS off (snapshot.refuses_fds); the
  // barrier needs fds to arrive. ENOPROTOOPT: a kernel before 6.16, where
  // the socket always took them.
  int one = 1;
  if (::setsockopt(snapshot.fd, SOL_SOCKET, SO_PASSRIGHTS, &one, sizeof(one)) != 0 &&
      errno != ENOPROTOOPT)
    spdlog::warn("notify socket: cannot let it take passed fds again (SO_PASSRIGHTS: {}): "
                 "sd_notify barriers will fail, ignoring",
                 std::strerror(errno));
  // Read as before: never block the loop on an empty socket.
  int flags = ::fcntl(snapshot.fd, F_GETFL);
  if (flags >= 0) ::fcntl(snapshot.fd, F_SETFL, flags | O_NONBLOCK);
  self->Watch(loop);
  return self;
}

void NotifyListener::Abandon() {
  retry_.Close();
  poll_.Close();
  fd_.Release();
}

void NotifyListener::Watch(uv_loop_t* loop) {
  uv_poll_init(loop, poll_.get(), fd_.get());
  poll_->data = this;
  uv_timer_init(loop, retry_.get());
  retry_->data = this;
  StartPoll();
}

void NotifyListener::StartPoll() {
  uv_poll_start(poll_.get(), UV_READABLE, [](uv_poll_t* h, int, int) {
    if (auto* s = static_cast<NotifyListener*>(h->data)) s->OnReadable();
  });
}

void NotifyListener::OnRetry(uv_timer_t* timer) {
  auto* self = static_cast<NotifyListener*>(timer->data);
  if (self == nullptr) return;
  if (self->closer_->room() < kFdRoom) {
    uv_timer_start(timer, &NotifyListener::OnRetry, kPauseRetryMs, 0);
    return;
  }
  self->pause_logged_ = false;
  spdlog::info("notify socket: passed files are being closed again; reading resumed");
  self->StartPoll();
}

NotifyListener::~NotifyListener() {
  retry_.Close();
  poll_.Close();
  if (fd_.valid()) ::unlink(path_.c_str());
}

void NotifyListener::OnReadable() {
  for (int i = 0; i < 256; ++i) {
    if (closer_->room() < kFdRoom) {
      uv_poll_stop(poll_.get());
      uv_timer_start(retry_.get(), &NotifyListener::OnRetry, kPauseRetryMs, 0);
      if (!pause_logged_) {
        pause_logged_ = true;
        spdlog::warn("notify socket: passed files wait to be closed ({} queued, "
                     "a close() running for {} ms); pausing reads",
                     closer_->pending(), closer_->stuck_ms());
      }
      return;
    }
    char buf[4096];
    // The credentials plus SCM_MAX_FD fds (the kernel merges every
    // SCM_RIGHTS of a message into one, at most 253): nothing truncated.
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) +
                                  CMSG_SPACE(sizeof(int) * FdCloser::kMaxFdsPerMessage)];
    iovec iov{buf, sizeof(buf) - 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC |
                                               MSG_TRUNC);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR)
        spdlog::warn("notify socket: {}, ignoring", std::strerror(errno));
      return;
    }
    pid_t sender = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS &&
          c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
        ucred cred;
        std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
        sender = cred.pid;
      } else if (c->cmsg_type == SCM_RIGHTS) {
        // Every earlier datagram was handled: closing now is what a
        // BARRIER=1 waits for. Done before anything below can drop the
        // message, so no fd outlives it here.
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; ++k) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
          closer_->Close(Fd(fd));
        }
      }
    }
    if (msg.msg_flags & MSG_CTRUNC)
      spdlog::warn("notify socket: a message from pid {} had more control data "
                   "than SCM_MAX_FD fds, ignoring", sender);
    if (sender <= 0 || static_cast<size_t>(n) >= sizeof(buf)) continue;
    callback_(sender, ParseNotifyMessage(std::string_view(buf, n)));
  }
}

}  // namespace relsupd
