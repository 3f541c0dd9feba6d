// The children's hello socket (see hello_socket.h).

#include "bench/supervise/hello_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace relsupd::bench::supervise {

HelloSocket::~HelloSocket() {
  if (fd_ >= 0) close(fd_);
}

bool HelloSocket::Open(const std::string& path, std::string* error) {
  path_ = path;
  fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    *error = "socket path too long: " + path;
    return false;
  }
  std::strcpy(addr.sun_path, path.c_str());
  unlink(path.c_str());
  if (fd_ < 0 ||
      bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = "cannot bind " + path + ": " + std::strerror(errno);
    return false;
  }
  int size = 4 << 20;
  setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  chmod(path.c_str(), 0666);
  return true;
}

std::optional<ChildHello> HelloSocket::Receive(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
  ChildHello h{};
  ssize_t n = recv(fd_, &h, sizeof h, MSG_DONTWAIT);
  if (n != static_cast<ssize_t>(sizeof h)) return std::nullopt;
  h.id[sizeof h.id - 1] = '\0';
  return h;
}

}  // namespace relsupd::bench::supervise
