// The exec step with real processes: the test calls CloneExec as the
// daemon does, from a process whose fds, signal state, umask and groups are
// deliberately dirty, lets the child exec /bin/sleep and inspects the
// sleeping program through /proc/PID. Controls started with a plain fork +
// exec show that the dirt would be inherited. Every child is killed and
// reaped by the test. Needs root for the uid, rlimit and cgroup cases
// (warns and skips them otherwise).
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
#include <uv.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <functional>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <utility>
#include <string>
#include <thread>
#include <memory>
#include <optional>
#include <vector>

#include "daemon/base/uv_handle.h"
#include "daemon/base/clock.h"
#include "daemon/supervise/exec_step.h"
#include "daemon/supervise/output_capture.h"
#include "daemon/supervise/spawn.h"
#include "tests/support/fs.h"
#include "tests/support/proc.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(10);

// The whole file, "" when it cannot be read.
constexpr auto& ReadFile = support::ReadFileOrEmpty;

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

using support::OpenFds;

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

using support::TempDir;

// Fds that are free in this process (a test runner may hold low ones).
constexpr int kLeakA = 100, kLeakB = 101, kLeakC = 150, kLeakD = 900;

// The state a careless parent would pass on, applied to this process for
// the duration of one start and undone after.
struct Dirt {
  std::vector<int> leak_fds;     // /dev/null without O_CLOEXEC at these numbers
  bool ignore_sigterm = false;
  bool block_sigusr1 = false;
  mode_t umask = 022;
  std::vector<gid_t> groups;     // supplementary groups, when not empty
};

class DirtyScope {
 public:
  explicit DirtyScope(const Dirt& d) : dirt_(d) {
    for (int fd : d.leak_fds) {
      REQUIRE(::fcntl(fd, F_GETFD) < 0);  // free: we never clobber the runner's
      const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      REQUIRE(null >= 0);
      REQUIRE(::dup2(null, fd) == fd);  // a copy without O_CLOEXEC
      ::close(null);
    }
    if (d.ignore_sigterm) ::sigaction(SIGTERM, nullptr, &old_term_), ::signal(SIGTERM, SIG_IGN);
    if (d.block_sigusr1) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGUSR1);
      ::pthread_sigmask(SIG_BLOCK, &set, &old_mask_);
    }
    old_umask_ = ::umask(d.umask);
    if (!d.groups.empty()) {
      old_groups_.resize(static_cast<size_t>(::getgroups(0, nullptr)));
      old_groups_.resize(static_cast<size_t>(::getgroups(static_cast<int>(old_groups_.size()),
                                                         old_groups_.data())));
      REQUIRE(::setgroups(d.groups.size(), d.groups.data()) == 0);
    }
  }
  ~DirtyScope() {
    for (int fd : dirt_.leak_fds) ::close(fd);
    if (dirt_.ignore_sigterm) ::sigaction(SIGTERM, &old_term_, nullptr);
    if (dirt_.block_sigusr1) ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    ::umask(old_umask_);
    if (!dirt_.groups.empty()) {
      if (::setgroups(old_groups_.size(), old_groups_.data()) != 0) std::abort();
    }
  }

 private:
  Dirt dirt_;
  struct sigaction old_term_ {};
  sigset_t old_mask_{};
  mode_t old_umask_ = 022;
  std::vector<gid_t> old_groups_;
};

std::vector<std::string> Env(std::vector<std::string> extra = {}) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

ExecRequest Sleep(std::vector<std::string> argv = {"/bin/sleep", "30"}) {
  ExecRequest r;
  r.argv = std::move(argv);
  r.env = Env();
  return r;
}

// A started process (the exec step, then whatever it exec'd). Killed and
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
    if (pidfd_ >= 0) ::close(pidfd_);
    if (out_fd_ >= 0) ::close(out_fd_);
  }

  // Starts `req` through CloneExec with stdout on a pipe the test reads and
  // stdin/stderr on /dev/null. Returns CloneExec's status.
  Status Start(const ExecRequest& req, const Dirt& dirt = {}) {
    int out[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    REQUIRE(null >= 0);
    Result<ClonedChild> r = [&] {
      DirtyScope scope(dirt);
      return CloneExec(req, ExecStdio{null, out[1], null});
    }();
    ::close(null);
    ::close(out[1]);
    out_fd_ = out[0];
    if (!r.ok()) return r.status();
    pid_ = r->pid;
    pidfd_ = r->pidfd;
    return Status::Ok();
  }

  // Control: fork + execve with the dirt inherited as it is.
  void StartDirect(const std::vector<std::string>& argv, const Dirt& dirt = {}) {
    std::vector<char*> cargv;
    for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    DirtyScope scope(dirt);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::execv(cargv[0], cargv.data());
      ::_exit(91);
    }
  }

  // Waits until the process is /bin/sleep, asleep (so the exec step is
  // done and the dynamic loader, which opens libraries at fd 3 for a
  // moment, too). False if it exited or time ran out.
  bool WaitSleeping() {
    const std::string proc = "/proc/" + std::to_string(pid_);
    for (auto end = Clock::now() + kDeadline; Clock::now() < end;) {
      if (ReadFile(proc + "/comm") == "sleep\n" && InSleepCall(ReadFile(proc + "/syscall")))
        return true;
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        reaped_ = true;
        status_ = st;
        UNSCOPED_INFO("exited early with status " << st);
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

  // Everything the child wrote to stdout; REQUIRES it exited.
  std::string Stdout() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out_fd_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

  std::string Proc(const std::string& what) const {
    return ReadFile("/proc/" + std::to_string(pid_) + "/" + what);
  }
  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_; }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_fd_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

int ExitCode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

bool IsRoot() {
  if (::geteuid() == 0) return true;
  WARN("not root: skipped");
  return false;
}

// No child of this process is left unreaped (a failed step reaps its own).
bool NoZombies() {
  int st;
  const pid_t r = ::waitpid(-1, &st, WNOHANG);
  return r == 0 || (r < 0 && errno == ECHILD);
}

TEST_CASE("the program sees only fds 0, 1 and 2") {
  const Dirt dirt{.leak_fds = {kLeakA, kLeakB, kLeakC, kLeakD}};
  // Control: exec'd directly, the leaked fds are there, so the check below
  // can fail.
  Child direct;
  direct.StartDirect({"/bin/sleep", "30"}, dirt);
  REQUIRE(direct.WaitSleeping());
  CHECK(OpenFds(direct.pid()).count(kLeakD) == 1);

  Child child;
  REQUIRE(child.Start(Sleep(), dirt).ok());
  REQUIRE(child.WaitSleeping());
  CHECK(OpenFds(child.pid()) == std::set<int>{0, 1, 2});
}

TEST_CASE("handed-over fds become 3, 4, ... with LISTEN_PID and LISTEN_FDS set") {
  TempDir tmp;
  const int a = ::open((tmp.path() + "/a").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  const int b = ::open((tmp.path() + "/b").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE((a >= 0 && b >= 0));
  ExecRequest req = Sleep();
  req.env = Env({"LISTEN_FDNAMES=web:admin", "LISTEN_PID=1", "LISTEN_FDS=9"});
  req.pass_fds = {b, a};  // in this order, whatever their numbers
  Child child;
  REQUIRE(child.Start(req, {.leak_fds = {kLeakA}}).ok());
  REQUIRE(child.WaitSleeping());
  CHECK(OpenFds(child.pid()) == std::set<int>{0, 1, 2, 3, 4});
  auto target = [&](int fd) {
    char buf[4096];
    const std::string link = "/proc/" + std::to_string(child.pid()) + "/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  };
  CHECK(target(3) == tmp.path() + "/b");
  CHECK(target(4) == tmp.path() + "/a");
  const std::string env = Environ(child.pid());
  CHECK(Field(env, "LISTEN_PID=") == std::to_string(child.pid()));
  CHECK(Field(env, "LISTEN_FDS=") == "2");
  CHECK(Field(env, "LISTEN_FDNAMES=") == "web:admin");
  CHECK(std::count(env.begin(), env.end(), '\n') ==
        static_cast<long>(Env().size()) + 3);  // nothing else added or doubled
  ::close(a);
  ::close(b);
}

TEST_CASE("with spawn slots the child shares no fd of the parent and the parent keeps its own") {
  REQUIRE(ReserveSpawnSlots(8).ok());
  struct Release {
    ~Release() { ReleaseSpawnSlots(); }
  } release;
  TempDir tmp;
  // Many fds of the parent above the slots, one leaked without CLOEXEC.
  std::vector<int> many;
  for (int i = 0; i < 200; ++i) many.push_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int sock = ::open((tmp.path() + "/sock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(sock >= 0);
  ExecRequest req = Sleep();
  req.pass_fds = {sock};
  Child child;
  REQUIRE(child.Start(req, {.leak_fds = {kLeakD}}).ok());
  REQUIRE(child.WaitSleeping());
  CHECK(OpenFds(child.pid()) == std::set<int>{0, 1, 2, 3});
  char buf[4096];
  const std::string link = "/proc/" + std::to_string(child.pid()) + "/fd/3";
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  CHECK(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) == tmp.path() + "/sock");
  // The parent's table is untouched: its fds are open and still close-on-exec.
  for (int fd : many) CHECK(::fcntl(fd, F_GETFD) == FD_CLOEXEC);
  CHECK(::fcntl(sock, F_GETFD) == FD_CLOEXEC);
  // Nothing is added to, left in or changed in the parent's table (the
  // Child helper's own pipe is closed with it), after a spawn or a failed
  // step: the slots are back on their placeholders, not on a child's pipe.
  auto table = [] {
    std::map<int, std::string> t;
    for (int fd : OpenFds(::getpid())) {
      char target[4096];
      const std::string path = "/proc/self/fd/" + std::to_string(fd);
      const ssize_t len = ::readlink(path.c_str(), target, sizeof target);
      if (len > 0) t[fd] = std::string(target, static_cast<size_t>(len));
    }
    return t;
  };
  const std::map<int, std::string> before = table();
  {
    Child second;
    REQUIRE(second.Start(Sleep()).ok());
    REQUIRE(second.WaitSleeping());
  }
  CHECK(table() == before);
  {
    Child missing;
    CHECK(ExecStepExitCode(missing.Start(Sleep({"/nonexistent/prog"}))) == 127);
  }
  CHECK(table() == before);
  // Five sockets: 8 fds, so targets 3-7 overlap the slots' numbers, and
  // stdout through a slot reaches EOF once the child exits.
  {
    std::vector<int> socks;
    for (int i = 0; i < 5; ++i) socks.push_back(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
    ExecRequest req5 = Sleep({"/bin/sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"});
    req5.pass_fds = socks;
    Child five;
    REQUIRE(five.Start(req5).ok());
    CHECK(ExitCode(five.Wait()) == 0);
    // sh's own fd for ls's listing shows up too; 0-7 must be there, no more
    // than one extra.
    const std::string out = five.Stdout();
    for (int fd = 0; fd < 8; ++fd) CHECK(out.find(std::to_string(fd) + " ") != std::string::npos);
    CHECK(Words(out).size() <= 9);
    for (int fd : socks) ::close(fd);
  }
  CHECK(table() == before);
  for (int fd : many) ::close(fd);
  ::close(sock);
}

TEST_CASE("without handed-over fds stale LISTEN_* variables are removed") {
  ExecRequest req = Sleep();
  req.env = Env({"LISTEN_PID=1", "LISTEN_FDS=3", "LISTEN_FDNAMES=x"});
  Child child;
  REQUIRE(child.Start(req).ok());
  REQUIRE(child.WaitSleeping());
  const std::string env = Environ(child.pid());
  CHECK(env.find("LISTEN_") == std::string::npos);
}

TEST_CASE("a bad fd to hand over fails the step and leaves nothing running") {
  ExecRequest req = Sleep();
  req.pass_fds = {kLeakC};  // not open
  Child child;
  const Status st = child.Start(req);
  CHECK(st.code() == StatusCode::kIoError);
  CHECK(st.message() == "fds: cannot hand over fd 150 as fd 3: Bad file descriptor");
  CHECK(ExecStepExitCode(st) == 125);
  CHECK(NoZombies());
}

TEST_CASE("stdout goes to the given fd, cwd is the given directory") {
  TempDir tmp;
  ExecRequest req = Sleep({"/bin/sh", "-c", "pwd; echo out"});
  req.cwd = tmp.path();
  Child child;
  REQUIRE(child.Start(req).ok());
  CHECK(ExitCode(child.Wait()) == 0);
  char real[PATH_MAX];
  REQUIRE(::realpath(tmp.path().c_str(), real) != nullptr);
  CHECK(child.Stdout() == std::string(real) + "\nout\n");

  req.cwd = tmp.path() + "/missing";
  Child missing;
  const Status st = missing.Start(req);
  CHECK(st.message() == "chdir: cannot enter '" + tmp.path() + "/missing': No such file or directory");
  CHECK(NoZombies());
}

TEST_CASE("the /proc/self/fd fallback closes every fd from the first") {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) ::_exit(2);
    for (int n : {5, 6, 40, 1000})
      if (::dup2(fd, n) < 0) ::_exit(3);
    if (CloseFdsFrom(6, CloseMethod::kProcSelfFd) != 0) ::_exit(4);
    for (int n : {6, 40, 1000})
      if (::fcntl(n, F_GETFD) >= 0) ::_exit(5);
    ::_exit(::fcntl(5, F_GETFD) >= 0 ? 0 : 6);  // below `first`: kept
  }
  int st;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  CHECK(ExitCode(st) == 0);
}

TEST_CASE("uid, gid and groups run the program as nobody with exactly those groups") {
  if (!IsRoot()) return;
  ExecRequest req = Sleep();
  req.uid = 65534;
  req.gid = 65534;
  req.groups = {65534, 100, 4};
  Child child;
  REQUIRE(child.Start(req).ok());
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

TEST_CASE("changing the child's ids leaves every thread of the parent alone") {
  if (!IsRoot()) return;
  // glibc's setuid would change every thread of the process the child
  // shares memory with; the exec step must not.
  std::atomic<bool> stop{false};
  std::thread other([&] {
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  ExecRequest req = Sleep();
  req.uid = 65534;
  req.gid = 65534;
  Child child;
  const Status st = child.Start(req);
  stop = true;
  other.join();
  REQUIRE(st.ok());
  REQUIRE(child.WaitSleeping());
  CHECK(::getuid() == 0);
  CHECK(::geteuid() == 0);
  CHECK(::getegid() == 0);
  DIR* d = ::opendir("/proc/self/task");
  REQUIRE(d != nullptr);
  int tasks = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ++tasks;
    const std::string status = ReadFile(std::string("/proc/self/task/") + e->d_name + "/status");
    CHECK(Words(Field(status, "Uid:"))[1] == "0");
  }
  ::closedir(d);
  CHECK(tasks >= 1);
}

TEST_CASE("a uid without groups drops every supplementary group") {
  if (!IsRoot()) return;
  // Give this process supplementary groups to lose; the control shows they
  // would be inherited.
  const Dirt dirt{.groups = {4, 100}};
  Child direct;
  direct.StartDirect({"/bin/sleep", "30"}, dirt);
  REQUIRE(direct.WaitSleeping());
  CHECK(Words(Field(direct.Proc("status"), "Groups:")) == std::vector<std::string>{"4", "100"});
  ExecRequest req = Sleep();
  req.uid = 65534;
  req.gid = 65534;
  Child child;
  REQUIRE(child.Start(req, dirt).ok());
  REQUIRE(child.WaitSleeping());
  const std::string status = child.Proc("status");
  CHECK(Field(status, "Uid:").substr(0, 5) == "65534");
  CHECK(Field(status, "Groups:").empty());
}

TEST_CASE("a uid without a gid is refused before anything starts") {
  ExecRequest req = Sleep();
  req.uid = 65534;
  Child child;
  const Status st = child.Start(req);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(st.message() == "a uid needs a gid");
}

TEST_CASE("the program is a session and process group leader") {
  Child control;
  control.StartDirect({"/bin/sleep", "30"});
  REQUIRE(control.WaitSleeping());
  Child child;
  REQUIRE(child.Start(Sleep()).ok());
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

TEST_CASE("rlimits set soft and hard limits") {
  if (!IsRoot()) return;
  ExecRequest req = Sleep();
  for (const char* spec : {"nofile=100:200", "core=infinity:infinity", "cpu=30:60", "nproc=1000:2000"}) {
    auto r = ParseRlimit(spec);
    REQUIRE(r.ok());
    req.rlimits.push_back(*r);
  }
  Child child;
  REQUIRE(child.Start(req).ok());
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

TEST_CASE("a nofile limit below a handed-over fd's number still hands it over") {
  // The fds are moved before the limits are set: F_DUPFD above the child's
  // new soft limit would fail with EINVAL.
  TempDir tmp;
  const int file = ::open((tmp.path() + "/f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(file >= 0);
  REQUIRE(::fcntl(kLeakA, F_GETFD) < 0);
  REQUIRE(::dup3(file, kLeakA, O_CLOEXEC) == kLeakA);  // fd 100
  ExecRequest req = Sleep();
  req.pass_fds = {kLeakA};
  req.rlimits = {ExecRlimit{RLIMIT_NOFILE, 64, 64}};
  Child child;
  const Status st = child.Start(req);
  ::close(kLeakA);
  ::close(file);
  REQUIRE(st.ok());
  REQUIRE(child.WaitSleeping());
  CHECK(OpenFds(child.pid()) == std::set<int>{0, 1, 2, 3});
  CHECK(Words(Field(child.Proc("limits"), "Max open files")) ==
        std::vector<std::string>{"64", "64", "files"});
}

TEST_CASE("ParseRlimit reads NAME=SOFT:HARD and names what is wrong") {
  auto ok = ParseRlimit("as=infinity:infinity");
  REQUIRE(ok.ok());
  CHECK(ok->resource == RLIMIT_AS);
  CHECK(ok->soft == RLIM_INFINITY);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"nofile=10", "expected NAME=SOFT:HARD"},
      {"files=1:2", "unknown limit"},
      {"nofile=3:2", "SOFT exceeds HARD"},
      {"nofile=-1:2", "must be numbers"},
      {"nofile= 1:2", "must be numbers"},
  };
  for (const auto& [spec, message] : cases) {
    INFO(spec);
    auto r = ParseRlimit(spec);
    REQUIRE(!r.ok());
    CHECK(r.status().message().find("rlimit '" + spec + "'") == 0);
    CHECK(r.status().message().find(message) != std::string::npos);
  }
}

TEST_CASE("NonDefaultSignals reads SigIgn and SigCgt, and says every signal when it cannot") {
  const std::string status =
      "Name:\tsleep\nSigQ:\t0/95181\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n"
      "SigBlk:\tfffffffe7ffbfeff\nSigIgn:\t8000000000001000\nSigCgt:\t0000000000004003\n"
      "CapInh:\t0000000000000000\n";
  CHECK(NonDefaultSignals(status.data(), status.size()) == 0x8000000000005003ULL);
  constexpr uint64_t kAll = ~uint64_t{0};
  auto of = [](const std::string& s) { return NonDefaultSignals(s.data(), s.size()); };
  CHECK(of("") == kAll);
  CHECK(of("SigIgn:\t0000000000000000\n") == kAll);                 // no SigCgt
  CHECK(of("SigCgt:\t0\nSigIgn:\t0000000000000000\n") == 0);       // any order, short hex
  CHECK(of("SigIgn:\t00000000000000000\nSigCgt:\t0\n") == kAll);  // 17 digits
  CHECK(of("SigIgn:\t00x0\nSigCgt:\t0\n") == kAll);
  CHECK(of("SigIgn:\t\nSigCgt:\t0\n") == kAll);                   // empty
  CHECK(of("SigIgn:\t1\nSigCgt:\t0000000000000002") == kAll);      // cut short
  CHECK(of("XSigIgn:\t1\nSigCgt:\t2\n") == kAll);                 // not at a line start
  CHECK(of("SigIgn: FF\nSigCgt:\t100\n") == 0x1ffULL);
}

TEST_CASE("signals ignored at both ends of the range are reset") {
  // SIGHUP (bit 0), SIGRTMIN+3 and the last real-time signal (bit 63).
  const std::vector<int> sigs = {SIGHUP, SIGRTMIN + 3, SIGRTMAX};
  std::vector<struct sigaction> old(sigs.size());
  for (size_t i = 0; i < sigs.size(); ++i) {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    REQUIRE(::sigaction(sigs[i], &ign, &old[i]) == 0);
  }
  Child child;
  const bool started = child.Start(Sleep(), Dirt{}).ok();
  for (size_t i = 0; i < sigs.size(); ++i) ::sigaction(sigs[i], &old[i], nullptr);
  REQUIRE(started);
  REQUIRE(child.WaitSleeping());
  CHECK(Field(child.Proc("status"), "SigIgn:") == "0000000000000000");
}

TEST_CASE("ignored and blocked signals are reset, umask is set") {
  const Dirt dirt{.ignore_sigterm = true, .block_sigusr1 = true, .umask = 077};
  // Control: exec'd directly, the dirt is inherited.
  Child direct;
  direct.StartDirect({"/bin/sleep", "30"}, dirt);
  REQUIRE(direct.WaitSleeping());
  const std::string dirty = direct.Proc("status");
  CHECK(Field(dirty, "SigIgn:") != "0000000000000000");
  CHECK(Field(dirty, "SigBlk:") != "0000000000000000");

  Child child;
  REQUIRE(child.Start(Sleep(), dirt).ok());
  REQUIRE(child.WaitSleeping());
  const std::string status = child.Proc("status");
  CHECK(Field(status, "SigIgn:") == "0000000000000000");
  CHECK(Field(status, "SigBlk:") == "0000000000000000");
  CHECK(Field(status, "Umask:") == "0022");

  ExecRequest req = Sleep();
  req.umask = 027;
  Child masked;
  REQUIRE(masked.Start(req, dirt).ok());
  REQUIRE(masked.WaitSleeping());
  CHECK(Field(masked.Proc("status"), "Umask:") == "0027");
}

TEST_CASE("the program dies with the process that spawned it") {
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
  const ExecRequest req = Sleep();
  const pid_t parent = ::fork();
  REQUIRE(parent >= 0);
  cleanup.parent = parent;
  if (parent == 0) {
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    auto r = CloneExec(req, ExecStdio{null, null, null});
    const pid_t child = r.ok() ? r->pid : -1;
    if (::write(pid_pipe[1], &child, sizeof child) != sizeof child) ::_exit(2);
    for (;;) ::pause();
  }
  ::close(pid_pipe[1]);
  pid_t child_pid = -1;
  const ssize_t n = ::read(pid_pipe[0], &child_pid, sizeof child_pid);
  ::close(pid_pipe[0]);
  REQUIRE(n == sizeof child_pid);
  REQUIRE(child_pid > 0);
  cleanup.child = child_pid;
  CHECK(ReadFile("/proc/" + std::to_string(child_pid) + "/comm") == "sleep\n");
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

TEST_CASE("the child joins its cgroup before exec") {
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
    ExecRequest req = Sleep();
    req.cgroup_dir = dir;
    Child child;
    REQUIRE(child.Start(req).ok());
    REQUIRE(child.WaitSleeping());
    CHECK(child.Proc("cgroup").find("0::" + rel + "\n") != std::string::npos);
    ::kill(child.pid(), SIGKILL);
    CHECK(WIFSIGNALED(child.Wait()));
  }
  CHECK(cgroup.Remove());
}

TEST_CASE("a cgroup that cannot be joined fails the step") {
  ExecRequest req = Sleep();
  req.cgroup_dir = "/nonexistent/cg";
  Child child;
  const Status st = child.Start(req);
  CHECK(ExecStepExitCode(st) == 125);
  CHECK(st.message() ==
        "cgroup: cannot open '/nonexistent/cg/cgroup.procs': No such file or directory");
  CHECK(NoZombies());
}

TEST_CASE("a missing program is 127, a non-executable one 126") {
  TempDir tmp;
  Child missing;
  Status st = missing.Start(Sleep({tmp.path() + "/no-such-program"}));
  CHECK(ExecStepExitCode(st) == 127);
  CHECK(st.message() == "cannot run '" + tmp.path() + "/no-such-program': No such file or directory");

  Child not_in_path;
  st = not_in_path.Start(Sleep({"relsupd-no-such-program"}));
  CHECK(ExecStepExitCode(st) == 127);
  CHECK(st.message() == "cannot run 'relsupd-no-such-program': No such file or directory");

  const std::string plain = tmp.path() + "/plain";
  const int fd = ::open(plain.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  ::close(fd);
  Child not_executable;
  st = not_executable.Start(Sleep({plain}));
  CHECK(ExecStepExitCode(st) == 126);
  CHECK(st.message() == "cannot run '" + plain + "': Permission denied");

  Child directory;
  st = directory.Start(Sleep({tmp.path()}));
  CHECK(ExecStepExitCode(st) == 126);
  CHECK(NoZombies());
}

TEST_CASE("the child's PATH is searched and arguments are passed on") {
  TempDir tmp;
  const std::string bin = tmp.path() + "/bin";
  REQUIRE(::mkdir(bin.c_str(), 0755) == 0);
  const std::string script = bin + "/relsupd-test-prog";
  {
    const int fd = ::open(script.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
    REQUIRE(fd >= 0);
    const std::string body = "#!/bin/sh\necho \"$@\"\n";
    REQUIRE(::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()));
    ::close(fd);
  }
  ExecRequest req = Sleep({"relsupd-test-prog", "a b", "c"});
  // Only the child's PATH has the program, not this process's.
  req.env = {"PATH=/nonexistent:" + bin};
  Child child;
  REQUIRE(child.Start(req).ok());
  CHECK(ExitCode(child.Wait()) == 0);
  CHECK(child.Stdout() == "a b c\n");
}

// ChildProcess: the same step under libuv, output and exit through the loop.
struct Loop {
  uv_loop_t loop{};
  Loop() { REQUIRE(uv_loop_init(&loop) == 0); }
  ~Loop() { CHECK(CloseLoop(&loop) == 0); }
  // Runs until `done` or the deadline.
  bool RunUntil(const std::function<bool()>& done) {
    for (auto end = Clock::now() + kDeadline; Clock::now() < end;) {
      if (done()) return true;
      uv_run(&loop, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return done();
  }
};

TEST_CASE("ChildProcess delivers output and the exit status through the loop") {
  Loop loop;
  SpawnRequest req;
  req.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"};
  req.env = Env();
  std::string out, err;
  std::optional<std::pair<int64_t, int>> exit;
  ChildProcess::Callbacks cb;
  cb.on_output = [&](OutputStream s, std::string_view d) {
    (s == OutputStream::kOut ? out : err).append(d);
  };
  cb.on_exit = [&](int64_t status, int signal) { exit = {status, signal}; };
  auto child = ChildProcess::Spawn(&loop.loop, req, cb);
  REQUIRE(child.ok());
  REQUIRE(loop.RunUntil([&] { return exit.has_value(); }));
  (*child)->DrainOutput();
  CHECK(exit->first == 3);
  CHECK(exit->second == 0);
  CHECK(out == "out\n");
  CHECK(err == "err\n");
  CHECK(NoZombies());

  exit.reset();
  req.argv = {"/bin/sleep", "30"};
  auto killed = ChildProcess::Spawn(&loop.loop, req, cb);
  REQUIRE(killed.ok());
  REQUIRE((*killed)->SignalGroup(SIGTERM).ok());
  REQUIRE(loop.RunUntil([&] { return exit.has_value(); }));
  CHECK(exit->first == 0);
  CHECK(exit->second == SIGTERM);
}

// A stream that keeps its reads full gets the big pipe when the instance may
// log fast, and keeps the kernel's 64 KiB when its rate limit holds it back.
TEST_CASE("OutputCapture grows a flooding child's pipe only when its rate allows fast logging") {
  // The kernel's limits decide what can be seen here: a 64 KiB default
  // pipe and 1 MiB allowed (/proc/sys/fs/pipe-max-size, as root).
  const long max_pipe = std::atol(ReadFile("/proc/sys/fs/pipe-max-size").c_str());
  if (max_pipe < static_cast<long>(ChildProcess::kGrownPipeBytes) || ::geteuid() != 0) {
    WARN("pipe-max-size " << max_pipe << " or not root: cannot grow a pipe here, skipped");
    return;
  }
  for (const bool fast : {true, false}) {
    INFO((fast ? "fast" : "default rate"));
    Loop loop;
    LogRatePolicy rate;
    if (fast) rate.bytes_per_sec = rate.burst = int64_t{1} << 30;
    uint64_t turn = 0;  // moved on before each uv_run(NOWAIT), as the Supervisor does
    OutputCapture capture(&loop.loop, &turn, &RealClock(), nullptr, rate,
                          LogSource{"a", "v1", "w.1"});
    SpawnRequest req;
    req.argv = {"/usr/bin/yes", "flooding"};
    req.env = Env();
    size_t biggest_read = 0;
    size_t turn_bytes = 0;  // in one uv_run(NOWAIT), one loop turn
    bool exited = false;
    ChildProcess::Callbacks cb;
    cb.on_output = [&](OutputStream s, std::string_view d) {
      biggest_read = std::max(biggest_read, d.size());
      turn_bytes += d.size();
      capture.OnOutput(s, d);
    };
    cb.on_exit = [&](int64_t, int) { exited = true; };
    auto child = ChildProcess::Spawn(&loop.loop, req, cb);
    REQUIRE(child.ok());
    capture.Attach(child->get());
    if ((*child)->OutputPipeBytes(OutputStream::kOut) != ChildProcess::kReadBytes) {
      WARN("the default pipe is not 64 KiB here: skipped");
      REQUIRE((*child)->SignalGroup(SIGKILL).ok());
      REQUIRE(loop.RunUntil([&] { return exited; }));
      capture.Detach();
      return;
    }
    if (fast) {
      // Grown, and read 1 MiB at a time.
      // Grown, and read 1 MiB at a time; at most kMaxBytesPerTurn in a
      // turn, give or take the read that went past it.
      int big_reads = 0;
      size_t most_in_a_turn = 0;
      for (auto end = Clock::now() + kDeadline; Clock::now() < end && big_reads < 40;) {
        turn_bytes = 0;
        ++turn;
        uv_run(&loop.loop, UV_RUN_NOWAIT);
        most_in_a_turn = std::max(most_in_a_turn, turn_bytes);
        if (biggest_read > ChildProcess::kReadBytes && turn_bytes > 0) ++big_reads;
        if (turn_bytes == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      INFO("biggest read " << biggest_read << ", most in a turn " << most_in_a_turn);
      CHECK(big_reads >= 40);
      CHECK(most_in_a_turn < OutputCapture::kMaxBytesPerTurn + ChildProcess::kGrownPipeBytes);
      CHECK((*child)->OutputPipeBytes(OutputStream::kOut) == ChildProcess::kGrownPipeBytes);
      CHECK(biggest_read > ChildProcess::kReadBytes);
    } else {
      // Past the burst of its budget: throttled, with the kernel's pipe.
      REQUIRE(loop.RunUntil([&] { return (*child)->output_paused(); }));
      CHECK((*child)->OutputPipeBytes(OutputStream::kOut) == ChildProcess::kReadBytes);
      CHECK(biggest_read <= ChildProcess::kReadBytes);
    }
    // stderr, never written, is never grown.
    CHECK((*child)->OutputPipeBytes(OutputStream::kErr) == ChildProcess::kReadBytes);
    REQUIRE((*child)->SignalGroup(SIGKILL).ok());
    REQUIRE(loop.RunUntil([&] { return exited; }));
    capture.Detach();
  }
  CHECK(NoZombies());
}

TEST_CASE("OutputCapture skips a child's pipes for the rest of a loop turn once it took kMaxBytesPerTurn") {
  Loop loop;
  LogRatePolicy rate;
  rate.bytes_per_sec = rate.burst = int64_t{1} << 40;  // the rate never pauses it
  uint64_t turn = 7;
  OutputCapture capture(&loop.loop, &turn, &RealClock(), nullptr, rate,
                        LogSource{"a", "v1", "w.1"});
  SpawnRequest req;
  req.argv = {"/bin/sleep", "30"};
  req.env = Env();
  bool exited = false;
  ChildProcess::Callbacks cb;
  cb.on_exit = [&](int64_t, int) { exited = true; };
  auto child = ChildProcess::Spawn(&loop.loop, req, cb);
  REQUIRE(child.ok());
  capture.Attach(child->get());
  std::string mib;
  while (mib.size() < (1u << 20)) mib += "a line of output\n";
  mib.resize(1u << 20);
  // Reads handed over within one turn (the loop not run in between), as
  // libuv hands over up to 32 reads of a stream.
  uv_update_time(&loop.loop);
  const uint64_t now = uv_now(&loop.loop);
  capture.OnOutput(OutputStream::kOut, mib);
  CHECK_FALSE((*child)->skipping_turn(now));
  capture.OnOutput(OutputStream::kOut, mib);
  CHECK((*child)->skipping_turn(now));
  // Not a pause: nothing to resume, no timer.
  CHECK_FALSE((*child)->output_paused());
  // The next turn reads again.
  ++turn;
  CHECK_FALSE((*child)->skipping_turn(now));
  // A count nobody moves on: the loop's next millisecond ends the turn.
  capture.OnOutput(OutputStream::kOut, mib);
  capture.OnOutput(OutputStream::kOut, mib);
  CHECK((*child)->skipping_turn(now));
  CHECK_FALSE((*child)->skipping_turn(now + 1));
  REQUIRE((*child)->SignalGroup(SIGKILL).ok());
  REQUIRE(loop.RunUntil([&] { return exited; }));
  capture.Detach();
}

TEST_CASE("a ChildProcess destroyed while its process runs kills and reaps it") {
  Loop loop;
  SpawnRequest req;
  req.argv = {"/bin/sleep", "30"};
  req.env = Env();
  req.capture_output = false;
  auto child = ChildProcess::Spawn(&loop.loop, req, {});
  REQUIRE(child.ok());
  const pid_t pid = (*child)->pid();
  CHECK(::kill(pid, 0) == 0);
  child->reset();
  // The orphaned watch reaps it: the pid disappears entirely (no zombie).
  const std::string stat = "/proc/" + std::to_string(pid) + "/stat";
  CHECK(loop.RunUntil([&] { return ReadFile(stat).empty(); }));
  CHECK(NoZombies());
}

TEST_CASE("ChildProcess reports a failed exec step as a spawn error") {
  Loop loop;
  SpawnRequest req;
  req.argv = {"/nonexistent/prog"};
  req.env = Env();
  auto child = ChildProcess::Spawn(&loop.loop, req, {});
  REQUIRE(!child.ok());
  CHECK(child.status().message() == "cannot run '/nonexistent/prog': No such file or directory");
  CHECK(NoZombies());
}

TEST_CASE("CommandArgv runs plain commands directly, one program through sh -c exec, the rest through sh") {
  using V = std::vector<std::string>;
  CHECK(CommandArgv("bin/server --port 8080") == V{"bin/server", "--port", "8080"});
  CHECK(CommandArgv("  ./server\t-v  ") == V{"./server", "-v"});
  CHECK(CommandArgv("puma -C config/puma.rb --bind=tcp://0.0.0.0") ==
        V{"puma", "-C", "config/puma.rb", "--bind=tcp://0.0.0.0"});
  CHECK(CommandArgv("") == V{});
  CHECK(CommandArgv(" \t ") == V{});
  // One program: "exec " first, so that it replaces the shell.
  for (const std::string simple :
       {"server > out", "server < in", "echo $HOME", "echo `date`", "echo a\\ b",
        "echo \"a b\"", "echo 'a b'", "ls *.log", "ls file?", "ls [ab]", "server # comment",
        "ls ~/x", "echo %s", "gunicorn -b 127.0.0.1:${PORT} app:app", "server 2>&1",
        "server >&2"}) {
    INFO(simple);
    CHECK(CommandArgv(simple) == V{"/bin/sh", "-c", "exec " + simple});
  }
  // Lists, pipelines, groups, jobs, assignments and shell words: as written.
  for (const std::string shell :
       {"server | tee log", "a && b", "a; b", "(cd x)", "PORT=1 server", "echo {a,b}", "a\nb",
        "exec bundle exec puma", "cd app", "ulimit -n 10", "if true", ". ./env", "export A",
        "server &", "echo $(date)", "a || b", "echo 'a;b'", "2>/dev/null PORT=9000 ./server",
        ": ${X:?}", "time ./server $A", "[[ -e x ]] && y", "declare -x A=$B"}) {
    INFO(shell);
    CHECK(CommandArgv(shell) == V{"/bin/sh", "-c", shell});
  }
}

}  // namespace
}  // namespace relsupd
