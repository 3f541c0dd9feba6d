#include "daemon/activate/switch_table.h"

namespace relsupd {
namespace {

using P = SwitchPhase;
using E = SwitchEvent;

constexpr SwitchStep Ignore(P phase) { return {phase, kIgnore}; }

// The new release failed (deadline, crash loop, failed instance): back to
// the old one, or, with auto_rollback off, keep the new one with a warning.
SwitchStep AfterFailure(const SwitchInput& in) {
  constexpr uint32_t kStop = kWarnFailed | kStopDeadline;
  if (in.auto_rollback) return {P::kRollingBack, kStop | kGoBack};
  // Stop-first, the old release still stopping: the new one is started and
  // kept once it has stopped.
  if (in.phase == P::kStoppingOld)
    return {P::kStoppingOld, kStop | kKeepUnhealthy};
  return {P::kCommitting, kStop | kKeepUnhealthy | kRetireOld};
}

SwitchStep FromVerifying(const SwitchInput& in) {
  if (in.event == E::kVerifyFailed) return {P::kDone, kEnd};
  if (in.event == E::kPhaseDue) return {P::kReleasePhase, kRunPhase};
  if (in.event != E::kVerified) return Ignore(in.phase);
  if (in.strategy == Strategy::kStopFirst)
    return {P::kStoppingOld, kArmDeadline | kStopOld};
  return {P::kStarting, kArmDeadline | kStartNew};
}

// Nothing of the new release runs and the link is unchanged: a failure
// ends the switch with the old release live as it was.
SwitchStep FromReleasePhase(const SwitchInput& in) {
  if (in.event == E::kPhaseSucceeded) return {P::kVerifying, kSwitchLink};
  if (in.event == E::kPhaseFailed) return {P::kDone, kEnd};
  return Ignore(in.phase);
}

SwitchStep FromStoppingOld(const SwitchInput& in) {
  if (in.event == E::kOldStopped) {
    if (in.unhealthy) return {P::kCommitting, kStartNew | kRetireOld};
    return {P::kStarting, kStartNew};
  }
  // Only the deadline: the new group has not started yet.
  if (in.event == E::kDeadline) return AfterFailure(in);
  return Ignore(in.phase);
}

SwitchStep FromStarting(const SwitchInput& in) {
  if (in.event == E::kFreshReady)
    return {P::kCommitting, kStopDeadline | kRetireOld};
  if (in.event == E::kFreshFailed || in.event == E::kCrashLoop ||
      in.event == E::kDeadline)
    return AfterFailure(in);
  return Ignore(in.phase);
}

SwitchStep FromCommitting(const SwitchInput& in) {
  if (in.event == E::kOldStopped) return {P::kCommitting, kRecordLive};
  if (in.event == E::kLiveRecorded) return {P::kDone, kEndLive};
  // The link names the new release and it runs, but the ledger still names
  // the old one: go back whatever auto_rollback says (switcher.cc).
  if (in.event == E::kLedgerFailed) return {P::kRollingBack, kGoBack};
  return Ignore(in.phase);
}

}  // namespace

SwitchStep NextSwitchStep(const SwitchInput& in) {
  if (in.phase == P::kDone) return Ignore(in.phase);
  // The daemon stops: every switch ends where it is, without an outcome in
  // the ledger (Recover() settles its `activating` at the next start).
  if (in.event == E::kShutdown)
    return {P::kDone, kStopDeadline | kStopCheck | kStopPhase | kEnd};
  switch (in.phase) {
    case P::kVerifying:
      return FromVerifying(in);
    case P::kReleasePhase:
      return FromReleasePhase(in);
    case P::kStoppingOld:
      return FromStoppingOld(in);
    case P::kStarting:
      return FromStarting(in);
    case P::kCommitting:
      return FromCommitting(in);
    case P::kRollingBack:
      if (in.event == E::kRolledBack)
        return {P::kCheckingBack, kArmDeadline | kCheckBack};
      return Ignore(in.phase);
    case P::kCheckingBack:
      // Ready or not, the switch ends back where it was; the outcome says
      // which (the event's reason).
      if (in.event == E::kBackReady || in.event == E::kBackNotReady ||
          in.event == E::kDeadline)
        return {P::kDone, kStopDeadline | kStopCheck | kRecordBack};
      return Ignore(in.phase);
    case P::kDone:
      break;
  }
  return Ignore(in.phase);
}

static_assert(static_cast<int>(SwitchPhase::kDone) + 1 == kSwitchPhaseCount);
static_assert(static_cast<int>(SwitchEvent::kBackNotReady) + 1 ==
              kSwitchEventCount);

std::string_view SwitchPhaseName(SwitchPhase p) {
  // kCommitting prints as the phase it was before it had a name of its own.
  static constexpr std::string_view kNames[kSwitchPhaseCount] = {
      "verifying",    "release-phase", "stopping-old",  "starting",
      "stopping-old", "rolling-back",  "checking-back", "done"};
  return kNames[static_cast<int>(p)];
}

std::string_view SwitchEventName(SwitchEvent e) {
  static constexpr std::string_view kNames[kSwitchEventCount] = {
      "verified",        "verify-failed", "old-stopped", "fresh-ready",
      "fresh-failed",    "crash-loop",    "deadline",    "live-recorded",
      "ledger-failed",   "rolled-back",   "shutdown",    "phase-due",
      "phase-succeeded", "phase-failed",  "back-ready",  "back-not-ready"};
  return kNames[static_cast<int>(e)];
}

}  // namespace relsupd
