#include "daemon/activate/app_sockets.h"

#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "daemon/base/socket_address.h"

namespace relsupd {

namespace {

// Binds a unix socket file with mode 0666 (any local client, as for a TCP
// port), set at bind from the umask: a chmod by path afterwards could be
// redirected by a link the app's user swapped in. The umask is the
// process's, shared with the thread pool (CLONE_FS), whose unpacking must
// not see 0111 for an instant: the loop thread first gets an fs_struct of
// its own (a no-op once it has one; unshare(CLONE_FS) is not a namespace,
// RestrictNamespaces= allows it).
Status BindUnix(int fd, const SocketAddress& addr, const std::string& address) {
  // A socket file left by an earlier daemon; never a regular file.
  struct stat st{};
  if (::lstat(addr.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
    ::unlink(addr.path.c_str());
  if (::unshare(CLONE_FS) != 0)
    return Status::FromErrno("cannot bind '" + address +
                                 "': unshare(CLONE_FS) for its umask",
                             errno);
  sockaddr_storage ss{};
  const socklen_t len = addr.ToSockaddr(&ss);
  const mode_t old_umask = ::umask(0111);
  const int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len);
  const int err = errno;
  ::umask(old_umask);
  if (bound != 0) return Status::FromErrno("cannot bind '" + address + "'", err);
  return Status::Ok();
}

Status BindTcp(int fd, const SocketAddress& addr, const std::string& address) {
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  const socklen_t len = addr.ToSockaddr(&ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return Status::FromErrno("cannot bind '" + address + "'", errno);
  return Status::Ok();
}

}  // namespace

Result<Fd> BindListener(const std::string& address) {
  ASSIGN_OR_RETURN(SocketAddress addr, ParseSocketAddress(address));
  const bool is_unix = addr.kind == SocketAddress::Kind::kUnix;
  Fd fd(::socket(is_unix ? AF_UNIX : addr.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket for '" + address + "'", errno);
  RETURN_IF_ERROR(is_unix ? BindUnix(fd.get(), addr, address)
                          : BindTcp(fd.get(), addr, address));
  if (::listen(fd.get(), SOMAXCONN) != 0)
    return Status::FromErrno("cannot listen on '" + address + "'", errno);
  return fd;
}

int AppSockets::Find(const std::string& app, const std::string& name) const {
  auto it = held_.find({app, name});
  return it == held_.end() ? -1 : it->second.fd.get();
}

Result<std::map<std::string, int>> AppSockets::For(const AppSpec& spec) {
  std::map<std::string, int> out;
  for (const SocketSpec& s : spec.sockets) {
    auto key = std::make_pair(spec.name, s.name);
    auto it = held_.find(key);
    if (it == held_.end() || it->second.address != s.address) {
      if (it != held_.end()) held_.erase(it);  // close before binding again
      auto fd = BindListener(s.address);
      if (!fd.ok())
        return fd.status().WithContext("socket '" + s.name + "' of app '" +
                                       spec.name + "'");
      it = held_.emplace(key, Held{s.address, std::move(*fd)}).first;
    }
    out[s.name] = it->second.fd.get();
  }
  // Sockets the spec no longer names.
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->first.first == spec.name && out.count(it->first.second) == 0)
      it = held_.erase(it);
    else
      ++it;
  }
  return out;
}

}  // namespace relsupd
