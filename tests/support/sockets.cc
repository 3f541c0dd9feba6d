#include "tests/support/sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli/client.h"
#include "daemon/base/status.h"
#include "tests/support/failure.h"
#include "tests/support/wait.h"

namespace relsupd::support {

sockaddr_un UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    Fail("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

int OpenUnixSocket(const std::string& path, int type, UnixEnd end) {
  sockaddr_un addr = UnixAddress(path);
  const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) FailErrno("socket");
  const auto* sa = reinterpret_cast<sockaddr*>(&addr);
  const int rc = end == UnixEnd::kBind ? ::bind(fd, sa, sizeof addr)
                                       : ::connect(fd, sa, sizeof addr);
  if (rc != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    FailErrno((end == UnixEnd::kBind ? "bind " : "connect ") + path);
  }
  return fd;
}

// --- RawConn ---

namespace {

// The first whole line of `buf` (without its '\n'), taken out of it; nullopt
// while `buf` holds no '\n'.
std::optional<std::string> TakeLine(std::string* buf) {
  const size_t nl = buf->find('\n');
  if (nl == std::string::npos) return std::nullopt;
  std::string line = buf->substr(0, nl);
  buf->erase(0, nl + 1);
  return line;
}

}  // namespace

RawConn::RawConn(const std::string& socket)
    : fd_(OpenUnixSocket(socket, SOCK_STREAM, UnixEnd::kConnect)) {}

RawConn::~RawConn() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConn::Send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return false;
    if (n < 0) FailErrno("send");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool RawConn::SendWithFds(std::string_view data, const std::vector<int>& fds) {
  if (data.empty()) Fail("SendWithFds needs at least one byte");
  Status s = relsupd::SendWithFds(fd_, data, fds);
  if (s.ok()) return true;
  if (s.error_number() == EPIPE || s.error_number() == ECONNRESET) return false;
  Fail(s.message());
}

void RawConn::CloseWrite() {
  if (::shutdown(fd_, SHUT_WR) != 0) FailErrno("shutdown");
}

std::optional<std::string> RawConn::ReadLine(int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    if (auto line = TakeLine(&buf_)) return line;
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    char chunk[65536];
    ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::nullopt;
    buf_.append(chunk, static_cast<size_t>(got));
  }
}

nlohmann::json RawConn::Exchange(std::string_view line, int timeout_ms) {
  if (!Send(std::string(line) + "\n")) Fail("daemon closed the connection");
  auto reply = ReadLine(timeout_ms);
  if (!reply) Fail("no response to " + std::string(line));
  nlohmann::json j = nlohmann::json::parse(*reply, nullptr, false);
  if (j.is_discarded()) Fail("response is not JSON: " + *reply);
  return j;
}

RawConn::End RawConn::WaitEnd(int timeout_ms) {
  if (!buf_.empty()) return End::kData;
  pollfd p{fd_, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return End::kTimeout;
  char c;
  ssize_t got = ::recv(fd_, &c, 1, 0);
  if (got == 0) return End::kEof;
  if (got < 0) return End::kReset;
  buf_.push_back(c);
  return End::kData;
}

// --- NotifySocket ---

NotifySocket::NotifySocket(std::string path)
    : path_(std::move(path)),
      fd_(OpenUnixSocket(path_, SOCK_DGRAM, UnixEnd::kBind)) {}

NotifySocket::~NotifySocket() {
  ::close(fd_);
  ::unlink(path_.c_str());
}

std::optional<std::string> NotifySocket::Receive(int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    char buf[4096];
    ssize_t got = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) FailErrno("recv notify");
    return std::string(buf, static_cast<size_t>(got));
  }
}

std::optional<std::string> NotifySocket::WaitFor(
    std::string_view line, int timeout_ms, std::vector<std::string>* seen) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    auto msg = Receive(RemainingMs(deadline));
    if (!msg) return std::nullopt;
    if (seen) seen->push_back(*msg);
    if (HasLine(*msg, line)) return msg;
  }
}

namespace {

// Calls `visit` with each line of `message` until it returns true.
template <typename Visit>
bool AnyLine(std::string_view message, Visit visit) {
  size_t pos = 0;
  while (pos <= message.size()) {
    size_t nl = message.find('\n', pos);
    std::string_view l = message.substr(
        pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (visit(l)) return true;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return false;
}

}  // namespace

bool HasLine(std::string_view message, std::string_view line) {
  return AnyLine(message, [&](std::string_view l) { return l == line; });
}

std::optional<std::string> Field(std::string_view message,
                                 std::string_view key) {
  const std::string prefix = std::string(key) + "=";
  std::optional<std::string> value;
  AnyLine(message, [&](std::string_view l) {
    if (l.substr(0, prefix.size()) != prefix) return false;
    value = std::string(l.substr(prefix.size()));
    return true;
  });
  return value;
}

int SendDatagram(const std::string& path, std::string_view data,
                 const std::vector<int>& fds, int cmsgs, bool creds) {
  int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) FailErrno("socket");
  sockaddr_un addr = UnixAddress(path);
  iovec iov{const_cast<char*>(data.data()), data.size()};
  std::vector<char> control((CMSG_SPACE(sizeof(int) * fds.size()) + 64) * (cmsgs + 1) +
                            CMSG_SPACE(sizeof(ucred)));
  msghdr msg{};
  msg.msg_name = &addr;
  msg.msg_namelen = sizeof addr;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  size_t used = 0;
  size_t per = fds.size() / static_cast<size_t>(cmsgs);
  for (int k = 0; k < cmsgs && !fds.empty(); ++k) {
    size_t from = per * static_cast<size_t>(k);
    size_t n = k == cmsgs - 1 ? fds.size() - from : per;
    auto* cm = reinterpret_cast<cmsghdr*>(control.data() + used);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
    std::memcpy(CMSG_DATA(cm), fds.data() + from, sizeof(int) * n);
    used += CMSG_SPACE(sizeof(int) * n);
  }
  if (creds) {
    auto* cm = reinterpret_cast<cmsghdr*>(control.data() + used);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof(ucred));
    ucred c{::getpid(), ::getuid(), ::getgid()};
    std::memcpy(CMSG_DATA(cm), &c, sizeof c);
    used += CMSG_SPACE(sizeof(ucred));
  }
  msg.msg_controllen = used;
  if (used == 0) msg.msg_control = nullptr;
  int rc = ::sendmsg(s, &msg, MSG_NOSIGNAL) < 0 ? errno : 0;
  ::close(s);
  return rc;
}

// --- Pipe ---

Pipe::Pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) FailErrno("pipe2");
  read_end.Reset(p[0]);
  write_end.Reset(p[1]);
}

bool Pipe::HungUp() const {
  pollfd p{read_end.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) != 0;
}

// --- LingeringSocket ---

LingeringSocket::LingeringSocket() {
  listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) FailErrno("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int small = 4096;
  // A small receive window on the listener's side, so the data stays in
  // the client's send queue.
  ::setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    FailErrno("bind 127.0.0.1:0");
  if (::listen(listener, 1) != 0) FailErrno("listen");
  socklen_t len = sizeof a;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client < 0) FailErrno("socket");
  ::setsockopt(client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  if (::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    FailErrno("connect 127.0.0.1");
  server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (server < 0) FailErrno("accept4");
  linger lg{1, 30};
  if (::setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
    FailErrno("SO_LINGER");
  ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL) | O_NONBLOCK);
  char junk[4096] = {};
  while (::send(client, junk, sizeof junk, MSG_NOSIGNAL) > 0) {
  }
  int queued = 0;
  ::ioctl(client, SIOCOUTQ, &queued);
  // close() must have something to wait for.
  if (queued <= 0) Fail("LingeringSocket: nothing queued to linger on");
}

void LingeringSocket::Release() {
  if (server < 0) return;
  linger abort{1, 0};
  ::setsockopt(server, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  ::close(server);  // RST to the client
  server = -1;
}

int LingeringSocket::TakeClient() {
  int fd = client;
  client = -1;
  return fd;
}

LingeringSocket::~LingeringSocket() {
  Release();
  if (client >= 0) {
    linger abort{1, 0};
    ::setsockopt(client, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    ::close(client);
  }
  if (listener >= 0) ::close(listener);
}

// --- loopback TCP ---

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) FailErrno("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string HttpGet(int port, const std::string& path) {
  const std::string reply =
      HttpRequest(port, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos)
    return "";
  return reply.substr(body + 4);
}

std::string HttpRequest(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) FailErrno("socket");
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    // A server may answer before it read all (a request too large): the
    // write is not checked, the reply is.
    (void)!::write(fd, request.data(), request.size());
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return reply;
}

}  // namespace relsupd::support
