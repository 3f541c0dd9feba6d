// E2E: crash safety of the release stage. A daemon started with
// RELSUPD_FAILPOINT=NAME _exit(137)s at that point of release creation or
// pruning (daemon/base/failpoint.h). After a restart without it, the
// release either does not exist anywhere (no row, no slot) or exists
// completely and verifies; tmp/ is empty and no object is left unused; the
// next release gets the next unused number.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "daemon/base/clock.h"
#include "daemon/ledger/ledger.h"
#include "tests/release/release_fixture.h"

namespace relsupd::release_test {
namespace {

using e2e::ProcResult;

std::optional<Json> FindRelease(const Json& releases, const std::string& name) {
  for (const auto& r : releases)
    if (r["release"] == name) return r;
  return std::nullopt;
}

// Runs `args`, which must make the daemon die at its failpoint: the CLI
// fails (the daemon hung up: 1 or 3) and the daemon exits with 137.
void ExpectDeathAtFailpoint(Stage& s, const std::vector<std::string>& args) {
  ProcResult r = s.Ctl(args);
  INFO(r.Describe());
  CHECK((r.exit_code() == 1 || r.exit_code() == 3));
  e2e::ExitStatus st = s.daemon().Wait(10'000);
  INFO("daemon log:\n" << s.daemon().Log());
  REQUIRE(st.Exited(137));
}

// Starts a daemon armed at `failpoint`, makes release v1 (the daemon dies),
// restarts it and checks that v1 is all there (`committed`) or not at all.
void CrashDuringRelease(const std::string& failpoint, bool committed) {
  INFO("failpoint " << failpoint);
  Stage s("", {"RELSUPD_FAILPOINT=" + failpoint});
  const std::string id = s.Import(s.Artifact(
      "app.tar.gz", {Procfile(), Dir("bin"), File("bin/web", "#!/bin/sh\n", 0755),
                     File("data.bin", Noise(200'000)), Symlink("web", "bin/web")}))["id"];
  ExpectDeathAtFailpoint(s, {"release", "create", "shop", "--build", id, "--set", "K=v"});

  s.Restart();
  CHECK(ListDir(s.TmpDir()).empty());
  const Json releases = s.Releases();
  const auto v1 = FindRelease(releases, "v1");
  if (v1) {
    // Complete: a slot that verifies, with the config it was made with.
    CHECK(Exists(s.Slot(1)));
    ProcResult verify = s.Ctl({"release", "verify", "shop", "v1"});
    INFO(verify.Describe());
    CHECK(verify.exit_code() == 0);
    CHECK(s.CtlJson({"config", "show", "shop", "--reveal"})["config"] == Json{{"K", "v"}});
  } else {
    // Absent: no slot either.
    CHECK_FALSE(Exists(s.Slot(1)));
    CHECK(ListDir(s.state() + "/apps/shop/releases").empty());
  }
  // Only a committed release exists.
  CHECK(v1.has_value() == committed);
  CHECK(OrphanObjects(s.ObjectsDir()) == 0);
  // The build survives either way.
  CHECK(s.CtlJson({"build", "list", "shop"}).size() == 1);

  // The next release gets the next unused number and verifies.
  const std::string next = committed ? "v2" : "v1";
  CHECK(s.Create(id) == next);
  CHECK(s.Ctl({"release", "verify", "shop", next}).exit_code() == 0);
}

// One test case per failpoint, so that ctest can run them side by side.
TEST_CASE("crash safety: release killed at after-unpack: no release", "[release][crash]") {
  CrashDuringRelease("after-unpack", false);
}
TEST_CASE("crash safety: release killed at before-seal: no release", "[release][crash]") {
  CrashDuringRelease("before-seal", false);
}
TEST_CASE("crash safety: release killed at before-rename: no release", "[release][crash]") {
  CrashDuringRelease("before-rename", false);
}
TEST_CASE("crash safety: release killed at after-rename: no release", "[release][crash]") {
  CrashDuringRelease("after-rename", false);
}
TEST_CASE("crash safety: release killed at before-commit: no release", "[release][crash]") {
  CrashDuringRelease("before-commit", false);
}
TEST_CASE("crash safety: release killed at after-commit: a complete release",
          "[release][crash]") {
  CrashDuringRelease("after-commit", true);
}

TEST_CASE("crash safety: tmp/ is emptied at start-up, even of sealed leftovers",
          "[release][crash]") {
  Stage s;
  s.Stop();
  const std::string leftover = s.TmpDir() + "/shop-v9-XXXXXX";
  std::filesystem::create_directories(leftover + "/bin");
  s.dir().WriteFile("state/tmp/shop-v9-XXXXXX/bin/x", "x");
  s.dir().WriteFile("state/tmp/import-abcdef", "partial artifact");
  ::chmod((leftover + "/bin").c_str(), 0555);
  ::chmod(leftover.c_str(), 0555);
  s.Restart();
  CHECK(ListDir(s.TmpDir()).empty());
}

// Pruning needs releases that were activated, and activation is not there
// yet. The ledger's triggers refuse UPDATE and DELETE, not INSERT: with the
// daemon stopped, the test appends `activated` events through the Ledger
// API itself, so the hash chain stays intact (history --verify passes).
void RecordActivations(const std::string& state, const std::vector<std::string>& releases) {
  auto ledger = Ledger::Open(state + "/ledger.db", RealClock());
  INFO(ledger.status().message());
  REQUIRE(ledger.ok());
  for (const auto& r : releases) {
    Status s = (*ledger)->AppendEvent("shop", EventKind::kActivated, *ReleaseId::Parse(r), Actor{0, "release-test"},
                                      R"({"note":"recorded by the crash test"})");
    INFO(s.message());
    REQUIRE(s.ok());
  }
}

// Makes v1..v3 with v1 beyond keep_releases, prunes with a daemon armed at
// `failpoint`, restarts it and checks that recovery finished the prune.
void CrashDuringPrune(const std::string& failpoint) {
  INFO("failpoint " << failpoint);
  Stage s("", {}, "shop", {"--keep", "1"});
  const std::string a = s.Import(s.Artifact(
      "a.tar.gz", {Procfile(), File("only-a.bin", Noise(50'000, 7)), File("shared", "s\n")}))["id"];
  const Json b_build = s.Import(s.Artifact(
      "b.tar.gz", {Procfile(), File("only-b.bin", Noise(50'000, 8)), File("shared", "s\n")}));
  const std::string b = b_build["id"];
  CHECK(s.Create(a) == "v1");
  CHECK(s.Create(b) == "v2");
  CHECK(s.CtlOk({"config", "set", "shop", "K=1"}) == "v3\n");
  std::string build_a_file;
  for (const auto& f : ListDir(s.BuildsDir()))
    if (f.rfind(a, 0) == 0) build_a_file = f;
  REQUIRE_FALSE(build_a_file.empty());
  s.Stop();
  // v3 active, v2 the rollback target, v1 beyond keep_releases=1.
  RecordActivations(s.state(), {"v1", "v2", "v3"});

  s.Restart({"RELSUPD_FAILPOINT=" + failpoint});
  ExpectDeathAtFailpoint(s, {"prune", "shop"});
  s.Restart();

  CHECK(ListDir(s.TmpDir()).empty());
  const Json releases = s.Releases();
  REQUIRE(releases.size() == 3);
  // v1's pruned event was recorded before the crash: recovery finishes the
  // job. Its row stays (releases are immutable), marked pruned.
  CHECK(releases[0]["release"] == "v1");
  CHECK(releases[0]["pruned"] == true);
  CHECK_FALSE(Exists(s.Slot(1)));
  // The artifact only v1 used and the objects only v1 used are gone too.
  CHECK_FALSE(Exists(s.BuildsDir() + "/" + build_a_file));
  CHECK(OrphanObjects(s.ObjectsDir()) == 0);
  // The others are whole.
  CHECK(releases[1]["pruned"] == false);
  CHECK(releases[2]["pruned"] == false);
  CHECK(s.Ctl({"release", "verify", "shop", "v2"}).exit_code() == 0);
  CHECK(s.Ctl({"release", "verify", "shop", "v3"}).exit_code() == 0);
  ProcResult pruned = s.Ctl({"release", "verify", "shop", "v1"});
  CHECK(pruned.exit_code() == 1);
  CHECK_THAT(pruned.err, Catch::Contains("pruned"));

  // Nothing more to prune, and only one pruned event.
  CHECK_THAT(s.CtlOk({"prune", "shop"}), Catch::Contains("Nothing to prune"));
  int pruned_events = 0;
  for (const auto& e : s.CtlJson({"history", "shop"}))
    pruned_events += e.value("kind", "") == "pruned";
  CHECK(pruned_events == 1);
  CHECK(s.Ctl({"history", "--verify"}).exit_code() == 0);
  CHECK(s.Create(b) == "v4");
}

TEST_CASE("crash safety: prune killed at after-prune-event: recovery removes the slot",
          "[release][crash][prune]") {
  CrashDuringPrune("after-prune-event");
}
TEST_CASE("crash safety: prune killed at after-prune-remove: recovery removes the artifact",
          "[release][crash][prune]") {
  CrashDuringPrune("after-prune-remove");
}

}  // namespace
}  // namespace relsupd::release_test
