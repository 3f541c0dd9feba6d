// `relsupd ctl app delete` end to end: what it refuses, what goes (the
// processes with --stop, slots, artifacts, logs, held sockets, the dynamic
// uid), what stays (the history, the release rows), and the name created
// again.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/run/run_fixture.h"
#include "tests/support/fs.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace relsupd::run_test {
namespace {

using release_test::Exists;

// Whether a TCP connect to 127.0.0.1:port is accepted.
bool Accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// Files (not directories) in the tree under `dir`.
size_t FilesUnder(const std::string& dir) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (!it->is_directory(ec)) ++n;
  return n;
}

TEST_CASE("app delete: refused while it runs, and with --stop its processes, slots, artifacts, "
          "logs and socket go, its history stays, and the name starts again at the next number") {
  const int port = FreePort();
  Stage stage(FastConfig(), {}, "shop",
              {"--socket", "http=tcp://127.0.0.1:" + std::to_string(port)});
  // The same bytes in both lives of the name.
  const std::string procfile = "web: echo hello-from-$RELSUPD_RELEASE; exec sleep 1000\n";
  const std::string v1 = DeployProcfile(stage, procfile);
  CHECK(v1 == "v1");
  // A secret in the config of v2 (not live).
  CHECK(stage.CtlJson({"config", "set", "shop", "SECRET=old-tenant"})["release"] == "v2");
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  REQUIRE(WaitLog(stage, "hello-from-v1"));
  const std::set<pid_t> pids = Pids(Ps(stage));
  REQUIRE(pids.size() == 1);
  REQUIRE(Accepts(port));
  const std::string app_dir = stage.state() + "/apps/shop";
  const std::string log_dir = stage.state() + "/logs/shop";
  REQUIRE(Exists(app_dir + "/releases/v1"));
  REQUIRE(Exists(log_dir));

  // Refused while it runs: named, with the way out; nothing changed.
  e2e::ProcResult r = stage.Ctl({"app", "delete", "shop"});
  INFO(r.Describe());
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("app 'shop' has 1 process(es) running (v1 web.1)"));
  CHECK_THAT(r.err, Catch::Contains("--stop"));
  CHECK(Alive(*pids.begin()));
  CHECK(stage.CtlJson({"app", "show", "shop"})["name"] == "shop");
  CHECK(Exists(app_dir + "/releases/v1"));

  // --check says the same, and with --stop what it would do; nothing changes.
  r = stage.Ctl({"app", "delete", "shop", "--check"});
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("app 'shop' has 1 process(es) running (v1 web.1)"));
  Json check = stage.CtlJson({"app", "delete", "shop", "--stop", "--check"});
  CHECK(check["check"] == true);
  CHECK(check["deleted"] == false);
  CHECK(check["would_stop"] == 1);
  CHECK_THAT(stage.CtlOk({"app", "delete", "shop", "--stop", "--check"}),
             Catch::Contains("App 'shop' would be deleted (1 process stopped)"));
  CHECK(Alive(*pids.begin()));
  CHECK(Exists(app_dir + "/releases/v1"));

  // A `logs -f` of it, parked: it ends when the app goes.
  Follower follow(stage, {"logs", "shop", "-f"});
  REQUIRE(follow.WaitOut("hello-from-v1"));

  // With --stop.
  CHECK_THAT(stage.CtlOk({"app", "delete", "shop", "--stop"}),
             Catch::Contains("App 'shop' deleted (1 process stopped)"));
  CHECK(WaitGone(pids));
  CHECK(support::WaitUntil([&] { return !follow.running(); }, 10'000));
  CHECK_THAT(follow.err(), Catch::Contains("app 'shop' does not exist"));
  CHECK_FALSE(Accepts(port));
  CHECK(stage.CtlJson({"app", "list"}).empty());
  r = stage.Ctl({"app", "show", "shop"});
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("app 'shop' does not exist"));
  CHECK(stage.CtlJson({"ps"}).empty());
  CHECK_FALSE(Exists(app_dir));
  CHECK_FALSE(Exists(log_dir));
  CHECK(FilesUnder(stage.TmpDir()) == 0);
  CHECK(std::filesystem::is_empty(stage.TmpDir()));
  CHECK(FilesUnder(stage.ObjectsDir()) == 0);
  // Verbs about the app say it does not exist.
  r = stage.Ctl({"logs", "shop"});
  CHECK(r.exit_code() == 1);
  r = stage.Ctl({"app", "delete", "shop"});
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("app 'shop' does not exist"));

  // The history stays, and says what happened; the chain is intact.
  Json history = stage.CtlJson({"history", "shop"});
  REQUIRE(history.size() >= 3);
  const Json& last = history.back();
  CHECK(last["kind"] == "app-deleted");
  CHECK(last["detail"]["name"] == "shop");
  bool pruned_v1 = false, stopped = false;
  for (const Json& e : history) {
    if (e["kind"] == "pruned" && e["release"] == "v1")
      pruned_v1 = e["detail"]["reason"] == "app deleted";
    if (e["kind"] == "stopped") stopped = e["detail"] == "app delete";
  }
  CHECK(pruned_v1);
  CHECK(stopped);
  CHECK(stage.CtlJson({"history", "--verify"})["ok"] == true);
  CHECK(release_test::LedgerReleaseRows(stage.state() + "/ledger.db", "shop") == 2);

  // The name again: a new app, its socket bound again, its first release
  // v3, made from its own import of the same bytes, with none of the old
  // config, builds or releases.
  stage.CtlOk({"app", "create", "shop", "--socket",
               "http=tcp://127.0.0.1:" + std::to_string(port)});
  CHECK(stage.CtlJson({"app", "show", "shop"})["name"] == "shop");
  CHECK(stage.CtlJson({"build", "list", "shop"}).empty());
  const std::string v3 = DeployProcfile(stage, procfile);
  CHECK(v3 == "v3");
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  CHECK(Accepts(port));
  Json releases = stage.Releases();
  REQUIRE(releases.size() == 1);
  CHECK(releases[0]["release"] == "v3");
  CHECK(stage.CtlJson({"build", "list", "shop"}).size() == 1);
  CHECK(stage.CtlOk({"config", "show", "shop", "--reveal"}).find("old-tenant") ==
        std::string::npos);
  CHECK(stage.Ctl({"release", "show", "shop", "v2"}).exit_code() == 1);
  // Retention after the new import keeps its artifact.
  stage.CtlOk({"prune", "shop"});
  CHECK(stage.CtlJson({"config", "set", "shop", "X=1"})["release"] == "v4");
  // Its logs start afresh: nothing of v1's.
  REQUIRE(WaitLog(stage, "hello-from-v3"));
  for (const Json& rec : LogRecords(stage))
    CHECK(rec.value("text", "").find("hello-from-v1") == std::string::npos);
  // A daemon restart keeps it so.
  stage.Stop();
  stage.Restart();
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  CHECK(stage.CtlJson({"app", "list"}).size() == 1);
}

TEST_CASE("app delete: an app stopped by hand goes without --stop, and start-up removes what a "
          "crash left of a deleted app's directories") {
  Stage stage(FastConfig());
  DeployProcfile(stage, "web: exec sleep 1000\n");
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  stage.CtlOk({"stop", "shop"});
  Json done = stage.CtlJson({"app", "delete", "shop"});
  CHECK(done["deleted"] == true);
  CHECK(done["stopped"] == 0);
  CHECK(done["objects_removed"].get<int64_t>() > 0);
  // As if the daemon had died between the ledger's commit and the move.
  stage.Stop();
  const std::string app_dir = stage.state() + "/apps/shop";
  const std::string log_dir = stage.state() + "/logs/shop";
  std::filesystem::create_directories(app_dir + "/releases/v1");
  std::filesystem::create_directories(log_dir);
  // A directory the ledger never heard of is not touched.
  const std::string stray = stage.state() + "/apps/stray";
  std::filesystem::create_directories(stray);
  stage.Restart();
  CHECK_FALSE(Exists(app_dir));
  CHECK_FALSE(Exists(log_dir));
  CHECK(Exists(stray));
  CHECK_THAT(stage.daemon().Log(), Catch::Contains("app 'shop' was deleted"));
}

// What the app's processes write as they stop (a last line without its
// newline), and what a descendant that left their session still writes
// after (no cgroup here to end it), belongs to the deleted app: it must
// not come back as the first lines of a new app of the name, nor leave the
// store writing the new app's lines to a file the delete removed. (An
// instance's pipes are read up to its exit and closed with it, before the
// delete forgets the app's logs.)
TEST_CASE("app delete: output written as the processes stop is not kept for a new app of the name") {
  Stage stage(FastConfig());
  WritableDir marks;
  const std::string pid_file = marks.path + "/late.pid";
  const std::string procfile =
      "web: trap 'printf bye-from-old; exit 0' TERM; echo hello-from-old; "
      "setsid sh -c 'echo $$ > " + pid_file +
      "; while :; do echo late-from-old; sleep 0.002; done' & "
      "while :; do sleep 0.05; done\n";
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    ::unlink(pid_file.c_str());
    const std::string live = DeployProcfile(stage, procfile);
    REQUIRE(WaitLog(stage, "late-from-old"));
    stage.CtlOk({"app", "delete", "shop", "--stop"});
    // The writer that left the session: ended by the test (by pid), if
    // its write to the closed pipe did not end it already.
    pid_t late = 0;
    REQUIRE(support::WaitUntil([&] {
      late = static_cast<pid_t>(std::atoi(support::ReadFileOrEmpty(pid_file).c_str()));
      return late > 0;
    }, 10'000));
    ::kill(late, SIGKILL);
    stage.CtlOk({"app", "create", "shop"});
    DeployProcfile(stage, "web: echo hello-from-new-" + std::to_string(round) +
                              "; exec sleep 1000\n");
    // The new app's line is in its logs (not in a removed file), and
    // nothing of the old app's is.
    REQUIRE(WaitLog(stage, "hello-from-new-" + std::to_string(round)));
    for (const Json& rec : LogRecords(stage)) {
      INFO(rec.dump());
      CHECK(rec.value("text", "").find("-from-old") == std::string::npos);
    }
    stage.CtlOk({"app", "delete", "shop", "--stop"});
    stage.CtlOk({"app", "create", "shop"});
  }
}

TEST_CASE("app delete: a unix socket's file goes with the app, and a file put in its place stays") {
  support::TempDir tmp("relsupd-sock");
  const std::string path = tmp.path() + "/shop.sock";
  Stage stage(FastConfig(), {}, "shop", {"--socket", "http=unix:" + path});
  DeployProcfile(stage, "web: exec sleep 1000\n");
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  struct stat st{};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  stage.CtlOk({"app", "delete", "shop", "--stop"});
  CHECK(::lstat(path.c_str(), &st) != 0);
  CHECK(errno == ENOENT);

  // The name again, whose socket file is then replaced by a regular file:
  // the file is left alone.
  stage.CtlOk({"app", "create", "shop", "--socket", "http=unix:" + path});
  DeployProcfile(stage, "web: exec sleep 1000\n");
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  REQUIRE(::unlink(path.c_str()) == 0);
  { std::ofstream(path) << "not a socket"; }
  stage.CtlOk({"app", "delete", "shop", "--stop"});
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
}

TEST_CASE("app delete: a bad name and a bad param are refused") {
  Stage stage(FastConfig());
  e2e::ProcResult r = stage.Ctl({"app", "delete", "Bad_Name"});
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("Bad_Name"));
  Json raw = e2e::CallRaw(stage.socket(), "app.delete", {{"name", "shop"}, {"force", true}});
  REQUIRE(raw.contains("error"));
  CHECK_THAT(raw["error"]["message"].get<std::string>(), Catch::Contains("force"));
  raw = e2e::CallRaw(stage.socket(), "app.delete", {{"name", "shop"}, {"stop", "yes"}});
  REQUIRE(raw.contains("error"));
  CHECK_THAT(raw["error"]["message"].get<std::string>(), Catch::Contains("'stop' must be a boolean"));
  CHECK(stage.CtlJson({"app", "list"}).size() == 1);
}

TEST_CASE("app delete: a deleted app's dynamic uid is given out last, and never while a "
          "process runs as it") {
  if (::geteuid() != 0) {
    WARN("not root: apps get the daemon's own user, no dynamic uid to free");
    return;
  }
  for (uid_t id : {80000u, 80001u})
    if (::getpwuid(id) != nullptr) {
      WARN("uid " << id << " has a passwd entry here: not exercised");
      return;
    }
  // Beyond the default range (70000-79999), which other tests' apps use.
  Stage stage(FastConfig("app_uid_range: 80000-80001\n"));
  auto uid_of = [&](const std::string& app) {
    return stage.CtlJson({"app", "show", app})["uid"].get<uid_t>();
  };
  REQUIRE(uid_of("shop") == 80000);
  stage.CtlOk({"app", "delete", "shop"});
  // A uid never used comes first.
  stage.CtlOk({"app", "create", "second"});
  CHECK(uid_of("second") == 80001);
  // Then the retired one, but not while something of the old app runs.
  pid_t sleeper = ::fork();
  REQUIRE(sleeper >= 0);
  if (sleeper == 0) {
    if (::setgid(80000) != 0 || ::setuid(80000) != 0) ::_exit(127);
    ::execl("/bin/sleep", "sleep", "1000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  REQUIRE(support::WaitUntil([&] { return StatusField(sleeper, "Uid").find("80000") != std::string::npos; }));
  e2e::ProcResult r = stage.Ctl({"app", "create", "third"});
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("no free uid left in app_uid_range 80000-80001"));
  ::kill(sleeper, SIGKILL);
  int st = 0;
  ::waitpid(sleeper, &st, 0);
  stage.CtlOk({"app", "create", "third"});
  CHECK(uid_of("third") == 80000);
}

}  // namespace
}  // namespace relsupd::run_test
