// The Switcher's release phase: a release's `release:` command, run once
// through a OneOff before the release first goes live (after verification,
// before `activating` and the link switch). It runs in the new slot with
// the release's environment as the app's user, its output in the app's
// logs as process `release`, and is stopped at its timeout. Exit 0 goes on
// to the link switch; anything else ends the switch with the old release
// live and untouched. Loop thread only.
#include <spdlog/spdlog.h>

#include "daemon/activate/switcher.h"
#include "daemon/base/release_id.h"
#include "daemon/supervise/command_argv.h"

namespace relsupd {

std::string LastLinesNote(const std::string& intro,
                          const std::vector<std::string>& lines) {
  if (lines.empty()) return "";
  std::string note = "; " + intro + ":";
  for (const auto& line : lines) note += "\n  " + line;
  return note;
}

Result<bool> Switcher::PhaseDue(const Switch* sw) {
  if (sw->run->processes.release.command.empty()) return false;
  if (sw->phase_run == ReleasePhaseRun::kForce) return true;
  const std::string& app = sw->info.app;
  ASSIGN_OR_RETURN(std::optional<Ledger::PhaseOutcome> outcome,
                   ledger_->ReleasePhaseOutcome(app, ReleaseId(sw->info.to)));
  if (outcome.has_value()) return *outcome == Ledger::PhaseOutcome::kFailed;
  // Never ran: due unless the release was live before (a rollback to a
  // release from before release phases, or one that had no command then).
  ASSIGN_OR_RETURN(Ledger::Activation act, ledger_->ActivationOf(app));
  return act.ever_activated.count(sw->info.to) == 0;
}

void Switcher::RunPhase(Switch* sw) {
  const std::string app = sw->info.app;
  const int64_t id = sw->info.id;
  const ReleaseId to(sw->info.to);
  const ReleaseCommand& rc = sw->run->processes.release;
  if (Status st = ledger_->AppendEvent(app, EventKind::kReleasePhaseStarted, to,
                                       sw->actor, rc.command);
      !st.ok())
    return Dispatch(
        sw, SwitchEvent::kPhaseFailed,
        st.WithContext("cannot record the release phase of " + to.ToString()));
  SuperviseEnv* env = supervisor_->env();
  OneOffSpec spec = OneOffOf(*sw->run, *env, std::string(kReleaseType),
                             CommandArgv(rc.command));
  auto phase =
      OneOff::Start(env, std::move(spec), [this, app, id](const ExitInfo& e) {
        if (Switch* s = Find(app, id)) OnPhaseExit(s, e);
      });
  if (!phase.ok()) {
    const std::string why = "cannot start: " + phase.status().message();
    ledger_
        ->AppendEvent(app, EventKind::kReleasePhaseFailed, to, sw->actor, why)
        .IgnoreError();
    return Dispatch(sw, SwitchEvent::kPhaseFailed,
                    FailedPrecondition("release phase of " + to.ToString() +
                                       " failed: " + why +
                                       "; the live release is unchanged"));
  }
  sw->phase = std::move(*phase);
  sw->phase_timed_out = false;
  spdlog::info("{}: release phase of {} runs (pid {}): {}", app, to.ToString(),
               sw->phase->pid(), rc.command);
  uv_timer_start(sw->phase_timer.get(), &Switcher::OnPhaseTimer,
                 static_cast<uint64_t>(rc.timeout_ms), 0);
}

void Switcher::OnPhaseTimer(uv_timer_t* timer) {
  auto* sw = static_cast<Switch*>(timer->data);
  if (sw == nullptr || sw->phase == nullptr) return;
  spdlog::warn(
      "{}: release phase of {} ran past its timeout ({} s), stopping it",
      sw->info.app, ReleaseId(sw->info.to).ToString(),
      sw->run->processes.release.timeout_ms / 1000);
  sw->phase_timed_out = true;
  sw->phase->Stop();
}

void Switcher::OnPhaseExit(Switch* sw, const ExitInfo& exit) {
  uv_timer_stop(sw->phase_timer.get());
  const std::string app = sw->info.app;
  const ReleaseId to(sw->info.to);
  const std::vector<std::string> tail = sw->phase->TailLines();
  // Destroyed in its own exit callback, which OneOff allows.
  sw->phase.reset();
  if (exit.status == 0 && exit.signal == 0 && !sw->phase_timed_out) {
    Status st = ledger_->AppendEvent(app, EventKind::kReleasePhaseSucceeded, to,
                                     sw->actor, exit.Describe());
    if (!st.ok())
      return Dispatch(
          sw, SwitchEvent::kPhaseFailed,
          st.WithContext("cannot record that the release phase of " +
                         to.ToString() + " succeeded"));
    spdlog::info("{}: release phase of {} succeeded", app, to.ToString());
    return Dispatch(sw, SwitchEvent::kPhaseSucceeded);
  }
  std::string detail = exit.Describe();
  if (sw->phase_timed_out)
    detail = "timed out after " +
             std::to_string(sw->run->processes.release.timeout_ms / 1000) +
             "s (" + detail + ")";
  if (Status st = ledger_->AppendEvent(app, EventKind::kReleasePhaseFailed, to,
                                       sw->actor, detail);
      !st.ok())
    spdlog::error("{}: cannot record the release phase's failure: {}", app,
                  st.message());
  std::string message = "release phase of " + to.ToString() +
                        " failed: " + detail +
                        "; the live release is unchanged";
  message += LastLinesNote("its last lines", tail);
  spdlog::warn("{}: release phase of {} failed: {}", app, to.ToString(),
               detail);
  Dispatch(sw, SwitchEvent::kPhaseFailed, FailedPrecondition(message));
}

void Switcher::StopPhase(Switch* sw) {
  if (sw->phase == nullptr || !sw->phase->running()) return;
  uv_timer_stop(sw->phase_timer.get());
  ledger_
      ->AppendEvent(sw->info.app, EventKind::kReleasePhaseFailed,
                    ReleaseId(sw->info.to), sw->actor,
                    "interrupted: the daemon is stopping")
      .IgnoreError();
  // Stopped as an instance is (stop signal, SIGKILL after the timeout);
  // the switch ends now, so its exit reports to nobody. What still runs
  // when the Switcher goes is killed with it.
  sw->phase->Stop();
  stopping_phases_.push_back(std::move(sw->phase));
}

void Switcher::MarkShuttingDown() {
  shutting_down_ = true;
  stopping_phases_.clear();
  for (auto& [app, sw] : switches_) sw->phase.reset();
}

}  // namespace relsupd
