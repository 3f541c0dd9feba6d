#include "daemon/activate/app_sockets.h"

#include <arpa/inet.h>
#include <sched.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace relsupd {

Result<Fd> BindListener(const std::string& address) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = 0;
  std::string unix_path;
  if (address.rfind("unix:", 0) == 0) {
    unix_path = address.substr(5);
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    if (unix_path.size() >= sizeof(un->sun_path))
      return InvalidArgument("socket path '" + unix_path + "' is too long");
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, unix_path.c_str(), unix_path.size() + 1);
    len = sizeof(sockaddr_un);
    family = AF_UNIX;
  } else if (address.rfind("tcp://", 0) == 0) {
    std::string rest = address.substr(6);
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos)
      return InvalidArgument("socket address '" + address + "' has no port");
    std::string host = rest.substr(0, colon);
    int port = std::atoi(rest.c_str() + colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(static_cast<uint16_t>(port));
      if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(),
                    &in6->sin6_addr) != 1)
        return InvalidArgument("bad IPv6 address in '" + address + "'");
      len = sizeof(sockaddr_in6);
      family = AF_INET6;
    } else {
      auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
      in4->sin_family = AF_INET;
      in4->sin_port = htons(static_cast<uint16_t>(port));
      if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) != 1)
        return InvalidArgument("bad IPv4 address in '" + address + "'");
      len = sizeof(sockaddr_in);
      family = AF_INET;
    }
  } else {
    return InvalidArgument("socket address '" + address +
                           "' is neither tcp://HOST:PORT nor unix:/PATH");
  }
  Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket for '" + address + "'", errno);
  if (family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  } else {
    // A socket file left by an earlier daemon; never a regular file.
    struct stat st{};
    if (::lstat(unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
      ::unlink(unix_path.c_str());
  }
  int bound;
  if (family == AF_UNIX) {
    // The socket file gets its mode (0666: any local client, as for a TCP
    // port) at bind, from the umask: a chmod by path afterwards could be
    // redirected by a link the app's user swapped in. The umask is the
    // process's, shared with the thread pool (CLONE_FS), whose unpacking
    // must not see 0111 for an instant: the loop thread first gets an
    // fs_struct of its own (a no-op once it has one; unshare(CLONE_FS) is
    // not a namespace, RestrictNamespaces= allows it).
    if (::unshare(CLONE_FS) != 0)
      return Status::FromErrno("cannot bind '" + address +
                                   "': unshare(CLONE_FS) for its umask",
                               errno);
    const mode_t old_umask = ::umask(0111);
    bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len);
    const int err = errno;
    ::umask(old_umask);
    errno = err;
  } else {
    bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len);
  }
  if (bound != 0)
    return Status::FromErrno("cannot bind '" + address + "'", errno);
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
