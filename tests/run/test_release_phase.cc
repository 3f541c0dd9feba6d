// The release phase end to end: a release's `release:` command runs once
// before the release first goes live, gates the switch, and is never an
// instance. The real daemon and CLI; the marker files the commands write
// sit in a directory any user may write (the app runs as a dynamic uid).
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "tests/run/run_fixture.h"

namespace relsupd::run_test {
namespace {

using release_test::File;

constexpr auto& Slurp = support::ReadFileOrEmpty;

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

// A directory the app's user can write, for the commands' marker files.
struct Marks : WritableDir {
  std::string Text() const { return Slurp(path + "/log"); }
};

// Imports an artifact holding `entries`; the build's id.
std::string ImportBuild(Stage& stage, const std::vector<Entry>& entries) {
  return stage.Import(stage.Artifact("app.tar.gz", entries))["id"]
      .get<std::string>();
}

// The kinds and details of the app's history.
std::vector<std::string> PhaseEvents(Stage& stage) {
  std::vector<std::string> out;
  for (const auto& e : stage.CtlJson({"history", stage.app(), "-n", "100"})) {
    const std::string kind = e.value("kind", "");
    if (kind.rfind("release-phase-", 0) == 0)
      out.push_back(kind + " " + e.value("release", "") + " " +
                    e.value("detail", ""));
  }
  return out;
}

TEST_CASE(
    "a Procfile release: line runs once per release before its processes and "
    "is never an instance") {
  Marks marks;
  Stage stage(FastConfig());
  const std::string procfile =
      "release: echo \"release $RELSUPD_RELEASE $RELSUPD_PROCESS $(id -u)\" >> "
      "\"$MARKS/log\"\n"
      "web: echo \"web $RELSUPD_RELEASE\" >> \"$MARKS/log\"; exec sleep 300\n";
  const std::string build = ImportBuild(stage, {File("Procfile", procfile)});
  stage.Create(build, {"--set", "MARKS=" + marks.path});
  stage.Create(build, {"--set", "MARKS=" + marks.path});

  stage.CtlOk({"activate", "shop", "v1"});
  Json ps =
      WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  CHECK(ps.size() == 1);
  CHECK(Row(ps, "release.1").is_null());
  CHECK(support::WaitUntil([&] { return Count(marks.Text(), "web v1") == 1; },
                           10'000, 20));
  // The phase ran first, as RELSUPD_PROCESS=release, as the app's user.
  const int64_t uid =
      stage.CtlJson({"app", "show", "shop"})["uid"].get<int64_t>();
  const std::string app_uid = std::to_string(uid >= 0 ? uid : ::getuid());
  CHECK(marks.Text().rfind("release v1 release " + app_uid + "\nweb v1\n", 0) ==
        0);

  stage.CtlOk({"activate", "shop", "v2"});
  CHECK(support::WaitUntil([&] { return Count(marks.Text(), "web v2") == 1; },
                           10'000, 20));
  std::string text = marks.Text();
  CHECK(Count(text, "release v1") == 1);
  CHECK(Count(text, "release v2") == 1);
  CHECK(text.find("release v2") < text.find("web v2"));
  for (const auto& row : Ps(stage)) CHECK(row.value("type", "") == "web");

  // A rollback to v1, whose phase succeeded, does not run it again.
  stage.CtlOk({"rollback", "shop"});
  CHECK(Count(marks.Text(), "release v1") == 1);
  // --rerun-release-phase does.
  stage.CtlOk({"activate", "shop", "v2", "--rerun-release-phase"});
  CHECK(Count(marks.Text(), "release v2") == 2);
  CHECK(PhaseEvents(stage) ==
        std::vector<std::string>{"release-phase-started v1 echo \"release "
                                 "$RELSUPD_RELEASE $RELSUPD_PROCESS "
                                 "$(id -u)\" >> \"$MARKS/log\"",
                                 "release-phase-succeeded v1 exit 0",
                                 "release-phase-started v2 echo \"release "
                                 "$RELSUPD_RELEASE $RELSUPD_PROCESS "
                                 "$(id -u)\" >> \"$MARKS/log\"",
                                 "release-phase-succeeded v2 exit 0",
                                 "release-phase-started v2 echo \"release "
                                 "$RELSUPD_RELEASE $RELSUPD_PROCESS "
                                 "$(id -u)\" >> \"$MARKS/log\"",
                                 "release-phase-succeeded v2 exit 0"});

  // Never a process type: scale refuses it by name.
  auto scaled = stage.Ctl({"scale", "shop", "release=1"});
  CHECK(scaled.exit_code() == 1);
  CHECK(scaled.err.find("'release' is the release phase, not a process type") !=
        std::string::npos);
  CHECK(Ps(stage).size() == 1);
}

TEST_CASE(
    "a failing release phase leaves the old release live and serving and names "
    "its status and output") {
  Marks marks;
  const int port = FreePort();
  Stage stage(FastConfig(), {}, "shop",
              {"--socket", "http=tcp://127.0.0.1:" + std::to_string(port)});
  const std::string yaml =
      "release:\n"
      "  command: echo \"migrating $RELSUPD_RELEASE\"; echo \"x "
      "$RELSUPD_RELEASE\" >> "
      "\"$MARKS/log\"; if [ -n \"$FAIL\" ]; then echo 'no such table users' "
      ">&2; exit 3; fi\n"
      "processes:\n"
      "  web: {command: ./bin/hello, sockets: [http], ready: notify, scale: "
      "2}\n";
  const std::string file = stage.Artifact(
      "hello.tar.gz", {File("relsupd.yaml", yaml),
                       File("bin/hello", Slurp(RELSUPD_HELLO_BIN), 0755)});
  const std::string build = stage.Import(file)["id"].get<std::string>();
  stage.Create(build, {"--set", "MARKS=" + marks.path});
  stage.Create(build, {"--set", "MARKS=" + marks.path, "--set", "FAIL=1"});
  stage.CtlOk({"activate", "shop", "v1"});
  REQUIRE(Get(port, "/version") == "v1\n");
  const std::set<pid_t> before = Pids(Ps(stage));

  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, served{0};
  std::thread client([&] {
    while (!stop) {
      if (Get(port, "/version") == "v1\n")
        ++served;
      else
        ++failed;
    }
  });
  auto r = stage.Ctl({"activate", "shop", "v2"});
  stop = true;
  client.join();
  INFO(r.Describe());
  CHECK(r.exit_code() == 1);
  CHECK(r.err.find("release phase of v2 failed: exit 3; the live release is "
                   "unchanged") != std::string::npos);
  // Its last lines (stdout and stderr are two pipes: either may come first).
  CHECK(r.err.find("; its last lines:\n  ") != std::string::npos);
  CHECK(r.err.find("\n  migrating v2\n") != std::string::npos);
  CHECK(r.err.find("\n  no such table users\n") != std::string::npos);
  CHECK(failed == 0);
  CHECK(served > 0);
  // Nothing of v2 started, the link and v1's processes are as they were.
  Json ps = Ps(stage);
  CHECK(Pids(ps) == before);
  for (const auto& row : ps) CHECK(row.value("release", "") == "v1");
  char link[256] = {};
  CHECK(::readlink((stage.state() + "/apps/shop/current").c_str(), link,
                   sizeof link - 1) > 0);
  CHECK(std::string(link) == "releases/v1");
  Json status = stage.CtlJson({"status", "shop"});
  CHECK(status.value("active", "") == "v1");
  // Its output is in the app's logs as process `release`.
  bool logged = false;
  for (const auto& rec : Logs(stage, {"--process", "release"}))
    logged = logged || rec.value("text", "") == "no such table users";
  CHECK(logged);
  CHECK(PhaseEvents(stage).back() == "release-phase-failed v2 exit 3");

  // A release whose phase failed runs it again on the next activate.
  CHECK(stage.Ctl({"activate", "shop", "v2"}).exit_code() == 1);
  CHECK(Count(marks.Text(), "x v2") == 2);
  CHECK(Count(marks.Text(), "x v1") == 1);
}

TEST_CASE(
    "a release phase past its timeout is stopped and fails the activation") {
  Stage stage(FastConfig());
  const std::string yaml =
      "release:\n"
      "  command: echo \"phase-pid $$\"; exec sleep 300\n"
      "  timeout: 1s\n"
      "processes:\n"
      "  web:\n"
      "    command: sleep 300\n";
  const std::string build = ImportBuild(stage, {File("relsupd.yaml", yaml)});
  stage.Create(build);
  auto r = stage.Ctl({"activate", "shop", "v1"});
  CHECK(r.exit_code() == 1);
  CHECK(r.err.find(
            "release phase of v1 failed: timed out after 1s (signal TERM)") !=
        std::string::npos);
  const pid_t pid = WaitLoggedPid(stage, "phase-pid ");
  REQUIRE(pid > 0);
  CHECK(WaitGone({pid}));
  // A first activation: nothing is live and no link was made.
  CHECK(Ps(stage).empty());
  struct stat st;
  CHECK(::lstat((stage.state() + "/apps/shop/current").c_str(), &st) != 0);
  CHECK(PhaseEvents(stage).back() ==
        "release-phase-failed v1 timed out after 1s (signal TERM)");
}

TEST_CASE(
    "a daemon stopped during a release phase ends it, and comes back with the "
    "old release live and the new one not marked as passed") {
  Stage stage(FastConfig());
  const std::string yaml =
      "release:\n"
      "  command: if [ \"$HOLD\" = 1 ]; then echo hold-pid $$; exec sleep 300; fi\n"
      "processes:\n"
      "  web:\n"
      "    command: sleep 300\n";
  const std::string build = ImportBuild(stage, {File("relsupd.yaml", yaml)});
  stage.Create(build, {"--set", "HOLD=0"});
  stage.CtlOk({"activate", "shop", "v1"});
  stage.CtlOk({"config", "set", "shop", "HOLD=1"});
  stage.CtlOk({"activate", "shop", "v2", "--no-wait"});
  const pid_t phase = WaitLoggedPid(stage, "hold-pid ");
  REQUIRE(phase > 0);
  stage.Stop();  // SIGTERM, exit 0: the phase does not hold the daemon
  CHECK(WaitGone({phase}));
  stage.Restart();
  CHECK(stage.CtlJson({"status", "shop"})["active"] == "v1");
  Json ps = WaitPs(
      stage,
      [](const Json& rows) {
        Json r = Row(rows, "web.1");
        return r.is_object() && r["state"] == "ready";
      },
      20'000, "web.1 ready after the restart");
  for (const Json& r : ps) CHECK(r["release"] == "v1");
  for (const std::string& e : PhaseEvents(stage))
    CHECK(e.rfind("release-phase-succeeded v2", 0) != 0);
}

}  // namespace
}  // namespace relsupd::run_test
