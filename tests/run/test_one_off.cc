// `relsupd ctl run`: one-off processes end to end, the real daemon and the
// real CLI: stdio passed over the socket or a pty, exit statuses, the
// release's slot, environment and user, signals, a client that goes away,
// the ledger, `ps --all`, rights and hostile requests.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/run/run_fixture.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace relsupd::run_test {
namespace {

using support::ProcResult;
using support::RunOptions;

bool IsRoot() { return ::geteuid() == 0; }

// A live v1 whose web process sleeps; v2 made (not activated) with
// GREETING=bonjour.
void TwoReleases(Stage& stage) {
  DeployProcfile(stage, "web: sleep 1000\n");
  stage.CtlOk({"config", "set", "shop", "GREETING=bonjour"});
}

ProcResult Run(Stage& stage, std::vector<std::string> args,
               const RunOptions& options = {}) {
  args.insert(args.begin(), "run");
  return stage.Ctl(args, options);
}

// The CLI in the background, its stdout a pipe we read; stopped by pid.
struct Background {
  pid_t pid = -1;
  int out = -1;
  ~Background() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      support::ExitStatus st;
      support::WaitPid(pid, 5'000, &st);
    }
    if (out >= 0) ::close(out);
  }
  // The first line the process printed ("" at EOF or after 10 s).
  std::string ReadLine() {
    std::string line;
    char c;
    while (support::WaitUntil(
        [&] {
          pollfd p{out, POLLIN, 0};
          return ::poll(&p, 1, 0) == 1;
        },
        10'000)) {
      if (::read(out, &c, 1) != 1 || c == '\n') break;
      line += c;
    }
    return line;
  }
};

std::unique_ptr<Background> RunInBackground(
    Stage& stage, const std::vector<std::string>& cmd) {
  auto b = std::make_unique<Background>();
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  std::vector<std::string> argv = {support::RelsupdBin(),
                                   "ctl",
                                   "--socket",
                                   stage.socket(),
                                   "run",
                                   "shop",
                                   "--"};
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  int devnull = support::OpenDevNull();
  b->pid = support::Spawn(argv, support::ChildEnv(), devnull, p[1], 2);
  ::close(devnull);
  ::close(p[1]);
  b->out = p[0];
  return b;
}

TEST_CASE("one-off: stdin passes through, exit 7 is 7 and SIGTERM is 143") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  const std::string input = stage.dir().WriteFile("in.txt", "hello\nworld\n");
  ProcResult cat = Run(stage, {"shop", "--", "cat"}, {.stdin_path = input});
  INFO(cat.Describe());
  CHECK(cat.status.Exited(0));
  CHECK(cat.out == "hello\nworld\n");

  ProcResult seven =
      Run(stage, {"shop", "--", "sh", "-c", "echo out; echo err >&2; exit 7"});
  INFO(seven.Describe());
  CHECK(seven.status.Exited(7));
  CHECK(seven.out == "out\n");
  CHECK(seven.err == "err\n");

  ProcResult term = Run(stage, {"shop", "--", "sh", "-c", "kill -TERM $$"});
  INFO(term.Describe());
  CHECK(term.status.Exited(143));

  ProcResult missing = Run(stage, {"shop", "--", "no-such-program-xyz"});
  INFO(missing.Describe());
  CHECK(missing.status.Exited(127));
  CHECK_THAT(missing.err, Catch::Contains("no-such-program-xyz"));
}

TEST_CASE(
    "one-off: the release's slot and environment, --release picks another") {
  Stage stage(FastConfig());
  TwoReleases(stage);
  const std::string show =
      "echo $RELSUPD_APP $RELSUPD_RELEASE $RELSUPD_PROCESS \"[$GREETING]\"; "
      "pwd";
  ProcResult active = Run(stage, {"shop", "--", "sh", "-c", show});
  INFO(active.Describe());
  CHECK(active.status.Exited(0));
  CHECK(active.out == "shop v1 run []\n" +
                          std::filesystem::canonical(stage.Slot(1)).string() +
                          "\n");

  ProcResult v2 =
      Run(stage, {"shop", "--release", "v2", "--", "sh", "-c", show});
  INFO(v2.Describe());
  CHECK(v2.status.Exited(0));
  CHECK(v2.out == "shop v2 run [bonjour]\n" +
                      std::filesystem::canonical(stage.Slot(2)).string() +
                      "\n");
  // A one-off is no instance: nothing of it in `ps`, v1's web.1 only.
  Json ps = Ps(stage);
  CHECK(ps.size() == 1);
}

TEST_CASE("one-off: runs as the app's user, not as root") {
  if (!IsRoot()) {
    WARN("not root: the app runs as the daemon's user, skipping");
    return;
  }
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  Json app = stage.CtlJson({"app", "show", "shop"});
  const int64_t uid = app["uid"].get<int64_t>();
  REQUIRE(uid > 0);
  ProcResult id = Run(stage, {"shop", "--", "sh", "-c", "id -u; id -g"});
  INFO(id.Describe());
  CHECK(id.status.Exited(0));
  CHECK(id.out == std::to_string(uid) + "\n" + app["gid"].dump() + "\n");
}

TEST_CASE(
    "one-off: recorded in history with command, release and exit status") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  CHECK(Run(stage, {"shop", "--", "sh", "-c", "exit 7"}).status.Exited(7));
  Json history = stage.CtlJson({"history", "shop"});
  REQUIRE(history.size() >= 2);
  const Json& started = history[history.size() - 2];
  const Json& ran = history.back();
  CHECK(started["kind"] == "run-started");
  CHECK(started["release"] == "v1");
  CHECK(started["detail"] == "run.1: sh -c 'exit 7'");
  CHECK(ran["kind"] == "ran");
  CHECK(ran["release"] == "v1");
  CHECK(ran["detail"] == "run.1 exit 7: sh -c 'exit 7'");
  CHECK(ran["actor_uid"] == ::geteuid());
}

TEST_CASE(
    "one-off: ps --all lists it, a client that goes away takes it along") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  auto cli = RunInBackground(stage, {"sh", "-c", "echo $$; exec sleep 1000"});
  const std::string line = cli->ReadLine();
  REQUIRE(!line.empty());
  const pid_t pid = std::stoi(line);
  REQUIRE(Alive(pid));

  Json all = stage.CtlJson({"ps", "shop", "--all"});
  Json row = Row(all, "run.1");
  REQUIRE(row.is_object());
  CHECK(row["pid"] == pid);
  CHECK(row["type"] == "run");
  CHECK(row["state"] == "running");
  CHECK(row["release"] == "v1");
  CHECK(Row(Ps(stage), "run.1").is_null());
  CHECK_THAT(stage.CtlOk({"ps", "--all"}), Catch::Contains("run.1"));

  // The CLI dies without a word: its process goes too, and is recorded.
  ::kill(cli->pid, SIGKILL);
  CHECK(WaitGone({pid}, 10'000));
  support::WaitUntil(
      [&] {
        return stage.CtlJson({"history", "shop"}).back()["kind"] == "ran";
      },
      10'000);
  Json history = stage.CtlJson({"history", "shop"});
  CHECK(history.back()["kind"] == "ran");
  CHECK_THAT(history.back()["detail"].get<std::string>(),
             Catch::Contains("signal KILL"));
  CHECK(Row(stage.CtlJson({"ps", "shop", "--all"}), "run.1").is_null());
}

TEST_CASE("one-off: SIGTERM and SIGINT to the CLI reach the process") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  for (int sig : {SIGTERM, SIGINT}) {
    auto cli = RunInBackground(
        stage,
        {"sh", "-c",
         "trap 'exit 42' TERM INT; echo ready; while :; do sleep 0.1; done"});
    REQUIRE(cli->ReadLine() == "ready");
    ::kill(cli->pid, sig);
    support::ExitStatus st;
    REQUIRE(support::WaitPid(cli->pid, 10'000, &st));
    cli->pid = -1;
    CHECK(st.Exited(42));
  }
}

TEST_CASE("one-off: --tty gives the process a terminal of its own") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  ProcResult tty = Run(stage, {"shop", "--tty", "--", "sh", "-c",
                               "tty; test -t 1 && echo stdout-tty; exit 3"});
  INFO(tty.Describe());
  CHECK(tty.status.Exited(3));
  CHECK_THAT(tty.out, Catch::Contains("/dev/pts/"));
  CHECK_THAT(tty.out, Catch::Contains("stdout-tty"));
  // Without a tty the same has none.
  ProcResult plain = Run(stage, {"shop", "--", "sh", "-c", "tty"});
  CHECK_THAT(plain.out, Catch::Contains("not a tty"));
}

// A pseudo-terminal for the CLI to run on, as an operator's shell gives it.
struct Terminal {
  int master = -1;
  int slave = -1;
  std::string seen;  // all the master read so far
  Terminal() {
    master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(master >= 0);
    REQUIRE(::grantpt(master) == 0);
    REQUIRE(::unlockpt(master) == 0);
    slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(slave >= 0);
  }
  ~Terminal() {
    ::close(slave);
    ::close(master);
  }
  void Resize(unsigned short rows, unsigned short cols) {
    winsize ws{};
    ws.ws_row = rows;
    ws.ws_col = cols;
    REQUIRE(::ioctl(master, TIOCSWINSZ, &ws) == 0);
  }
  // Reads the master until `text` was printed (false after 20 s).
  bool WaitFor(const std::string& text) {
    return support::WaitUntil(
        [&] {
          char buf[512];
          pollfd p{master, POLLIN, 0};
          while (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
            ssize_t n = ::read(master, buf, sizeof buf);
            if (n <= 0) break;
            seen.append(buf, static_cast<size_t>(n));
          }
          return seen.find(text) != std::string::npos;
        },
        20'000);
  }
};

TEST_CASE(
    "one-off: on a terminal, a window-size change reaches the process and "
    "the terminal is restored at exit") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  Terminal term;
  term.Resize(30, 100);
  termios before{};
  REQUIRE(::tcgetattr(term.slave, &before) == 0);
  REQUIRE((before.c_lflag & ICANON) != 0);
  // The CLI's stdio is the terminal, so it gives the process a pty of its
  // own (no --tty) and puts this one in raw mode while it runs.
  std::vector<std::string> argv = {
      support::RelsupdBin(), "ctl", "--socket", stage.socket(), "run", "shop",
      "--", "sh", "-c", "echo size $(stty size); read x; echo size $(stty size); exit 5"};
  pid_t cli = support::Spawn(argv, support::ChildEnv({"TERM=dumb"}), term.slave,
                             term.slave, term.slave);
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        support::ExitStatus st;
        support::WaitPid(pid, 5'000, &st);
      }
    }
  } reaper{cli};
  INFO(term.seen);
  REQUIRE(term.WaitFor("size 30 100"));
  // While the one-off runs, the operator's terminal is raw: keys go to the
  // process's own line discipline.
  REQUIRE(support::WaitUntil(
      [&] {
        termios now{};
        return ::tcgetattr(term.slave, &now) == 0 && (now.c_lflag & ICANON) == 0;
      },
      10'000));
  term.Resize(40, 120);
  ::kill(cli, SIGWINCH);  // as the kernel does for the terminal's foreground
  REQUIRE(::write(term.master, "\r", 1) == 1);
  CHECK(term.WaitFor("size 40 120"));
  support::ExitStatus st;
  REQUIRE(support::WaitPid(cli, 20'000, &st));
  reaper.pid = -1;
  CHECK(st.Exited(5));
  termios after{};
  REQUIRE(::tcgetattr(term.slave, &after) == 0);
  CHECK(after.c_lflag == before.c_lflag);
  CHECK(after.c_iflag == before.c_iflag);
  CHECK(after.c_oflag == before.c_oflag);
}

TEST_CASE(
    "one-off: at most 64 run at once, the next is refused with the limit and "
    "a freed place is taken again") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  std::vector<std::unique_ptr<Background>> clis;
  for (int i = 0; i < 64; ++i)
    clis.push_back(RunInBackground(stage, {"sleep", "1000"}));
  auto runs = [&] {
    size_t n = 0;
    for (const Json& r : stage.CtlJson({"ps", "shop", "--all"}))
      if (r["type"] == "run") ++n;
    return n;
  };
  REQUIRE(support::WaitUntil([&] { return runs() == 64; }, 60'000));
  ProcResult refused = Run(stage, {"shop", "--", "true"});
  INFO(refused.Describe());
  CHECK(refused.exit_code() != 0);
  CHECK_THAT(refused.err,
             Catch::Contains("too many one-off processes are running (64)"));
  CHECK(runs() == 64);
  // One CLI goes away, its one-off with it: the place is free again.
  clis.pop_back();
  REQUIRE(support::WaitUntil([&] { return runs() == 63; }, 20'000));
  ProcResult ok = Run(stage, {"shop", "--", "true"});
  INFO(ok.Describe());
  CHECK(ok.status.Exited(0));
  clis.clear();
  CHECK(support::WaitUntil([&] { return runs() == 0; }, 30'000));
}

TEST_CASE("one-off: bad requests get clear errors and the daemon carries on") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  stage.CtlOk({"app", "create", "idle"});

  ProcResult no_release = Run(stage, {"shop", "--release", "v9", "--", "true"});
  INFO(no_release.Describe());
  CHECK(no_release.status.Exited(125));
  CHECK_THAT(no_release.err, Catch::Contains("v9"));

  ProcResult nothing = Run(stage, {"idle", "--", "true"});
  INFO(nothing.Describe());
  CHECK(nothing.status.Exited(125));
  CHECK_THAT(nothing.err, Catch::Contains("no active release"));

  ProcResult no_app = Run(stage, {"nope", "--", "true"});
  CHECK(no_app.status.Exited(125));
  CHECK_THAT(no_app.err, Catch::Contains("nope"));

  std::vector<std::string> huge = {"shop", "--", "true"};
  for (int i = 0; i < 5000; ++i) huge.push_back("x");
  ProcResult big = Run(stage, huge);
  INFO(big.Describe());
  CHECK(big.status.Exited(125));
  CHECK_THAT(big.err, Catch::Contains("at most 4096"));

  // Raw requests: no fds, a directory as stdout, a non-pipe control fd.
  const std::string request =
      R"({"jsonrpc":"2.0","id":1,"method":"run","params":{"app":"shop","argv":["true"]}})"
      "\n";
  {
    support::RawConn c(stage.socket());
    REQUIRE(c.Send(request));
    auto reply = c.ReadLine();
    REQUIRE(reply);
    CHECK_THAT(*reply, Catch::Contains("0 fds passed"));
  }
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int dir = ::open(stage.state().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  {
    support::RawConn c(stage.socket());
    REQUIRE(c.SendWithFds(request, {devnull, dir, devnull, p[0]}));
    auto reply = c.ReadLine();
    REQUIRE(reply);
    CHECK_THAT(*reply, Catch::Contains("stdout"));
    CHECK_THAT(*reply, Catch::Contains("not a file, pipe, socket"));
  }
  {
    support::RawConn c(stage.socket());
    REQUIRE(c.SendWithFds(request, {devnull, devnull, devnull, devnull}));
    auto reply = c.ReadLine();
    REQUIRE(reply);
    CHECK_THAT(*reply, Catch::Contains("control pipe"));
  }
  ::close(devnull);
  ::close(dir);
  ::close(p[0]);
  ::close(p[1]);
  // Nothing ran, and the daemon still answers.
  for (const Json& e : stage.CtlJson({"history", "shop"}))
    CHECK(e["kind"] != "run-started");
  CHECK(stage.CtlJson({"info"})["pid"] == stage.daemon().pid());
}

TEST_CASE("one-off: a read-only peer is refused") {
  std::string group;
  auto nobody = e2e::NobodyOrSkip(&group);
  if (!nobody) return;
  Stage stage(FastConfig("socket_mode: \"0666\"\nsocket_group: " + group +
                         "\nadmin_group: relsupd-e2e-no-such-group\n"));
  DeployProcfile(stage, "web: sleep 1000\n");
  ProcResult r =
      Run(stage, {"shop", "--", "touch", "/tmp/relsupd-never"}, {.as = nobody});
  INFO(r.Describe());
  CHECK(r.status.Exited(125));
  CHECK_THAT(r.err, Catch::Contains("permission denied"));
  CHECK_THAT(r.err, Catch::Contains("change"));
  for (const Json& e : stage.CtlJson({"history", "shop"}))
    CHECK(e["kind"] != "run-started");
}

}  // namespace
}  // namespace relsupd::run_test
