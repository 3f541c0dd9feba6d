// Ledger: apps and their formation (scale per process type).
#include <nlohmann/json.hpp>

#include "daemon/ledger/ledger.h"
#include "daemon/ledger/sql.h"

namespace relsupd {

Status Ledger::WriteApp(const AppSpec& spec, AppWrite how) {
  const char* sql = nullptr;
  switch (how) {
    case AppWrite::kInsert:
      sql = "INSERT INTO apps(user, grp, keep_releases, sockets, strategy, "
            "activation_deadline_ms, auto_rollback, updated_at, name, "
            "uid, gid, dynamic_user, created_at) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?8)";
      break;
    case AppWrite::kUpdate:
      sql = "UPDATE apps SET user=?1, grp=?2, keep_releases=?3, sockets=?4, "
            "strategy=?5, activation_deadline_ms=?6, auto_rollback=?7, "
            "updated_at=?8, uid=?10, gid=?11, dynamic_user=?12 "
            "WHERE name=?9 AND deleted=0";
      break;
    case AppWrite::kRevive:
      sql = "UPDATE apps SET user=?1, grp=?2, keep_releases=?3, sockets=?4, "
            "strategy=?5, activation_deadline_ms=?6, auto_rollback=?7, "
            "updated_at=?8, uid=?10, gid=?11, dynamic_user=?12, "
            "created_at=?8, deleted=0, first_release=(SELECT COALESCE(MAX(number), 0) + 1 "
            "FROM releases WHERE app=?9) WHERE name=?9 AND deleted<>0";
      break;
  }
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

Result<bool> Ledger::IsDeletedApp(const std::string& name) {
  Stmt st(db_, "SELECT deleted FROM apps WHERE name=?");
  if (!st.prepared()) return Err("cannot prepare app query");
  st.Bind(1, name);
  int rc = st.Step();
  if (rc == SQLITE_DONE) return false;
  if (rc != SQLITE_ROW) return Err("cannot read app");
  return st.Int(0) != 0;
}

Result<std::set<int64_t>> Ledger::RetiredUids() {
  Stmt st(db_, "SELECT uid FROM apps WHERE deleted<>0 AND uid >= 0");
  if (!st.prepared()) return Err("cannot prepare uid query");
  std::set<int64_t> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.insert(st.Int(0));
  if (rc != SQLITE_DONE) return Err("cannot read uids");
  return out;
}

Status Ledger::CreateApp(const AppSpec& spec, const Actor& actor) {
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  auto existing = GetApp(spec.name);
  if (existing.ok())
    return AlreadyExists("app '" + spec.name + "' exists already");
  if (existing.status().code() != StatusCode::kNotFound)
    return existing.status();
  ASSIGN_OR_RETURN(bool deleted, IsDeletedApp(spec.name));
  RETURN_IF_ERROR(WriteApp(spec, deleted ? AppWrite::kRevive : AppWrite::kInsert));
  RETURN_IF_ERROR(InsertEventLocked(spec.name, EventKind::kAppCreated,
                                    ReleaseId(), actor,
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
  AppWrite how = AppWrite::kUpdate;
  if (insert) {
    ASSIGN_OR_RETURN(bool deleted, IsDeletedApp(spec.name));
    how = deleted ? AppWrite::kRevive : AppWrite::kInsert;
  }
  RETURN_IF_ERROR(WriteApp(spec, how));
  // An update records only what changed, as {"field": [old, new]}.
  const nlohmann::json detail = insert ? AppSpecToJson(spec) : AppSpecChanges(*existing, spec);
  RETURN_IF_ERROR(InsertEventLocked(
      spec.name, insert ? EventKind::kAppCreated : EventKind::kAppUpdated,
      ReleaseId(), actor, detail.dump()));
  RETURN_IF_ERROR(txn.Commit());
  return true;
}

Status Ledger::DeleteApp(const std::string& name, const Actor& actor) {
  Txn txn(this);
  RETURN_IF_ERROR(txn.Begin());
  ASSIGN_OR_RETURN(AppSpec spec, GetApp(name));
  ASSIGN_OR_RETURN(std::vector<ReleaseRow> releases, ListReleases(name));
  const std::string pruned_detail = nlohmann::json{{"reason", "app deleted"}}.dump();
  for (const ReleaseRow& r : releases)
    if (!r.pruned)
      RETURN_IF_ERROR(InsertEventLocked(name, EventKind::kPruned, ReleaseId(r.number),
                                        actor, pruned_detail));
  // The builds' files go with the app; their rows stay (releases name
  // them), marked, so a new life of the name sees none of them.
  for (const char* sql : {"UPDATE builds SET deleted=1 WHERE app=?1",
                          "DELETE FROM formation WHERE app=?1"}) {
    Stmt st(db_, sql);
    if (!st.prepared()) return Err("cannot prepare app delete");
    st.Bind(1, name);
    if (st.Step() != SQLITE_DONE) return Err("cannot delete app");
  }
  // The uid stays in the row, no longer the app's (dynamic_user 0): a
  // dynamic uid is given to another app only when none never used is free
  // (RetiredUids).
  Stmt mark(db_,
            "UPDATE apps SET deleted=1, updated_at=?2, dynamic_user=0 WHERE name=?1");
  if (!mark.prepared()) return Err("cannot prepare app delete");
  mark.Bind(1, name).Bind(2, clock_.WallMs());
  if (mark.Step() != SQLITE_DONE) return Err("cannot delete app");
  RETURN_IF_ERROR(InsertEventLocked(name, EventKind::kAppDeleted, ReleaseId(), actor,
                                    AppSpecToJson(spec).dump()));
  return txn.Commit();
}

namespace {
constexpr char kAppColumns[] =
    "SELECT name, user, grp, keep_releases, sockets, strategy, "
    "activation_deadline_ms, auto_rollback, uid, gid, dynamic_user FROM apps";

Result<AppSpec> ReadAppRow(Stmt& st) {
  AppSpec a;
  std::string sockets_text, strategy_text;
  st.Columns(a.name, a.user, a.group, a.keep_releases, sockets_text,
             strategy_text, a.activation_deadline_ms, a.auto_rollback, a.uid,
             a.gid, a.dynamic_user);
  auto sockets = nlohmann::json::parse(sockets_text, nullptr, false);
  if (!sockets.is_object())
    return Corruption("app '" + a.name + "' has malformed sockets");
  for (const auto& [k, v] : sockets.items())
    a.sockets.push_back({k, v.is_string() ? v.get<std::string>() : ""});
  auto strategy = ParseStrategy(strategy_text);
  if (!strategy.ok())
    return Corruption("app '" + a.name + "': " + strategy.status().message());
  a.strategy = *strategy;
  return a;
}
}  // namespace

Result<AppSpec> Ledger::GetApp(const std::string& name) {
  std::string sql = std::string(kAppColumns) + " WHERE name=? AND deleted=0";
  Stmt st(db_, sql.c_str());
  if (!st.prepared()) return Err("cannot prepare app query");
  st.Bind(1, name);
  int rc = st.Step();
  if (rc == SQLITE_DONE) return NotFound("app '" + name + "' does not exist");
  if (rc != SQLITE_ROW) return Err("cannot read app");
  return ReadAppRow(st);
}

Result<std::vector<AppSpec>> Ledger::ListApps() {
  std::string sql = std::string(kAppColumns) + " WHERE deleted=0 ORDER BY name";
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

Result<std::map<std::string, int>> Ledger::GetFormation(
    const std::string& app) {
  Stmt st(db_,
          "SELECT process, scale FROM formation WHERE app=? ORDER BY process");
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
                            ReleaseId release, const Actor& actor) {
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
  RETURN_IF_ERROR(
      InsertEventLocked(app, EventKind::kScaled, release, actor, detail));
  return txn.Commit();
}

}  // namespace relsupd
