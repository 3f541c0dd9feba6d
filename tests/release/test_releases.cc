// E2E: `ctl release create|show|diff|verify`, `ctl releases`, `ctl config
// set|unset|show` with the real binary: numbering, refusals that leave
// nothing behind, config that makes new releases and never changes old
// ones, masking, tamper detection, the content store and the ledger's
// immutable releases table.
#include <sqlite3.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/release/release_fixture.h"
#include "tests/support/cli.h"
#include "tests/support/proc.h"

namespace relsupd::release_test {
namespace {

using e2e::ProcResult;

bool IsHex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// No release vN anywhere: no slot, no row, nothing in tmp/.
void ExpectNoRelease(Stage& s, int64_t n) {
  INFO("release v" << n);
  CHECK_FALSE(Exists(s.Slot(n)));
  for (const auto& r : s.Releases()) CHECK(r["release"] != "v" + std::to_string(n));
  CHECK(ListDir(s.TmpDir()).empty());
  ProcResult show = s.Ctl({"release", "show", s.app(), "v" + std::to_string(n)});
  CHECK(show.exit_code() == 1);
}

std::vector<Entry> GoodApp(const std::string& version = "1") {
  return {Procfile(), Dir("bin"), File("bin/web", "#!/bin/sh\necho " + version + "\n", 0755),
          File("app.txt", "version " + version + "\n"), File("other.txt", "other\n"),
          Symlink("current-web", "bin/web")};
}

// Imports GoodApp() and creates v1 from it, then v2 with `setting`
// (KEY=VALUE); returns the build's id.
std::string ImportWithTwoReleases(Stage& s, const std::string& setting) {
  const std::string id = s.Import(s.Artifact("app.tar.gz", GoodApp()))["id"];
  CHECK(s.Create(id) == "v1");
  CHECK(s.Create(id, {"--set", setting}) == "v2");
  return id;
}

TEST_CASE("release create: numbers start at v1, refusals leave no release and use no number",
          "[release][create]") {
  Stage s;
  const std::string id = ImportWithTwoReleases(s, "A=1");

  struct Refusal {
    std::vector<std::string> args;
    std::vector<std::string> message_has;
    int exit_code = 1;  // 2: a usage error the CLI finds before any request
  };
  const std::vector<Refusal> refusals = {
      {{"release", "create", "shop", "--build", "deadbeef"}, {"app 'shop' has no build 'deadbeef'"}},
      {{"release", "create", "shop", "--build", "not-hex"}, {"build id 'not-hex'", "hex"}},
      {{"release", "create", "nosuch", "--build", id}, {"app 'nosuch' does not exist"}},
      {{"release", "show", "shop", "v9"}, {"app 'shop' has no release v9"}},
      {{"release", "verify", "shop", "v9"}, {"app 'shop' has no release v9"}},
      {{"release", "show", "nosuch", "v1"}, {"app 'nosuch' does not exist"}},
      {{"releases", "nosuch"}, {"app 'nosuch' does not exist"}},
      // Config keys the daemon would refuse are usage errors in the CLI,
      // before any request.
      {{"release", "create", "shop", "--build", id, "--set", "1BAD=x"},
       {"config key '1BAD' is not valid"}, 2},
      {{"release", "create", "shop", "--build", id, "--set", "BAD-KEY=x"},
       {"config key 'BAD-KEY' is not valid"}, 2},
      {{"release", "create", "shop", "--build", id, "--set", "RELSUPD_APP=x"}, {"reserved"}, 2},
      {{"release", "create", "shop", "--build", id, "--set", "LISTEN_FDS=3"}, {"reserved"}, 2},
  };
  for (const Refusal& r : refusals) {
    ProcResult p = s.Ctl(r.args);
    INFO(p.Describe());
    CHECK(p.exit_code() == r.exit_code);
    CHECK(p.out.empty());
    for (const auto& part : r.message_has) CHECK_THAT(p.err, Catch::Contains(part));
  }
  // The daemon checks them again for a client that is not this CLI.
  for (const char* key : {"1BAD", "BAD-KEY", "RELSUPD_APP", "LISTEN_FDS"}) {
    Json reply = support::CallRaw(s.socket(), "release.create",
                                  {{"app", "shop"}, {"build", id}, {"set", {{key, "x"}}}});
    INFO(reply.dump());
    CHECK_THAT(reply["error"]["message"].get<std::string>(),
               Catch::Contains("config key '" + std::string(key) + "'"));
  }
  // A usage error: no '='.
  ProcResult usage = s.Ctl({"release", "create", "shop", "--build", id, "--set", "NOEQUALS"});
  CHECK(usage.exit_code() == 2);
  CHECK_THAT(usage.err, Catch::Contains("KEY=VALUE"));
  ExpectNoRelease(s, 3);
  CHECK(s.Releases().size() == 2);

  // The refusals used no number.
  CHECK(s.Create(id) == "v3");

  // releases --json: an array of objects with the documented fields.
  Json all = s.Releases();
  REQUIRE(all.is_array());
  REQUIRE(all.size() == 3);
  for (size_t i = 0; i < all.size(); ++i) {
    const Json& r = all[i];
    INFO(r.dump(2));
    REQUIRE(r.is_object());
    CHECK(r["release"] == "v" + std::to_string(i + 1));
    CHECK(r["build"] == id);
    REQUIRE(r["digest"].is_string());
    CHECK(r["digest"].get<std::string>().size() == 64);
    CHECK(IsHex(r["digest"]));
    REQUIRE(r["created_at"].is_string());
    CHECK_FALSE(r["created_at"].get<std::string>().empty());
    REQUIRE(r["created_by"].is_string());
    if (::geteuid() == 0) CHECK(r["created_by"] == "root");
    CHECK(r["active"] == false);
  }
  // v3 took the newest config (A=1): same build and config as v2, so the
  // same content digest; v1's config differs, and so does its digest.
  CHECK(all[1]["digest"] == all[2]["digest"]);
  CHECK(all[0]["digest"] != all[1]["digest"]);

  // The table lists them.
  std::string table = s.CtlOk({"releases", "shop"});
  CHECK_THAT(table, Catch::Contains("RELEASE"));
  CHECK_THAT(table, Catch::Contains("v3"));

  // release show.
  Json show = s.CtlJson({"release", "show", "shop", "v2"});
  CHECK(show["release"] == "v2");
  CHECK(show["slot"] == s.Slot(2));
  CHECK(show["files"] == 4);
  CHECK(show["config_keys"] == Json::array({"A"}));
  std::string human = s.CtlOk({"release", "show", "shop", "3"});
  CHECK_THAT(human, Catch::Contains("v3"));
  CHECK_THAT(human, Catch::Contains(id));

  // The build now lists its releases.
  Json builds = s.CtlJson({"build", "list", "shop"});
  REQUIRE(builds.size() == 1);
  CHECK(builds[0]["releases"] == Json::array({"v1", "v2", "v3"}));

  // Numbers are per app: another app starts at v1.
  s.CtlOk({"app", "create", "other"});
  Json other = e2e::CtlJson(s.socket(), {"build", "import", "other", s.dir().Path("app.tar.gz")});
  CHECK(other["new"] == true);
  CHECK(other["id"] == id);
  CHECK(s.CtlOk({"release", "create", "other", "--build", id}) == "v1\n");
  CHECK(s.Releases().size() == 3);
}

TEST_CASE("release create: the next request right after a release is not refused as busy",
          "[release][create]") {
  // A script that makes releases one after the other (or sets config right
  // after a release) must not be told the app "has a release being made"
  // once the previous command has returned.
  Stage s;
  const std::string id = s.Import(s.Artifact("app.tar.gz", GoodApp()))["id"];
  for (int i = 1; i <= 10; ++i) {
    ProcResult create = s.Ctl({"release", "create", "shop", "--build", id});
    INFO("round " << i << ": " << create.Describe());
    REQUIRE(create.exit_code() == 0);
    ProcResult set = s.Ctl({"config", "set", "shop", "ROUND=" + std::to_string(i)});
    INFO(set.Describe());
    REQUIRE(set.exit_code() == 0);
  }
  CHECK(s.Releases().size() == 20);
}

TEST_CASE("release create: a bad process file or a link escaping through another link "
          "is refused at release time and leaves nothing behind",
          "[release][create][bad-input]") {
  Stage s;
  struct Case {
    std::string name;
    std::vector<Entry> entries;
    std::vector<std::string> message_has;
  };
  const std::vector<Case> cases = {
      {"YAML syntax error",
       {File("relsupd.yaml", "processes:\n  web:\n    command: [./bin/web\n")},
       {"relsupd.yaml:", "invalid YAML"}},
      {"unknown key",
       {File("relsupd.yaml", "processes:\n  web:\n    command: ./bin/web\n    colour: red\n")},
       {"relsupd.yaml:4:5", "unknown key 'colour'"}},
      {"no process file", {File("README", "hi\n")}, {"no process file"}},
      // Named as the artifact names them, never by the staging path.
      {"process file over 1 MiB",
       {File("relsupd.yaml", "# " + std::string(1 << 20, 'x') + "\n")},
       {"relsupd.yaml is larger than 1048576 bytes, the most a process file may have"}},
      {"process file that is a directory",
       {Dir("relsupd.yaml"), File("relsupd.yaml/x", "")},
       {"cannot read relsupd.yaml: Is a directory"}},
      {"symlink escaping through an earlier symlink",
       {Procfile(), Symlink("s", "."), Symlink("t", "s/..")},
       {"'t'", "leaves the slot"}},
  };
  for (const Case& c : cases) {
    INFO("case: " << c.name);
    // The archive itself is fine: import takes it.
    const std::string id = s.Import(s.Artifact("bad.tar.gz", c.entries))["id"];
    ProcResult p = s.Ctl({"release", "create", "shop", "--build", id});
    INFO(p.Describe());
    CHECK(p.exit_code() == 1);
    for (const auto& part : c.message_has) CHECK_THAT(p.err, Catch::Contains(part));
    CHECK_THAT(p.err, !Catch::Contains(s.TmpDir()));
    ExpectNoRelease(s, 1);
    CHECK(s.Releases().empty());
  }
  s.Stop();
  CHECK(LedgerReleaseRows(s.state() + "/ledger.db", "shop") == 0);
}

TEST_CASE("release create: a refused release leaves no unused objects in the content store",
          "[release][create][bad-input][objects]") {
  // Files are stored in objects/ while the artifact is unpacked, before the
  // process file is checked. Nothing should outlive the refusal.
  Stage s;
  const std::string id = s.Import(s.Artifact(
      "bad.tar.gz", {File("relsupd.yaml", "processes:\n  web: {command: x, colour: red}\n"),
                     File("big.bin", Noise(100'000))}))["id"];
  ProcResult p = s.Ctl({"release", "create", "shop", "--build", id});
  INFO(p.Describe());
  REQUIRE(p.exit_code() == 1);
  ExpectNoRelease(s, 1);
  CHECK(OrphanObjects(s.ObjectsDir()) == 0);
}

TEST_CASE("release create: an artifact that writes through its own symlink is refused "
          "or makes a release that verifies",
          "[release][create][bad-input][symlink]") {
  // "d -> sub" then "d/f": the body lands in sub/f through the link. The
  // release must not be one that fails `release verify` the moment it is
  // made.
  Stage s;
  const std::string file = s.Artifact(
      "through.tar.gz",
      {Procfile(), Dir("sub"), Symlink("d", "sub"), File("d/f", "through the link\n")});
  ProcResult import = s.Ctl({"--json", "build", "import", "shop", file});
  INFO(import.Describe());
  if (import.exit_code() != 0) {
    // Refused at import: nothing stored.
    CHECK(import.exit_code() == 1);
    CHECK_THAT(import.err, Catch::Contains("'d/f'"));
    CHECK(ListDir(s.BuildsDir()).empty());
    CHECK(ListDir(s.TmpDir()).empty());
    return;
  }
  const std::string id = Json::parse(import.out)["id"];
  ProcResult create = s.Ctl({"release", "create", "shop", "--build", id});
  INFO(create.Describe());
  if (create.exit_code() != 0) {
    CHECK(create.exit_code() == 1);
    CHECK_THAT(create.err, Catch::Contains("'d/f'"));
    ExpectNoRelease(s, 1);
    return;
  }
  ProcResult verify = s.Ctl({"release", "verify", "shop", "v1"});
  INFO(verify.Describe());
  CHECK(verify.exit_code() == 0);
}

TEST_CASE("release create --reuse answers a kept release of the same build and config, "
          "and makes one otherwise",
          "[release][reuse]") {
  Stage s;
  const std::string a = s.Import(s.Artifact("a.tar.gz", GoodApp("1")))["id"];
  const std::string b = s.Import(s.Artifact("b.tar.gz", GoodApp("2")))["id"];
  CHECK(s.Create(a, {"--set", "MODE=prod"}) == "v1");
  auto create = [&](const std::string& build, const std::string& mode) {
    return s.CtlJson({"release", "create", "shop", "--build", build, "--set", "MODE=" + mode,
                      "--reuse"});
  };
  Json r = create(a, "prod");
  CHECK(r["release"] == "v1");
  CHECK(r["new"] == false);
  CHECK(r["reused"] == true);
  CHECK(s.Releases().size() == 1);
  // The human form: vN on stdout, why on stderr.
  e2e::ProcResult human = s.Ctl({"release", "create", "shop", "--build", a, "--set", "MODE=prod",
                                 "--reuse"});
  CHECK(human.exit_code() == 0);
  CHECK(human.out == "v1\n");
  CHECK_THAT(human.err, Catch::Contains("reused v1: it has that build and that config"));

  // Another config, or another build: a new release.
  r = create(a, "staging");
  CHECK(r["release"] == "v2");
  CHECK(r["new"] == true);
  CHECK(r["reused"] == false);
  r = create(b, "prod");
  CHECK(r["release"] == "v3");
  CHECK(r["new"] == true);
  // Back to the first: v1 is answered, not a fourth release.
  CHECK(create(a, "prod")["release"] == "v1");
  CHECK(create(b, "prod")["release"] == "v3");
  // Without --reuse the same request makes a release, as before.
  CHECK(s.Create(a, {"--set", "MODE=prod"}) == "v4");
  CHECK(create(a, "prod")["release"] == "v4");  // the newest such
  CHECK(s.Releases().size() == 4);
  // Nothing was recorded for the answers that made no release.
  int released = 0;
  for (const Json& e : s.CtlJson({"history", "shop"})) released += e["kind"] == "released";
  CHECK(released == 4);
}

TEST_CASE("config set/unset make releases from the newest build, old configs never change",
          "[release][config]") {
  Stage s;
  const std::string a = s.Import(s.Artifact("a.tar.gz", GoodApp("1")))["id"];
  const std::string b = s.Import(s.Artifact("b.tar.gz", GoodApp("2")))["id"];
  const std::string env_file = s.dir().WriteFile(
      "shop.env", "# secrets\nexport SECRET=\"s3cret\"\n\nDATABASE_URL=postgres://db/shop\n");
  CHECK(s.Create(a, {"--env-file", env_file, "--set", "MODE=prod"}) == "v1");
  CHECK(s.Create(b) == "v2");  // inherits the config
  CHECK(s.CtlOk({"config", "set", "shop", "FOO=bar", "MODE=staging"}) == "v3\n");
  CHECK(s.CtlOk({"config", "unset", "shop", "SECRET"}) == "v4\n");

  Json all = s.Releases();
  REQUIRE(all.size() == 4);
  CHECK(all[0]["build"] == a);
  CHECK(all[1]["build"] == b);
  CHECK(all[2]["build"] == b);  // the newest release's build, not the first
  CHECK(all[3]["build"] == b);

  auto config_of = [&](const std::string& rel) {
    return s.CtlJson({"config", "show", "shop", "--release", rel, "--reveal"})["config"];
  };
  const Json v1 = {{"DATABASE_URL", "postgres://db/shop"}, {"SECRET", "s3cret"}, {"MODE", "prod"}};
  CHECK(config_of("v1") == v1);
  CHECK(config_of("v2") == v1);
  CHECK(config_of("v3") == Json({{"DATABASE_URL", "postgres://db/shop"},
                                 {"SECRET", "s3cret"},
                                 {"MODE", "staging"},
                                 {"FOO", "bar"}}));
  const Json v4 = {{"DATABASE_URL", "postgres://db/shop"}, {"MODE", "staging"}, {"FOO", "bar"}};
  CHECK(config_of("v4") == v4);

  // Each slot holds its own config, readable by the owner only.
  for (int n = 1; n <= 4; ++n) {
    INFO("v" << n);
    const std::string env = s.Slot(n) + "/.relsupd/env.json";
    CHECK((Lstat(env).st_mode & 07777) == 0400);
    CHECK(Json::parse(ReadText(env)) == config_of("v" + std::to_string(n)));
  }

  // show masks values by default, names the release, and reveals on request.
  std::string masked = s.CtlOk({"config", "show", "shop"});
  CHECK_THAT(masked, Catch::StartsWith("# v4\n"));
  CHECK_THAT(masked, Catch::Contains("DATABASE_URL=********"));
  CHECK_THAT(masked, Catch::Contains("FOO=********"));
  CHECK_THAT(masked, !Catch::Contains("postgres"));
  CHECK_THAT(masked, !Catch::Contains("bar"));
  CHECK_THAT(masked, !Catch::Contains("SECRET"));
  Json masked_json = s.CtlJson({"config", "show", "shop"});
  CHECK(masked_json["masked"] == true);
  CHECK(masked_json["config"]["DATABASE_URL"] == "********");
  std::string revealed = s.CtlOk({"config", "show", "shop", "--reveal"});
  CHECK_THAT(revealed, Catch::Contains("DATABASE_URL=postgres://db/shop"));
  CHECK_THAT(revealed, Catch::Contains("FOO=bar"));
  std::string old = s.CtlOk({"config", "show", "shop", "--release", "v1", "--reveal"});
  CHECK_THAT(old, Catch::StartsWith("# v1\n"));
  CHECK_THAT(old, Catch::Contains("SECRET=s3cret"));

  // Refused changes make no release.
  ProcResult missing = s.Ctl({"config", "unset", "shop", "NOPE"});
  INFO(missing.Describe());
  CHECK(missing.exit_code() == 1);
  CHECK_THAT(missing.err, Catch::Contains("'NOPE' is not set"));
  // A key the daemon would refuse is a usage error in the CLI.
  ProcResult bad = s.Ctl({"config", "set", "shop", "9LIVES=x"});
  INFO(bad.Describe());
  CHECK(bad.exit_code() == 2);
  CHECK_THAT(bad.err, Catch::Contains("'9LIVES' is not valid"));
  ProcResult reserved = s.Ctl({"config", "set", "shop", "NOTIFY_SOCKET=/x"});
  CHECK(reserved.exit_code() == 2);
  CHECK_THAT(reserved.err, Catch::Contains("reserved"));
  ExpectNoRelease(s, 5);
  CHECK(config_of("v4") == v4);

  // config on an app without releases.
  s.CtlOk({"app", "create", "empty"});
  CHECK_THAT(s.CtlOk({"config", "show", "empty"}), Catch::Contains("no release yet"));
  ProcResult none = s.Ctl({"config", "set", "empty", "A=1"});
  CHECK(none.exit_code() == 1);
  CHECK_THAT(none.err, Catch::Contains("has no release yet"));
}

TEST_CASE("release create: a daemon that is not root makes, seals and runs a release",
          "[release][nonroot]") {
  // Moving a sealed (0555) directory to another parent needs write
  // permission on it, which only root has without asking: the slot is
  // sealed after its move.
  std::string group;
  auto nobody = e2e::NobodyOrSkip(&group);
  if (!nobody) return;
  e2e::TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all |
                                               std::filesystem::perms::others_exec);
  const std::string home = dir.Path("home");
  std::filesystem::create_directory(home);
  REQUIRE(::chown(home.c_str(), nobody->uid, nobody->gid) == 0);
  const std::string nobody_id = std::to_string(nobody->uid);
  e2e::DaemonProcess d(dir, {.state_dir = home + "/state",
                             .socket = home + "/relsupd.sock",
                             .wrap = {"/usr/bin/setpriv", "--reuid=" + nobody_id,
                                      "--regid=" + std::to_string(nobody->gid),
                                      "--clear-groups", "--"}});
  CHECK(support::StatusField(d.pid(), "Uid").rfind(nobody_id + "\t", 0) == 0);
  e2e::CtlOk(d.socket(), {"app", "create", "shop"});
  const std::string artifact = dir.Path("app.tar.gz");
  WriteArchive(artifact, {File("Procfile", "web: exec sleep 1000\n")});
  const std::string id = e2e::CtlJson(d.socket(), {"build", "import", "shop", artifact})["id"];
  ProcResult made = e2e::RunCtl(d.socket(), {"release", "create", "shop", "--build", id});
  INFO(made.Describe() << d.Log());
  REQUIRE(made.exit_code() == 0);
  CHECK(made.out == "v1\n");
  const std::string slot = home + "/state/apps/shop/releases/v1";
  CHECK((Lstat(slot).st_mode & 07777) == 0555);
  CHECK(Lstat(slot).st_uid == nobody->uid);
  CHECK(ListDir(home + "/state/tmp").empty());
  // It runs, as the daemon's user (a daemon that is not root runs apps as
  // itself).
  e2e::CtlOk(d.socket(), {"activate", "shop", "v1"});
  Json ps = e2e::CtlJson(d.socket(), {"ps", "shop"});
  REQUIRE(ps.size() == 1);
  CHECK(ps[0]["state"] == "ready");
  CHECK(ps[0]["uid"] == nobody->uid);
}

TEST_CASE("config show --reveal needs the change right", "[release][config][access]") {
  std::string group;
  auto nobody = e2e::NobodyOrSkip(&group);
  if (!nobody) return;
  Stage s("socket_mode: \"0666\"\nsocket_group: " + group +
          "\nadmin_group: relsupd-e2e-no-such-group\n");
  const std::string id = s.Import(s.Artifact("a.tar.gz", GoodApp()))["id"];
  s.Create(id, {"--set", "SECRET=s3cret"});
  const e2e::RunOptions as_nobody{.as = nobody};

  ProcResult masked = s.Ctl({"config", "show", "shop"}, as_nobody);
  INFO(masked.Describe());
  CHECK(masked.exit_code() == 0);
  CHECK_THAT(masked.out, Catch::Contains("SECRET=********"));

  ProcResult reveal = s.Ctl({"config", "show", "shop", "--reveal"}, as_nobody);
  INFO(reveal.Describe());
  CHECK(reveal.exit_code() == 1);
  CHECK_THAT(reveal.err, Catch::Contains("permission denied"));
  CHECK_THAT(reveal.out + reveal.err, !Catch::Contains("s3cret"));

  // Nor may nobody make releases or change config.
  ProcResult set = s.Ctl({"config", "set", "shop", "A=1"}, as_nobody);
  CHECK(set.exit_code() == 1);
  CHECK_THAT(set.err, Catch::Contains("permission denied"));
  ProcResult create = s.Ctl({"release", "create", "shop", "--build", id}, as_nobody);
  CHECK(create.exit_code() == 1);
  CHECK(s.Releases().size() == 1);
  // Reading is allowed.
  CHECK(e2e::CtlJson(s.socket(), {"releases", "shop"}, as_nobody).size() == 1);
}

TEST_CASE("release verify names a changed, added or removed file and exits non-zero",
          "[release][verify]") {
  Stage s;
  const std::string id = ImportWithTwoReleases(s, "K=v");
  std::string ok = s.CtlOk({"release", "verify", "shop", "v1"});
  CHECK_THAT(ok, Catch::Contains("v1: verified"));

  const std::string slot = s.Slot(1);
  ReplaceFile(slot + "/app.txt", "tampered\n");
  ReplaceFile(slot + "/extra.txt", "added\n");
  RemoveFile(slot + "/other.txt");
  ProcResult bad = s.Ctl({"release", "verify", "shop", "v1"});
  INFO(bad.Describe());
  CHECK(bad.exit_code() == 1);
  CHECK_THAT(bad.out, Catch::Contains("v1: DOES NOT VERIFY"));
  CHECK_THAT(bad.out, Catch::Contains("changed: app.txt"));
  CHECK_THAT(bad.out, Catch::Contains("added:   extra.txt"));
  CHECK_THAT(bad.out, Catch::Contains("removed: other.txt"));
  ProcResult bad_json = s.Ctl({"--json", "release", "verify", "shop", "v1"});
  CHECK(bad_json.exit_code() == 1);
  Json v = Json::parse(bad_json.out);
  CHECK(v["ok"] == false);
  CHECK(v["changed"] == Json::array({"app.txt"}));
  CHECK(v["added"] == Json::array({"extra.txt"}));
  CHECK(v["removed"] == Json::array({"other.txt"}));

  // v2 shares file bodies with v1 but was not touched.
  CHECK(ReadText(s.Slot(2) + "/app.txt") == "version 1\n");
  CHECK(s.Ctl({"release", "verify", "shop", "v2"}).exit_code() == 0);
  CHECK_THAT(s.CtlOk({"release", "verify", "shop"}), Catch::Contains("v2: verified"));

  // A changed config breaks the digest.
  ReplaceFile(s.Slot(2) + "/.relsupd/env.json", "{\"K\":\"evil\"}\n");
  ProcResult cfg = s.Ctl({"release", "verify", "shop", "v2"});
  INFO(cfg.Describe());
  CHECK(cfg.exit_code() == 1);
  CHECK_THAT(cfg.out, Catch::Contains("does not match the release digest"));
  // A changed mode is a change too.
  CHECK(s.Create(id) == "v3");
  ::chmod((s.Slot(3) + "/bin").c_str(), 0755);
  ProcResult mode = s.Ctl({"release", "verify", "shop", "v3"});
  CHECK(mode.exit_code() == 1);
  CHECK_THAT(mode.out, Catch::Contains("changed: bin"));

  // The stored manifest is a tree of objects named by their hash: a
  // changed or a missing tree object fails verification, naming it.
  CHECK(s.Create(id) == "v4");
  CHECK(s.Create(id) == "v5");
  const std::string root = Json::parse(ReadText(s.Slot(4) + "/.relsupd/release.json"))["tree"];
  REQUIRE(root.size() == 64);
  const std::string tree4 = s.Slot(4) + "/.relsupd/trees/" + root;
  std::string text = ReadText(tree4);
  REQUIRE(!text.empty());
  ReplaceFile(tree4, text + "f 0444 1 " + std::string(64, 'a') + " 8:zzz.txt\n");
  ProcResult tree = s.Ctl({"--json", "release", "verify", "shop", "v4"});
  INFO(tree.Describe());
  CHECK(tree.exit_code() == 1);
  Json tv = Json::parse(tree.out);
  CHECK(tv["ok"] == false);
  CHECK(tv["digest_ok"] == false);
  REQUIRE(tv["problems"].size() == 1);
  CHECK_THAT(tv["problems"][0].get<std::string>(),
             Catch::Contains(root) && Catch::Contains("does not match its hash"));
  CHECK_THAT(s.Ctl({"release", "verify", "shop", "v4"}).out,
             Catch::Contains("does not match the release digest"));
  RemoveFile(s.Slot(5) + "/.relsupd/trees/" + root);
  ProcResult gone = s.Ctl({"--json", "release", "verify", "shop", "v5"});
  INFO(gone.Describe());
  CHECK(gone.exit_code() == 1);
  Json gv = Json::parse(gone.out);
  REQUIRE(gv["problems"].size() == 1);
  CHECK_THAT(gv["problems"][0].get<std::string>(), Catch::Contains("cannot be read"));
  // The store's copy was never touched: v1's slot still reads it.
  CHECK(ReadText(s.ObjectsDir() + "/" + root.substr(0, 2) + "/" + root + ".tree") == text);
}

TEST_CASE("release diff and the content store: unchanged files share inodes across releases",
          "[release][diff][objects]") {
  Stage s;
  const std::string a = s.Import(s.Artifact(
      "a.tar.gz", {Procfile(), File("a.txt", "same\n"), File("b.txt", "b1\n"),
                   File("old.txt", "old\n"), File("big.bin", Noise(300'000))}))["id"];
  const std::string b = s.Import(s.Artifact(
      "b.tar.gz", {Procfile(), File("a.txt", "same\n"), File("b.txt", "b2\n"),
                   File("new.txt", "new\n"), File("big.bin", Noise(300'000))}))["id"];
  CHECK(s.Create(a, {"--set", "K1=1"}) == "v1");
  CHECK(s.Create(b, {"--set", "K2=2"}) == "v2");
  CHECK(s.CtlOk({"config", "set", "shop", "K1=changed"}) == "v3\n");

  std::string d = s.CtlOk({"release", "diff", "shop", "v1", "v2"});
  INFO(d);
  CHECK_THAT(d, Catch::StartsWith("v1 -> v2\n"));
  CHECK_THAT(d, Catch::Contains("build: " + a + " -> " + b));
  CHECK_THAT(d, Catch::Contains("config + K2=********"));
  CHECK_THAT(d, Catch::Contains("file ~ b.txt"));
  CHECK_THAT(d, Catch::Contains("file + new.txt"));
  CHECK_THAT(d, Catch::Contains("file - old.txt"));
  CHECK_THAT(d, !Catch::Contains("a.txt"));
  CHECK_THAT(d, !Catch::Contains("big.bin"));
  CHECK_THAT(d, !Catch::Contains("=1") && !Catch::Contains("=2"));  // values masked

  std::string d2 = s.CtlOk({"release", "diff", "shop", "v2", "v3"});
  INFO(d2);
  CHECK_THAT(d2, Catch::Contains("build: unchanged (" + b + ")"));
  CHECK_THAT(d2, Catch::Contains("config ~ K1=********"));
  CHECK_THAT(d2, !Catch::Contains("file "));
  Json dj = s.CtlJson({"release", "diff", "shop", "v1", "v2"});
  CHECK(dj["build_changed"] == true);
  CHECK(dj["files"]["changed"] == Json::array({"b.txt"}));

  ProcResult missing = s.Ctl({"release", "diff", "shop", "v1", "v7"});
  CHECK(missing.exit_code() == 1);
  CHECK_THAT(missing.err, Catch::Contains("no release v7"));

  // Unchanged bodies are one inode; the changed one is not.
  for (const char* f : {"a.txt", "big.bin", "Procfile"}) {
    INFO(f);
    CHECK(Lstat(s.Slot(1) + "/" + f).st_ino == Lstat(s.Slot(2) + "/" + f).st_ino);
    CHECK(Lstat(s.Slot(2) + "/" + f).st_ino == Lstat(s.Slot(3) + "/" + f).st_ino);
  }
  CHECK(Lstat(s.Slot(1) + "/b.txt").st_ino != Lstat(s.Slot(2) + "/b.txt").st_ino);
  CHECK(Lstat(s.Slot(1) + "/a.txt").st_nlink == 4);  // the object and three slots
  // The manifest's root tree: v3 has v2's files, so v2's tree; v1 another.
  auto root_tree = [&](int n) -> std::string {
    return Json::parse(ReadText(s.Slot(n) + "/.relsupd/release.json"))["tree"];
  };
  CHECK(root_tree(1) != root_tree(2));
  CHECK(root_tree(2) == root_tree(3));
  CHECK(Lstat(s.Slot(2) + "/.relsupd/trees/" + root_tree(2)).st_ino ==
        Lstat(s.Slot(3) + "/.relsupd/trees/" + root_tree(3)).st_ino);
  CHECK_FALSE(Exists(s.Slot(1) + "/.relsupd/manifest.json"));
  // Sealed read-only, the env file owner-only.
  CHECK((Lstat(s.Slot(1)).st_mode & 07777) == 0555);
  CHECK((Lstat(s.Slot(1) + "/a.txt").st_mode & 07777) == 0444);
  CHECK((Lstat(s.Slot(1) + "/.relsupd/env.json").st_mode & 07777) == 0400);
  CHECK(OrphanObjects(s.ObjectsDir()) == 0);
}

// A direct sqlite3 connection to ledger.db.
struct Db {
  sqlite3* db = nullptr;
  explicit Db(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5'000);
  }
  ~Db() { sqlite3_close(db); }
  // "" on success, else SQLite's message.
  std::string Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK) return "";
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return msg;
  }
};

TEST_CASE("the releases table refuses UPDATE and DELETE", "[release][ledger]") {
  Stage s;
  const std::string id = s.Import(s.Artifact("a.tar.gz", GoodApp()))["id"];
  CHECK(s.Create(id, {"--set", "K=v"}) == "v1");
  const Json before = s.Releases();
  s.Stop();
  {
    Db db(s.state() + "/ledger.db");
    CHECK_THAT(db.Exec("UPDATE releases SET digest='0000' WHERE app='shop'"),
               Catch::Contains("releases are immutable: UPDATE refused"));
    CHECK_THAT(db.Exec("UPDATE releases SET config='{\"K\":\"evil\"}'"),
               Catch::Contains("UPDATE refused"));
    CHECK_THAT(db.Exec("DELETE FROM releases WHERE app='shop'"),
               Catch::Contains("releases are immutable: DELETE refused"));
    CHECK_THAT(db.Exec("DELETE FROM releases"), Catch::Contains("DELETE refused"));
  }
  CHECK(LedgerReleaseRows(s.state() + "/ledger.db", "shop") == 1);
  s.Restart();
  CHECK(s.Releases() == before);
  CHECK(s.Ctl({"release", "verify", "shop", "v1"}).exit_code() == 0);
  CHECK(s.Create(id) == "v2");
}

}  // namespace
}  // namespace relsupd::release_test
