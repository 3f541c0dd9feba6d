#include "tests/e2e/harness.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "cli/client.h"

extern char** environ;

namespace relsupd::e2e {
namespace {

// Between polls of something that has no fd to wait on (a socket that does
// not exist yet). Never used to wait for correctness, only to pace a poll.
constexpr auto kPollPace = std::chrono::milliseconds(5);

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what);
}
[[noreturn]] void FailErrno(const std::string& what) {
  Fail(what + ": " + std::strerror(errno));
}

int RemainingMs(int64_t deadline) {
  int64_t left = deadline - NowMs();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Variables a test daemon must not inherit from whoever runs the tests
// (systemd, a developer's shell): they would change its behaviour.
constexpr const char* kScrubbed[] = {
    "NOTIFY_SOCKET", "WATCHDOG_USEC",  "WATCHDOG_PID",   "LISTEN_FDS",
    "LISTEN_PID",    "LISTEN_FDNAMES", "JOURNAL_STREAM", "RELSUPD_SOCKET",
};

std::string EnvName(std::string_view entry) {
  return std::string(entry.substr(0, entry.find('=')));
}

std::vector<std::string> BuildEnv(const std::vector<std::string>& extra) {
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

ExitStatus FromWaitStatus(int ws) {
  ExitStatus st;
  if (WIFEXITED(ws)) st.code = WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) st.signal = WTERMSIG(ws);
  return st;
}

// Waits up to timeout_ms for `pid` to end. Returns true and fills `st` when
// it did; false when it is still running at the deadline.
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

// What a child gets beyond its argv, env and stdio.
struct ChildSetup {
  std::optional<Credentials> as;
  unsigned max_open_files = 0;  // 0: inherited
};

// Child side of Spawn: only async-signal-safe calls from here to execve.
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, int in,
                            int out, int err, const ChildSetup& setup) {
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
  if (setup.max_open_files != 0) {
    rlimit rl{setup.max_open_files, setup.max_open_files};
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(124);
  }
  if (const auto& as = setup.as) {
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

// Starts `argv` with the given stdio fds (the caller keeps and closes its
// copies). Returns the child's pid.
pid_t Spawn(const std::vector<std::string>& argv,
            const std::vector<std::string>& env, int in, int out, int err,
            const ChildSetup& setup) {
  // Everything the child needs is built before fork.
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  // posix_spawn does not copy the (large, under ASan) address space; only
  // a change of user or limits needs the fork + exec path.
  if (!setup.as && setup.max_open_files == 0)
    return PosixSpawn(cargv.data(), cenv.data(), in, out, err);
  pid_t pid = ::fork();
  if (pid < 0) FailErrno("fork");
  if (pid == 0) ExecChild(cargv.data(), cenv.data(), in, out, err, setup);
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

int OpenDevNull() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) FailErrno("open /dev/null");
  return fd;
}

sockaddr_un UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    Fail("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The tail only: a daemon that floods its log must not flood ours.
std::string LogTail(const std::string& log) {
  constexpr size_t kMaxShown = 16 * 1024;
  if (log.size() <= kMaxShown) return log;
  return "[... " + std::to_string(log.size() - kMaxShown) +
         " bytes left out ...]\n" + log.substr(log.size() - kMaxShown);
}

}  // namespace

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

std::string RelsupdBin() { return RELSUPD_BIN; }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// --- TempDir ---

TempDir::TempDir() {
  char tmpl[] = "/tmp/relsupd-e2e-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) FailErrno("mkdtemp");
  path_ = tmpl;
  if (::chmod(path_.c_str(), 0755) != 0) FailErrno("chmod " + path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec)
    std::cerr << "e2e: cannot remove " << path_ << ": " << ec.message() << '\n';
}

std::string TempDir::Path(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

std::string TempDir::WriteFile(std::string_view name,
                               std::string_view content) const {
  std::string p = Path(name);
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) FailErrno("open " + p);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      FailErrno("write " + p);
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return p;
}

// --- processes ---

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
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) FailErrno("pipe2");
  int in = OpenDevNull();
  pid_t pid = Spawn(argv, BuildEnv(options.env), in, out_pipe[1], err_pipe[1],
                    ChildSetup{options.as, 0});
  ::close(in);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  ProcResult r;
  const int64_t deadline = NowMs() + options.timeout_ms;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_count = 2;
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
  std::string report = SanitizerReport(r.err, "'" + argv[0] + "'");
  if (!report.empty()) FAIL_CHECK(report);
  return r;
}

ProcResult RunCtl(const std::string& socket,
                  const std::vector<std::string>& args,
                  const RunOptions& options) {
  std::vector<std::string> argv = {RelsupdBin(), "ctl", "--socket", socket};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, options);
}

std::string CtlOk(const std::string& socket,
                  const std::vector<std::string>& args,
                  const RunOptions& options) {
  ProcResult r = RunCtl(socket, args, options);
  if (!r.status.Exited(0)) {
    std::string cmd = "ctl";
    for (const auto& a : args) cmd += " " + a;
    Fail("'" + cmd + "' failed: " + r.Describe());
  }
  return r.out;
}

Json CtlJson(const std::string& socket, const std::vector<std::string>& args,
             const RunOptions& options) {
  std::vector<std::string> all = {"--json"};
  all.insert(all.end(), args.begin(), args.end());
  std::string out = CtlOk(socket, all, options);
  Json j = Json::parse(out, nullptr, false);
  if (j.is_discarded()) Fail("ctl --json printed no JSON: " + out);
  return j;
}

Json CallRaw(const std::string& socket, std::string_view method, Json params) {
  auto client = Client::Connect(socket);
  if (!client.ok()) Fail(client.status().message());
  Json request = {{"jsonrpc", "2.0"},
                  {"id", 1},
                  {"method", method},
                  {"params", std::move(params)}};
  auto line = client->RoundTrip(request.dump());
  if (!line.ok()) Fail(line.status().message());
  Json response = Json::parse(*line, nullptr, false);
  if (!response.is_object()) Fail("malformed response: " + *line);
  return response;
}

Json Call(const std::string& socket, std::string_view method, Json params) {
  Json response = CallRaw(socket, method, std::move(params));
  if (!response.contains("result"))
    Fail(std::string(method) + " failed: " + response.dump());
  return response["result"];
}

// --- DaemonProcess ---

DaemonProcess::DaemonProcess(const TempDir& dir, DaemonOptions options) {
  state_dir_ =
      options.state_dir.empty() ? dir.Path("state") : options.state_dir;
  socket_ = options.socket.empty() ? dir.Path("relsupd.sock") : options.socket;
  for (int n = 1;; ++n) {
    log_path_ = dir.Path("daemon-" + std::to_string(n) + ".log");
    if (::access(log_path_.c_str(), F_OK) != 0) break;
  }
  std::vector<std::string> argv = options.wrap;
  argv.insert(argv.end(), {RelsupdBin(), "daemon"});
  if (options.pass_paths) {
    argv.insert(argv.end(), {"--state-dir", state_dir_, "--socket", socket_});
  }
  if (!options.config.empty())
    argv.insert(argv.end(), {"--config", options.config});

  int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                   0644);
  if (log < 0) FailErrno("open " + log_path_);
  int in = OpenDevNull();
  pid_ = Spawn(argv, BuildEnv(options.env), in, log, log,
               ChildSetup{std::nullopt, options.max_open_files});
  ::close(in);
  ::close(log);
  if (!options.wait_ready) return;
  try {
    WaitReady();
  } catch (...) {
    // No destructor runs for a half-built object: end the child here.
    if (running()) {
      ::kill(pid_, SIGKILL);
      WaitPid(pid_, 10'000, &last_);
      pid_ = -1;
    }
    throw;
  }
}

DaemonProcess::~DaemonProcess() {
  const bool failing = std::uncaught_exceptions() > 0;
  try {
    std::string problem;
    if (running()) {
      const pid_t pid = pid_;
      ExitStatus st = Terminate();
      if (!st.Exited(0))
        problem = "daemon pid " + std::to_string(pid) +
                  " did not stop cleanly on SIGTERM: " + st.ToString();
    }
    if (problem.empty()) problem = SanitizerReport(Log(), "the daemon");
    if (!problem.empty()) {
      if (failing) {
        std::cerr << "e2e: " << problem << '\n';
      } else {
        // A daemon that crashed, hung or tripped a sanitizer fails the
        // test even when every check of the test itself passed.
        FAIL_CHECK(problem << "\n" << LogTail(Log()));
      }
    }
    if (failing) {
      std::cerr << "e2e: log of the daemon (" << log_path_ << "):\n"
                << LogTail(Log()) << "--- end of daemon log ---\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "e2e: cannot stop the daemon: " << e.what() << '\n';
  }
}

std::string DaemonProcess::Log() const { return ReadWholeFile(log_path_); }

void DaemonProcess::WaitReady(int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  std::string last_error = "no attempt";
  for (;;) {
    ExitStatus st;
    if (running() && WaitPid(pid_, 0, &st)) {
      pid_ = -1;
      last_ = st;
      Fail("daemon exited before it was ready (" + st.ToString() + "); log:\n" +
           Log());
    }
    if (!running()) Fail("daemon is not running");
    auto client = Client::Connect(socket_);
    if (client.ok()) {
      auto info = client->Call("daemon.info");
      if (info.ok() && info->value("pid", int64_t{-1}) == pid_) return;
      last_error = info.ok() ? "answered by pid " + info->dump()
                             : info.status().message();
    } else {
      last_error = client.status().message();
    }
    if (NowMs() >= deadline)
      Fail("daemon pid " + std::to_string(pid_) + " not ready within " +
           std::to_string(timeout_ms) + " ms (" + last_error + "); log:\n" +
           Log());
    std::this_thread::sleep_for(kPollPace);
  }
}

void DaemonProcess::Signal(int signum) {
  if (!running()) Fail("Signal: daemon is not running");
  if (::kill(pid_, signum) != 0) FailErrno("kill");
}

void DaemonProcess::Kill9() {
  Signal(SIGKILL);
  if (!WaitPid(pid_, 10'000, &last_)) Fail("daemon survived SIGKILL for 10 s");
  pid_ = -1;
}

ExitStatus DaemonProcess::Terminate(int timeout_ms) {
  if (!running()) return last_;
  Signal(SIGTERM);
  ExitStatus st;
  if (!WaitPid(pid_, timeout_ms, &st)) {
    ::kill(pid_, SIGKILL);
    WaitPid(pid_, 10'000, &st);
    st.timed_out = true;
  }
  pid_ = -1;
  last_ = st;
  return st;
}

ExitStatus DaemonProcess::Wait(int timeout_ms) {
  if (!running()) return last_;
  ExitStatus st;
  if (!WaitPid(pid_, timeout_ms, &st)) {
    st.timed_out = true;
    return st;  // still running; the destructor ends it
  }
  pid_ = -1;
  last_ = st;
  return st;
}

// --- RawConn ---

RawConn::RawConn(const std::string& socket) {
  sockaddr_un addr = UnixAddress(socket);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) FailErrno("socket");
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd_);
    fd_ = -1;
    errno = e;
    FailErrno("connect " + socket);
  }
}

RawConn::~RawConn() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConn::Send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return false;
    if (n < 0) FailErrno("send");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool RawConn::SendWithFds(std::string_view data, const std::vector<int>& fds) {
  if (data.empty()) Fail("SendWithFds needs at least one byte");
  std::vector<char> cbuf(CMSG_SPACE(sizeof(int) * fds.size()));
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf.data();
  msg.msg_controllen = cbuf.size();
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  ssize_t n;
  do {
    n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return false;
  if (n < 0) FailErrno("sendmsg");
  // The fds went with the first byte; the rest is plain data.
  return Send(data.substr(static_cast<size_t>(n)));
}

void RawConn::CloseWrite() {
  if (::shutdown(fd_, SHUT_WR) != 0) FailErrno("shutdown");
}

std::optional<std::string> RawConn::ReadLine(int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    char chunk[65536];
    ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::nullopt;
    buf_.append(chunk, static_cast<size_t>(got));
  }
}

Json RawConn::Exchange(std::string_view line, int timeout_ms) {
  if (!Send(std::string(line) + "\n")) Fail("daemon closed the connection");
  auto reply = ReadLine(timeout_ms);
  if (!reply) Fail("no response to " + std::string(line));
  Json j = Json::parse(*reply, nullptr, false);
  if (j.is_discarded()) Fail("response is not JSON: " + *reply);
  return j;
}

RawConn::End RawConn::WaitEnd(int timeout_ms) {
  if (!buf_.empty()) return End::kData;
  pollfd p{fd_, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return End::kTimeout;
  char c;
  ssize_t got = ::recv(fd_, &c, 1, 0);
  if (got == 0) return End::kEof;
  if (got < 0) return End::kReset;
  buf_.push_back(c);
  return End::kData;
}

// --- NotifySocket ---

NotifySocket::NotifySocket(std::string path) : path_(std::move(path)) {
  sockaddr_un addr = UnixAddress(path_);
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) FailErrno("socket");
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    FailErrno("bind " + path_);
}

NotifySocket::~NotifySocket() {
  ::close(fd_);
  ::unlink(path_.c_str());
}

std::optional<std::string> NotifySocket::Receive(int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    char buf[4096];
    ssize_t got = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) FailErrno("recv notify");
    return std::string(buf, static_cast<size_t>(got));
  }
}

std::optional<std::string> NotifySocket::WaitFor(
    std::string_view line, int timeout_ms, std::vector<std::string>* seen) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    auto msg = Receive(RemainingMs(deadline));
    if (!msg) return std::nullopt;
    if (seen) seen->push_back(*msg);
    if (HasLine(*msg, line)) return msg;
  }
}

int OpenFdCount(pid_t pid) {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(
           "/proc/" + std::to_string(pid) + "/fd"))
    ++n;
  return n;
}

bool HasLine(std::string_view message, std::string_view line) {
  size_t pos = 0;
  while (pos <= message.size()) {
    size_t nl = message.find('\n', pos);
    std::string_view l = message.substr(
        pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (l == line) return true;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return false;
}

std::optional<std::string> Field(std::string_view message,
                                 std::string_view key) {
  const std::string prefix = std::string(key) + "=";
  size_t pos = 0;
  while (pos <= message.size()) {
    size_t nl = message.find('\n', pos);
    std::string_view l = message.substr(
        pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (l.substr(0, prefix.size()) == prefix)
      return std::string(l.substr(prefix.size()));
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return std::nullopt;
}

}  // namespace relsupd::e2e
