// E2E: `relsupd ctl deploy` (build in the CLI, import, release, activate)
// and the rule it shares with `config set`/`unset`: a new release starts
// from the live release, the newest only while none was ever live. The real
// daemon and the real CLI; apps are `sleep`, ready once up for a second.
// Test thread only.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/run/run_fixture.h"

namespace relsupd::deploy_test {
namespace {

using e2e::Json;
using e2e::ProcResult;
using e2e::RunOptions;
using release_test::Entry;
using release_test::File;
using release_test::Filter;
using release_test::Stage;
using run_test::FastConfig;

const char kSleepProcfile[] = "web: exec sleep 1000\n";
const RunOptions kSlow{.timeout_ms = 60'000};

// A source directory: a relsupd.yaml whose build command makes dist/ with
// the Procfile, and records the pid of its parent (the process that ran the
// build) in dist/builder.pid.
std::string SourceDir(
    const e2e::TempDir& dir, const std::string& name,
    const std::string& build_command =
        "mkdir -p dist && cp Procfile dist/ && echo $PPID > dist/builder.pid") {
  const std::string src = dir.Path(name);
  std::filesystem::create_directories(src);
  dir.WriteFile(name + "/relsupd.yaml",
                "build:\n  command: " + build_command + "\n  output: dist\n");
  dir.WriteFile(name + "/Procfile", kSleepProcfile);
  return src;
}

// The config of `release`, revealed.
Json ConfigOf(Stage& s, const std::string& release) {
  return s.CtlJson(
      {"config", "show", s.app(), "--release", release, "--reveal"})["config"];
}

// The environment entry NAME=... of the app's web.1, once it is ready in
// `release`.
std::string WebEnv(Stage& s, const std::string& release,
                   const std::string& name) {
  Json ps = run_test::WaitPs(
      s,
      [&](const Json& rows) {
        Json r = run_test::Row(rows, "web.1");
        return r.is_object() && r["release"] == release &&
               r["state"] == "ready";
      },
      20'000, "web.1 of " + release + " ready");
  pid_t pid = run_test::Row(ps, "web.1")["pid"].get<pid_t>();
  for (const std::string& kv : run_test::Environ(pid))
    if (kv.rfind(name + "=", 0) == 0) return kv.substr(name.size() + 1);
  return "";
}

// A daemon with app "shop" and one build of `kSleepProcfile`.
struct ShopStage : Stage {
  std::string build;
  ShopStage() : Stage(FastConfig()) {
    build = Import(Artifact("app.tar.gz", {File("Procfile", kSleepProcfile)}))["id"];
  }
  // A release of the build with config `settings` (K=V each).
  std::string Release(const std::vector<std::string>& settings) {
    std::vector<std::string> args;
    for (const std::string& kv : settings) args.insert(args.end(), {"--set", kv});
    return Create(build, args);
  }
};

ProcResult Deploy(Stage& s, std::vector<std::string> args,
                  const RunOptions& options = kSlow) {
  args.insert(args.begin(), "deploy");
  return s.Ctl(args, options);
}

// `r` (a deploy) stopped with exit 1 and `stopped` and `left` in its
// error, before any release was made; the app has `builds` builds.
void CheckStoppedBeforeRelease(Stage& s, const ProcResult& r,
                               const std::string& stopped,
                               const std::string& left, size_t builds) {
  INFO(r.Describe());
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains(stopped));
  CHECK_THAT(r.err, Catch::Contains(left));
  CHECK(s.CtlJson({"build", "list", "shop"}).size() == builds);
  CHECK(s.Releases().empty());
}

}  // namespace

TEST_CASE(
    "e2e config set says the new release is not live, makes none when "
    "nothing changes, and one with --force",
    "[e2e][deploy][config]") {
  ShopStage s;
  CHECK(s.Release({"GREETING=hello"}) == "v1");
  s.CtlOk({"activate", "shop", "v1"});

  ProcResult v2 = s.Ctl({"config", "set", "shop", "GREETING=bonjour"});
  INFO(v2.Describe());
  REQUIRE(v2.exit_code() == 0);
  CHECK(v2.out == "v2\n");
  CHECK_THAT(v2.err, Catch::Contains(
                         "made v2 (from v1 + GREETING); not live: relsupd ctl activate shop v2"));
  CHECK(s.CtlJson({"status", "shop"})["active"] == "v1");

  // The live v1 has GREETING=hello already: no release, exit 0, and why.
  ProcResult same = s.Ctl({"config", "set", "shop", "GREETING=hello"});
  INFO(same.Describe());
  CHECK(same.exit_code() == 0);
  CHECK(same.out == "v1\n");
  CHECK_THAT(same.err, Catch::Contains("nothing changed"));
  CHECK_THAT(same.err, Catch::Contains("--force"));
  CHECK(s.Releases().size() == 2);
  Json same_json = s.CtlJson({"config", "set", "shop", "GREETING=hello"});
  CHECK(same_json["unchanged"] == true);
  CHECK(same_json["release"] == "v1");
  CHECK(s.Releases().size() == 2);

  // --force makes one anyway.
  ProcResult forced = s.Ctl({"config", "set", "shop", "GREETING=hello", "--force"});
  INFO(forced.Describe());
  CHECK(forced.exit_code() == 0);
  CHECK(forced.out == "v3\n");
  CHECK(s.Releases().size() == 3);
  CHECK(ConfigOf(s, "v3") == Json({{"GREETING", "hello"}}));

  // history says each event in words; --json keeps the structured detail.
  std::string history = s.CtlOk({"history", "shop"});
  INFO(history);
  CHECK_THAT(history, Catch::Contains("build " + s.build + " ("));
  CHECK_THAT(history, Catch::Contains("from v1, build "));
  CHECK_THAT(history, Catch::Contains("config changed: GREETING"));
  CHECK(history.find("{\"") == std::string::npos);  // no raw JSON
  bool structured = false;
  for (const auto& e : s.CtlJson({"history", "shop"}))
    if (e["kind"] == "released" && e["detail"].is_object())
      structured = e["detail"].contains("config_changed");
  CHECK(structured);
}

TEST_CASE(
    "e2e config set after a rollback builds on the live release, not the "
    "newest",
    "[e2e][deploy][config]") {
  ShopStage s;
  CHECK(s.Release({"GREETING=hello"}) == "v1");
  // No release was ever live: the newest is the base, and says so.
  Json v2 = s.CtlJson({"config", "set", "shop", "GREETING=bonjour"});
  CHECK(v2["release"] == "v2");
  CHECK(v2["from"] == "v1");
  CHECK(v2["from_live"] == false);
  CHECK(v2["config_changed"] == Json::array({"GREETING"}));
  s.CtlOk({"activate", "shop", "v1"});
  s.CtlOk({"activate", "shop", "v2"});
  s.CtlOk({"rollback", "shop"});
  CHECK(s.CtlJson({"status", "shop"})["active"] == "v1");

  // The operator rolled away from bonjour: v3 starts from v1, the live one.
  ProcResult set = s.Ctl({"config", "set", "shop", "OTHER=1"});
  INFO(set.Describe());
  REQUIRE(set.exit_code() == 0);
  CHECK(set.out == "v3\n");  // stdout stays the release alone, for $(...)
  CHECK_THAT(set.err, Catch::Contains("made v3 (from v1 + OTHER)"));
  CHECK(ConfigOf(s, "v3") == Json({{"GREETING", "hello"}, {"OTHER", "1"}}));
  CHECK(s.Releases()[2]["build_sha256"] == s.Releases()[0]["build_sha256"]);

  // unset starts from the live one too: v1 has no OTHER (v3 is not live).
  ProcResult unset = s.Ctl({"config", "unset", "shop", "OTHER"});
  CHECK(unset.exit_code() == 1);
  CHECK_THAT(unset.err, Catch::Contains("'OTHER' is not set"));
  CHECK_THAT(unset.err,
             Catch::Contains("in v1, the release this one starts from"));
  Json v4 = s.CtlJson({"config", "unset", "shop", "GREETING"});
  CHECK(v4["release"] == "v4");
  CHECK(v4["from"] == "v1");
  CHECK(v4["from_live"] == true);
  CHECK(ConfigOf(s, "v4") == Json::object());

  // release create with another build takes the live config as well.
  const std::string other =
      s.Import(s.Artifact("other.tar.gz", {File("Procfile", kSleepProcfile),
                                           File("x.txt", "other\n")}))["id"];
  ProcResult create =
      s.Ctl({"release", "create", "shop", "--build", other, "--set", "B=2"});
  INFO(create.Describe());
  CHECK(create.out == "v5\n");
  CHECK_THAT(create.err, Catch::Contains("made v5 (from v1 + B)"));
  CHECK(ConfigOf(s, "v5") == Json({{"GREETING", "hello"}, {"B", "2"}}));

  // Reads without a release act on the live one and say so.
  std::string show = s.CtlOk({"config", "show", "shop", "--reveal"});
  CHECK_THAT(show, Catch::StartsWith("# v1\n# the live release\n"));
  CHECK_THAT(show, Catch::Contains("GREETING=hello"));
  Json show_json = s.CtlJson({"config", "show", "shop"});
  CHECK(show_json["release"] == "v1");
  CHECK(show_json["live"] == true);
  CHECK_THAT(s.CtlOk({"release", "verify", "shop"}),
             Catch::StartsWith("# v1: the live release\nv1: verified"));
  Json verify = s.CtlJson({"release", "verify", "shop"});
  CHECK(verify["release"] == "v1");
  CHECK(verify["live"] == true);
  CHECK(s.CtlJson({"release", "verify", "shop", "v5"})["live"] == false);
}

TEST_CASE(
    "e2e config show and release verify use the newest release while none was "
    "live",
    "[e2e][deploy][config]") {
  ShopStage s;
  s.Release({"A=1"});
  s.CtlOk({"config", "set", "shop", "A=2"});
  std::string show = s.CtlOk({"config", "show", "shop", "--reveal"});
  CHECK_THAT(show, Catch::StartsWith(
                       "# v2\n# the newest release (none was ever live)\n"));
  Json verify = s.CtlJson({"release", "verify", "shop"});
  CHECK(verify["release"] == "v2");
  CHECK(verify["live"] == false);
  ProcResult set = s.Ctl({"config", "set", "shop", "A=3"});
  CHECK_THAT(set.err,
             Catch::Contains(
                 "from v2 + A; v2 is the newest release, none was ever live"));
}

TEST_CASE(
    "e2e deploy from a directory builds in the CLI, releases from the live "
    "config, activates",
    "[e2e][deploy]") {
  ShopStage s;
  s.Release({"GREETING=hello", "A=1"});
  s.CtlOk({"activate", "shop", "v1"});
  s.CtlOk({"config", "set", "shop", "B=2"});  // v2: newest, never live

  const std::string src = SourceDir(s.dir(), "src");
  ProcResult r = Deploy(s, {"shop", src, "--set", "GREETING=salut"});
  INFO(r.Describe());
  REQUIRE(r.exit_code() == 0);
  CHECK_THAT(r.out, Catch::Contains("build: " + src));
  CHECK_THAT(r.out, Catch::Contains("build: sha256:"));
  CHECK_THAT(r.out, Catch::Contains("import: Imported build "));
  CHECK_THAT(r.out, Catch::Contains("release: v3 (from v1 + GREETING)"));
  CHECK_THAT(r.out, Catch::Contains("activate: v3 of shop is live"));
  // The stages in order.
  CHECK(r.out.find("build: ") < r.out.find("import: "));
  CHECK(r.out.find("import: ") < r.out.find("release: "));
  CHECK(r.out.find("release: ") < r.out.find("activate: "));

  CHECK(ConfigOf(s, "v3") == Json({{"GREETING", "salut"}, {"A", "1"}}));
  CHECK(WebEnv(s, "v3", "GREETING") == "salut");
  CHECK(s.CtlJson({"status", "shop"})["active"] == "v3");
  // The build ran under the CLI, never under the daemon.
  const std::string builder =
      release_test::ReadText(s.Slot(3) + "/builder.pid");
  CHECK(std::stoi(builder) != s.daemon().pid());
  CHECK(std::stoi(builder) > 0);

  // Again (a new build: builder.pid differs), from v3 now.
  Json again = s.CtlJson({"deploy", "shop", src});
  CHECK(again["ok"] == true);
  CHECK(again["import"]["new"] == true);
  CHECK(again["release"]["from"] == "v3");
  CHECK(again["release"]["config_changed"] == Json::array());
  CHECK(again["activate"]["live"] == "v4");
  CHECK(again["build"]["sha256"] == again["import"]["sha256"]);
}

TEST_CASE("e2e deploy --reuse run twice changes nothing the second time", "[e2e][deploy][reuse]") {
  ShopStage s;
  // A build that gives the same bytes each time (no builder.pid).
  const std::string src = SourceDir(s.dir(), "src", "mkdir -p dist && cp Procfile dist/");
  Json first = s.CtlJson({"deploy", "shop", src, "--set", "A=1", "--reuse"});
  INFO(first.dump(2));
  CHECK(first["ok"] == true);
  CHECK(first["release"]["release"] == "v1");
  CHECK(first["release"]["new"] == true);
  CHECK(first["activate"]["changed"] == true);
  CHECK(first["activate"]["live"] == "v1");

  Json second = s.CtlJson({"deploy", "shop", src, "--set", "A=1", "--reuse"});
  INFO(second.dump(2));
  CHECK(second["ok"] == true);
  CHECK(second["import"]["new"] == false);
  CHECK(second["release"]["release"] == "v1");
  CHECK(second["release"]["new"] == false);
  CHECK(second["release"]["reused"] == true);
  CHECK(second["activate"]["changed"] == false);
  CHECK(s.Releases().size() == 1);
  ProcResult human = Deploy(s, {"shop", src, "--set", "A=1", "--reuse"});
  INFO(human.Describe());
  CHECK(human.exit_code() == 0);
  CHECK_THAT(human.out, Catch::Contains("release: v1 (reused: it has that build and that config)"));
  CHECK_THAT(human.out, Catch::Contains("v1 of shop is already live; nothing to do"));

  // Another config is a new release, live; going back reuses v1.
  Json other = s.CtlJson({"deploy", "shop", src, "--set", "A=2", "--reuse"});
  CHECK(other["release"]["release"] == "v2");
  CHECK(other["activate"]["live"] == "v2");
  Json back = s.CtlJson({"deploy", "shop", src, "--set", "A=1", "--reuse"});
  CHECK(back["release"]["release"] == "v1");
  CHECK(back["activate"]["live"] == "v1");
  CHECK(back["activate"]["changed"] == true);
  CHECK(s.Releases().size() == 2);
}

TEST_CASE("e2e deploy from a tarball: gzip, zstd and plain tar",
          "[e2e][deploy]") {
  Stage s{FastConfig()};
  const std::vector<Entry> entries = {File("Procfile", kSleepProcfile)};
  int n = 0;
  for (Filter f : {Filter::kGzip, Filter::kZstd, Filter::kNone}) {
    ++n;
    std::vector<Entry> e = entries;
    e.push_back(File("n.txt", std::to_string(n)));  // a new build each time
    const std::string file =
        s.Artifact("app" + std::to_string(n) + ".tar", e, f);
    Json out =
        s.CtlJson({"deploy", "shop", file, "--set", "N=" + std::to_string(n)});
    const std::string v = "v" + std::to_string(n);
    CHECK(out["ok"] == true);
    CHECK(out["failed"].is_null());
    CHECK(out["source"] == file);
    CHECK(out["build"].is_null());  // nothing to build
    CHECK(out["import"]["new"] == true);
    CHECK(out["release"]["release"] == v);
    CHECK(out["release"]["from"] ==
          (n == 1 ? Json(nullptr) : Json("v" + std::to_string(n - 1))));
    CHECK(out["activate"]["live"] == v);
    CHECK(WebEnv(s, v, "N") == std::to_string(n));
  }
  // Printed as stages.
  const std::string file = s.Artifact(
      "plain.tar", {File("Procfile", kSleepProcfile)}, Filter::kNone);
  ProcResult r = Deploy(s, {"shop", file, "--no-wait"});
  INFO(r.Describe());
  CHECK(r.exit_code() == 0);
  CHECK_THAT(r.out, !Catch::Contains("build: "));
  CHECK_THAT(r.out, Catch::Contains("release: v4 (from v3, same config)"));
  CHECK_THAT(r.out,
             Catch::Contains("activate: Activating shop to v4 (switch "));
  run_test::WaitPs(s, [](const Json& ps) {
    Json row = run_test::Row(ps, "web.1");
    return row.is_object() && row["release"] == "v4" && row["state"] == "ready";
  });
}

TEST_CASE("e2e deploy: a failing build stops before import and leaves nothing",
          "[e2e][deploy]") {
  ShopStage s;
  const std::string src =
      SourceDir(s.dir(), "bad", "echo compiling >&2; exit 3");
  e2e::TempDir tmp("relsupd-deploy-tmp");
  RunOptions options = kSlow;
  options.env = {"TMPDIR=" + tmp.path()};
  std::vector<std::string> args = {"deploy", "shop", src};
  ProcResult r = s.Ctl(args, options);
  INFO(r.Describe());
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("compiling"));
  CHECK_THAT(
      r.err,
      Catch::Contains(
          "deploy stopped at build: build command failed with exit status 3; "
          "nothing was imported"));
  CHECK_THAT(r.out, !Catch::Contains("import: "));
  CHECK(s.CtlJson({"build", "list", "shop"}).size() == 1);  // ShopStage's own
  CHECK(s.Releases().empty());
  CHECK(std::filesystem::is_empty(
      tmp.path()));  // no scratch copy, no artifact left

  args.insert(args.begin(), "--json");
  ProcResult j = s.Ctl(args, options);
  CHECK(j.exit_code() == 1);
  Json out = Json::parse(j.out);
  CHECK(out["ok"] == false);
  CHECK(out["failed"]["stage"] == "build");
  CHECK(out["import"].is_null());
  CHECK(std::filesystem::is_empty(tmp.path()));
}

TEST_CASE(
    "e2e deploy: a bad SRC or config change is a usage error before any stage",
    "[e2e][deploy]") {
  ShopStage s;
  const std::string src = SourceDir(s.dir(), "src");
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::string text = s.dir().WriteFile("notes.txt", "not an archive\n");
  const std::string empty = s.dir().WriteFile("empty.tar.gz", "");
  const Case cases[] = {
      {{"shop", s.dir().Path("missing")}, "SRC '"},
      {{"shop", text},
       "is neither a directory nor a tar, tar.gz or tar.zst artifact"},
      {{"shop", empty},
       "is neither a directory nor a tar, tar.gz or tar.zst artifact (its first bytes are none "
       "of these formats: it is empty)"},
      {{"shop", "/dev/null"},
       "SRC '/dev/null' is neither a directory nor a regular file"},
      {{"shop", src, "--set", "NOEQUALS"}, "'NOEQUALS' must be KEY=VALUE"},
      {{"shop", src, "--env-file", s.dir().Path("nope.env")}, "nope.env"},
      // Config keys the release stage would refuse are caught before the
      // build, not after an import.
      {{"shop", src, "--set", "1BAD=x"}, "config key '1BAD' is not valid"},
      {{"shop", src, "--set", "RELSUPD_APP=x"},
       "config key 'RELSUPD_APP' is reserved for relsupd"},
      {{"shop", src, "--env-file", s.dir().WriteFile("bad.env", "LISTEN_FDS=3\n")},
       "bad.env: config key 'LISTEN_FDS' is reserved for relsupd"},
  };
  for (const Case& c : cases) {
    ProcResult r = Deploy(s, c.args);
    INFO(r.Describe());
    CHECK(r.exit_code() == 2);
    CHECK_THAT(r.err, Catch::Contains(c.message));
    CHECK_THAT(r.out, !Catch::Contains("build: "));
  }
  CHECK_THAT(Deploy(s, {"shop", s.dir().Path("missing")}).err,
             Catch::Contains("does not exist"));
  CHECK(s.CtlJson({"build", "list", "shop"}).size() == 1);  // ShopStage's own
  // With --json the usage error is the deploy's object too.
  ProcResult j = s.Ctl({"--json", "deploy", "shop", src, "--set", "1BAD=x"}, kSlow);
  INFO(j.Describe());
  CHECK(j.exit_code() == 2);
  Json out = Json::parse(j.out);
  CHECK(out["ok"] == false);
  CHECK(out["failed"]["stage"] == "usage");
  CHECK(out["build"].is_null());
  // An app that does not exist stops the deploy before the build.
  ProcResult none = s.Ctl({"--json", "deploy", "nope", src}, kSlow);
  INFO(none.Describe());
  CHECK(none.exit_code() == 1);
  Json none_out = Json::parse(none.out);
  CHECK(none_out["failed"]["stage"] == "check");
  CHECK(none_out["build"].is_null());
  // A gzip stream that is no tar passes the first look; the daemon refuses
  // it at import, and nothing is imported.
  const std::string gz = s.Artifact("x.gz", {File("a", "b")});
  const std::string not_tar = s.dir().Path("not-tar.gz");
  {
    std::string body = release_test::ReadText(gz);
    body.resize(20);  // a gzip header, then nothing a tar reader can use
    s.dir().WriteFile("not-tar.gz", body);
  }
  CheckStoppedBeforeRelease(
      s, Deploy(s, {"shop", not_tar}),
      "deploy stopped at import: ", "nothing was imported", 1);
}

TEST_CASE(
    "e2e deploy: a release stage refusal keeps the imported build and says so",
    "[e2e][deploy]") {
  ShopStage s;
  // An artifact file skips the build stage, so its process file is first
  // read at release.
  const std::string file = s.Artifact(
      "b.tar.gz", {File("relsupd.yaml", "biuld: x\n"), File("b.txt", "b")});
  CheckStoppedBeforeRelease(
      s, Deploy(s, {"shop", file}), "deploy stopped at release: ",
      "stays imported, which is normal for a build without a release", 2);
}

TEST_CASE(
    "e2e deploy: a bad artifact is rolled back and the live release stays live",
    "[e2e][deploy]") {
  ShopStage s;
  s.Release({"GREETING=hello"});
  s.CtlOk({"activate", "shop", "v1"});
  const std::string crash =
      s.Artifact("crash.tar.gz", {File("Procfile", "web: exit 1\n")});
  ProcResult r = Deploy(s, {"shop", crash, "--set", "GREETING=broken"});
  INFO(r.Describe());
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.out, Catch::Contains("release: v2 (from v1 + GREETING)"));
  CHECK_THAT(r.err, Catch::Contains("deploy stopped at activate: "));
  CHECK_THAT(r.err, Catch::Contains("crash-looped"));
  CHECK_THAT(r.err, Catch::Contains(
                        "v2 was made but is not live; v1 of shop is live"));
  Json status = s.CtlJson({"status", "shop"});
  CHECK(status["active"] == "v1");
  CHECK(WebEnv(s, "v1", "GREETING") == "hello");
  // The next deploy starts from v1 again, not from the failed v2.
  ProcResult again_run = s.Ctl(
      {"--json", "deploy", "shop", crash, "--strategy", "stop-first"}, kSlow);
  CHECK(again_run.exit_code() == 1);
  Json again = Json::parse(again_run.out);
  CHECK(again["ok"] == false);
  CHECK(again["import"]["new"] == false);  // the same bytes: the same build
  CHECK(again["failed"]["stage"] == "activate");
  CHECK(again["release"]["from"] == "v1");
  CHECK(again["activate"]["ok"] == false);
  CHECK(again["activate"]["live_ready"] == true);  // v1 serves again
  CHECK(ConfigOf(s, "v3") == Json({{"GREETING", "hello"}}));
  CHECK(s.CtlJson({"status", "shop"})["active"] == "v1");
}

TEST_CASE("e2e deploy exits as activate does", "[e2e][deploy]") {
  ShopStage s;
  const std::string file =
      s.Artifact("ok.tar.gz", {File("Procfile", kSleepProcfile)});
  const std::string crash =
      s.Artifact("crash.tar.gz", {File("Procfile", "web: exit 1\n")});
  const std::string crash_release = s.Create(s.Import(crash)["id"]);  // v1
  const std::string ok_release = s.Create(s.build);                  // v2
  const std::string gone = s.dir().Path("gone.sock");
  struct Pair {
    const char* what;
    std::vector<std::string> deploy, activate;
    int code;
  };
  const Pair pairs[] = {
      {"live", {"deploy", "shop", file}, {"activate", "shop", ok_release}, 0},
      {"switch failed",
       {"deploy", "shop", crash},
       {"activate", "shop", crash_release},
       1},
      {"no such app",
       {"deploy", "nosuch", file},
       {"activate", "nosuch", "v1"},
       1},
      {"bad strategy",
       {"deploy", "shop", file, "--strategy", "sideways"},
       {"activate", "shop", "v1", "--strategy", "sideways"},
       2},
      {"daemon unreachable",
       {"deploy", "shop", file},
       {"activate", "shop", ok_release},
       3},
  };
  for (const Pair& p : pairs) {
    INFO(p.what);
    const std::string socket = p.code == 3 ? gone : s.socket();
    ProcResult d = e2e::RunCtl(socket, p.deploy, kSlow);
    INFO(d.Describe());
    CHECK(d.exit_code() == p.code);
    ProcResult a = e2e::RunCtl(socket, p.activate, kSlow);
    INFO(a.Describe());
    CHECK(a.exit_code() == p.code);
  }
}

}  // namespace relsupd::deploy_test
