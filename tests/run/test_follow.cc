// Following a live daemon end to end (issue 14): `events -f`, and `logs`
// with --since, --grep, every app, and -f pushed by the daemon instead of
// polled. The real daemon and CLI; waits are for output or states.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "daemon/base/clock.h"
#include "tests/run/run_fixture.h"
#include "tests/support/cli.h"
#include "tests/support/failure.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace relsupd::run_test {
namespace {

using release_test::File;

void Touch(const std::string& path) {
  std::ofstream out(path);
  if (!out) support::Fail("cannot create " + path);
}

// The daemon's count of answered `method` requests (its metrics).
int64_t Requests(Stage& stage, const std::string& method) {
  const std::string text = stage.CtlJson({"metrics"})["text"].get<std::string>();
  const std::string key =
      "relsupd_control_requests_total{method=\"" + method + "\",outcome=\"ok\"} ";
  const size_t at = text.find(key);
  return at == std::string::npos ? 0 : std::stoll(text.substr(at + key.size()));
}

std::vector<Json> JsonLines(const std::string& text) {
  std::vector<Json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    Json j = Json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

TEST_CASE("events: -f prints an activation and the instance changes it brings as they happen") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: sleep 1000\n");
  Follower json(stage, {"--json", "events", "shop", "-f", "-n", "0"});
  Follower text(stage, {"events", "-f", "-n", "0"});
  // Both had their first answer (and wait in the daemon) before the deploy.
  REQUIRE(support::WaitUntil([&] { return Requests(stage, "events") >= 2; }, 20'000));
  DeployProcfile(stage, "web: sleep 1001\n");
  // Each as it happens: the activation, v2's instance ready, v1's stopped.
  auto seen = [&](const std::function<bool(const Json&)>& pred) {
    return support::WaitUntil([&] {
      for (const Json& e : JsonLines(json.out()))
        if (pred(e)) return true;
      return false;
    }, 20'000);
  };
  INFO(json.out());
  CHECK(seen([](const Json& e) { return e["kind"] == "activated" && e["release"] == "v2"; }));
  CHECK(seen([](const Json& e) {
    return e["kind"] == "instance" && e["release"] == "v2" && e["process"] == "web.1" &&
           e["state"] == "ready";
  }));
  CHECK(seen([](const Json& e) {
    return e["kind"] == "instance" && e["release"] == "v1" && e["state"] == "stopped";
  }));
  // A crash restarted at once is an exit of its own, with its cause, then
  // the state it is back in.
  const size_t before_kill = JsonLines(json.out()).size();
  stage.CtlOk({"signal", "shop", "web.1", "KILL"});
  CHECK(seen([](const Json& e) {
    return e["kind"] == "instance" && e["release"] == "v2" && e["process"] == "web.1" &&
           e["state"] == "exited" && e.value("detail", "").find("KILL") != std::string::npos;
  }));
  REQUIRE(support::WaitUntil([&] {
    auto lines = JsonLines(json.out());
    return lines.size() > before_kill && lines.back()["state"] == "ready";
  }, 20'000));
  // One entry per visible change: never the same state twice in a row for
  // one instance.
  std::map<std::string, std::string> last;
  for (const Json& e : JsonLines(json.out())) {
    CHECK(e["app"] == "shop");
    if (e["kind"] != "instance") continue;
    const std::string who = e["release"].get<std::string>() + " " + e["process"].get<std::string>();
    CHECK(last[who] != e["state"].get<std::string>());
    last[who] = e["state"].get<std::string>();
  }
  // The human form: one line each, who did it.
  REQUIRE(text.WaitOut(" shop v2 activated by "));
  CHECK(text.WaitOut(" shop v2 web.1 ready"));
  // Without -f: the newest ones, and an unknown app is refused by name.
  e2e::ProcResult recent = stage.Ctl({"events", "shop", "-n", "50"});
  CHECK(recent.exit_code() == 0);
  CHECK_THAT(recent.out, Catch::Contains(" shop v2 released by "));
  e2e::ProcResult none = stage.Ctl({"events", "nope"});
  CHECK(none.exit_code() == 1);
  CHECK_THAT(none.err, Catch::Contains("nope"));
}

TEST_CASE("logs: -f is sent by the daemon as lines come, not polled") {
  Stage stage(FastConfig());
  WritableDir marks;
  const std::string mark = marks.path + "/poke";
  DeployProcfile(stage, "quiet: echo started; while :; do if [ -e " + mark + " ]; then rm -f " +
                            mark + "; echo poked; fi; sleep 0.05; done\n");
  REQUIRE(WaitLog(stage, "started"));
  const int64_t before = Requests(stage, "logs");
  Follower f(stage, {"--json", "logs", "shop", "-f", "-n", "1"});
  REQUIRE(f.WaitOut("started"));
  // A quiet second and a half: a follower asking on a timer (every 200 ms,
  // as before) would make 7 requests or more; one parked ask makes none.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  Touch(mark);
  REQUIRE(f.WaitOut("poked"));
  const int64_t asked = Requests(stage, "logs") - before;
  INFO("logs requests answered: " << asked);
  // The tail (1), the parked follow answered with "poked" (1).
  CHECK(asked <= 3);
  CHECK(f.running());
}

TEST_CASE("logs: --since and --grep return only what they should, for one app or every app") {
  Stage stage(FastConfig());
  WritableDir marks;
  const std::string mark = marks.path + "/go";
  const std::string loop = "echo old-alpha; echo old-beta; while [ ! -e " + mark +
                           " ]; do sleep 0.05; done; echo new-alpha; echo new-beta; sleep 1000";
  DeployProcfile(stage, "w: " + loop + "\n");
  stage.CtlOk({"app", "create", "other"});
  DeployTo(stage, "other", {File("Procfile", "w: echo other-alpha; sleep 1000\n")});
  REQUIRE(WaitLog(stage, "old-beta"));
  // The old lines are over 3 s old when the new ones come.
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));
  const std::string cut = FormatTimeUtc(RealClock().WallMs());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  Touch(mark);
  REQUIRE(WaitLog(stage, "new-beta"));

  auto texts = [](const e2e::ProcResult& r) {
    std::vector<std::string> out;
    for (const Json& j : JsonLines(r.out)) out.push_back(j["text"].get<std::string>());
    return out;
  };
  using V = std::vector<std::string>;
  e2e::ProcResult recent = stage.Ctl({"--json", "logs", "shop", "--since", "2s", "--grep", "alpha"});
  CHECK(recent.exit_code() == 0);
  CHECK(texts(recent) == V{"new-alpha"});
  e2e::ProcResult from = stage.Ctl({"--json", "logs", "shop", "--since", cut});
  CHECK(texts(from) == V{"new-alpha", "new-beta"});
  e2e::ProcResult hour = stage.Ctl({"--json", "logs", "shop", "--since", "1h", "--grep", "^old"});
  CHECK(texts(hour) == V{"old-alpha", "old-beta"});
  // (?i): RE2's flag for case; -n counts matching lines.
  e2e::ProcResult last = stage.Ctl({"--json", "logs", "shop", "--grep", "(?i)ALPHA", "-n", "1"});
  CHECK(texts(last) == V{"new-alpha"});
  // Every app: merged by time, the app named on each line.
  e2e::ProcResult all = stage.Ctl({"logs", "--grep", "alpha"});
  CHECK(all.exit_code() == 0);
  CHECK_THAT(all.out, Catch::Contains(" shop w.1[v1]: old-alpha"));
  CHECK_THAT(all.out, Catch::Contains(" other w.1[v1]: other-alpha"));
  CHECK_THAT(all.out, Catch::Contains(" shop w.1[v1]: new-alpha"));
  CHECK(all.out.find("beta") == std::string::npos);
  CHECK(all.out.find("old-alpha") < all.out.find("new-alpha"));

  // Bad input: a clear error naming what was wrong.
  e2e::ProcResult bad_re = stage.Ctl({"logs", "shop", "--grep", "(unclosed"});
  CHECK(bad_re.exit_code() == 1);
  CHECK_THAT(bad_re.err, Catch::Contains("'(unclosed' is not a valid regular expression"));
  e2e::ProcResult heavy = stage.Ctl({"logs", "shop", "--grep", ".{1000}x"});
  CHECK(heavy.exit_code() == 1);
  CHECK_THAT(heavy.err, Catch::Contains("'.{1000}x' is too complex"));
  // A follow of every app from a map naming apps that are not there: they
  // are passed over.
  Json none = support::Call(stage.socket(), "logs",
                            Json{{"after", {{"nope", 0}, {"shop", 1'000'000}, {"other", 1'000'000}}}});
  CHECK(none["records"].empty());
  CHECK(none["cursors"].contains("shop"));
  CHECK_FALSE(none["cursors"].contains("nope"));
  e2e::ProcResult bad_since = stage.Ctl({"logs", "shop", "--since", "yesterday"});
  CHECK(bad_since.exit_code() == 2);
  CHECK_THAT(bad_since.err, Catch::Contains("--since: 'yesterday' is neither a duration"));
  e2e::ProcResult no_app = stage.Ctl({"logs", "--release", "v1"});
  CHECK(no_app.exit_code() == 2);
  CHECK_THAT(no_app.err, Catch::Contains("--release needs an APP"));
}

TEST_CASE("logs: -f without an app follows every app, a new app's lines included") {
  Stage stage(FastConfig());
  WritableDir marks;
  const std::string mark = marks.path + "/go";
  DeployProcfile(stage, "w: echo shop-start; while [ ! -e " + mark +
                            " ]; do sleep 0.05; done; echo shop-later; sleep 1000\n");
  REQUIRE(WaitLog(stage, "shop-start"));
  Follower f(stage, {"logs", "-f", "-n", "5", "--grep", "start|later"});
  REQUIRE(f.WaitOut(" shop w.1[v1]: shop-start"));
  stage.CtlOk({"app", "create", "late"});
  DeployTo(stage, "late", {File("Procfile", "w: echo late-start; sleep 1000\n")});
  REQUIRE(f.WaitOut(" late w.1[v1]: late-start"));
  Touch(mark);
  REQUIRE(f.WaitOut(" shop w.1[v1]: shop-later"));
  // Every line once.
  const std::string out = f.out();
  CHECK(out.find("shop-start") == out.rfind("shop-start"));
  CHECK(out.find("late-start") == out.rfind("late-start"));
}

}  // namespace
}  // namespace relsupd::run_test
