// OneOff with real children on a real loop: output into a real LogStore,
// exit statuses and signals, Stop/Kill, given fds and a pty as the
// controlling terminal, the app's user, the leftovers sweep and a cgroup
// of its own (skipped where no cgroup2 tree is writable). Every process a
// test starts is ended by the test (by pid) or by its OneOff.
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/base/clock.h"
#include "daemon/base/fd.h"
#include "daemon/base/uv_handle.h"
#include "daemon/logs/log_store.h"
#include "daemon/supervise/cgroup.h"
#include "daemon/supervise/command_argv.h"
#include "daemon/supervise/leftovers.h"
#include "daemon/supervise/one_off.h"
#include "tests/support/fs.h"
#include "tests/support/temp_dir.h"
#include "tests/integration/run_loop.h"
#include "tests/support/wait.h"

namespace relsupd {
namespace {

using support::TempDir;

bool Alive(pid_t pid) {
  // A zombie is gone for our purposes; OneOff reaps it.
  const std::string stat =
      support::ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() &&
         stat[paren + 2] != 'Z';
}

// A loop, a log store and the SuperviseEnv a daemon would hand a OneOff.
struct Fixture {
  TempDir tmp;
  uv_loop_t loop{};
  std::unique_ptr<LogStore> logs;
  std::unique_ptr<CgroupTree> cgroups;
  SuperviseEnv env;
  ReleaseRun run;

  Fixture() {
    REQUIRE(uv_loop_init(&loop) == 0);
    auto store = LogStore::Open(tmp.path() + "/logs", {}, RealClock());
    REQUIRE(store.ok());
    logs = std::move(*store);
    env.loop = &loop;
    env.clock = &RealClock();
    env.logs = logs.get();
    env.supervisor_id = "test-one-off:" + std::to_string(::getpid());
    run.app = "shop";
    run.number = 3;
    run.slot = tmp.path();
    run.config = {{"GREETING", "hello"}};
  }
  ~Fixture() {
    cgroups.reset();
    logs.reset();
    CHECK(CloseLoop(&loop) == 0);
  }
  // Runs the loop until `done` or the deadline.
  bool RunUntil(const std::function<bool()>& done) {
    return support::RunLoopUntil(&loop, done);
  }
  OneOffSpec Spec(const std::string& command) {
    return OneOffOf(run, env, "release", CommandArgv(command));
  }
  // A shell that forks a sleep (`*grandchild`) and waits for it.
  std::unique_ptr<OneOff> StartWithGrandchild(
      std::optional<ExitInfo>* exit, pid_t* grandchild,
      const std::string& sleep = "/bin/sleep") {
    auto one = OneOff::Start(&env, Spec(sleep + " 30 & echo $!; wait"),
                             [exit](const ExitInfo& e) { *exit = e; });
    REQUIRE(one.ok());
    REQUIRE(RunUntil([&] { return !(*one)->TailLines().empty(); }));
    *grandchild = std::stoi((*one)->TailLines().front());
    return std::move(*one);
  }
  std::vector<std::string> LogLines(const std::string& process) {
    std::vector<std::string> out;
    auto records = logs->Tail("shop", LogFilter{}, 100);
    REQUIRE(records.ok());
    for (const auto& r : *records)
      if (r.process == process) out.push_back(r.stream + ": " + r.text);
    return out;
  }
};

TEST_CASE(
    "a one-off's output goes to the app's log under its name and its exit is "
    "reported once") {
  Fixture f;
  int calls = 0;
  std::optional<ExitInfo> exit;
  auto one = OneOff::Start(
      &f.env,
      f.Spec("echo \"$GREETING $RELSUPD_RELEASE $RELSUPD_PROCESS $PWD\"; "
             "echo oops >&2; printf 'no newline'; exit 3"),
      [&](const ExitInfo& e) {
        ++calls;
        exit = e;
      });
  REQUIRE(one.ok());
  CHECK((*one)->running());
  REQUIRE(f.RunUntil([&] { return exit.has_value(); }));
  CHECK(calls == 1);
  CHECK(exit->status == 3);
  CHECK(exit->signal == 0);
  CHECK(!(*one)->running());
  const std::string first = "hello v3 release " + f.tmp.path();
  // stdout and stderr are two pipes: only each one's own order is kept.
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  CHECK(sorted(f.LogLines("release")) ==
        std::vector<std::string>{"err: oops", "out: " + first,
                                 "out: no newline"});
  CHECK(sorted((*one)->TailLines()) == sorted({first, "oops", "no newline"}));
}

TEST_CASE("a one-off keeps only its last lines, each cut short") {
  Fixture f;
  std::optional<ExitInfo> exit;
  auto one = OneOff::Start(
      &f.env,
      f.Spec("i=0; while [ $i -lt 30 ]; do echo line$i; i=$((i+1)); done; "
             "head -c 3000 /dev/zero | tr '\\0' x"),
      [&](const ExitInfo& e) { exit = e; });
  REQUIRE(one.ok());
  REQUIRE(f.RunUntil([&] { return exit.has_value(); }));
  const auto tail = (*one)->TailLines();
  REQUIRE(tail.size() == OneOff::kTailLines);
  CHECK(tail.front() == "line11");
  CHECK(tail.back() == std::string(OneOff::kTailLineBytes, 'x'));
}

TEST_CASE(
    "Stop sends the stop signal to the group, then SIGKILL after the timeout") {
  Fixture f;
  std::optional<ExitInfo> exit;
  auto polite = OneOff::Start(&f.env, f.Spec("/bin/sleep 30"),
                              [&](const ExitInfo& e) { exit = e; });
  REQUIRE(polite.ok());
  (*polite)->Stop();
  REQUIRE(f.RunUntil([&] { return exit.has_value(); }));
  CHECK(exit->signal == SIGTERM);
  CHECK(exit->Describe() == "signal TERM");

  exit.reset();
  OneOffSpec spec =
      f.Spec("trap '' TERM; echo ready; while :; do sleep 0.05; done");
  spec.stop_timeout_ms = 300;
  auto stubborn =
      OneOff::Start(&f.env, spec, [&](const ExitInfo& e) { exit = e; });
  REQUIRE(stubborn.ok());
  const pid_t pid = (*stubborn)->pid();
  REQUIRE(f.RunUntil([&] { return !(*stubborn)->TailLines().empty(); }));
  (*stubborn)->Stop();
  REQUIRE(f.RunUntil([&] { return exit.has_value(); }));
  CHECK(exit->signal == SIGKILL);
  CHECK(!Alive(pid));
}

TEST_CASE("Kill ends a one-off and its group at once") {
  Fixture f;
  std::optional<ExitInfo> exit;
  pid_t grandchild = 0;
  // The shell forks a sleep: both must go.
  auto one = f.StartWithGrandchild(&exit, &grandchild);
  REQUIRE(Alive(grandchild));
  one->Kill();
  REQUIRE(f.RunUntil([&] { return exit.has_value(); }));
  CHECK(exit->signal == SIGKILL);
  CHECK(f.RunUntil([&] { return !Alive(grandchild); }));
}

TEST_CASE("a one-off destroyed while it runs is killed without a callback") {
  Fixture f;
  bool called = false;
  auto one = OneOff::Start(&f.env, f.Spec("/bin/sleep 30"),
                           [&](const ExitInfo&) { called = true; });
  REQUIRE(one.ok());
  const pid_t pid = (*one)->pid();
  one->reset();
  CHECK(f.RunUntil([&] { return !Alive(pid); }));
  CHECK(!called);
}

TEST_CASE("a one-off may be destroyed in its own exit callback") {
  Fixture f;
  std::unique_ptr<OneOff> holder;
  bool ended = false;
  auto one = OneOff::Start(&f.env, f.Spec("exit 0"), [&](const ExitInfo& e) {
    CHECK(e.status == 0);
    holder.reset();
    ended = true;
  });
  REQUIRE(one.ok());
  holder = std::move(*one);
  REQUIRE(f.RunUntil([&] { return ended; }));
  CHECK(holder == nullptr);
}

TEST_CASE(
    "a one-off on given fds writes to them and can own a pty as its terminal") {
  Fixture f;
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  Fd read_end(p[0]), write_end(p[1]);
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  OneOffSpec spec = f.Spec("echo to-fd; echo err-fd >&2");
  spec.stdio = ExecStdio{null.get(), write_end.get(), write_end.get()};
  std::optional<ExitInfo> exit;
  auto one = OneOff::Start(&f.env, spec, [&](const ExitInfo& e) { exit = e; });
  REQUIRE(one.ok());
  write_end.Reset();
  REQUIRE(f.RunUntil([&] { return exit.has_value(); }));
  std::string got(64, '\0');
  ssize_t n = 0, r;
  while ((r = ::read(read_end.get(), got.data() + n, got.size() - n)) > 0)
    n += r;
  got.resize(n);
  CHECK(got == "to-fd\nerr-fd\n");
  CHECK(f.LogLines("release").empty());
  CHECK((*one)->TailLines().empty());

  // A pty: the process's controlling terminal is the slave, so a ^C typed
  // on the master reaches it as SIGINT.
  int master = -1, slave = -1;
  REQUIRE(::openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
  Fd m(master), s(slave);
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(master, F_SETFL, O_NONBLOCK);
  ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  spec = f.Spec("test -t 0 && echo tty-ok; exec /bin/sleep 30");
  spec.stdio = ExecStdio{s.get(), s.get(), s.get()};
  spec.controlling_tty = true;
  exit.reset();
  auto tty = OneOff::Start(&f.env, spec, [&](const ExitInfo& e) { exit = e; });
  REQUIRE(tty.ok());
  s.Reset();
  std::string seen;
  REQUIRE(f.RunUntil([&] {
    char buf[256];
    const ssize_t k = ::read(master, buf, sizeof buf);
    if (k > 0) seen.append(buf, k);
    return seen.find("tty-ok") != std::string::npos;
  }));
  // The sleep leads its session and has the pty as controlling terminal
  // (field 7 of /proc/PID/stat, tty_nr, is not 0).
  const pid_t pid = (*tty)->pid();
  REQUIRE(f.RunUntil([&] {
    return support::ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/cmdline")
        .starts_with("/bin/sleep");
  }));
  CHECK(::getsid(pid) == pid);
  REQUIRE(::write(master, "\x03", 1) == 1);
  REQUIRE(f.RunUntil([&] { return exit.has_value(); }));
  CHECK(exit->signal == SIGINT);

  spec.controlling_tty = true;
  spec.stdio.reset();
  CHECK(OneOff::Start(&f.env, spec, {}).status().message() ==
        "a controlling terminal needs the caller's stdio");
}

TEST_CASE(
    "a one-off runs as the app's user with RELSUPD_SUPERVISOR, so the "
    "leftovers sweep finds it") {
  Fixture f;
  if (::geteuid() == 0) {
    f.run.uid = 65534;
    f.run.gid = 65534;
    f.run.user = "nobody";
  }
  OneOffSpec spec = f.Spec("/bin/sleep 30");
  // A caller's stale value is replaced, never trusted.
  spec.env.push_back("RELSUPD_SUPERVISOR=someone-else");
  std::optional<ExitInfo> exit;
  auto one = OneOff::Start(&f.env, spec, [&](const ExitInfo& e) { exit = e; });
  REQUIRE(one.ok());
  const pid_t pid = (*one)->pid();
  // Until the exec step has run, /proc shows the forked daemon (root, the
  // daemon's environment): wait for the exec'd process.
  CHECK(support::WaitUntil(
      [&] { return FindLeftovers(f.env.supervisor_id) == std::vector<pid_t>{pid}; }, 10'000, 5));
  const std::string status =
      support::ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/status");
  if (::geteuid() == 0)
    CHECK(status.find("Uid:\t65534\t65534\t65534") != std::string::npos);
  CHECK(KillLeftovers(f.env.supervisor_id) == 1);
  REQUIRE(f.RunUntil([&] { return exit.has_value(); }));
  CHECK(exit->signal == SIGKILL);
}

TEST_CASE("a one-off gets a cgroup of its own, killed and removed at its end") {
  Fixture f;
  auto mount = CgroupTree::FindMount();
  const std::string root = (mount.ok() ? *mount : std::string("/nonexistent")) +
                           "/relsupd-one-off-test-" +
                           std::to_string(::getpid());
  auto tree = CgroupTree::Open(&f.loop, root);
  if (!tree.ok()) {
    WARN("no writable cgroup2 tree (" << tree.status().message()
                                      << "): skipped");
    return;
  }
  f.cgroups = std::move(*tree);
  f.env.cgroups = f.cgroups.get();
  std::optional<ExitInfo> exit;
  pid_t grandchild = 0;
  // In a session of its own: only the cgroup holds it.
  auto one = f.StartWithGrandchild(&exit, &grandchild, "setsid /bin/sleep");
  const std::string cg = support::ReadFileOrEmpty(
      "/proc/" + std::to_string(one->pid()) + "/cgroup");
  CHECK(cg.find("/relsupd-one-off-test-" + std::to_string(::getpid()) +
                "/shop/release@") != std::string::npos);
  // The main process ends; the grandchild in its cgroup ends with it.
  CHECK(one->Signal(SIGKILL).ok());
  REQUIRE(f.RunUntil([&] { return exit.has_value(); }));
  CHECK(f.RunUntil([&] { return !Alive(grandchild); }));
  CHECK(f.RunUntil([&] {
    struct stat st;
    return ::stat((root + "/shop").c_str(), &st) != 0 ||
           support::ReadFileOrEmpty(root + "/shop/cgroup.procs").empty();
  }));
  f.cgroups.reset();
  ::rmdir((root + "/shop").c_str());
  f.RunUntil([&] { return ::rmdir(root.c_str()) == 0 || errno == ENOENT; });
}

TEST_CASE("a one-off that cannot start says why and leaves nothing running") {
  Fixture f;
  auto missing = OneOff::Start(&f.env, f.Spec("/nonexistent/migrate"), {});
  REQUIRE(!missing.ok());
  CHECK(missing.status().message() ==
        "cannot run '/nonexistent/migrate': No such file or directory");
  CHECK(f.LogLines("release") ==
        std::vector<std::string>{
            "err: relsupd: cannot run '/nonexistent/migrate': No such file or "
            "directory"});
  CHECK(OneOff::Start(&f.env, f.Spec(""), {}).status().message() ==
        "no command to run");
  OneOffSpec spec = f.Spec("true");
  spec.stdio = ExecStdio{0, -1, 2};
  CHECK(OneOff::Start(&f.env, spec, {}).status().message() ==
        "stdin, stdout and stderr must all be given");
}

}  // namespace
}  // namespace relsupd
