#pragma once
// AppState: what the ledger keeps of an app's run state in its `app_state`
// row, and the pure function that moves it on with each event.
//
// The row is written in the same transaction as the event that changes it
// (Ledger::InsertEventLocked), so it always equals a replay of the event
// log; schema migration 5 fills it by that replay. Pure; any thread.

#include "daemon/base/release_id.h"
#include "daemon/ledger/event_kind.h"

namespace relsupd {

struct AppState {
  ReleaseId active;    // the live release (activated, rolled back to)
  ReleaseId previous;  // the one a rollback returns to
  // An `activating` event with no outcome yet: a switch the daemon was in
  // the middle of when it stopped (recovered at the next start).
  ReleaseId switching;
  // The last of stopped/started/activated/rolled-back/auto-rolled-back was
  // `stopped` (ctl stop): the daemon leaves the app stopped at start-up.
  bool stopped_by_hand = false;

  bool operator==(const AppState&) const = default;
};

// Whether an event of `kind` can change an AppState.
bool ChangesAppState(EventKind kind);
// The state after one event of `kind` about `release` (none for events
// without one).
AppState NextAppState(AppState state, EventKind kind, ReleaseId release);

}  // namespace relsupd
