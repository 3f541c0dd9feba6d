// The supervise side of daemon-reexec in one process, no exec
// (docs/reexec.md §7.2): a ChildProcess, or a whole Supervisor, hands its
// children over (Export, then Abandon stands in for the execve) and a
// second one adopts them on the same loop. Real children, real pipes and pidfds; every process a test starts
// is ended by the test, by pid.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "daemon/base/clock.h"
#include "daemon/base/fd_closer.h"
#include "daemon/base/uv_handle.h"
#include "daemon/logs/log_store.h"
#include "daemon/supervise/cgroup.h"
#include "daemon/supervise/notify_socket.h"
#include "daemon/supervise/spawn.h"
#include "daemon/supervise/supervisor.h"
#include "tests/support/fs.h"
#include "tests/support/proc.h"
#include "tests/support/sockets.h"
#include "tests/support/temp_dir.h"
#include "tests/integration/run_loop.h"
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
    return support::RunLoopUntil(&loop, done);
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

// A Supervisor's whole handover: A runs real children, exports and lets go,
// B adopts them on the same loop.
struct Quiet final : SupervisorListener {
  int changes = 0, failures = 0;
  void OnInstanceChange(const ReleaseGroup&, const Instance&) override { ++changes; }
  void OnInstanceFailed(const ReleaseGroup&, const Instance&, const std::string&) override {
    ++failures;
  }
};

const Instance* Find(Supervisor& sup, const std::string& name) {
  ReleaseGroup* g = sup.Active("shop");
  if (g == nullptr) return nullptr;
  for (const Instance* i : g->Instances())
    if (i->name() == name) return i;
  return nullptr;
}

TEST_CASE("a supervisor hands its running children to another without touching them") {
  TempDir tmp;
  Loop loop;
  auto store = LogStore::Open(tmp.path() + "/logs", {}, RealClock());
  REQUIRE(store.ok());
  SuperviseEnv env;
  env.loop = &loop.loop;
  env.clock = &RealClock();
  env.logs = store->get();
  env.supervisor_id = "test-reexec:" + std::to_string(::getpid());
  env.backoff.max_crashes = 1;  // "bad" fails at its second crash
  env.backoff.initial_ms = 1;
  auto run = std::make_shared<ReleaseRun>();
  run->app = "shop";
  run->number = 3;
  run->slot = tmp.path();
  ProcessSpec web;
  web.name = "web";
  web.command = "printf abc; " + WaitFor(tmp.path() + "/go") +
                "printf 'def\\n'; exec /bin/sleep 30";
  web.scale = 2;
  ProcessSpec bad;
  bad.name = "bad";
  bad.command = "exit 1";
  run->processes.processes = {{"web", web}, {"bad", bad}};

  Quiet heard_a;
  auto a = std::make_unique<Supervisor>(env, &heard_a);
  a->Run(run, {});
  auto partial = [&](const char* name) {
    const Instance* i = Find(*a, name);
    return i != nullptr && i->state() == InstanceState::kReady &&
           i->Export().capture.out_partial == "abc";
  };
  REQUIRE(loop.RunUntil([&] { return partial("web.1") && partial("web.2"); }));
  // web.2 crashes once and is back: restarts 1.
  REQUIRE(::kill(Find(*a, "web.2")->pid(), SIGKILL) == 0);
  REQUIRE(loop.RunUntil([&] {
    return Find(*a, "web.2")->restarts() == 1 && partial("web.2") &&
           Find(*a, "bad.1")->state() == InstanceState::kFailed;
  }));
  const SupervisorSnapshot snap = a->Export();
  REQUIRE(snap.apps.size() == 1);
  const GroupSnapshot& group = *snap.apps[0].active;
  CHECK(group.failed_types == std::set<std::string>{"bad"});
  const pid_t web1 = Find(*a, "web.1")->pid(), web2 = Find(*a, "web.2")->pid();
  a->Abandon();
  a.reset();
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  CHECK(support::Alive(web1));
  CHECK(support::Alive(web2));
  // The exec window: web.1 dies, web.2 finishes its line.
  REQUIRE(::kill(web1, SIGKILL) == 0);
  Touch(tmp.path() + "/go");
  REQUIRE(support::WaitUntil([&] { return !support::Alive(web1); }));

  Quiet heard_b;
  Supervisor b(env, &heard_b);
  b.Adopt(snap);
  CHECK(heard_b.changes == 0);  // adoption itself tells nobody
  CHECK(Find(b, "web.2")->pid() == web2);
  CHECK(Find(b, "web.2")->restarts() == 1);
  CHECK(Find(b, "bad.1")->state() == InstanceState::kFailed);
  CHECK(b.Active("shop")->failed_types() == std::set<std::string>{"bad"});
  CHECK(Find(b, "web.2")->exits().size() == 1);
  // The exit during the window is read (SIGKILL) and web.1 restarts.
  REQUIRE(loop.RunUntil([&] {
    const Instance* w = Find(b, "web.1");
    return w->restarts() == 1 && w->state() == InstanceState::kReady && w->pid() != web1;
  }));
  CHECK(Find(b, "web.1")->exits().back().signal == SIGKILL);
  // The line web.2 began before the handover is stored once, whole.
  REQUIRE(loop.RunUntil([&] {
    (*store)->Flush();
    auto recs = (*store)->Since("shop", 0, LogFilter{"web.2", "", ""}, 100);
    return recs.ok() && !recs->empty() && recs->back().text == "abcdef";
  }));
  auto recs = (*store)->Since("shop", 0, LogFilter{"web.2", "", ""}, 100);
  REQUIRE(recs.ok());
  std::map<std::string, int> lines;
  for (const LogRecord& r : *recs) ++lines[r.text];
  // "abc" once: web.2's first process, killed before it ended its line.
  CHECK(lines == std::map<std::string, int>{{"abc", 1}, {"abcdef", 1}});
  CHECK(heard_a.failures == 1);
  CHECK(heard_b.failures == 0);
  // Stopped by pid: B's destructor SIGKILLs every group it still runs.
  const pid_t web1_now = Find(b, "web.1")->pid();
  bool stopped = false;
  b.StopEverything([&] { stopped = true; });
  REQUIRE(loop.RunUntil([&] { return stopped; }));
  CHECK_FALSE(support::Alive(web1_now));
  CHECK_FALSE(support::Alive(web2));
}

TEST_CASE("the cgroup tree crosses with its counter: the adopted tree names no cgroup twice") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto mount = CgroupTree::FindMount();
  const std::string root = (mount.ok() ? *mount : std::string("/nonexistent")) +
                           "/relsupd-adopt-test-" + std::to_string(::getpid());
  {
    auto old_tree = CgroupTree::Open(&loop, root);
    if (!old_tree.ok()) {
      WARN("no writable cgroup2 tree (" << old_tree.status().message() << "): skipped");
      CloseLoop(&loop);
      return;
    }
    auto first = (*old_tree)->Create("shop", "web.1");
    REQUIRE(first.ok());
    const CgroupSnapshot snapshot = (*old_tree)->Export();
    CHECK(snapshot.root == root);
    CHECK(snapshot.next == 2);
    auto tree = CgroupTree::Adopt(&loop, snapshot);
    REQUIRE(tree.ok());
    auto second = (*tree)->Create("shop", "web.1");
    REQUIRE(second.ok());
    CHECK(*second == root + "/shop/web.1@2");
    // The first instance's cgroup was left alone.
    struct stat st;
    CHECK(::stat(first->c_str(), &st) == 0);
    (*tree)->KillAndRemove(*first);
    (*tree)->KillAndRemove(*second);
    // A record naming a root that is not a cgroup2 directory is refused.
    CHECK_FALSE(CgroupTree::Adopt(&loop, {.root = "/proc/self", .next = 3}).ok());
  }
  ::rmdir((root + "/shop").c_str());
  ::rmdir(root.c_str());
  CloseLoop(&loop);
}

// The old image's side of the notify socket's handover: a listener opened
// on a fresh path, exported and let go. A test adopts `snapshot`.
struct ExportedNotify {
  Loop l;
  FdCloser closer;
  TempDir dir{"relsupd-adopt-notify"};
  const std::string path = dir.Path("notify.sock");
  NotifySnapshot snapshot;
  ExportedNotify() {
    auto old_listener = NotifyListener::Open(&l.loop, path, &closer, [](pid_t, const auto&) {});
    REQUIRE(old_listener.ok());
    snapshot = (*old_listener)->Export();
    CHECK(snapshot.path == path);
    CHECK_FALSE(snapshot.refuses_fds);  // written false now
    (*old_listener)->Abandon();
  }
};

TEST_CASE("the notify socket crosses: a datagram sent in the exec window reaches the new listener") {
  ExportedNotify old;
  Loop& l = old.l;
  FdCloser& closer = old.closer;
  const std::string& path = old.path;
  const NotifySnapshot& snapshot = old.snapshot;
  // The path still names the socket: the window's datagram waits in it.
  int sender = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(sender >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  const std::string datagram = "READY=1\nSTATUS=in the window";
  CHECK(::sendto(sender, datagram.data(), datagram.size(), 0,
                 reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
        static_cast<ssize_t>(datagram.size()));
  ::close(sender);
  std::optional<std::pair<pid_t, std::map<std::string, std::string>>> got;
  auto listener = NotifyListener::Adopt(
      &l.loop, snapshot, &closer,
      [&](pid_t pid, const std::map<std::string, std::string>& f) { got.emplace(pid, f); });
  REQUIRE(l.RunUntil([&] { return got.has_value(); }));
  CHECK(got->first == ::getpid());
  CHECK(got->second["STATUS"] == "in the window");
  listener.reset();
  struct stat st;
  CHECK(::stat(path.c_str(), &st) != 0);  // the owner's end unlinks it
}

TEST_CASE("the notify socket of an image that refused fds takes them again once adopted, "
          "and answers a barrier") {
  ExportedNotify old;
  Loop& l = old.l;
  FdCloser& closer = old.closer;
  const std::string& path = old.path;
  NotifySnapshot& snapshot = old.snapshot;
  // What an image from before the barrier support did (Linux 6.16+; 83 is
  // SO_PASSRIGHTS, not in older headers).
  int zero = 0;
  const bool refused =
      ::setsockopt(snapshot.fd, SOL_SOCKET, 83, &zero, sizeof(zero)) == 0;
  if (!refused) WARN("this kernel has no SO_PASSRIGHTS (before 6.16): nothing to undo");
  snapshot.refuses_fds = refused;
  {
    support::Pipe p;
    CHECK(support::SendDatagram(path, "BARRIER=1", {p.write_end.get()}) ==
          (refused ? EPERM : 0));
  }
  std::vector<std::map<std::string, std::string>> got;
  auto listener = NotifyListener::Adopt(
      &l.loop, snapshot, &closer,
      [&](pid_t, const std::map<std::string, std::string>& f) { got.push_back(f); });
  support::Pipe barrier;
  REQUIRE(support::SendDatagram(path, "STATUS=first") == 0);
  REQUIRE(support::SendDatagram(path, "BARRIER=1", {barrier.write_end.get()}) == 0);
  barrier.write_end.Reset();
  REQUIRE(l.RunUntil([&] { return barrier.HungUp(); }));
  // The fd was closed once the message before it had been handled.
  CHECK(std::any_of(got.begin(), got.end(), [](const auto& f) {
    auto it = f.find("STATUS");
    return it != f.end() && it->second == "first";
  }));
  // The one sent before adoption too, where the kernel took it.
  CHECK(l.RunUntil([&] { return got.size() == (refused ? 2u : 3u); }));
  CHECK(got.back().at("BARRIER") == "1");
  CHECK(listener->Export().refuses_fds == false);
  CHECK(l.RunUntil([&] { return closer.empty(); }));
}

}  // namespace
}  // namespace relsupd
