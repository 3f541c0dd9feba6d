#include "daemon/supervise/instance.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "daemon/base/byte_size.h"
#include "daemon/base/duration.h"
#include "daemon/logs/log_store.h"
#include "daemon/supervise/cgroup.h"
#include "daemon/supervise/command_argv.h"
#include "daemon/supervise/exec_step.h"

namespace relsupd {
namespace {

double DefaultRandom01() {
  static std::minstd_rand gen(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

}  // namespace

std::map<std::string, std::string> ProcessEnvironment(
    const ReleaseRun& run, const SuperviseEnv& env, const std::string& process,
    const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> e;
  e["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (!run.user.empty()) {
    e["USER"] = run.user;
    e["LOGNAME"] = run.user;
  }
  if (!run.home.empty()) e["HOME"] = run.home;
  for (const auto& [k, v] : run.config) e[k] = v;
  for (const auto& [k, v] : extra) e[k] = v;
  e["RELSUPD_APP"] = run.app;
  e["RELSUPD_RELEASE"] = run.release();
  e["RELSUPD_PROCESS"] = process;
  if (!env.supervisor_id.empty()) e["RELSUPD_SUPERVISOR"] = env.supervisor_id;
  return e;
}

namespace {

std::string SignalName(int signum) {
  const char* abbrev = sigabbrev_np(signum);
  return abbrev != nullptr ? abbrev : std::to_string(signum);
}

}  // namespace

std::string FaultReason(StopCause cause, const std::string& fault) {
  switch (cause) {
    case StopCause::kHealth:
      return "health check failed: " + fault;
    case StopCause::kWatchdog:
      return "watchdog: " + fault;
    case StopCause::kMemory:
      return "memory limit (" + fault + ")";
    default:
      return fault;
  }
}

std::string ExitInfo::Describe() const {
  std::string plain = signal != 0 ? "signal " + SignalName(signal)
                                  : "exit " + std::to_string(status);
  std::string prefix;
  switch (stop) {
    case StopCause::kNone:
    case StopCause::kRequested:
      break;
    case StopCause::kNotReady:
      prefix = "not ready within " + FormatDurationMs(ready_timeout_ms) + ": ";
      break;
    case StopCause::kHealth:
    case StopCause::kWatchdog:
    case StopCause::kMemory:
      prefix = FaultReason(stop, fault) + ": ";
      break;
    case StopCause::kOomKilled:
      return "oom-killed (memory.max): " + plain;
  }
  if (stop == StopCause::kNone) return plain;
  if (killed)
    return prefix + "killed (stop timeout " +
           FormatDurationMs(stop_timeout_ms) + ")";
  std::string out = prefix + "stopped (SIG" + SignalName(stop_signal) + ")";
  // The stop signal itself, or a clean exit after it, is the stop working.
  if (signal == stop_signal || (signal == 0 && status == 0)) return out;
  return out + ": " + plain;
}

std::string_view ExitInfo::Cause() const {
  if (stop == StopCause::kOomKilled) return "oom-killed";
  if (killed && (stop == StopCause::kNone || stop == StopCause::kRequested ||
                 stop == StopCause::kNotReady))
    return "stop-timeout";
  switch (stop) {
    case StopCause::kNone:
      return "exited";
    case StopCause::kRequested:
      return "stopped";
    case StopCause::kNotReady:
      return "not-ready";
    case StopCause::kHealth:
      return "health";
    case StopCause::kWatchdog:
      return "watchdog";
    case StopCause::kMemory:
      return "memory-limit";
    case StopCause::kOomKilled:
      return "oom-killed";
  }
  return "exited";
}

Instance::Instance(SuperviseEnv* env, std::shared_ptr<const ReleaseRun> run,
                   std::string type, int index, InstanceObserver* observer)
    : env_(env),
      run_(std::move(run)),
      spec_(&run_->processes.processes.at(type)),
      type_(std::move(type)),
      index_(index),
      observer_(observer),
      backoff_(env->backoff,
               env->random01 ? env->random01 : &DefaultRandom01),
      capture_(env->loop, &env->loop_turn, env->clock, env->logs, env->log_rate,
               LogSource{run_->app, run_->release(), name()}) {
  uv_timer_init(env_->loop, timer_.get());
  timer_->data = this;
  uv_timer_init(env_->loop, watchdog_timer_.get());
  watchdog_timer_->data = this;
}

Instance::~Instance() {
  capture_.Detach();
  probe_.reset();
  health_.reset();
  if (child_ != nullptr && !child_->exited()) {
    spdlog::warn("{} {} (pid {}) killed: its supervisor went away",
                 run_->app, name(), child_->pid());
  }
  child_.reset();  // SIGKILLs the group if it still runs
  if (env_->cgroups != nullptr && !cgroup_dir_.empty())
    env_->cgroups->KillAndRemove(cgroup_dir_);
}

pid_t Instance::pid() const {
  return child_ != nullptr && !child_->exited() ? child_->pid() : 0;
}

void Instance::Start() {
  start_queued_ = false;
  if (state_ == InstanceState::kFailed || state_ == InstanceState::kExited)
    backoff_.Reset();  // a start by hand earns a fresh crash window
  type_failed_ = false;
  Dispatch(InstanceEvent::kStartRequested);
}

void Instance::Stop() {
  start_queued_ = false;
  Dispatch(InstanceEvent::kStopRequested);
}

Status Instance::Signal(int signum) const {
  if (pid() == 0) return FailedPrecondition(name() + " has no running process");
  return child_->Signal(signum);
}

void Instance::NotifyReady() {
  if (state_ == InstanceState::kRunning &&
      spec_->ready.kind == ReadyKind::kNotify)
    Dispatch(InstanceEvent::kReady);
}

void Instance::Dispatch(InstanceEvent event, ExitKind exit,
                        CrashLimit crash_limit, InstanceState adopted) {
  TransitionInput in{state_, event, spec_->restart, exit, crash_limit, adopted};
  Transition t = NextTransition(in);
  if (t.action == InstanceAction::kInvalid) {
    spdlog::debug("{} {}: event {} ignored in state {}", run_->app, name(),
                  InstanceEventName(event), InstanceStateName(state_));
    return;
  }
  InstanceState before = state_;
  state_ = t.next;
  if (TimerOf(before) != TimerOf(state_)) CancelTimer();
  if (before != state_ && before == InstanceState::kRunning) probe_.reset();
  if (before == InstanceState::kReady && state_ != InstanceState::kReady) StopReadyWatch();
  Act(t.action);
  if (before != InstanceState::kReady && state_ == InstanceState::kReady) StartReadyWatch();
  if (before != state_ || t.action == InstanceAction::kMarkFailed)
    observer_->OnInstanceState(this, before);
}

void Instance::Act(InstanceAction action) {
  switch (action) {
    case InstanceAction::kNone:
    case InstanceAction::kInvalid:
      return;
    case InstanceAction::kResume:
      return DoResume();
    case InstanceAction::kSpawn:
      return DoSpawn();
    case InstanceAction::kStartReadyCheck:
      return DoStartReadyCheck();
    case InstanceAction::kSignalStop:
      probe_.reset();
      if (child_ == nullptr || child_->exited()) {
        // Nothing runs (the exit is being handled): the stop is complete.
        return;
      }
      if (state_ == InstanceState::kStoppingFault) {
        stop_cause_ = fault_cause_;
      } else {
        stop_cause_ = StopCause::kRequested;
        fault_.clear();
      }
      stop_sent_ms_ = env_->clock->MonotonicMs();
      // The watchdog's SIGABRT goes to the main process, for its core dump.
      if (Status s = stop_cause_ == StopCause::kWatchdog ? child_->Signal(SIGABRT)
                     : spec_->stop_mode == StopMode::kMain
                         ? child_->Signal(spec_->stop_signal)
                         : child_->SignalGroup(spec_->stop_signal);
          !s.ok())
        spdlog::debug("{} {}: {}, ignoring", run_->app, name(), s.message());
      ArmTimer(spec_->stop_timeout_ms);
      return;
    case InstanceAction::kKill:
      spdlog::warn("{} {} (pid {}) did not stop within {} ms, killing it",
                   run_->app, name(), pid(), spec_->stop_timeout_ms);
      // The whole group and cgroup, whatever the stop mode.
      if (child_ != nullptr && !child_->exited()) killed_ = true;
      if (env_->cgroups != nullptr && !cgroup_dir_.empty())
        env_->cgroups->Kill(cgroup_dir_);
      if (child_ != nullptr && !child_->exited())
        child_->SignalGroup(SIGKILL).IgnoreError();
      return;
    case InstanceAction::kArmBackoff:
      if (backoff_delay_ms_ <= 0 && env_->spawn_budget <= 0) {
        ArmTimer(1);  // immediate, but in the next loop iteration
      } else if (backoff_delay_ms_ <= 0) {
        // The first restart is immediate: no timer, no loop iteration.
        Dispatch(InstanceEvent::kTimer);
      } else {
        spdlog::info("{} {} restarts in {} ms", run_->app, name(),
                     backoff_delay_ms_);
        ArmTimer(backoff_delay_ms_);
      }
      return;
    case InstanceAction::kMarkFailed: {
      // The policy that judged, which a reload since may have changed for
      // new instances; "within 1m30s", "within 500ms".
      const BackoffPolicy& policy = backoff_.policy();
      std::string reason = name() + " crashed " + std::to_string(policy.max_crashes + 1) +
                           " times within " + FormatDurationMs(policy.window_ms);
      if (!exits_.empty()) reason += ", last: " + exits_.back().Describe();
      spdlog::warn("{} {} failed: {}", run_->app, name(), reason);
      observer_->OnInstanceFailed(this, reason);
      return;
    }
  }
}

SpawnRequest Instance::BaseRequest() const {
  SpawnRequest req;
  req.cwd = run_->slot;
  req.uid = run_->uid;
  req.gid = run_->gid;
  req.groups = run_->groups;
  req.rlimits = env_->child_rlimits;
  if (spec_->limits.nofile > 0) {
    std::erase_if(req.rlimits,
                  [](const ExecRlimit& r) { return r.resource == RLIMIT_NOFILE; });
    const auto n = static_cast<rlim_t>(spec_->limits.nofile);
    req.rlimits.push_back({RLIMIT_NOFILE, n, n});
  }
  req.pdeathsig = env_->pdeathsig;
  std::map<std::string, std::string> e =
      ProcessEnvironment(*run_, *env_, name(), spec_->env);
  if (!env_->notify_socket.empty()) e["NOTIFY_SOCKET"] = env_->notify_socket;
  e.erase("WATCHDOG_USEC");
  e.erase("WATCHDOG_PID");
  std::string names;
  for (const auto& s : spec_->sockets) {
    int fd = -1;
    if (env_->socket_fd) {
      fd = env_->socket_fd(run_->app, s);
    } else if (auto it = run_->socket_fds.find(s); it != run_->socket_fds.end()) {
      fd = it->second;
    }
    if (fd < 0) continue;
    req.pass_fds.push_back(fd);
    if (!names.empty()) names += ':';
    names += s;
  }
  if (!req.pass_fds.empty()) e["LISTEN_FDNAMES"] = names;
  for (const auto& [k, v] : e) req.env.push_back(k + "=" + v);
  return req;
}

void Instance::DoSpawn() {
  --env_->spawn_budget;
  SpawnRequest req = BaseRequest();
  req.argv = CommandArgv(spec_->command);
  if (spec_->watchdog_ms > 0) {
    // As systemd: the usec, and the pid it is meant for (the exec step
    // writes the child's own), so that a child of it ignores it.
    req.env.push_back("WATCHDOG_USEC=" + std::to_string(spec_->watchdog_ms * 1000));
    req.watchdog_pid = true;
  }
  usage_ = {};
  usage_ms_ = 0;
  cpu_percent_ = 0;
  if (env_->cgroups != nullptr) {
    unsigned applied = 0;
    auto dir = env_->cgroups->Create(run_->app, name(), spec_->limits, &applied);
    memory_max_set_ = dir.ok() && (applied & kCgroupMemory) != 0;
    if (dir.ok()) {
      cgroup_dir_ = *dir;
      req.cgroup_dir = *dir;
    } else {
      spdlog::warn("{} {}: {}, running it without a cgroup", run_->app,
                   name(), dir.status().message());
    }
  }
  // The spawn's own cost on this machine (not the supervisor's clock,
  // which a test may hold still) ends the batch when it adds up.
  const auto spawn_start = std::chrono::steady_clock::now();
  auto child = ChildProcess::Spawn(env_->loop, req, ChildCallbacks());
  env_->spawn_us += std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - spawn_start)
                        .count();
  if (env_->spawn_us >= SuperviseEnv::kSpawnTimeBudgetUs) env_->spawn_budget = 0;
  int64_t now = env_->clock->MonotonicMs();
  if (!child.ok()) {
    // The exec step failed (no such program, a cgroup, a uid): the
    // operator reads why in the daemon's log and in the app's own.
    spdlog::warn("{} {}: {}", run_->app, name(), child.status().message());
    capture_.WriteLine(OutputStream::kErr,
                       "relsupd: " + child.status().message());
    capture_.FlushLogs();
    RecordExit(ExitInfo{.time_ms = env_->clock->WallMs(),
                        .status = ExecStepExitCode(child.status()),
                        .fault = {}});
    if (env_->cgroups != nullptr && !cgroup_dir_.empty()) {
      // Nothing ever ran in it (a failed step is reaped before we return).
      env_->cgroups->KillAndRemove(cgroup_dir_);
      cgroup_dir_.clear();
    }
    backoff_delay_ms_ = backoff_.Exited(now);
    Dispatch(InstanceEvent::kSpawnFailed, ExitKind::kFailure,
             CrashLimitNow());
    return;
  }
  child_ = std::move(*child);
  capture_.Attach(child_.get());
  started_ms_ = now;
  stop_cause_ = StopCause::kNone;
  stop_sent_ms_ = 0;
  killed_ = false;
  backoff_.Started(now);
  spdlog::info("{} {} {} started (pid {}): {}", run_->app, run_->release(),
               name(), child_->pid(), spec_->command);
  Dispatch(InstanceEvent::kSpawned);
}

void Instance::DoStartReadyCheck() {
  const ReadyCheck& check = spec_->ready;
  if (check.kind == ReadyKind::kNone) {
    Dispatch(InstanceEvent::kReady);
    return;
  }
  ArmTimer(spec_->ready_timeout_ms);
  if (check.kind == ReadyKind::kNotify) return;
  StartProbe();
}

ChildProcess::Callbacks Instance::ChildCallbacks() {
  ChildProcess::Callbacks cb;
  cb.on_output = [this](OutputStream s, std::string_view d) {
    capture_.OnOutput(s, d);
  };
  cb.on_eof = [this](OutputStream s) { capture_.OnEof(s); };
  cb.on_exit = [this](int64_t status, int signal) { OnExit(status, signal); };
  return cb;
}

void Instance::StartProbe() {
  SpawnRequest check = BaseRequest();
  check.cgroup_dir = cgroup_dir_;  // the check ends with the instance
  auto probe = ReadyProbe::Start(env_->loop, spec_->ready, check, [this] {
    // The probe may not be destroyed from inside its own callback chain
    // before it returns; it only calls us last, so resetting here is safe.
    probe_.reset();
    Dispatch(InstanceEvent::kReady);
  });
  if (!probe.ok()) {
    spdlog::warn("{} {}: ready check: {}; the ready timeout will end it",
                 run_->app, name(), probe.status().message());
    return;
  }
  probe_ = std::move(*probe);
}

void Instance::ArmTimer(int64_t ms) {
  timer_deadline_ms_ = env_->clock->MonotonicMs() + std::max<int64_t>(ms, 0);
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (auto* self = static_cast<Instance*>(t->data)) self->OnTimer();
      },
      static_cast<uint64_t>(std::max<int64_t>(ms, 0)), 0);
}

void Instance::CancelTimer() { uv_timer_stop(timer_.get()); }

void Instance::OnTimer() {
  if (state_ == InstanceState::kBackoff && env_->spawn_budget <= 0) {
    ArmTimer(1);  // this iteration has spawned enough; try the next one
    return;
  }
  if (state_ == InstanceState::kRunning) {
    spdlog::warn("{} {} (pid {}) was not ready within {} ms, stopping it",
                 run_->app, name(), pid(), spec_->ready_timeout_ms);
    fault_cause_ = StopCause::kNotReady;
    fault_.clear();
  }
  Dispatch(InstanceEvent::kTimer);
}

void Instance::OnExit(int64_t status, int signal) {
  // Whatever the child wrote before it died is already in the pipes.
  child_->DrainOutput();
  capture_.FlushLines();

  ExitInfo info{.time_ms = env_->clock->WallMs(), .status = status, .signal = signal,
                .fault = {}};
  if (stop_cause_ != StopCause::kNone) {
    info.stop = stop_cause_;
    info.stop_signal =
        stop_cause_ == StopCause::kWatchdog ? SIGABRT : spec_->stop_signal;
    info.killed = killed_;
    info.stop_timeout_ms = spec_->stop_timeout_ms;
    info.ready_timeout_ms = spec_->ready_timeout_ms;
    info.fault = fault_;
  } else if (signal == SIGKILL && env_->cgroups != nullptr && !cgroup_dir_.empty() &&
             env_->cgroups->OomKilled(cgroup_dir_)) {
    info.stop = StopCause::kOomKilled;
  }
  stop_cause_ = StopCause::kNone;
  fault_.clear();
  stop_sent_ms_ = 0;
  killed_ = false;
  RecordExit(info);
  pid_t pid = child_->pid();
  // Destroyed when this returns, after a restart's spawn: closing the old
  // pipes (the kernel frees them) and writing the log are not on the
  // restart's path. Safe: ChildProcess calls us last.
  std::unique_ptr<ChildProcess> old = std::move(child_);
  capture_.Detach();
  struct FlushLogs {
    LogStore* logs;
    ~FlushLogs() {
      if (logs != nullptr) logs->Flush();
    }
  } flush_logs{env_->logs};
  started_ms_ = 0;
  if (env_->cgroups != nullptr && !cgroup_dir_.empty()) {
    // Descendants that outlived the main process end with it.
    env_->cgroups->KillAndRemove(cgroup_dir_);
    cgroup_dir_.clear();
  } else if (pid > 0) {
    // Without a cgroup, its process group ends with it (the group id cannot
    // be reused while any member lives; ESRCH when none is left).
    ::kill(-pid, SIGKILL);
  }

  if (state_ == InstanceState::kStopping) {
    spdlog::info("{} {} (pid {}) stopped: {}", run_->app, name(), pid,
                 info.Describe());
    Dispatch(InstanceEvent::kExited);
    return;
  }
  // Any other exit is a crash, restarted under the backoff: a stop because
  // it was not ready in time (kStoppingFault) too.
  spdlog::info("{} {} (pid {}) exited: {}", run_->app, name(), pid,
               info.Describe());
  backoff_delay_ms_ = backoff_.Exited(env_->clock->MonotonicMs());
  Dispatch(InstanceEvent::kExited,
           status == 0 && signal == 0 ? ExitKind::kSuccess : ExitKind::kFailure,
           CrashLimitNow());
}

void Instance::NotifyWatchdog(std::string_view value) {
  if (spec_->watchdog_ms <= 0 || state_ != InstanceState::kReady) return;
  if (value == "trigger") {
    Fault(StopCause::kWatchdog, "the process sent WATCHDOG=trigger");
  } else if (value == "1") {
    ArmWatchdog();
  }
}

void Instance::SetUsage(const Usage& usage, int64_t now_ms) {
  if (usage.processes == 0) return;  // it is gone; its exit comes next
  if (usage_ms_ > 0 && now_ms > usage_ms_) {
    const double cpu = std::max(usage.cpu_seconds - usage_.cpu_seconds, 0.0);
    cpu_percent_ = cpu * 100'000.0 / static_cast<double>(now_ms - usage_ms_);
  }
  // A counter: the CPU time of a process that ended unreaped is gone from
  // the tree, but not from what this instance used.
  const double cpu_seconds = std::max(usage.cpu_seconds, usage_.cpu_seconds);
  usage_ = usage;
  usage_.cpu_seconds = cpu_seconds;
  usage_ms_ = now_ms;
  const uint64_t limit = spec_->limits.memory_bytes;
  if (!memory_watched()) return;
  // PSS where it was read (shared pages once), else the resident set.
  const uint64_t used = usage.pss_bytes > 0 ? usage.pss_bytes : usage.memory_bytes;
  if (used <= limit) return;
  if (state_ != InstanceState::kRunning && state_ != InstanceState::kReady) return;
  Fault(StopCause::kMemory, std::to_string(WholeMiB(used)) + " MiB > " +
                                std::to_string(WholeMiB(limit)) + " MiB");
}

void Instance::StartReadyWatch() {
  if (spec_->health.check.kind != ReadyKind::kNone) {
    // Only an exec check needs how the instance runs (kept as long as it
    // is ready: a copy of its environment per instance).
    SpawnRequest check;
    if (spec_->health.check.kind == ReadyKind::kExec) {
      check = BaseRequest();
      check.cgroup_dir = cgroup_dir_;  // the check ends with the instance
    }
    // The first check comes after half to one interval: instances that
    // became ready together do not check in step.
    const double random = env_->random01 ? env_->random01() : 0.5;
    const auto first = static_cast<int64_t>(
        static_cast<double>(spec_->health.interval_ms) * (0.5 + random / 2));
    health_ = std::make_unique<HealthMonitor>(
        env_->loop, spec_->health, std::move(check), first, &env_->exec_check_slots,
        [this](const std::string& why) { Fault(StopCause::kHealth, why); });
  }
  if (spec_->watchdog_ms > 0) ArmWatchdog();
}

void Instance::StopReadyWatch() {
  health_.reset();
  uv_timer_stop(watchdog_timer_.get());
}

void Instance::ArmWatchdog() {
  uv_timer_start(
      watchdog_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Instance*>(t->data);
        if (self == nullptr) return;
        self->Fault(StopCause::kWatchdog,
                    "no WATCHDOG=1 within " + FormatDurationMs(self->spec_->watchdog_ms));
      },
      static_cast<uint64_t>(spec_->watchdog_ms), 0);
}

void Instance::Fault(StopCause cause, std::string what) {
  if (state_ != InstanceState::kRunning && state_ != InstanceState::kReady) return;
  const std::string reason = FaultReason(cause, what);
  spdlog::warn("{} {} (pid {}): {}, restarting it", run_->app, name(), pid(), reason);
  // The app's own log says why its process is being stopped.
  capture_.WriteLine(OutputStream::kErr, "relsupd: " + reason + ", restarting " + name());
  fault_cause_ = cause;
  fault_ = std::move(what);
  // May destroy the health monitor that called us: nothing of it is used
  // after this.
  Dispatch(InstanceEvent::kFault);
}

void Instance::RecordExit(ExitInfo info) {
  ++exit_counts_[std::string(info.Cause())];
  exits_.push_back(std::move(info));
  if (exits_.size() > kMaxExits) exits_.erase(exits_.begin());
}

CrashLimit Instance::CrashLimitNow() const {
  return type_failed_ || backoff_.CrashLimitHit() ? CrashLimit::kHit
                                                  : CrashLimit::kNotHit;
}

}  // namespace relsupd
