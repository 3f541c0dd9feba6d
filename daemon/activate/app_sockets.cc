#include "daemon/activate/app_sockets.h"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

Result<std::map<std::string, int>> AppSockets::For(const AppSpec& spec,
                                                   SocketBind bind) {
  std::map<std::string, int> out;
  for (const SocketSpec& s : spec.sockets) {
    auto key = std::make_pair(spec.name, s.name);
    auto it = held_.find(key);
    if (it == held_.end() || it->second.address != s.address) {
      if (it != held_.end()) held_.erase(it);  // close before binding again
      it = held_.emplace(key, Held{s.address, Fd()}).first;
    }
    if (!it->second.fd.valid() && bind == SocketBind::kNow) {
      auto fd = BindListener(s.address);
      if (!fd.ok() && fd.status().error_number() == EADDRINUSE)
        return FailedPrecondition(
            "socket '" + s.name + "' of app '" + spec.name + "': " +
            fd.status().message() +
            "; if the app's running processes bind that port themselves "
            "(PORT), move it onto the held socket with --strategy "
            "stop-first, which binds it once they stopped");
      if (!fd.ok())
        return fd.status().WithContext("socket '" + s.name + "' of app '" +
                                       spec.name + "'");
      it->second.fd = std::move(*fd);
    }
    out[s.name] = it->second.fd.valid() ? it->second.fd.get() : -1;
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

int AppSockets::Open(const std::string& app, const std::string& name) {
  auto it = held_.find({app, name});
  if (it == held_.end()) return -1;
  if (!it->second.fd.valid()) {
    auto fd = BindListener(it->second.address);
    if (!fd.ok()) {
      spdlog::error("{}: socket '{}' ({}) cannot be bound again: {}; the "
                    "instance starts without it",
                    app, name, it->second.address, fd.status().message());
      return -1;
    }
    spdlog::info("{}: socket '{}' ({}) is open again", app, name,
                 it->second.address);
    it->second.fd = std::move(*fd);
  }
  return it->second.fd.get();
}

std::vector<std::string> AppSockets::CloseIdle(
    const std::string& app, const std::set<std::string>& serving) {
  std::vector<std::string> closed;
  for (auto it = held_.lower_bound({app, ""});
       it != held_.end() && it->first.first == app; ++it) {
    if (!it->second.fd.valid() || serving.count(it->first.second) != 0)
      continue;
    // A listener's close does not block (no SO_LINGER); connections still
    // in its backlog are reset.
    it->second.fd = Fd();
    closed.push_back(it->first.second);
  }
  return closed;
}

void AppSockets::Forget(const std::string& app) {
  auto first = held_.lower_bound({app, ""});
  auto last = first;
  for (; last != held_.end() && last->first.first == app; ++last) {
    // A unix socket's file goes with it, open or closed idle (a socket
    // file only: unlink does not follow a link the app's user may have put
    // there, and a regular file in its place stays).
    Result<SocketAddress> addr = ParseSocketAddress(last->second.address);
    if (!addr.ok() || addr->kind != SocketAddress::Kind::kUnix) continue;
    struct stat st{};
    if (::lstat(addr->path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
        ::unlink(addr->path.c_str()) != 0)
      spdlog::warn("Failed to remove socket file '{}' of deleted app '{}': {}, ignoring",
                   addr->path, app, std::strerror(errno));
  }
  held_.erase(first, last);
}

bool AppSockets::IsOpen(const std::string& app, const std::string& name) const {
  auto it = held_.find({app, name});
  return it != held_.end() && it->second.fd.valid();
}

std::vector<AppSocketSnapshot> AppSockets::Export() const {
  std::vector<AppSocketSnapshot> out;
  for (const auto& [key, held] : held_)
    if (held.fd.valid())
      out.push_back({.app = key.first, .name = key.second, .address = held.address,
                     .fd = held.fd.get()});
  return out;
}

void AppSockets::Adopt(const std::vector<AppSocketSnapshot>& sockets) {
  for (const AppSocketSnapshot& s : sockets)
    held_[{s.app, s.name}] = Held{.address = s.address, .fd = Fd(s.fd)};
}

void AppSockets::Abandon() {
  for (auto& [key, held] : held_) held.fd.Release();
  held_.clear();
}

void GiveSocketsToWeb(const AppSpec& spec, ProcessFile* processes) {
  if (spec.sockets.empty()) return;
  for (const auto& [type, p] : processes->processes)
    if (!p.sockets.empty()) return;  // the file maps them itself
  auto web = processes->processes.find("web");
  if (web == processes->processes.end()) return;
  for (const SocketSpec& s : spec.sockets) web->second.sockets.push_back(s.name);
}

Status CheckStartFirstPorts(const ProcessFile& processes,
                            const std::map<std::string, std::string>& config,
                            const std::map<std::string, int>& formation) {
  for (const auto& [type, p] : processes.processes) {
    if (!p.sockets.empty()) continue;
    auto f = formation.find(type);
    if ((f != formation.end() ? f->second : p.scale) <= 0) continue;
    std::string port;
    if (auto e = p.env.find("PORT"); e != p.env.end()) port = e->second;
    else if (auto c = config.find("PORT"); c != config.end()) port = c->second;
    else continue;
    return FailedPrecondition(
        "process type '" + type + "' has PORT=" + port +
        " and no daemon-held socket: it binds the port itself, so its new "
        "instances cannot listen while the old ones still do (a start-first "
        "switch would crash-loop and roll back); use --strategy stop-first, "
        "or give the app a held socket (app create/apply --socket "
        "http=tcp://HOST:" + port + "; it goes to the 'web' type unless "
        "relsupd.yaml maps sockets with 'sockets:') and have the app take it "
        "from fd 3 (LISTEN_FDS)");
  }
  return Status::Ok();
}

}  // namespace relsupd
