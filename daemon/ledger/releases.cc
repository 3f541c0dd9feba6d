// Ledger: imported builds, immutable releases, and which one is active.
#include <nlohmann/json.hpp>

#include <optional>

#include "daemon/ledger/ledger.h"
#include "daemon/ledger/sql.h"

namespace relsupd {

namespace {

constexpr char kBuildColumns[] =
    "SELECT app, sha256, format, size, entries, unpacked_bytes, imported_at, "
    "imported_by FROM builds";

// Every row of `sql`, whose one parameter is the app, as `read` makes it;
// false when it cannot be prepared or a step fails.
template <typename Row>
bool ReadAppRows(sqlite3* db, const std::string& sql, const std::string& app,
                 Row (*read)(Stmt&), std::vector<Row>* out) {
  Stmt st(db, sql.c_str());
  if (!st.prepared()) return false;
  st.Bind(1, app);
  return st.ReadAll(read, out);
}

BuildRow ReadBuildRow(Stmt& st) {
  BuildRow b;
  st.Columns(b.app, b.sha256, b.format, b.size, b.entries, b.unpacked_bytes,
             b.imported_at, b.imported_by);
  return b;
}

// `pruned` is derived from the event log; 'v' || number is how
// ReleaseId::ToString() prints the release in the event.
constexpr char kReleaseColumns[] =
    "SELECT app, number, build, digest, config, created_at, created_uid, "
    "created_by, EXISTS(SELECT 1 FROM events e WHERE e.app=r.app AND "
    "e.kind='pruned' AND e.release='v' || r.number) FROM releases r";
// The app's releases are those of its current life: an app deleted and
// created again starts at apps.first_release (schema 6).
constexpr char kThisLife[] =
    " AND r.number >= (SELECT first_release FROM apps a WHERE a.name=r.app)";

// The stored JSON object of strings, or nullopt when it is not one.
std::optional<ReleaseConfig> DecodeConfig(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  ReleaseConfig out;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) return std::nullopt;
    out[k] = v.get<std::string>();
  }
  return out;
}

ReleaseRow ReadReleaseRow(Stmt& st) {
  ReleaseRow r;
  std::string config_text;
  st.Columns(r.app, r.number, r.build, r.digest, config_text, r.created_at,
             r.created_uid, r.created_by, r.pruned);
  if (auto config = DecodeConfig(config_text))
    r.config = std::move(*config);
  else
    r.config_malformed = true;
  return r;
}

}  // namespace

Result<bool> Ledger::RecordBuild(const BuildRow& b, const Actor& actor) {
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  RETURN_IF_ERROR(GetApp(b.app).status());
  // A build of the app's life before (deleted with it) is imported anew.
  Stmt ins(db_,
           "INSERT INTO builds(app, sha256, format, size, entries, "
           "unpacked_bytes, imported_at, imported_by) VALUES(?,?,?,?,?,?,?,?) "
           "ON CONFLICT(app, sha256) DO UPDATE SET format=excluded.format, "
           "size=excluded.size, entries=excluded.entries, "
           "unpacked_bytes=excluded.unpacked_bytes, imported_at=excluded.imported_at, "
           "imported_by=excluded.imported_by, deleted=0 WHERE deleted<>0");
  if (!ins.prepared()) return Err("cannot prepare build insert");
  ins.Bind(1, b.app).Bind(2, b.sha256).Bind(3, b.format).Bind(4, b.size);
  ins.Bind(5, b.entries).Bind(6, b.unpacked_bytes).Bind(7, clock_.WallMs());
  ins.Bind(8, actor.name);
  if (ins.Step() != SQLITE_DONE) return Err("cannot record build");
  if (sqlite3_changes(db_) == 0) return false;
  nlohmann::json detail = {{"build", b.id()},
                           {"sha256", b.sha256},
                           {"format", b.format},
                           {"size", b.size}};
  RETURN_IF_ERROR(InsertEventLocked(b.app, EventKind::kImported, ReleaseId(),
                                    actor, detail.dump()));
  RETURN_IF_ERROR(txn.Commit());
  return true;
}

Result<BuildRow> Ledger::FindBuild(const std::string& app,
                                   const std::string& id) {
  if (id.size() < 7 || id.size() > 64 ||
      id.find_first_not_of("0123456789abcdef") != std::string::npos)
    return InvalidArgument(
        "build id '" + id +
        "' must be 7 to 64 lower-case hex digits of its sha256");
  RETURN_IF_ERROR(GetApp(app).status());
  Stmt st(db_, (std::string(kBuildColumns) +
                " WHERE app=? AND deleted=0 AND substr(sha256, 1, ?)=? LIMIT 2")
                   .c_str());
  if (!st.prepared()) return Err("cannot prepare build query");
  st.Bind(1, app).Bind(2, static_cast<int64_t>(id.size())).Bind(3, id);
  std::vector<BuildRow> found;
  if (!st.ReadAll(ReadBuildRow, &found)) return Err("cannot read builds");
  if (found.empty())
    return NotFound("app '" + app + "' has no build '" + id + "'");
  if (found.size() > 1)
    return InvalidArgument("build id '" + id + "' is ambiguous in app '" + app +
                           "': give more digits");
  return found[0];
}

Result<std::vector<BuildRow>> Ledger::ListBuilds(const std::string& app) {
  RETURN_IF_ERROR(GetApp(app).status());
  std::vector<BuildRow> out;
  if (!ReadAppRows(db_, std::string(kBuildColumns) + " WHERE app=? AND deleted=0 ORDER BY imported_at, sha256",
                   app, ReadBuildRow, &out))
    return Err("cannot list builds");
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
  Stmt ins(
      db_,
      "INSERT INTO releases(app, number, build, digest, config, created_at, "
      "created_uid, created_by) VALUES(?,?,?,?,?,?,?,?)");
  if (!ins.prepared()) return Err("cannot prepare release insert");
  ins.Bind(1, r.app).Bind(2, r.number).Bind(3, r.build).Bind(4, r.digest);
  ins.Bind(5, nlohmann::json(r.config).dump()).Bind(6, clock_.WallMs()).Bind(7, int64_t{actor.uid});
  ins.Bind(8, actor.name);
  if (ins.Step() != SQLITE_DONE) {
    if ((sqlite3_extended_errcode(db_) & 0xff) == SQLITE_CONSTRAINT &&
        GetRelease(r.app, r.number).ok())
      return AlreadyExists("release " + ReleaseId(r.number).ToString() +
                           " of app '" + r.app + "' exists already");
    return Err("cannot record release");
  }
  RETURN_IF_ERROR(InsertEventLocked(r.app, EventKind::kReleased,
                                    ReleaseId(r.number), actor, detail));
  return txn.Commit();
}

Result<ReleaseRow> Ledger::GetRelease(const std::string& app, int64_t number) {
  Stmt st(
      db_,
      (std::string(kReleaseColumns) + " WHERE r.app=? AND r.number=?" + kThisLife).c_str());
  if (!st.prepared()) return Err("cannot prepare release query");
  st.Bind(1, app).Bind(2, number);
  int rc = st.Step();
  if (rc == SQLITE_DONE)
    return NotFound("app '" + app + "' has no release " +
                    ReleaseId(number).ToString());
  if (rc != SQLITE_ROW) return Err("cannot read release");
  return ReadReleaseRow(st);
}

Result<std::vector<ReleaseRow>> Ledger::ListReleases(const std::string& app) {
  std::vector<ReleaseRow> out;
  if (!ReadAppRows(db_, std::string(kReleaseColumns) + " WHERE r.app=?" + kThisLife + " ORDER BY r.number", app,
                   ReadReleaseRow, &out))
    return Err("cannot list releases");
  return out;
}

}  // namespace relsupd
