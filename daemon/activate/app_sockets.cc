#include "daemon/activate/app_sockets.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "daemon/base/fs.h"
#include "daemon/base/socket_address.h"

namespace relsupd {

namespace {

// The directory of a unix socket's path, opened without following a
// symbolic link anywhere on the way, and the socket's name in it. The
// directory may be the app user's, who could swap one of its components
// for a link (to /run/relsupd, say) while the daemon is not looking: what
// comes after works on this fd, so a swap afterwards changes nothing.
struct SocketDir {
  Fd dir;
  std::string name;
};

// Why the directory `dir` of a unix socket could not be opened (`at`: the
// part of it that failed), from the openat2 errno `err`.
Status DirOpenError(int err, const std::string& dir, const std::string& at,
                    const std::string& address) {
  if (err == ELOOP)
    return FailedPrecondition("cannot bind '" + address + "': its directory '" + dir +
                              "' is or goes through a symbolic link (give the path without "
                              "links: the daemon follows none there)");
  return Status::FromErrno("cannot bind '" + address + "': cannot open its directory '" + at + "'",
                           err);
}

Result<SocketDir> OpenSocketDir(const std::string& path, const std::string& address) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  SocketDir out{Fd(), path.substr(slash + 1)};
  if (out.name.empty() || out.name == "." || out.name == "..")
    return InvalidArgument("cannot bind '" + address + "': the path names no file");
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, AT_FDCWD, dir.c_str(), &how, sizeof how);
  if (fd < 0) return DirOpenError(errno, dir, dir, address);
  out.dir = Fd(static_cast<int>(fd));
  return out;
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

Status CheckNotInStateDir(int dir_fd, const struct stat& dir, const UnixSocketGuard& guard,
                          const std::string& address);

// What a socket in a read-only place needs (the packaged unit's
// ProtectSystem=strict leaves the daemon only these to write).
constexpr const char kReadOnlyHint[] =
    " (read-only here; under the packaged unit only /run/relsupd and the state dir are "
    "writable: put the socket under /run/relsupd/, or add ReadWritePaths= in a drop-in)";

// FailedPrecondition when `dir_fd` (the directory `dir`) is on a read-only
// file system: no socket file can be made there.
Status CheckWritable(int dir_fd, const std::string& dir, const std::string& address) {
  struct statvfs vfs{};
  if (::fstatvfs(dir_fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY) != 0)
    return FailedPrecondition("cannot bind '" + address + "': its directory '" + dir +
                              "' is on a read-only file system" + kReadOnlyHint);
  return Status::Ok();
}

// Gives the calling (loop) thread an fs_struct of its own, umask and cwd
// included, which the thread pool no longer shares (CLONE_FS): a no-op
// once it has one. unshare(CLONE_FS) is not a namespace;
// RestrictNamespaces= allows it. This holds only because every other
// thread (libuv's pool, the FdCloser) was started before the first bind:
// a thread the loop thread made afterwards would share its fs_struct, and
// see the 0111 and 022 umasks of the bind and of WalkSocketDirs.
Status OwnFsStruct(const std::string& address) {
  if (::unshare(CLONE_FS) != 0)
    return Status::FromErrno("cannot bind '" + address + "': unshare(CLONE_FS) for its umask",
                             errno);
  return Status::Ok();
}

}  // namespace

Result<Fd> WalkSocketDirs(const std::string& dir, const UnixSocketGuard& guard,
                          const std::string& address, SocketDirs mode) {
  if (dir.empty() || dir[0] != '/')
    return InvalidArgument("cannot bind '" + address + "': its directory is not absolute");
  // Refused before anything is made.
  for (const std::string_view bad : {"/./", "/../"})
    if ((dir + "/").find(bad) != std::string::npos)
      return InvalidArgument("cannot bind '" + address + "': its directory '" + dir + "' has a '" +
                             std::string(bad.substr(1, bad.size() - 2)) + "' component");
  Fd cur(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!cur.valid()) return Status::FromErrno("cannot bind '" + address + "': open '/'", errno);
  bool checked = false;  // the state-dir walk, once, before the first mkdir
  size_t start = 1;
  while (start < dir.size()) {
    size_t end = dir.find('/', start);
    if (end == std::string::npos) end = dir.size();
    const std::string name = dir.substr(start, end - start);
    start = end + 1;
    if (name.empty()) continue;
    open_how how{};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
    long fd = ::syscall(SYS_openat2, cur.get(), name.c_str(), &how, sizeof how);
    if (fd < 0 && errno == ENOENT) {
      if (!checked) {
        struct stat st{};
        if (::fstat(cur.get(), &st) != 0)
          return Status::FromErrno("cannot bind '" + address + "': fstat of the directory above '" +
                                       dir.substr(0, end) + "'",
                                   errno);
        RETURN_IF_ERROR(CheckNotInStateDir(cur.get(), st, guard, address));
        checked = true;
      }
      const std::string made = dir.substr(0, end);
      if (mode == SocketDirs::kCheck) {
        const size_t parent_end = end - name.size() - 1;
        RETURN_IF_ERROR(
            CheckWritable(cur.get(), parent_end == 0 ? "/" : dir.substr(0, parent_end), address));
        return NotFound("cannot bind '" + address + "': its directory '" + made +
                        "' does not exist (it is made at the bind)");
      }
      // 0755 whatever the daemon's umask (apps of other users connect
      // through it), set at the mkdir: a chmod afterwards could reach a
      // directory swapped in meanwhile. The umask is this thread's own
      // (OwnFsStruct).
      RETURN_IF_ERROR(OwnFsStruct(address));
      const mode_t old_umask = ::umask(022);
      const int rc = ::mkdirat(cur.get(), name.c_str(), 0755);
      const int err = errno;
      ::umask(old_umask);
      if (rc != 0 && err != EEXIST)
        return Status::FromErrno(
            "cannot bind '" + address + "': cannot create its directory '" + made + "'" +
                (err == EROFS ? kReadOnlyHint : ""),
            err);
      fd = ::syscall(SYS_openat2, cur.get(), name.c_str(), &how, sizeof how);
      struct stat st{};
      if (rc == 0 && fd >= 0 && ::fstat(static_cast<int>(fd), &st) == 0) {
        spdlog::info("Created directory {} for socket {}", made, address);
        // A default ACL or a setgid parent has the last word over the
        // umask; only the permission bits matter to the clients.
        if ((st.st_mode & 0777) != 0755)
          spdlog::warn("Directory {} for socket {} was made with mode {:04o}, not 0755 (a "
                       "default ACL of its parent?): clients of other users may not reach the "
                       "socket",
                       made, address, st.st_mode & 07777);
      }
    }
    if (fd < 0) return DirOpenError(errno, dir, dir.substr(0, end), address);
    cur = Fd(static_cast<int>(fd));
  }
  return cur;
}

namespace {

// An app's socket is never one of the daemon's own (its control socket,
// the notify socket) nor anywhere in its state directory (a sealed release
// slot, say): the daemon would delete or shadow it for the app.
Status CheckNotTheDaemons(const SocketDir& at, const UnixSocketGuard& guard,
                          const std::string& address) {
  struct stat dir{};
  if (::fstat(at.dir.get(), &dir) != 0)
    return Status::FromErrno("cannot bind '" + address + "': fstat of its directory", errno);
  for (const std::string& own : guard.daemon_sockets) {
    const std::filesystem::path p(own);
    struct stat own_dir{};
    if (p.filename() == at.name && ::stat(p.parent_path().c_str(), &own_dir) == 0 &&
        SameFile(own_dir, dir))
      return FailedPrecondition("cannot bind '" + address + "': that is the daemon's own socket '" +
                                own + "'");
  }
  return CheckNotInStateDir(at.dir.get(), dir, guard, address);
}

// The directory `dir_fd` (whose stat is `dir`) is not the state directory
// nor anywhere beneath it: compared by device and inode, walking '..' up to
// the root.
Status CheckNotInStateDir(int dir_fd, const struct stat& dir, const UnixSocketGuard& guard,
                          const std::string& address) {
  struct stat state{};
  if (guard.state_dir.empty()) return Status::Ok();
  if (::stat(guard.state_dir.c_str(), &state) != 0)
    return Status::FromErrno("cannot bind '" + address + "': cannot stat the state directory '" +
                                 guard.state_dir + "'",
                             errno);
  // Up from the directory to the root ('..' of the root is itself).
  Fd up;
  int cur = dir_fd;
  struct stat cur_st = dir;
  for (int depth = 0; depth < 4096; ++depth) {
    if (SameFile(cur_st, state))
      return FailedPrecondition("cannot bind '" + address +
                                "': it is inside the daemon's state directory '" +
                                guard.state_dir + "'");
    Fd parent(::openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    struct stat parent_st{};
    if (!parent.valid() || ::fstat(parent.get(), &parent_st) != 0)
      return Status::FromErrno("cannot bind '" + address +
                                   "': cannot walk up from its directory to the root",
                               errno);
    if (SameFile(parent_st, cur_st)) return Status::Ok();  // the root
    up = std::move(parent);
    cur = up.get();
    cur_st = parent_st;
  }
  return FailedPrecondition("cannot bind '" + address + "': its directory is too deep");
}

// Binds a unix socket file with mode 0666 (any local client, as for a TCP
// port), set at bind from the umask: a chmod by path afterwards could be
// redirected by a link the app's user swapped in. The umask is the
// process's, shared with the thread pool (CLONE_FS), whose unpacking must
// not see 0111 for an instant: the loop thread first gets an fs_struct of
// its own (a no-op once it has one; unshare(CLONE_FS) is not a namespace,
// RestrictNamespaces= allows it). With its own fs_struct, the loop thread
// also binds from within the socket's directory (fchdir to the fd
// OpenSocketDir gave, and back): bind(2) has no *at form.
Status BindUnix(int fd, const SocketAddress& addr, const std::string& address,
                const UnixSocketGuard& guard) {
  Result<SocketDir> opened = OpenSocketDir(addr.path, address);
  if (!opened.ok() && opened.status().code() == StatusCode::kNotFound) {
    const size_t slash = addr.path.rfind('/');
    ASSIGN_OR_RETURN(Fd made, WalkSocketDirs(addr.path.substr(0, slash), guard, address,
                                             SocketDirs::kMake));
    opened = SocketDir{std::move(made), addr.path.substr(slash + 1)};
  }
  if (!opened.ok()) return opened.status();
  SocketDir at = std::move(opened).value();
  RETURN_IF_ERROR(CheckNotTheDaemons(at, guard, address));
  // A socket file left by an earlier daemon is replaced; anything else
  // there is not the daemon's to remove.
  struct stat st{};
  if (::fstatat(at.dir.get(), at.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return FailedPrecondition("cannot bind '" + address + "': '" + addr.path + "' exists and is " +
                                FileKind(st.st_mode) +
                                ", not a socket (remove it, or give the socket another path)");
    ::unlinkat(at.dir.get(), at.name.c_str(), 0);
  }
  RETURN_IF_ERROR(OwnFsStruct(address));
  Fd cwd(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!cwd.valid()) return Status::FromErrno("cannot bind '" + address + "': open '.'", errno);
  if (::fchdir(at.dir.get()) != 0)
    return Status::FromErrno("cannot bind '" + address + "': cannot enter its directory", errno);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, at.name.c_str(), at.name.size() + 1);  // shorter than the path
  const mode_t old_umask = ::umask(0111);
  const int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof un);
  const int err = errno;
  ::umask(old_umask);
  // Never left in a directory an app's user may own (the next bind would
  // come back to it): the root if the old one cannot be entered.
  if (::fchdir(cwd.get()) != 0) {
    spdlog::warn("Cannot return to the working directory after binding '{}': {}; going to '/'",
                 address, std::strerror(errno));
    if (::chdir("/") != 0) std::abort();
  }
  if (bound != 0)
    return Status::FromErrno("cannot bind '" + address + "'" + (err == EROFS ? kReadOnlyHint : ""),
                             err);
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

Status CheckUnixSocketPath(const std::string& address, const UnixSocketGuard& guard) {
  ASSIGN_OR_RETURN(SocketAddress addr, ParseSocketAddress(address));
  if (addr.kind != SocketAddress::Kind::kUnix) return Status::Ok();
  Result<SocketDir> at = OpenSocketDir(addr.path, address);
  if (!at.ok() && at.status().code() == StatusCode::kNotFound) {
    // Made at the bind: what exists of it is checked now.
    Result<Fd> walked =
        WalkSocketDirs(addr.path.substr(0, addr.path.rfind('/')), guard, address, SocketDirs::kCheck);
    return walked.ok() || walked.status().code() == StatusCode::kNotFound ? Status::Ok()
                                                                          : walked.status();
  }
  if (!at.ok()) return at.status();
  RETURN_IF_ERROR(CheckNotTheDaemons(*at, guard, address));
  return CheckWritable(at->dir.get(), addr.path.substr(0, std::max<size_t>(addr.path.rfind('/'), 1)),
                       address);
}

Result<Fd> BindListener(const std::string& address, const UnixSocketGuard& guard) {
  ASSIGN_OR_RETURN(SocketAddress addr, ParseSocketAddress(address));
  const bool is_unix = addr.kind == SocketAddress::Kind::kUnix;
  Fd fd(::socket(is_unix ? AF_UNIX : addr.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket for '" + address + "'", errno);
  RETURN_IF_ERROR(is_unix ? BindUnix(fd.get(), addr, address, guard)
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
      auto fd = BindListener(s.address, guard_);
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
    auto fd = BindListener(it->second.address, guard_);
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
    // A unix socket's file goes with it, open or closed idle: a socket
    // file only, in its directory as the bind found it (no link followed;
    // a regular file in its place stays), and never the daemon's own.
    Result<SocketAddress> addr = ParseSocketAddress(last->second.address);
    if (!addr.ok() || addr->kind != SocketAddress::Kind::kUnix) continue;
    Result<SocketDir> at = OpenSocketDir(addr->path, last->second.address);
    if (!at.ok() && at.status().code() == StatusCode::kNotFound) continue;  // gone already
    Status mine = at.ok() ? CheckNotTheDaemons(*at, guard_, last->second.address) : at.status();
    if (!mine.ok()) {
      spdlog::warn("Not removing the socket file of deleted app '{}': {}", app, mine.message());
      continue;
    }
    struct stat st{};
    if (::fstatat(at->dir.get(), at->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISSOCK(st.st_mode) && ::unlinkat(at->dir.get(), at->name.c_str(), 0) != 0)
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

std::optional<std::string> OwnPort(const ProcessSpec& process,
                                   const std::map<std::string, std::string>& config) {
  if (!process.sockets.empty()) return std::nullopt;
  if (auto e = process.env.find("PORT"); e != process.env.end()) return e->second;
  if (auto c = config.find("PORT"); c != config.end()) return c->second;
  return std::nullopt;
}

std::vector<std::string> SharedPortWarnings(const ProcessFile& processes,
                                            const std::map<std::string, std::string>& config,
                                            const std::map<std::string, int>& scales) {
  std::vector<std::string> out;
  for (const auto& [type, n] : scales) {
    auto p = processes.processes.find(type);
    if (n <= 1 || p == processes.processes.end()) continue;
    const std::optional<std::string> port = OwnPort(p->second, config);
    if (!port) continue;
    out.push_back("process type '" + type + "' has PORT=" + *port +
                  " and no daemon-held socket: its " + std::to_string(n) +
                  " instances each bind the port themselves, and all but the first fail "
                  "to listen unless the app sets SO_REUSEPORT. To share one port: give the "
                  "app a held socket ('sockets: {http: tcp://HOST:" +
                  *port + "}' in the file of 'relsupd ctl app apply'), have '" + type +
                  "' take it from fd 3 (LISTEN_FDS) instead of binding PORT, and activate "
                  "that release with --strategy stop-first");
  }
  return out;
}

Status CheckStartFirstPorts(const ProcessFile& processes,
                            const std::map<std::string, std::string>& config,
                            const std::map<std::string, int>& formation) {
  for (const auto& [type, p] : processes.processes) {
    auto f = formation.find(type);
    if ((f != formation.end() ? f->second : p.scale) <= 0) continue;
    const std::optional<std::string> port = OwnPort(p, config);
    if (!port) continue;
    return FailedPrecondition(
        "process type '" + type + "' has PORT=" + *port +
        " and no daemon-held socket: it binds the port itself, so its new "
        "instances cannot listen while the old ones still do (a start-first "
        "switch would crash-loop and roll back); use --strategy stop-first, "
        "or give the app a held socket (app create/apply --socket "
        "http=tcp://HOST:" + *port + "; it goes to the 'web' type unless "
        "relsupd.yaml maps sockets with 'sockets:') and have the app take it "
        "from fd 3 (LISTEN_FDS)");
  }
  return Status::Ok();
}

}  // namespace relsupd
