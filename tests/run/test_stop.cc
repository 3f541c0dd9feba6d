// Stopping and starting instances end to end: stop_mode, the progress a
// stop, start or restart prints while it waits, start waiting for ready,
// and what LAST EXIT says about how an instance ended.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "tests/run/run_fixture.h"
#include "tests/support/wait.h"

namespace relsupd::run_test {
namespace {

using release_test::File;
using release_test::Exists;

// The main process traps TERM and tells its child to end with WINCH (as a
// master tells its workers), then waits for it. The child leaves a marker
// for the signal that ends it: MARKS/TYPE.N.child-term, .child-asked; the
// main process MARKS/TYPE.N.main-term. (The shell runs pending traps by
// signal number, so a TERM to the whole group wins over the later WINCH.)
const char* kMasterScript =
    "#!/bin/sh\n"
    "M=\"$MARKS/$RELSUPD_PROCESS\"\n"
    "sh -c 'trap \"echo > $0.child-term; exit 0\" TERM;"
    " trap \"echo > $0.child-asked; exit 0\" WINCH;"
    " while :; do sleep 0.05; done' \"$M\" &\n"
    "CHILD=$!\n"
    "trap 'echo > \"$M.main-term\"; kill -WINCH $CHILD; wait $CHILD; exit 0' TERM\n"
    "echo \"child $CHILD\"\n"
    "wait $CHILD\n";

TEST_CASE("stop: stop_mode main sends the stop signal to the main process only, and the group is gone after") {
  WritableDir marks;
  Stage stage(FastConfig());
  Deploy(stage, {File("master.sh", kMasterScript, 0755),
                 File("relsupd.yaml",
                      "processes:\n"
                      "  main:\n"
                      "    command: ./master.sh\n"
                      "    stop_mode: main\n"
                      "    stop_timeout: 30s\n"
                      "    env: {MARKS: " + marks.path + "}\n"
                      "  group:\n"
                      "    command: ./master.sh\n"
                      "    stop_timeout: 30s\n"
                      "    env: {MARKS: " + marks.path + "}\n")});
  WaitPs(stage, [](const Json& p) { return AllIn(p, "", "ready", 2); });
  REQUIRE(WaitLog(stage, "child "));
  // Both children are up (each logged its pid).
  std::set<pid_t> children;
  REQUIRE(support::WaitUntil([&] {
    children.clear();
    for (const auto& r : Logs(stage))
      if (r.value("text", "").rfind("child ", 0) == 0)
        children.insert(std::stoi(r.value("text", "").substr(6)));
    return children.size() == 2;
  }, 10'000));

  stage.CtlOk({"stop", "shop"});
  const std::string m = marks.path + "/";
  // stop_mode main: the main process got TERM, its child only what the
  // main process sent it.
  CHECK(Exists(m + "main.1.main-term"));
  CHECK(Exists(m + "main.1.child-asked"));
  CHECK_FALSE(Exists(m + "main.1.child-term"));
  // The default (group): the child got TERM too. (So the marker can be
  // written: the check above can fail.)
  CHECK(Exists(m + "group.1.child-term"));
  CHECK(WaitGone(children, 3000));
  Json ps = Ps(stage);
  CHECK(Row(ps, "main.1")["state"] == "stopped");
  CHECK(Row(ps, "main.1")["last_exit"] == "stopped (SIGTERM)");
  CHECK(Row(ps, "main.1")["last_exit_cause"] == "stopped");
}

TEST_CASE("stop: gunicorn with stop_mode main stops without needing SIGKILL") {
  if (::access("/usr/bin/gunicorn", X_OK) != 0) {
    WARN("gunicorn is not installed");
    return;
  }
  Stage stage(FastConfig());
  const int port = FreePort();
  const std::string p = std::to_string(port);
  Deploy(stage, {File("app.py",
                      "def app(environ, start_response):\n"
                      "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                      "    return [b'hello from gunicorn\\n']\n"),
                 File("gunicorn.conf.py",
                      "def post_worker_init(worker):\n"
                      "    print('worker ready', worker.pid, flush=True)\n"),
                 File("relsupd.yaml",
                      "processes:\n"
                      "  web:\n"
                      "    command: /usr/bin/gunicorn --workers 2 --bind 127.0.0.1:" + p +
                          " app:app\n"
                      "    stop_mode: main\n"
                      "    stop_timeout: 60s\n"
                      "    ready: {tcp: " + p + "}\n")});
  // gunicorn lost its master to its own workers in 5 of 9 group stops:
  // stop it a few times over.
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    Json ps = WaitPs(stage, [](const Json& q) { return AllIn(q, "web", "ready", 1); });
    // Both workers have their signal handlers (gunicorn.conf.py's hook runs
    // after them): a TERM before that is gunicorn's own race at boot.
    const size_t booted = 2 * (round + 1);
    REQUIRE(support::WaitUntil([&] {
      size_t n = 0;
      for (const auto& r : Logs(stage))
        n += r.value("text", "").rfind("worker ready", 0) == 0 ? 1 : 0;
      return n >= booted;
    }, 20'000));
    CHECK(Get(port, "/").find("hello from gunicorn") != std::string::npos);
    pid_t master = Row(ps, "web.1")["pid"].get<pid_t>();
    stage.CtlOk({"stop", "shop"});
    CHECK(WaitGone({master}, 3000));
    ps = Ps(stage);
    CHECK(Row(ps, "web.1")["state"] == "stopped");
    // It exited of its own accord after TERM; not killed at the timeout.
    CHECK(Row(ps, "web.1")["last_exit_cause"] == "stopped");
    CHECK(Row(ps, "web.1")["last_exit"].get<std::string>().rfind("stopped (SIGTERM)", 0) == 0);
    CHECK(stage.daemon().Log().find("did not stop within") == std::string::npos);
    if (round < 2) stage.CtlOk({"start", "shop"});
  }
}

TEST_CASE("stop: a process that ignores TERM gets a progress line, then is killed at its stop timeout") {
  Stage stage(FastConfig());
  DeployYaml(stage, "processes:\n" + IgnoresTerm("web", "3s"));
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  pid_t pid = Row(ps, "web.1")["pid"].get<pid_t>();
  e2e::ProcResult r = stage.Ctl({"stop", "shop"});
  REQUIRE(r.exit_code() == 0);
  CHECK(r.out.find("waiting for web.1 (pid " + std::to_string(pid) + ") to stop (up to ") !=
        std::string::npos);
  CHECK(r.out.find("of stop_timeout 3s), then SIGKILL") != std::string::npos);
  CHECK(r.out.find("Stopped shop") != std::string::npos);
  CHECK(WaitGone({pid}, 2000));
  ps = Ps(stage);
  CHECK(Row(ps, "web.1")["last_exit"] == "killed (stop timeout 3s)");
  CHECK(Row(ps, "web.1")["last_exit_cause"] == "stop-timeout");
  // With --json nothing but the result is printed.
  stage.CtlOk({"start", "shop"});
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  Json stopped = stage.CtlJson({"stop", "shop"});
  CHECK(stopped["stopped"] == true);
}

TEST_CASE("stop: a switch that waits for an old instance to stop says so") {
  Stage stage(FastConfig());
  const std::string yaml = "processes:\n" + IgnoresTerm("web", "2s");
  DeployYaml(stage, yaml);
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  pid_t old = Row(ps, "web.1")["pid"].get<pid_t>();
  std::string file = stage.Artifact("v2.tar.gz", {File("relsupd.yaml", yaml)});
  std::string build = stage.CtlJson({"build", "import", "shop", file})["id"];
  std::string v2 = stage.Create(build);
  e2e::ProcResult r = stage.Ctl({"activate", "shop", v2});
  REQUIRE(r.exit_code() == 0);
  CHECK(r.out.find("waiting for v1 web.1 (pid " + std::to_string(old) + ") to stop (up to ") !=
        std::string::npos);
  CHECK(r.out.find("of stop_timeout 2s), then SIGKILL") != std::string::npos);
  CHECK(WaitGone({old}, 2000));
}

TEST_CASE("stop: LAST EXIT tells a crash from a stop and from a stop-timeout kill") {
  Stage stage(FastConfig());
  DeployYaml(stage,
             "processes:\n"
             "  crash:\n"
             "    command: sleep 1001\n"
             "  calm:\n"
             "    command: sleep 1002\n" +
                 IgnoresTerm("stubborn", "1s"));
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "", "ready", 3); });
  // A SIGKILL nobody in relsupd sent: a crash.
  pid_t crash = Row(ps, "crash.1")["pid"].get<pid_t>();
  REQUIRE(::kill(crash, SIGKILL) == 0);
  ps = WaitPs(stage, [](const Json& p) {
    return Row(p, "crash.1")["restarts"] == 1 && Row(p, "crash.1")["state"] == "ready";
  });
  CHECK(Row(ps, "crash.1")["last_exit"] == "signal KILL");
  CHECK(Row(ps, "crash.1")["last_exit_cause"] == "exited");
  CHECK(stage.CtlOk({"ps", "shop"}).find("signal KILL") != std::string::npos);

  stage.CtlOk({"stop", "shop"});
  ps = Ps(stage);
  CHECK(Row(ps, "calm.1")["last_exit"] == "stopped (SIGTERM)");
  CHECK(Row(ps, "calm.1")["last_exit_cause"] == "stopped");
  CHECK(Row(ps, "stubborn.1")["last_exit"] == "killed (stop timeout 1s)");
  CHECK(Row(ps, "stubborn.1")["last_exit_cause"] == "stop-timeout");
  const std::string table = stage.CtlOk({"ps", "shop"});
  CHECK(table.find("stopped (SIGTERM)") != std::string::npos);
  CHECK(table.find("killed (stop timeout 1s)") != std::string::npos);
}

TEST_CASE("start: waits until every instance is ready") {
  if (::access("/usr/bin/python3", X_OK) != 0) {
    WARN("python3 is not installed");
    return;
  }
  Gate gate;
  Stage stage(FastConfig());
  DeployYaml(stage, GatedNotifyYaml(gate.path));
  stage.CtlOk({"stop", "shop"});
  gate.Close();

  std::atomic<bool> returned{false};
  e2e::ProcResult result;
  std::thread start([&] {
    result = stage.Ctl({"start", "shop"}, {.timeout_ms = 30'000});
    returned = true;
  });
  // It runs, but is not ready: start has not returned.
  WaitPs(stage, [](const Json& p) { return Row(p, "web.1")["state"] == "running"; });
  CHECK_FALSE(returned.load());
  gate.Open();
  start.join();
  CHECK(result.exit_code() == 0);
  CHECK(result.out.find("web.1 ready (pid ") != std::string::npos);
  CHECK(result.out.find("Started shop: every process is ready") != std::string::npos);
  CHECK(Row(Ps(stage), "web.1")["state"] == "ready");
}

TEST_CASE("start: exits non-zero naming the instance that cannot become ready, --no-wait returns at once") {
  Gate gate;
  Stage stage(FastConfig());
  DeployYaml(stage,
             "processes:\n"
             "  web:\n"
             "    command: test -e " + gate.path + " && exec sleep 1000; echo no gate; exit 1\n");
  stage.CtlOk({"stop", "shop"});
  gate.Close();
  e2e::ProcResult r = stage.Ctl({"start", "shop"}, {.timeout_ms = 30'000});
  CHECK(r.exit_code() == 1);
  CHECK(r.err.find("web.1") != std::string::npos);
  CHECK(r.err.find("exit 1") != std::string::npos);
  CHECK(r.err.find("ctl logs shop --process web.1") != std::string::npos);

  stage.CtlOk({"stop", "shop"});
  e2e::ProcResult quick = stage.Ctl({"start", "shop", "--no-wait"});
  CHECK(quick.exit_code() == 0);
  stage.CtlOk({"stop", "shop"});
}

TEST_CASE("restart: prints each instance as it is ready again") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  stage.CtlOk({"scale", "shop", "web=2"});
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 2); });
  const std::string out = stage.CtlOk({"restart", "shop"});
  Json ps = Ps(stage);
  for (const char* name : {"web.1", "web.2"})
    CHECK(out.find(std::string(name) + " ready (pid " +
                   std::to_string(Row(ps, name)["pid"].get<int64_t>()) + ")") !=
          std::string::npos);
  CHECK(out.find("Restarted shop") != std::string::npos);
}

}  // namespace
}  // namespace relsupd::run_test
