// E2E: the ledger on disk. Triggers refuse edits, the hash chain finds the
// edits made behind relsupd's back, and neither kill -9 nor SIGTERM loses a
// committed change.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <functional>
#include <set>
#include <sstream>

#include "daemon/ledger/ledger.h"
#include "tests/e2e/harness.h"

namespace relsupd::e2e {
namespace {

// A direct sqlite3 connection to a ledger.db, as an intruder would open it.
class Db {
 public:
  explicit Db(const std::string& path) {
    int rc =
        sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
    INFO(path << ": " << sqlite3_errstr(rc));
    REQUIRE(rc == SQLITE_OK);
    sqlite3_busy_timeout(db_, 5'000);
  }
  ~Db() { sqlite3_close(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // "" on success, else SQLite's message.
  std::string Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK)
      return "";
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return msg;
  }
  void MustExec(const std::string& sql) {
    std::string err = Exec(sql);
    INFO(sql);
    REQUIRE(err == "");
  }
  // The first column of the first row, as text ("" when no row).
  std::string Text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    INFO(sql);
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) ==
            SQLITE_OK);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(st, 0);
      if (t) out = reinterpret_cast<const char*>(t);
    }
    sqlite3_finalize(st);
    return out;
  }
  int64_t Int(const std::string& sql) { return std::stoll(Text(sql)); }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// Starts a daemon, creates apps a1..aN with the CLI (one event each) and
// stops it cleanly.
void MakeHistory(const TempDir& dir, int apps) {
  DaemonProcess d(dir);
  for (int i = 1; i <= apps; ++i)
    CtlOk(d.socket(), {"app", "create", "a" + std::to_string(i)});
  REQUIRE(d.Terminate().Exited(0));
}

std::string LedgerPath(const TempDir& dir) {
  return dir.Path("state/ledger.db");
}

void DropTriggers(Db& db) {
  db.MustExec("DROP TRIGGER events_no_update");
  db.MustExec("DROP TRIGGER events_no_delete");
}

// Restarts the daemon and runs `ctl history --verify`.
ProcResult VerifyAfterRestart(const TempDir& dir) {
  DaemonProcess d(dir);
  ProcResult r = RunCtl(d.socket(), {"history", "--verify"});
  ProcResult j = RunCtl(d.socket(), {"--json", "history", "--verify"});
  // --json reports the same verdict, and fails the same way.
  INFO(j.Describe());
  CHECK(j.status.code == r.status.code);
  Json verdict = Json::parse(j.out, nullptr, false);
  REQUIRE(verdict.is_object());
  CHECK(verdict["ok"] == r.status.Exited(0));
  return r;
}

// A history of three apps, edited behind relsupd's back: `edit` runs on a
// direct connection with the triggers dropped.
void TamperedHistory(const TempDir& dir, const std::function<void(Db&)>& edit) {
  MakeHistory(dir, 3);
  Db db(LedgerPath(dir));
  DropTriggers(db);
  edit(db);
}
void TamperedHistory(const TempDir& dir, const std::string& sql) {
  TamperedHistory(dir, [&](Db& db) { db.MustExec(sql); });
}

// Checks that `history --verify`, which gave `r`, exited with `code` and
// printed `out_has`.
void CheckVerdict(const ProcResult& r, int code, const std::string& out_has) {
  INFO(r.Describe());
  CHECK(r.status.Exited(code));
  CHECK_THAT(r.out, Catch::Contains(out_has));
}

std::set<std::string> AppNames(const Json& apps) {
  std::set<std::string> names;
  for (const auto& a : apps) names.insert(a["name"].get<std::string>());
  return names;
}

}  // namespace

TEST_CASE(
    "e2e ledger: triggers refuse UPDATE and DELETE on events and "
    "releases in a WAL ledger",
    "[e2e][ledger]") {
  TempDir dir;
  MakeHistory(dir, 2);
  Db db(LedgerPath(dir));
  CHECK(db.Text("PRAGMA journal_mode") == "wal");
  REQUIRE(db.Int("SELECT count(*) FROM events") == 2);
  const std::string detail = db.Text("SELECT detail FROM events WHERE id=1");

  std::string err = db.Exec("UPDATE events SET detail='{}' WHERE id=1");
  CHECK_THAT(err, Catch::Contains("events are append-only: UPDATE refused"));
  err = db.Exec("UPDATE events SET hash='x'");
  CHECK_THAT(err, Catch::Contains("events are append-only: UPDATE refused"));
  err = db.Exec("DELETE FROM events WHERE id=2");
  CHECK_THAT(err, Catch::Contains("events are append-only: DELETE refused"));
  err = db.Exec("DELETE FROM events");
  CHECK_THAT(err, Catch::Contains("events are append-only: DELETE refused"));

  CHECK(db.Int("SELECT count(*) FROM events") == 2);
  CHECK(db.Text("SELECT detail FROM events WHERE id=1") == detail);
  CHECK(db.Int("SELECT count(*) FROM apps") == 2);

  // Releases are immutable the same way. A release row is made by hand in
  // a transaction that is rolled back, so the ledger stays as it was.
  db.MustExec("BEGIN");
  db.MustExec(
      "INSERT INTO builds(app, sha256, format, size, entries, unpacked_bytes, "
      "imported_at, imported_by) VALUES('a1', 'feed', 'tar', 1, 1, 1, 0, "
      "'root')");
  db.MustExec(
      "INSERT INTO releases(app, number, build, digest, config, created_at, "
      "created_uid, created_by) VALUES('a1', 1, 'feed', 'd', '{}', 0, 0, "
      "'root')");
  err = db.Exec("UPDATE releases SET config='{\"DEBUG\":\"1\"}'");
  CHECK_THAT(err, Catch::Contains("releases are immutable: UPDATE refused"));
  err = db.Exec("DELETE FROM releases");
  CHECK_THAT(err, Catch::Contains("releases are immutable: DELETE refused"));
  CHECK(db.Int("SELECT count(*) FROM releases") == 1);
  db.MustExec("ROLLBACK");
  CHECK(db.Int("SELECT count(*) FROM releases") == 0);

  // The daemon still finds the history intact.
  CheckVerdict(VerifyAfterRestart(dir), 0, "History intact: 2 events checked");
}

TEST_CASE("e2e ledger: history shows a daemon-wide event with - for its app and release",
          "[e2e][ledger]") {
  TempDir dir;
  MakeHistory(dir, 1);
  {
    // daemon-reexec writes this event (docs/reexec.md 6.3); the daemon is
    // stopped, so the ledger is ours for the moment.
    auto ledger = Ledger::Open(LedgerPath(dir), RealClock());
    REQUIRE(ledger.ok());
    REQUIRE((*ledger)
                ->AppendEvent("", EventKind::kReexec, ReleaseId{}, Actor{0, "SIGUSR2"},
                              "0.9.0 -> 0.10.0")
                .ok());
  }
  DaemonProcess d(dir);
  ProcResult r = RunCtl(d.socket(), {"history"});
  INFO(r.Describe());
  REQUIRE(r.status.Exited(0));
  std::string line;
  std::istringstream out(r.out);
  for (std::string l; std::getline(out, l);)
    if (l.find("reexec") != std::string::npos) line = l;
  // ID TIME APP KIND RELEASE ACTOR DETAIL
  CHECK_THAT(line, Catch::Matches(R"(2 +\S+ +- +reexec +- +SIGUSR2 +0\.9\.0 -> 0\.10\.0 *)"));
  Json history = CtlJson(d.socket(), {"history"});
  REQUIRE(history.size() == 2);
  CHECK(history[1]["app"] == "");
  CHECK(history[1]["kind"] == "reexec");
  CheckVerdict(RunCtl(d.socket(), {"history", "--verify"}), 0,
               "History intact: 2 events checked");
}

TEST_CASE("e2e ledger: history --verify passes on an untouched ledger",
          "[e2e][ledger]") {
  TempDir dir;
  MakeHistory(dir, 3);
  CheckVerdict(VerifyAfterRestart(dir), 0, "History intact: 3 events checked");
}

TEST_CASE("e2e ledger: history --verify names an edited event",
          "[e2e][ledger]") {
  TempDir dir;
  TamperedHistory(dir,
                  "UPDATE events SET detail='{\"user\":\"root\"}' WHERE id=2");
  ProcResult r = VerifyAfterRestart(dir);
  CheckVerdict(r, 1, "event 2 was edited");
  INFO(r.Describe());
  CHECK_THAT(r.out, !Catch::Contains("event 1 "));
  CHECK_THAT(r.out, !Catch::Contains("event 3 "));
}

TEST_CASE(
    "e2e ledger: history --verify finds an edit whose hash was "
    "recomputed",
    "[e2e][ledger]") {
  TempDir dir;
  // The intruder knows the hash scheme and fixes the edited row's hash;
  // the next event still carries the old one.
  TamperedHistory(dir, [](Db& db) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(
                db.get(),
                "SELECT id, time, app, kind, release, actor_uid, "
                "actor_name, detail, prev_hash FROM events WHERE id=2",
                -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    auto text = [&](int col) {
      return std::string(
          reinterpret_cast<const char*>(sqlite3_column_text(st, col)));
    };
    Event e;
    e.id = sqlite3_column_int64(st, 0);
    e.time_ms = sqlite3_column_int64(st, 1);
    e.app = text(2);
    e.kind = text(3);
    e.release = text(4);
    e.actor_uid = sqlite3_column_int64(st, 5);
    e.actor_name = text(6);
    e.detail = text(7);
    e.prev_hash = text(8);
    sqlite3_finalize(st);
    e.actor_name = "someone-else";
    e.hash = EventHash(e);
    db.MustExec("UPDATE events SET actor_name='someone-else', hash='" + e.hash +
                "' WHERE id=2");
  });
  CheckVerdict(VerifyAfterRestart(dir), 1,
               "event 3 does not follow the event before it");
}

TEST_CASE("e2e ledger: history --verify names a deleted middle event",
          "[e2e][ledger]") {
  TempDir dir;
  TamperedHistory(dir, "DELETE FROM events WHERE id=2");
  CheckVerdict(VerifyAfterRestart(dir), 1, "event 2 was deleted");
}

TEST_CASE(
    "e2e ledger: history --verify detects a deleted newest event, even "
    "after new events",
    "[e2e][ledger]") {
  TempDir dir;
  TamperedHistory(dir, "DELETE FROM events WHERE id=3");
  CheckVerdict(VerifyAfterRestart(dir), 1, "event 3 (the newest) was deleted");
  {
    // The gap stays visible once the daemon appends after it.
    DaemonProcess d(dir);
    CtlOk(d.socket(), {"app", "create", "later"});
    CheckVerdict(RunCtl(d.socket(), {"history", "--verify"}), 1,
                 "event 3 was deleted");
  }
}

TEST_CASE(
    "e2e ledger: kill -9 right after app create keeps every app and "
    "its history",
    "[e2e][ledger][crash]") {
  TempDir dir;
  std::set<std::string> created;
  for (int round = 0; round < 3; ++round) {
    DaemonProcess d(dir);
    // Everything created before this round survived the last kill -9.
    CHECK(AppNames(CtlJson(d.socket(), {"app", "list"})) == created);
    for (int i = 0; i < 3; ++i) {
      std::string name =
          "r" + std::to_string(round) + "-app" + std::to_string(i);
      CtlOk(d.socket(), {"app", "create", name});
      created.insert(name);
    }
    d.Kill9();
  }
  DaemonProcess d(dir);
  CHECK(AppNames(CtlJson(d.socket(), {"app", "list"})) == created);
  Json history = CtlJson(d.socket(), {"history", "-n", "100"});
  REQUIRE(history.is_array());
  CHECK(history.size() == created.size());
  for (const auto& e : history) CHECK(e["kind"] == "app-created");
  CheckVerdict(RunCtl(d.socket(), {"history", "--verify"}), 0,
               "History intact: 9 events checked");
}

TEST_CASE(
    "e2e ledger: SIGTERM stops the daemon promptly with exit 0 and "
    "loses nothing",
    "[e2e][ledger][signal]") {
  TempDir dir;
  Json before;
  {
    DaemonProcess d(dir);
    for (const char* name : {"one", "two", "three"})
      CtlOk(d.socket(), {"app", "create", name});
    CtlOk(d.socket(), {"app", "show", "two"});
    before = CtlJson(d.socket(), {"history"});
    // A connected, silent client must not hold up the stop.
    RawConn idle(d.socket());
    const int64_t start = NowMs();
    ExitStatus st = d.Terminate();
    INFO(st.ToString());
    CHECK(st.Exited(0));
    CHECK(NowMs() - start < 2'000);
    CHECK(idle.WaitEnd(2'000) == RawConn::End::kEof);
    CHECK_THAT(d.Log(), Catch::Contains("relsupd daemon stopped"));
  }
  {
    Db db(LedgerPath(dir));
    CHECK(db.Int("SELECT count(*) FROM apps") == 3);
    CHECK(db.Int("SELECT count(*) FROM events") == 3);
  }
  DaemonProcess d(dir);
  CHECK(CtlJson(d.socket(), {"history"}) == before);
  CHECK(AppNames(CtlJson(d.socket(), {"app", "list"})) ==
        std::set<std::string>{"one", "two", "three"});
}

}  // namespace relsupd::e2e
