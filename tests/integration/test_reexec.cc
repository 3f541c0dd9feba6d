// The supervise side of daemon-reexec in one process, no exec
// (docs/reexec.md §7.2): a ChildProcess hands its child over (Export, then
// Abandon stands in for the execve) and a second one adopts it on the same
// loop. Real children, real pipes and pidfds; every process a test starts
// is ended by the test, by pid.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "daemon/base/uv_handle.h"
#include "daemon/supervise/spawn.h"
#include "tests/support/fs.h"
#include "tests/support/proc.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace relsupd {
namespace {

using support::TempDir;

struct Loop {
  uv_loop_t loop{};
  Loop() { REQUIRE(uv_loop_init(&loop) == 0); }
  ~Loop() { CHECK(CloseLoop(&loop) == 0); }
  // Runs the loop until `done` or the deadline.
  bool RunUntil(const std::function<bool()>& done) {
    return support::WaitUntil(
        [&] {
          uv_run(&loop, UV_RUN_NOWAIT);
          return done();
        },
        10'000, 1);
  }
};

// What one owner of a child heard from it.
struct Heard {
  std::string out, err;
  std::optional<std::pair<int64_t, int>> exit;
  ChildProcess::Callbacks Callbacks() {
    ChildProcess::Callbacks cb;
    cb.on_output = [this](OutputStream s, std::string_view d) {
      (s == OutputStream::kOut ? out : err).append(d);
    };
    cb.on_exit = [this](int64_t status, int signal) { exit = {status, signal}; };
    return cb;
  }
};

// A shell that runs `script` in a fresh process group.
std::unique_ptr<ChildProcess> Start(uv_loop_t* loop, Heard* heard,
                                    const std::string& script) {
  SpawnRequest req;
  req.argv = {"/bin/sh", "-c", script};
  req.env = {"PATH=/usr/bin:/bin"};
  auto child = ChildProcess::Spawn(loop, req, heard->Callbacks());
  REQUIRE(child.ok());
  return std::move(*child);
}

// A script that waits (polling) until `file` exists.
std::string WaitFor(const std::string& file) {
  return "while [ ! -e " + file + " ]; do sleep 0.01; done; ";
}

void Touch(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  ::close(fd);
}

bool FdOpen(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

TEST_CASE("an adopted child goes on writing and exits to its new owner") {
  TempDir tmp;
  Loop loop;
  Heard warm;  // the first spawn opens /dev/null for good
  auto first = Start(&loop.loop, &warm, "exit 0");
  REQUIRE(loop.RunUntil([&] { return warm.exit.has_value(); }));
  first.reset();
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  const std::set<int> fds_before = support::OpenFds(::getpid());
  Heard a;
  auto old = Start(&loop.loop, &a,
                   "printf abc; printf e1 >&2; " + WaitFor(tmp.path() + "/go") +
                       "printf 'def\\n'; printf 'e2\\n' >&2; exit 7");
  REQUIRE(loop.RunUntil([&] { return a.out == "abc" && a.err == "e1"; }));
  const ChildFds fds = old->Export();
  CHECK(fds.pid == old->pid());
  CHECK(fds.out_fd >= 0);
  CHECK(fds.err_fd >= 0);
  CHECK_FALSE(fds.paused);
  old->Abandon();
  old.reset();  // kills nothing: it let go
  uv_run(&loop.loop, UV_RUN_NOWAIT);  // the abandoned handles' close callbacks
  CHECK(support::Alive(fds.pid));
  for (int fd : {fds.pidfd, fds.out_fd, fds.err_fd}) CHECK(FdOpen(fd));

  Heard b;
  auto adopted = ChildProcess::Adopt(&loop.loop, fds, b.Callbacks());
  REQUIRE(adopted.ok());
  CHECK((*adopted)->pid() == fds.pid);
  Touch(tmp.path() + "/go");
  REQUIRE(loop.RunUntil([&] { return b.exit.has_value(); }));
  (*adopted)->DrainOutput();
  CHECK(b.exit->first == 7);
  CHECK(b.exit->second == 0);
  CHECK(b.out == "def\n");
  CHECK(b.err == "e2\n");
  CHECK(a.out == "abc");  // the old owner heard nothing more
  CHECK_FALSE(a.exit.has_value());
  adopted->reset();
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  CHECK(support::OpenFds(::getpid()) == fds_before);  // no fd leaked
}

TEST_CASE("a child that dies while nobody watches is read, and reaped, by its adopter") {
  Loop loop;
  Heard a;
  auto old = Start(&loop.loop, &a, "exec /bin/sleep 30");
  const ChildFds fds = old->Export();
  old->Abandon();
  old.reset();
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  REQUIRE(::kill(fds.pid, SIGKILL) == 0);  // the exec window
  REQUIRE(support::WaitUntil([&] { return !support::Alive(fds.pid); }));
  Heard b;
  auto adopted = ChildProcess::Adopt(&loop.loop, fds, b.Callbacks());
  REQUIRE(adopted.ok());
  REQUIRE(loop.RunUntil([&] { return b.exit.has_value(); }));
  CHECK(b.exit->first == 0);
  CHECK(b.exit->second == SIGKILL);
  adopted->reset();
  // Reaped: no zombie is left to find.
  CHECK(support::StatFields(fds.pid).empty());
}

TEST_CASE("a paused child is adopted paused, a stream at its end stays closed") {
  TempDir tmp;
  Loop loop;
  Heard a;
  auto old = Start(&loop.loop, &a,
                   "exec 2>&-; " + WaitFor(tmp.path() + "/go") + "echo late; exit 0");
  REQUIRE(loop.RunUntil([&] {
    ChildFds f = old->Export();
    return f.err_fd < 0;  // stderr reached its end
  }));
  old->PauseOutput();
  const ChildFds fds = old->Export();
  CHECK(fds.paused);
  CHECK(fds.out_fd >= 0);
  old->Abandon();
  old.reset();
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  Heard b;
  auto adopted = ChildProcess::Adopt(&loop.loop, fds, b.Callbacks());
  REQUIRE(adopted.ok());
  CHECK((*adopted)->output_paused());
  Touch(tmp.path() + "/go");
  REQUIRE(loop.RunUntil([&] { return b.exit.has_value(); }));
  CHECK(b.out.empty());  // paused: nothing read
  (*adopted)->ResumeOutput();
  REQUIRE(loop.RunUntil([&] { return b.out == "late\n"; }));
  adopted->reset();
}

TEST_CASE("orphans are exported, and an adopted orphan is reaped silently") {
  Loop loop;
  Heard a;
  auto child = Start(&loop.loop, &a, "exec /bin/sleep 30");
  const pid_t pid = child->pid();
  child.reset();  // SIGKILLed; its watch lives on to reap it
  std::vector<ReapEntry> orphans = ChildProcess::ExportOrphans();
  REQUIRE(orphans.size() == 1);
  CHECK(orphans[0].pid == pid);
  ChildProcess::AbandonOrphans();
  CHECK(ChildProcess::ExportOrphans().empty());
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  CHECK(FdOpen(orphans[0].pidfd));
  REQUIRE(ChildProcess::AdoptOrphan(&loop.loop, orphans[0]).ok());
  CHECK(ChildProcess::ExportOrphans().size() == 1);
  REQUIRE(loop.RunUntil([&] { return support::StatFields(pid).empty(); }));
  CHECK(loop.RunUntil([&] { return ChildProcess::ExportOrphans().empty(); }));
  CHECK_FALSE(a.exit.has_value());
}

TEST_CASE("adopting without a pid or pidfd is refused and closes what it got") {
  Loop loop;
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  ChildFds fds;
  fds.pid = 0;
  fds.pidfd = p[0];
  fds.out_fd = p[1];
  Heard b;
  CHECK_FALSE(ChildProcess::Adopt(&loop.loop, fds, b.Callbacks()).ok());
  CHECK_FALSE(FdOpen(p[0]));
  CHECK_FALSE(FdOpen(p[1]));
}

TEST_CASE("children run through ChildProcess leave SIGCHLD at its default") {
  // No uv_spawn in the daemon: libuv's SIGCHLD handler would reap children
  // it does not know (docs/reexec.md §3.1).
  Loop loop;
  Heard a;
  auto child = Start(&loop.loop, &a, "exit 0");
  REQUIRE(loop.RunUntil([&] { return a.exit.has_value(); }));
  struct sigaction sa {};
  REQUIRE(::sigaction(SIGCHLD, nullptr, &sa) == 0);
  CHECK(sa.sa_handler == SIG_DFL);
}

}  // namespace
}  // namespace relsupd
