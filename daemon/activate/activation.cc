// Activation and rollback: RunService's switch of an app between releases.
//
//   ready checks vs. daemon-held sockets -> verify -> `activating`
//   -> [before-switch] link -> [after-switch]
//   start-first: start new -> ready -> [after-start-new] -> stop old -> [after-stop-old]
//   stop-first:  stop old -> [after-stop-old] -> start new -> ready -> [after-start-new]
//   -> `activated` / `rolled-back`
//
// Not ready by the deadline, or crash-looping: back to the previous release
// (`auto-rolled-back`, with the reason). A crash anywhere leaves an
// `activating` without an outcome, which Recover() settles at start-up.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>

#include "daemon/activate/run_service.h"
#include "daemon/config/process_file.h"
#include "daemon/config/ready_sockets.h"
#include "daemon/base/failpoint.h"
#include "daemon/store/release_service.h"
#include "daemon/store/slots.h"

namespace relsupd {
namespace {

// Exits of new instances while a switch waits for them to be ready that
// count as a crash loop.
constexpr int kCrashesWhileActivating = 3;
// An instance with `ready: none` is ready once spawned; a switch commits
// only when it has also stayed up this long, so a release whose process
// exits at once is rolled back instead of declared live.
constexpr int64_t kSettleMs = 1000;

const Actor kDaemonActor{0, "relsupd"};

}  // namespace


RunService::~RunService() {
  shutting_down_ = true;  // groups going down call no prune
  if (releases_ != nullptr) releases_->set_in_use(nullptr);
}

std::string RunService::AppDir(const std::string& app) const {
  return state_dir_ + "/apps/" + app;
}

Status RunService::RefuseDuringSwitch(const std::string& app) const {
  if (shutting_down_)
    return Status(StatusCode::kBusy, "the daemon is stopping");
  auto it = switches_.find(app);
  if (it == switches_.end()) return Status::Ok();
  const SwitchInfo& s = it->second->info;
  return Status(StatusCode::kBusy,
                "a switch of '" + app + "' is in progress: " + s.kind + " to " +
                    ReleaseName(s.to) + " by " + s.actor + " (" + s.phase +
                    "); try again when it ends");
}

bool RunService::FreshGroupAlive(const Switch* sw) {
  if (sw->fresh == nullptr) return false;
  for (ReleaseGroup* g : supervisor_->Groups(sw->info.app))
    if (g == sw->fresh) return true;
  return false;
}

const SwitchInfo* RunService::CurrentSwitch(const std::string& app) const {
  auto it = switches_.find(app);
  return it == switches_.end() ? nullptr : &it->second->info;
}

const SwitchOutcome* RunService::LastSwitch(const std::string& app) const {
  auto it = outcomes_.find(app);
  return it == outcomes_.end() ? nullptr : &it->second;
}

void RunService::Activate(const ActivateRequest& req,
                          std::function<void(Result<int64_t>)> started,
                          std::function<void(Status)> done) {
  const std::string& app = req.app;
  auto spec = ledger_->GetApp(app);
  if (!spec.ok()) return started(spec.status());
  if (Status busy = RefuseDuringSwitch(app); !busy.ok()) return started(busy);
  auto act = ledger_->ActivationOf(app);
  if (!act.ok()) return started(act.status());
  int64_t target = req.release;
  if (target == 0) {
    target = act->previous;
    if (target == 0)
      return started(FailedPrecondition(
          "app '" + app + "' has nothing to roll back to: " +
          (act->active != 0 ? ReleaseName(act->active) + " is the only release ever active"
                            : std::string("no release was ever active"))));
  }
  auto row = ledger_->GetRelease(app, target);
  if (!row.ok()) return started(row.status());
  if (row->pruned)
    return started(FailedPrecondition("release " + ReleaseName(target) + " of '" + app +
                                      "' was pruned and cannot be activated"));
  if (target == act->active && supervisor_->Active(app) != nullptr)
    return started(FailedPrecondition(ReleaseName(target) + " of '" + app +
                                      "' is already active"));
  // A tcp or http ready check aimed at one of the app's daemon-held sockets
  // would pass at once (the daemon accepts). Refused here, before anything
  // is recorded or verified; SwitchVerified checks the loaded release again
  // against the sockets of that moment. An unreadable process file is left
  // to verification and LoadRun to name.
  if (auto procs = LoadProcessFile(SlotPath(state_dir_, app, target)); procs.ok())
    if (Status s = CheckReadyAgainstSockets(*procs, spec->sockets); !s.ok())
      return started(s.WithContext("release " + ReleaseName(target)));

  auto sw = std::make_unique<Switch>();
  sw->info.id = next_switch_id_++;
  sw->info.app = app;
  sw->info.kind = req.kind;
  sw->info.from = act->active;
  sw->info.to = target;
  sw->info.strategy = req.strategy.value_or(spec->strategy);
  sw->info.phase = "verifying";
  sw->info.started_at = supervisor_->env()->clock->WallMs();
  sw->info.actor = req.actor.name;
  sw->actor = req.actor;
  sw->spec = *spec;
  sw->done = std::move(done);
  for (auto* t : {&sw->deadline, &sw->check}) {
    uv_timer_init(supervisor_->env()->loop, (*t).get());
    (*t)->data = this;
  }
  Switch* raw = sw.get();
  int64_t id = raw->info.id;
  switches_[app] = std::move(sw);
  started(id);

  releases_->VerifyRelease(app, target, [this, app, id](Result<ReleaseVerification> r) {
    auto it = switches_.find(app);
    if (it == switches_.end() || it->second->info.id != id) return;
    Status verified = r.status();
    if (r.ok() && !r->result.ok()) {
      std::string problems;
      for (const auto& p : r->result.problems) problems += " " + p;
      const ManifestDiff& diff = r->result.diff;
      for (const auto& [k, paths] : {std::pair{"added", &diff.added},
                                     std::pair{"removed", &diff.removed},
                                     std::pair{"changed", &diff.changed}})
        for (const auto& p : *paths) problems += std::string(" ") + k + " '" + p + "'";
      verified = Corruption("release " + ReleaseName(it->second->info.to) +
                            " does not verify:" + problems);
    }
    SwitchVerified(it->second.get(), verified);
  });
}

void RunService::SwitchVerified(Switch* sw, Status verified) {
  const std::string app = sw->info.app;
  if (!verified.ok()) return SwitchEnd(sw, verified, sw->info.from);
  auto run = LoadRun(app, sw->info.to);
  if (!run.ok()) return SwitchEnd(sw, run.status(), sw->info.from);
  sw->run = *run;
  auto spec = ledger_->GetApp(app);
  Status ready = spec.ok() ? CheckReadyAgainstSockets(sw->run->processes, spec->sockets)
                           : spec.status();
  if (!ready.ok())
    return SwitchEnd(sw, ready.WithContext("release " + ReleaseName(sw->info.to)),
                     sw->info.from);
  std::string detail = (sw->info.from != 0 ? "from " + ReleaseName(sw->info.from) : "first") +
                       ", " + std::string(StrategyName(sw->info.strategy));
  const auto t0 = std::chrono::steady_clock::now();
  Status s = ledger_->AppendEvent(app, "activating", ReleaseName(sw->info.to), sw->actor, detail);
  if (!s.ok()) return SwitchEnd(sw, s, sw->info.from);
  Failpoint("before-switch");
  s = SwitchCurrentLink(AppDir(app), "releases/" + ReleaseName(sw->info.to));
  if (!s.ok()) {
    // Nothing changed: the link still names the old release.
    ledger_->AppendEvent(app, "activation-failed", ReleaseName(sw->info.to), kDaemonActor,
                         s.message()).IgnoreError();
    return SwitchEnd(sw, s.WithContext("switching 'current'"), sw->info.from);
  }
  Failpoint("after-switch");
  const auto switch_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - t0)
                             .count();
  spdlog::info("{}: current -> {} ({}), {}; switched in {}us", app, ReleaseName(sw->info.to),
               sw->info.kind, StrategyName(sw->info.strategy), switch_us);
  uv_timer_start(
      sw->deadline.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<RunService*>(t->data);
        if (self == nullptr) return;
        for (auto& [name, pending] : self->switches_) {
          if (pending->deadline.get() != t) continue;
          std::string waiting;
          if (self->FreshGroupAlive(pending.get()))
            for (const Instance* i : pending->fresh->Instances())
              if (i->state() != InstanceState::kReady)
                waiting += (waiting.empty() ? "" : ", ") + i->name() + " " +
                           std::string(InstanceStateName(i->state()));
          self->SwitchFail(pending.get(), ReleaseName(pending->info.to) + " was not ready within " +
                                        std::to_string(pending->spec.activation_deadline_ms / 1000) +
                                        "s" + (waiting.empty() ? "" : " (" + waiting + ")"));
          return;
        }
      },
      static_cast<uint64_t>(sw->spec.activation_deadline_ms), 0);
  if (sw->info.strategy == Strategy::kStartFirst) return SwitchStartNew(sw);
  sw->info.phase = "stopping-old";
  int64_t id = sw->info.id;
  supervisor_->Retire(app, nullptr, [this, app, id] {
    auto it = switches_.find(app);
    if (it == switches_.end() || it->second->info.id != id) return;
    Failpoint("after-stop-old");
    SwitchStartNew(it->second.get());
  });
}

void RunService::SwitchStartNew(Switch* sw) {
  sw->info.phase = "starting";
  auto formation = ledger_->GetFormation(sw->info.app);
  if (!formation.ok()) return SwitchFail(sw, formation.status().message());
  sw->fresh = supervisor_->StartBeside(sw->run, *formation);
  SwitchCheckNew(sw);
}

void RunService::SwitchCheckNew(Switch* sw) {
  if (sw->committing || sw->failing || !FreshGroupAlive(sw)) return;
  sw->crashes = 0;
  int64_t newest = -1;
  for (const Instance* i : sw->fresh->Instances()) {
    sw->crashes += i->restarts();
    if (!i->exits().empty() && i->exits().back().time_ms > newest) {
      newest = i->exits().back().time_ms;
      sw->last_crash = i->name() + " exited: " + i->exits().back().Describe();
    }
  }
  for (const Instance* i : sw->fresh->Instances()) {
    if (i->state() == InstanceState::kFailed)
      return SwitchFail(sw, i->name() + " of " + ReleaseName(sw->info.to) + " failed: " +
                                (sw->last_crash.empty() ? "crash loop" : sw->last_crash));
  }
  if (sw->crashes >= kCrashesWhileActivating)
    return SwitchFail(sw, ReleaseName(sw->info.to) + " crash-looped: " + sw->last_crash +
                              " (" + std::to_string(sw->crashes) +
                              " exits while activating)");
  if (!sw->fresh->AllReady()) return;
  int64_t now = supervisor_->env()->clock->MonotonicMs();
  int64_t wait_ms = 0;
  for (const Instance* i : sw->fresh->Instances())
    if (i->spec().ready.kind == ReadyKind::kNone)
      wait_ms = std::max(wait_ms, kSettleMs - (now - i->started_ms()));
  if (wait_ms > 0) {
    uv_timer_start(
        sw->check.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<RunService*>(t->data);
          if (self == nullptr) return;
          for (auto& [name, pending] : self->switches_)
            if (pending->check.get() == t) return self->SwitchCheckNew(pending.get());
        },
        static_cast<uint64_t>(wait_ms), 0);
    return;
  }
  Failpoint("after-start-new");
  SwitchCommit(sw);
}

void RunService::SwitchCommit(Switch* sw) {
  sw->committing = true;
  uv_timer_stop(sw->deadline.get());
  sw->info.phase = "stopping-old";
  const std::string app = sw->info.app;
  int64_t id = sw->info.id;
  supervisor_->Retire(app, sw->fresh, [this, app, id] {
    auto it = switches_.find(app);
    if (it == switches_.end() || it->second->info.id != id) return;
    Switch* s = it->second.get();
    if (s->info.strategy == Strategy::kStartFirst) Failpoint("after-stop-old");
    std::string kind = s->info.kind == "rollback" ? "rolled-back" : "activated";
    std::string detail = s->info.from != 0 ? "from " + ReleaseName(s->info.from) : "";
    if (!s->unhealthy.empty())
      detail += (detail.empty() ? "" : "; ") + std::string("not ready (auto_rollback off): ") + s->unhealthy;
    Status st = ledger_->AppendEvent(app, kind, ReleaseName(s->info.to), s->actor, detail);
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
      spdlog::error("{}: cannot record that {} is live: {}", app, ReleaseName(s->info.to),
                    st.message());
      s->committing = false;
      s->failing = true;
      return SwitchBack(s, "cannot record " + kind + " of " + ReleaseName(s->info.to) +
                               " in the ledger: " + st.message());
    }
    spdlog::info("{}: {} is live ({})", app, ReleaseName(s->info.to), kind);
    SwitchEnd(s, Status::Ok(), s->info.to);
  });
}

void RunService::SwitchFail(Switch* sw, const std::string& reason) {
  if (sw->failing || sw->committing) return;
  sw->failing = true;
  uv_timer_stop(sw->deadline.get());
  const std::string app = sw->info.app;
  spdlog::warn("{}: switch to {} failed: {}", app, ReleaseName(sw->info.to), reason);
  if (!sw->spec.auto_rollback) {
    // The operator chose to keep what they activated: finish the switch,
    // and say why it is not healthy. (SwitchCommit may end `sw`.)
    sw->failing = false;
    sw->unhealthy = reason;
    SwitchCommit(sw);
    return;
  }
  SwitchBack(sw, reason);
}

void RunService::SwitchBack(Switch* sw, const std::string& reason) {
  const std::string app = sw->info.app;
  sw->info.phase = "rolling-back";
  const int64_t prev = sw->info.from;
  int64_t id = sw->info.id;
  auto finish = [this, app, id, prev, reason] {
    auto it = switches_.find(app);
    if (it == switches_.end() || it->second->info.id != id) return;
    Switch* s = it->second.get();
    if (prev == 0) {
      ledger_->AppendEvent(app, "activation-failed", ReleaseName(s->info.to), kDaemonActor, reason)
          .IgnoreError();
      return SwitchEnd(s, FailedPrecondition("activation of " + ReleaseName(s->info.to) +
                                             " failed: " + reason),
                       0);
    }
    Status st = ledger_->AppendEvent(app, "auto-rolled-back", ReleaseName(prev), kDaemonActor,
                                     ReleaseName(s->info.to) + ": " + reason);
    if (!st.ok()) spdlog::error("{}: cannot record the rollback: {}", app, st.message());
    SwitchEnd(s, FailedPrecondition("rolled back to " + ReleaseName(prev) + ": " + reason), prev);
  };
  if (prev == 0) {
    ::unlink((AppDir(app) + "/current").c_str());
    supervisor_->Retire(app, nullptr, finish);
    return;
  }
  Status s = SwitchCurrentLink(AppDir(app), "releases/" + ReleaseName(prev));
  if (!s.ok()) spdlog::error("{}: cannot switch back to {}: {}", app, ReleaseName(prev), s.message());
  // Start-first: the old release still runs; stop-first: start it again.
  if (supervisor_->Reinstate(app, prev, finish)) return;
  auto old = LoadRun(app, prev);
  auto formation = ledger_->GetFormation(app);
  if (!old.ok() || !formation.ok()) {
    spdlog::error("{}: cannot start {} again: {}", app, ReleaseName(prev),
                  (!old.ok() ? old.status() : formation.status()).message());
    supervisor_->Retire(app, nullptr, finish);
    return;
  }
  supervisor_->Run(*old, *formation);
  finish();
}

void RunService::SwitchEnd(Switch* sw, Status outcome, int64_t live) {
  const std::string app = sw->info.app;
  SwitchOutcome& o = outcomes_[app];
  o.id = sw->info.id;
  o.ok = outcome.ok();
  o.live = live;
  o.message = outcome.ok() ? sw->unhealthy : outcome.message();
  auto done = std::move(sw->done);
  switches_.erase(app);  // destroys sw
  if (done) done(outcome);
  // The switch's releases are no longer in use as such: a prune that held
  // one back may go on now (the retired group's, once it stopped).
  if (releases_ != nullptr && !shutting_down_) releases_->InUseEnded(app);
}

void RunService::OnInstanceChange(const ReleaseGroup& group, const Instance& instance) {
  // The last live instance of a retired group stopped: its release may be
  // free for a prune that held it back.
  // (InUseEnded returns at once unless a prune of this app waits.)
  if (instance.settled() && releases_ != nullptr && !shutting_down_ &&
      &group != supervisor_->Active(group.run().app))
    releases_->InUseEnded(group.run().app);
  auto it = switches_.find(group.run().app);
  if (it == switches_.end() || it->second->fresh != &group) return;
  // Judge outside the instance's own callback.
  uv_timer_start(
      it->second->check.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<RunService*>(t->data);
        if (self == nullptr) return;
        for (auto& [name, s] : self->switches_)
          if (s->check.get() == t) return self->SwitchCheckNew(s.get());
      },
      0, 0);
}

void RunService::Recover() {
  auto apps = ledger_->ListApps();
  if (!apps.ok()) return;
  for (const AppSpec& spec : *apps) {
    const std::string app = spec.name;
    auto act = ledger_->ActivationOf(app);
    auto last = ledger_->LastEvent(
        app, {"activating", "activated", "rolled-back", "auto-rolled-back",
              "activation-failed", "recovered"});
    if (!act.ok() || !last.ok()) continue;
    char buf[256];
    ssize_t n = ::readlink((AppDir(app) + "/current").c_str(), buf, sizeof(buf) - 1);
    std::string link = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    std::string want = act->active != 0 ? "releases/" + ReleaseName(act->active) : "";
    std::string detail;
    if (*last && (*last)->kind == "activating") {
      int64_t pending = std::strtoll((*last)->release.c_str() + 1, nullptr, 10);
      if (act->active == 0) {
        // An interrupted first activation: nothing to go back to, so it is
        // finished instead.
        want = "releases/" + ReleaseName(pending);
        Status s = ledger_->AppendEvent(app, "activated", ReleaseName(pending), kDaemonActor,
                                        "recovered after an interrupted activation");
        if (!s.ok()) continue;
        detail = "finished the interrupted activation of " + ReleaseName(pending);
      } else {
        detail = "interrupted switch to " + ReleaseName(pending) + "; back on " + ReleaseName(act->active);
      }
    } else if (link != want) {
      detail = "current pointed at '" + link + "'; set to '" + want + "'";
    } else {
      continue;
    }
    Status s = want.empty() ? Status::Ok() : SwitchCurrentLink(AppDir(app), want);
    if (want.empty()) ::unlink((AppDir(app) + "/current").c_str());
    if (!s.ok()) {
      spdlog::error("{}: recovery cannot set current: {}", app, s.message());
      continue;
    }
    ledger_->AppendEvent(app, "recovered", want.empty() ? "" : want.substr(9),
                         kDaemonActor, detail)
        .IgnoreError();
    spdlog::warn("{}: recovered: {}", app, detail);
  }
}

}  // namespace relsupd
