// Ledger: how a release's release phase last ended, from its
// release-phase-succeeded / -failed events (loop thread, as the Ledger).
#include "daemon/ledger/event_kind.h"
#include "daemon/ledger/ledger.h"
#include "daemon/ledger/sql.h"

namespace relsupd {

Result<std::optional<Ledger::PhaseOutcome>> Ledger::ReleasePhaseOutcome(
    const std::string& app, ReleaseId release) {
  // Two lookups in the events_kind index (app, kind, release).
  Stmt st(db_,
          "SELECT kind FROM events WHERE app=?1 AND kind IN (?2, ?3) AND "
          "release=?4 ORDER BY id DESC LIMIT 1");
  if (!st.prepared()) return Err("cannot prepare release phase query");
  st.Bind(1, app).Bind(2, EventKindName(EventKind::kReleasePhaseSucceeded));
  st.Bind(3, EventKindName(EventKind::kReleasePhaseFailed));
  st.Bind(4, release.ToString());
  const int rc = st.Step();
  if (rc == SQLITE_DONE) return std::optional<PhaseOutcome>();
  if (rc != SQLITE_ROW) return Err("cannot read the release phase's outcome");
  return std::optional<PhaseOutcome>(
      st.Text(0) == EventKindName(EventKind::kReleasePhaseSucceeded)
          ? PhaseOutcome::kSucceeded
          : PhaseOutcome::kFailed);
}

}  // namespace relsupd
