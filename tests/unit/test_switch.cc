// The switch table (daemon/activate/switch_table.h), pair by pair: every
// phase x event, then what the strategy, auto_rollback and a kept failure
// change. Pure function: no loop, no children.
#include <catch2/catch.hpp>
#include <map>
#include <utility>

#include "daemon/activate/switch_table.h"

namespace relsupd {
namespace {

using P = SwitchPhase;
using E = SwitchEvent;

SwitchStep Step(P p, E e, Strategy strategy = Strategy::kStartFirst,
                bool auto_rollback = true, bool unhealthy = false) {
  return NextSwitchStep({p, e, strategy, auto_rollback, unhealthy});
}

constexpr uint32_t kShutdown = kStopDeadline | kStopCheck | kStopPhase | kEnd;
constexpr uint32_t kBack = kWarnFailed | kStopDeadline | kGoBack;

// Start-first, auto_rollback on, no failure kept.
const std::map<std::pair<P, E>, SwitchStep>& Expected() {
  static const std::map<std::pair<P, E>, SwitchStep> table = {
      {{P::kVerifying, E::kVerified}, {P::kStarting, kArmDeadline | kStartNew}},
      {{P::kVerifying, E::kVerifyFailed}, {P::kDone, kEnd}},
      {{P::kVerifying, E::kOldStopped}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kFreshReady}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kFreshFailed}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kCrashLoop}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kDeadline}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kLiveRecorded}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kLedgerFailed}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kRolledBack}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kVerifying, E::kPhaseDue}, {P::kReleasePhase, kRunPhase}},
      {{P::kVerifying, E::kPhaseSucceeded}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kPhaseFailed}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kBackReady}, {P::kVerifying, kIgnore}},
      {{P::kVerifying, E::kBackNotReady}, {P::kVerifying, kIgnore}},
      // The release phase: nothing of the new release runs, the link is
      // unchanged; only its own outcome (or a shutdown) moves it.
      {{P::kReleasePhase, E::kVerified}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kVerifyFailed}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kOldStopped}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kFreshReady}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kFreshFailed}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kCrashLoop}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kDeadline}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kLiveRecorded}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kLedgerFailed}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kRolledBack}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kReleasePhase, E::kPhaseDue}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kPhaseSucceeded}, {P::kVerifying, kSwitchLink}},
      {{P::kReleasePhase, E::kPhaseFailed}, {P::kDone, kEnd}},
      {{P::kReleasePhase, E::kBackReady}, {P::kReleasePhase, kIgnore}},
      {{P::kReleasePhase, E::kBackNotReady}, {P::kReleasePhase, kIgnore}},

      {{P::kStoppingOld, E::kVerified}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kVerifyFailed}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kOldStopped}, {P::kStarting, kStartNew}},
      {{P::kStoppingOld, E::kFreshReady}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kFreshFailed}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kCrashLoop}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kDeadline}, {P::kRollingBack, kBack}},
      {{P::kStoppingOld, E::kLiveRecorded}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kLedgerFailed}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kRolledBack}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kStoppingOld, E::kPhaseDue}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kPhaseSucceeded}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kPhaseFailed}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kBackReady}, {P::kStoppingOld, kIgnore}},
      {{P::kStoppingOld, E::kBackNotReady}, {P::kStoppingOld, kIgnore}},

      {{P::kStarting, E::kVerified}, {P::kStarting, kIgnore}},
      {{P::kStarting, E::kVerifyFailed}, {P::kStarting, kIgnore}},
      {{P::kStarting, E::kOldStopped}, {P::kStarting, kIgnore}},
      {{P::kStarting, E::kFreshReady},
       {P::kCommitting, kStopDeadline | kRetireOld}},
      {{P::kStarting, E::kFreshFailed}, {P::kRollingBack, kBack}},
      {{P::kStarting, E::kCrashLoop}, {P::kRollingBack, kBack}},
      {{P::kStarting, E::kDeadline}, {P::kRollingBack, kBack}},
      {{P::kStarting, E::kLiveRecorded}, {P::kStarting, kIgnore}},
      {{P::kStarting, E::kLedgerFailed}, {P::kStarting, kIgnore}},
      {{P::kStarting, E::kRolledBack}, {P::kStarting, kIgnore}},
      {{P::kStarting, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kStarting, E::kPhaseDue}, {P::kStarting, kIgnore}},
      {{P::kStarting, E::kPhaseSucceeded}, {P::kStarting, kIgnore}},
      {{P::kStarting, E::kPhaseFailed}, {P::kStarting, kIgnore}},
      {{P::kStarting, E::kBackReady}, {P::kStarting, kIgnore}},
      {{P::kStarting, E::kBackNotReady}, {P::kStarting, kIgnore}},

      {{P::kCommitting, E::kVerified}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kVerifyFailed}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kOldStopped}, {P::kCommitting, kRecordLive}},
      {{P::kCommitting, E::kFreshReady}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kFreshFailed}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kCrashLoop}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kDeadline}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kLiveRecorded}, {P::kDone, kEndLive}},
      {{P::kCommitting, E::kLedgerFailed}, {P::kRollingBack, kGoBack}},
      {{P::kCommitting, E::kRolledBack}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kCommitting, E::kPhaseDue}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kPhaseSucceeded}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kPhaseFailed}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kBackReady}, {P::kCommitting, kIgnore}},
      {{P::kCommitting, E::kBackNotReady}, {P::kCommitting, kIgnore}},

      {{P::kRollingBack, E::kVerified}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kVerifyFailed}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kOldStopped}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kFreshReady}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kFreshFailed}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kCrashLoop}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kDeadline}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kLiveRecorded}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kLedgerFailed}, {P::kRollingBack, kIgnore}},
      // Back: the release gone back to is judged before the switch ends.
      {{P::kRollingBack, E::kRolledBack},
       {P::kCheckingBack, kArmDeadline | kCheckBack}},
      {{P::kRollingBack, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kRollingBack, E::kPhaseDue}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kPhaseSucceeded}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kPhaseFailed}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kBackReady}, {P::kRollingBack, kIgnore}},
      {{P::kRollingBack, E::kBackNotReady}, {P::kRollingBack, kIgnore}},

      // Checking the release gone back to: ready, not ready (a failed
      // instance, a crash loop) or the deadline each end the switch, which
      // records the rollback saying which.
      {{P::kCheckingBack, E::kVerified}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kVerifyFailed}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kOldStopped}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kFreshReady}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kFreshFailed}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kCrashLoop}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kDeadline}, {P::kDone, kStopDeadline | kStopCheck | kRecordBack}},
      {{P::kCheckingBack, E::kLiveRecorded}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kLedgerFailed}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kRolledBack}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kCheckingBack, E::kPhaseDue}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kPhaseSucceeded}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kPhaseFailed}, {P::kCheckingBack, kIgnore}},
      {{P::kCheckingBack, E::kBackReady}, {P::kDone, kStopDeadline | kStopCheck | kRecordBack}},
      {{P::kCheckingBack, E::kBackNotReady}, {P::kDone, kStopDeadline | kStopCheck | kRecordBack}},

      {{P::kDone, E::kVerified}, {P::kDone, kIgnore}},
      {{P::kDone, E::kVerifyFailed}, {P::kDone, kIgnore}},
      {{P::kDone, E::kOldStopped}, {P::kDone, kIgnore}},
      {{P::kDone, E::kFreshReady}, {P::kDone, kIgnore}},
      {{P::kDone, E::kFreshFailed}, {P::kDone, kIgnore}},
      {{P::kDone, E::kCrashLoop}, {P::kDone, kIgnore}},
      {{P::kDone, E::kDeadline}, {P::kDone, kIgnore}},
      {{P::kDone, E::kLiveRecorded}, {P::kDone, kIgnore}},
      {{P::kDone, E::kLedgerFailed}, {P::kDone, kIgnore}},
      {{P::kDone, E::kRolledBack}, {P::kDone, kIgnore}},
      {{P::kDone, E::kShutdown}, {P::kDone, kIgnore}},
      {{P::kDone, E::kPhaseDue}, {P::kDone, kIgnore}},
      {{P::kDone, E::kPhaseSucceeded}, {P::kDone, kIgnore}},
      {{P::kDone, E::kPhaseFailed}, {P::kDone, kIgnore}},
      {{P::kDone, E::kBackReady}, {P::kDone, kIgnore}},
      {{P::kDone, E::kBackNotReady}, {P::kDone, kIgnore}},
  };
  return table;
}

void CheckStep(P p, E e, SwitchStep got, SwitchStep want) {
  INFO(SwitchPhaseName(p) << " x " << SwitchEventName(e) << " -> "
                          << SwitchPhaseName(got.next) << " / " << got.actions);
  CHECK(got.next == want.next);
  CHECK(got.actions == want.actions);
}

TEST_CASE("every phase x event pair has its expected step") {
  REQUIRE(Expected().size() == kSwitchPhaseCount * kSwitchEventCount);
  for (const auto& [key, want] : Expected())
    CheckStep(key.first, key.second, Step(key.first, key.second), want);
}

TEST_CASE("stop-first stops the old release before it starts the new one") {
  CheckStep(P::kVerifying, E::kVerified,
            Step(P::kVerifying, E::kVerified, Strategy::kStopFirst),
            {P::kStoppingOld, kArmDeadline | kStopOld});
  // Every other pair is the same under either strategy.
  for (const auto& [key, want] : Expected()) {
    if (key == std::pair{P::kVerifying, E::kVerified}) continue;
    CheckStep(key.first, key.second,
              Step(key.first, key.second, Strategy::kStopFirst), want);
  }
}

TEST_CASE(
    "with auto_rollback off a failure keeps the new release with a warning") {
  constexpr uint32_t kKeep = kWarnFailed | kStopDeadline | kKeepUnhealthy;
  for (E e : {E::kFreshFailed, E::kCrashLoop, E::kDeadline})
    CheckStep(P::kStarting, e,
              Step(P::kStarting, e, Strategy::kStartFirst, false),
              {P::kCommitting, kKeep | kRetireOld});
  // Stop-first, the old release still stopping: wait for it, then start the
  // new one and keep it at once.
  CheckStep(P::kStoppingOld, E::kDeadline,
            Step(P::kStoppingOld, E::kDeadline, Strategy::kStopFirst, false),
            {P::kStoppingOld, kKeep});
  CheckStep(
      P::kStoppingOld, E::kOldStopped,
      Step(P::kStoppingOld, E::kOldStopped, Strategy::kStopFirst, false, true),
      {P::kCommitting, kStartNew | kRetireOld});
  // The ledger cannot record the outcome: back whatever auto_rollback says.
  CheckStep(
      P::kCommitting, E::kLedgerFailed,
      Step(P::kCommitting, E::kLedgerFailed, Strategy::kStartFirst, false),
      {P::kRollingBack, kGoBack});
}

TEST_CASE(
    "a failed release phase ends the switch whatever the strategy and "
    "auto_rollback say") {
  for (Strategy st : {Strategy::kStartFirst, Strategy::kStopFirst})
    for (bool auto_rollback : {true, false}) {
      CheckStep(P::kReleasePhase, E::kPhaseFailed,
                Step(P::kReleasePhase, E::kPhaseFailed, st, auto_rollback),
                {P::kDone, kEnd});
      CheckStep(P::kReleasePhase, E::kPhaseSucceeded,
                Step(P::kReleasePhase, E::kPhaseSucceeded, st, auto_rollback),
                {P::kVerifying, kSwitchLink});
    }
}

TEST_CASE("phase names are what status prints") {
  CHECK(SwitchPhaseName(P::kVerifying) == "verifying");
  CHECK(SwitchPhaseName(P::kReleasePhase) == "release-phase");
  CHECK(SwitchPhaseName(P::kStoppingOld) == "stopping-old");
  CHECK(SwitchPhaseName(P::kStarting) == "starting");
  CHECK(SwitchPhaseName(P::kCommitting) == "stopping-old");
  CHECK(SwitchPhaseName(P::kRollingBack) == "rolling-back");
  CHECK(SwitchPhaseName(P::kCheckingBack) == "checking-back");
}

TEST_CASE(
    "a rollback, automatic or by hand, ends only once the release gone back "
    "to is judged, whatever the strategy and auto_rollback say") {
  for (Strategy st : {Strategy::kStartFirst, Strategy::kStopFirst})
    for (bool auto_rollback : {true, false}) {
      CheckStep(P::kRollingBack, E::kRolledBack,
                Step(P::kRollingBack, E::kRolledBack, st, auto_rollback),
                {P::kCheckingBack, kArmDeadline | kCheckBack});
      for (E e : {E::kBackReady, E::kBackNotReady, E::kDeadline})
        CheckStep(P::kCheckingBack, e,
                  Step(P::kCheckingBack, e, st, auto_rollback),
                  {P::kDone, kStopDeadline | kStopCheck | kRecordBack});
      // The new release's events no longer count.
      for (E e : {E::kFreshFailed, E::kCrashLoop, E::kFreshReady})
        CheckStep(P::kCheckingBack, e,
                  Step(P::kCheckingBack, e, st, auto_rollback),
                  {P::kCheckingBack, kIgnore});
    }
}

}  // namespace
}  // namespace relsupd
