#include "daemon/ledger/ledger.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <string_view>

#include "daemon/base/failpoint.h"
#include "daemon/base/sha256.h"
#include <nlohmann/json.hpp>

namespace relsupd {
namespace {

constexpr char kGenesisHash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";
constexpr int kBusyTimeoutMs = 5000;

// Migration N takes the schema from version N-1 to N. Never edit one that
// has shipped; add a new one.
constexpr const char* kMigrations[] = {
    // 1: apps and the append-only event log.
    R"sql(
CREATE TABLE apps (
  name TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  grp TEXT NOT NULL,
  keep_releases INTEGER NOT NULL,
  sockets TEXT NOT NULL,
  strategy TEXT NOT NULL,
  activation_deadline_ms INTEGER NOT NULL,
  auto_rollback INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  app TEXT NOT NULL,
  kind TEXT NOT NULL,
  release TEXT NOT NULL,
  actor_uid INTEGER NOT NULL,
  actor_name TEXT NOT NULL,
  detail TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX events_app ON events(app, id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END;
)sql",
    // 2: builds and immutable releases.
    R"sql(
CREATE TABLE builds (
  app TEXT NOT NULL REFERENCES apps(name),
  sha256 TEXT NOT NULL,
  format TEXT NOT NULL,
  size INTEGER NOT NULL,
  entries INTEGER NOT NULL,
  unpacked_bytes INTEGER NOT NULL,
  imported_at INTEGER NOT NULL,
  imported_by TEXT NOT NULL,
  PRIMARY KEY (app, sha256)
) STRICT;
CREATE TABLE releases (
  app TEXT NOT NULL REFERENCES apps(name),
  number INTEGER NOT NULL,
  build TEXT NOT NULL,
  digest TEXT NOT NULL,
  config TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  created_uid INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  PRIMARY KEY (app, number),
  FOREIGN KEY (app, build) REFERENCES builds(app, sha256)
) STRICT;
CREATE TRIGGER releases_no_update BEFORE UPDATE ON releases
  BEGIN SELECT RAISE(ABORT, 'releases are immutable: UPDATE refused'); END;
CREATE TRIGGER releases_no_delete BEFORE DELETE ON releases
  BEGIN SELECT RAISE(ABORT, 'releases are immutable: DELETE refused'); END;
)sql",
    // 3: formation, the scale per process type (the current value; every
    // change is also a `scaled` event).
    R"sql(
CREATE TABLE formation (
  app TEXT NOT NULL REFERENCES apps(name),
  process TEXT NOT NULL,
  scale INTEGER NOT NULL CHECK (scale >= 0),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (app, process)
) STRICT;
)sql",
    // 4: the ids each app runs as (AppSpec::uid/gid/dynamic_user). -1: not
    // resolved yet (the user is looked up by name at each start, as before).
    // A dynamic uid belongs to one app only.
    R"sql(
ALTER TABLE apps ADD COLUMN uid INTEGER NOT NULL DEFAULT -1;
ALTER TABLE apps ADD COLUMN gid INTEGER NOT NULL DEFAULT -1;
ALTER TABLE apps ADD COLUMN dynamic_user INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX apps_dynamic_uid ON apps(uid) WHERE dynamic_user = 1;
)sql",
};
static_assert(std::size(kMigrations) == Ledger::kSchemaVersion);

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v3(db, sql, -1, 0, &s_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool prepared() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(s_); }
  int64_t Int(int col) { return sqlite3_column_int64(s_, col); }
  std::string Text(int col) {
    const unsigned char* t = sqlite3_column_text(s_, col);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

void AppendField(std::string* out, std::string_view field) {
  // Length-prefixed, so no two different events hash the same text.
  *out += std::to_string(field.size());
  *out += ':';
  *out += field;
  *out += '\n';
}

}  // namespace

// A BEGIN IMMEDIATE transaction, rolled back unless committed.
class Txn {
 public:
  explicit Txn(Ledger* l) : l_(l) {}
  Status Begin() {
    RETURN_IF_ERROR(l_->Exec("BEGIN IMMEDIATE"));
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    open_ = false;
    return l_->Exec("COMMIT");
  }
  ~Txn() {
    if (open_) l_->Exec("ROLLBACK").IgnoreError();
  }

 private:
  Ledger* l_;
  bool open_ = false;
};

std::string EventHash(const Event& e) {
  std::string text;
  AppendField(&text, e.prev_hash);
  AppendField(&text, std::to_string(e.id));
  AppendField(&text, std::to_string(e.time_ms));
  AppendField(&text, e.app);
  AppendField(&text, e.kind);
  AppendField(&text, e.release);
  AppendField(&text, std::to_string(e.actor_uid));
  AppendField(&text, e.actor_name);
  AppendField(&text, e.detail);
  return Sha256Hex(text);
}

namespace {

// The ledger holds every app's config in plain text: only its owner reads
// it. SQLite creates -wal and -shm with the database file's mode, so the
// database under a 077 umask is enough for new files; files an older
// relsupd left (0644) are narrowed here, through an fd that never follows a
// link.
Status NarrowLedgerModes(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string name = path + suffix;
    int fd = ::open(name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return Status::FromErrno("cannot open '" + name + "'", errno);
    }
    struct stat st{};
    int rc = ::fstat(fd, &st);
    if (rc == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0)
      rc = ::fchmod(fd, st.st_mode & 0700);
    int err = errno;
    ::close(fd);
    if (rc != 0) return Status::FromErrno("cannot chmod '" + name + "'", err);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& path,
                                             const Clock& clock) {
  RETURN_IF_ERROR(NarrowLedgerModes(path));
  sqlite3* db = nullptr;
  // Start-up, before any other thread creates files: a new ledger is 0600.
  const mode_t old_umask = ::umask(077);
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
          SQLITE_OPEN_EXRESCODE,
      nullptr);
  ::umask(old_umask);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status(StatusCode::kIoError,
                  "cannot open ledger '" + path + "': " + msg);
  }
  std::unique_ptr<Ledger> l(new Ledger(db, clock));
  l->path_ = path;
  Status s = l->Configure();
  if (s.ok()) s = l->Migrate();
  if (!s.ok()) return s.WithContext("ledger '" + path + "'");
  return l;
}

Ledger::~Ledger() { sqlite3_close(db_); }

Status Ledger::Err(const char* what) {
  int rc = sqlite3_extended_errcode(db_);
  StatusCode code = StatusCode::kIoError;
  if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)
    code = StatusCode::kCorruption;
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
    code = StatusCode::kBusy;
  if ((rc & 0xff) == SQLITE_CONSTRAINT) code = StatusCode::kFailedPrecondition;
  return Status(code, std::string(what) + ": " + sqlite3_errmsg(db_));
}

Status Ledger::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    Status s = Err("SQL failed");
    return Status(s.code(), "SQL failed: " + msg);
  }
  return Status::Ok();
}

Status Ledger::Configure() {
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  {
    Stmt st(db_, "PRAGMA journal_mode=WAL");
    if (!st.prepared() || st.Step() != SQLITE_ROW)
      return Err("cannot set journal_mode");
    if (st.Text(0) != "wal")
      return Internal("journal_mode is '" + st.Text(0) + "', not 'wal'");
  }
  RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
  {
    Stmt st(db_, "PRAGMA synchronous");
    if (!st.prepared() || st.Step() != SQLITE_ROW)
      return Err("cannot read synchronous");
    if (st.Int(0) != 2)
      return Internal("synchronous is " + std::to_string(st.Int(0)) +
                      ", not FULL (2)");
  }
  RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=ON"));
  Stmt ic(db_, "PRAGMA integrity_check");
  if (!ic.prepared()) return Err("cannot run integrity_check");
  std::string problems;
  int rc;
  while ((rc = ic.Step()) == SQLITE_ROW) {
    std::string row = ic.Text(0);
    if (row != "ok") problems += (problems.empty() ? "" : "; ") + row;
  }
  if (rc != SQLITE_DONE) return Err("integrity_check failed");
  if (!problems.empty())
    return Corruption("integrity_check failed: " + problems);
  return Status::Ok();
}

Status Ledger::Migrate() {
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  {
    Stmt st(db_, "PRAGMA user_version");
    if (!st.prepared() || st.Step() != SQLITE_ROW)
      return Err("cannot read schema version");
    schema_version_ = static_cast<int>(st.Int(0));
  }
  if (schema_version_ > kSchemaVersion)
    return FailedPrecondition(
        "schema version " + std::to_string(schema_version_) +
        " is newer than this relsupd understands (" +
        std::to_string(kSchemaVersion) + "); upgrade relsupd");
  for (int v = schema_version_; v < kSchemaVersion; ++v) {
    RETURN_IF_ERROR(Exec(kMigrations[v]).WithContext(
        "migration to schema version " + std::to_string(v + 1)));
  }
  if (schema_version_ != kSchemaVersion) {
    std::string sql = "PRAGMA user_version=" + std::to_string(kSchemaVersion);
    RETURN_IF_ERROR(Exec(sql.c_str()));
  }
  RETURN_IF_ERROR(txn.Commit());
  schema_version_ = kSchemaVersion;
  return Status::Ok();
}

Status Ledger::InsertEventLocked(const std::string& app, const std::string& kind,
                                 const std::string& release, const Actor& actor,
                                 const std::string& detail) {
  Event e;
  e.prev_hash = kGenesisHash;
  e.id = 1;
  {
    // The chain continues from the highest id ever issued, deleted or not,
    // so a tail deleted behind relsupd's back stays visible as a gap.
    Stmt st(db_,
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE "
            "name='events'), 0), (SELECT hash FROM events ORDER BY id DESC "
            "LIMIT 1)");
    if (!st.prepared() || st.Step() != SQLITE_ROW)
      return Err("cannot read the last event");
    e.id = st.Int(0) + 1;
    std::string last = st.Text(1);
    if (!last.empty()) e.prev_hash = last;
  }
  e.time_ms = clock_.WallMs();
  e.app = app;
  e.kind = kind;
  e.release = release;
  e.actor_uid = actor.uid;
  e.actor_name = actor.name;
  e.detail = detail;
  e.hash = EventHash(e);
  Stmt ins(db_,
           "INSERT INTO events(id, time, app, kind, release, actor_uid, "
           "actor_name, detail, prev_hash, hash) VALUES(?,?,?,?,?,?,?,?,?,?)");
  if (!ins.prepared()) return Err("cannot prepare event insert");
  ins.Bind(1, e.id).Bind(2, e.time_ms).Bind(3, e.app).Bind(4, e.kind);
  ins.Bind(5, e.release).Bind(6, e.actor_uid).Bind(7, e.actor_name);
  ins.Bind(8, e.detail).Bind(9, e.prev_hash).Bind(10, e.hash);
  if (ins.Step() != SQLITE_DONE) return Err("cannot record event");
  return Status::Ok();
}

Status Ledger::AppendEvent(const std::string& app, const std::string& kind,
                           const std::string& release, const Actor& actor,
                           const std::string& detail) {
  // Fault tests: RELSUPD_FAILPOINT=ledger-append-KIND fails the append of
  // every KIND event, as a full disk or an I/O error would.
  if (FailpointFails("ledger-append-" + kind))
    return Status(StatusCode::kIoError, "cannot append event '" + kind +
                                            "': injected failure (failpoint)");
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  RETURN_IF_ERROR(InsertEventLocked(app, kind, release, actor, detail));
  return txn.Commit();
}

Status Ledger::WriteApp(const AppSpec& spec, bool insert) {
  const char* sql =
      insert ? "INSERT INTO apps(user, grp, keep_releases, sockets, strategy, "
               "activation_deadline_ms, auto_rollback, updated_at, name, "
               "uid, gid, dynamic_user, created_at) "
               "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?8)"
             : "UPDATE apps SET user=?1, grp=?2, keep_releases=?3, sockets=?4, "
               "strategy=?5, activation_deadline_ms=?6, auto_rollback=?7, "
               "updated_at=?8, uid=?10, gid=?11, dynamic_user=?12 "
               "WHERE name=?9";
  Stmt st(db_, sql);
  if (!st.prepared()) return Err("cannot prepare app write");
  st.Bind(1, spec.user).Bind(2, spec.group).Bind(3, spec.keep_releases);
  st.Bind(4, AppSpecToJson(spec)["sockets"].dump());
  st.Bind(5, StrategyName(spec.strategy)).Bind(6, spec.activation_deadline_ms);
  st.Bind(7, int64_t{spec.auto_rollback}).Bind(8, clock_.WallMs());
  st.Bind(9, spec.name).Bind(10, spec.uid).Bind(11, spec.gid);
  st.Bind(12, int64_t{spec.dynamic_user});
  if (st.Step() != SQLITE_DONE) return Err("cannot write app");
  return Status::Ok();
}

Status Ledger::CreateApp(const AppSpec& spec, const Actor& actor) {
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  auto existing = GetApp(spec.name);
  if (existing.ok()) return AlreadyExists("app '" + spec.name + "' exists already");
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();
  RETURN_IF_ERROR(WriteApp(spec, /*insert=*/true));
  RETURN_IF_ERROR(InsertEventLocked(spec.name, "app-created", "", actor,
                                    AppSpecToJson(spec).dump()));
  return txn.Commit();
}

Result<bool> Ledger::ApplyApp(const AppSpec& spec, const Actor& actor) {
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  auto existing = GetApp(spec.name);
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound)
    return existing.status();
  if (existing.ok() && *existing == spec) return false;
  const bool insert = !existing.ok();
  RETURN_IF_ERROR(WriteApp(spec, insert));
  nlohmann::json detail = AppSpecToJson(spec);
  if (!insert) {
    // Record only what changed, as {"field": [old, new]}.
    nlohmann::json before = AppSpecToJson(*existing), changes;
    for (const auto& [k, v] : detail.items())
      if (before[k] != v) changes[k] = {before[k], v};
    detail = changes;
  }
  RETURN_IF_ERROR(InsertEventLocked(spec.name,
                                    insert ? "app-created" : "app-updated", "",
                                    actor, detail.dump()));
  RETURN_IF_ERROR(txn.Commit());
  return true;
}

namespace {
constexpr char kAppColumns[] =
    "SELECT name, user, grp, keep_releases, sockets, strategy, "
    "activation_deadline_ms, auto_rollback, uid, gid, dynamic_user FROM apps";

Result<AppSpec> ReadAppRow(Stmt& st) {
  AppSpec a;
  a.name = st.Text(0);
  a.user = st.Text(1);
  a.group = st.Text(2);
  a.keep_releases = st.Int(3);
  auto sockets = nlohmann::json::parse(st.Text(4), nullptr, false);
  if (!sockets.is_object())
    return Corruption("app '" + a.name + "' has malformed sockets");
  for (const auto& [k, v] : sockets.items())
    a.sockets.push_back({k, v.is_string() ? v.get<std::string>() : ""});
  auto strategy = ParseStrategy(st.Text(5));
  if (!strategy.ok())
    return Corruption("app '" + a.name + "': " + strategy.status().message());
  a.strategy = *strategy;
  a.activation_deadline_ms = st.Int(6);
  a.auto_rollback = st.Int(7) != 0;
  a.uid = st.Int(8);
  a.gid = st.Int(9);
  a.dynamic_user = st.Int(10) != 0;
  return a;
}
}  // namespace

Result<AppSpec> Ledger::GetApp(const std::string& name) {
  std::string sql = std::string(kAppColumns) + " WHERE name=?";
  Stmt st(db_, sql.c_str());
  if (!st.prepared()) return Err("cannot prepare app query");
  st.Bind(1, name);
  int rc = st.Step();
  if (rc == SQLITE_DONE) return NotFound("app '" + name + "' does not exist");
  if (rc != SQLITE_ROW) return Err("cannot read app");
  return ReadAppRow(st);
}

Result<std::vector<AppSpec>> Ledger::ListApps() {
  std::string sql = std::string(kAppColumns) + " ORDER BY name";
  Stmt st(db_, sql.c_str());
  if (!st.prepared()) return Err("cannot prepare app list");
  std::vector<AppSpec> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ASSIGN_OR_RETURN(AppSpec a, ReadAppRow(st));
    out.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return Err("cannot list apps");
  return out;
}

namespace {
constexpr char kEventColumns[] =
    "SELECT id, time, app, kind, release, actor_uid, actor_name, detail, "
    "prev_hash, hash FROM events";

Event ReadEventRow(Stmt& st) {
  Event e;
  e.id = st.Int(0);
  e.time_ms = st.Int(1);
  e.app = st.Text(2);
  e.kind = st.Text(3);
  e.release = st.Text(4);
  e.actor_uid = st.Int(5);
  e.actor_name = st.Text(6);
  e.detail = st.Text(7);
  e.prev_hash = st.Text(8);
  e.hash = st.Text(9);
  return e;
}
}  // namespace

Result<std::vector<Event>> Ledger::History(const std::optional<std::string>& app,
                                           int64_t limit) {
  std::string sql = kEventColumns;
  if (app) sql += " WHERE app=?2";
  sql += " ORDER BY id DESC LIMIT ?1";
  Stmt st(db_, sql.c_str());
  if (!st.prepared()) return Err("cannot prepare history query");
  st.Bind(1, limit);
  if (app) st.Bind(2, *app);
  std::vector<Event> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadEventRow(st));
  if (rc != SQLITE_DONE) return Err("cannot read history");
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<Event>> Ledger::EventsAfter(const std::optional<std::string>& app,
                                               int64_t after, int64_t limit) {
  std::string sql = std::string(kEventColumns) + " WHERE id > ?2";
  if (app) sql += " AND app=?3";
  sql += " ORDER BY id LIMIT ?1";
  Stmt st(db_, sql.c_str());
  if (!st.prepared()) return Err("cannot prepare history query");
  st.Bind(1, limit);
  st.Bind(2, after);
  if (app) st.Bind(3, *app);
  std::vector<Event> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadEventRow(st));
  if (rc != SQLITE_DONE) return Err("cannot read history");
  return out;
}

Result<int64_t> Ledger::CursorBeforeNewest(const std::optional<std::string>& app,
                                           int64_t count) {
  std::string sql = "SELECT id FROM events";
  if (app) sql += " WHERE app=?2";
  sql += " ORDER BY id DESC LIMIT 1 OFFSET ?1";
  Stmt st(db_, sql.c_str());
  if (!st.prepared()) return Err("cannot prepare history query");
  st.Bind(1, count);
  if (app) st.Bind(2, *app);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return st.Int(0);
  if (rc != SQLITE_DONE) return Err("cannot read history");
  return int64_t{0};
}

Result<VerifyReport> Ledger::VerifyHistoryOf(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status(StatusCode::kIoError,
                  "cannot open ledger '" + path + "' to verify it: " + msg);
  }
  // The walk only reads; the writer on the loop never waits for it (WAL).
  sqlite3_busy_timeout(db, 5'000);
  Ledger reader(db, RealClock());  // closes `db`
  reader.path_ = path;
  return reader.VerifyHistory();
}

Result<VerifyReport> Ledger::VerifyHistory() {
  VerifyReport report;
  auto problem = [&report](std::string text) {
    if (report.problems.size() < VerifyReport::kMaxProblems)
      report.problems.push_back(std::move(text));
    else
      ++report.more_problems;
  };
  Stmt st(db_, (std::string(kEventColumns) + " ORDER BY id").c_str());
  if (!st.prepared()) return Err("cannot prepare history walk");
  std::string prev = kGenesisHash;
  int64_t expect_id = 1;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    Event e = ReadEventRow(st);
    ++report.checked;
    if (e.id != expect_id) {
      problem(
          e.id - expect_id == 1
              ? "event " + std::to_string(expect_id) + " was deleted"
              : "events " + std::to_string(expect_id) + " to " +
                    std::to_string(e.id - 1) + " were deleted");
    } else if (e.prev_hash != prev) {
      problem("event " + std::to_string(e.id) +
              " does not follow the event before it");
    }
    if (EventHash(e) != e.hash)
      problem("event " + std::to_string(e.id) +
              " was edited: its hash does not match its content");
    prev = e.hash;
    expect_id = e.id + 1;
  }
  if (rc != SQLITE_DONE) return Err("cannot walk history");
  Stmt seq(db_, "SELECT seq FROM sqlite_sequence WHERE name='events'");
  if (seq.prepared() && seq.Step() == SQLITE_ROW && seq.Int(0) >= expect_id) {
    problem(
        seq.Int(0) == expect_id
            ? "event " + std::to_string(expect_id) + " (the newest) was deleted"
            : "events " + std::to_string(expect_id) + " to " +
                  std::to_string(seq.Int(0)) + " (the newest) were deleted");
  }
  return report;
}


namespace {

constexpr char kBuildColumns[] =
    "SELECT app, sha256, format, size, entries, unpacked_bytes, imported_at, "
    "imported_by FROM builds";

BuildRow ReadBuildRow(Stmt& st) {
  BuildRow b;
  b.app = st.Text(0);
  b.sha256 = st.Text(1);
  b.format = st.Text(2);
  b.size = st.Int(3);
  b.entries = st.Int(4);
  b.unpacked_bytes = st.Int(5);
  b.imported_at = st.Int(6);
  b.imported_by = st.Text(7);
  return b;
}

constexpr char kReleaseColumns[] =
    "SELECT app, number, build, digest, config, created_at, created_uid, "
    "created_by, EXISTS(SELECT 1 FROM events e WHERE e.app=r.app AND "
    "e.kind='pruned' AND e.release='v' || r.number) FROM releases r";

ReleaseRow ReadReleaseRow(Stmt& st) {
  ReleaseRow r;
  r.app = st.Text(0);
  r.number = st.Int(1);
  r.build = st.Text(2);
  r.digest = st.Text(3);
  r.config = st.Text(4);
  r.created_at = st.Int(5);
  r.created_uid = st.Int(6);
  r.created_by = st.Text(7);
  r.pruned = st.Int(8) != 0;
  return r;
}

}  // namespace

Result<bool> Ledger::RecordBuild(const BuildRow& b, const Actor& actor) {
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  RETURN_IF_ERROR(GetApp(b.app).status());
  Stmt ins(db_,
           "INSERT OR IGNORE INTO builds(app, sha256, format, size, entries, "
           "unpacked_bytes, imported_at, imported_by) VALUES(?,?,?,?,?,?,?,?)");
  if (!ins.prepared()) return Err("cannot prepare build insert");
  ins.Bind(1, b.app).Bind(2, b.sha256).Bind(3, b.format).Bind(4, b.size);
  ins.Bind(5, b.entries).Bind(6, b.unpacked_bytes).Bind(7, clock_.WallMs());
  ins.Bind(8, actor.name);
  if (ins.Step() != SQLITE_DONE) return Err("cannot record build");
  if (sqlite3_changes(db_) == 0) return false;
  nlohmann::json detail = {{"build", b.id()}, {"sha256", b.sha256},
                           {"format", b.format}, {"size", b.size}};
  RETURN_IF_ERROR(InsertEventLocked(b.app, "imported", "", actor, detail.dump()));
  RETURN_IF_ERROR(txn.Commit());
  return true;
}

Result<BuildRow> Ledger::FindBuild(const std::string& app, const std::string& id) {
  if (id.size() < 7 || id.size() > 64 ||
      id.find_first_not_of("0123456789abcdef") != std::string::npos)
    return InvalidArgument("build id '" + id +
                           "' must be 7 to 64 lower-case hex digits of its sha256");
  RETURN_IF_ERROR(GetApp(app).status());
  Stmt st(db_, (std::string(kBuildColumns) +
                " WHERE app=? AND substr(sha256, 1, ?)=? LIMIT 2").c_str());
  if (!st.prepared()) return Err("cannot prepare build query");
  st.Bind(1, app).Bind(2, static_cast<int64_t>(id.size())).Bind(3, id);
  std::vector<BuildRow> found;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) found.push_back(ReadBuildRow(st));
  if (rc != SQLITE_DONE) return Err("cannot read builds");
  if (found.empty())
    return NotFound("app '" + app + "' has no build '" + id + "'");
  if (found.size() > 1)
    return InvalidArgument("build id '" + id + "' is ambiguous in app '" + app +
                           "': give more digits");
  return found[0];
}

Result<std::vector<BuildRow>> Ledger::ListBuilds(const std::string& app) {
  RETURN_IF_ERROR(GetApp(app).status());
  Stmt st(db_, (std::string(kBuildColumns) + " WHERE app=? ORDER BY imported_at, sha256").c_str());
  if (!st.prepared()) return Err("cannot prepare build list");
  st.Bind(1, app);
  std::vector<BuildRow> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadBuildRow(st));
  if (rc != SQLITE_DONE) return Err("cannot list builds");
  return out;
}

Result<int64_t> Ledger::NextReleaseNumber(const std::string& app) {
  Stmt st(db_, "SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE app=?");
  if (!st.prepared()) return Err("cannot prepare release number query");
  st.Bind(1, app);
  if (st.Step() != SQLITE_ROW) return Err("cannot read release numbers");
  return st.Int(0);
}

Status Ledger::RecordRelease(const ReleaseRow& r, const Actor& actor,
                             const std::string& detail) {
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  Stmt ins(db_,
           "INSERT INTO releases(app, number, build, digest, config, created_at, "
           "created_uid, created_by) VALUES(?,?,?,?,?,?,?,?)");
  if (!ins.prepared()) return Err("cannot prepare release insert");
  ins.Bind(1, r.app).Bind(2, r.number).Bind(3, r.build).Bind(4, r.digest);
  ins.Bind(5, r.config).Bind(6, clock_.WallMs()).Bind(7, int64_t{actor.uid});
  ins.Bind(8, actor.name);
  if (ins.Step() != SQLITE_DONE) {
    if ((sqlite3_extended_errcode(db_) & 0xff) == SQLITE_CONSTRAINT &&
        GetRelease(r.app, r.number).ok())
      return AlreadyExists("release v" + std::to_string(r.number) + " of app '" +
                           r.app + "' exists already");
    return Err("cannot record release");
  }
  RETURN_IF_ERROR(InsertEventLocked(r.app, "released", "v" + std::to_string(r.number),
                                    actor, detail));
  return txn.Commit();
}

Result<Ledger::Activation> Ledger::ActivationOf(const std::string& app) {
  Stmt st(db_,
          "SELECT release FROM events WHERE app=? AND kind IN ('activated', "
          "'rolled-back', 'auto-rolled-back') ORDER BY id");
  if (!st.prepared()) return Err("cannot prepare activation query");
  st.Bind(1, app);
  Activation a;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    std::string name = st.Text(0);
    if (name.size() < 2 || name[0] != 'v') continue;
    int64_t n = std::strtoll(name.c_str() + 1, nullptr, 10);
    if (n == a.active) continue;
    a.previous = a.active;
    a.active = n;
    a.ever_activated.insert(n);
  }
  if (rc != SQLITE_DONE) return Err("cannot read activations");
  return a;
}

Result<ReleaseRow> Ledger::GetRelease(const std::string& app, int64_t number) {
  Stmt st(db_, (std::string(kReleaseColumns) + " WHERE r.app=? AND r.number=?").c_str());
  if (!st.prepared()) return Err("cannot prepare release query");
  st.Bind(1, app).Bind(2, number);
  int rc = st.Step();
  if (rc == SQLITE_DONE)
    return NotFound("app '" + app + "' has no release v" + std::to_string(number));
  if (rc != SQLITE_ROW) return Err("cannot read release");
  return ReadReleaseRow(st);
}

Result<std::vector<ReleaseRow>> Ledger::ListReleases(const std::string& app) {
  Stmt st(db_, (std::string(kReleaseColumns) + " WHERE r.app=? ORDER BY r.number").c_str());
  if (!st.prepared()) return Err("cannot prepare release list");
  st.Bind(1, app);
  std::vector<ReleaseRow> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadReleaseRow(st));
  if (rc != SQLITE_DONE) return Err("cannot list releases");
  return out;
}

Result<std::map<std::string, int>> Ledger::GetFormation(
    const std::string& app) {
  Stmt st(db_, "SELECT process, scale FROM formation WHERE app=? ORDER BY process");
  if (!st.prepared()) return Err("cannot prepare formation query");
  st.Bind(1, app);
  std::map<std::string, int> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW)
    out[st.Text(0)] = static_cast<int>(st.Int(1));
  if (rc != SQLITE_DONE) return Err("cannot read formation");
  return out;
}

Status Ledger::SetFormation(const std::string& app,
                            const std::map<std::string, int>& scales,
                            const std::string& release, const Actor& actor) {
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  std::string detail;
  for (const auto& [process, scale] : scales) {
    Stmt up(db_,
            "INSERT INTO formation(app, process, scale, updated_at) "
            "VALUES(?,?,?,?) ON CONFLICT(app, process) DO UPDATE SET "
            "scale=excluded.scale, updated_at=excluded.updated_at");
    if (!up.prepared()) return Err("cannot prepare formation update");
    up.Bind(1, app).Bind(2, process).Bind(3, int64_t{scale});
    up.Bind(4, clock_.WallMs());
    if (up.Step() != SQLITE_DONE) return Err("cannot record formation");
    if (!detail.empty()) detail += ' ';
    detail += process + "=" + std::to_string(scale);
  }
  RETURN_IF_ERROR(InsertEventLocked(app, "scaled", release, actor, detail));
  return txn.Commit();
}

Result<std::optional<Event>> Ledger::LastEvent(
    const std::string& app, const std::vector<std::string>& kinds) {
  ASSIGN_OR_RETURN(std::vector<Event> events, History(app, 1'000'000));
  for (auto it = events.rbegin(); it != events.rend(); ++it)
    for (const auto& k : kinds)
      if (it->kind == k) return std::optional<Event>(*it);
  return std::optional<Event>();
}

Result<bool> Ledger::StoppedByHand(const std::string& app) {
  Stmt st(db_,
          "SELECT kind FROM events WHERE app=? AND kind IN ('stopped', "
          "'started', 'activated', 'rolled-back', 'auto-rolled-back') "
          "ORDER BY id DESC LIMIT 1");
  if (!st.prepared()) return Err("cannot prepare run state query");
  st.Bind(1, app);
  int rc = st.Step();
  if (rc == SQLITE_DONE) return false;
  if (rc != SQLITE_ROW) return Err("cannot read run state");
  return st.Text(0) == "stopped";
}

}  // namespace relsupd
