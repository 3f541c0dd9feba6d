#include <catch2/catch.hpp>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string_view>
#include <utility>

#include "daemon/ledger/ledger.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

struct Fixture {
  support::TempDir tmp{"relsupd-ledger"};
  std::string dir = tmp.path();
  std::string path = dir + "/ledger.db";
  support::FakeClock clock{1'795'000'000'000};
  Actor root{0, "root"};
  std::unique_ptr<Ledger> Open() {
    auto l = Ledger::Open(path, clock);
    REQUIRE(l.ok());
    return std::move(l).value();
  }
  // Runs SQL on the database file directly, as an intruder would.
  std::string Raw(const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* err = nullptr;
    std::string result;
    sqlite3_exec(
        db, sql.c_str(),
        [](void* out, int n, char** vals, char**) {
          for (int i = 0; i < n; ++i)
            *static_cast<std::string*>(out) += vals[i] ? vals[i] : "NULL";
          return 0;
        },
        &result, &err);
    if (err) {
      result = std::string("ERROR: ") + err;
      sqlite3_free(err);
    }
    sqlite3_close(db);
    return result;
  }
};

AppSpec Shop(std::string name = "shop") {
  AppSpec a;
  a.name = std::move(name);
  a.user = "nobody";
  a.group = "nogroup";
  a.sockets = {{"http", "tcp://127.0.0.1:8080"}};
  return a;
}

TEST_CASE("ledger opens in WAL mode with synchronous FULL at the latest schema") {
  Fixture f;
  auto l = f.Open();
  CHECK(l->schema_version() == Ledger::kSchemaVersion);
  CHECK(f.Raw("PRAGMA journal_mode") == "wal");
  CHECK(f.Raw("PRAGMA user_version") == std::to_string(Ledger::kSchemaVersion));
  l.reset();
  // Reopening migrates nothing and keeps the version.
  CHECK(f.Open()->schema_version() == Ledger::kSchemaVersion);
}

TEST_CASE("ledger files are 0600, also when an older relsupd left them 0644") {
  Fixture f;
  {
    auto l = f.Open();
    REQUIRE(l->CreateApp(Shop(), f.root).ok());
    for (const char* suffix : {"", "-wal", "-shm"}) {
      struct stat st{};
      REQUIRE(::stat((f.path + suffix).c_str(), &st) == 0);
      INFO(suffix);
      CHECK((st.st_mode & 0777) == 0600);
    }
  }
  for (const char* suffix : {"", "-wal", "-shm"})
    ::chmod((f.path + suffix).c_str(), 0644);
  auto l = f.Open();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    struct stat st{};
    if (::stat((f.path + suffix).c_str(), &st) != 0) continue;
    INFO(suffix);
    CHECK((st.st_mode & 0777) == 0600);
  }
}

TEST_CASE("schema 4 records an app's uid and gid and whether it is dynamic, and older rows read as unresolved") {
  Fixture f;
  {
    auto l = f.Open();
    AppSpec a = Shop("dyn");
    a.user = a.group = "";
    a.uid = a.gid = 70001;
    a.dynamic_user = true;
    REQUIRE(l->CreateApp(a, f.root).ok());
    auto back = l->GetApp("dyn");
    REQUIRE(back.ok());
    CHECK(*back == a);
    // A dynamic uid belongs to one app.
    AppSpec twin = a;
    twin.name = "twin";
    CHECK_FALSE(l->CreateApp(twin, f.root).ok());
  }
  // A row written before schema 4 (as a schema-3 relsupd would): -1, named.
  f.Raw("INSERT INTO apps(name, user, grp, keep_releases, sockets, strategy, "
        "activation_deadline_ms, auto_rollback, created_at, updated_at) "
        "VALUES('old', 'nobody', 'nogroup', 10, '{}', 'start-first', 60000, 1, 0, 0)");
  auto l = f.Open();
  auto old = l->GetApp("old");
  REQUIRE(old.ok());
  CHECK(old->uid == -1);
  CHECK(old->gid == -1);
  CHECK_FALSE(old->dynamic_user);
}

TEST_CASE("ledger refuses a schema newer than it knows") {
  Fixture f;
  f.Open().reset();
  f.Raw("PRAGMA user_version=99");
  auto l = Ledger::Open(f.path, f.clock);
  REQUIRE_FALSE(l.ok());
  CHECK(l.status().message().find("schema version 99 is newer") != std::string::npos);
}

TEST_CASE("ledger refuses a file that is not a database") {
  Fixture f;
  {
    FILE* fp = fopen(f.path.c_str(), "w");
    fputs("this is not a database, not even close, no sir\n", fp);
    fclose(fp);
  }
  auto l = Ledger::Open(f.path, f.clock);
  REQUIRE_FALSE(l.ok());
  CHECK(l.status().message().find(f.path) != std::string::npos);
}

TEST_CASE("apps are created once, listed, and each change is an event") {
  Fixture f;
  auto l = f.Open();
  REQUIRE(l->CreateApp(Shop(), f.root).ok());
  Status dup = l->CreateApp(Shop(), f.root);
  CHECK(dup.code() == StatusCode::kAlreadyExists);
  CHECK(dup.message() == "app 'shop' exists already");
  REQUIRE(l->CreateApp(Shop("api"), Actor{1000, "alice"}).ok());

  auto got = l->GetApp("shop");
  REQUIRE(got.ok());
  CHECK(*got == Shop());
  CHECK(l->GetApp("nope").status().code() == StatusCode::kNotFound);
  auto all = l->ListApps();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].name == "api");

  auto events = l->History(std::nullopt, 10);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 2);
  CHECK((*events)[0].kind == "app-created");
  CHECK((*events)[0].app == "shop");
  CHECK((*events)[1].actor_uid == 1000);
  CHECK((*events)[1].actor_name == "alice");
  CHECK((*events)[1].time_ms == f.clock.now);
  CHECK(l->History(std::string("api"), 10)->size() == 1);
}

TEST_CASE("apply is idempotent and records only real changes") {
  Fixture f;
  auto l = f.Open();
  CHECK(*l->ApplyApp(Shop(), f.root) == true);
  CHECK(*l->ApplyApp(Shop(), f.root) == false);
  AppSpec changed = Shop();
  changed.keep_releases = 3;
  CHECK(*l->ApplyApp(changed, f.root) == true);
  CHECK(*l->ApplyApp(changed, f.root) == false);
  auto events = l->History(std::string("shop"), 10);
  REQUIRE(events->size() == 2);
  CHECK((*events)[0].kind == "app-created");
  CHECK((*events)[1].kind == "app-updated");
  CHECK((*events)[1].detail == R"({"keep_releases":[10,3]})");
  CHECK(l->GetApp("shop")->keep_releases == 3);
}

TEST_CASE("events refuse UPDATE and DELETE") {
  Fixture f;
  auto l = f.Open();
  REQUIRE(l->CreateApp(Shop(), f.root).ok());
  CHECK(f.Raw("UPDATE events SET detail='x'").find("append-only: UPDATE refused") !=
        std::string::npos);
  CHECK(f.Raw("DELETE FROM events").find("append-only: DELETE refused") !=
        std::string::npos);
  CHECK(f.Raw("SELECT count(*) FROM events") == "1");
}

TEST_CASE("VerifyHistoryOf reads beside the writer and names at most kMaxProblems problems") {
  Fixture f;
  auto l = f.Open();
  const int n = static_cast<int>(VerifyReport::kMaxProblems) + 20;
  for (int i = 0; i < n; ++i) REQUIRE(l->CreateApp(Shop("a" + std::to_string(i)), f.root).ok());
  auto clean = Ledger::VerifyHistoryOf(f.path);  // `l` still open: WAL
  REQUIRE(clean.ok());
  CHECK(clean->ok());
  CHECK(clean->checked == n);
  l.reset();
  f.Raw("DROP TRIGGER events_no_update; UPDATE events SET detail='{}'");
  auto r = Ledger::VerifyHistoryOf(f.path);
  REQUIRE(r.ok());
  CHECK(r->problems.size() == VerifyReport::kMaxProblems);
  CHECK(r->more_problems == 20);
  CHECK(r->problems[0] == "event 1 was edited: its hash does not match its content");
  auto missing = Ledger::VerifyHistoryOf(f.path + ".nope");
  CHECK_FALSE(missing.ok());
  CHECK(missing.status().message().find("cannot open ledger") != std::string::npos);
}

TEST_CASE("the hash chain finds edited and deleted events") {
  Fixture f;
  auto l = f.Open();
  for (const char* n : {"a", "b", "c", "d", "e"}) {
    REQUIRE(l->CreateApp(Shop(n), f.root).ok());
    f.clock.now += 1000;
  }
  auto clean = l->VerifyHistory();
  REQUIRE(clean.ok());
  CHECK(clean->ok());
  CHECK(clean->checked == 5);
  l.reset();
  f.Raw("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;");

  // Each edit alone, and the one problem it must cause.
  struct Edit {
    const char* name;
    const char* sql;
    const char* problem;
  };
  for (const Edit& e :
       {Edit{"an edited detail", "UPDATE events SET detail='{}' WHERE id=2",
             "event 2 was edited: its hash does not match its content"},
        Edit{"a deleted middle event", "DELETE FROM events WHERE id=3", "event 3 was deleted"},
        Edit{"a deleted newest event", "DELETE FROM events WHERE id=5",
             "event 5 (the newest) was deleted"}}) {
    DYNAMIC_SECTION(e.name) {
      f.Raw(e.sql);
      auto r = f.Open()->VerifyHistory();
      REQUIRE(r->problems.size() == 1);
      CHECK(r->problems[0] == e.problem);
    }
  }
  SECTION("an edited actor with its hash recomputed by a naive forger") {
    f.Raw("UPDATE events SET actor_name='mallory', hash='" +
          std::string(64, 'f') + "' WHERE id=3");
    auto r = f.Open()->VerifyHistory();
    CHECK_FALSE(r->ok());
    CHECK(r->problems[0] == "event 3 was edited: its hash does not match its content");
    CHECK(r->problems[1] == "event 4 does not follow the event before it");
  }
  SECTION("new events after a deletion still show the gap") {
    f.Raw("DELETE FROM events WHERE id=5");
    auto l2 = f.Open();
    REQUIRE(l2->CreateApp(Shop("f"), f.root).ok());
    auto r = l2->VerifyHistory();
    REQUIRE(r->problems.size() == 1);
    CHECK(r->problems[0] == "event 5 was deleted");
  }
}

TEST_CASE("a committed app survives closing without a clean shutdown") {
  Fixture f;
  {
    auto l = f.Open();
    REQUIRE(l->CreateApp(Shop(), f.root).ok());
    // No checkpoint: the row lives only in the WAL when the handle goes.
  }
  CHECK(std::filesystem::exists(f.path));
  auto l = f.Open();
  CHECK(l->GetApp("shop").ok());
  CHECK(l->VerifyHistory()->ok());
}

// The message ReleaseId::Parse gives for `text`, or "" when it parses.
std::string ParseError(std::string_view text) {
  auto id = ReleaseId::Parse(text);
  return id.ok() ? "" : id.status().message();
}

TEST_CASE("a release's config is stored as JSON and read back typed once, and a damaged copy is flagged, not thrown") {
  Fixture f;
  auto l = f.Open();
  REQUIRE(l->CreateApp(Shop(), f.root).ok());
  BuildRow b;
  b.app = "shop";
  b.sha256 = std::string(64, 'a');
  b.format = "tar";
  REQUIRE(l->RecordBuild(b, f.root).ok());
  ReleaseRow r;
  r.app = "shop";
  r.number = 1;
  r.build = b.sha256;
  r.digest = std::string(64, 'd');
  r.config = {{"PORT", "8080"}, {"GREETING", "hi \"there\""}};
  REQUIRE(l->RecordRelease(r, f.root, "{}").ok());
  CHECK(f.Raw("SELECT config FROM releases WHERE number=1") ==
        R"({"GREETING":"hi \"there\"","PORT":"8080"})");
  auto got = l->GetRelease("shop", 1);
  REQUIRE(got.ok());
  CHECK(got->config == r.config);
  CHECK_FALSE(got->config_malformed);

  // Rows written by hand (an intruder or a damaged file): not an object,
  // a value that is not a string, not JSON at all.
  int64_t n = 2;
  for (const char* bad : {"[1]", R"({"PORT":8080})", "{"}) {
    CAPTURE(bad);
    CHECK(f.Raw("INSERT INTO releases(app, number, build, digest, config, "
                "created_at, created_uid, created_by) VALUES('shop', " +
                std::to_string(n) + ", '" + b.sha256 + "', 'x', '" + bad +
                "', 0, 0, 'root')") == "");
    auto damaged = l->GetRelease("shop", n);
    REQUIRE(damaged.ok());
    CHECK(damaged->config_malformed);
    CHECK(damaged->config.empty());
    ++n;
  }
  auto all = l->ListReleases("shop");
  REQUIRE(all.ok());
  CHECK(all->size() == 4);
}

TEST_CASE("DeleteApp hides the app, keeps its history and release rows, and the name comes back "
          "with the numbers going on") {
  Fixture f;
  auto l = f.Open();
  AppSpec shop = Shop();
  shop.uid = 70001;
  shop.gid = 70001;
  shop.dynamic_user = true;
  REQUIRE(l->CreateApp(shop, f.root).ok());
  REQUIRE(l->CreateApp(Shop("api"), f.root).ok());
  BuildRow used, unused;
  used.app = unused.app = "shop";
  used.sha256 = std::string(64, 'a');
  unused.sha256 = std::string(64, 'b');
  used.format = unused.format = "tar";
  REQUIRE(l->RecordBuild(used, f.root).ok());
  REQUIRE(l->RecordBuild(unused, f.root).ok());
  for (int64_t n : {1, 2}) {
    ReleaseRow r;
    r.app = "shop";
    r.number = n;
    r.build = used.sha256;
    r.digest = std::string(64, 'd');
    REQUIRE(l->RecordRelease(r, f.root, "{}").ok());
  }
  REQUIRE(l->AppendEvent("shop", EventKind::kPruned, ReleaseId(1), f.root, "{}").ok());
  REQUIRE(l->AppendEvent("shop", EventKind::kActivated, ReleaseId(2), f.root, "").ok());
  REQUIRE(l->SetFormation("shop", {{"web", 3}}, ReleaseId(2), f.root).ok());

  REQUIRE(l->DeleteApp("shop", f.root).ok());
  CHECK(l->GetApp("shop").status().code() == StatusCode::kNotFound);
  CHECK(l->ListApps()->size() == 1);
  CHECK(*l->IsDeletedApp("shop"));
  CHECK_FALSE(*l->IsDeletedApp("api"));
  CHECK_FALSE(*l->IsDeletedApp("nope"));
  CHECK(l->DeleteApp("shop", f.root).code() == StatusCode::kNotFound);
  // The dynamic uid is no longer the app's (kept in the row, retired), the
  // state and formation empty, the builds marked; the release rows stay,
  // every one pruned now (v1 once).
  CHECK(f.Raw("SELECT uid, dynamic_user FROM apps WHERE name='shop'") == "700010");
  CHECK(*l->RetiredUids() == std::set<int64_t>{70001});
  CHECK(*l->GetAppState("shop") == AppState{});
  CHECK(f.Raw("SELECT count(*) FROM formation WHERE app='shop'") == "0");
  CHECK(f.Raw("SELECT group_concat(substr(sha256, 1, 1) || deleted) FROM builds WHERE app='shop'") ==
        "a1,b1");
  CHECK(f.Raw("SELECT count(*) FROM releases WHERE app='shop'") == "2");
  auto history = l->History(std::string("shop"), 100);
  REQUIRE(history.ok());
  CHECK(history->back().kind == "app-deleted");
  CHECK(history->back().detail.find("\"name\":\"shop\"") != std::string::npos);
  int pruned_v1 = 0, pruned_v2 = 0;
  for (const Event& e : *history) {
    if (e.kind != "pruned") continue;
    pruned_v1 += e.release == "v1";
    pruned_v2 += e.release == "v2" && e.detail == R"({"reason":"app deleted"})";
  }
  CHECK(pruned_v1 == 1);
  CHECK(pruned_v2 == 1);

  // The name again: a fresh spec, numbers on from the old ones.
  AppSpec again = Shop();
  again.keep_releases = 2;
  SECTION("by create") { REQUIRE(l->CreateApp(again, f.root).ok()); }
  SECTION("by apply") { REQUIRE(*l->ApplyApp(again, f.root)); }
  auto got = l->GetApp("shop");
  REQUIRE(got.ok());
  CHECK(got->keep_releases == 2);
  CHECK_FALSE(*l->IsDeletedApp("shop"));
  // A new life: none of the old releases or builds are the app's; the
  // same bytes imported again are a new import.
  CHECK(*l->NextReleaseNumber("shop") == 3);
  CHECK(l->ListReleases("shop")->empty());
  CHECK(l->GetRelease("shop", 2).status().code() == StatusCode::kNotFound);
  CHECK(l->ActivationOf("shop")->active == 0);
  CHECK(l->ActivationOf("shop")->ever_activated.empty());
  CHECK(l->ListBuilds("shop")->empty());
  CHECK(l->FindBuild("shop", "aaaaaaa").status().code() == StatusCode::kNotFound);
  CHECK(*l->RecordBuild(used, f.root));
  CHECK(l->ListBuilds("shop")->size() == 1);
  CHECK_FALSE(*l->RecordBuild(used, f.root));
  ReleaseRow v3;
  v3.app = "shop";
  v3.number = 3;
  v3.build = used.sha256;
  v3.digest = std::string(64, 'd');
  REQUIRE(l->RecordRelease(v3, f.root, "{}").ok());
  CHECK(l->ListReleases("shop")->size() == 1);
  CHECK(l->History(std::string("shop"), 100)->back().kind == "released");
  CHECK(l->VerifyHistory()->ok());
}

TEST_CASE("ReleaseId prints vN, and parses vN back only at the edges") {
  CHECK(ReleaseId(3).ToString() == "v3");
  CHECK(ReleaseId().ToString().empty());
  CHECK(ReleaseId().empty());
  CHECK(ReleaseId::Parse("v3")->number() == 3);
  CHECK(*ReleaseId::Parse("v999999999999") == ReleaseId(ReleaseId::kMax));
  // The control socket's params also take a bare number, as they always did.
  CHECK(ReleaseId::Parse("3", ReleaseId::Prefix::kOptional)->number() == 3);
  CHECK(ReleaseId(2) < ReleaseId(10));
}

TEST_CASE("ReleaseId::Parse names what is not a release") {
  CHECK(ParseError("v") == "'v' is not a release (use e.g. v3)");
  CHECK(ParseError("v0") == "'v0' is not a release (use e.g. v3)");
  CHECK(ParseError("v-1") == "'v-1' is not a release (use e.g. v3)");
  CHECK(ParseError("3") == "'3' is not a release (use e.g. v3)");
  CHECK(ParseError("v99999999999999999999") ==
        "'v99999999999999999999' is not a release (use e.g. v3)");
  CHECK(ParseError("v007") == "'v007' is not a release (use e.g. v3)");
  CHECK(ParseError("") == "'' is not a release (use e.g. v3)");
  CHECK(ParseError("v3x") == "'v3x' is not a release (use e.g. v3)");
  CHECK(ReleaseId::Parse("v", ReleaseId::Prefix::kOptional).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("EventKind names round-trip, and the names are the stored ones") {
  // Every kind, in enum order: the table must name each one once.
  for (int i = 0; i <= static_cast<int>(EventKind::kSignaled); ++i) {
    const auto kind = static_cast<EventKind>(i);
    INFO(i);
    CHECK(ParseEventKind(EventKindName(kind)) == kind);
  }
  CHECK(EventKindName(EventKind::kAppCreated) == "app-created");
  CHECK(EventKindName(EventKind::kAutoRolledBack) == "auto-rolled-back");
  CHECK(EventKindName(EventKind::kActivationFailed) == "activation-failed");
  CHECK(EventKindName(EventKind::kPruned) == "pruned");
  CHECK(EventKindName(EventKind::kReleasePhaseSucceeded) ==
        "release-phase-succeeded");
  CHECK(EventKindName(EventKind::kRan) == "ran");
  CHECK(EventKindName(EventKind::kReexec) == "reexec");
  CHECK(EventKindName(EventKind::kSignaled) == "signaled");
  CHECK(ParseEventKind("deployed") == std::nullopt);
  CHECK(ParseEventKind("") == std::nullopt);
}

constexpr ReleaseId kV1{1}, kV2{2}, kV3{3};

constexpr ReleaseId kNone{};
constexpr bool kByHand = true;

// An app state in one line: the active, previous and switching releases,
// and whether the app was stopped by hand.
AppState State(ReleaseId active, ReleaseId previous, ReleaseId switching,
               bool stopped_by_hand = false) {
  return AppState{.active = active,
                  .previous = previous,
                  .switching = switching,
                  .stopped_by_hand = stopped_by_hand};
}

// One row per transition: the state before, the event (its kind and
// release), and the state it must lead to.
TEST_CASE("app state: each event moves the state as its row says") {
  struct Row {
    const char* name;
    AppState from;
    EventKind kind;
    ReleaseId release;
    AppState to;
  };
  const Row rows[] = {
      {"activating marks a switch in flight, nothing else",
       State(kV1, kNone, kNone), EventKind::kActivating, kV2,
       State(kV1, kNone, kV2)},
      {"activated makes the release live and the old one previous",
       State(kV1, kNone, kV2, kByHand), EventKind::kActivated, kV2,
       State(kV2, kV1, kNone)},
      {"the first activation has no previous", AppState{},
       EventKind::kActivated, kV1, State(kV1, kNone, kNone)},
      {"activated, the live release again: previous stays",
       State(kV2, kV1, kNone), EventKind::kActivated, kV2,
       State(kV2, kV1, kNone)},
      {"rolled-back swaps active and previous", State(kV2, kV1, kV1),
       EventKind::kRolledBack, kV1, State(kV1, kV2, kNone)},
      {"auto-rolled-back to the live release ends the switch",
       State(kV1, kNone, kV2, kByHand), EventKind::kAutoRolledBack, kV1,
       State(kV1, kNone, kNone)},
      {"activation-failed ends the first switch", State(kNone, kNone, kV1),
       EventKind::kActivationFailed, kV1, AppState{}},
      {"recovered ends the switch", State(kV1, kNone, kV2),
       EventKind::kRecovered, kV1, State(kV1, kNone, kNone)},
      {"stopped sets stopped-by-hand", State(kV1, kNone, kNone),
       EventKind::kStopped, kV1, State(kV1, kNone, kNone, kByHand)},
      {"started clears stopped-by-hand", State(kV1, kNone, kNone, kByHand),
       EventKind::kStarted, kV1, State(kV1, kNone, kNone)},
      {"restarted keeps stopped-by-hand", State(kV1, kNone, kNone, kByHand),
       EventKind::kRestarted, kV1, State(kV1, kNone, kNone, kByHand)},
      {"app-deleted empties it", State(kV2, kV1, kNone, kByHand),
       EventKind::kAppDeleted, kNone, AppState{}},
  };
  for (const Row& row : rows) {
    DYNAMIC_SECTION(row.name) {
      CHECK(NextAppState(row.from, row.kind, row.release) == row.to);
    }
  }
}

TEST_CASE("app state: the other kinds change nothing") {
  AppState s{.active = kV2,
             .previous = kV1,
             .switching = kV3,
             .stopped_by_hand = true};
  CHECK_FALSE(ChangesAppState(EventKind::kScaled));
  CHECK(NextAppState(s, EventKind::kScaled, kV2) == s);
  CHECK_FALSE(ChangesAppState(EventKind::kReleased));
  CHECK(NextAppState(s, EventKind::kReleased, kV3) == s);
  CHECK_FALSE(ChangesAppState(EventKind::kPruned));
  CHECK(NextAppState(s, EventKind::kPruned, kV1) == s);
  CHECK_FALSE(ChangesAppState(EventKind::kFailed));
  CHECK(NextAppState(s, EventKind::kFailed, kV2) == s);
  CHECK(ChangesAppState(EventKind::kStopped));
}

TEST_CASE("a reexec event is daemon-wide: no app, no release, in the chain like any other") {
  Fixture f;
  auto l = f.Open();
  REQUIRE(l->CreateApp(Shop(), f.root).ok());
  REQUIRE(l->AppendEvent("", EventKind::kReexec, ReleaseId{}, Actor{0, "SIGUSR2"},
                         "0.9.0 -> 0.10.0").ok());
  auto all = l->History(std::nullopt, 10);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  const Event& e = (*all)[1];
  CHECK(e.kind == "reexec");
  CHECK(e.app == "");
  CHECK(e.release == "");
  CHECK(e.actor_name == "SIGUSR2");
  CHECK(e.detail == "0.9.0 -> 0.10.0");
  // An app's history leaves it out; it changes no app's state.
  CHECK(l->History(std::string("shop"), 10)->size() == 1);
  CHECK(*l->GetAppState("shop") == AppState{});
  auto verdict = l->VerifyHistory();
  REQUIRE(verdict.ok());
  CHECK(verdict->problems.empty());
  CHECK(verdict->checked == 2);
}

TEST_CASE("the app_state row is written with its event, in one transaction") {
  Fixture f;
  auto l = f.Open();
  REQUIRE(l->CreateApp(Shop(), f.root).ok());
  CHECK(*l->GetAppState("shop") == AppState{});
  REQUIRE(l->AppendEvent("shop", EventKind::kActivated, kV1, f.root, "").ok());
  REQUIRE(l->AppendEvent("shop", EventKind::kActivated, kV2, f.root, "").ok());
  REQUIRE(l->AppendEvent("shop", EventKind::kStopped, kV2, f.root, "").ok());
  REQUIRE(l->AppendEvent("shop", EventKind::kActivating, kV3, f.root, "").ok());
  CHECK(*l->GetAppState("shop") == AppState{.active = kV2,
                                            .previous = kV1,
                                            .switching = kV3,
                                            .stopped_by_hand = true});
  CHECK(f.Raw("SELECT active, previous, switching, stopped_by_hand FROM "
              "app_state WHERE app='shop'") == "2131");
  CHECK(l->ActivationOf("shop")->active == 2);
  CHECK(l->ActivationOf("shop")->previous == 1);
  CHECK(*l->StoppedByHand("shop"));
  // The event and its row commit together: a row that cannot be written
  // takes its event with it.
  f.Raw(
      "CREATE TRIGGER no_state BEFORE UPDATE ON app_state BEGIN "
      "SELECT RAISE(ABORT, 'state refused'); END");
  CHECK_FALSE(
      l->AppendEvent("shop", EventKind::kStarted, kV2, f.root, "").ok());
  CHECK(l->History(std::string("shop"), 10)->back().kind == "activating");
  CHECK(*l->StoppedByHand("shop"));
  CHECK(l->VerifyHistory()->ok());
}

TEST_CASE("migration 5 fills app_state from the events of a schema-4 ledger") {
  Fixture f;
  {
    auto l = f.Open();
    REQUIRE(l->CreateApp(Shop(), f.root).ok());
    REQUIRE(l->CreateApp(Shop("api"), f.root).ok());
    for (auto [kind, id] : {std::pair{EventKind::kActivated, kV1},
                            {EventKind::kActivated, kV2},
                            {EventKind::kStopped, kV2},
                            {EventKind::kActivating, kV3}})
      REQUIRE(l->AppendEvent("shop", kind, id, f.root, "").ok());
    REQUIRE(l->AppendEvent("api", EventKind::kActivated, kV2, f.root, "").ok());
    REQUIRE(
        l->AppendEvent("api", EventKind::kRolledBack, kV1, f.root, "").ok());
  }
  // What a schema-4 relsupd left: the same tables and events, no app_state.
  f.Raw("DROP TABLE app_state; DROP INDEX events_kind; "
        "ALTER TABLE apps DROP COLUMN deleted; ALTER TABLE apps DROP COLUMN first_release; "
        "ALTER TABLE builds DROP COLUMN deleted; PRAGMA user_version=4");
  REQUIRE(f.Raw("SELECT count(*) FROM sqlite_master WHERE name='app_state'") ==
          "0");
  auto l = f.Open();
  CHECK(l->schema_version() == Ledger::kSchemaVersion);
  CHECK(*l->GetAppState("shop") == AppState{.active = kV2,
                                            .previous = kV1,
                                            .switching = kV3,
                                            .stopped_by_hand = true});
  CHECK(*l->GetAppState("api") == AppState{.active = kV1,
                                           .previous = kV2,
                                           .switching = ReleaseId(),
                                           .stopped_by_hand = false});
  CHECK(f.Raw("SELECT count(*) FROM app_state") == "2");
  // The events were only read: the chain is whole.
  auto report = l->VerifyHistory();
  REQUIRE(report.ok());
  CHECK(report->ok());
  CHECK(report->checked == 8);
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE(
    "a release's phase outcome is the newest of its succeeded and failed "
    "events") {
  Fixture f;
  auto l = f.Open();
  REQUIRE(l->CreateApp(Shop("shop"), f.root).ok());
  const ReleaseId v1(1), v2(2);
  using O = Ledger::PhaseOutcome;
  CHECK(*l->ReleasePhaseOutcome("shop", v1) == std::nullopt);
  REQUIRE(
      l->AppendEvent("shop", EventKind::kReleasePhaseStarted, v1, f.root, "x")
          .ok());
  CHECK(*l->ReleasePhaseOutcome("shop", v1) == std::nullopt);
  REQUIRE(l->AppendEvent("shop", EventKind::kReleasePhaseFailed, v1, f.root,
                         "exit 3")
              .ok());
  CHECK(*l->ReleasePhaseOutcome("shop", v1) == O::kFailed);
  REQUIRE(l->AppendEvent("shop", EventKind::kReleasePhaseSucceeded, v1, f.root,
                         "exit 0")
              .ok());
  CHECK(*l->ReleasePhaseOutcome("shop", v1) == O::kSucceeded);
  // Per release and per app.
  CHECK(*l->ReleasePhaseOutcome("shop", v2) == std::nullopt);
  CHECK(*l->ReleasePhaseOutcome("api", v1) == std::nullopt);
  REQUIRE(l->AppendEvent("shop", EventKind::kReleasePhaseFailed, v1, f.root,
                         "exit 1")
              .ok());
  CHECK(*l->ReleasePhaseOutcome("shop", v1) == O::kFailed);
  // The phase's events leave the app_state row alone.
  CHECK_FALSE(ChangesAppState(EventKind::kReleasePhaseSucceeded));
}

}  // namespace
}  // namespace relsupd
