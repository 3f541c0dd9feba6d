// Ledger: opening the database, its settings, and the schema migrations.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>

#include "daemon/ledger/ledger.h"
#include "daemon/ledger/sql.h"

namespace relsupd {

namespace {

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
    // 5: each app's run state as a row (see app_state.h), written with the
    // event that changes it; FillAppStates() replays the log into it once.
    // The index finds an app's events of some kinds without a scan.
    R"sql(
CREATE TABLE app_state (
  app TEXT PRIMARY KEY,
  active INTEGER NOT NULL DEFAULT 0,
  previous INTEGER NOT NULL DEFAULT 0,
  switching INTEGER NOT NULL DEFAULT 0,
  stopped_by_hand INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX events_kind ON events(app, kind, release);
)sql",
    // 6: `app delete` keeps the app's row (its releases and events refer to
    // it, and release numbers are never reused) and marks it, and its
    // builds, deleted. A name created again starts a new life at
    // first_release: releases below it (and builds marked deleted) belong
    // to the life before and are not the app's any more.
    R"sql(
ALTER TABLE apps ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN first_release INTEGER NOT NULL DEFAULT 1;
ALTER TABLE builds ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
)sql",
};
static_assert(std::size(kMigrations) == Ledger::kSchemaVersion);

// The ledger holds every app's config in plain text: only its owner reads
// it. SQLite creates -wal and -shm with the database file's mode, so the
// database under a 077 umask is enough for new files; files an older
// relsupd left (0644) are narrowed here, through an fd that never follows a
// link.
Status NarrowLedgerModes(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string name = path + suffix;
    int fd =
        ::open(name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return Status::FromErrno("cannot open '" + name + "'", errno);
    }
    struct stat st {};
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
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
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
    Status s = Exec(kMigrations[v]);
    if (s.ok() && v + 1 == 5) s = FillAppStates();
    RETURN_IF_ERROR(
        s.WithContext("migration to schema version " + std::to_string(v + 1)));
  }
  if (schema_version_ != kSchemaVersion) {
    std::string sql = "PRAGMA user_version=" + std::to_string(kSchemaVersion);
    RETURN_IF_ERROR(Exec(sql.c_str()));
  }
  RETURN_IF_ERROR(txn.Commit());
  schema_version_ = kSchemaVersion;
  return Status::Ok();
}

}  // namespace relsupd
