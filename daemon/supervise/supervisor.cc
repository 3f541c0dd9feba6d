#include "daemon/supervise/supervisor.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>

#include "daemon/base/uv_work.h"

namespace relsupd {

// ---------------------------------------------------------------------------
// ReleaseGroup

ReleaseGroup::ReleaseGroup(SuperviseEnv* env,
                           std::shared_ptr<const ReleaseRun> run,
                           SupervisorListener* listener)
    : env_(env), run_(std::move(run)), listener_(listener) {
  uv_timer_init(env_->loop, sweep_timer_.get());
  sweep_timer_->data = this;
  uv_idle_init(env_->loop, start_idle_.get());
  start_idle_->data = this;
}

ReleaseGroup::~ReleaseGroup() = default;

Formation ReleaseGroup::Effective(const Formation& formation) const {
  Formation out;
  for (const auto& [type, spec] : run_->processes.processes) {
    auto it = formation.find(type);
    out[type] = it != formation.end() ? it->second : spec.scale;
  }
  return out;
}

void ReleaseGroup::SetFormation(const Formation& formation) {
  formation_ = formation;
  Reconcile();
}

void ReleaseGroup::Reconcile() {
  if (stopping_) return;
  for (const auto& [type, scale] : Effective(formation_)) {
    auto& list = instances_[type];
    while (static_cast<int>(list.size()) < scale) {
      list.push_back(std::make_unique<Instance>(
          env_, run_, type, static_cast<int>(list.size()) + 1, this));
      start_queue_.push_back({type, list.back()->index()});
      list.back()->set_start_queued();
    }
    while (static_cast<int>(list.size()) > scale) {
      std::unique_ptr<Instance> gone = std::move(list.back());
      list.pop_back();
      Instance* raw = gone.get();
      leaving_.push_back(std::move(gone));
      if (restart_ != nullptr && restart_->current == raw) {
        restart_->current = nullptr;  // scaled away: the restart goes on
        ScheduleSweep();
      }
      raw->Stop();
    }
  }
  StartQueued();
  ScheduleSweep();
}

void ReleaseGroup::StartQueued() {
  size_t started = 0;
  while (!start_queue_.empty() && started < kStartBatch && env_->spawn_budget > 0) {
    auto [type, index] = start_queue_.front();
    start_queue_.pop_front();
    auto& list = instances_[type];
    if (stopping_ || index > static_cast<int>(list.size())) continue;
    Instance* inst = list[index - 1].get();
    if (!inst->settled()) continue;
    inst->Start();
    ++started;
  }
  if (!start_queue_.empty()) {
    // Go on in the next loop iteration, after the socket was served, without
    // sleeping: an active idle handle makes the poll return at once. (Not
    // a 0 ms timer: libuv 1.44 runs one re-armed at 0 again in the same
    // pass, before the budget is refilled.)
    uv_idle_start(start_idle_.get(), [](uv_idle_t* h) {
      uv_idle_stop(h);
      if (auto* self = static_cast<ReleaseGroup*>(h->data)) self->StartQueued();
    });
  }
}

void ReleaseGroup::StartAll() {
  stopping_ = false;
  failed_types_.clear();
  Reconcile();
  for (auto& [type, list] : instances_)
    for (auto& inst : list) {
      inst->set_type_failed(false);
      if (inst->settled()) inst->Start();
    }
}

void ReleaseGroup::StopAll(std::function<void()> done) {
  stopping_ = true;
  if (restart_ != nullptr) {
    auto job = std::move(restart_);
    if (job->done) job->done(FailedPrecondition("the restart was cancelled by a stop"));
  }
  if (done) stop_waiters_.push_back(std::move(done));
  for (auto& [type, list] : instances_)
    for (auto& inst : list) inst->Stop();
  for (auto& inst : leaving_) inst->Stop();
  ScheduleSweep();
}

void ReleaseGroup::Restart(const std::string& type,
                           std::function<void(Status)> done) {
  if (restart_ != nullptr) {
    done(Status(StatusCode::kBusy, "a restart of " + run_->app +
                                       " is already in progress"));
    return;
  }
  if (!type.empty() && run_->processes.processes.count(type) == 0) {
    done(NotFound("release " + run_->release() + " of " + run_->app +
                  " has no process type '" + type + "'"));
    return;
  }
  stopping_ = false;
  restart_ = std::make_unique<RestartJob>();
  restart_->done = std::move(done);
  for (auto& [t, list] : instances_) {
    if (!type.empty() && t != type) continue;
    for (auto& inst : list) restart_->queue.push_back({t, inst->index()});
  }
  std::reverse(restart_->queue.begin(), restart_->queue.end());
  RestartNext();
}

void ReleaseGroup::RestartNext() {
  while (restart_ != nullptr && !restart_->queue.empty()) {
    auto [type, index] = restart_->queue.back();
    restart_->queue.pop_back();
    auto& list = instances_[type];
    if (index > static_cast<int>(list.size())) continue;  // scaled away
    Instance* inst = list[index - 1].get();
    restart_->current = inst;
    spdlog::info("{} {}: restarting {}", run_->app, run_->release(),
                 inst->name());
    if (inst->settled())
      inst->Start();
    else
      inst->Stop();  // reaching kStopped, it is started again (see below)
    return;
  }
  if (restart_ != nullptr) {
    auto job = std::move(restart_);
    job->done(Status::Ok());
  }
}

void ReleaseGroup::OnInstanceState(Instance* instance, InstanceState) {
  if (adopting_) return;  // Adopt() queues and sweeps once at the end
  bool wanted = instance->index() <= static_cast<int>(
                                         instances_[instance->type()].size()) &&
                instances_[instance->type()][instance->index() - 1].get() ==
                    instance;
  // A wanted instance that stopped while the group is meant to run was
  // stopped to be restarted (restart, or a start while it was stopping).
  if (wanted && !stopping_ && instance->state() == InstanceState::kStopped)
    instance->Start();
  listener_->OnInstanceChange(*this, *instance);
  if (restart_ != nullptr && restart_->current == instance) {
    if (instance->state() == InstanceState::kFailed) {
      auto job = std::move(restart_);
      job->done(FailedPrecondition(instance->name() +
                                   " failed while restarting"));
    } else if (instance->state() == InstanceState::kReady ||
               instance->state() == InstanceState::kExited ||
               (!wanted && instance->settled())) {
      // Ready again, ended by its restart policy, or scaled away: next.
      restart_->current = nullptr;
      ScheduleSweep();  // continues the restart outside this callback
    }
  }
  if (stopping_ || !leaving_.empty()) ScheduleSweep();
}

void ReleaseGroup::OnInstanceFailed(Instance* instance,
                                    const std::string& reason) {
  // The type fails as a whole: its other instances keep running, but none
  // is restarted any more when it exits.
  if (!failed_types_.insert(instance->type()).second) return;
  for (auto& inst : instances_[instance->type()]) inst->set_type_failed(true);
  listener_->OnInstanceFailed(*this, *instance, reason);
}

void ReleaseGroup::ScheduleSweep() {
  uv_timer_start(
      sweep_timer_.get(),
      [](uv_timer_t* t) {
        if (auto* self = static_cast<ReleaseGroup*>(t->data)) self->Sweep();
      },
      0, 0);
}

void ReleaseGroup::Sweep() {
  leaving_.erase(std::remove_if(leaving_.begin(), leaving_.end(),
                                [](const std::unique_ptr<Instance>& i) {
                                  return i->settled();
                                }),
                 leaving_.end());
  if (restart_ != nullptr && restart_->current == nullptr) RestartNext();
  CheckDone();
}

void ReleaseGroup::CheckDone() {
  if (!stopping_ || !AllSettled() || stop_waiters_.empty()) return;
  auto waiters = std::move(stop_waiters_);
  stop_waiters_.clear();
  // Last: a waiter may drop this group.
  for (auto& w : waiters) w();
}

std::vector<const Instance*> ReleaseGroup::Instances() const {
  std::vector<const Instance*> out;
  for (const auto& [type, list] : instances_)
    for (const auto& inst : list) out.push_back(inst.get());
  for (const auto& inst : leaving_) out.push_back(inst.get());
  std::sort(out.begin(), out.end(), [](const Instance* a, const Instance* b) {
    return a->type() != b->type() ? a->type() < b->type()
                                  : a->index() < b->index();
  });
  return out;
}

std::vector<Instance*> ReleaseGroup::Running(const std::string& type, int index) {
  std::vector<Instance*> out;
  for (const auto& [t, list] : instances_) {
    if (!type.empty() && t != type) continue;
    for (const auto& inst : list)
      if ((index == 0 || inst->index() == index) && inst->pid() != 0) out.push_back(inst.get());
  }
  return out;  // instances_ is a map by type, each list in index order
}

Instance* ReleaseGroup::FindByPid(pid_t pid) {
  for (auto& [type, list] : instances_)
    for (auto& inst : list)
      if (inst->pid() == pid) return inst.get();
  for (auto& inst : leaving_)
    if (inst->pid() == pid) return inst.get();
  return nullptr;
}

bool ReleaseGroup::AllReady() const {
  for (const auto& [type, list] : instances_)
    for (const auto& inst : list)
      if (inst->state() != InstanceState::kReady) return false;
  return true;
}

bool ReleaseGroup::AllSettled() const {
  for (const auto& [type, list] : instances_)
    for (const auto& inst : list)
      if (!inst->settled()) return false;
  for (const auto& inst : leaving_)
    if (!inst->settled()) return false;
  return true;
}

// ---------------------------------------------------------------------------
// Supervisor

Supervisor::Supervisor(SuperviseEnv env, SupervisorListener* listener)
    : env_(std::move(env)), listener_(listener) {
  uv_timer_init(env_.loop, drop_timer_.get());
  drop_timer_->data = this;
  uv_prepare_init(env_.loop, refill_.get());
  refill_->data = this;
  uv_prepare_start(refill_.get(), [](uv_prepare_t* h) {
    if (auto* self = static_cast<Supervisor*>(h->data)) {
      self->env_.spawn_budget = SuperviseEnv::kSpawnsPerIteration;
      self->env_.spawn_us = 0;
      ++self->env_.loop_turn;
    }
  });
  // An idle prepare handle must not keep the loop alive by itself.
  uv_unref(refill_.handle());
  uv_timer_init(env_.loop, usage_timer_.get());
  usage_timer_->data = this;
  uv_timer_start(
      usage_timer_.get(),
      [](uv_timer_t* t) {
        if (auto* self = static_cast<Supervisor*>(t->data)) self->SampleUsage();
      },
      kUsageIntervalMs, kUsageIntervalMs);
  uv_unref(usage_timer_.handle());
}

Supervisor::~Supervisor() { *self_ = nullptr; }

void Supervisor::SampleUsage() {
  if (sampling_) return;  // the last one is still being read
  struct Target {
    pid_t pid;
    int64_t started_ms;
    std::string cgroup_dir;
    bool want_pss;  // its memory limit is the RSS watch's
  };
  std::vector<Target> targets;
  for (Instance* i : RunningInstances())
    targets.push_back({i->pid(), i->started_ms(), i->cgroup_dir(), i->memory_watched()});
  if (targets.empty()) return;
  sampling_ = true;
  using Samples = std::vector<std::pair<Target, Usage>>;
  std::weak_ptr<Supervisor*> weak = self_;
  RunOffLoop<Samples>(
      env_.loop,
      [targets = std::move(targets)]() {
        Samples out;
        std::vector<pid_t> tree_roots;
        for (const Target& t : targets) {
          if (!t.cgroup_dir.empty()) {
            if (auto u = CgroupUsage(t.cgroup_dir)) {
              out.emplace_back(t, *u);
              continue;
            }
          }
          tree_roots.push_back(t.pid);
        }
        if (!tree_roots.empty()) {
          // One scan of /proc serves every instance without a cgroup.
          auto trees = TreeUsage(ScanProcesses(), tree_roots);
          for (const Target& t : targets)
            if (auto it = trees.find(t.pid); it != trees.end()) out.emplace_back(t, it->second);
        }
        for (auto& [t, u] : out) {
          if (t.want_pss && !u.from_cgroup) AddPss(&u);
          u.pids.clear();  // not needed on the loop
          u.pids.shrink_to_fit();
        }
        return out;
      },
      [weak](Samples samples) {
        auto self = weak.lock();
        if (self == nullptr || *self == nullptr) return;
        Supervisor* s = *self;
        s->sampling_ = false;
        const int64_t now = s->env_.clock->MonotonicMs();
        std::unordered_map<pid_t, Instance*> by_pid;
        for (Instance* i : s->RunningInstances()) by_pid[i->pid()] = i;
        for (const auto& [target, usage] : samples) {
          auto it = by_pid.find(target.pid);
          // The same process it was when the sample began.
          if (it != by_pid.end() && it->second->started_ms() == target.started_ms)
            it->second->SetUsage(usage, now);
        }
      });
}

void Supervisor::Run(std::shared_ptr<const ReleaseRun> run,
                     const Formation& formation) {
  AppGroups& a = apps_[run->app];
  if (a.active != nullptr && a.active->run().number == run->number) {
    a.active->SetFormation(formation);
    a.active->StartAll();
    return;
  }
  auto fresh = std::make_unique<ReleaseGroup>(&env_, run, listener_);
  ReleaseGroup* raw = fresh.get();
  std::unique_ptr<ReleaseGroup> old = std::move(a.active);
  a.active = std::move(fresh);
  if (old == nullptr && a.retiring.empty()) {
    raw->SetFormation(formation);
    return;
  }
  if (old != nullptr) a.retiring.push_back(std::move(old));
  // Stop-first: the new release starts once the old one has stopped.
  Retire(run->app, raw, [raw, formation] { raw->SetFormation(formation); });
}

ReleaseGroup* Supervisor::StartBeside(std::shared_ptr<const ReleaseRun> run,
                                      const Formation& formation) {
  AppGroups& a = apps_[run->app];
  if (a.active != nullptr) a.retiring.push_back(std::move(a.active));
  a.active = std::make_unique<ReleaseGroup>(&env_, run, listener_);
  a.active->SetFormation(formation);
  return a.active.get();
}

void Supervisor::Retire(const std::string& app, const ReleaseGroup* keep,
                        std::function<void()> done) {
  AppGroups& a = apps_[app];
  if (a.active != nullptr && a.active.get() != keep)
    a.retiring.push_back(std::move(a.active));
  if (a.retiring.empty()) {
    if (a.active == nullptr) apps_.erase(app);  // nothing left of it
    if (done) done();
    return;
  }
  auto remaining = std::make_shared<size_t>(a.retiring.size());
  auto finish = [this, app, remaining, done = std::move(done)] {
    if (--*remaining > 0) return;
    // Drop the stopped groups outside their own callbacks.
    uv_timer_start(
        drop_timer_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<Supervisor*>(t->data);
          if (self == nullptr) return;
          for (auto it = self->apps_.begin(); it != self->apps_.end();) {
            auto& r = it->second.retiring;
            r.erase(std::remove_if(r.begin(), r.end(),
                                   [](const std::unique_ptr<ReleaseGroup>& g) {
                                     return g->stopping() && g->AllSettled() &&
                                            !g->stop_waiters_pending();
                                   }),
                    r.end());
            // An app retired whole (`app delete`) is forgotten.
            if (it->second.active == nullptr && r.empty())
              it = self->apps_.erase(it);
            else
              ++it;
          }
        },
        0, 0);
    drop_timer_->data = this;
    if (done) done();
  };
  for (auto& g : a.retiring) g->StopAll(finish);
}

bool Supervisor::Reinstate(const std::string& app, int64_t number,
                           std::function<void()> done) {
  AppGroups& a = apps_[app];
  for (auto it = a.retiring.begin(); it != a.retiring.end(); ++it) {
    if ((*it)->run().number != number || (*it)->stopping()) continue;
    std::unique_ptr<ReleaseGroup> back = std::move(*it);
    a.retiring.erase(it);
    if (a.active != nullptr) a.retiring.push_back(std::move(a.active));
    a.active = std::move(back);
    Retire(app, a.active.get(), std::move(done));
    return true;
  }
  return false;
}

ReleaseGroup* Supervisor::Active(const std::string& app) {
  auto it = apps_.find(app);
  return it == apps_.end() ? nullptr : it->second.active.get();
}

std::vector<ReleaseGroup*> Supervisor::Groups(const std::string& app) {
  std::vector<ReleaseGroup*> out;
  auto it = apps_.find(app);
  if (it == apps_.end()) return out;
  if (it->second.active != nullptr) out.push_back(it->second.active.get());
  for (auto& g : it->second.retiring) out.push_back(g.get());
  return out;
}

std::vector<std::string> Supervisor::Apps() const {
  std::vector<std::string> out;
  for (const auto& [name, groups] : apps_) out.push_back(name);
  return out;
}

namespace {

// Stops every group in `groups`; `done` once all have stopped.
void StopGroups(const std::vector<ReleaseGroup*>& groups,
                std::function<void()> done) {
  if (groups.empty()) {
    if (done) done();
    return;
  }
  auto remaining = std::make_shared<size_t>(groups.size());
  for (ReleaseGroup* g : groups)
    g->StopAll([remaining, done] {
      if (--*remaining == 0 && done) done();
    });
}

}  // namespace

void Supervisor::Stop(const std::string& app, std::function<void()> done) {
  StopGroups(Groups(app), std::move(done));
}

void Supervisor::StopEverything(std::function<void()> done) {
  std::vector<ReleaseGroup*> all;
  for (const auto& name : Apps())
    for (ReleaseGroup* g : Groups(name)) all.push_back(g);
  StopGroups(all, std::move(done));
}

std::vector<Instance*> Supervisor::RunningInstances() {
  std::vector<Instance*> out;
  for (auto& [name, a] : apps_) {
    if (a.active != nullptr)
      for (Instance* i : a.active->Running("", 0)) out.push_back(i);
    for (auto& g : a.retiring)
      for (Instance* i : g->Running("", 0)) out.push_back(i);
  }
  return out;
}

Instance* Supervisor::FindInstance(pid_t pid) {
  for (auto& [name, a] : apps_) {
    if (a.active != nullptr)
      if (Instance* i = a.active->FindByPid(pid)) return i;
    for (auto& g : a.retiring)
      if (Instance* i = g->FindByPid(pid)) return i;
  }
  return nullptr;
}

void Supervisor::OnNotify(pid_t sender,
                          const std::map<std::string, std::string>& fields) {
  // BARRIER=1 (sd_notify_barrier, systemd-notify without --no-block) asks
  // nothing of us: the listener already closed the fd it came with, which
  // is the answer, matched or not. Unknown keys are ignored like it.
  Instance* inst = FindInstance(sender);
  if (inst == nullptr) {
    // A descendant of the instance (e.g. `sh -c` running the server): every
    // instance leads its own session.
    pid_t sid = ::getsid(sender);
    if (sid > 0) inst = FindInstance(sid);
  }
  if (inst == nullptr) {
    spdlog::debug("notify message from pid {} matches no instance, ignoring",
                  sender);
    return;
  }
  auto status = fields.find("STATUS");
  if (status != fields.end()) inst->set_status_text(status->second);
  auto ready = fields.find("READY");
  if (ready != fields.end() && ready->second == "1") inst->NotifyReady();
  auto watchdog = fields.find("WATCHDOG");
  if (watchdog != fields.end()) inst->NotifyWatchdog(watchdog->second);
}

}  // namespace relsupd
