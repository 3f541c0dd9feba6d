#pragma once
// The switch of an app from one release to another (activate or rollback)
// as a table of phase x event -> next phase + actions, in the manner of the
// instance's table (daemon/supervise/instance_state.h).
//
//   verifying [-> release-phase -> verifying] (the link switch)
//   verifying -> [start-first] starting -> stopping-old (committing) -> done
//             -> [stop-first]  stopping-old -> starting -> stopping-old -> done
//   not ready by the deadline, crash loop, failed instance, or an outcome
//   the ledger cannot record: rolling-back -> checking-back -> done
//   (the release gone back to is judged as the new one was: the switch
//   ends saying whether it is ready, never just "rolled back")
//   a failed release phase: done (nothing was switched or started)
//
// The Switcher (switcher.h) waits for events and executes the returned
// actions; nothing else writes a switch's phase. Pure functions; any thread.

#include <cstdint>
#include <string_view>

#include "daemon/config/app_spec.h"

namespace relsupd {

enum class SwitchPhase {
  kVerifying,    // the release is verified; nothing has changed yet
  kReleasePhase,  // its release command runs; nothing else has changed
  kStoppingOld,  // stop-first: the old release stops before the new starts
  kStarting,     // the new group runs; waiting for it to be ready
  kCommitting,   // the new release is kept: the old one stops, then the
                 // outcome is recorded (printed "stopping-old")
  kRollingBack,  // back to the release live before the switch
  kCheckingBack,  // back; waiting for that release to be ready again
  kDone,         // ended; the switch is dropped
};
inline constexpr int kSwitchPhaseCount = 8;

enum class SwitchEvent {
  kVerified,      // verified, `activating` recorded, `current` switched
  kVerifyFailed,  // verification, loading, recording or the link failed
  kOldStopped,    // the groups being retired have stopped
  kFreshReady,    // every new instance is ready (and settled)
  kFreshFailed,   // a new instance failed, or the new group cannot start
  kCrashLoop,     // new instances exited too often while activating
  kDeadline,      // the activation deadline passed
  kLiveRecorded,  // the ledger recorded that the new release is live
  kLedgerFailed,  // the ledger cannot record that the new release is live
  kRolledBack,    // the previous release is back (or none, after a first)
  kShutdown,      // the daemon stops; Recover() settles it at next start
  kPhaseDue,        // verified and loaded, and its release phase must run
  kPhaseSucceeded,  // the release phase exited 0 and that is recorded
  kPhaseFailed,     // it failed (exit status, signal, timeout, ledger)
  kBackReady,       // the release gone back to is ready (or there is none)
  kBackNotReady,    // it failed or crash-loops since the switch went back
};
inline constexpr int kSwitchEventCount = 16;

// What the Switcher does, in this order (a bitset: several per step).
enum SwitchAction : uint32_t {
  kSwitchNone = 0,
  kStopDeadline = 1u << 0,   // stop the activation deadline timer
  kStopCheck = 1u << 1,      // stop the readiness check timer
  kKeepUnhealthy = 1u << 2,  // remember the failure as the switch's warning
  kArmDeadline = 1u << 3,    // arm the activation deadline timer
  kStopOld = 1u << 4,        // retire every group -> kOldStopped
  kStartNew = 1u << 5,       // start the new group beside the old one
  kRetireOld = 1u << 6,      // retire every group but the new -> kOldStopped
  kRecordLive = 1u << 7,     // record `activated`/`rolled-back`
                             // -> kLiveRecorded or kLedgerFailed
  kEndLive = 1u << 8,        // end ok, the new release live
  kGoBack = 1u << 9,         // link and processes back -> kRolledBack
  kRecordBack = 1u << 10,    // record `auto-rolled-back` (saying whether
                             // the release gone back to is ready), end
                             // failed
  kEnd = 1u << 11,           // end with the event's error, the old release live
  kWarnFailed = 1u << 12,    // log the new release's failure as a warning
  kIgnore = 1u << 13,        // stale or meaningless here: change nothing
  kRunPhase = 1u << 14,      // run the release phase -> kPhaseSucceeded
                             // or kPhaseFailed
  kSwitchLink = 1u << 15,    // record `activating`, switch `current`
                             // -> kVerified or kVerifyFailed
  kStopPhase = 1u << 16,     // end a release phase that still runs
  kCheckBack = 1u << 17,     // judge the release gone back to
                             // -> kBackReady or kBackNotReady (or kDeadline)
};

struct SwitchInput {
  SwitchPhase phase;
  SwitchEvent event;
  Strategy strategy = Strategy::kStartFirst;
  bool auto_rollback = true;
  // A failure was kept as a warning (auto_rollback off) while the old
  // release was still stopping: the new one starts and is kept at once.
  bool unhealthy = false;
};

struct SwitchStep {
  SwitchPhase next;
  uint32_t actions;  // SwitchAction bits
};

SwitchStep NextSwitchStep(const SwitchInput& in);

// The phase as `status` prints it: "verifying", "stopping-old", ...
std::string_view SwitchPhaseName(SwitchPhase p);
std::string_view SwitchEventName(SwitchEvent e);

}  // namespace relsupd
