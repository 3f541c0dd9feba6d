#include "daemon/supervise/exec_step.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace relsupd {
namespace {

// Unsigned decimal, digits only (no sign, no spaces, no base prefix), at
// most `max`. strtoull would accept " -1" as a huge number.
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

bool ParseOctalMode(const char* s, mode_t* out) {
  if (s == nullptr || *s == '\0') return false;
  unsigned v = 0;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '7') return false;
    v = v * 8 + static_cast<unsigned>(*s - '0');
    if (v > 0777) return false;
  }
  *out = static_cast<mode_t>(v);
  return true;
}

struct RlimitName {
  const char* name;
  int resource;
};
constexpr RlimitName kRlimitNames[] = {
    {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},     {"core", RLIMIT_CORE},
    {"as", RLIMIT_AS},         {"fsize", RLIMIT_FSIZE},     {"stack", RLIMIT_STACK},
    {"cpu", RLIMIT_CPU},       {"memlock", RLIMIT_MEMLOCK},
};

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

// "NAME=SOFT:HARD" -> limit; returns the error, empty on success.
std::string ParseRlimit(const std::string& arg, ExecRlimit* out) {
  const size_t eq = arg.find('=');
  const size_t colon = arg.find(':', eq == std::string::npos ? 0 : eq);
  if (eq == std::string::npos || colon == std::string::npos)
    return "--rlimit '" + arg + "': expected NAME=SOFT:HARD";
  const std::string name = arg.substr(0, eq);
  bool known = false;
  for (const RlimitName& n : kRlimitNames) {
    if (name == n.name) {
      out->resource = n.resource;
      known = true;
    }
  }
  if (!known)
    return "--rlimit '" + arg +
           "': unknown limit (nofile, nproc, core, as, fsize, stack, cpu, memlock)";
  if (!ParseRlimitValue(arg.substr(eq + 1, colon - eq - 1), &out->soft) ||
      !ParseRlimitValue(arg.substr(colon + 1), &out->hard))
    return "--rlimit '" + arg + "': SOFT and HARD must be numbers or 'infinity'";
  // RLIM_INFINITY is the largest rlim_t, so this also covers "infinity".
  if (out->soft > out->hard) return "--rlimit '" + arg + "': SOFT exceeds HARD";
  return "";
}

// "G1,G2,..." (possibly empty) -> gids; returns the error, empty on success.
std::string ParseGroups(const char* arg, std::vector<gid_t>* out) {
  const std::string list = arg;
  size_t start = 0;
  while (start < list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    uint64_t v = 0;
    // (gid_t)-1 means "unchanged" to the set*id calls, never a group.
    if (!ParseDecimal(list.substr(start, end - start).c_str(),
                      static_cast<gid_t>(-1) - 1, &v))
      return "--groups '" + list + "': expected numeric gids separated by commas";
    out->push_back(static_cast<gid_t>(v));
    start = end + 1;
    if (end + 1 == list.size()) return "--groups '" + list + "': trailing comma";
  }
  if (out->size() > static_cast<size_t>(NGROUPS_MAX))
    return "--groups: more than " + std::to_string(NGROUPS_MAX) + " groups";
  return "";
}

// Fills `e` from a printf format; returns it for `return Fail(...)`.
ExecStepError MakeError(const char* step, int err, int exit_code, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
ExecStepError MakeError(const char* step, int err, int exit_code, const char* fmt, ...) {
  ExecStepError e;
  e.step = step;
  e.err = err;
  e.exit_code = exit_code;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(e.what, sizeof e.what, fmt, ap);
  va_end(ap);
  return e;
}

ExecStepError JoinCgroup(const char* dir) {
  char path[PATH_MAX];
  const int n = std::snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  if (n < 0 || static_cast<size_t>(n) >= sizeof path)
    return MakeError("cgroup", ENAMETOOLONG, kExecStepSetupFailed, "cannot join '%s'", dir);
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return MakeError("cgroup", errno, kExecStepSetupFailed, "cannot open '%s'", path);
  // "0" is "the writing process"; the pid would be the same here.
  const ssize_t w = ::write(fd, "0\n", 2);
  const int err = errno;
  ::close(fd);
  if (w != 2)
    return MakeError("cgroup", w < 0 ? err : EIO, kExecStepSetupFailed, "cannot join '%s'",
                     dir);
  return {};
}

ExecStepError ChangeIds(const ExecStepOptions& o) {
  if (o.set_groups || o.set_uid) {
    // --uid without --groups: the daemon's own supplementary groups (root's)
    // must not follow the app, so the list becomes empty.
    if (::setgroups(o.groups.size(), o.groups.data()) != 0)
      return MakeError("groups", errno, kExecStepSetupFailed, "cannot set %zu groups",
                       o.groups.size());
  }
  if (o.set_gid && ::setresgid(o.gid, o.gid, o.gid) != 0)
    return MakeError("gid", errno, kExecStepSetupFailed, "cannot set gid %u",
                     static_cast<unsigned>(o.gid));
  if (o.set_uid && ::setresuid(o.uid, o.uid, o.uid) != 0)
    return MakeError("uid", errno, kExecStepSetupFailed, "cannot set uid %u",
                     static_cast<unsigned>(o.uid));
  // Trust but verify: a set*id that half-worked must not start the app with
  // a privileged real or saved id it could switch back to.
  if (o.set_gid) {
    gid_t r, e, s;
    if (::getresgid(&r, &e, &s) != 0 || r != o.gid || e != o.gid || s != o.gid)
      return MakeError("gid", 0, kExecStepSetupFailed, "gid is not %u after setresgid",
                       static_cast<unsigned>(o.gid));
  }
  if (o.set_uid) {
    uid_t r, e, s;
    if (::getresuid(&r, &e, &s) != 0 || r != o.uid || e != o.uid || s != o.uid ||
        ::getuid() != o.uid || ::geteuid() != o.uid)
      return MakeError("uid", 0, kExecStepSetupFailed, "uid is not %u after setresuid",
                       static_cast<unsigned>(o.uid));
  }
  return {};
}

ExecStepError ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0)
    return MakeError("signals", errno, kExecStepSetupFailed, "cannot unblock signals");
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  // execve resets handlers itself but keeps SIG_IGN, which is what this is
  // for (a daemon ignoring SIGPIPE or SIGTERM must not pass that on).
  // SIGKILL/SIGSTOP and the signals glibc reserves for itself answer
  // EINVAL; they are at their defaults anyway.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (::sigaction(sig, &dfl, nullptr) != 0 && errno != EINVAL)
      return MakeError("signals", errno, kExecStepSetupFailed, "cannot reset signal %d", sig);
  }
  return {};
}

// /proc/self/fd without opendir (which would malloc), for kernels before
// close_range (5.9). Closing an fd while listing is safe: the listing walks
// the fd table by number and entries below the cursor are never revisited.
ExecStepError CloseViaProcSelfFd(int first) {
  const int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return MakeError("close fds", errno, kExecStepSetupFailed, "/proc/self/fd");
  alignas(8) char buf[4096];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n < 0) {
      const int err = errno;
      ::close(dir);
      return MakeError("close fds", err, kExecStepSetupFailed, "/proc/self/fd");
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
      if (static_cast<int>(fd) >= first && static_cast<int>(fd) != dir)
        ::close(static_cast<int>(fd));
    }
  }
  ::close(dir);
  return {};
}

}  // namespace

ParsedExecStepArgs ParseExecStepArgs(int argc, char** argv) {
  ParsedExecStepArgs r;
  ExecStepOptions& o = r.options;
  bool seen_cgroup = false, seen_pdeathsig = false, seen_listen = false, seen_umask = false;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string opt = argv[i];
    if (opt == "--") break;
    if (opt == "--setsid") {
      o.setsid = true;
      continue;
    }
    const bool takes_value = opt == "--cgroup" || opt == "--rlimit" || opt == "--groups" ||
                             opt == "--gid" || opt == "--uid" || opt == "--pdeathsig" ||
                             opt == "--listen-fds" || opt == "--umask";
    if (!takes_value) {
      r.error = "unknown option '" + opt + "' (PROGRAM must follow '--')";
      return r;
    }
    if (i + 1 >= argc) {
      r.error = opt + " needs a value";
      return r;
    }
    char* value = argv[++i];
    // Each option but --rlimit given twice is a bug in the caller; saying so
    // beats silently picking one.
    auto once = [&](bool* seen) {
      if (*seen) r.error = opt + " given twice";
      *seen = true;
      return r.ok();
    };
    uint64_t n = 0;
    if (opt == "--cgroup") {
      if (!once(&seen_cgroup)) return r;
      if (*value == '\0') {
        r.error = "--cgroup needs a directory";
        return r;
      }
      o.cgroup_dir = value;
    } else if (opt == "--rlimit") {
      ExecRlimit limit;
      r.error = ParseRlimit(value, &limit);
      if (!r.ok()) return r;
      o.rlimits.push_back(limit);
    } else if (opt == "--groups") {
      if (!once(&o.set_groups)) return r;
      r.error = ParseGroups(value, &o.groups);
      if (!r.ok()) return r;
    } else if (opt == "--gid") {
      if (!once(&o.set_gid)) return r;
      if (!ParseDecimal(value, static_cast<gid_t>(-1) - 1, &n)) {
        r.error = "--gid '" + std::string(value) + "': expected a numeric gid";
        return r;
      }
      o.gid = static_cast<gid_t>(n);
    } else if (opt == "--uid") {
      if (!once(&o.set_uid)) return r;
      if (!ParseDecimal(value, static_cast<uid_t>(-1) - 1, &n)) {
        r.error = "--uid '" + std::string(value) + "': expected a numeric uid";
        return r;
      }
      o.uid = static_cast<uid_t>(n);
    } else if (opt == "--pdeathsig") {
      if (!once(&seen_pdeathsig)) return r;
      if (!ParseDecimal(value, INT_MAX, &n) || n == 0) {
        r.error = "--pdeathsig '" + std::string(value) + "': expected the parent's pid";
        return r;
      }
      o.pdeathsig_ppid = static_cast<pid_t>(n);
    } else if (opt == "--listen-fds") {
      if (!once(&seen_listen)) return r;
      // The cap keeps 3 + N far from overflow; no daemon hands over more.
      if (!ParseDecimal(value, 65536, &n)) {
        r.error = "--listen-fds '" + std::string(value) + "': expected a count up to 65536";
        return r;
      }
      o.listen_fds = static_cast<int>(n);
    } else if (opt == "--umask") {
      if (!once(&seen_umask)) return r;
      if (!ParseOctalMode(value, &o.umask)) {
        r.error = "--umask '" + std::string(value) + "': expected octal 0..0777";
        return r;
      }
    }
  }
  if (i >= argc) {
    r.error = "missing '-- PROGRAM ARGS...'";
    return r;
  }
  if (i + 1 >= argc || argv[i + 1][0] == '\0') {
    r.error = "missing PROGRAM after '--'";
    return r;
  }
  // A uid without its gid would leave the app in the daemon's group (root):
  // the primary group is never guessed.
  if (o.set_uid && !o.set_gid) {
    r.error = "--uid needs --gid";
    return r;
  }
  o.argv = argv + i + 1;
  return r;
}

ExecStepError KeepListenFds(int n) {
  for (int fd = 3; fd < 3 + n; ++fd) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0)
      return MakeError("listen fds", errno, kExecStepSetupFailed, "fd %d of %d", fd, n);
    if ((flags & FD_CLOEXEC) != 0 && ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) != 0)
      return MakeError("listen fds", errno, kExecStepSetupFailed, "fd %d of %d", fd, n);
  }
  return {};
}

ExecStepError CloseFdsFrom(int first, CloseMethod method) {
  if (method == CloseMethod::kBest) {
    if (::close_range(static_cast<unsigned>(first), ~0U, 0) == 0) return {};
    // ENOSYS before Linux 5.9 (and EINVAL under some seccomp filters that
    // predate it): fall back. Anything else is a real failure.
    if (errno != ENOSYS && errno != EINVAL)
      return MakeError("close fds", errno, kExecStepSetupFailed, "close_range(%d)", first);
  }
  ExecStepError e = CloseViaProcSelfFd(first);
  if (!e.failed() || method == CloseMethod::kProcSelfFd) return e;
  // No /proc (a bare chroot): every possible fd, up to the soft limit.
  struct rlimit nofile;
  rlim_t max = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY)
    max = nofile.rlim_cur;
  if (max > static_cast<rlim_t>(1) << 20) max = static_cast<rlim_t>(1) << 20;
  for (rlim_t fd = static_cast<rlim_t>(first); fd < max; ++fd) ::close(static_cast<int>(fd));
  return {};
}

ExecStepError RunExecSetup(const ExecStepOptions& o) {
  // A session leader already (e.g. spawned with UV_PROCESS_DETACHED):
  // setsid() answers EPERM, and the goal is met.
  if (o.setsid && ::setsid() < 0 && !(errno == EPERM && ::getsid(0) == ::getpid()))
    return MakeError("setsid", errno, kExecStepSetupFailed, "cannot start a session");
  if (o.cgroup_dir != nullptr) {
    ExecStepError e = JoinCgroup(o.cgroup_dir);
    if (e.failed()) return e;
  }
  for (const ExecRlimit& l : o.rlimits) {
    const struct rlimit rl = {l.soft, l.hard};
    if (::setrlimit(l.resource, &rl) != 0) {
      const char* name = "?";
      for (const RlimitName& n : kRlimitNames)
        if (n.resource == l.resource) name = n.name;
      return MakeError("rlimit", errno, kExecStepSetupFailed, "cannot set %s", name);
    }
  }
  if (ExecStepError e = ChangeIds(o); e.failed()) return e;
  if (o.pdeathsig_ppid != 0) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
      return MakeError("pdeathsig", errno, kExecStepSetupFailed, "cannot set");
    // The parent may have died before the prctl: then we were reparented
    // and no signal will ever come.
    const pid_t ppid = ::getppid();
    if (ppid != o.pdeathsig_ppid)
      return MakeError("pdeathsig", 0, kExecStepSetupFailed,
                       "parent %d is gone (parent is now %d)",
                       static_cast<int>(o.pdeathsig_ppid), static_cast<int>(ppid));
  }
  if (o.listen_fds > 0) {
    if (ExecStepError e = KeepListenFds(o.listen_fds); e.failed()) return e;
    char pid[16], count[16];
    std::snprintf(pid, sizeof pid, "%d", static_cast<int>(::getpid()));
    std::snprintf(count, sizeof count, "%d", o.listen_fds);
    if (::setenv("LISTEN_PID", pid, 1) != 0 || ::setenv("LISTEN_FDS", count, 1) != 0)
      return MakeError("listen fds", errno, kExecStepSetupFailed, "cannot set LISTEN_PID");
  } else {
    // Inherited from a socket-activated daemon, they would describe fds
    // that step 7 closes.
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
  }
  if (ExecStepError e = CloseFdsFrom(3 + o.listen_fds); e.failed()) return e;
  if (ExecStepError e = ResetSignals(); e.failed()) return e;
  ::umask(o.umask);
  return {};
}

void ExecStepFail(const ExecStepError& e) {
  char line[512];
  int n;
  const char* step = e.step != nullptr ? e.step : "";
  const char* sep = *step != '\0' ? ": " : "";
  if (e.err != 0)
    n = std::snprintf(line, sizeof line, "relsupd-exec: %s%s%s: %s\n", step, sep, e.what,
                      std::strerror(e.err));
  else
    n = std::snprintf(line, sizeof line, "relsupd-exec: %s%s%s\n", step, sep, e.what);
  if (n > 0) {
    const size_t len = static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n)
                                                             : sizeof line - 1;
    // Nothing else to do if stderr is gone: the exit code still tells.
    ssize_t ignored = ::write(2, line, len);
    (void)ignored;
  }
  ::_exit(e.exit_code);
}

void RunExecStep(const ExecStepOptions& options) {
  ExecStepError e = RunExecSetup(options);
  if (e.failed()) ExecStepFail(e);
  ::execvp(options.argv[0], options.argv);
  const int err = errno;
  // Not found anywhere (or a path component missing) is the shell's 127;
  // found but not runnable (permissions, format, a directory) is 126.
  const int code =
      (err == ENOENT || err == ENOTDIR) ? kExecStepNotFound : kExecStepCannotExecute;
  ExecStepFail(MakeError("", err, code, "cannot run '%s'", options.argv[0]));
}

std::string FindExecStep(const std::string& self_exe_dir) {
  const std::string beside = self_exe_dir + "/relsupd-exec";
  if (::access(beside.c_str(), X_OK) == 0) return beside;
  return self_exe_dir + "/../libexec/relsupd/relsupd-exec";
}

std::vector<std::string> CommandArgv(const std::string& command) {
  // POSIX sh keywords and builtins that are not programs: run directly they
  // would fail with "not found" (`exec bundle exec puma` is a common
  // Procfile line).
  static constexpr const char* kShellWords[] = {
      "!",     "{",        "}",     "case",  "do",     "done",  "elif",    "else",
      "esac",  "fi",       "for",   "if",    "in",     "then",  "until",   "while",
      ".",     "break",    "continue", "eval", "exec", "exit",  "export",  "readonly",
      "return", "set",     "shift", "times", "trap",   "unset", "cd",      "alias",
      "umask", "ulimit",   "wait",  "command", "read", "getopts", "hash",  "type",
      "jobs",  "fg",       "bg",    "local", "source", "unalias",
  };
  std::vector<std::string> words;
  std::string word;
  bool needs_shell = false;
  for (const char c : command) {
    if (c == ' ' || c == '\t') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
      continue;
    }
    // '=' matters only in the first word (an assignment: `FOO=1 prog`);
    // `prog --port=8080` runs the same either way.
    if (c == '=' && words.empty()) needs_shell = true;
    if (std::strchr("|&;<>()$`\\\"'*?[#~%{}\n", c) != nullptr && c != '\0') needs_shell = true;
    word.push_back(c);
  }
  if (!word.empty()) words.push_back(std::move(word));
  if (words.empty()) return {};
  for (const char* w : kShellWords)
    if (words[0] == w) needs_shell = true;
  if (needs_shell) return {"/bin/sh", "-c", command};
  return words;
}

}  // namespace relsupd
