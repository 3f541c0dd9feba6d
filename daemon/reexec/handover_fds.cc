#include "daemon/reexec/handover_fds.h"

#include "daemon/base/fd.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <set>

namespace relsupd {
namespace {

std::string FdName(int fd) { return "fd " + std::to_string(fd); }

Status Stat(int fd, struct stat* st) {
  if (::fstat(fd, st) != 0) return Status::FromErrno(FdName(fd), errno);
  return Status::Ok();
}

// A SOL_SOCKET option of the socket.
template <typename T>
Status SocketOption(int fd, int option, T* value) {
  socklen_t len = sizeof *value;
  if (::getsockopt(fd, SOL_SOCKET, option, value, &len) != 0)
    return Status::FromErrno(FdName(fd), errno);
  return Status::Ok();
}

// The fd is of file type `type` (S_IFSOCK, S_IFIFO, S_IFREG); `not_it`
// otherwise ("not a socket").
Status CheckFileType(int fd, mode_t type, const char* not_it) {
  struct stat st {};
  RETURN_IF_ERROR(Stat(fd, &st));
  if ((st.st_mode & S_IFMT) != type) return Corruption(FdName(fd) + ": " + not_it);
  return Status::Ok();
}

Status CheckSocket(int fd) { return CheckFileType(fd, S_IFSOCK, "not a socket"); }

// The unix socket's bound path equals `path`.
Status CheckBoundTo(int fd, const std::string& path) {
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return Status::FromErrno(FdName(fd), errno);
  std::string bound;
  if (addr.sun_family == AF_UNIX && len > offsetof(sockaddr_un, sun_path))
    bound.assign(addr.sun_path, strnlen(addr.sun_path, len - offsetof(sockaddr_un, sun_path)));
  if (bound != path)
    return Corruption(FdName(fd) + ": bound to '" + bound + "', not '" + path + "'");
  return Status::Ok();
}

// FD_CLOEXEC is the only fd flag: one F_SETFD, no F_GETFD (3,000 fds at
// 1,000 instances, twice a re-exec).
Status SetFlag(int fd, bool cloexec) {
  if (::fcntl(fd, F_SETFD, cloexec ? FD_CLOEXEC : 0) != 0)
    return Status::FromErrno(FdName(fd), errno);
  return Status::Ok();
}

// PIDFD_GET_INFO (Linux 6.13; <linux/pidfd.h> of Debian 12 predates it):
// the pid of a pidfd in one ioctl instead of an open, read and close.
struct PidfdInfo {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  uint32_t spare0[1];
};
static_assert(sizeof(PidfdInfo) == 64);  // PIDFD_INFO_SIZE_VER0
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);
constexpr uint64_t kPidfdInfoPid = 1;
// Cleared once fdinfo shows a pidfd the ioctl did not know (an older kernel).
std::atomic<bool> g_pidfd_ioctl{true};

// The pidfds with their pids, and the pipes of every child.
void ForEachChild(const HandoverRecord& r, auto each) {
  auto group = [&](const GroupSnapshot& g) {
    for (const InstanceSnapshot& i : g.instances)
      if (i.child) each(*i.child);
  };
  for (const AppSnapshot& a : r.supervisor.apps) {
    if (a.active) group(*a.active);
    for (const GroupSnapshot& g : a.retiring) group(g);
  }
}

// Every fd the record names, in the order named, repeats kept; no -1.
std::vector<int> NamedFds(const HandoverRecord& r) {
  std::vector<int> named = {r.fds.lock, r.fds.listener, r.fds.self_exe};
  if (r.notify) named.push_back(r.notify->fd);
  if (r.request) named.push_back(r.request->conn_fd);
  for (const AppSocketSnapshot& s : r.app_sockets) named.push_back(s.fd);
  ForEachChild(r, [&](const ChildFds& c) { named.insert(named.end(), {c.pidfd, c.out_fd, c.err_fd}); });
  for (const ReapEntry& e : r.supervisor.reap) named.push_back(e.pidfd);
  std::erase(named, -1);
  return named;
}

}  // namespace

std::vector<int> HandoverFdList(const HandoverRecord& r) {
  std::vector<int> named = NamedFds(r);
  std::set<int> fds(named.begin(), named.end());
  return {fds.begin(), fds.end()};
}

Status ClearCloexec(const std::vector<int>& fds) {
  for (int fd : fds) RETURN_IF_ERROR(SetFlag(fd, false));
  return Status::Ok();
}

Status SetCloexec(const std::vector<int>& fds) {
  for (int fd : fds) RETURN_IF_ERROR(SetFlag(fd, true));
  return Status::Ok();
}

Status CheckPidfd(int fd, pid_t pid) {
  bool ioctl_refused = false;
  if (g_pidfd_ioctl.load(std::memory_order_relaxed)) {
    PidfdInfo info{};
    info.mask = kPidfdInfoPid;
    if (::ioctl(fd, kPidfdGetInfo, &info) == 0) {
      if (static_cast<pid_t>(info.pid) == pid) return Status::Ok();
      return Corruption(FdName(fd) + ": a pidfd of pid " + std::to_string(info.pid) + ", not " +
                        std::to_string(pid));
    }
    // ENOTTY or EINVAL: not a pidfd, or a kernel without the ioctl; ESRCH:
    // reaped. fdinfo tells.
    ioctl_refused = errno == ENOTTY || errno == EINVAL;
  }
  // One open and read of a few hundred bytes: a record of 1,000 instances
  // has 1,000 of these to check before the new image may adopt.
  const std::string name = "/proc/self/fdinfo/" + std::to_string(fd);
  Fd info(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!info.valid()) return Corruption(FdName(fd) + ": not open");
  char buf[1024];
  ssize_t n;
  do {
    n = ::read(info.get(), buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Corruption(FdName(fd) + ": cannot read its fdinfo");
  const std::string_view text(buf, static_cast<size_t>(n));
  const size_t at = text.find("\nPid:");
  if (at == std::string_view::npos) return Corruption(FdName(fd) + ": not a pidfd");
  std::string_view value = text.substr(at + 5);
  value = value.substr(0, value.find('\n'));
  value.remove_prefix(std::min(value.find_first_not_of(" \t"), value.size()));
  if (ioctl_refused) g_pidfd_ioctl.store(false, std::memory_order_relaxed);
  if (value == std::to_string(pid)) return Status::Ok();
  return Corruption(FdName(fd) + ": a pidfd of pid " + std::string(value) + ", not " +
                    std::to_string(pid));
}

Status CheckListener(int fd, const std::string& path) {
  RETURN_IF_ERROR(CheckSocket(fd));
  int listening = 0;
  RETURN_IF_ERROR(SocketOption(fd, SO_ACCEPTCONN, &listening));
  if (listening != 1) return Corruption(FdName(fd) + ": a socket that is not listening");
  return path.empty() ? Status::Ok() : CheckBoundTo(fd, path);
}

Status CheckDatagram(int fd, const std::string& path) {
  RETURN_IF_ERROR(CheckSocket(fd));
  int type = 0;
  RETURN_IF_ERROR(SocketOption(fd, SO_TYPE, &type));
  if (type != SOCK_DGRAM) return Corruption(FdName(fd) + ": not a datagram socket");
  return CheckBoundTo(fd, path);
}

Status CheckPeer(int fd, pid_t pid, uid_t uid) {
  RETURN_IF_ERROR(CheckSocket(fd));
  ucred cred{};
  RETURN_IF_ERROR(SocketOption(fd, SO_PEERCRED, &cred));
  if (cred.pid != pid || cred.uid != uid)
    return Corruption(FdName(fd) + ": the peer is pid " + std::to_string(cred.pid) + " uid " +
                      std::to_string(cred.uid) + ", not pid " + std::to_string(pid) + " uid " +
                      std::to_string(uid));
  return Status::Ok();
}

Status CheckFifo(int fd) { return CheckFileType(fd, S_IFIFO, "not a pipe"); }

Status CheckLockFile(int fd, const std::string& state_dir) {
  struct stat held {}, named {};
  RETURN_IF_ERROR(Stat(fd, &held));
  const std::string path = state_dir + "/relsupd.lock";
  if (::stat(path.c_str(), &named) != 0) return Status::FromErrno(path, errno);
  if (!S_ISREG(held.st_mode) || held.st_dev != named.st_dev || held.st_ino != named.st_ino)
    return Corruption(FdName(fd) + ": not '" + path + "'");
  return Status::Ok();
}

Status CheckRegularFile(int fd) {
  return CheckFileType(fd, S_IFREG, "not a regular file");
}

Status CheckHandoverFds(const HandoverRecord& r) {
  // Each fd once: two owners of one fd would close it twice.
  if (NamedFds(r).size() != HandoverFdList(r).size())
    return Corruption("the handover names an fd twice");
  if (r.fds.lock >= 0) RETURN_IF_ERROR(CheckLockFile(r.fds.lock, r.config.state_dir));
  if (r.fds.listener >= 0) RETURN_IF_ERROR(CheckListener(r.fds.listener, r.config.socket));
  if (r.fds.self_exe >= 0) RETURN_IF_ERROR(CheckRegularFile(r.fds.self_exe));
  if (r.notify) RETURN_IF_ERROR(CheckDatagram(r.notify->fd, r.notify->path));
  if (r.request) RETURN_IF_ERROR(CheckPeer(r.request->conn_fd, r.request->pid, r.request->uid));
  for (const AppSocketSnapshot& s : r.app_sockets) RETURN_IF_ERROR(CheckListener(s.fd, ""));
  Status s;
  ForEachChild(r, [&](const ChildFds& c) {
    if (s.ok()) s = CheckPidfd(c.pidfd, c.pid);
    if (s.ok() && c.out_fd >= 0) s = CheckFifo(c.out_fd);
    if (s.ok() && c.err_fd >= 0) s = CheckFifo(c.err_fd);
  });
  RETURN_IF_ERROR(s);
  for (const ReapEntry& e : r.supervisor.reap) RETURN_IF_ERROR(CheckPidfd(e.pidfd, e.pid));
  return Status::Ok();
}

}  // namespace relsupd
