// The switch table (daemon/activate/switch_table.h), pair by pair: every
// phase x event, then what the strategy, auto_rollback and a kept failure
// change. Pure function: no loop, no children.
#include <catch2/catch.hpp>
#include <map>
#include <utility>
#include <vector>

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

// Start-first, auto_rollback on, no failure kept: the pairs that act. Every
// other pair keeps the phase and does nothing (Expected()).
const std::vector<std::pair<std::pair<P, E>, SwitchStep>>& Acting() {
  static const std::vector<std::pair<std::pair<P, E>, SwitchStep>> table = {
      {{P::kVerifying, E::kVerified}, {P::kStarting, kArmDeadline | kStartNew}},
      {{P::kVerifying, E::kVerifyFailed}, {P::kDone, kEnd}},
      {{P::kVerifying, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kVerifying, E::kPhaseDue}, {P::kReleasePhase, kRunPhase}},
      // The release phase: nothing of the new release runs, the link is
      // unchanged; only its own outcome (or a shutdown) moves it.
      {{P::kReleasePhase, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kReleasePhase, E::kPhaseSucceeded}, {P::kVerifying, kSwitchLink}},
      {{P::kReleasePhase, E::kPhaseFailed}, {P::kDone, kEnd}},
      {{P::kStoppingOld, E::kOldStopped}, {P::kStarting, kStartNew}},
      {{P::kStoppingOld, E::kDeadline}, {P::kRollingBack, kBack}},
      {{P::kStoppingOld, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kStarting, E::kFreshReady},
       {P::kCommitting, kStopDeadline | kRetireOld}},
      {{P::kStarting, E::kFreshFailed}, {P::kRollingBack, kBack}},
      {{P::kStarting, E::kCrashLoop}, {P::kRollingBack, kBack}},
      {{P::kStarting, E::kDeadline}, {P::kRollingBack, kBack}},
      {{P::kStarting, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kCommitting, E::kOldStopped}, {P::kCommitting, kRecordLive}},
      {{P::kCommitting, E::kLiveRecorded}, {P::kDone, kEndLive}},
      {{P::kCommitting, E::kLedgerFailed}, {P::kRollingBack, kGoBack}},
      {{P::kCommitting, E::kShutdown}, {P::kDone, kShutdown}},
      // Back: the release gone back to is judged before the switch ends.
      {{P::kRollingBack, E::kRolledBack},
       {P::kCheckingBack, kArmDeadline | kCheckBack}},
      {{P::kRollingBack, E::kShutdown}, {P::kDone, kShutdown}},

      // Checking the release gone back to: ready, not ready (a failed
      // instance, a crash loop) or the deadline each end the switch, which
      // records the rollback saying which.
      {{P::kCheckingBack, E::kDeadline}, {P::kDone, kStopDeadline | kStopCheck | kRecordBack}},
      {{P::kCheckingBack, E::kShutdown}, {P::kDone, kShutdown}},
      {{P::kCheckingBack, E::kBackReady}, {P::kDone, kStopDeadline | kStopCheck | kRecordBack}},
      {{P::kCheckingBack, E::kBackNotReady}, {P::kDone, kStopDeadline | kStopCheck | kRecordBack}},
  };
  return table;
}

// Every phase x event pair: Acting(), or the phase kept and kIgnore.
const std::map<std::pair<P, E>, SwitchStep>& Expected() {
  static const std::map<std::pair<P, E>, SwitchStep> table = [] {
    std::map<std::pair<P, E>, SwitchStep> all(Acting().begin(), Acting().end());
    for (int p = 0; p < kSwitchPhaseCount; ++p)
      for (int e = 0; e < kSwitchEventCount; ++e)
        all.try_emplace({P(p), E(e)}, SwitchStep{P(p), kIgnore});
    return all;
  }();
  return table;
}

void CheckStep(P p, E e, SwitchStep got, SwitchStep want) {
  INFO(SwitchPhaseName(p) << " x " << SwitchEventName(e) << " -> "
                          << SwitchPhaseName(got.next) << " / " << got.actions);
  CHECK(got.next == want.next);
  CHECK(got.actions == want.actions);
}

TEST_CASE("every phase x event pair has its expected step") {
  // Each acting pair is listed once.
  REQUIRE(std::map(Acting().begin(), Acting().end()).size() == Acting().size());
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
