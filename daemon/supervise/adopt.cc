// daemon-reexec, the supervise side (docs/reexec.md §1.4, §3): Export(),
// Adopt() and Abandon() of Instance, ReleaseGroup and Supervisor. The
// snapshots are plain data (snapshot.h); reexec/ encodes them. Loop thread
// only.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <tuple>
#include <utility>

#include "daemon/supervise/cgroup.h"
#include "daemon/supervise/supervisor.h"

namespace relsupd {

namespace {

// A process of this state exists (or is about to).
bool HasProcess(InstanceState s) {
  return s == InstanceState::kStarting || s == InstanceState::kRunning ||
         s == InstanceState::kReady || s == InstanceState::kStopping ||
         s == InstanceState::kStoppingFault;
}

}  // namespace

// ---------------------------------------------------------------------------
// Instance

InstanceSnapshot Instance::Export() const {
  // A spawn is synchronous: kStarting is never seen between callbacks.
  assert(state_ != InstanceState::kStarting);
  InstanceSnapshot s;
  s.type = type_;
  s.index = index_;
  s.state = state_;
  if (uv_is_active(timer_.handle())) s.timer_deadline_mono_ms = timer_deadline_ms_;
  s.backoff = backoff_.Snapshot();
  s.backoff_delay_ms = backoff_delay_ms_;
  s.started_ms = started_ms_;
  s.stop_cause = stop_cause_;
  s.fault = fault_;
  s.stop_sent_ms = stop_sent_ms_;
  s.killed = killed_;
  s.cgroup_dir = cgroup_dir_;
  s.exits = exits_;
  s.status_text = status_text_;
  s.type_failed = type_failed_;
  if (child_ != nullptr && !child_->exited()) s.child = child_->Export();
  s.capture = capture_.Export();
  return s;
}

void Instance::Adopt(const InstanceSnapshot& s) {
  assert(state_ == InstanceState::kStopped && child_ == nullptr);
  backoff_.Restore(s.backoff);
  backoff_delay_ms_ = s.backoff_delay_ms;
  started_ms_ = s.started_ms;
  stop_cause_ = s.stop_cause;
  fault_ = s.fault;
  stop_sent_ms_ = s.stop_sent_ms;
  killed_ = s.killed;
  cgroup_dir_ = s.cgroup_dir;
  // Not carried: where the tree has the memory controller, its cgroup got
  // memory.max when it was made.
  memory_max_set_ = !cgroup_dir_.empty() && env_->memory_by_cgroup;
  exits_ = s.exits;
  status_text_ = s.status_text;
  type_failed_ = s.type_failed;
  if (s.child.has_value()) {
    auto child = ChildProcess::Adopt(env_->loop, *s.child, ChildCallbacks());
    if (child.ok()) {
      child_ = std::move(*child);
      capture_.Attach(child_.get());
    } else {
      spdlog::warn("{} {}: {}", run_->app, name(), child.status().message());
    }
  }
  if (!capture_.Restore(s.capture))
    spdlog::warn("{} {}: an unfinished output line could not be carried, "
                 "dropping it", run_->app, name());
  InstanceState adopted = s.state;
  resume_deadline_ = s.timer_deadline_mono_ms;
  if (child_ == nullptr && HasProcess(adopted)) {
    // Its process could not be taken over (and was ended): a stop is
    // complete, anything else restarts at once.
    adopted = adopted == InstanceState::kStopping ? InstanceState::kStopped
                                                  : InstanceState::kBackoff;
    started_ms_ = 0;
    resume_deadline_.reset();
  }
  Dispatch(InstanceEvent::kAdopted, ExitKind::kFailure, CrashLimit::kNotHit,
           adopted);
}

void Instance::DoResume() {
  const int64_t now = env_->clock->MonotonicMs();
  const std::optional<int64_t> deadline = std::exchange(resume_deadline_, {});
  auto left = [&](int64_t fallback) {
    return std::max<int64_t>(deadline ? *deadline - now : fallback, 0);
  };
  switch (state_) {
    case InstanceState::kRunning:
      // A READY=1 that waits in the notify socket is read before a ready
      // timeout that ran out during the exec window fires.
      ArmTimer(std::max(left(spec_->ready_timeout_ms), kMinResumedReadyMs));
      if (spec_->ready.kind == ReadyKind::kNone) return Dispatch(InstanceEvent::kReady);
      if (spec_->ready.kind != ReadyKind::kNotify) StartProbe();
      return;
    case InstanceState::kStopping:
    case InstanceState::kStoppingFault:
      return ArmTimer(left(spec_->stop_timeout_ms));  // not signalled again
    case InstanceState::kBackoff:
      return ArmTimer(left(0));
    default:
      return;
  }
}

void Instance::Abandon() {
  capture_.Detach();
  probe_.reset();
  health_.reset();
  uv_timer_stop(watchdog_timer_.get());
  if (child_ != nullptr) child_->Abandon();
  child_.reset();
  CancelTimer();
  cgroup_dir_.clear();  // the destructor must not remove it
}

// ---------------------------------------------------------------------------
// ReleaseGroup

GroupSnapshot ReleaseGroup::Export() const {
  GroupSnapshot g;
  g.run = *run_;
  g.formation = formation_;
  g.stopping = stopping_;
  g.failed_types = failed_types_;
  for (const auto& [type, list] : instances_)
    for (const auto& inst : list) g.instances.push_back(inst->Export());
  for (const auto& inst : leaving_) {
    g.instances.push_back(inst->Export());
    g.instances.back().leaving = true;
  }
  std::sort(g.instances.begin(), g.instances.end(),
            [](const InstanceSnapshot& a, const InstanceSnapshot& b) {
              return std::tie(a.type, a.index, a.leaving) <
                     std::tie(b.type, b.index, b.leaving);
            });
  return g;
}

std::unique_ptr<ReleaseGroup> ReleaseGroup::Adopt(SuperviseEnv* env,
                                                  const GroupSnapshot& snapshot,
                                                  SupervisorListener* listener) {
  auto group = std::make_unique<ReleaseGroup>(
      env, std::make_shared<const ReleaseRun>(snapshot.run), listener);
  group->formation_ = snapshot.formation;
  group->stopping_ = snapshot.stopping;
  group->failed_types_ = snapshot.failed_types;
  group->adopting_ = true;
  for (const InstanceSnapshot& s : snapshot.instances) group->AdoptInstance(s);
  group->adopting_ = false;
  if (!group->stopping_) {
    for (const auto& [type, list] : group->instances_)
      for (const auto& inst : list)
        if (inst->state() == InstanceState::kStopped) {
          group->start_queue_.push_back({type, inst->index()});
          inst->set_start_queued();
        }
  }
  group->Reconcile();  // also what the formation wants and nothing runs
  group->ScheduleSweep();
  return group;
}

void ReleaseGroup::AdoptInstance(const InstanceSnapshot& s) {
  // The run is carried with its instances, so their types are in it; a
  // record where one is not was refused by its decoder.
  assert(run_->processes.processes.count(s.type) == 1);
  auto inst = std::make_unique<Instance>(env_, run_, s.type, s.index, this);
  inst->Adopt(s);
  auto& list = instances_[s.type];
  if (!s.leaving && s.index == static_cast<int>(list.size()) + 1) {
    list.push_back(std::move(inst));
    return;
  }
  // Leaving, or out of order: it stops and goes.
  if (!s.leaving) inst->Stop();
  leaving_.push_back(std::move(inst));
}

void ReleaseGroup::Abandon() {
  for (auto& [type, list] : instances_)
    for (auto& inst : list) inst->Abandon();
  for (auto& inst : leaving_) inst->Abandon();
  uv_timer_stop(sweep_timer_.get());
  uv_idle_stop(start_idle_.get());
  start_queue_.clear();
  stop_waiters_.clear();
  restart_.reset();
}

// ---------------------------------------------------------------------------
// Supervisor

bool Supervisor::RetiringBusy() const {
  for (const auto& [app, groups] : apps_) {
    if (groups.active != nullptr && groups.active->restarting()) return true;
    for (const auto& g : groups.retiring)
      if (!g->AllSettled() || g->restarting() || g->stop_waiters_pending())
        return true;
  }
  return false;
}

SupervisorSnapshot Supervisor::Export() const {
  SupervisorSnapshot s;
  for (const auto& [app, groups] : apps_) {
    AppSnapshot a;
    a.app = app;
    if (groups.active != nullptr) a.active = groups.active->Export();
    // A settled retiring group would be dropped anyway.
    for (const auto& g : groups.retiring)
      if (!g->AllSettled()) a.retiring.push_back(g->Export());
    s.apps.push_back(std::move(a));
  }
  s.reap = ChildProcess::ExportOrphans();
  if (env_.cgroups != nullptr) s.cgroups = env_.cgroups->Export();
  return s;
}

void Supervisor::Adopt(const SupervisorSnapshot& snapshot) {
  assert(apps_.empty());
  for (const AppSnapshot& a : snapshot.apps) {
    AppGroups& groups = apps_[a.app];
    if (a.active.has_value())
      groups.active = ReleaseGroup::Adopt(&env_, *a.active, listener_);
    for (const GroupSnapshot& g : a.retiring)
      groups.retiring.push_back(ReleaseGroup::Adopt(&env_, g, listener_));
  }
  for (const ReapEntry& entry : snapshot.reap) {
    if (Status s = ChildProcess::AdoptOrphan(env_.loop, entry); !s.ok())
      spdlog::warn("{}, ignoring", s.message());
  }
}

void Supervisor::Abandon() {
  for (auto& [app, groups] : apps_) {
    if (groups.active != nullptr) groups.active->Abandon();
    for (auto& g : groups.retiring) g->Abandon();
  }
  apps_.clear();
  ChildProcess::AbandonOrphans();
  uv_timer_stop(drop_timer_.get());
}

}  // namespace relsupd
