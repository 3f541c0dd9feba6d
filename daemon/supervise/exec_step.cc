#include "daemon/supervise/exec_step.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "daemon/supervise/exec_strings.h"

namespace relsupd {
namespace {

// At most this many fds handed over (3 + this must fit the child's table).
constexpr size_t kMaxPassFds = 253;
constexpr size_t kChildStack = 64 * 1024;

// ---------------------------------------------------------------------------
// The child's side. Everything here runs in the clone child on the daemon's
// memory: raw system calls, no allocation, writes only to its own stack and
// to the StepError the parent handed it.

// What a failed step leaves for the parent.
struct StepError {
  const char* step = nullptr;  // a string literal; "" for the exec itself
  char what[320] = {};
  int err = 0;
  int exit_code = kExecStepSetupFailed;
};

// Appends to a fixed buffer, always NUL-terminated, truncating.
struct Text {
  char* p;
  char* end;
  void Put(const char* s) {
    while (s != nullptr && *s != '\0' && p + 1 < end) *p++ = *s++;
    *p = '\0';
  }
  void Put(long v) {
    char digits[24];
    int n = 0;
    unsigned long u = v < 0 ? 0UL - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
    do {
      digits[n++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (v < 0) Put("-");
    while (n > 0 && p + 1 < end) *p++ = digits[--n];
    *p = '\0';
  }
};

// Records the failure and ends the child. `parts` are C strings and numbers.
template <typename... Parts>
[[noreturn]] void Fail(StepError* e, const char* step, int err, int exit_code, Parts... parts) {
  Text t{e->what, e->what + sizeof e->what};
  (t.Put(parts), ...);
  e->step = step;
  e->err = err;
  e->exit_code = exit_code;
  ::syscall(SYS_exit_group, exit_code);
  __builtin_unreachable();
}

// Unsigned decimal, digits only, at most `max`.
bool ParseDecimal(const char* s, uint64_t max, uint64_t* out) {
  if (s == nullptr || *s == '\0') return false;
  uint64_t v = 0;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(*s - '0');
    if (v > (max - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

// /proc/self/fd without opendir (which would malloc), for kernels before
// close_range (5.9). Closing an fd while listing is safe: the listing walks
// the fd table by number and entries below the cursor are never revisited.
int CloseViaProcSelfFd(int first) {
  const long dir = ::syscall(SYS_openat, AT_FDCWD, "/proc/self/fd",
                             O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return errno;
  alignas(8) char buf[4096];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n < 0) {
      const int err = errno;
      ::syscall(SYS_close, dir);
      return err;
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      struct Dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[1];
      };
      const auto* d = reinterpret_cast<const Dirent64*>(buf + off);
      off += d->d_reclen;
      uint64_t fd = 0;
      if (!ParseDecimal(d->d_name, INT_MAX, &fd)) continue;  // "." and ".."
      if (static_cast<long>(fd) >= first && static_cast<long>(fd) != dir)
        ::syscall(SYS_close, static_cast<int>(fd));
    }
  }
  ::syscall(SYS_close, dir);
  return 0;
}

int CloseFdsRaw(int first, CloseMethod method) {
  if (method == CloseMethod::kBest) {
    if (::syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, 0) == 0) return 0;
    // ENOSYS before Linux 5.9 (and EINVAL under some seccomp filters that
    // predate it): fall back. Anything else is a real failure.
    if (errno != ENOSYS && errno != EINVAL) return errno;
  }
  const int err = CloseViaProcSelfFd(first);
  if (err == 0 || method == CloseMethod::kProcSelfFd) return err;
  // No /proc (a bare chroot): every possible fd, up to the soft limit.
  struct rlimit nofile;
  rlim_t max = 65536;
  if (::syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &nofile) == 0 &&
      nofile.rlim_cur != RLIM_INFINITY)
    max = nofile.rlim_cur;
  if (max > static_cast<rlim_t>(1) << 20) max = static_cast<rlim_t>(1) << 20;
  for (rlim_t fd = static_cast<rlim_t>(first); fd < max; ++fd)
    ::syscall(SYS_close, static_cast<int>(fd));
  return 0;
}

// The kernel's struct sigaction (not glibc's, whose mask is 128 bytes).
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

const char* RlimitName(int resource);

// Everything the child needs, prepared by the parent.
struct ChildArgs {
  const char* const* paths = nullptr;  // candidates, nullptr-terminated
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  char* listen_pid = nullptr;  // digits slot in envp, or nullptr
  char* watchdog_pid = nullptr;  // likewise
  const char* cwd = nullptr;
  const int* fds = nullptr;  // become 0 .. nfds-1
  int nfds = 0;
  const char* cgroup_procs = nullptr;
  const ExecRlimit* rlimits = nullptr;
  size_t nrlimits = 0;
  bool change_ids = false;
  const gid_t* groups = nullptr;
  size_t ngroups = 0;
  gid_t gid = 0;
  uid_t uid = 0;
  pid_t ppid = 0;  // 0: no PR_SET_PDEATHSIG
  mode_t umask = 022;
  bool controlling_tty = false;
  // > 0: the child shares the daemon's fd table (CLONE_FILES) and first
  // makes a private one holding only the fds below this.
  int unshare_below = 0;
  StepError* error = nullptr;
};

// The steps of ChildMain, in order (exec_step.h numbers them). Each runs in
// the clone child under the rules above and ends it through Fail().

// Step 0. Before anything touches an fd: from here on the table is the
// child's. Only the fds below the spawn slots are copied, not the daemon's
// 3,000.
void UnshareFdTable(const ChildArgs& a) {
  if (a.unshare_below > 0 &&
      ::syscall(SYS_close_range, static_cast<unsigned>(a.unshare_below), ~0U,
                CLOSE_RANGE_UNSHARE) != 0) {
    // Before Linux 5.9: a private copy of the whole table.
    if (::syscall(SYS_unshare, CLONE_FILES) != 0)
      Fail(a.error, "fds", errno, kExecStepSetupFailed, "cannot unshare the fd table");
  }
}

// Step 3.
void JoinCgroup(const ChildArgs& a) {
  StepError* e = a.error;
  const long fd = ::syscall(SYS_openat, AT_FDCWD, a.cgroup_procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) Fail(e, "cgroup", errno, kExecStepSetupFailed, "cannot open '", a.cgroup_procs, "'");
  // "0" is "the writing process".
  const long w = ::syscall(SYS_write, fd, "0\n", 2);
  const int err = errno;
  ::syscall(SYS_close, fd);
  if (w != 2) Fail(e, "cgroup", w < 0 ? err : EIO, kExecStepSetupFailed, "cannot join '", a.cgroup_procs, "'");
}

// Step 4. Before the rlimits: a lower nofile would refuse F_DUPFD above it
// (EINVAL) when a source sits above the child's limit.
void MoveFds(const ChildArgs& a) {
  StepError* e = a.error;
  // Sources may sit on each other's targets: first copy every one above
  // all of them, then onto its target (dup3 without O_CLOEXEC: inherited).
  int above = a.nfds;
  for (int i = 0; i < a.nfds; ++i)
    if (a.fds[i] >= above) above = a.fds[i] + 1;
  int copies[3 + kMaxPassFds];
  for (int i = 0; i < a.nfds; ++i) {
    const long c = ::syscall(SYS_fcntl, a.fds[i], F_DUPFD_CLOEXEC, above);
    if (c < 0)
      Fail(e, "fds", errno, kExecStepSetupFailed, "cannot hand over fd ", static_cast<long>(a.fds[i]),
           " as fd ", static_cast<long>(i));
    copies[i] = static_cast<int>(c);
  }
  for (int i = 0; i < a.nfds; ++i) {
    if (::syscall(SYS_dup3, copies[i], i, 0) < 0)
      Fail(e, "fds", errno, kExecStepSetupFailed, "cannot move fd ", static_cast<long>(a.fds[i]),
           " to fd ", static_cast<long>(i));
  }
  if (const int err = CloseFdsRaw(a.nfds, CloseMethod::kBest); err != 0)
    Fail(e, "close fds", err, kExecStepSetupFailed, "from fd ", static_cast<long>(a.nfds));
}

// Step 5.
void SetRlimits(const ChildArgs& a) {
  for (size_t i = 0; i < a.nrlimits; ++i) {
    const struct rlimit rl = {a.rlimits[i].soft, a.rlimits[i].hard};
    if (::syscall(SYS_prlimit64, 0, a.rlimits[i].resource, &rl, nullptr) != 0)
      Fail(a.error, "rlimit", errno, kExecStepSetupFailed, "cannot set ", RlimitName(a.rlimits[i].resource));
  }
}

// Step 6. Raw calls: glibc's wrappers would signal every thread of the
// daemon (they share our memory) to change their ids too.
void ChangeIds(const ChildArgs& a) {
  StepError* e = a.error;
  if (::syscall(SYS_setgroups, a.ngroups, a.groups) != 0)
    Fail(e, "groups", errno, kExecStepSetupFailed, "cannot set ", static_cast<long>(a.ngroups), " groups");
  if (::syscall(SYS_setresgid, a.gid, a.gid, a.gid) != 0)
    Fail(e, "gid", errno, kExecStepSetupFailed, "cannot set gid ", static_cast<long>(a.gid));
  if (::syscall(SYS_setresuid, a.uid, a.uid, a.uid) != 0)
    Fail(e, "uid", errno, kExecStepSetupFailed, "cannot set uid ", static_cast<long>(a.uid));
  // Trust but verify: a set*id that half-worked must not start the app
  // with a privileged real or saved id it could switch back to.
  gid_t rg = 0, eg = 0, sg = 0;
  if (::syscall(SYS_getresgid, &rg, &eg, &sg) != 0 || rg != a.gid || eg != a.gid || sg != a.gid)
    Fail(e, "gid", 0, kExecStepSetupFailed, "gid is not ", static_cast<long>(a.gid), " after setresgid");
  uid_t ru = 0, eu = 0, su = 0;
  if (::syscall(SYS_getresuid, &ru, &eu, &su) != 0 || ru != a.uid || eu != a.uid || su != a.uid)
    Fail(e, "uid", 0, kExecStepSetupFailed, "uid is not ", static_cast<long>(a.uid), " after setresuid");
}

// Step 7.
void SetParentDeathSignal(const ChildArgs& a) {
  if (::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
    Fail(a.error, "pdeathsig", errno, kExecStepSetupFailed, "cannot set");
  // The parent may have died before the prctl: then we were reparented
  // and no signal will ever come.
  const long ppid = ::syscall(SYS_getppid);
  if (ppid != a.ppid)
    Fail(a.error, "pdeathsig", 0, kExecStepSetupFailed, "parent ", static_cast<long>(a.ppid),
         " is gone (parent is now ", ppid, ")");
}

// Step 9. execve resets handlers itself but keeps SIG_IGN, which is what
// this is for (a daemon ignoring SIGPIPE must not pass that on); a caught
// signal is reset too, for the moment between the unblocking and the exec.
// Only the signals that are not SIG_DFL: 3 system calls to read the list,
// where resetting all 62 took 60 of the child's 80 calls before its exec
// (2 us each on a slow VM).
// Dispositions first, then the mask: a signal pending since the clone meets
// SIG_DFL.
void ResetSignals(const ChildArgs& a) {
  uint64_t reset = ~uint64_t{0};
  char status[4096];  // about 1.5 KiB
  const long fd = ::syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    const long n = ::syscall(SYS_read, fd, status, sizeof status);
    ::syscall(SYS_close, fd);
    if (n > 0) reset = NonDefaultSignals(status, static_cast<size_t>(n));
  }
  KernelSigaction dfl{};
  dfl.handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || (reset & (uint64_t{1} << (sig - 1))) == 0) continue;
    ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
  }
  const uint64_t none = 0;
  if (::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none) != 0)
    Fail(a.error, "signals", errno, kExecStepSetupFailed, "cannot unblock signals");
}

// Step 11. The PATH search, as execvp does it: a missing candidate moves
// on, a forbidden one is remembered, anything else is the answer.
[[noreturn]] void ExecCandidates(const ChildArgs& a) {
  int err = ENOENT;
  bool denied = false;
  for (const char* const* p = a.paths; *p != nullptr; ++p) {
    ::syscall(SYS_execve, *p, a.argv, a.envp);
    err = errno;
    if (err == EACCES) {
      denied = true;
    } else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
               err != ETIMEDOUT) {
      break;
    }
  }
  if (denied && (err == ENOENT || err == ENOTDIR)) err = EACCES;
  Fail(a.error, "", err, (err == ENOENT || err == ENOTDIR) ? kExecStepNotFound : kExecStepCannotExecute,
       "cannot run '", a.argv[0], "'");
}

int ChildMain(void* arg) {
  const ChildArgs& a = *static_cast<const ChildArgs*>(arg);
  StepError* e = a.error;
  UnshareFdTable(a);
  if (::syscall(SYS_setsid) < 0) Fail(e, "setsid", errno, kExecStepSetupFailed, "cannot start a session");
  if (a.cwd != nullptr && ::syscall(SYS_chdir, a.cwd) != 0)
    Fail(e, "chdir", errno, kExecStepSetupFailed, "cannot enter '", a.cwd, "'");
  if (a.cgroup_procs != nullptr) JoinCgroup(a);
  MoveFds(a);
  if (a.controlling_tty && ::syscall(SYS_ioctl, 0, TIOCSCTTY, 0) != 0)
    Fail(e, "tty", errno, kExecStepSetupFailed, "cannot make fd 0 the controlling terminal");
  SetRlimits(a);
  if (a.change_ids) ChangeIds(a);
  if (a.ppid != 0) SetParentDeathSignal(a);
  if (a.listen_pid != nullptr || a.watchdog_pid != nullptr) {
    const long pid = ::syscall(SYS_getpid);
    for (char* slot : {a.listen_pid, a.watchdog_pid}) {
      if (slot == nullptr) continue;
      Text t{slot, slot + 20};
      t.Put(pid);
    }
  }
  ResetSignals(a);
  ::syscall(SYS_umask, a.umask);
  ExecCandidates(a);
}

// ---------------------------------------------------------------------------
// The parent's side.

struct RlimitNameEntry {
  const char* name;
  int resource;
};
constexpr RlimitNameEntry kRlimitNames[] = {
    {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"core", RLIMIT_CORE},
    {"as", RLIMIT_AS},         {"fsize", RLIMIT_FSIZE}, {"stack", RLIMIT_STACK},
    {"cpu", RLIMIT_CPU},       {"memlock", RLIMIT_MEMLOCK},
};

const char* RlimitName(int resource) {
  for (const RlimitNameEntry& n : kRlimitNames)
    if (n.resource == resource) return n.name;
  return "?";
}

bool ParseRlimitValue(const std::string& s, rlim_t* out) {
  if (s == "infinity") {
    *out = RLIM_INFINITY;
    return true;
  }
  uint64_t v = 0;
  // RLIM_INFINITY itself is spelled "infinity", not as a number.
  if (!ParseDecimal(s.c_str(), static_cast<uint64_t>(RLIM_INFINITY) - 1, &v)) return false;
  *out = static_cast<rlim_t>(v);
  return true;
}

}  // namespace

Result<ExecRlimit> ParseRlimit(const std::string& arg) {
  ExecRlimit out;
  const size_t eq = arg.find('=');
  const size_t colon = arg.find(':', eq == std::string::npos ? 0 : eq);
  if (eq == std::string::npos || colon == std::string::npos)
    return InvalidArgument("rlimit '" + arg + "': expected NAME=SOFT:HARD");
  const std::string name = arg.substr(0, eq);
  bool known = false;
  for (const RlimitNameEntry& n : kRlimitNames) {
    if (name == n.name) {
      out.resource = n.resource;
      known = true;
    }
  }
  if (!known)
    return InvalidArgument("rlimit '" + arg +
                           "': unknown limit (nofile, nproc, core, as, fsize, stack, cpu, memlock)");
  if (!ParseRlimitValue(arg.substr(eq + 1, colon - eq - 1), &out.soft) ||
      !ParseRlimitValue(arg.substr(colon + 1), &out.hard))
    return InvalidArgument("rlimit '" + arg + "': SOFT and HARD must be numbers or 'infinity'");
  // RLIM_INFINITY is the largest rlim_t, so this also covers "infinity".
  if (out.soft > out.hard) return InvalidArgument("rlimit '" + arg + "': SOFT exceeds HARD");
  return out;
}

namespace {

// Spawns are serialised (one child stack, the slots); the daemon spawns
// from its loop thread only.
std::mutex g_spawn_mutex;

// ReserveSpawnSlots' fds: `count` contiguous fds from `base`, each holding
// `placeholder`'s /dev/null between spawns.
struct SpawnSlots {
  int base = -1;
  int count = 0;
  int placeholder = -1;
};
SpawnSlots g_slots;

}  // namespace

Status ReserveSpawnSlots(int count) {
  std::lock_guard<std::mutex> lock(g_spawn_mutex);
  if (g_slots.base >= 0) return Status::Ok();
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0) return Status::FromErrno("cannot open /dev/null", errno);
  int base = 3;
  std::vector<int> got;
  for (;;) {
    bool contiguous = true;
    for (int i = 0; i < count; ++i) {
      const int fd = ::fcntl(null, F_DUPFD_CLOEXEC, base + i);
      if (fd < 0) {
        const int err = errno;
        for (int g : got) ::close(g);
        ::close(null);
        return Status::FromErrno("cannot reserve spawn fd slots", err);
      }
      got.push_back(fd);
      if (fd != base + i) {  // base + i is taken: start over at the free fd
        contiguous = false;
        base = fd;
        break;
      }
    }
    if (contiguous) break;
    for (int g : got) ::close(g);
    got.clear();
  }
  g_slots = SpawnSlots{base, count, null};
  return Status::Ok();
}

void ReleaseSpawnSlots() {
  std::lock_guard<std::mutex> lock(g_spawn_mutex);
  if (g_slots.base < 0) return;
  for (int i = 0; i < g_slots.count; ++i) ::close(g_slots.base + i);
  ::close(g_slots.placeholder);
  g_slots = SpawnSlots{};
}

namespace {

Status CheckRequest(const ExecRequest& req) {
  if (req.argv.empty() || req.argv[0].empty()) return InvalidArgument("no program to run");
  // A uid without its gid would leave the app in the daemon's group (root):
  // the primary group is never guessed.
  if (req.uid && !req.gid) return InvalidArgument("a uid needs a gid");
  if (req.groups.size() > static_cast<size_t>(NGROUPS_MAX))
    return InvalidArgument("more than " + std::to_string(NGROUPS_MAX) + " groups");
  if (req.pass_fds.size() > kMaxPassFds)
    return InvalidArgument("more than " + std::to_string(kMaxPassFds) + " fds to hand over");
  return Status::Ok();
}

ChildArgs MakeChildArgs(const ExecRequest& req, ExecStrings* s,
                        const std::vector<int>& fds, StepError* error) {
  ChildArgs a;
  a.paths = s->paths.data();
  a.argv = s->argv.data();
  a.envp = s->envp.data();
  a.listen_pid = s->listen_pid.empty()
                     ? nullptr
                     : s->listen_pid.data() + std::strlen("LISTEN_PID=");
  a.watchdog_pid = s->watchdog_pid.empty()
                       ? nullptr
                       : s->watchdog_pid.data() + std::strlen("WATCHDOG_PID=");
  a.cwd = req.cwd.empty() ? nullptr : req.cwd.c_str();
  a.fds = fds.data();
  a.nfds = static_cast<int>(fds.size());
  a.cgroup_procs = s->cgroup_procs.empty() ? nullptr : s->cgroup_procs.c_str();
  a.rlimits = req.rlimits.data();
  a.nrlimits = req.rlimits.size();
  a.change_ids = req.uid.has_value();
  a.groups = req.groups.data();
  a.ngroups = req.groups.size();
  a.gid = req.gid.value_or(0);
  a.uid = req.uid.value_or(0);
  a.ppid = req.pdeathsig ? ::getpid() : 0;
  a.umask = req.umask;
  a.controlling_tty = req.controlling_tty;
  a.error = error;
  return a;
}

// Puts the placeholders back into the first `n` slots.
void ClearSlots(size_t n) {
  for (size_t i = 0; i < n; ++i)
    ::dup3(g_slots.placeholder, g_slots.base + static_cast<int>(i), O_CLOEXEC);
}

// Moves the child's fds into the slots (`fds` then names the slots).
// REQUIRES: g_spawn_mutex held, the slots reserved and enough of them.
Status FillSlots(std::vector<int>* fds) {
  for (size_t i = 0; i < fds->size(); ++i) {
    const int slot = g_slots.base + static_cast<int>(i);
    if (::dup3((*fds)[i], slot, O_CLOEXEC) < 0) {
      const int err = errno;
      ClearSlots(i);
      return Status::FromErrno("cannot hand fd " + std::to_string((*fds)[i]) + " to the child", err);
    }
    (*fds)[i] = slot;
  }
  return Status::Ok();
}

// One stack for every child: a child is done with it once the clone
// returns (it exec'd or exited). Guarded by g_spawn_mutex. Not mmap'd per
// spawn: mmap, munmap and the fresh pages' faults are a measurable part of
// a restart.
alignas(64) char g_child_stack[kChildStack];

// clone() with every signal blocked: until its signal reset, the child
// would run the daemon's handlers on the daemon's memory. Raw: glibc's
// sigfillset/pthread_sigmask leave its two internal signals (SIGCANCEL,
// SIGSETXID) unblocked, as its posix_spawn does not. Returns the pid, or
// -1 with the clone's errno in `*clone_err`.
pid_t CloneBlocked(ChildArgs* a, int flags, int* pidfd, int* clone_err) {
  const uint64_t all = ~uint64_t{0};
  uint64_t old = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
  const pid_t pid = ::clone(&ChildMain, g_child_stack + kChildStack, flags, a, pidfd);
  *clone_err = errno;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, sizeof old);
  return pid;
}

// The child failed a step and _exited: reaps it (it is gone already or
// about to be; the vfork ended at its exit) and says what failed.
Status ReapFailedChild(int pidfd, const StepError& error) {
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED) != 0 &&
         errno == EINTR) {
  }
  ::close(pidfd);
  std::string message = error.step[0] != '\0' ? std::string(error.step) + ": " : "";
  message += error.what;
  if (error.err != 0) message += std::string(": ") + std::strerror(error.err);
  const StatusCode code = error.exit_code == kExecStepNotFound      ? StatusCode::kNotFound
                          : error.exit_code == kExecStepCannotExecute ? StatusCode::kPermissionDenied
                                                                      : StatusCode::kIoError;
  return Status(code, message, error.err);
}

}  // namespace

Result<ClonedChild> CloneExec(const ExecRequest& req, const ExecStdio& stdio) {
  RETURN_IF_ERROR(CheckRequest(req));
  ExecStrings strings;
  BuildExecStrings(req, &strings);
  std::vector<int> fds = {stdio.in, stdio.out, stdio.err};
  fds.insert(fds.end(), req.pass_fds.begin(), req.pass_fds.end());
  StepError error;
  ChildArgs a = MakeChildArgs(req, &strings, fds, &error);

  // A mutex in case two threads spawn; the daemon spawns from its loop
  // thread only.
  std::lock_guard<std::mutex> lock(g_spawn_mutex);
  // With the slots reserved, the child shares the fd table and copies only
  // the fds below the slots' end into its own (copying and then closing
  // 3,000 fds took 0.6 ms per spawn): the fds it needs go into the slots,
  // and the placeholders come back after the clone.
  int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD;
  const bool slots = g_slots.base >= 0 && fds.size() <= static_cast<size_t>(g_slots.count);
  if (slots) {
    RETURN_IF_ERROR(FillSlots(&fds));
    flags |= CLONE_FILES;
    a.unshare_below = g_slots.base + g_slots.count;
  }
  int pidfd = -1;
  int clone_err = 0;
  const pid_t pid = CloneBlocked(&a, flags, &pidfd, &clone_err);
  if (slots) ClearSlots(fds.size());
  if (pid < 0) return Status::FromErrno("clone", clone_err);
  if (error.step == nullptr) return ClonedChild{pid, pidfd};
  return ReapFailedChild(pidfd, error);
}

uint64_t NonDefaultSignals(const char* status, size_t n) {
  constexpr uint64_t kAll = ~uint64_t{0};
  // The hex mask after `key` at the start of a line; false when malformed.
  auto field = [&](const char* key, uint64_t* out) {
    for (size_t line = 0; line < n;) {
      size_t i = line;
      const char* k = key;
      while (*k != '\0' && i < n && status[i] == *k) ++i, ++k;
      if (*k == '\0') {
        while (i < n && (status[i] == ' ' || status[i] == '\t')) ++i;
        uint64_t v = 0;
        int digits = 0;
        for (; i < n && status[i] != '\n'; ++i, ++digits) {
          const char c = status[i];
          int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
          if (d < 0 || digits == 16) return false;
          v = v << 4 | static_cast<uint64_t>(d);
        }
        if (digits == 0 || i == n) return false;  // empty, or cut short
        *out = v;
        return true;
      }
      while (line < n && status[line] != '\n') ++line;
      ++line;
    }
    return false;
  };
  uint64_t ignored = 0;
  uint64_t caught = 0;
  if (!field("SigIgn:", &ignored) || !field("SigCgt:", &caught)) return kAll;
  return ignored | caught;
}

int ExecStepExitCode(const Status& status) {
  switch (status.code()) {
    case StatusCode::kNotFound:
      return kExecStepNotFound;
    case StatusCode::kPermissionDenied:
      return kExecStepCannotExecute;
    default:
      return kExecStepSetupFailed;
  }
}

int CloseFdsFrom(int first, CloseMethod method) { return CloseFdsRaw(first, method); }

}  // namespace relsupd
