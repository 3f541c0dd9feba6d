// relsupd-exec with real processes: the test starts it (fork + exec) the
// way the daemon's uv_spawn would, with fds deliberately leaked and signal
// state deliberately dirty, lets it exec /bin/sleep and then inspects the
// sleeping program through /proc/PID. Every child is killed and reaped by
// the test. Needs root for the uid, rlimit and cgroup cases (warns and
// skips them otherwise).
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <grp.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/supervise/exec_step.h"

namespace relsupd {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(10);

std::string ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// The rest of the line that starts with `key` in a /proc text file.
std::string Field(const std::string& text, const std::string& key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (text.compare(pos, key.size(), key) == 0) {
      std::string v = text.substr(pos + key.size(), end - pos - key.size());
      const size_t b = v.find_first_not_of(" \t");
      return b == std::string::npos ? "" : v.substr(b);
    }
    pos = end + 1;
  }
  return "";
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t b = s.find_first_not_of(" \t\n", i);
    if (b == std::string::npos) break;
    size_t e = s.find_first_of(" \t\n", b);
    if (e == std::string::npos) e = s.size();
    out.push_back(s.substr(b, e - b));
    i = e;
  }
  return out;
}

std::set<int> OpenFds(pid_t pid) {
  std::set<int> fds;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());  // glibc opens it O_CLOEXEC
  if (d == nullptr) return fds;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') fds.insert(std::atoi(e->d_name));
  ::closedir(d);
  return fds;
}

std::string Environ(pid_t pid) {
  std::string env = ReadFile("/proc/" + std::to_string(pid) + "/environ");
  std::replace(env.begin(), env.end(), '\0', '\n');
  return env;
}

// /proc/PID/syscall starts with the number of the call the task is blocked
// in ("running" when it is not).
bool InSleepCall(const std::string& syscall) {
  const int nr = std::atoi(syscall.c_str());
  if (syscall.empty() || syscall[0] < '0' || syscall[0] > '9') return false;
#ifdef SYS_nanosleep
  if (nr == SYS_nanosleep) return true;
#endif
  return nr == SYS_clock_nanosleep;
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/relsupd-exec-test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    const std::string cmd = "rm -rf '" + path + "'";
    if (std::system(cmd.c_str()) != 0) WARN("cannot remove " << path);
  }
  std::string path;
};

// What the test does in its forked child before exec'ing relsupd-exec:
// the state a careless parent would pass on.
struct Dirt {
  std::vector<int> leak_fds;       // opened without O_CLOEXEC at these numbers
  bool ignore_sigterm = false;
  bool block_sigusr1 = false;
  mode_t umask = 022;
  std::vector<gid_t> groups;       // supplementary groups, when not empty
  std::vector<std::string> env;    // extra NAME=VALUE
};

// A started process (relsupd-exec, then whatever it exec'd). Killed and
// reaped on destruction unless reaped already.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int st;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  // Runs `argv` (argv[0] is the program path, exec'd with execv) with
  // stderr on a pipe the test reads.
  void Start(const std::vector<std::string>& argv, const Dirt& dirt = {}) {
    int err_pipe[2];
    REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
    std::vector<char*> cargv;
    for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) env_strings.push_back(*e);
    for (const std::string& e : dirt.env) env_strings.push_back(e);
    std::vector<char*> cenv;
    for (const std::string& e : env_strings) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Only async-signal-safe calls from here to the exec.
      ::dup2(err_pipe[1], 2);
      // Whatever the test runner passed us is not part of the test: start
      // from 0-2 and leak exactly the fds asked for.
      ::close_range(3, ~0U, 0);
      for (int fd : dirt.leak_fds) {
        const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0) ::_exit(90);
        // dup2 makes a copy without CLOEXEC; dup2 onto itself does nothing.
        if (null == fd) {
          if (::fcntl(fd, F_SETFD, 0) != 0) ::_exit(90);
        } else {
          if (::dup2(null, fd) < 0) ::_exit(90);
          ::close(null);
        }
      }
      if (dirt.ignore_sigterm) ::signal(SIGTERM, SIG_IGN);
      if (dirt.block_sigusr1) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        ::sigprocmask(SIG_BLOCK, &set, nullptr);
      }
      ::umask(dirt.umask);
      if (!dirt.groups.empty() && ::setgroups(dirt.groups.size(), dirt.groups.data()) != 0)
        ::_exit(92);
      ::execve(cargv[0], cargv.data(), cenv.data());
      ::_exit(91);
    }
    ::close(err_pipe[1]);
    err_fd_ = err_pipe[0];
  }

  // Waits until the process is /bin/sleep, asleep (so relsupd-exec finished
  // its steps and exec'd, and the dynamic loader, which opens libraries
  // at fd 3 for a moment, is done). False if it exited or time ran out.
  bool WaitSleeping() {
    const std::string proc = "/proc/" + std::to_string(pid_);
    for (auto end = Clock::now() + kDeadline; Clock::now() < end;) {
      if (ReadFile(proc + "/comm") == "sleep\n" && InSleepCall(ReadFile(proc + "/syscall")))
        return true;
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        reaped_ = true;
        status_ = st;
        UNSCOPED_INFO("exited early with status " << st << ", stderr: " << Stderr());
        return false;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    return false;
  }

  // Waits for the exit; returns the wait status (-1 on timeout).
  int Wait() {
    if (reaped_) return status_;
    for (auto end = Clock::now() + kDeadline; Clock::now() < end;) {
      int st;
      const pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        status_ = st;
        return st;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return -1;
  }

  // Everything the child wrote to stderr; REQUIRES it exited.
  std::string Stderr() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(err_fd_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

  std::string Proc(const std::string& what) const {
    return ReadFile("/proc/" + std::to_string(pid_) + "/" + what);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int err_fd_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

std::vector<std::string> ExecStep(std::vector<std::string> options,
                                  std::vector<std::string> program = {"/bin/sleep", "30"}) {
  std::vector<std::string> argv = {RELSUPD_EXEC_BIN};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("--");
  argv.insert(argv.end(), program.begin(), program.end());
  return argv;
}

int ExitCode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

bool IsRoot() {
  if (::geteuid() == 0) return true;
  WARN("not root: skipped");
  return false;
}

TEST_CASE("the program sees only fds 0, 1 and 2") {
  const Dirt dirt{.leak_fds = {3, 4, 7, 100}};
  // Control: exec'd directly, the leaked fds are there, so the check below
  // can fail.
  Child direct;
  direct.Start({"/bin/sleep", "30"}, dirt);
  REQUIRE(direct.WaitSleeping());
  CHECK(OpenFds(direct.pid()).count(100) == 1);

  Child child;
  child.Start(ExecStep({}), dirt);
  REQUIRE(child.WaitSleeping());
  CHECK(OpenFds(child.pid()) == std::set<int>{0, 1, 2});
}

TEST_CASE("option --listen-fds 2 keeps fds 3 and 4 and sets LISTEN_PID and LISTEN_FDS") {
  Child child;
  child.Start(ExecStep({"--listen-fds", "2"}),
              {.leak_fds = {3, 4, 5, 9}, .env = {"LISTEN_FDNAMES=web:admin"}});
  REQUIRE(child.WaitSleeping());
  CHECK(OpenFds(child.pid()) == std::set<int>{0, 1, 2, 3, 4});
  const std::string env = Environ(child.pid());
  CHECK(Field(env, "LISTEN_PID=") == std::to_string(child.pid()));
  CHECK(Field(env, "LISTEN_FDS=") == "2");
  CHECK(Field(env, "LISTEN_FDNAMES=") == "web:admin");
}

TEST_CASE("without --listen-fds stale LISTEN_* variables are removed") {
  Child child;
  child.Start(ExecStep({}), {.env = {"LISTEN_PID=1", "LISTEN_FDS=3", "LISTEN_FDNAMES=x"}});
  REQUIRE(child.WaitSleeping());
  const std::string env = Environ(child.pid());
  CHECK(env.find("LISTEN_") == std::string::npos);
}

TEST_CASE("option --listen-fds with a missing fd fails with 125") {
  Child child;
  child.Start(ExecStep({"--listen-fds", "2"}), {.leak_fds = {3}});
  const int st = child.Wait();
  CHECK(ExitCode(st) == 125);
  CHECK(child.Stderr() == "relsupd-exec: listen fds: fd 4 of 2: Bad file descriptor\n");
}

TEST_CASE("a close-on-exec listen fd is made inheritable") {
  // In a forked child: the test cannot pass relsupd-exec a CLOEXEC fd.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (fd != 3 && ::dup3(fd, 3, O_CLOEXEC) < 0)) ::_exit(2);
    if ((::fcntl(3, F_GETFD) & FD_CLOEXEC) == 0) ::_exit(5);
    if (KeepListenFds(1).failed()) ::_exit(3);
    ::_exit(::fcntl(3, F_GETFD) == 0 ? 0 : 4);
  }
  int st;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  CHECK(ExitCode(st) == 0);
}

TEST_CASE("the /proc/self/fd fallback closes every fd from the first") {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) ::_exit(2);
    for (int n : {5, 6, 40, 1000})
      if (::dup2(fd, n) < 0) ::_exit(3);
    if (CloseFdsFrom(6, CloseMethod::kProcSelfFd).failed()) ::_exit(4);
    for (int n : {6, 40, 1000})
      if (::fcntl(n, F_GETFD) >= 0) ::_exit(5);
    ::_exit(::fcntl(5, F_GETFD) >= 0 ? 0 : 6);  // below `first`: kept
  }
  int st;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  CHECK(ExitCode(st) == 0);
}

TEST_CASE("option --uid/--gid/--groups run the program as nobody with exactly those groups") {
  if (!IsRoot()) return;
  Child child;
  child.Start(ExecStep({"--groups", "65534,100,4", "--gid", "65534", "--uid", "65534"}));
  REQUIRE(child.WaitSleeping());
  const std::string status = child.Proc("status");
  CHECK(Words(Field(status, "Uid:")) ==
        std::vector<std::string>{"65534", "65534", "65534", "65534"});
  CHECK(Words(Field(status, "Gid:")) ==
        std::vector<std::string>{"65534", "65534", "65534", "65534"});
  const std::vector<std::string> groups = Words(Field(status, "Groups:"));
  CHECK(std::set<std::string>(groups.begin(), groups.end()) ==
        std::set<std::string>{"4", "100", "65534"});
}

TEST_CASE("option --uid without --groups drops every supplementary group") {
  if (!IsRoot()) return;
  // Give the test's child supplementary groups to lose; the control shows
  // they would be inherited.
  const Dirt dirt{.groups = {4, 100}};
  Child direct;
  direct.Start({"/bin/sleep", "30"}, dirt);
  REQUIRE(direct.WaitSleeping());
  CHECK(Words(Field(direct.Proc("status"), "Groups:")) == std::vector<std::string>{"4", "100"});
  Child child;
  child.Start(ExecStep({"--gid", "65534", "--uid", "65534"}), dirt);
  REQUIRE(child.WaitSleeping());
  const std::string status = child.Proc("status");
  CHECK(Field(status, "Uid:").substr(0, 5) == "65534");
  CHECK(Field(status, "Groups:").empty());
}

TEST_CASE("option --setsid makes the program a session and process group leader") {
  Child control;
  control.Start(ExecStep({}));
  REQUIRE(control.WaitSleeping());
  Child child;
  child.Start(ExecStep({"--setsid"}));
  REQUIRE(child.WaitSleeping());
  for (Child* c : {&control, &child}) {
    const std::string stat = c->Proc("stat");
    // pid (comm) state ppid pgrp session ...
    const std::vector<std::string> f = Words(stat.substr(stat.rfind(')') + 1));
    REQUIRE(f.size() > 3);
    const std::string pid = std::to_string(c->pid());
    const bool leader = f[2] == pid && f[3] == pid;
    CHECK(leader == (c == &child));
  }
}

TEST_CASE("option --rlimit sets soft and hard limits") {
  if (!IsRoot()) return;
  Child child;
  child.Start(ExecStep({"--rlimit", "nofile=100:200", "--rlimit", "core=infinity:infinity",
                        "--rlimit", "cpu=30:60", "--rlimit", "nproc=1000:2000"}));
  REQUIRE(child.WaitSleeping());
  const std::string limits = child.Proc("limits");
  CHECK(Words(Field(limits, "Max open files")) ==
        std::vector<std::string>{"100", "200", "files"});
  CHECK(Words(Field(limits, "Max core file size")) ==
        std::vector<std::string>{"unlimited", "unlimited", "bytes"});
  CHECK(Words(Field(limits, "Max cpu time")) ==
        std::vector<std::string>{"30", "60", "seconds"});
  CHECK(Words(Field(limits, "Max processes")) ==
        std::vector<std::string>{"1000", "2000", "processes"});
}

TEST_CASE("ignored and blocked signals are reset, umask is set") {
  const Dirt dirt{.ignore_sigterm = true, .block_sigusr1 = true, .umask = 077};
  // Control: exec'd directly, the dirt is inherited.
  Child direct;
  direct.Start({"/bin/sleep", "30"}, dirt);
  REQUIRE(direct.WaitSleeping());
  const std::string dirty = direct.Proc("status");
  CHECK(Field(dirty, "SigIgn:") != "0000000000000000");
  CHECK(Field(dirty, "SigBlk:") != "0000000000000000");

  Child child;
  child.Start(ExecStep({}), dirt);
  REQUIRE(child.WaitSleeping());
  const std::string status = child.Proc("status");
  CHECK(Field(status, "SigIgn:") == "0000000000000000");
  CHECK(Field(status, "SigBlk:") == "0000000000000000");
  CHECK(Field(status, "Umask:") == "0022");

  Child masked;
  masked.Start(ExecStep({"--umask", "027"}), dirt);
  REQUIRE(masked.WaitSleeping());
  CHECK(Field(masked.Proc("status"), "Umask:") == "0027");
}

TEST_CASE("option --pdeathsig: the program dies with its parent") {
  // The test becomes the subreaper, so the orphaned program is its child
  // again after the intermediate parent dies, and can be waited for.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  // Whatever fails below, both processes are killed and reaped.
  struct Cleanup {
    pid_t parent = -1, child = -1;
    ~Cleanup() {
      if (child > 0) ::kill(child, SIGKILL);
      if (parent > 0) {
        ::kill(parent, SIGKILL);
        ::waitpid(parent, nullptr, 0);
      }
      // Ours once the parent is gone (we are the subreaper); ECHILD if not.
      if (child > 0) ::waitpid(child, nullptr, 0);
      ::prctl(PR_SET_CHILD_SUBREAPER, 0);
    }
  } cleanup;
  int pid_pipe[2];
  REQUIRE(::pipe2(pid_pipe, O_CLOEXEC) == 0);
  // The intermediate parent writes its own pid into argv[2]; everything
  // is allocated before the fork.
  std::vector<std::string> argv = ExecStep({"--pdeathsig", std::string(15, ' ')});
  std::vector<char*> cargv;
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const pid_t parent = ::fork();
  REQUIRE(parent >= 0);
  cleanup.parent = parent;
  if (parent == 0) {
    char digits[16];
    int len = 0;
    for (pid_t p = ::getpid(); p > 0; p /= 10) digits[len++] = static_cast<char>('0' + p % 10);
    for (int k = 0; k < len; ++k) cargv[2][k] = digits[len - 1 - k];
    cargv[2][len] = '\0';
    const pid_t child = ::fork();
    if (child == 0) {
      ::execv(cargv[0], cargv.data());
      ::_exit(91);
    }
    if (::write(pid_pipe[1], &child, sizeof child) != sizeof child) ::_exit(2);
    for (;;) ::pause();
  }
  ::close(pid_pipe[1]);
  pid_t child_pid = -1;
  const ssize_t n = ::read(pid_pipe[0], &child_pid, sizeof child_pid);
  ::close(pid_pipe[0]);
  REQUIRE(n == sizeof child_pid);
  cleanup.child = child_pid;
  const std::string comm = "/proc/" + std::to_string(child_pid) + "/comm";
  bool exec_seen = false;
  for (auto end = Clock::now() + kDeadline; Clock::now() < end && !exec_seen;) {
    exec_seen = ReadFile(comm) == "sleep\n";
    if (!exec_seen) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(exec_seen);
  ::kill(parent, SIGKILL);
  int st;
  REQUIRE(::waitpid(parent, &st, 0) == parent);
  cleanup.parent = -1;
  // Now orphaned: ours to reap. SIGKILLed by the kernel, or still running
  // (a failure: Cleanup kills it).
  int child_status = -1;
  for (auto end = Clock::now() + kDeadline; Clock::now() < end;) {
    if (::waitpid(child_pid, &child_status, WNOHANG) == child_pid) {
      cleanup.child = -1;
      break;
    }
    child_status = -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(child_status != -1);  // else the program outlived its parent
  CHECK(WIFSIGNALED(child_status));
  CHECK(WTERMSIG(child_status) == SIGKILL);
}

TEST_CASE("option --pdeathsig with another parent's pid exits at once") {
  Child child;
  child.Start(ExecStep({"--pdeathsig", "1"}));
  const int st = child.Wait();
  CHECK(ExitCode(st) == 125);
  CHECK(child.Stderr() == "relsupd-exec: pdeathsig: parent 1 is gone (parent is now " +
                              std::to_string(::getpid()) + ")\n");
}

TEST_CASE("option --cgroup joins the cgroup before exec") {
  // Unified (cgroup v2 only) or hybrid (v2 beside the v1 controllers).
  struct statfs fs;
  const std::string root = ::statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC
                               ? "/sys/fs/cgroup"
                               : "/sys/fs/cgroup/unified";
  // Our own cgroup v2 path, to make the child cgroup beneath it.
  const std::string self = Field(ReadFile("/proc/self/cgroup"), "0::");
  const std::string name = "relsupd-exec-test-" + std::to_string(::getpid());
  const std::string rel = (self == "/" ? "" : self) + "/" + name;
  const std::string dir = root + rel;
  if (::mkdir(dir.c_str(), 0755) != 0) {
    WARN("no writable cgroup v2 tree at " << root << " (" << std::strerror(errno)
                                           << "): skipped");
    return;
  }
  // Removed whatever happens below; the cgroup empties shortly after the
  // reap, so rmdir is retried until then.
  struct RemoveCgroup {
    std::string dir;
    bool removed = false;
    bool Remove() {
      for (auto end = Clock::now() + kDeadline; Clock::now() < end && !removed;) {
        removed = ::rmdir(dir.c_str()) == 0;
        if (!removed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return removed;
    }
    ~RemoveCgroup() { Remove(); }
  } cgroup{dir};
  {
    Child child;
    child.Start(ExecStep({"--cgroup", dir}));
    REQUIRE(child.WaitSleeping());
    CHECK(child.Proc("cgroup").find("0::" + rel + "\n") != std::string::npos);
    ::kill(child.pid(), SIGKILL);
    CHECK(WIFSIGNALED(child.Wait()));
  }
  CHECK(cgroup.Remove());
}

TEST_CASE("a cgroup that cannot be joined fails with 125") {
  Child child;
  child.Start(ExecStep({"--cgroup", "/nonexistent/cg"}));
  CHECK(ExitCode(child.Wait()) == 125);
  CHECK(child.Stderr() ==
        "relsupd-exec: cgroup: cannot open '/nonexistent/cg/cgroup.procs': No such file or "
        "directory\n");
}

TEST_CASE("a missing program exits 127, a non-executable one 126") {
  TempDir tmp;
  Child missing;
  missing.Start(ExecStep({}, {tmp.path + "/no-such-program"}));
  CHECK(ExitCode(missing.Wait()) == 127);
  CHECK(missing.Stderr() == "relsupd-exec: cannot run '" + tmp.path +
                                "/no-such-program': No such file or directory\n");

  Child not_in_path;
  not_in_path.Start(ExecStep({}, {"relsupd-no-such-program"}));
  CHECK(ExitCode(not_in_path.Wait()) == 127);

  const std::string plain = tmp.path + "/plain";
  const int fd = ::open(plain.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  ::close(fd);
  Child not_executable;
  not_executable.Start(ExecStep({}, {plain}));
  CHECK(ExitCode(not_executable.Wait()) == 126);
  CHECK(not_executable.Stderr() ==
        "relsupd-exec: cannot run '" + plain + "': Permission denied\n");

  Child directory;
  directory.Start(ExecStep({}, {tmp.path}));
  CHECK(ExitCode(directory.Wait()) == 126);
}

TEST_CASE("PATH is searched and arguments are passed on") {
  TempDir tmp;
  Child child;
  child.Start(ExecStep({}, {"touch", tmp.path + "/made"}));
  CHECK(ExitCode(child.Wait()) == 0);
  struct stat st;
  CHECK(::stat((tmp.path + "/made").c_str(), &st) == 0);
}

TEST_CASE("bad options exit 125 with one line naming the problem") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--frobnicate", "--", "/bin/true"}, "unknown option '--frobnicate'"},
      {{"/bin/true"}, "unknown option '/bin/true'"},
      {{"--setsid"}, "missing '-- PROGRAM ARGS...'"},
      {{"--setsid", "--"}, "missing PROGRAM after '--'"},
      {{"--umask"}, "--umask needs a value"},
      {{"--umask", "0888", "--", "/bin/true"}, "--umask '0888'"},
      {{"--rlimit", "nofile=10", "--", "/bin/true"}, "expected NAME=SOFT:HARD"},
      {{"--rlimit", "files=1:2", "--", "/bin/true"}, "unknown limit"},
      {{"--rlimit", "nofile=3:2", "--", "/bin/true"}, "SOFT exceeds HARD"},
      {{"--rlimit", "nofile=-1:2", "--", "/bin/true"}, "must be numbers"},
      {{"--uid", "65534", "--", "/bin/true"}, "--uid needs --gid"},
      {{"--uid", "x", "--", "/bin/true"}, "--uid 'x'"},
      {{"--groups", "1,,2", "--", "/bin/true"}, "--groups '1,,2'"},
      {{"--groups", "1,", "--", "/bin/true"}, "trailing comma"},
      {{"--pdeathsig", "0", "--", "/bin/true"}, "--pdeathsig '0'"},
      {{"--listen-fds", "99999999", "--", "/bin/true"}, "--listen-fds '99999999'"},
      {{"--setsid", "--cgroup", "a", "--cgroup", "b", "--", "/bin/true"},
       "--cgroup given twice"},
  };
  for (const auto& [args, message] : cases) {
    INFO(message);
    std::vector<std::string> argv = {RELSUPD_EXEC_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    Child child;
    child.Start(argv);
    CHECK(ExitCode(child.Wait()) == 125);
    const std::string err = child.Stderr();
    CHECK(err.rfind("relsupd-exec: options: ", 0) == 0);
    CHECK(err.find(message) != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
}

TEST_CASE("ParseExecStepArgs reads every option") {
  std::vector<std::string> args = {
      "relsupd-exec", "--setsid",       "--cgroup",  "/cg/x",     "--rlimit",
      "nofile=1:2",   "--rlimit",       "as=infinity:infinity",   "--groups",
      "4,5",          "--gid",          "7",         "--uid",     "8",
      "--pdeathsig",  "99",             "--listen-fds", "3",      "--umask",
      "027",          "--",             "prog",      "--setsid",  "a b"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const ParsedExecStepArgs p = ParseExecStepArgs(static_cast<int>(args.size()), argv.data());
  REQUIRE(p.error == "");
  const ExecStepOptions& o = p.options;
  CHECK(o.setsid);
  CHECK(std::string(o.cgroup_dir) == "/cg/x");
  REQUIRE(o.rlimits.size() == 2);
  CHECK(o.rlimits[0].resource == RLIMIT_NOFILE);
  CHECK(o.rlimits[0].soft == 1);
  CHECK(o.rlimits[0].hard == 2);
  CHECK(o.rlimits[1].resource == RLIMIT_AS);
  CHECK(o.rlimits[1].soft == RLIM_INFINITY);
  CHECK(o.set_groups);
  CHECK(o.groups == std::vector<gid_t>{4, 5});
  CHECK((o.set_gid && o.gid == 7));
  CHECK((o.set_uid && o.uid == 8));
  CHECK(o.pdeathsig_ppid == 99);
  CHECK(o.listen_fds == 3);
  CHECK(o.umask == 027);
  // Everything after "--" is the program's, options look-alikes included.
  CHECK(o.argv == argv.data() + 21);
  CHECK(std::string(o.argv[1]) == "--setsid");
  CHECK(o.argv[3] == nullptr);

  std::vector<std::string> empty_groups = {"x", "--groups", "", "--", "p"};
  std::vector<char*> argv2;
  for (std::string& a : empty_groups) argv2.push_back(a.data());
  argv2.push_back(nullptr);
  const ParsedExecStepArgs q = ParseExecStepArgs(5, argv2.data());
  REQUIRE(q.ok());
  CHECK(q.options.set_groups);
  CHECK(q.options.groups.empty());
  CHECK(q.options.umask == 022);
}

TEST_CASE("CommandArgv runs plain commands directly and the rest through sh") {
  using V = std::vector<std::string>;
  CHECK(CommandArgv("bin/server --port 8080") == V{"bin/server", "--port", "8080"});
  CHECK(CommandArgv("  ./server\t-v  ") == V{"./server", "-v"});
  CHECK(CommandArgv("puma -C config/puma.rb --bind=tcp://0.0.0.0") ==
        V{"puma", "-C", "config/puma.rb", "--bind=tcp://0.0.0.0"});
  CHECK(CommandArgv("") == V{});
  CHECK(CommandArgv(" \t ") == V{});
  for (const std::string shell :
       {"server | tee log", "a && b", "a; b", "server > out", "server < in", "(cd x)",
        "echo $HOME", "echo `date`", "echo a\\ b", "echo \"a b\"", "echo 'a b'",
        "ls *.log", "ls file?", "ls [ab]", "server # comment", "ls ~/x", "PORT=1 server",
        "echo %s", "echo {a,b}", "a\nb", "exec bundle exec puma", "cd app", "ulimit -n 10",
        "if true", ". ./env", "export A", "server &"}) {
    INFO(shell);
    CHECK(CommandArgv(shell) == V{"/bin/sh", "-c", shell});
  }
}

TEST_CASE("FindExecStep prefers the binary beside the executable") {
  TempDir tmp;
  CHECK(FindExecStep(tmp.path) == tmp.path + "/../libexec/relsupd/relsupd-exec");
  const std::string beside = tmp.path + "/relsupd-exec";
  const int fd = ::open(beside.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
  REQUIRE(fd >= 0);
  ::close(fd);
  CHECK(FindExecStep(tmp.path) == beside);
}

}  // namespace
}  // namespace relsupd
