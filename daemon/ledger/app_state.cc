#include "daemon/ledger/app_state.h"

namespace relsupd {

bool ChangesAppState(EventKind kind) {
  switch (kind) {
    case EventKind::kActivating:
    case EventKind::kActivated:
    case EventKind::kRolledBack:
    case EventKind::kAutoRolledBack:
    case EventKind::kActivationFailed:
    case EventKind::kRecovered:
    case EventKind::kStopped:
    case EventKind::kStarted:
    case EventKind::kAppDeleted:
      return true;
    default:
      return false;
  }
}

AppState NextAppState(AppState state, EventKind kind, ReleaseId release) {
  switch (kind) {
    case EventKind::kActivating:
      state.switching = release;
      break;
    case EventKind::kActivated:
    case EventKind::kRolledBack:
    case EventKind::kAutoRolledBack:
      // Going live again on the live release moves nothing back.
      if (!release.empty() && release != state.active) {
        state.previous = state.active;
        state.active = release;
      }
      state.switching = ReleaseId();
      state.stopped_by_hand = false;
      break;
    case EventKind::kActivationFailed:
    case EventKind::kRecovered:
      state.switching = ReleaseId();
      break;
    case EventKind::kStopped:
      state.stopped_by_hand = true;
      break;
    case EventKind::kStarted:
      state.stopped_by_hand = false;
      break;
    case EventKind::kAppDeleted:
      // Nothing runs and nothing is live: a name created again starts
      // from no release.
      state = AppState();
      break;
    default:
      break;
  }
  return state;
}

}  // namespace relsupd
