// The run stage end to end: the real daemon runs real children.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <sstream>
#include <linux/magic.h>
#include <thread>

#include "daemon/protocol/methods.h"
#include "tests/run/run_fixture.h"
#include "tests/support/cli.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace relsupd::run_test {
namespace {

using release_test::File;

bool IsRoot() { return ::geteuid() == 0; }

TEST_CASE("run: an activated release runs its processes in the slot with its environment") {
  Stage stage(FastConfig());
  std::string v = DeployProcfile(stage, "web: sleep 1000\nworker: sleep 1001\n");
  CHECK(v == "v1");
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "", "ready", 2); });
  Json web = Row(ps, "web.1");
  REQUIRE(web.is_object());
  CHECK(web["release"] == "v1");
  CHECK(web["restarts"] == 0);
  pid_t pid = web["pid"].get<pid_t>();
  // The pid is the program itself (a simple command is exec'd directly),
  // leading its own session.
  CHECK(SessionOf(pid) == pid);
  std::string cwd = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd");
  CHECK(cwd == std::filesystem::canonical(stage.Slot(1)).string());
  auto env = Environ(pid);
  auto has = [&](const std::string& e) {
    return std::find(env.begin(), env.end(), e) != env.end();
  };
  CHECK(has("RELSUPD_APP=shop"));
  CHECK(has("RELSUPD_RELEASE=v1"));
  CHECK(has("RELSUPD_PROCESS=web.1"));
  CHECK(std::any_of(env.begin(), env.end(), [](const std::string& e) {
    return e.rfind("NOTIFY_SOCKET=/", 0) == 0;
  }));
  // `current` points at the slot.
  CHECK(std::filesystem::read_symlink(stage.state() + "/apps/shop/current") == "releases/v1");
}

TEST_CASE("run: a child sees only fds 0 1 2") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  pid_t pid = Row(ps, "web.1")["pid"].get<pid_t>();
  // sleep has nothing of its own open once it sleeps; give the loader a moment.
  std::set<int> fds;
  support::WaitUntil([&] { return (fds = OpenFds(pid)) == std::set<int>{0, 1, 2}; }, 1'000);
  CHECK(fds == std::set<int>{0, 1, 2});
}

TEST_CASE("run: processes run as the app's user with its groups") {
  if (!IsRoot()) {
    WARN("not root: cannot run an app as another user");
    return;
  }
  auto nobody = e2e::NobodyCredentials();
  REQUIRE(nobody);
  Stage stage(FastConfig(), {}, "shop", {"--user", "nobody"});
  DeployProcfile(stage, "web: sleep 1000\n");
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  pid_t pid = Row(ps, "web.1")["pid"].get<pid_t>();
  std::string uid = std::to_string(nobody->uid);
  CHECK(StatusField(pid, "Uid") == uid + "\t" + uid + "\t" + uid + "\t" + uid);
  std::string gid = std::to_string(nobody->gid);
  CHECK(StatusField(pid, "Gid") == gid + "\t" + gid + "\t" + gid + "\t" + gid);
  CHECK(StatusField(pid, "Groups").find(gid) != std::string::npos);
  CHECK(StatusField(pid, "Groups").find(" 0 ") == std::string::npos);
}

TEST_CASE("run: a crashed instance is restarted at once and its exit recorded") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  pid_t old_pid = Row(ps, "web.1")["pid"].get<pid_t>();
  REQUIRE(::kill(old_pid, SIGKILL) == 0);
  ps = WaitPs(stage, [&](const Json& p) {
    Json r = Row(p, "web.1");
    return r.is_object() && r["state"] == "ready" && r["pid"] != old_pid;
  });
  Json r = Row(ps, "web.1");
  CHECK(r["restarts"] == 1);
  CHECK(r["last_exit"] == "signal KILL");
  REQUIRE(r["exits"].size() == 1);
  CHECK(r["exits"][0]["exit"] == "signal KILL");
  // Times are ISO 8601 UTC with ms ("2026-12-04T12:00:00.123Z"), durations numbers.
  auto iso = [](const Json& t) {
    if (!t.is_string()) return false;
    const std::string s = t.get<std::string>();
    return s.size() == 24 && s[4] == '-' && s[10] == 'T' && s[19] == '.' && s.back() == 'Z';
  };
  CHECK(iso(r["exits"][0]["time"]));
  CHECK(iso(r["last_exit_at"]));
  CHECK(r["exits"][0]["time"] == r["last_exit_at"]);
  CHECK(r["uptime_ms"].is_number_integer());
  CHECK_FALSE(Alive(old_pid));
}

TEST_CASE("run: logs -f prints new lines as they come") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "tick: i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done\n");
  REQUIRE(WaitLog(stage, "tick 3"));
  e2e::RunOptions options;
  options.timeout_ms = 1500;
  auto r = stage.Ctl({"logs", "shop", "-f", "-n", "0"}, options);
  CHECK(r.status.timed_out);  // it follows until stopped
  int ticks = 0;
  for (size_t pos = 0; (pos = r.out.find("tick.1[v1]: tick ", pos)) != std::string::npos; ++pos) ++ticks;
  CHECK(ticks >= 5);
  // -n 0: only lines written after it started.
  CHECK(r.out.find("tick[v1]: tick 1\n") == std::string::npos);
}

TEST_CASE("run: logs -f waits out a daemon restart and goes on after the last line it printed") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "tick: i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done\n");
  REQUIRE(WaitLog(stage, "tick 3"));
  const std::string socket = stage.socket();
  Follower f(stage, {"--json", "logs", "shop", "-f", "-n", "0"});
  REQUIRE(f.WaitOut("tick "));

  stage.Stop();  // SIGTERM to the daemon's pid; it exits 0
  REQUIRE(support::WaitUntil(
      [&] { return f.err().find("lost the daemon") != std::string::npos; }, 10'000));
  const size_t before_restart = f.out().size();
  stage.Restart();
  REQUIRE(stage.socket() == socket);
  // A line the restarted daemon's tick wrote reaches the same `logs -f`.
  REQUIRE(f.WaitOut("tick ", before_restart));
  CHECK(support::WaitUntil(
      [&] { return f.err().find("the daemon is back") != std::string::npos; }, 5'000));
  // Still following: the CLI has not exited.
  CHECK(f.running());
  f.Stop();

  // Every record once, in order: it went on after the last seq it printed.
  std::istringstream lines(f.out());
  std::string line;
  uint64_t last = 0;
  int records = 0;
  while (std::getline(lines, line)) {
    Json r = Json::parse(line, nullptr, false);
    REQUIRE_FALSE(r.is_discarded());
    uint64_t seq = r.value("seq", uint64_t{0});
    CHECK(seq > last);
    last = seq;
    ++records;
  }
  CHECK(records >= 2);
  const std::string errors = f.err();
  INFO(errors);
  CHECK(errors.find("Broken pipe") == std::string::npos);
}

TEST_CASE("run: a crash-looping type backs off, is marked failed, and start revives it") {
  // Without auto-rollback the activation keeps the crash-looping release.
  Stage stage(FastConfig(), {}, "shop", {"--no-auto-rollback"});
  DeployYaml(stage,
             "processes:\n"
             "  web:\n"
             "    command: echo boom >&2; exit 3\n"
             "    scale: 2\n");
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "failed", 2); });
  for (const auto& r : ps) {
    CHECK(r["last_exit"] == "exit 3");
    CHECK(r["pid"] == 0);
    // crash_limit 3: the fourth exit in the window marks the type failed;
    // the other instance is not restarted after its next exit.
    CHECK(r["restarts"].get<int>() >= 1);
    CHECK(r["restarts"].get<int>() <= 4);
  }
  CHECK((Row(ps, "web.1")["restarts"] == 4 || Row(ps, "web.2")["restarts"] == 4));
  CHECK(WaitLog(stage, "boom"));
  auto failed_events = [&] {
    int n = 0;
    for (const auto& e : stage.CtlJson({"history", "shop"}))
      if (e["kind"] == "failed") {
        CHECK(e["detail"].get<std::string>().find("exit 3") != std::string::npos);
        // The window as the config wrote it (FastConfig: crash_window 30s).
        CHECK_THAT(e["detail"].get<std::string>(), Catch::Contains(" crashed 4 times within 30s, last: "));
        ++n;
      }
    return n;
  };
  CHECK(failed_events() == 1);  // once for the type

  // start waits for ready: it says the type crashes again, naming it.
  auto again = stage.Ctl({"start", "shop"});
  CHECK(again.exit_code() == 1);
  INFO(again.err);
  CHECK(again.err.find("crash-looping: web.") != std::string::npos);
  CHECK(again.err.find("exit 3") != std::string::npos);
  // Started by hand, it gets a fresh crash window and fails again.
  WaitPs(stage, [](const Json& p) {
    if (!AllIn(p, "web", "failed", 2)) return false;
    int most = 0;
    for (const auto& r : p) most = std::max(most, r["restarts"].get<int>());
    return most >= 8;
  });
  CHECK(failed_events() == 2);
}

TEST_CASE("run: stop sends stop_signal, then SIGKILL after stop_timeout") {
  Stage stage(FastConfig());
  DeployYaml(stage, "processes:\n" + IgnoresTerm("web", "500ms"));
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  pid_t pid = Row(ps, "web.1")["pid"].get<pid_t>();
  int64_t t0 = e2e::NowMs();
  stage.CtlOk({"stop", "shop"});
  int64_t took = e2e::NowMs() - t0;
  CHECK(took >= 450);
  CHECK(took < 5000);
  CHECK(WaitGone({pid}, 2000));
  ps = Ps(stage);
  CHECK(Row(ps, "web.1")["state"] == "stopped");
  CHECK(Row(ps, "web.1")["last_exit"] == "killed (stop timeout 500ms)");
  CHECK(stage.daemon().Log().find("did not stop within 500 ms") != std::string::npos);
}

TEST_CASE("run: a forked grandchild in the instance's group is gone after stop") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1003 & echo grandchild $!; exec sleep 1000\n");
  REQUIRE(WaitLog(stage, "grandchild "));
  pid_t grandchild = WaitLoggedPid(stage, "grandchild ");
  REQUIRE(grandchild > 0);
  REQUIRE(Alive(grandchild));
  stage.CtlOk({"stop", "shop"});
  CHECK(WaitGone({grandchild}, 3000));
}

// A cgroup2 directory the test may use as the daemon's cgroup root, or "".
std::string TestCgroupRoot() {
  for (const char* mount : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    struct statfs fs{};
    if (::statfs(mount, &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC) continue;
    if (::access(mount, W_OK) != 0) continue;
    return std::string(mount) + "/relsupd-test-" + std::to_string(::getpid()) + "-" +
           std::to_string(e2e::NowMs());
  }
  return "";
}

void RemoveCgroupTree(const std::string& root) {
  // Leaves first; every instance has ended, so each rmdir succeeds.
  for (int pass = 0; pass < 3; ++pass) {
    std::error_code ec;
    std::vector<std::string> dirs;
    for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
      if (it->is_directory()) dirs.push_back(it->path());
    std::sort(dirs.rbegin(), dirs.rend());
    for (const auto& d : dirs) ::rmdir(d.c_str());
    ::rmdir(root.c_str());
  }
}

TEST_CASE("run: with cgroups a double-forked setsid grandchild dies with its instance") {
  std::string root = TestCgroupRoot();
  if (root.empty()) {
    WARN("no writable cgroup2 tree here: cgroup stop not tested");
    return;
  }
  {
    Stage stage(FastConfig("cgroup: " + root + "\n"));
    DeployProcfile(stage, "web: setsid sleep 1004 & echo grandchild $!; exec sleep 1000\n");
    REQUIRE(WaitLog(stage, "grandchild "));
    pid_t grandchild = WaitLoggedPid(stage, "grandchild ");
    REQUIRE(grandchild > 0);
    REQUIRE(Alive(grandchild));
    // It left the group and the session: only the cgroup still holds it.
    CHECK(SessionOf(grandchild) == grandchild);
    stage.CtlOk({"stop", "shop"});
    CHECK(WaitGone({grandchild}, 3000));
  }
  RemoveCgroupTree(root);
  CHECK_FALSE(std::filesystem::exists(root));
}

TEST_CASE("run: a program that cannot be run is logged, exits 127 and leaves no cgroup") {
  std::string root = TestCgroupRoot();
  {
    Stage stage(FastConfig(root.empty() ? "" : "cgroup: " + root + "\n"), {}, "shop",
                {"--no-auto-rollback"});
    DeployProcfile(stage, "web: ./no-such-program --flag\n");
    Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "failed", 1); });
    CHECK(Row(ps, "web.1")["last_exit"] == "exit 127");
    CHECK(Row(ps, "web.1")["pid"] == 0);
    // The reason is in the app's own log, not only the daemon's.
    CHECK(WaitLog(stage, "relsupd: cannot run './no-such-program': No such file or directory"));
    if (!root.empty()) {
      // Each attempt made a cgroup for its spawn; none is left behind.
      std::vector<std::string> left;
      std::error_code ec;
      for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
        if (it->is_directory() && it->path().filename().string().find('@') != std::string::npos)
          left.push_back(it->path());
      CHECK(left.empty());
    } else {
      WARN("no writable cgroup2 tree here: the cgroup part is not tested");
    }
  }
  if (!root.empty()) RemoveCgroupTree(root);
}

TEST_CASE("run: scale up and down is recorded and stops the highest numbers") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  CHECK(stage.CtlOk({"scale", "shop", "web=3"}) == "Scaled shop: web=3\n");
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 3); });
  pid_t pid1 = Row(ps, "web.1")["pid"].get<pid_t>();
  std::set<pid_t> high = {Row(ps, "web.2")["pid"].get<pid_t>(), Row(ps, "web.3")["pid"].get<pid_t>()};
  stage.CtlOk({"scale", "shop", "web=1"});
  ps = WaitPs(stage, [](const Json& p) { return p.size() == 1 && AllIn(p, "web", "ready", 1); });
  CHECK(Row(ps, "web.1")["pid"] == pid1);
  CHECK(WaitGone(high, 3000));
  Json history = stage.CtlJson({"history", "shop"});
  int scaled = 0;
  for (const auto& e : history)
    if (e["kind"] == "scaled") ++scaled;
  CHECK(scaled == 2);
}

TEST_CASE("run: a scale past the instances an app may run in all is refused, and nothing is recorded") {
  Stage stage(FastConfig());
  DeployYaml(stage,
             "processes:\n  a: {command: sleep 1000, scale: 0}\n"
             "  b: {command: sleep 1000, scale: 0}\n");
  e2e::ProcResult both = stage.Ctl({"scale", "shop", "a=6000", "b=6000"});
  CHECK(both.exit_code() == 1);
  CHECK_THAT(both.err, Catch::Contains("would run 12000 instances in all, more than the 10000"));
  // One at a time: the second counts the first.
  stage.CtlOk({"scale", "shop", "a=1"});
  WaitPs(stage, [](const Json& p) { return AllIn(p, "a", "ready", 1); });
  e2e::ProcResult second = stage.Ctl({"scale", "shop", "b=10000"});
  CHECK(second.exit_code() == 1);
  CHECK_THAT(second.err, Catch::Contains("would run 10001 instances"));
  int scaled = 0;
  for (const auto& e : stage.CtlJson({"history", "shop"}))
    if (e["kind"] == "scaled") ++scaled;
  CHECK(scaled == 1);
  CHECK(Ps(stage).size() == 1);
  // A release whose own scales pass, but not with the app's recorded ones
  // (a=1): refused at activation, before anything changes.
  const std::string v2 = ReleaseTo(stage, "shop",
                                   {File("relsupd.yaml", "processes:\n  a: {command: sleep 1000, scale: 0}\n"
                                                         "  c: {command: sleep 1000, scale: 10000}\n")});
  e2e::ProcResult activate = stage.Ctl({"activate", "shop", v2});
  CHECK(activate.exit_code() == 1);
  CHECK_THAT(activate.err, Catch::Contains("would run 10001 instances in all with the app's scales"));
  CHECK(stage.CtlJson({"status", "shop"})["active"] == "v1");
}

TEST_CASE("run: bad run-stage requests get clear errors") {
  // Each request, its exit code and a piece of its error ("" for none).
  struct Refusal {
    std::vector<std::string> args;
    int code;
    std::string says;
  };
  auto check = [](Stage& stage, const std::vector<Refusal>& refusals) {
    for (const Refusal& c : refusals) {
      e2e::ProcResult r = stage.Ctl(c.args);
      INFO(r.Describe());
      CHECK(r.exit_code() == c.code);
      CHECK(r.err.find(c.says) != std::string::npos);
    }
  };
  Stage stage(FastConfig());
  check(stage, {{{"scale", "shop", "web=2"}, 1, "no active release"},
                {{"start", "shop"}, 1, "no active release"}});
  DeployProcfile(stage, "web: sleep 1000\n");
  check(stage, {{{"scale", "shop", "wrk=2"}, 1, "has no process type 'wrk'"},
                {{"scale", "shop", "web=lots"}, 2, "'web=lots'"},
                {{"scale", "shop", "web"}, 2, ""},
                {{"ps", "nosuch"}, 1, "nosuch"},
                {{"logs", "nosuch"}, 1, ""},
                {{"activate", "shop", "v9"}, 1, "v9"},
                {{"restart", "shop", "wrk"}, 1, "'wrk'"}});
  // Nothing above changed the formation.
  for (const auto& e : stage.CtlJson({"history", "shop"})) CHECK(e["kind"] != "scaled");
}

TEST_CASE("run: restart replaces every instance, one at a time") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  stage.CtlOk({"scale", "shop", "web=2"});
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 2); });
  std::set<pid_t> before = Pids(ps);
  stage.CtlOk({"restart", "shop"});
  ps = Ps(stage);
  CHECK(AllIn(ps, "web", "ready", 2));
  for (pid_t p : Pids(ps)) CHECK(before.count(p) == 0);
  CHECK(WaitGone(before, 2000));
}

TEST_CASE("run: an exec ready check decides readiness, and its timeout restarts the process") {
  {
    // Ready exactly when the test says so: no wall-clock margin.
    Stage stage(FastConfig());
    const std::string gate = stage.dir().Path("gate");
    DeployYaml(stage,
               "processes:\n"
               "  web:\n"
               "    command: sleep 1000\n"
               "    ready: {exec: \"test -e " + gate + "\"}\n",
               /*no_wait=*/true);
    Json ps = WaitPs(stage, [](const Json& p) { return Row(p, "web.1").is_object(); });
    CHECK(Row(ps, "web.1")["state"] == "running");
    stage.dir().WriteFile("gate", "");
    WaitPs(stage, [](const Json& p) { return Row(p, "web.1")["state"] == "ready"; });
  }
  // Never ready: stopped at its ready_timeout and started again (the
  // daemon's log says both; a crash loop then ends the first activation).
  Stage stage(FastConfig());
  DeployYaml(stage,
             "processes:\n"
             "  slow:\n"
             "    command: sleep 1001\n"
             "    ready: {exec: \"false\"}\n"
             "    ready_timeout: 400ms\n",
             /*no_wait=*/true);
  auto started_twice = [&stage] {
    const std::string log = stage.daemon().Log();
    const size_t first = log.find("slow.1 started");
    return log.find("was not ready within 400 ms") != std::string::npos &&
           first != std::string::npos &&
           log.find("slow.1 started", first + 1) != std::string::npos;
  };
  support::WaitUntil(started_twice, 20'000, 20);
  CHECK(started_twice());
}

TEST_CASE("run: notify readiness comes from READY=1 on the daemon's socket") {
  if (::access("/usr/bin/python3", X_OK) != 0) {
    WARN("python3 is not installed");
    return;
  }
  Stage stage(FastConfig());
  // The instance's main process says READY=1 once the test creates `gate`.
  const std::string gate = stage.dir().Path("gate");
  DeployYaml(stage, GatedNotifyYaml(gate), /*no_wait=*/true);
  Json ps = WaitPs(stage, [](const Json& p) { return Row(p, "web.1").is_object(); });
  CHECK(Row(ps, "web.1")["state"] == "running");
  stage.dir().WriteFile("gate", "");
  WaitPs(stage, [](const Json& p) { return Row(p, "web.1")["state"] == "ready"; });
}

TEST_CASE("run: logs keep each line with its process, stream and release") {
  Stage stage(FastConfig());
  DeployProcfile(stage,
                 "web: echo one; echo two >&2; head -c 40000 /dev/zero | tr '\\0' x; echo; "
                 "exec sleep 1000\n"
                 "worker: echo working; exec sleep 1000\n");
  REQUIRE(WaitLog(stage, "working"));
  REQUIRE(WaitLog(stage, "two"));
  Json web = Logs(stage, {"--process", "web"});
  std::string long_line;
  bool one = false, two = false;
  for (const auto& r : web) {
    CHECK(r["process"] == "web.1");
    CHECK(r["release"] == "v1");
    if (r["text"] == "one") one = r["stream"] == "out";
    if (r["text"] == "two") two = r["stream"] == "err";
    if (r["text"].get<std::string>().find('x') == 0) long_line += r["text"].get<std::string>();
  }
  CHECK(one);
  CHECK(two);
  // Cut into pieces, nothing lost.
  WaitLog(stage, "xxxx");
  CHECK(long_line.size() == 40000);
  Json err = Logs(stage, {"--stream", "err"});
  REQUIRE(err.size() == 1);
  CHECK(err[0]["text"] == "two");
  std::string human = stage.CtlOk({"logs", "shop", "-n", "1", "--process", "worker.1"});
  CHECK(human.find("worker.1[v1]: working") != std::string::npos);
}

TEST_CASE("run: a flooding child slows only itself") {
  Stage stage(FastConfig("log_max_file_bytes: 1048576\nlog_max_files: 2\nlog_rate_limit: 1048576\n"));
  DeployProcfile(stage,
                 "flood: yes flooding-the-log-as-fast-as-it-can\n"
                 "tick: i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done\n");
  WaitPs(stage, [](const Json& p) { return AllIn(p, "", "ready", 2); });
  // The newest tick the daemon has read (0 when none).
  auto last_tick = [&] {
    Json r = support::Call(stage.socket(), rpc::method::kLogs,
                           {{"app", "shop"}, {"process", "tick"}, {"lines", 1}});
    if (r["records"].empty()) return 0;
    std::string t = r["records"].back()["text"];
    return t.rfind("tick ", 0) == 0 ? std::atoi(t.c_str() + 5) : 0;
  };
  int64_t cpu0 = CpuMs(stage.daemon().pid());
  int64_t t0 = e2e::NowMs();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  int64_t t1 = e2e::NowMs();
  Json ps = Ps(stage);
  int64_t ps_ms = e2e::NowMs() - t1;
  int64_t cpu = CpuMs(stage.daemon().pid()) - cpu0;
  CHECK(ps_ms < 1000);
  // The daemon reads the flood at a bounded rate: far from a whole core.
  CHECK(cpu < (t1 - t0) / 2);
  // The ticker keeps getting its lines through beside the flood: a daemon
  // stalled by the flood would leave it blocked on its pipe. Waits for the
  // state (20 more ticks read), not for a number within a time.
  int first = last_tick();
  CHECK(support::WaitUntil([&] { return last_tick() >= first + 20; }, 60'000, 100));
  // The log store stays within its size bound.
  uint64_t bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(stage.state() + "/logs/shop"))
    bytes += e.file_size();
  CHECK(bytes <= 2 * 1048576 + 256 * 1024);
  CHECK(Row(ps, "flood.1")["state"] == "ready");
  // A follower left behind at seq 1 is told how many records were rotated
  // out before it got to them, and goes on at the oldest one kept. (The
  // flood stopped first: a rotation between the two asks would move the
  // oldest record kept.)
  stage.CtlOk({"scale", "shop", "flood=0"});
  WaitPs(stage, [](const Json& p) { return AllIn(p, "flood", "", 0); });
  Json behind = support::Call(stage.socket(), rpc::method::kLogs,
                              {{"app", "shop"}, {"after_seq", 1}, {"lines", 10}});
  INFO(behind.dump().substr(0, 2000));
  REQUIRE(behind.contains("missed"));
  const uint64_t missed = behind["missed"]["shop"].get<uint64_t>();
  CHECK(missed > 1000);
  REQUIRE_FALSE(behind["records"].empty());
  CHECK(behind["records"][0]["seq"].get<uint64_t>() == 2 + missed);
  // Once past the gap, nothing more is said.
  Json next = support::Call(stage.socket(), rpc::method::kLogs,
                            {{"app", "shop"}, {"after_seq", 1 + missed}, {"lines", 10}});
  CHECK_FALSE(next.contains("missed"));
}

TEST_CASE("run: 1000 simultaneous exits are all reaped and restarted") {
  Stage stage(FastConfig("", 100));
  DeployProcfile(stage, "worker: sleep 100000\n");
  stage.CtlOk({"scale", "shop", "worker=1000"});
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "worker", "ready", 1000); },
                   120'000, "1000 workers");
  std::set<pid_t> old = Pids(ps);
  REQUIRE(old.size() == 1000);
  for (pid_t p : old) ::kill(p, SIGKILL);
  ps = WaitPs(stage, [](const Json& p) {
    if (!AllIn(p, "worker", "ready", 1000)) return false;
    for (const auto& r : p)
      if (r["restarts"] != 1) return false;
    return true;
  }, 120'000, "1000 restarted workers");
  // Reaped: no old pid is left, not even as a zombie.
  for (pid_t p : old) {
    std::error_code ec;
    if (std::filesystem::exists("/proc/" + std::to_string(p), ec)) CHECK_FALSE(Alive(p));
  }
  CHECK(WaitGone(old, 5000));
  stage.CtlOk({"scale", "shop", "worker=0"});
  WaitPs(stage, [](const Json& p) { return p.empty(); }, 60'000, "scale to 0");
}

TEST_CASE("run: kill -9 of the daemon leaves no orphan and the restart brings the same instances back") {
  Stage stage(FastConfig());
  DeployProcfile(stage,
                 "web: sleep 1000\n"
                 "escaper: setsid sleep 1005 & echo escaped $!; exec sleep 1001\n");
  stage.CtlOk({"scale", "shop", "web=2"});
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 2); });
  pid_t escaped = WaitLoggedPid(stage, "escaped ");
  REQUIRE(escaped > 0);
  std::set<pid_t> before = Pids(ps);
  stage.daemon().Kill9();
  // Direct children die with the daemon (PR_SET_PDEATHSIG).
  CHECK(WaitGone(before, 3000));
  // A grandchild in its own session outlives it; the next start ends it
  // before it starts anything.
  CHECK(Alive(escaped));
  stage.Restart();
  CHECK(WaitGone({escaped}, 3000));
  ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 2); });
  for (pid_t p : Pids(ps, "web")) CHECK(before.count(p) == 0);
  CHECK(stage.daemon().Log().find("previous daemon left running") != std::string::npos);
  // The new escaper.1 escaped a grandchild too.
  KillLoggedPids(stage, "escaped ", 2);
}

TEST_CASE("run: output that is not ASCII is stored as valid UTF-8, however the reads cut it") {
  Stage stage(FastConfig());
  // A valid character and an invalid byte in one line; a character split
  // across two writes (and likely two reads); an invalid byte held while
  // ASCII follows in the next read; then a plain line, and one with a
  // backslash.
  DeployProcfile(stage,
                 "web: printf 'caf\\303\\251 \\377 end\\n'; printf 'x \\303'; sleep 0.2; "
                 "printf '\\251 y\\n'; printf 'held \\377'; sleep 0.2; printf ' ascii after\\n'; "
                 "printf 'plain ascii\\n'; printf 'back\\\\slash\\n'; exec sleep 1000\n");
  std::vector<std::string> texts;
  REQUIRE(support::WaitUntil([&] {
    texts.clear();
    for (const Json& r : Logs(stage, {"--process", "web.1"}))
      if (r["stream"] == "out") texts.push_back(r["text"].get<std::string>());
    return texts.size() >= 5;
  }));
  CHECK(texts == std::vector<std::string>{"caf\xC3\xA9 \xEF\xBF\xBD end", "x \xC3\xA9 y",
                                          "held \xEF\xBF\xBD ascii after", "plain ascii",
                                          "back\\slash"});
  // The file holds them so too (`ctl logs` would mend bad bytes on output).
  const std::string file = release_test::ReadText(stage.state() + "/logs/shop/current.log");
  CHECK(file.find("held \xEF\xBF\xBD ascii after\n") != std::string::npos);
  CHECK(file.find("x \xC3\xA9 y\n") != std::string::npos);
  CHECK(file.find('\xFF') == std::string::npos);
}

TEST_CASE("run: SIGTERM of the daemon stops the children gracefully") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.05; done\n");
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  pid_t pid = Row(ps, "web.1")["pid"].get<pid_t>();
  stage.Stop();  // SIGTERM; must exit 0
  CHECK_FALSE(Alive(pid));
  std::string log = release_test::ReadText(stage.state() + "/logs/shop/current.log");
  CHECK(log.find("got TERM") != std::string::npos);
}

TEST_CASE("run: a stopped app stays stopped across a daemon restart until started") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  stage.CtlOk({"scale", "shop", "web=2"});
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 2); });
  stage.CtlOk({"stop", "shop"});
  stage.Stop();
  stage.Restart();
  CHECK(Ps(stage).empty());
  stage.CtlOk({"start", "shop"});
  // The recorded scale is back.
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 2); });
}

TEST_CASE("run: ctl logs and ps escape control characters on a terminal and pass them on unchanged to a pipe") {
  // The STATUS= comes from the instance's main process itself: a helper
  // that exits at once (`systemd-notify --no-block`) may be gone before the
  // daemon reads its datagram, and then cannot be matched to the instance
  // by its session. (systemd-notify without --no-block waits for its
  // barrier, so it would do.)
  const bool notify = ::access("/usr/bin/python3", X_OK) == 0;
  Stage stage(FastConfig());
  // ESC [2J clears the screen, OSC 0 (ended by BEL) retitles the window, a
  // CR goes back over the line, then DEL, a C1 CSI (U+009B) and a TAB.
  DeployProcfile(stage,
                 "web: printf 'a\\033[2Jb\\033]0;pwned\\007c\\rd\\177e\\302\\233f\\tg\\n'; " +
                     std::string(notify ? "exec python3 -c \"import os, socket, time; "
                                          "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
                                          "s.sendto(b'STATUS=up\\x1b]0;t\\x07', os.environ['NOTIFY_SOCKET']); "
                                          "time.sleep(1000)\"\n"
                                        : "exec sleep 1000\n"));
  const std::string raw = "a\x1b[2Jb\x1b]0;pwned\x07" "c\rd\x7f" "e\xc2\x9b" "f\tg";
  const std::string shown = "a\\e[2Jb\\e]0;pwned\\ac\\rd\\x7fe\\u009bf\tg";
  REQUIRE(WaitLog(stage, "pwned"));
  if (notify)
    WaitPs(stage, [](const Json& p) { return Row(p, "web.1").value("status", "") != ""; });
  const pid_t daemon = stage.daemon().pid();
  const std::set<pid_t> pids = Pids(Ps(stage));
  // A terminal of 200 columns (a new pty has none, and the table would be
  // cut to 80), without colour here: colour is checked below.
  e2e::RunOptions tty;
  tty.stdout_pty = true;
  tty.env = {"NO_COLOR=1", "COLUMNS=200"};
  auto controls = [](const std::string& s) {
    for (unsigned char c : s)
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return true;
    return s.find("\xc2\x9b") != std::string::npos;
  };

  // On a terminal: every control character as a visible escape.
  e2e::ProcResult logs = stage.Ctl({"logs", "shop", "-n", "10"}, tty);
  REQUIRE(logs.exit_code() == 0);
  CHECK_THAT(logs.out, Catch::Contains(": " + shown + "\n"));
  CHECK_FALSE(controls(logs.out));
  e2e::ProcResult ps = stage.Ctl({"ps", "shop"}, tty);
  REQUIRE(ps.exit_code() == 0);
  CHECK_THAT(ps.out, Catch::Contains("STATUS"));
  if (notify) CHECK_THAT(ps.out, Catch::Contains("up\\e]0;t\\a\n"));
  CHECK_FALSE(controls(ps.out));
  // --json on a terminal: JSON's own escapes (C0; DEL and C1 are text to
  // JSON), the same bytes as to a pipe.
  e2e::ProcResult json = stage.Ctl({"--json", "logs", "shop", "-n", "10"}, tty);
  REQUIRE(json.exit_code() == 0);
  CHECK(json.out.find_first_of("\x1b\x07\r") == std::string::npos);
  CHECK(json.out == stage.CtlOk({"--json", "logs", "shop", "-n", "10"}));
  CHECK(Json::parse(json.out.substr(0, json.out.find('\n')))["text"] == raw);

  // history: a `ctl run` command is the caller's text, shown escaped too.
  REQUIRE(stage.Ctl({"run", "shop", "--", "/bin/echo", "x\x1b]0;pwned\x07y"}).exit_code() == 0);
  e2e::ProcResult history = stage.Ctl({"history", "shop"}, tty);
  REQUIRE(history.exit_code() == 0);
  CHECK_THAT(history.out, Catch::Contains("x\\e]0;pwned\\ay"));
  CHECK_FALSE(controls(history.out));

  // With colour (NO_COLOR empty counts as unset): STATE in green, and no
  // other escape than the colour's.
  e2e::RunOptions colour = tty;
  colour.env = {"NO_COLOR=", "TERM=xterm-256color", "COLUMNS=200"};
  e2e::ProcResult coloured = stage.Ctl({"ps", "shop"}, colour);
  REQUIRE(coloured.exit_code() == 0);
  CHECK_THAT(coloured.out, Catch::Contains("\x1b[32mready\x1b[0m"));
  std::string uncoloured = coloured.out;
  for (const std::string code : {"\x1b[32m", "\x1b[0m"})
    for (size_t at; (at = uncoloured.find(code)) != std::string::npos;) uncoloured.erase(at, code.size());
  CHECK_FALSE(controls(uncoloured));
  // TERM=dumb: no colour.
  colour.env = {"NO_COLOR=", "TERM=dumb", "COLUMNS=200"};
  CHECK(stage.Ctl({"ps", "shop"}, colour).out.find('\x1b') == std::string::npos);

  // To a pipe: the app's bytes as they are.
  std::string piped = stage.CtlOk({"logs", "shop", "-n", "10"});
  CHECK_THAT(piped, Catch::Contains(": " + raw + "\n"));
  if (notify) CHECK_THAT(stage.CtlOk({"ps", "shop"}), Catch::Contains("up\x1b]0;t\x07\n"));
  CHECK(Logs(stage)[0]["text"] == raw);

  CHECK(stage.daemon().pid() == daemon);
  CHECK(Pids(Ps(stage)) == pids);
  CHECK(stage.Ctl({"history", "--verify"}).exit_code() == 0);
}

}  // namespace
}  // namespace relsupd::run_test
