// `relsupd ctl signal APP [TYPE[.N]] SIGNAL` end to end (issue 14): the
// real daemon signals the main process of the instances named, and only
// those; each bad argument gets an error that names it.
#include <catch2/catch.hpp>
#include <string>

#include "tests/run/hello_stage.h"
#include "tests/run/run_fixture.h"

namespace relsupd::run_test {
namespace {

struct SignalStage {
  HelloStage h;
  SignalStage() {
    h.Release();
    h.stage.CtlOk({"activate", "shop", "v1"});
    WaitPs(h.stage, [](const Json& p) { return AllIn(p, "web", "ready", 2); });
  }
  Stage& s() { return h.stage; }
};

TEST_CASE("signal: USR1 reaches web.2 only, which dies of it and is restarted, and history says so") {
  SignalStage st;
  const Json before = Ps(st.s());
  const pid_t web1 = Row(before, "web.1")["pid"], web2 = Row(before, "web.2")["pid"];
  // hello leaves USR1 at its default action: the process ends of it.
  e2e::ProcResult sent = st.s().Ctl({"signal", "shop", "web.2", "usr1"});
  INFO(sent.err);
  REQUIRE(sent.exit_code() == 0);
  CHECK(sent.out == "Sent SIGUSR1 to shop web.2 (pid " + std::to_string(web2) + ")\n");
  const Json after = WaitPs(st.s(), [&](const Json& p) {
    return Row(p, "web.2")["restarts"] == 1 && AllIn(p, "web", "ready", 2);
  });
  CHECK(Row(after, "web.1")["pid"] == web1);
  CHECK(Row(after, "web.1")["restarts"] == 0);
  CHECK(Row(after, "web.2")["pid"] != web2);
  const Json history = st.s().CtlJson({"history", "shop"});
  int signaled = 0;
  for (const Json& e : history)
    if (e["kind"] == "signaled") {
      ++signaled;
      CHECK(e["detail"] == "USR1 to web.2");
      CHECK(e["actor"] == "root");
    }
  CHECK(signaled == 1);
}

TEST_CASE("signal: a type reaches each of its instances, by number too, and --json lists them") {
  SignalStage st;
  const Json before = Ps(st.s());
  // SIGCONT changes nothing for a running process: both stay as they are.
  const Json r = st.s().CtlJson({"signal", "shop", "web", "18"});
  CHECK(r["signal"] == "SIGCONT");
  CHECK(r["signum"] == 18);
  REQUIRE(r["processes"].size() == 2);
  CHECK(r["processes"][0]["process"] == "web.1");
  CHECK(r["processes"][0]["pid"] == Row(before, "web.1")["pid"]);
  CHECK(r["processes"][1]["process"] == "web.2");
  const Json all = st.s().CtlJson({"signal", "shop", "SIGCONT"});
  CHECK(all["processes"].size() == 2);
  const Json now = Ps(st.s());
  for (const char* p : {"web.1", "web.2"}) {
    CHECK(Row(now, p)["pid"] == Row(before, p)["pid"]);
    CHECK(Row(now, p)["restarts"] == 0);
  }
}

TEST_CASE("signal: each bad argument is refused with what was wrong, and nothing is signalled") {
  SignalStage st;
  const Json before = Ps(st.s());
  auto refused = [&](std::vector<std::string> args, const std::string& says, int code = 1) {
    args.insert(args.begin(), "signal");
    e2e::ProcResult r = st.s().Ctl(args);
    INFO(r.err);
    CHECK(r.exit_code() == code);
    CHECK_THAT(r.err, Catch::Contains(says));
  };
  refused({"shop", "FOO"}, "'FOO' is not a signal");
  refused({"shop", "0"}, "'0' is not a signal");
  refused({"shop", "web.9", "HUP"}, "no process of 'web.9' runs in shop v1");
  refused({"shop", "worker", "HUP"}, "release v1 of 'shop' has no process type 'worker'");
  refused({"shop", "web.x", "HUP"}, "'web.x' is not a process: use TYPE or TYPE.N");
  refused({"shop", "web.0", "HUP"}, "'web.0' is not a process");
  refused({"nope", "HUP"}, "'nope'");
  refused({"shop"}, "", 2);
  st.s().CtlOk({"stop", "shop"});
  refused({"shop", "HUP"}, "app 'shop' is not running");
  CHECK(Row(before, "web.1")["restarts"] == 0);
}

}  // namespace
}  // namespace relsupd::run_test
