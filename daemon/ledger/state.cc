// Ledger: the app_state rows (see app_state.h), read and written beside the
// events that move them, and filled from the event log by migration 5.
#include <map>

#include "daemon/ledger/ledger.h"
#include "daemon/ledger/sql.h"

namespace relsupd {

Result<AppState> Ledger::GetAppState(const std::string& app) {
  Stmt st(db_,
          "SELECT active, previous, switching, stopped_by_hand FROM app_state "
          "WHERE app=?");
  if (!st.prepared()) return Err("cannot prepare app state query");
  st.Bind(1, app);
  int rc = st.Step();
  if (rc == SQLITE_DONE) return AppState{};
  if (rc != SQLITE_ROW) return Err("cannot read app state");
  return AppState{.active = ReleaseId(st.Int(0)),
                  .previous = ReleaseId(st.Int(1)),
                  .switching = ReleaseId(st.Int(2)),
                  .stopped_by_hand = st.Int(3) != 0};
}

Status Ledger::WriteAppState(const std::string& app, const AppState& state) {
  Stmt st(db_,
          "INSERT INTO app_state(app, active, previous, switching, "
          "stopped_by_hand) VALUES(?,?,?,?,?) ON CONFLICT(app) DO UPDATE SET "
          "active=excluded.active, previous=excluded.previous, "
          "switching=excluded.switching, "
          "stopped_by_hand=excluded.stopped_by_hand");
  if (!st.prepared()) return Err("cannot prepare app state write");
  st.Bind(1, app).Bind(2, state.active.number());
  st.Bind(3, state.previous.number()).Bind(4, state.switching.number());
  st.Bind(5, int64_t{state.stopped_by_hand});
  if (st.Step() != SQLITE_DONE) return Err("cannot write app state");
  return Status::Ok();
}

Status Ledger::FillAppStates() {
  // One replay of the whole log, once, inside the migration's transaction.
  Stmt st(db_, "SELECT app, kind, release FROM events ORDER BY id");
  if (!st.prepared()) return Err("cannot prepare the event replay");
  std::map<std::string, AppState> states;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    std::optional<EventKind> kind = ParseEventKind(st.Text(1));
    if (!kind || !ChangesAppState(*kind)) continue;
    // Reading the log written before this row existed is the one place a
    // stored "v3" is parsed; one the old code could not read counts as none,
    // as it did there.
    Result<ReleaseId> release = ReleaseId::Parse(st.Text(2));
    AppState& state = states[st.Text(0)];
    state = NextAppState(state, *kind, release.ok() ? *release : ReleaseId());
  }
  if (rc != SQLITE_DONE) return Err("cannot replay events");
  for (const auto& [app, state] : states)
    RETURN_IF_ERROR(WriteAppState(app, state));
  return Status::Ok();
}

Result<bool> Ledger::StoppedByHand(const std::string& app) {
  ASSIGN_OR_RETURN(AppState state, GetAppState(app));
  return state.stopped_by_hand;
}

Result<Ledger::Activation> Ledger::ActivationOf(const std::string& app) {
  ASSIGN_OR_RETURN(AppState state, GetAppState(app));
  Activation a;
  a.active = state.active.number();
  a.previous = state.previous.number();
  // The activation events only, through the events_kind index (schema 5);
  // 'v' || number is how ReleaseId::ToString() printed the release.
  Stmt st(db_,
          "SELECT r.number FROM releases r JOIN (SELECT DISTINCT release FROM "
          "events WHERE app=?1 AND kind IN (?2, ?3, ?4)) e ON "
          "e.release='v' || r.number WHERE r.app=?1 AND r.number >= "
          "(SELECT first_release FROM apps WHERE name=?1)");
  if (!st.prepared()) return Err("cannot prepare activation query");
  st.Bind(1, app).Bind(2, EventKindName(EventKind::kActivated));
  st.Bind(3, EventKindName(EventKind::kRolledBack));
  st.Bind(4, EventKindName(EventKind::kAutoRolledBack));
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) a.ever_activated.insert(st.Int(0));
  if (rc != SQLITE_DONE) return Err("cannot read activations");
  return a;
}

}  // namespace relsupd
