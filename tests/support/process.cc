#include "tests/support/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <thread>

#include "tests/support/failure.h"
#include "tests/support/wait.h"

extern char** environ;

namespace relsupd::support {
namespace {

// Between polls of a child when pidfd_open is not available.
constexpr auto kPollPace = std::chrono::milliseconds(5);

// Variables a test daemon must not inherit from whoever runs the tests
// (systemd, a developer's shell): they would change its behaviour.
constexpr const char* kScrubbed[] = {
    "NOTIFY_SOCKET", "WATCHDOG_USEC",  "WATCHDOG_PID",   "LISTEN_FDS",
    "LISTEN_PID",    "LISTEN_FDNAMES", "JOURNAL_STREAM", "RELSUPD_SOCKET",
};

std::string EnvName(std::string_view entry) {
  return std::string(entry.substr(0, entry.find('=')));
}

ExitStatus FromWaitStatus(int ws) {
  ExitStatus st;
  st.wait_status = ws;
  if (WIFEXITED(ws)) st.code = WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) st.signal = WTERMSIG(ws);
  return st;
}

// Child side of Spawn: only async-signal-safe calls from here to execve.
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, int in,
                            int out, int err, const SpawnOptions& options,
                            pid_t parent) {
  if (options.die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    ::setpgid(0, 0);
  }
  const int fds[3] = {in, out, err};
  for (int target = 0; target < 3; ++target) {
    if (fds[target] == target) {
      int flags = ::fcntl(target, F_GETFD);
      ::fcntl(target, F_SETFD, flags & ~FD_CLOEXEC);
    } else if (::dup2(fds[target], target) < 0) {
      ::_exit(126);
    }
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  if (options.max_open_files != 0) {
    rlimit rl{options.max_open_files, options.max_open_files};
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(124);
  }
  if (const auto& as = options.as) {
    if (::setgroups(1, &as->gid) != 0 || ::setgid(as->gid) != 0 ||
        ::setuid(as->uid) != 0)
      ::_exit(125);
  }
  ::execve(argv[0], argv, envp);
  ::_exit(127);
}

// posix_spawn of `argv` with the given stdio fds, default signal handling
// and an empty signal mask.
pid_t PosixSpawn(char* const* argv, char* const* envp, int in, int out,
                 int err) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  const int fds[3] = {in, out, err};
  for (int target = 0; target < 3; ++target)
    posix_spawn_file_actions_adddup2(&actions, fds[target], target);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    FailErrno(std::string("posix_spawn ") + argv[0]);
  }
  return pid;
}

// A pseudo-terminal pair, both ends close-on-exec, with output
// post-processing off (no "\n" -> "\r\n").
void OpenPty(int* master, int* slave) {
  int m = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) FailErrno("posix_openpt");
  if (::grantpt(m) != 0 || ::unlockpt(m) != 0) FailErrno("grantpt/unlockpt");
  char name[128];
  if (::ptsname_r(m, name, sizeof name) != 0) FailErrno("ptsname_r");
  int s = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) FailErrno(std::string("open ") + name);
  termios t;
  if (::tcgetattr(s, &t) != 0) FailErrno("tcgetattr");
  t.c_oflag &= ~static_cast<tcflag_t>(OPOST);
  if (::tcsetattr(s, TCSANOW, &t) != 0) FailErrno("tcsetattr");
  *master = m;
  *slave = s;
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (timed_out) return "did not exit in time (killed)";
  if (signal != 0) return std::string("killed by signal ") + strsignal(signal);
  return "exit code " + std::to_string(code);
}

std::optional<Credentials> NobodyCredentials() {
  struct passwd pw, *res = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r("nobody", &pw, buf.data(), buf.size(), &res) != 0 || !res)
    return std::nullopt;
  return Credentials{pw.pw_uid, pw.pw_gid};
}

std::optional<std::string> GroupNameOf(gid_t gid) {
  struct group gr, *res = nullptr;
  std::vector<char> buf(65536);
  if (getgrgid_r(gid, &gr, buf.data(), buf.size(), &res) != 0 || !res)
    return std::nullopt;
  return std::string(gr.gr_name);
}

std::vector<std::string> ChildEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string name = EnvName(*e);
    bool drop = false;
    for (const char* s : kScrubbed) drop = drop || name == s;
    for (const std::string& x : extra) drop = drop || EnvName(x) == name;
    if (!drop) env.emplace_back(*e);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

pid_t Spawn(const std::vector<std::string>& argv,
            const std::vector<std::string>& env, int in, int out, int err,
            const SpawnOptions& options) {
  // Everything the child needs is built before fork.
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  // posix_spawn does not copy the (large, under ASan) address space; only
  // a change of user, limits or parent-death signal needs fork + exec.
  if (!options.as && options.max_open_files == 0 && !options.die_with_parent)
    return PosixSpawn(cargv.data(), cenv.data(), in, out, err);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) FailErrno("fork");
  if (pid == 0)
    ExecChild(cargv.data(), cenv.data(), in, out, err, options, parent);
  return pid;
}

bool WaitPid(pid_t pid, int timeout_ms, ExitStatus* st) {
  const int64_t deadline = NowMs() + timeout_ms;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  for (;;) {
    int ws = 0;
    pid_t r = ::waitpid(pid, &ws, WNOHANG);
    if (r == pid) {
      if (pidfd >= 0) ::close(pidfd);
      *st = FromWaitStatus(ws);
      return true;
    }
    if (r < 0 && errno != EINTR) {
      if (pidfd >= 0) ::close(pidfd);
      FailErrno("waitpid(" + std::to_string(pid) + ")");
    }
    if (NowMs() >= deadline) {
      if (pidfd >= 0) ::close(pidfd);
      return false;
    }
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, RemainingMs(deadline));
    } else {
      std::this_thread::sleep_for(kPollPace);
    }
  }
}

int OpenDevNull() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) FailErrno("open /dev/null");
  return fd;
}

std::string ProcResult::Describe() const {
  return status.ToString() + "\n--- stdout ---\n" + out + "--- stderr ---\n" +
         err + "---";
}

ProcResult RunProcess(const std::vector<std::string>& argv,
                      const RunOptions& options) {
  int out_pipe[2], err_pipe[2];
  if (options.stdout_pty) {
    OpenPty(&out_pipe[0], &out_pipe[1]);
  } else if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    FailErrno("pipe2");
  }
  if (options.merge_stderr) {
    err_pipe[0] = -1;
    err_pipe[1] = ::fcntl(out_pipe[1], F_DUPFD_CLOEXEC, 0);
    if (err_pipe[1] < 0) FailErrno("dup");
  } else if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    FailErrno("pipe2");
  }
  int in = options.stdin_path.empty()
               ? OpenDevNull()
               : ::open(options.stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) FailErrno("open " + options.stdin_path);
  SpawnOptions spawn;
  spawn.as = options.as;
  pid_t pid =
      Spawn(argv, ChildEnv(options.env), in, out_pipe[1], err_pipe[1], spawn);
  ::close(in);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  ProcResult r;
  const int64_t deadline = NowMs() + options.timeout_ms;
  // poll() passes over a negative fd: with merge_stderr, only stdout's.
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_count = options.merge_stderr ? 1 : 2;
  bool timed_out = false;
  while (open_count > 0) {
    int n = ::poll(fds, 2, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) FailErrno("poll");
    if (n == 0) {
      timed_out = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char chunk[65536];
      ssize_t got = ::read(fds[i].fd, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      // (A pty's master reads EIO once the child's side is closed.)
      if (got <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      } else {
        sinks[i]->append(chunk, static_cast<size_t>(got));
      }
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) ::close(p.fd);
  if (timed_out || !WaitPid(pid, RemainingMs(deadline), &r.status)) {
    ::kill(pid, SIGKILL);
    WaitPid(pid, 10'000, &r.status);
    r.status.timed_out = true;
  }
  // Whatever the test expects of this run, a sanitizer report fails it.
  std::string report = SanitizerReport(options.merge_stderr ? r.out : r.err,
                                       "'" + argv[0] + "'");
  if (!report.empty()) ReportFailure(report);
  return r;
}

std::string SanitizerReport(const std::string& output, const std::string& who) {
  for (const char* mark : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                           "runtime error:", "WARNING: ThreadSanitizer"}) {
    size_t pos = output.find(mark);
    if (pos != std::string::npos)
      return "sanitizer report from " + who + ": " +
             output.substr(pos, std::min<size_t>(4096, output.size() - pos));
  }
  return "";
}

}  // namespace relsupd::support
