// The Switcher: activation and rollback, driven by the switch table.
//
//   ready checks vs. daemon-held sockets -> verify -> [release phase, when
//   due: release_phase.cc] -> `activating`
//   -> [before-switch] link -> [after-switch]
//   start-first: start new -> ready -> [after-start-new] -> stop old ->
//   [after-stop-old] stop-first:  stop old -> [after-stop-old] -> start new ->
//   ready -> [after-start-new]
//   -> `activated` / `rolled-back`
//
// Not ready by the deadline, or crash-looping: back to the previous release
// (`auto-rolled-back`, with the reason). A crash anywhere leaves an
// `activating` without an outcome, which Recover() settles at start-up.
#include "daemon/activate/switcher.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "daemon/activate/switch_judge.h"
#include "daemon/base/failpoint.h"
#include "daemon/base/release_id.h"
#include "daemon/config/process_file.h"
#include "daemon/config/ready_sockets.h"
#include "daemon/logs/log_store.h"
#include "daemon/store/release_service.h"
#include "daemon/store/slots.h"

namespace relsupd {
namespace {

const Actor kDaemonActor{0, "relsupd"};

// `release` ("v2") as a word of `text`.
bool Mentions(const std::string& text, const std::string& release) {
  for (size_t at = text.find(release); at != std::string::npos;
       at = text.find(release, at + 1)) {
    const size_t end = at + release.size();
    const bool starts = at == 0 || !std::isalnum(static_cast<unsigned char>(text[at - 1]));
    const bool ends = end == text.size() || !std::isdigit(static_cast<unsigned char>(text[end]));
    if (starts && ends) return true;
  }
  return false;
}

}  // namespace

Switcher::Switcher(Supervisor* supervisor, Ledger* ledger,
                   ReleaseService* releases, std::string state_dir,
                   RunLoader load_run)
    : supervisor_(supervisor),
      ledger_(ledger),
      releases_(releases),
      state_dir_(std::move(state_dir)),
      load_run_(std::move(load_run)) {}

Switcher::~Switcher() { shutting_down_ = true; }

std::string Switcher::AppDir(const std::string& app) const {
  return state_dir_ + "/apps/" + app;
}

Status Switcher::RefuseDuringSwitch(const std::string& app) const {
  if (shutting_down_)
    return Status(StatusCode::kBusy, "the daemon is stopping");
  auto it = switches_.find(app);
  if (it == switches_.end()) return Status::Ok();
  const SwitchInfo& s = it->second->info;
  return Status(StatusCode::kBusy,
                "a switch of '" + app + "' is in progress: " + s.kind + " to " +
                    ReleaseId(s.to).ToString() + " by " + s.actor + " (" +
                    std::string(SwitchPhaseName(s.phase)) +
                    "); try again when it ends");
}

bool Switcher::FreshGroupAlive(const Switch* sw) {
  if (sw->fresh == nullptr) return false;
  for (ReleaseGroup* g : supervisor_->Groups(sw->info.app))
    if (g == sw->fresh) return true;
  return false;
}

const SwitchInfo* Switcher::Current(const std::string& app) const {
  auto it = switches_.find(app);
  return it == switches_.end() ? nullptr : &it->second->info;
}

void Switcher::Forget(const std::string& app) {
  outcomes_.erase(app);
  std::erase_if(activation_counts_, [&](const auto& kv) { return kv.first.first == app; });
}

const SwitchOutcome* Switcher::Last(const std::string& app) const {
  auto it = outcomes_.find(app);
  return it == outcomes_.end() ? nullptr : &it->second;
}

Status Switcher::RefuseReexec() const {
  if (!switches_.empty()) {
    const SwitchInfo& i = switches_.begin()->second->info;
    std::string from = i.from != 0 ? ReleaseId(i.from).ToString() + " -> " : "";
    return Status(StatusCode::kBusy, "a switch is in progress: " + i.app + " " + from +
                                         ReleaseId(i.to).ToString() + " (" +
                                         std::string(SwitchPhaseName(i.phase)) +
                                         "); retry when it has ended");
  }
  if (!stopping_phases_.empty())
    return Status(StatusCode::kBusy,
                  "the release phase of an ended switch is still stopping; retry in a moment");
  return Status::Ok();
}

void Switcher::Adopt(std::map<std::string, SwitchOutcome> outcomes, int64_t next_switch_id) {
  // Ids stay unique even if the record's counter lags its outcomes.
  next_switch_id_ = std::max<int64_t>(next_switch_id, 1);
  for (const auto& [app, o] : outcomes) next_switch_id_ = std::max(next_switch_id_, o.id + 1);
  outcomes_ = std::move(outcomes);
}

Switcher::Switch* Switcher::Find(const std::string& app, int64_t id) {
  auto it = switches_.find(app);
  if (it == switches_.end() || it->second->info.id != id) return nullptr;
  return it->second.get();
}

std::function<void()> Switcher::Later(Switch* sw, SwitchEvent event,
                                      Status why) {
  return [this, app = sw->info.app, id = sw->info.id, event, why] {
    if (Switch* s = Find(app, id)) Dispatch(s, event, why);
  };
}

void Switcher::Dispatch(Switch* sw, SwitchEvent event, Status why) {
  const SwitchStep step =
      NextSwitchStep({sw->info.phase, event, sw->info.strategy,
                      sw->spec.auto_rollback, !sw->unhealthy.empty()});
  if (step.actions & kIgnore) {
    spdlog::debug("{}: switch {} ignores {} while {}", sw->info.app,
                  sw->info.id, SwitchEventName(event),
                  SwitchPhaseName(sw->info.phase));
    return;
  }
  sw->info.phase = step.next;  // the only write of a switch's phase
  Execute(sw, step.actions, why);
}

void Switcher::Execute(Switch* sw, uint32_t actions, const Status& why) {
  const std::string app = sw->info.app;
  const int64_t id = sw->info.id;
  if (actions & kWarnFailed) {
    const std::string to = ReleaseId(sw->info.to).ToString();
    spdlog::warn("{}: switch {}failed: {}", app,
                 Mentions(why.message(), to) ? "" : "to " + to + " ",
                 why.message());
  }
  if (actions & kStopDeadline) uv_timer_stop(sw->deadline.get());
  if (actions & kStopCheck) uv_timer_stop(sw->check.get());
  if (actions & kStopPhase) StopPhase(sw);
  if (actions & kKeepUnhealthy) sw->unhealthy = why.message();
  if (actions & kArmDeadline) ArmDeadline(sw);
  if (actions & kStopOld)
    supervisor_->Retire(app, nullptr, Later(sw, SwitchEvent::kOldStopped));
  // From here on an action may end the switch (a callback may run at once,
  // a check may fail and go back): only the step's last one may, and the
  // one that can follow another (kRetireOld after kStartNew) checks first.
  if (actions & kRunPhase) RunPhase(sw);
  if (actions & kSwitchLink) SwitchLink(sw);
  if (actions & kStartNew) StartNew(sw);
  if ((actions & kRetireOld) && Find(app, id) == sw)
    supervisor_->Retire(app, sw->fresh, Later(sw, SwitchEvent::kOldStopped));
  if (actions & kRecordLive) RecordLive(sw);
  if (actions & kEndLive) End(sw, Status::Ok(), sw->info.to);
  if (actions & kGoBack) GoBack(sw, why.message());
  if (actions & kCheckBack) CheckBack(sw);
  if (actions & kRecordBack) RecordBack(sw, why.message());
  if (actions & kEnd) End(sw, why, sw->info.from);
}

Result<int64_t> Switcher::Target(const ActivateRequest& req,
                                 const AppSpec& spec,
                                 const Ledger::Activation& act) {
  const std::string& app = req.app;
  int64_t target = req.release;
  if (target == 0) {
    target = act.previous;
    if (target == 0)
      return FailedPrecondition(
          "app '" + app + "' has nothing to roll back to: " +
          (act.active != 0
               ? ReleaseId(act.active).ToString() + " is the only release ever active"
               : std::string("no release was ever active")));
  }
  ASSIGN_OR_RETURN(ReleaseRow row, ledger_->GetRelease(app, target));
  if (row.pruned)
    return FailedPrecondition("release " + ReleaseId(target).ToString() + " of '" + app +
                              "' was pruned and cannot be activated");
  if (const ReleaseGroup* live = supervisor_->Active(app);
      target == act.active && live != nullptr && live->run().number == target)
    return target;
  // A tcp or http ready check aimed at one of the app's daemon-held sockets
  // would pass at once (the daemon accepts). Refused here, before anything
  // is recorded or verified; Prepare checks the loaded release again
  // against the sockets of that moment. An unreadable process file is left
  // to verification and LoadRun to name.
  if (auto procs = LoadProcessFile(SlotPath(state_dir_, app, target));
      procs.ok()) {
    if (Status s = CheckReadyAgainstSockets(*procs, spec.sockets); !s.ok())
      return s.WithContext("release " + ReleaseId(target).ToString());
    // Start-first beside running instances that bind $PORT themselves
    // cannot work (app_sockets.h); refused before anything changes.
    GiveSocketsToWeb(spec, &*procs);
    auto formation = ledger_->GetFormation(app);
    // The scales recorded for the app apply to the new release's types:
    // together within kMaxInstances.
    if (formation.ok()) {
      const int64_t total = TotalInstances(*procs, *formation);
      if (total > kMaxInstances)
        return InvalidArgument("release " + ReleaseId(target).ToString() + " of '" + app +
                               "' would run " + std::to_string(total) +
                               " instances in all with the app's scales, more than the " +
                               std::to_string(kMaxInstances) + " an app may run");
    }
    if (req.strategy.value_or(spec.strategy) == Strategy::kStartFirst &&
        supervisor_->Active(app) != nullptr && formation.ok())
      if (Status s = CheckStartFirstPorts(*procs, row.config, *formation);
          !s.ok())
        return s.WithContext("start-first switch of '" + app + "' to " +
                             ReleaseId(target).ToString() + " refused");
  }
  return target;
}

void Switcher::Activate(const ActivateRequest& req,
                        std::function<void(Result<int64_t>)> started,
                        std::function<void(Status)> done) {
  const std::string& app = req.app;
  auto spec = ledger_->GetApp(app);
  if (!spec.ok()) return started(spec.status());
  if (Status busy = RefuseDuringSwitch(app); !busy.ok()) return started(busy);
  auto act = ledger_->ActivationOf(app);
  if (!act.ok()) return started(act.status());
  Result<int64_t> to = Target(req, *spec, *act);
  if (!to.ok()) return started(to.status());
  const int64_t target = *to;
  if (ReleaseGroup* live = supervisor_->Active(app);
      target == act->active && live != nullptr &&
      live->run().number == target)
    return AlreadyLive(req, live, started, done);

  auto sw = std::make_unique<Switch>();
  sw->owner = this;
  sw->info = {next_switch_id_++,
              app,
              req.kind,
              act->active,
              target,
              req.strategy.value_or(spec->strategy),
              SwitchPhase::kVerifying,
              supervisor_->env()->clock->WallMs(),
              req.actor.name};
  sw->actor = req.actor;
  sw->spec = *spec;
  sw->done = std::move(done);
  sw->phase_run = req.release_phase;
  for (auto* t : {&sw->deadline, &sw->check, &sw->phase_timer}) {
    uv_timer_init(supervisor_->env()->loop, (*t).get());
    (*t)->data = sw.get();
  }
  const int64_t id = sw->info.id;
  switches_[app] = std::move(sw);
  started(id);
  releases_->VerifyRelease(
      app, target, [this, app, id](Result<ReleaseVerification> r) {
        Switch* s = Find(app, id);
        if (s == nullptr) return;
        Status prepared = Prepare(s, r);
        if (!prepared.ok())
          return Dispatch(s, SwitchEvent::kVerifyFailed, prepared);
        Result<bool> due = PhaseDue(s);
        if (!due.ok())
          return Dispatch(s, SwitchEvent::kVerifyFailed, due.status());
        if (*due) return Dispatch(s, SwitchEvent::kPhaseDue);
        SwitchLink(s);
      });
}

void Switcher::AlreadyLive(const ActivateRequest& req, ReleaseGroup* group,
                           const std::function<void(Result<int64_t>)>& started,
                           const std::function<void(Status)>& done) {
  const std::string& app = req.app;
  const ReleaseId live(group->run().number);
  std::string failed;
  for (const Instance* i : group->Instances())
    if (i->state() == InstanceState::kFailed)
      failed += (failed.empty() ? "" : ", ") + i->name();
  std::string note = live.ToString() + " of " + app + " is already live; ";
  bool changed = false;
  auto stopped = ledger_->StoppedByHand(app);
  if (stopped.ok() && *stopped) {
    note += "it is stopped by hand: 'relsupd ctl start " + app + "' starts it";
  } else if (!failed.empty()) {
    if (Status st = ledger_->AppendEvent(app, EventKind::kStarted, live,
                                         req.actor, "failed: " + failed);
        !st.ok())
      return started(st.WithContext("cannot record the start of " + failed));
    group->StartAll();
    changed = true;
    note += "started its failed instances again: " + failed;
  } else {
    note += "nothing to do";
  }
  const int64_t id = next_switch_id_++;
  SwitchOutcome& o = outcomes_[app];
  o = SwitchOutcome{};
  o.id = id;
  o.ok = true;
  o.live = live.number();
  o.note = note;
  o.changed = changed;
  spdlog::info("{}: {}", app, note);
  started(id);
  if (done) done(Status::Ok());
}

Status Switcher::Prepare(Switch* sw, const Result<ReleaseVerification>& r) {
  const std::string app = sw->info.app;
  const std::string to = ReleaseId(sw->info.to).ToString();
  RETURN_IF_ERROR(r.status());
  if (!r->result.ok()) {
    std::string problems;
    for (const auto& p : r->result.problems) problems += " " + p;
    const ManifestDiff& diff = r->result.diff;
    for (const auto& [k, paths] : {std::pair{"added", &diff.added},
                                   std::pair{"removed", &diff.removed},
                                   std::pair{"changed", &diff.changed}})
      for (const auto& p : *paths)
        problems += std::string(" ") + k + " '" + p + "'";
    return Corruption("release " + to + " does not verify:" + problems);
  }
  // Stop-first binds the app's new sockets only once the old release
  // stopped (StartNew): it may hold their port itself until then.
  ASSIGN_OR_RETURN(sw->run,
                   load_run_(app, sw->info.to,
                             sw->info.strategy == Strategy::kStopFirst
                                 ? SocketBind::kAtSpawn
                                 : SocketBind::kNow));
  auto spec = ledger_->GetApp(app);
  Status ready =
      spec.ok() ? CheckReadyAgainstSockets(sw->run->processes, spec->sockets)
                : spec.status();
  if (!ready.ok()) return ready.WithContext("release " + to);
  return Status::Ok();
}

void Switcher::SwitchLink(Switch* sw) {
  const std::string app = sw->info.app;
  const std::string to = ReleaseId(sw->info.to).ToString();
  std::string detail =
      (sw->info.from != 0 ? "from " + ReleaseId(sw->info.from).ToString() : "first") +
      ", " + std::string(StrategyName(sw->info.strategy));
  const auto t0 = std::chrono::steady_clock::now();
  if (Status st =
          ledger_->AppendEvent(app, EventKind::kActivating,
                               ReleaseId(sw->info.to), sw->actor, detail);
      !st.ok())
    return Dispatch(sw, SwitchEvent::kVerifyFailed, st);
  Failpoint("before-switch");
  Status s = SwitchCurrentLink(AppDir(app), "releases/" + to);
  if (!s.ok()) {
    // Nothing changed: the link still names the old release.
    ledger_
        ->AppendEvent(app, EventKind::kActivationFailed, ReleaseId(sw->info.to),
                      kDaemonActor, s.message())
        .IgnoreError();
    return Dispatch(sw, SwitchEvent::kVerifyFailed,
                    s.WithContext("switching 'current'"));
  }
  Failpoint("after-switch");
  const auto switch_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - t0)
                             .count();
  spdlog::info("{}: current -> {} ({}), {}; switched in {}us", app, to,
               sw->info.kind, StrategyName(sw->info.strategy), switch_us);
  Dispatch(sw, SwitchEvent::kVerified);
}

void Switcher::ArmDeadline(Switch* sw) {
  uv_timer_start(sw->deadline.get(), &Switcher::OnDeadlineTimer,
                 static_cast<uint64_t>(sw->spec.activation_deadline_ms), 0);
}

void Switcher::OnDeadlineTimer(uv_timer_t* timer) {
  auto* sw = static_cast<Switch*>(timer->data);
  if (sw == nullptr) return;
  Switcher* self = sw->owner;
  const bool back = sw->info.phase == SwitchPhase::kCheckingBack;
  std::string waiting;
  if (back) {
    if (const ReleaseGroup* g = self->BackGroup(sw)) waiting = NotReady(*g);
    // Stop-first: it starts once the others stopped.
    for (const ReleaseGroup* g : self->supervisor_->Groups(sw->info.app))
      if (g->run().number != sw->info.from && !g->AllSettled())
        waiting += (waiting.empty() ? "" : ", ") +
                   ReleaseId(g->run().number).ToString() + " still stopping";
  } else if (self->FreshGroupAlive(sw)) {
    waiting = NotReady(*sw->fresh);
  }
  const std::string release =
      ReleaseId(back ? sw->info.from : sw->info.to).ToString();
  self->Dispatch(sw, SwitchEvent::kDeadline,
                 FailedPrecondition(
                     release + " was not ready within " +
                     std::to_string(sw->spec.activation_deadline_ms / 1000) +
                     "s" + (waiting.empty() ? "" : " (" + waiting + ")")));
}

void Switcher::RecordLive(Switch* sw) {
  const std::string app = sw->info.app;
  const std::string to = ReleaseId(sw->info.to).ToString();
  if (sw->info.strategy == Strategy::kStartFirst) Failpoint("after-stop-old");
  EventKind kind = sw->info.kind == "rollback" ? EventKind::kRolledBack
                                               : EventKind::kActivated;
  std::string detail =
      sw->info.from != 0 ? "from " + ReleaseId(sw->info.from).ToString() : "";
  if (!sw->unhealthy.empty())
    detail += (detail.empty() ? "" : "; ") +
              std::string("not ready (auto_rollback off): ") + sw->unhealthy;
  Status st =
      ledger_->AppendEvent(app, kind, ReleaseId(sw->info.to), sw->actor, detail);
  if (!st.ok()) {
    // The link names the new release and it runs, but the ledger (the
    // system of record) still names the old one as active, after an
    // `activating` without an outcome. Left so, `status`, `scale` and
    // `start` would act on the old release while the new one runs, and
    // the next daemon start (Recover) would go back to the old one
    // anyway. So go back now, as a failed switch does, whatever
    // auto_rollback says: link, processes and ledger agree again, and the
    // caller gets the error. (If the ledger cannot record the rollback
    // either, it still names the old release, which is what runs.)
    spdlog::error("{}: cannot record that {} is live: {}", app, to,
                  st.message());
    return Dispatch(sw, SwitchEvent::kLedgerFailed,
                    FailedPrecondition("cannot record " + std::string(EventKindName(kind)) +
                                       " of " + to +
                                       " in the ledger: " + st.message()));
  }
  spdlog::info("{}: {} is live ({})", app, to, EventKindName(kind));
  Dispatch(sw, SwitchEvent::kLiveRecorded);
}

void Switcher::GoBack(Switch* sw, const std::string& reason) {
  sw->went_back = true;
  const std::string app = sw->info.app;
  const int64_t prev = sw->info.from;
  sw->failure = reason;
  auto finish = Later(sw, SwitchEvent::kRolledBack, FailedPrecondition(reason));
  if (prev == 0) {
    ::unlink((AppDir(app) + "/current").c_str());
    supervisor_->Retire(app, nullptr, finish);
    return;
  }
  Status s = SwitchCurrentLink(AppDir(app), "releases/" + ReleaseId(prev).ToString());
  if (!s.ok())
    spdlog::error("{}: cannot switch back to {}: {}", app, ReleaseId(prev).ToString(),
                  s.message());
  // Start-first: the old release still runs (its exits so far are not
  // the rollback's); stop-first: start it again.
  sw->back_restarts_base = 0;
  for (const ReleaseGroup* g : supervisor_->Groups(app))
    if (g->run().number == prev)
      for (const Instance* i : g->Instances())
        sw->back_restarts_base += i->restarts();
  if (supervisor_->Reinstate(app, prev, finish)) return;
  sw->back_restarts_base = 0;
  auto old = load_run_(app, prev, SocketBind::kAtSpawn);
  auto formation = ledger_->GetFormation(app);
  if (!old.ok() || !formation.ok()) {
    spdlog::error("{}: cannot start {} again: {}", app, ReleaseId(prev).ToString(),
                  (!old.ok() ? old.status() : formation.status()).message());
    supervisor_->Retire(app, nullptr, finish);
    return;
  }
  supervisor_->Run(*old, *formation);
  finish();
}

void Switcher::RecordBack(Switch* sw, const std::string& not_ready) {
  const std::string app = sw->info.app;
  const std::string to = ReleaseId(sw->info.to).ToString();
  const int64_t prev = sw->info.from;
  const std::string& reason = sw->failure;
  if (prev == 0) {
    ledger_->AppendEvent(app, EventKind::kActivationFailed, ReleaseId(sw->info.to),
                         kDaemonActor, reason)
        .IgnoreError();
    return End(sw,
               FailedPrecondition((Mentions(reason, to)
                                       ? "first activation failed: "
                                       : "activation of " + to + " failed: ") +
                                  reason),
               0);
  }
  const std::string back = ReleaseId(prev).ToString();
  // The reasons name the release they are about ("v3 crash-looped: ..."):
  // the event's detail names it only when the reason does not.
  std::string detail = Mentions(reason, to) ? reason : to + ": " + reason;
  if (!not_ready.empty()) detail += "; " + not_ready;
  Status st = ledger_->AppendEvent(app, EventKind::kAutoRolledBack, ReleaseId(prev),
                                   kDaemonActor, detail);
  if (!st.ok())
    spdlog::error("{}: cannot record the rollback: {}", app, st.message());
  if (!not_ready.empty()) {
    spdlog::warn("{}: rolled back to {}, but {}", app, back, not_ready);
    return End(sw,
               FailedPrecondition("rolled back to " + back + ", but " +
                                  not_ready + "; the switch failed because " +
                                  reason),
               prev, LiveReady::kNo);
  }
  End(sw, FailedPrecondition("rolled back to " + back + ": " + reason), prev);
}

void Switcher::End(Switch* sw, Status outcome, int64_t live, LiveReady live_ready) {
  const std::string app = sw->info.app;
  SwitchOutcome& o = outcomes_[app];
  o = SwitchOutcome{};
  o.id = sw->info.id;
  o.ok = outcome.ok();
  o.live = live;
  o.live_ready = live_ready == LiveReady::kYes;
  o.message = outcome.ok() ? sw->unhealthy : outcome.message();
  const char* label = outcome.ok() ? "activated" : sw->went_back ? "rolled-back" : "failed";
  ++activation_counts_[{app, label}];
  auto done = std::move(sw->done);
  switches_.erase(app);  // destroys sw and closes its timers
  if (done) done(outcome);
  // The switch's releases are no longer in use as such: a prune that held
  // one back may go on now (the retired group's, once it stopped).
  if (releases_ != nullptr && !shutting_down_) releases_->InUseEnded(app);
}

void Switcher::OnInstanceChange(const ReleaseGroup& group) {
  auto it = switches_.find(group.run().app);
  if (it == switches_.end()) return;
  Switch* sw = it->second.get();
  // The new group while it starts; while checking back, any group of the
  // app (the one gone back to, or the new one whose stop lets it start).
  if (sw->fresh != &group && sw->info.phase != SwitchPhase::kCheckingBack)
    return;
  // Judge outside the instance's own callback.
  uv_timer_start(sw->check.get(), &Switcher::OnCheckTimer, 0, 0);
}

void Switcher::Shutdown() {
  // Switches in progress end here without an outcome in the ledger: their
  // `activating` is settled by Recover() at the next start.
  shutting_down_ = true;
  std::vector<std::pair<std::string, int64_t>> ids;
  for (const auto& [app, sw] : switches_) ids.emplace_back(app, sw->info.id);
  for (const auto& [app, id] : ids)
    if (Switch* sw = Find(app, id))
      Dispatch(sw, SwitchEvent::kShutdown,
               Status(StatusCode::kUnavailable,
                      "the daemon is stopping; the switch is settled at its "
                      "next start"));
}

}  // namespace relsupd
