#include "daemon/run/run_service.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdlib>

#include "daemon/base/duration.h"
#include "daemon/base/fd.h"
#include "daemon/base/release_id.h"
#include "daemon/base/users.h"
#include "daemon/config/process_file.h"
#include "daemon/run/one_offs.h"
#include "daemon/store/fs.h"
#include "daemon/store/layout.h"
#include "daemon/store/release_service.h"
#include "daemon/store/slots.h"

namespace relsupd {
namespace {

const Actor kDaemonActor{0, "relsupd"};

}  // namespace

Result<RunAs> RunAsOf(const AppSpec& spec) {
  RunAs as;
  if (spec.dynamic_user) {
    if (spec.uid <= 0 || spec.gid <= 0)
      return Corruption("app '" + spec.name + "' has a dynamic user without ids");
    as.uid = static_cast<uid_t>(spec.uid);
    as.gid = static_cast<gid_t>(spec.gid);
    as.user = "relsupd-" + spec.name;  // USER/LOGNAME; no passwd entry
    as.home = "/";
    as.dynamic = true;
    return as;
  }
  // A named user follows the user database (its uid is recorded in the
  // ledger for show and ps; a renumbered user runs as its new uid).
  ASSIGN_OR_RETURN(UserInfo user, LookupUserOrId(spec.user));
  as.uid = user.uid;
  as.gid = user.gid;
  as.user = user.name;
  as.home = user.home;
  if (!spec.group.empty()) {
    ASSIGN_OR_RETURN(as.gid, LookupGroupOrId(spec.group));
  }
  return as;
}

RunService::RunService(SuperviseEnv env, Ledger* ledger,
                       ReleaseService* releases, std::string state_dir)
    : ledger_(ledger), releases_(releases), state_dir_(std::move(state_dir)) {
  env.socket_fd = [this](const std::string& app, const std::string& name) {
    return sockets_.Open(app, name);
  };
  uv_timer_init(env.loop, idle_check_timer_.get());
  idle_check_timer_->data = this;
  supervisor_ = std::make_unique<Supervisor>(std::move(env), this);
  switcher_ = std::make_unique<Switcher>(
      supervisor_.get(), ledger_, releases_, state_dir_,
      [this](const std::string& app, int64_t number, SocketBind bind) {
        return LoadRun(app, number, bind);
      });
  one_offs_ = std::make_unique<OneOffs>(
      supervisor_->env(), ledger_,
      [this](const std::string& app, int64_t number) {
        // A one-off gets no held socket: none is bound for it.
        return LoadRun(app, number, SocketBind::kAtSpawn);
      });
  // A one-off that ended may free a release a prune held back.
  one_offs_->set_on_ended([this](const std::string& app) {
    if (releases_ != nullptr && !switcher_->shutting_down())
      releases_->InUseEnded(app);
  });
  // Retention asks what runs before it prunes (ReleaseService::Prune).
  if (releases_ != nullptr)
    releases_->set_in_use([this](const std::string& app) { return InUse(app); });
}

RunService::~RunService() {
  switcher_->MarkShuttingDown();  // groups going down call no prune
  if (releases_ != nullptr) releases_->set_in_use(nullptr);
}

std::set<int64_t> RunService::InUse(const std::string& app) {
  std::set<int64_t> out;
  if (const SwitchInfo* sw = switcher_->Current(app)) {
    if (sw->from != 0) out.insert(sw->from);
    out.insert(sw->to);
  }
  for (int64_t n : one_offs_->InUse(app)) out.insert(n);
  const ReleaseGroup* active = supervisor_->Active(app);
  for (const ReleaseGroup* g : supervisor_->Groups(app))
    if (g == active || !g->AllSettled()) out.insert(g->run().number);
  return out;
}

Result<std::shared_ptr<ReleaseRun>> RunService::LoadRun(const std::string& app,
                                                        int64_t number,
                                                        SocketBind bind) {
  ASSIGN_OR_RETURN(AppSpec spec, ledger_->GetApp(app));
  ASSIGN_OR_RETURN(ReleaseRow row, ledger_->GetRelease(app, number));
  if (row.pruned)
    return FailedPrecondition("release " + ReleaseId(number).ToString() + " of '" + app +
                              "' was pruned");
  auto run = std::make_shared<ReleaseRun>();
  run->app = app;
  run->number = number;
  std::string slot = SlotPath(state_dir_, app, number);
  char resolved[PATH_MAX];
  if (::realpath(slot.c_str(), resolved) == nullptr)
    return Status::FromErrno("release " + ReleaseId(number).ToString() + " of '" + app +
                                 "': slot '" + slot + "'",
                             errno);
  run->slot = resolved;
  ASSIGN_OR_RETURN(run->processes, LoadProcessFile(run->slot));
  GiveSocketsToWeb(spec, &run->processes);
  if (row.config_malformed)
    return Corruption("config of release " + ReleaseId(number).ToString() + " of '" +
                      app + "' is malformed");
  run->config = row.config;

  ASSIGN_OR_RETURN(RunAs as, RunAsOf(spec));
  ASSIGN_OR_RETURN(run->socket_fds, sockets_.For(spec, bind));
  for (const auto& [type, p] : run->processes.processes)
    for (const auto& name : p.sockets)
      if (run->socket_fds.count(name) == 0)
        return FailedPrecondition("process '" + type + "' of release " +
                                  ReleaseId(number).ToString() + " uses socket '" + name +
                                  "', which app '" + app + "' does not declare");
  run->user = as.user;
  run->home = as.home;
  if (::geteuid() == 0) {
    // The app's group is the one that may enter apps/APP (layout.h); a
    // changed group takes effect here, before anything runs.
    RETURN_IF_ERROR(SecureAppDir(state_dir_, app, as.gid));
    run->uid = as.uid;
    run->gid = as.gid;
    run->groups = as.dynamic ? std::vector<gid_t>{as.gid} : GroupsOf(as.uid, as.gid);
  } else if (as.uid != ::geteuid()) {
    return PermissionDenied("app '" + app + "' runs as uid " +
                            std::to_string(as.uid) + " ('" + as.user +
                            "'), but the daemon is not root and runs as '" +
                            UserName(::geteuid()) + "'");
  }
  return run;
}

Status RunService::RunActive(const std::string& app) {
  ASSIGN_OR_RETURN(Ledger::Activation act, ledger_->ActivationOf(app));
  if (act.active == 0) return Status::Ok();
  ASSIGN_OR_RETURN(std::shared_ptr<ReleaseRun> run, LoadRun(app, act.active));
  ASSIGN_OR_RETURN(Formation formation, ledger_->GetFormation(app));
  supervisor_->Run(std::move(run), formation);
  return Status::Ok();
}

void RunService::BringUp() {
  auto apps = ledger_->ListApps();
  if (!apps.ok()) {
    spdlog::error("Cannot list apps: {}", apps.status().message());
    return;
  }
  for (const AppSpec& app : *apps) {
    auto stopped = ledger_->StoppedByHand(app.name);
    if (stopped.ok() && *stopped) {
      spdlog::info("{} stays stopped (stopped by hand)", app.name);
      continue;
    }
    Status s = RunActive(app.name);
    if (!s.ok())
      spdlog::error("Cannot start {}: {}", app.name, s.message());
  }
}

Result<std::shared_ptr<ReleaseRun>> RunService::ActiveRun(
    const std::string& app, const std::string& verb) {
  RETURN_IF_ERROR(switcher_->RefuseDuringSwitch(app));
  ASSIGN_OR_RETURN(Ledger::Activation act, ledger_->ActivationOf(app));
  if (act.active == 0)
    return FailedPrecondition("app '" + app + "' has no active release to " +
                              verb + "; activate one first");
  // Its spawns bind closed sockets (AppSockets::Open): a scale of a
  // stopped app opens none.
  return LoadRun(app, act.active, SocketBind::kAtSpawn);
}

Result<std::vector<std::string>> RunService::Scale(const std::string& app,
                                                   const std::map<std::string, int>& scales,
                                                   const Actor& actor) {
  RETURN_IF_ERROR(RefuseDuringDelete(app));
  ASSIGN_OR_RETURN(std::shared_ptr<ReleaseRun> run, ActiveRun(app, "scale"));
  for (const auto& [type, n] : scales) {
    if (type == kReleaseType)
      return InvalidArgument(
          "'release' is the release phase, not a process type: it runs once "
          "before a release goes live and cannot be scaled");
    if (run->processes.processes.count(type) == 0)
      return NotFound("release " + run->release() + " of '" + app +
                      "' has no process type '" + type + "'");
    if (n < 0 || n > kMaxScale)
      return InvalidArgument("scale of '" + type + "' must be 0.." +
                             std::to_string(kMaxScale));
  }
  {
    // The total after the change, within kMaxInstances.
    ASSIGN_OR_RETURN(Formation after, ledger_->GetFormation(app));
    for (const auto& [type, n] : scales) after[type] = n;
    const int64_t total = TotalInstances(run->processes, after);
    if (total > kMaxInstances)
      return InvalidArgument("app '" + app + "' would run " + std::to_string(total) +
                             " instances in all, more than the " +
                             std::to_string(kMaxInstances) + " an app may run");
  }
  RETURN_IF_ERROR(ledger_->SetFormation(app, scales, ReleaseId(run->number), actor));
  std::vector<std::string> warnings = SharedPortWarnings(run->processes, run->config, scales);
  ASSIGN_OR_RETURN(Formation formation, ledger_->GetFormation(app));
  auto stopped = ledger_->StoppedByHand(app);
  ReleaseGroup* group = supervisor_->Active(app);
  if (group != nullptr && group->run().number == run->number) {
    // A stopped group only records it, for its next start.
    group->SetFormation(formation);
    return warnings;
  }
  if (stopped.ok() && *stopped) return warnings;
  supervisor_->Run(std::move(run), formation);
  return warnings;
}

void RunService::Stop(const std::string& app, const Actor& actor,
                      std::function<void(Status)> done) {
  auto spec = ledger_->GetApp(app);
  if (!spec.ok()) return done(spec.status());
  if (Status busy = switcher_->RefuseDuringSwitch(app); !busy.ok()) return done(busy);
  auto act = ledger_->ActivationOf(app);
  if (!act.ok()) return done(act.status());
  Status s = ledger_->AppendEvent(app, EventKind::kStopped, ReleaseId(act->active),
                                  actor, "");
  if (!s.ok()) return done(s);
  supervisor_->Stop(app, [this, app, done] {
    CloseIdleSockets(app);  // before the reply: a client then is refused
    done(Status::Ok());
  });
}

Status RunService::RefuseDuringDelete(const std::string& app) const {
  if (deleting_.count(app))
    return Status(StatusCode::kBusy, "app '" + app + "' is being deleted");
  return Status::Ok();
}

Status RunService::RefuseDelete(const std::string& app) const {
  RETURN_IF_ERROR(switcher_->RefuseDuringSwitch(app));
  for (const auto& w : start_waits_)
    if (w->app == app)
      return Status(StatusCode::kBusy, "app '" + app +
                                           "' has a start waiting for its processes to be "
                                           "ready; try again when it ended");
  if (!one_offs_->InUse(app).empty())
    return Status(StatusCode::kBusy, "app '" + app +
                                         "' has one-off processes running (ctl ps shows "
                                         "them); try again when they ended");
  return releases_->CheckIdle(app);
}

std::vector<std::string> RunService::LiveInstances(const std::string& app) {
  std::vector<std::string> out;
  for (ReleaseGroup* g : supervisor_->Groups(app))
    for (const Instance* i : g->Instances())
      switch (i->state()) {
        case InstanceState::kStopped:
        case InstanceState::kExited:
        case InstanceState::kFailed:
          break;
        default:
          out.push_back(g->run().release() + " " + i->name());
      }
  return out;
}

Result<int> RunService::CheckDelete(const std::string& app, DeleteStop stop) {
  RETURN_IF_ERROR(ledger_->GetApp(app).status());
  RETURN_IF_ERROR(RefuseDuringDelete(app));
  RETURN_IF_ERROR(RefuseDelete(app));
  const std::vector<std::string> live = LiveInstances(app);
  if (!live.empty() && stop == DeleteStop::kRefuse) {
    std::string names;
    for (size_t k = 0; k < live.size() && k < 5; ++k) names += (k ? ", " : "") + live[k];
    if (live.size() > 5) names += ", ...";
    return FailedPrecondition("app '" + app + "' has " + std::to_string(live.size()) +
                              " process(es) running (" + names +
                              "): stop them first (relsupd ctl stop " + app +
                              "), or delete with --stop");
  }
  return static_cast<int>(live.size());
}

void RunService::Delete(const std::string& app, DeleteStop stop, const Actor& actor,
                        std::function<void(Result<int>)> done) {
  Result<int> live = CheckDelete(app, stop);
  if (!live.ok()) return done(live.status());
  if (*live > 0) {
    auto act = ledger_->ActivationOf(app);
    if (!act.ok()) return done(act.status());
    Status s = ledger_->AppendEvent(app, EventKind::kStopped, ReleaseId(act->active), actor,
                                    "app delete");
    if (!s.ok()) return done(s);
  }
  const int stopped = *live;
  // Every group goes (stopped first, gracefully); the app is forgotten by
  // the supervisor once they have. Meanwhile start, scale, activate and a
  // second delete of it are refused.
  deleting_.insert(app);
  releases_->SetDeleting(app, true);
  supervisor_->Retire(app, nullptr, [this, app, actor, stopped, done] {
    deleting_.erase(app);
    releases_->SetDeleting(app, false);
    // A one-off may have begun while they stopped (the release stage
    // refused its work meanwhile).
    if (Status s = RefuseDelete(app); !s.ok()) return done(s);
    if (!LiveInstances(app).empty())
      return done(Status(StatusCode::kBusy,
                         "app '" + app + "' was started again while it was being deleted"));
    if (Status s = ledger_->DeleteApp(app, actor); !s.ok()) return done(s);
    sockets_.Forget(app);
    switcher_->Forget(app);
    idle_check_apps_.erase(app);
    spdlog::info("App '{}' deleted by {}", app, actor.name);
    done(stopped);
  });
}

void RunService::Start(const std::string& app, const Actor& actor,
                       WaitReady wait, std::function<void(Status)> done) {
  auto spec = ledger_->GetApp(app);
  if (!spec.ok()) return done(spec.status());
  if (Status s = RefuseDuringDelete(app); !s.ok()) return done(s);
  auto run = ActiveRun(app, "start");
  if (!run.ok()) return done(run.status());
  auto formation = ledger_->GetFormation(app);
  if (!formation.ok()) return done(formation.status());
  const int64_t number = (*run)->number;
  Status s = ledger_->AppendEvent(app, EventKind::kStarted, ReleaseId(number),
                                  actor, "");
  if (!s.ok()) return done(s);
  // Counted before the start: a spawn that fails at once is an exit too.
  int restarts_before = 0;
  if (const ReleaseGroup* g = supervisor_->Active(app))
    for (const Instance* i : g->Instances()) restarts_before += i->restarts();
  supervisor_->Run(std::move(*run), *formation);
  if (wait == WaitReady::kNo) return done(Status::Ok());
  auto w = std::make_unique<StartWait>();
  w->owner = this;
  w->app = app;
  w->number = number;
  w->done = std::move(done);
  w->deadline_ms = spec->activation_deadline_ms;
  w->restarts_before = restarts_before;
  for (UvHandle<uv_timer_t>* t : {&w->deadline, &w->settle}) {
    uv_timer_init(supervisor_->env()->loop, t->get());
    (*t)->data = w.get();
  }
  uv_timer_start(
      w->deadline.get(),
      [](uv_timer_t* t) {
        auto* sw = static_cast<StartWait*>(t->data);
        if (sw == nullptr) return;
        std::string waiting;
        if (const ReleaseGroup* g = sw->owner->supervisor_->Active(sw->app))
          for (const Instance* i : g->Instances())
            if (i->state() != InstanceState::kReady)
              waiting += (waiting.empty() ? "" : ", ") + i->name() + " " +
                         std::string(i->shown_state());
        sw->owner->EndStartWait(
            sw, FailedPrecondition(
                   "app '" + sw->app + "' was started, but " +
                   ReleaseId(sw->number).ToString() + " was not ready within " +
                   FormatDurationMs(sw->deadline_ms) +
                   (waiting.empty() ? "" : " (" + waiting + ")") +
                   "; it keeps trying: see 'relsupd ctl ps " + sw->app +
                   "' and 'relsupd ctl logs " + sw->app + "'"));
      },
      static_cast<uint64_t>(w->deadline_ms), 0);
  StartWait* raw = w.get();
  start_waits_.push_back(std::move(w));
  CheckStartWait(raw);
}

void RunService::CheckStartWait(StartWait* w) {
  const std::string& app = w->app;
  const std::string release = ReleaseId(w->number).ToString();
  const ReleaseGroup* g = supervisor_->Active(app);
  if (g == nullptr || g->run().number != w->number || g->stopping())
    return EndStartWait(
        w, FailedPrecondition("app '" + app + "' was stopped or switched before " +
                              release + " was ready"));
  const std::string see = "see 'relsupd ctl ps " + app +
                          "' and 'relsupd ctl logs " + app + " --process ";
  int restarts = 0;
  const Instance* newest = nullptr;
  for (const Instance* i : g->Instances()) {
    restarts += i->restarts();
    if (!i->exits().empty() &&
        (newest == nullptr ||
         i->exits().back().time_ms > newest->exits().back().time_ms))
      newest = i;
  }
  for (const Instance* i : g->Instances()) {
    if (i->state() != InstanceState::kFailed &&
        i->state() != InstanceState::kExited)
      continue;
    std::string last = i->exits().empty() ? "" : ": " + i->exits().back().Describe();
    std::string what = i->state() == InstanceState::kFailed
                           ? " failed (crash limit)"
                           : " exited and is not restarted (restart policy)";
    return EndStartWait(
        w, FailedPrecondition("app '" + app + "' was started, but " +
                              i->name() + " of " + release + what + last +
                              "; " + see + i->name() + "'"));
  }
  if (restarts - w->restarts_before >= 3 && newest != nullptr)
    return EndStartWait(
        w, FailedPrecondition(
               "app '" + app + "' was started, but " + release +
               " is crash-looping: " + newest->name() + " exited: " +
               newest->exits().back().Describe() + " (" +
               std::to_string(restarts - w->restarts_before) +
               " exits while starting); it keeps restarting: " + see +
               newest->name() + "'"));
  if (!g->AllReady()) return;
  // As in a switch: an instance without a ready check counts once it
  // stayed up a second.
  constexpr int64_t kSettleMs = 1000;
  int64_t now = supervisor_->env()->clock->MonotonicMs();
  int64_t wait_ms = 0;
  for (const Instance* i : g->Instances())
    if (i->state() == InstanceState::kReady &&
        i->spec().ready.kind == ReadyKind::kNone)
      wait_ms = std::max(wait_ms, kSettleMs - (now - i->started_ms()));
  if (wait_ms > 0) {
    uv_timer_start(
        w->settle.get(),
        [](uv_timer_t* t) {
          if (auto* sw = static_cast<StartWait*>(t->data))
            sw->owner->CheckStartWait(sw);
        },
        static_cast<uint64_t>(wait_ms), 0);
    return;
  }
  EndStartWait(w, Status::Ok());
}

void RunService::EndStartWait(StartWait* w, Status s) {
  auto it = std::find_if(start_waits_.begin(), start_waits_.end(),
                         [w](const auto& p) { return p.get() == w; });
  if (it == start_waits_.end()) return;
  std::unique_ptr<StartWait> owned = std::move(*it);
  start_waits_.erase(it);
  owned->done(std::move(s));
}

Result<std::vector<RunService::Signaled>> RunService::Signal(const std::string& app,
                                                            const std::string& process,
                                                            int signum, const Actor& actor) {
  RETURN_IF_ERROR(ledger_->GetApp(app).status());
  ReleaseGroup* group = supervisor_->Active(app);
  if (group == nullptr || group->stopping())
    return FailedPrecondition("app '" + app + "' is not running");
  std::string type = process;
  int index = 0;
  if (const size_t dot = process.find('.'); dot != std::string::npos) {
    type = process.substr(0, dot);
    const std::string n = process.substr(dot + 1);
    if (n.empty() || n.size() > 4 || n.find_first_not_of("0123456789") != std::string::npos ||
        (index = std::stoi(n)) == 0)
      return InvalidArgument("'" + process + "' is not a process: use TYPE or TYPE.N, e.g. web or web.2");
  }
  const ReleaseRun& run = group->run();
  if (!type.empty() && run.processes.processes.count(type) == 0)
    return NotFound("release " + run.release() + " of '" + app + "' has no process type '" +
                    type + "'");
  std::vector<Instance*> targets = group->Running(type, index);
  if (targets.empty())
    return FailedPrecondition("no process of " + (process.empty() ? "'" + app + "'" : "'" + process + "'") +
                              " runs in " + app + " " + run.release());
  std::vector<Signaled> sent;
  std::string names;
  for (Instance* i : targets) {
    const pid_t pid = i->pid();
    Status s = i->Signal(signum);
    if (!s.ok()) {
      spdlog::warn("{} {} {}: cannot send signal {}: {}", app, run.release(), i->name(), signum,
                   s.message());
      continue;
    }
    sent.push_back({i->name(), pid});
    names += (names.empty() ? "" : ", ") + i->name();
  }
  if (sent.empty()) return FailedPrecondition("no process of '" + app + "' could be signalled");
  const char* abbrev = sigabbrev_np(signum);
  const std::string sig = abbrev != nullptr ? abbrev : std::to_string(signum);
  spdlog::info("{} {}: SIG{} sent to {} by {}", app, run.release(), sig, names, actor.name);
  Status recorded = ledger_->AppendEvent(app, EventKind::kSignaled, ReleaseId(run.number), actor,
                                         sig + " to " + names);
  if (!recorded.ok()) spdlog::warn("Cannot record the signal: {}, ignoring", recorded.message());
  return sent;
}

void RunService::Restart(const std::string& app, const std::string& type,
                         const Actor& actor, std::function<void(Status)> done) {
  auto spec = ledger_->GetApp(app);
  if (!spec.ok()) return done(spec.status());
  if (Status busy = switcher_->RefuseDuringSwitch(app); !busy.ok()) return done(busy);
  ReleaseGroup* group = supervisor_->Active(app);
  if (group == nullptr || group->stopping())
    return done(FailedPrecondition("app '" + app + "' is not running"));
  Status s = ledger_->AppendEvent(app, EventKind::kRestarted, ReleaseId(group->run().number),
                                  actor, type.empty() ? "all" : type);
  if (!s.ok()) return done(s);
  group->Restart(type, std::move(done));
}

const std::map<std::pair<std::string, std::string>, uint64_t>& RunService::activation_counts()
    const {
  return switcher_->activation_counts();
}

Result<std::vector<PsRow>> RunService::Ps(
    const std::optional<std::string>& app, bool memory_only) {
  std::vector<std::string> names;
  if (app && memory_only) {
    const std::vector<std::string> running = supervisor_->Apps();
    if (std::find(running.begin(), running.end(), *app) == running.end())
      return Status(StatusCode::kBusy, "relsupd is re-executing: ask again about '" + *app +
                                           "' in a moment");
    names.push_back(*app);
  } else if (app) {
    RETURN_IF_ERROR(ledger_->GetApp(*app).status());
    names.push_back(*app);
  } else {
    names = supervisor_->Apps();
  }
  const SuperviseEnv* env = supervisor_->env();
  int64_t now = env->clock->MonotonicMs();
  // Once, not per instance: a system call costs about a microsecond here,
  // and a `ps` of 1,000 instances made 1,000 of them.
  const uid_t daemon_uid = ::geteuid();
  std::vector<PsRow> rows;
  for (const auto& name : names) {
    bool first = true;
    for (ReleaseGroup* g : supervisor_->Groups(name)) {
      for (const Instance* i : g->Instances()) {
        PsRow r;
        r.app = name;
        r.release = g->run().release();
        r.process = i->name();
        r.type = i->type();
        r.pid = i->pid();
        r.state = std::string(i->shown_state());
        r.uptime_ms = i->started_ms() > 0 ? now - i->started_ms() : 0;
        r.restarts = i->restarts();
        r.exits.assign(i->exits().begin(), i->exits().end());
        if (!i->exits().empty()) {
          r.last_exit = i->exits().back().Describe();
          r.last_exit_at = i->exits().back().time_ms;
          r.last_exit_cause = std::string(i->exits().back().Cause());
        }
        if (i->stop_sent_ms() > 0 && i->pid() > 0) {
          r.stopping_ms = now - i->stop_sent_ms();
          r.stop_timeout_ms = i->spec().stop_timeout_ms;
        }
        r.status = i->status_text();
        r.active = first;
        r.uid = g->run().uid.value_or(daemon_uid);
        if (i->pid() > 0 && i->usage().processes > 0) {
          r.has_usage = true;
          r.memory_bytes = i->usage().memory_bytes;
          r.cpu_seconds = i->usage().cpu_seconds;
          r.cpu_percent = i->cpu_percent();
        }
        r.memory_limit_bytes = i->spec().limits.memory_bytes;
        if (r.memory_limit_bytes > 0)
          r.memory_limit_by = (i->pid() > 0 ? !i->memory_watched() : env->memory_by_cgroup)
                                  ? "cgroup"
                                  : "rss-watch";
        rows.push_back(std::move(r));
      }
      first = false;
    }
  }
  return rows;
}

void RunService::Shutdown(std::function<void()> done) {
  while (!start_waits_.empty())
    EndStartWait(start_waits_.front().get(),
                 Status(StatusCode::kUnavailable, "the daemon is stopping"));
  one_offs_->KillAll();  // they belong to their clients, who are cut off
  switcher_->Shutdown();
  supervisor_->StopEverything(std::move(done));
}

void RunService::Activate(const ActivateRequest& request,
                          std::function<void(Result<int64_t>)> started,
                          std::function<void(Status)> done) {
  // A switch that changed nothing, or ended with nothing running, leaves
  // no socket open that it bound.
  const std::string app = request.app;
  if (Status s = RefuseDuringDelete(app); !s.ok()) return started(s);
  switcher_->Activate(
      request,
      [this, app, started = std::move(started)](Result<int64_t> id) {
        if (!id.ok()) CloseIdleSockets(app);
        started(std::move(id));
      },
      [this, app, done = std::move(done)](Status outcome) {
        CloseIdleSockets(app);
        done(std::move(outcome));
      });
}

void RunService::CloseIdleSockets(const std::string& app) {
  std::set<std::string> serving;
  for (ReleaseGroup* g : supervisor_->Groups(app))
    for (const Instance* i : g->Instances())
      if (!i->settled())
        serving.insert(i->spec().sockets.begin(), i->spec().sockets.end());
  for (const std::string& name : sockets_.CloseIdle(app, serving))
    spdlog::info("{}: socket '{}' closed: no instance serves it (clients are "
                 "refused until one starts)",
                 app, name);
}

void RunService::CloseIdleSocketsSoon(const std::string& app) {
  idle_check_apps_.insert(app);
  uv_timer_start(idle_check_timer_.get(), &RunService::OnIdleSocketsTimer, 0, 0);
}

void RunService::OnIdleSocketsTimer(uv_timer_t* timer) {
  auto* self = static_cast<RunService*>(timer->data);
  auto apps = std::move(self->idle_check_apps_);
  self->idle_check_apps_.clear();
  if (self->switcher_->shutting_down()) return;
  for (const std::string& app : apps) self->CloseIdleSockets(app);
}

void RunService::OnInstanceChange(const ReleaseGroup& group,
                                  const Instance& instance) {
  AnnounceChange(group, instance);
  // The last live instance of a retired group stopped: its release may be
  // free for a prune that held it back.
  // (InUseEnded returns at once unless a prune of this app waits.)
  if (instance.settled() && releases_ != nullptr &&
      !switcher_->shutting_down() &&
      &group != supervisor_->Active(group.run().app))
    releases_->InUseEnded(group.run().app);
  switcher_->OnInstanceChange(group);
  std::vector<StartWait*> waits;
  for (const auto& w : start_waits_)
    if (w->app == group.run().app) waits.push_back(w.get());
  for (StartWait* w : waits) CheckStartWait(w);
  // An instance that stopped may have been the last to serve a socket.
  // A failed one is judged at once (rare, and `ps` then shows the socket
  // closed); stops are batched per loop turn, and `stop` judges again
  // before it replies.
  if (instance.settled() && !switcher_->shutting_down()) {
    bool open = false;
    for (const std::string& s : instance.spec().sockets)
      open = open || sockets_.IsOpen(group.run().app, s);
    if (open && instance.state() == InstanceState::kFailed)
      CloseIdleSockets(group.run().app);
    else if (open)
      CloseIdleSocketsSoon(group.run().app);
  }
}

void RunService::AnnounceChange(const ReleaseGroup& group, const Instance& instance) {
  // One feed entry per visible change: several inner steps read the same
  // (spawned, then running: "running"). An exit is always one, with its
  // cause, even when the instance is back in the same state within the
  // same turn (restarted at once after a crash, a health check or a
  // memory limit).
  const std::string_view state = instance.shown_state();
  uint64_t exits = 0;
  for (const auto& [cause, n] : instance.exit_counts()) exits += n;
  auto [last, fresh] = announced_.try_emplace(&instance, Announced{state, exits});
  const bool exited = !fresh && exits > last->second.exits;
  const bool changed = fresh || exited || last->second.state != state;
  last->second = {state, exits};
  if (instance.settled()) announced_.erase(&instance);
  if (feed_ == nullptr || !changed) return;
  const bool exit_state =
      instance.settled() || instance.state() == InstanceState::kBackoff;
  auto add = [&](std::string_view shown, std::string detail) {
    FeedEntry e;
    e.app = group.run().app;
    e.kind = "instance";
    e.release = ReleaseId(group.run().number).ToString();
    e.process = instance.name();
    e.state = std::string(shown);
    e.detail = std::move(detail);
    feed_->Add(std::move(e), supervisor_->env()->clock->WallMs());
  };
  const std::string cause = instance.exits().empty() ? "" : instance.exits().back().Describe();
  // An exit's cause, as `ps` gives it, with the state it led to; or an
  // entry of its own when the instance is already on its way again.
  if (exited && !exit_state) add("exited", cause);
  add(state, exit_state ? cause : "");
}

void RunService::OnInstanceFailed(const ReleaseGroup& group,
                                  const Instance& instance,
                                  const std::string& reason) {
  Status s = ledger_->AppendEvent(group.run().app, EventKind::kFailed,
                                  ReleaseId(group.run().number), kDaemonActor, reason);
  if (!s.ok())
    spdlog::warn("Cannot record that {} {} failed: {}, ignoring",
                 group.run().app, instance.name(), s.message());
}

}  // namespace relsupd
