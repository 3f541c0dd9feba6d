#include "daemon/supervise/leftovers.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>

#include "daemon/base/clock.h"
#include "daemon/base/fd.h"
#include "daemon/base/users.h"

namespace relsupd {
namespace {

bool EnvironHas(const std::string& environ, std::string_view needle) {
  std::string_view rest = environ;
  while (!rest.empty()) {
    size_t nul = rest.find('\0');
    if (rest.substr(0, nul) == needle) return true;
    if (nul == std::string_view::npos) break;
    rest.remove_prefix(nul + 1);
  }
  return false;
}

// /proc/PID/environ needs ptrace read access (PTRACE_MODE_READ_FSCREDS):
// CAP_SYS_PTRACE, which the shipped unit's bounding set leaves out, or a
// caller whose fsuid and fsgid equal the target's real, effective and saved
// ids. A root daemon has CAP_SETUID/CAP_SETGID, so it takes the target's
// ids as its fs ids for the one open (fs ids are per thread; start-up runs
// before any other thread) and back again at once.
Result<std::string> ReadEnviron(const std::string& dir, const ProcIds& ids) {
  const std::string path = dir + "/environ";
  const uid_t uid = ids.uid[0];
  const gid_t gid = ids.gid[0];
  const bool same_uids = ids.uid[1] == uid && ids.uid[2] == uid;
  const bool same_gids = ids.gid[1] == gid && ids.gid[2] == gid;
  if (::geteuid() != 0 || !same_uids || !same_gids || (uid == 0 && gid == 0))
    return ReadFile(path, 1 << 20);
  ::setfsgid(gid);
  ::setfsuid(uid);
  auto env = ReadFile(path, 1 << 20);
  ::setfsuid(0);
  ::setfsgid(0);
  // setfsuid reports no error: check that the switch back took.
  if (::setfsuid(static_cast<uid_t>(-1)) != 0 || ::setfsgid(static_cast<gid_t>(-1)) != 0)
    std::abort();  // a daemon left with an app's fs ids must not go on
  return env;
}

// The process at `pid` carries RELSUPD_SUPERVISOR=<id>.
bool IsOurs(pid_t pid, const std::string& needle) {
  const std::string dir = "/proc/" + std::to_string(pid);
  ProcIds ids;
  if (!ReadProcIds(dir, &ids)) return false;  // gone
  auto env = ReadEnviron(dir, ids);
  return env.ok() && EnvironHas(*env, needle);
}

}  // namespace

Result<std::string> SupervisorId(const std::string& state_dir) {
  struct stat st{};
  if (::stat(state_dir.c_str(), &st) != 0)
    return Status::FromErrno("stat '" + state_dir + "'", errno);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

std::vector<pid_t> FindLeftovers(const std::string& id) {
  std::vector<pid_t> out;
  const std::string needle = "RELSUPD_SUPERVISOR=" + id;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self) continue;
    if (IsOurs(static_cast<pid_t>(pid), needle))
      out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

int KillLeftovers(const std::string& id, int wait_ms) {
  const std::string needle = "RELSUPD_SUPERVISOR=" + id;
  int found = 0;
  std::vector<Fd> pidfds;
  for (pid_t pid : FindLeftovers(id)) {
    // A pid is only a name: the process may have exited since the scan and
    // the number gone to another. A pidfd pins the process; checked once
    // more after it is open, the signal goes to the process that was
    // checked, never to a successor.
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid() || !IsOurs(pid, needle)) continue;
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0)
      continue;
    ++found;
    pidfds.push_back(std::move(pidfd));
  }
  // A pidfd polls readable once its process has exited (zombie or reaped).
  const int64_t deadline = RealClock().MonotonicMs() + wait_ms;
  for (Fd& fd : pidfds) {
    pollfd p{fd.get(), POLLIN, 0};
    const int64_t left = deadline - RealClock().MonotonicMs();
    if (left <= 0) break;
    while (::poll(&p, 1, static_cast<int>(left)) < 0 && errno == EINTR) {
    }
  }
  return found;
}

}  // namespace relsupd
