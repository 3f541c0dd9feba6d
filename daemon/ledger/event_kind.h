#pragma once
// EventKind: what one ledger event records, and its one name.
//
// The name is what the `events.kind` column, the history JSON and the
// `ledger-append-KIND` failpoints hold; EventKindName() and ParseEventKind()
// are the only table between the two. Pure functions; any thread.

#include <optional>
#include <string_view>

namespace relsupd {

enum class EventKind {
  kAppCreated,        // app-created
  kAppUpdated,        // app-updated
  kImported,          // imported: a build
  kReleased,          // released
  kActivating,        // activating: before the link switch
  kActivated,         // activated
  kRolledBack,        // rolled-back
  kAutoRolledBack,    // auto-rolled-back: the daemon, when a switch fails
  kActivationFailed,  // activation-failed: a first activation failed
  kRecovered,         // recovered: fixed at start-up
  kScaled,            // scaled
  kStopped,           // stopped: by hand
  kStarted,           // started
  kRestarted,         // restarted
  kFailed,            // failed: an instance hit the crash limit
  kPruned,            // pruned: a release's slot removed
  kReleasePhaseStarted,    // release-phase-started: its command runs
  kReleasePhaseSucceeded,  // release-phase-succeeded: it exited 0
  kReleasePhaseFailed,     // release-phase-failed: exit status, signal,
                           // timeout or interruption
  kRunStarted,        // run-started: a one-off process (`ctl run`) starts
  kRan,               // ran: a one-off process ended (its exit status)
  kReexec,            // reexec: the daemon re-executed itself (daemon-wide:
                      // app "", detail "0.9.0 -> 0.10.0[, what went wrong]")
  kSignaled,          // signaled: `ctl signal` (detail "USR1 to web.1, web.2")
  kAppDeleted,        // app-deleted: `app delete` (detail: the spec it had)
};

// "app-created", "rolled-back", ...
std::string_view EventKindName(EventKind kind);
// The kind named `name`; nullopt for a name no relsupd wrote.
std::optional<EventKind> ParseEventKind(std::string_view name);

}  // namespace relsupd
