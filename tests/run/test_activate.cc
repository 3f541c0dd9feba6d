// Activation and rollback end to end, with the example app (examples/hello)
// serving on a daemon-held loopback socket.
#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/run/hello_stage.h"
#include "tests/run/run_fixture.h"

namespace relsupd::run_test {
namespace {

using release_test::File;

// The events of `app` (`history APP --json`) of `kind`.
std::vector<Json> Events(Stage& stage, const std::string& kind, const std::string& app = "shop") {
  std::vector<Json> out;
  for (const auto& e : stage.CtlJson({"history", app})) if (e["kind"] == kind) out.push_back(e);
  return out;
}

size_t CountEvents(Stage& stage, const std::string& kind) { return Events(stage, kind).size(); }

TEST_CASE("activate: v1, v2, rollback and rollback --to, serving on the daemon-held socket") {
  HelloStage h;
  h.Release();
  h.Release({"GREETING=two"});
  std::string out = h.stage.CtlOk({"activate", "shop", "v1"});
  CHECK(out.find("v1 of shop is live") != std::string::npos);
  CHECK(h.Version() == "v1\n");
  h.stage.CtlOk({"activate", "shop", "v2"});
  CHECK(h.Version() == "v2\n");
  Json ps = Ps(h.stage);
  CHECK(AllIn(ps, "web", "ready", 2));
  for (const auto& r : ps) CHECK(r["release"] == "v2");
  // Sockets came from the daemon, as under systemd socket activation.
  pid_t pid = Row(ps, "web.1")["pid"].get<pid_t>();
  auto env = Environ(pid);
  CHECK(std::find(env.begin(), env.end(), "LISTEN_FDS=1") != env.end());
  CHECK(std::find(env.begin(), env.end(), "LISTEN_FDNAMES=http") != env.end());
  CHECK(std::find(env.begin(), env.end(), "LISTEN_PID=" + std::to_string(pid)) != env.end());

  h.stage.CtlOk({"rollback", "shop"});
  CHECK(h.Version() == "v1\n");
  // Rollback goes to the release live before, not vN-1: v2 again.
  h.stage.CtlOk({"rollback", "shop"});
  CHECK(h.Version() == "v2\n");
  h.stage.CtlOk({"rollback", "shop", "--to", "v1"});
  CHECK(h.Version() == "v1\n");
  Json status = h.stage.CtlJson({"status", "shop"});
  CHECK(status["active"] == "v1");
  CHECK(status["previous"] == "v2");
  CHECK(std::filesystem::read_symlink(h.stage.state() + "/apps/shop/current") == "releases/v1");
  std::vector<std::string> kinds;
  for (const auto& e : h.stage.CtlJson({"history", "shop"}))
    if (e["kind"] != "activating") kinds.push_back(e["kind"]);
  CHECK(std::count(kinds.begin(), kinds.end(), "activated") == 2);
  CHECK(std::count(kinds.begin(), kinds.end(), "rolled-back") == 3);
}

TEST_CASE("activate: a changed socket address serves the next release and restarts") {
  HelloStage h;
  h.Release();
  h.Release({"GREETING=two"});
  h.stage.CtlOk({"activate", "shop", "v1"});
  CHECK(h.Version() == "v1\n");
  int moved = FreePort();
  std::string spec = h.stage.dir().WriteFile(
      "shop.yaml", "name: shop\nsockets: {http: \"tcp://127.0.0.1:" + std::to_string(moved) + "\"}\n");
  h.stage.CtlOk({"app", "apply", spec});
  h.stage.CtlOk({"activate", "shop", "v2"});
  CHECK(Get(moved, "/version") == "v2\n");
  CHECK(h.Version().empty());  // the old address is closed
  // A crashed instance comes back on the current socket.
  Json ps = Ps(h.stage);
  pid_t old_pid = Row(ps, "web.1")["pid"].get<pid_t>();
  ::kill(old_pid, SIGKILL);
  WaitPs(h.stage, [&](const Json& p) {
    Json r = Row(p, "web.1");
    return r["state"] == "ready" && r["pid"] != old_pid;
  });
  for (int i = 0; i < 20; ++i) CHECK(Get(moved, "/version") == "v2\n");
}

TEST_CASE("activate: nothing to roll back to is a clear error") {
  HelloStage h;
  h.Release();
  auto r = h.stage.Ctl({"rollback", "shop"});
  CHECK(r.exit_code() == 1);
  CHECK(r.err.find("nothing to roll back to") != std::string::npos);
  h.stage.CtlOk({"activate", "shop", "v1"});
  r = h.stage.Ctl({"rollback", "shop"});
  CHECK(r.exit_code() == 1);
  CHECK(r.err.find("v1 is the only release ever active") != std::string::npos);
}

TEST_CASE("activate: a release whose every type is at scale 0 goes live at once, and a scale up runs it") {
  Stage stage(FastConfig());
  const std::string v1 = DeployYaml(stage,
                                    "processes:\n"
                                    "  web:\n    command: sleep 1000\n    scale: 0\n"
                                    "  worker:\n    command: sleep 1000\n    scale: 0\n");
  CHECK(v1 == "v1");
  Json status = stage.CtlJson({"status", "shop"});
  CHECK(status["active"] == "v1");
  CHECK(Ps(stage).empty());
  stage.CtlOk({"scale", "shop", "web=1"});
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
}

TEST_CASE("activate: the release already live exits 0, saying so, and starts its failed instances again") {
  HelloStage h;
  h.Release();
  h.stage.CtlOk({"activate", "shop", "v1"});
  const size_t activating = CountEvents(h.stage, "activating");
  e2e::ProcResult r = h.stage.Ctl({"activate", "shop", "v1"});
  CHECK(r.exit_code() == 0);
  CHECK_THAT(r.out, Catch::Contains("v1 of shop is already live; nothing to do"));
  r = h.stage.Ctl({"rollback", "shop", "--to", "v1"});
  CHECK(r.exit_code() == 0);
  CHECK_THAT(r.out, Catch::Contains("already live"));
  CHECK(CountEvents(h.stage, "activating") == activating);  // no switch
  Json status = h.stage.CtlJson({"status", "shop"});
  CHECK(status["active"] == "v1");
  CHECK(status["last_switch"]["ok"] == true);
  CHECK(status["last_switch"]["changed"] == false);
  // --json says nothing changed, for automation (Ansible's "changed").
  Json again = h.stage.CtlJson({"activate", "shop", "v1"});
  CHECK(again["ok"] == true);
  CHECK(again["changed"] == false);
  CHECK(again["live"] == "v1");
  // --no-wait says the same, and claims no switch.
  r = h.stage.Ctl({"activate", "shop", "v1", "--no-wait"});
  CHECK(r.exit_code() == 0);
  CHECK(r.out == "v1 of shop is already live; nothing to do\n");
  Json no_wait = h.stage.CtlJson({"activate", "shop", "v1", "--no-wait"});
  CHECK(no_wait["changed"] == false);
  CHECK(no_wait["note"] == "v1 of shop is already live; nothing to do");
  r = h.stage.Ctl({"activate", "shop", "v1"});
  CHECK(r.out.find("Activating") == std::string::npos);

  // An app whose instances fail: web.1 exits at once while `crash` exists.
  e2e::TempDir gates;
  Stage stage(FastConfig("", 2), {}, "flaky");
  const std::string file = stage.Artifact(
      "flaky.tar.gz",
      {File("Procfile", "web: ./bin/web\n"),
       File("bin/web",
            "#!/bin/sh\nif [ -e \"$GATE/crash\" ]; then exit 1; fi\nexec sleep 1000\n", 0755)});
  stage.Create(stage.Import(file)["id"].get<std::string>(), {"--set", "GATE=" + gates.path()});
  stage.CtlOk({"activate", "flaky", "v1"});
  gates.WriteFile("crash", "");
  const pid_t pid = Row(Ps(stage), "web.1")["pid"];
  REQUIRE(::kill(pid, SIGKILL) == 0);
  WaitPs(stage, [](const Json& ps) { return AllIn(ps, "web", "failed", 1); }, 20'000,
         "web.1 failed");
  REQUIRE(::unlink((gates.path() + "/crash").c_str()) == 0);
  r = stage.Ctl({"activate", "flaky", "v1"});
  CHECK(r.exit_code() == 0);
  CHECK_THAT(r.out, Catch::Contains("v1 of flaky is already live; started its failed instances "
                                    "again: web.1"));
  CHECK(stage.CtlJson({"status", "flaky"})["last_switch"]["changed"] == true);  // it started one
  WaitPs(stage, [](const Json& ps) { return AllIn(ps, "web", "ready", 1); }, 20'000,
         "web.1 ready again");
}

// What the switch refuses during a switch (scale, stop, start, restart,
// other apps) is in tests/integration/test_switcher.cc; here the CLI's
// error and `status --json`.
TEST_CASE("activate: a second switch of the same app is refused with a clear error while one runs") {
  // The switch to v2 never ends by itself within the test (v2 never gets
  // ready and the deadline is far), so every check below sees it running
  // however slow the machine; the daemon's SIGTERM at teardown ends it.
  HelloStage h({"--deadline", "10m"});
  h.Release();
  h.Release({"HELLO_NEVER_READY=1"});
  h.stage.CtlOk({"activate", "shop", "v1"});
  h.stage.CtlOk({"activate", "shop", "v2", "--no-wait"});
  auto r = h.stage.Ctl({"rollback", "shop"});
  CHECK(r.exit_code() == 1);
  CHECK(r.err.find("in progress") != std::string::npos);
  CHECK(r.err.find("v2") != std::string::npos);
  Json status = h.stage.CtlJson({"status", "shop"});
  CHECK(status["switch"]["to"] == "v2");
}

TEST_CASE("activate: a read-only peer cannot activate or roll back") {
  auto nobody = e2e::NobodyCredentials();
  if (::geteuid() != 0 || !nobody) {
    WARN("needs root and a nobody user");
    return;
  }
  HelloStage h;
  h.Release();
  // Let nobody reach the socket: it may then read but not change.
  std::filesystem::permissions(h.stage.socket(), std::filesystem::perms::all);
  e2e::RunOptions as_nobody;
  as_nobody.as = nobody;
  auto r = h.stage.Ctl({"activate", "shop", "v1"}, as_nobody);
  CHECK(r.exit_code() == 1);
  CHECK(r.err.find("permission") != std::string::npos);
  r = h.stage.Ctl({"rollback", "shop"}, as_nobody);
  CHECK(r.exit_code() == 1);
  CHECK(h.stage.CtlJson({"status", "shop"})["active"].is_null());
}

// The real daemon dies at one step of a switch (its failpoint); the same
// test at each step and strategy is in tests/integration/test_switcher.cc.
TEST_CASE("activate: a crash in the middle of a switch recovers to exactly one live release") {
  HelloStage h;
  h.Release();
  h.Release({"GREETING=two"});
  h.stage.CtlOk({"activate", "shop", "v1"});
  h.stage.Stop();
  h.stage.Restart({"RELSUPD_FAILPOINT=after-start-new"});
  auto r = h.stage.Ctl({"activate", "shop", "v2", "--strategy", "start-first"});
  CHECK(r.exit_code() != 0);
  e2e::ExitStatus st = h.stage.daemon().Wait(10'000);
  REQUIRE(st.Exited(137));
  h.stage.Restart();
  Json status = h.stage.CtlJson({"status", "shop"});
  std::string active = status["active"];
  std::string link = std::filesystem::read_symlink(h.stage.state() + "/apps/shop/current");
  CHECK(link == "releases/" + active);
  Json ps = WaitPs(h.stage, [](const Json& p) { return AllIn(p, "web", "ready", 2); });
  for (const auto& p : ps) CHECK(p["release"] == active);
  CHECK(h.Version() == active + "\n");
  bool recovered = false;
  for (const auto& e : h.stage.CtlJson({"history", "shop"}))
    recovered = recovered || e["kind"] == "recovered";
  CHECK(recovered);
}


// kHelloYaml with another ready check.
std::string HelloYamlReady(const std::string& ready) {
  return "processes:\n  web:\n    command: ./bin/hello\n    sockets: [http]\n    ready: " + ready +
         "\n    stop_timeout: 5s\n";
}

TEST_CASE("activate: a tcp or http ready check aimed at a daemon-held socket is refused, before anything changes") {
  HelloStage h;
  h.Release();
  h.stage.CtlOk({"activate", "shop", "v1"});
  const std::string hello = Slurp(RELSUPD_HELLO_BIN);
  const std::string p = std::to_string(h.port);

  // `release create` already says so against the app's sockets of now, and
  // makes no release.
  std::string file = h.stage.Artifact(
      "tcp.tar.gz", {File("relsupd.yaml", HelloYamlReady("{tcp: " + p + "}")),
                     File("bin/hello", hello, 0755)});
  std::string id = h.stage.Import(file)["id"];
  auto r = h.stage.Ctl({"release", "create", "shop", "--build", id});
  CHECK(r.exit_code() == 1);
  // It names the build: the release it would have made does not exist.
  CHECK(r.err.find("v2") == std::string::npos);
  CHECK(r.err.find("no release made from this build: process 'web': ready check tcp 127.0.0.1:" + p +
                   " would reach the daemon-held socket 'http' (tcp://127.0.0.1:" + p +
                   "), which always accepts; use 'ready: notify'") != std::string::npos);
  CHECK(h.stage.CtlJson({"releases", "shop"}).size() == 1);
  CHECK_FALSE(std::filesystem::exists(h.stage.state() + "/apps/shop/releases/v2"));

  // A release made while its check aimed elsewhere, after the app's socket
  // moved there (on a wildcard address): activation refuses it, before any
  // event, link change or process.
  int moved = FreePort();
  const std::string m = std::to_string(moved);
  file = h.stage.Artifact(
      "http.tar.gz",
      {File("relsupd.yaml", HelloYamlReady("{http: \"http://localhost:" + m + "/version\"}")),
       File("bin/hello", hello, 0755)});
  id = h.stage.Import(file)["id"].get<std::string>();
  std::string v = h.stage.Create(id);
  CHECK(v == "v2");
  std::string spec = h.stage.dir().WriteFile(
      "shop.yaml", "name: shop\nsockets: {http: \"tcp://0.0.0.0:" + m + "\"}\n");
  h.stage.CtlOk({"app", "apply", spec});
  size_t activating = CountEvents(h.stage, "activating");
  for (std::vector<std::string> verb : {std::vector<std::string>{"activate", "shop", "v2"},
                                        {"rollback", "shop", "--to", "v2"}}) {
    r = h.stage.Ctl(verb);
    CHECK(r.exit_code() == 1);
    CHECK(r.err.find("release v2: process 'web': ready check http http://localhost:" + m +
                     "/version would reach the daemon-held socket 'http' (tcp://0.0.0.0:" + m +
                     "), which always accepts; use 'ready: notify'") != std::string::npos);
  }
  CHECK(CountEvents(h.stage, "activating") == activating);
  CHECK(std::filesystem::read_symlink(h.stage.state() + "/apps/shop/current") == "releases/v1");
  Json status = h.stage.CtlJson({"status", "shop"});
  CHECK(status["active"] == "v1");
  CHECK(status["switch"].is_null());
  Json ps = Ps(h.stage);
  CHECK(AllIn(ps, "web", "ready", 2));
  for (const auto& row : ps) CHECK(row["release"] == "v1");
  CHECK(h.Version() == "v1\n");  // v1 keeps the socket it was given

  // With the check on another port, the same socket is fine.
  file = h.stage.Artifact(
      "ok.tar.gz", {File("relsupd.yaml", HelloYamlReady("{tcp: " + std::to_string(FreePort()) + "}")),
                    File("bin/hello", hello, 0755)});
  id = h.stage.Import(file)["id"].get<std::string>();
  CHECK(h.stage.Create(id) == "v3");
}

TEST_CASE("activate: when the ledger cannot record the outcome, the switch goes back and link, processes and ledger agree") {
  struct Case {
    std::string failpoint, strategy;
    std::vector<std::string> verb;
    std::string live, refused;
    std::vector<std::string> app_args;
  };
  // Also without auto_rollback: the ledger cannot say the new release is
  // live, so it is not.
  for (const Case& c : {Case{"ledger-append-activated", "start-first", {"activate", "shop", "v2"}, "v1", "v2", {}},
                        Case{"ledger-append-activated", "stop-first", {"activate", "shop", "v2"}, "v1", "v2", {}},
                        Case{"ledger-append-activated", "start-first", {"activate", "shop", "v2"}, "v1", "v2",
                             {"--no-auto-rollback"}},
                        Case{"ledger-append-rolled-back", "start-first", {"rollback", "shop"}, "v2", "v1", {}}}) {
    INFO(c.failpoint << " " << c.strategy << " " << c.app_args.size());
    HelloStage h(c.app_args);
    h.Release();
    h.Release({"GREETING=two"});
    h.stage.CtlOk({"activate", "shop", "v1"});
    if (c.live == "v2") h.stage.CtlOk({"activate", "shop", "v2"});
    h.stage.Stop();
    h.stage.Restart({"RELSUPD_FAILPOINT=" + c.failpoint});
    std::vector<std::string> verb = c.verb;
    if (verb[0] == "activate") verb.insert(verb.end(), {"--strategy", c.strategy});
    auto r = h.stage.Ctl(verb);
    CHECK(r.exit_code() == 1);
    CHECK(r.err.find("rolled back to " + c.live) != std::string::npos);
    CHECK(r.err.find("cannot record") != std::string::npos);
    CHECK(r.err.find("injected failure") != std::string::npos);
    auto agree = [&] {
      CHECK(std::filesystem::read_symlink(h.stage.state() + "/apps/shop/current") ==
            "releases/" + c.live);
      CHECK(h.stage.CtlJson({"status", "shop"})["active"] == c.live);
      Json ps = WaitPs(h.stage, [](const Json& p) { return AllIn(p, "web", "ready", 2); });
      for (const auto& row : ps) CHECK(row["release"] == c.live);
      CHECK(h.Version() == c.live + "\n");
    };
    agree();
    Json last = h.stage.CtlJson({"history", "shop"}).back();
    CHECK(last["kind"] == "auto-rolled-back");
    CHECK(last["release"] == c.live);
    // The reason names the release once: no "v2: ... of v2".
    const std::string detail = last["detail"];
    CHECK(detail.find("cannot record") == 0);
    CHECK(detail.find(c.refused) != std::string::npos);
    CHECK(detail.find(c.refused + ":") == std::string::npos);
    // The next start has nothing to settle.
    h.stage.Stop();
    h.stage.Restart();
    agree();
    CHECK(CountEvents(h.stage, "recovered") == 0);
  }
}

// The releases `pruned` events name, with who pruned them.
std::map<std::string, std::string> PrunedBy(Stage& stage) {
  std::map<std::string, std::string> out;
  for (const auto& e : stage.CtlJson({"history", "shop", "-n", "1000"}))
    if (e["kind"] == "pruned") out[e["release"].get<std::string>()] = e["actor"];
  return out;
}

TEST_CASE("activate: a release create during a slow rollback --to v1 with keep_releases 2 leaves v1 intact and live") {
  // Every release's hello says READY only once `gate` exists: the test
  // decides when the rollback's v1 becomes ready.
  e2e::TempDir gates;
  const std::string gate = gates.WriteFile("ready", "");
  HelloStage h({"--keep", "2"});
  h.Release({"HELLO_READY_FILE=" + gate});
  h.Release({"GREETING=two"});
  h.Release({"GREETING=three"});
  for (const char* v : {"v1", "v2", "v3"}) h.stage.CtlOk({"activate", "shop", v});
  const pid_t daemon = h.stage.daemon().pid();
  const std::set<pid_t> v3_pids = Pids(Ps(h.stage));
  REQUIRE(v3_pids.size() == 2);

  REQUIRE(::unlink(gate.c_str()) == 0);
  h.stage.CtlOk({"rollback", "shop", "--to", "v1", "--no-wait"});
  Json ps = WaitPs(h.stage, [](const Json& p) {
    size_t waiting = 0;
    for (const auto& r : p)
      if (r["release"] == "v1" && r["state"] == "running" && r.value("pid", 0) > 0) ++waiting;
    return waiting == 2;
  }, 20'000, "v1 started and waiting for its gate");
  // v1 is neither active nor the rollback target in the ledger yet, and
  // is the third newest activated release: retention alone would take it.
  Json status = h.stage.CtlJson({"status", "shop"});
  REQUIRE(status["switch"]["to"] == "v1");
  CHECK(status["active"] == "v3");
  CHECK(status["previous"] == "v2");
  CHECK(h.Release({"GREETING=four"}) == "v4");
  // The create's prune ran before the daemon read the next request.
  CHECK(PrunedBy(h.stage).count("v1") == 0);
  CHECK(std::filesystem::exists(h.stage.Slot(1) + "/bin/hello"));
  Json verify = h.stage.CtlJson({"release", "verify", "shop", "v1"});
  CHECK(verify["ok"] == true);
  // The switch goes on; the old release still serves.
  CHECK(h.stage.CtlJson({"status", "shop"})["switch"]["to"] == "v1");
  CHECK(h.Version() == "v3\n");
  for (pid_t p : v3_pids) CHECK(Alive(p));
  CHECK(h.stage.daemon().pid() == daemon);
  CHECK(Alive(daemon));

  // v1 becomes ready: the rollback completes, on an intact slot.
  gates.WriteFile("ready", "");
  int64_t deadline = e2e::NowMs() + 20'000;
  while ((status = h.stage.CtlJson({"status", "shop"}))["switch"] != nullptr &&
         e2e::NowMs() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  REQUIRE(status["switch"] == nullptr);
  CHECK(status["last_switch"]["ok"] == true);
  CHECK(status["active"] == "v1");
  CHECK(status["previous"] == "v3");
  CHECK(h.Version() == "v1\n");
  // The instances that waited for the gate are the ones live now.
  std::set<pid_t> waited;
  for (const auto& r : ps)
    if (r["release"] == "v1") waited.insert(r["pid"].get<pid_t>());
  CHECK(Pids(Ps(h.stage)) == waited);
  CHECK(WaitGone(v3_pids));
  CHECK(h.stage.CtlJson({"release", "verify", "shop", "v1"})["ok"] == true);
  CHECK(PrunedBy(h.stage).empty());
  CHECK(h.stage.daemon().pid() == daemon);
  CHECK(h.stage.Ctl({"history", "--verify"}).exit_code() == 0);

  // Retention resumes once v1 is no longer in use. Live v4: v1 is the
  // rollback target, and the prune held back runs as the switch ends: v2
  // (third newest activated) goes.
  h.stage.CtlOk({"activate", "shop", "v4"});
  std::map<std::string, std::string> pruned = PrunedBy(h.stage);
  CHECK(pruned == std::map<std::string, std::string>{{"v2", "relsupd"}});
  // Live v3 again: v1 is neither kept, active nor the rollback target.
  h.stage.CtlOk({"activate", "shop", "v3"});
  Json out = h.stage.CtlJson({"prune", "shop"});
  CHECK(out["pruned"] == Json::array({"v1"}));
  CHECK(out["in_use"] == Json::array());
  CHECK(!std::filesystem::exists(h.stage.Slot(1)));
  CHECK(!std::filesystem::exists(h.stage.Slot(2)));
  CHECK(std::filesystem::exists(h.stage.Slot(4)));
  CHECK(h.Version() == "v3\n");
  CHECK(h.stage.daemon().pid() == daemon);
  CHECK(h.stage.Ctl({"history", "--verify"}).exit_code() == 0);
}

TEST_CASE("activate: a release whose instances are still stopping after a failed stop-first rollback is pruned only once they stopped") {
  // v1's worker, when LINGER=1, stops only once `release` exists in the
  // gate dir; its web exits at once while `crash` exists there.
  e2e::TempDir gates;
  const std::string gate = gates.path();
  // The deadline ends the check of v3 after the rollback, which cannot
  // start while v1's worker stops.
  Stage stage(FastConfig(), {}, "shop", {"--keep", "2", "--deadline", "3s"});
  const std::string file = stage.Artifact(
      "linger.tar.gz",
      {File("relsupd.yaml",
            "processes:\n"
            "  web:\n"
            "    command: ./bin/web\n"
            "  worker:\n"
            "    command: ./bin/worker\n"
            "    stop_timeout: 600s\n"),
       File("bin/web", "#!/bin/sh\nif [ -e \"$GATE/crash\" ]; then exit 1; fi\nexec sleep 1000\n",
            0755),
       File("bin/worker",
            "#!/bin/sh\n"
            "trap 'if [ \"$LINGER\" = 1 ]; then\n"
            "  while [ ! -e \"$GATE/release\" ]; do sleep 0.02; done\n"
            "fi; exit 0' TERM\n"
            "while :; do sleep 0.02; done\n",
            0755)});
  const std::string build = stage.Import(file)["id"];
  stage.Create(build, {"--set", "GATE=" + gate, "--set", "LINGER=1"});
  stage.CtlOk({"config", "unset", "shop", "LINGER"});  // v2
  stage.Create(build, {"--set", "N=3"});
  gates.WriteFile("release", "");
  for (const char* v : {"v1", "v2", "v3"}) stage.CtlOk({"activate", "shop", v});
  const pid_t daemon = stage.daemon().pid();

  REQUIRE(::unlink((gate + "/release").c_str()) == 0);
  gates.WriteFile("crash", "");
  e2e::ProcResult r = stage.Ctl({"rollback", "shop", "--to", "v1", "--strategy", "stop-first"});
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("rolled back to v3, but v3 was not ready within 3s (v1 still "
                                    "stopping)"));
  // The switch is over; v1's worker is still stopping, v3 waits for it.
  Json status = stage.CtlJson({"status", "shop"});
  CHECK(status["switch"] == nullptr);
  CHECK(status["active"] == "v3");
  CHECK(status["previous"] == "v2");
  Json ps = Ps(stage);
  pid_t worker = 0;
  for (const auto& row : ps)
    if (row["release"] == "v1" && row["type"] == "worker" && row.value("pid", 0) > 0)
      worker = row["pid"];
  REQUIRE(worker > 0);
  CHECK(Alive(worker));

  CHECK(stage.Create(build, {"--set", "N=4"}) == "v4");
  CHECK(PrunedBy(stage).count("v1") == 0);
  CHECK(std::filesystem::exists(stage.Slot(1) + "/bin/worker"));
  CHECK(Alive(worker));
  CHECK(stage.daemon().pid() == daemon);

  // The worker stops: v1 is no longer in use, and the prune held back runs.
  REQUIRE(::unlink((gate + "/crash").c_str()) == 0);  // v3's web starts next
  gates.WriteFile("release", "");
  CHECK(WaitGone({worker}));
  int64_t deadline = e2e::NowMs() + 20'000;
  while (std::filesystem::exists(stage.Slot(1)) && e2e::NowMs() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  CHECK_FALSE(std::filesystem::exists(stage.Slot(1)));
  CHECK(PrunedBy(stage) == std::map<std::string, std::string>{{"v1", "relsupd"}});
  ps = WaitPs(stage, [](const Json& p) {
    for (const auto& row : p)
      if (row["release"] != "v3") return false;
    return AllIn(p, "", "ready", 2);
  }, 20'000, "v3 running again");
  CHECK(stage.daemon().pid() == daemon);
  CHECK(stage.Ctl({"history", "--verify"}).exit_code() == 0);
}


// An app whose web exits at once (saying why on stderr) while `crash`
// exists in the gate dir, and otherwise writes up.PID there before it
// sleeps; releases v1 and v2 of one build.
struct GateStage {
  e2e::TempDir gates;
  Stage stage{FastConfig(), {}, "shop", {"--deadline", "30s"}};
  GateStage() {
    // The app's user writes up.PID here.
    std::filesystem::permissions(gates.path(), std::filesystem::perms::all);
    const std::string file = stage.Artifact(
        "gate.tar.gz",
        {File("Procfile", "web: ./bin/web\n"),
         File("bin/web",
              "#!/bin/sh\n"
              "if [ -e \"$GATE/crash\" ]; then echo \"web: $RELEASE_MARK cannot start\" >&2; exit 1; fi\n"
              ": > \"$GATE/up.$$\"\n"
              "exec sleep 1000\n",
              0755)});
    const std::string build = stage.Import(file)["id"];
    stage.Create(build, {"--set", "GATE=" + gates.path(), "--set", "RELEASE_MARK=one"});
    stage.Create(build, {"--set", "GATE=" + gates.path(), "--set", "RELEASE_MARK=two"});
  }
  // Closes the gate once every running instance is past it: a ready
  // Procfile instance may not have read the gate yet, and would crash too
  // (CI saw a live v2 fail this way).
  void Crash() {
    for (const Json& row : stage.CtlJson({"ps", "shop"})) {
      if (row["state"] != "ready") continue;
      const std::string up = gates.path() + "/up." + std::to_string(row["pid"].get<pid_t>());
      const int64_t deadline = e2e::NowMs() + 20'000;
      while (!std::filesystem::exists(up) && e2e::NowMs() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      REQUIRE(std::filesystem::exists(up));
    }
    gates.WriteFile("crash", "");
  }
  void Heal() { REQUIRE(::unlink((gates.path() + "/crash").c_str()) == 0); }
};

TEST_CASE("activate: an automatic rollback to a release that then crash-loops says it is not ready, and exits 1") {
  GateStage g;
  g.stage.CtlOk({"activate", "shop", "v1"});
  g.Crash();  // v2 cannot start, and neither can v1 once stopped
  e2e::ProcResult r = g.stage.Ctl({"activate", "shop", "v2", "--strategy", "stop-first"});
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("rolled back to v1, but v1 is not ready: web.1 exited: exit 1"));
  CHECK_THAT(r.err, Catch::Contains("web: one cannot start"));  // v1's own stderr
  CHECK_THAT(r.err, Catch::Contains("the switch failed because v2 crash-looped"));
  CHECK_THAT(r.err, !Catch::Contains("v2: v2"));
  CHECK_THAT(r.err, !Catch::Contains("v1: v1"));
  Json status = g.stage.CtlJson({"status", "shop"});
  CHECK(status["active"] == "v1");
  CHECK(status["switch"].is_null());
  CHECK(status["last_switch"]["ok"] == false);
  CHECK_THAT(status["last_switch"]["message"].get<std::string>(),
             Catch::Contains("rolled back to v1, but v1 is not ready"));
  CHECK(status["last_switch"]["live_ready"] == false);
  r = g.stage.Ctl({"status", "shop"});
  CHECK_THAT(r.out, Catch::Contains("last switch failed: rolled back to v1, but v1 is not ready"));
  std::vector<Json> back = Events(g.stage, "auto-rolled-back");
  REQUIRE(back.size() == 1);
  CHECK(back[0]["release"] == "v1");
  const std::string detail = back[0]["detail"];
  CHECK(detail.find("v2 crash-looped: web.1 exited: exit 1") == 0);
  CHECK_THAT(detail, Catch::Contains("; v1 is not ready: web.1 exited: exit 1"));

  // v1 gets well: activating it (live already) starts it again.
  g.Heal();
  g.stage.CtlOk({"activate", "shop", "v1"});
  WaitPs(g.stage, [](const Json& ps) { return AllIn(ps, "web", "ready", 1); }, 30'000,
         "v1 ready after the gate opened");
}

TEST_CASE("activate: a rollback by hand whose release, and the one gone back to, crash-loop says so, and exits 1") {
  GateStage g;
  g.stage.CtlOk({"activate", "shop", "v1"});
  g.stage.CtlOk({"activate", "shop", "v2"});
  g.Crash();
  e2e::ProcResult r = g.stage.Ctl({"rollback", "shop", "--strategy", "stop-first"});
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("rolled back to v2, but v2 is not ready: web.1 exited: exit 1"));
  CHECK_THAT(r.err, Catch::Contains("the switch failed because v1 crash-looped"));
  CHECK_THAT(r.err, !Catch::Contains("v1: v1"));
  Json status = g.stage.CtlJson({"status", "shop"});
  CHECK(status["active"] == "v2");
  CHECK_THAT(status["last_switch"]["message"].get<std::string>(),
             Catch::Contains("v2 is not ready"));
  std::vector<Json> back = Events(g.stage, "auto-rolled-back");
  REQUIRE(back.size() == 1);
  CHECK(back[0]["release"] == "v2");
  CHECK_THAT(back[0]["detail"].get<std::string>(), Catch::Contains("v2 is not ready"));

  // Start-first, v2 healthy: a rollback that fails goes back to a v2 that
  // is ready, and says only that.
  g.Heal();
  g.stage.CtlOk({"activate", "shop", "v2"});  // live already: starts it again
  WaitPs(g.stage, [](const Json& ps) { return AllIn(ps, "web", "ready", 1); }, 30'000,
         "v2 ready after the gate opened");
  g.Crash();
  // v2 runs (started before the gate closed); v1 cannot start.
  r = g.stage.Ctl({"rollback", "shop", "--strategy", "start-first"});
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("rolled back to v2: v1 crash-looped"));
  CHECK_THAT(r.err, !Catch::Contains("not ready"));
}

// `activate shop v2` of a Procfile `procfile` over a live v1 that sleeps.
e2e::ProcResult ActivateOverLive(Stage& stage, const std::string& procfile) {
  std::string file = stage.Artifact("ok.tar.gz", {File("Procfile", "web: sleep 1000\n")});
  stage.Create(stage.Import(file)["id"].get<std::string>());
  stage.CtlOk({"activate", "shop", "v1"});
  file = stage.Artifact("v2.tar.gz", {File("Procfile", procfile)});
  stage.Create(stage.Import(file)["id"].get<std::string>());
  return stage.Ctl({"activate", "shop", "v2"});
}

TEST_CASE("activate: a release whose command is missing fails saying why, with its stderr and the logs command") {
  Stage stage(FastConfig(), {}, "shop");
  e2e::ProcResult r = ActivateOverLive(stage, "web: nodee server.js\n");
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("rolled back to v1: v2 "));
  CHECK_THAT(r.err, Catch::Contains("exit 127"));
  CHECK_THAT(r.err, Catch::Contains("the last lines of web.1 on stderr:\n"));
  CHECK_THAT(r.err, Catch::Contains("cannot run 'nodee': No such file or directory"));
  CHECK_THAT(r.err, Catch::Contains("more: relsupd ctl logs shop --process web.1"));
  CHECK_THAT(r.err, !Catch::Contains("v2: v2"));
  std::vector<Json> back = Events(stage, "auto-rolled-back");
  REQUIRE(back.size() == 1);
  CHECK(back[0]["detail"].get<std::string>().find("v2 ") == 0);
  CHECK_THAT(back[0]["detail"].get<std::string>(), Catch::Contains("cannot run 'nodee'"));
}

// redis and many others log to stdout: a failure shows those lines when
// stderr has none.
TEST_CASE("activate: a release that fails saying why on stdout only shows its stdout and the logs command") {
  Stage stage(FastConfig(), {}, "shop");
  e2e::ProcResult r =
      ActivateOverLive(stage, "web: echo '# Could not create server TCP listening socket'; exit 1\n");
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("rolled back to v1: v2 "));
  CHECK_THAT(r.err, Catch::Contains("the last lines of web.1 on stdout:\n"));
  CHECK_THAT(r.err, Catch::Contains("# Could not create server TCP listening socket"));
  CHECK_THAT(r.err, Catch::Contains("more: relsupd ctl logs shop --process web.1"));
}

// Many instances: a line per release and type as its counts change, not
// one per instance. (One that backs off or fails is still named; a poll
// every 50 ms cannot be made to see it here.)
TEST_CASE("activate: the progress of many instances is counted per type, of few instance by instance") {
  Stage stage(FastConfig(), {}, "shop");
  const std::string v1 = ReleaseTo(
      stage, "shop",
      {File("relsupd.yaml", "processes:\n  worker:\n    command: sleep 1000\n    scale: 30\n"
                            "  web:\n    command: sleep 1000\n")});
  e2e::ProcResult r = stage.Ctl({"activate", "shop", v1});
  INFO(r.Describe());
  REQUIRE(r.exit_code() == 0);
  CHECK_THAT(r.out, Catch::Contains("  v1 worker: 30 ready\n"));
  CHECK_THAT(r.out, !Catch::Contains("v1 worker.1 "));
  // A type of few instances beside it: one line each, as before.
  CHECK_THAT(r.out, Catch::Contains("  v1 web.1 ready (pid "));
  CHECK_THAT(r.out, Catch::EndsWith("v1 of shop is live\n"));
}

}  // namespace
}  // namespace relsupd::run_test
