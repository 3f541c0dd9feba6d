#include <catch2/catch.hpp>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

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

  SECTION("an edited detail") {
    f.Raw("UPDATE events SET detail='{}' WHERE id=2");
    auto r = f.Open()->VerifyHistory();
    REQUIRE(r->problems.size() == 1);
    CHECK(r->problems[0] == "event 2 was edited: its hash does not match its content");
  }
  SECTION("an edited actor with its hash recomputed by a naive forger") {
    f.Raw("UPDATE events SET actor_name='mallory', hash='" +
          std::string(64, 'f') + "' WHERE id=3");
    auto r = f.Open()->VerifyHistory();
    CHECK_FALSE(r->ok());
    CHECK(r->problems[0] == "event 3 was edited: its hash does not match its content");
    CHECK(r->problems[1] == "event 4 does not follow the event before it");
  }
  SECTION("a deleted middle event") {
    f.Raw("DELETE FROM events WHERE id=3");
    auto r = f.Open()->VerifyHistory();
    REQUIRE(r->problems.size() == 1);
    CHECK(r->problems[0] == "event 3 was deleted");
  }
  SECTION("a deleted newest event") {
    f.Raw("DELETE FROM events WHERE id=5");
    auto r = f.Open()->VerifyHistory();
    REQUIRE(r->problems.size() == 1);
    CHECK(r->problems[0] == "event 5 (the newest) was deleted");
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

}  // namespace
}  // namespace relsupd
