#pragma once
// Instance: one running copy of a process type (web.1, worker.3, ...).
//
// It drives the state table of instance_state.h from libuv callbacks: the
// child's exit, its readiness, one timer (backoff, ready timeout or stop
// timeout, whichever the state needs). Its OutputCapture (output_capture.h)
// takes the child's output to the log store. The owner (a ReleaseGroup)
// hears of every state change. Loop thread only.

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/clock.h"
#include "daemon/base/release_id.h"
#include "daemon/base/uv_handle.h"
#include "daemon/config/process_file.h"
#include "daemon/supervise/backoff.h"
#include "daemon/supervise/exit_info.h"
#include "daemon/supervise/health.h"
#include "daemon/supervise/instance_state.h"
#include "daemon/supervise/output_capture.h"
#include "daemon/supervise/readiness.h"
#include "daemon/supervise/release_run.h"
#include "daemon/supervise/snapshot.h"
#include "daemon/supervise/spawn.h"
#include "daemon/supervise/usage.h"

namespace relsupd {

class LogStore;
class CgroupTree;

// What every instance of a daemon shares. Owned by the Supervisor.
struct SuperviseEnv {
  uv_loop_t* loop = nullptr;
  const Clock* clock = nullptr;
  LogStore* logs = nullptr;  // null: output is dropped (tests)
  std::string notify_socket; // NOTIFY_SOCKET for children; empty: none
  std::string supervisor_id; // RELSUPD_SUPERVISOR: finds leftovers later
  std::vector<ExecRlimit> child_rlimits;  // set in each child
  BackoffPolicy backoff;
  LogRatePolicy log_rate;
  CgroupTree* cgroups = nullptr;  // null: no cgroups
  // `limits: memory` is enforced by the kernel (memory.max of a delegated
  // memory controller); false: by the RSS watch (Instance::SetUsage).
  bool memory_by_cgroup = false;
  bool pdeathsig = true;
  std::function<double()> random01;
  // The daemon-held socket `name` of `app` as of now (-1: none); unset:
  // the fds in ReleaseRun::socket_fds.
  std::function<int(const std::string& app, const std::string& name)> socket_fd;
  // Spawns left in this loop iteration (the Supervisor refills it before
  // each poll): a storm of exits restarts in batches, and the control
  // socket is served between them. A spawn holds the loop until the child
  // has exec'd (CLONE_VFORK): 0.15 ms on a fast machine, 0.4 ms and more
  // on a slow VM, where 16 of them held the loop over 6 ms; so a batch
  // also ends once its spawns took kSpawnTimeBudgetUs (spawn_us, reset
  // with the budget).
  int spawn_budget = kSpawnsPerIteration;
  static constexpr int kSpawnsPerIteration = 16;
  int64_t spawn_us = 0;
  static constexpr int64_t kSpawnTimeBudgetUs = 2000;
  // Loop turns so far (the Supervisor counts them before each poll):
  // OutputCapture's per-turn bound.
  uint64_t loop_turn = 0;
  // Exec health checks that may run at once, daemon-wide; a check due
  // while none is free waits (it is not a failure).
  int exec_check_slots = kMaxExecChecks;
  static constexpr int kMaxExecChecks = 16;
};

// The environment a process of `run` starts with, built from scratch:
// PATH, USER, LOGNAME and HOME of the app's user, the release's config,
// `extra` (a process type's `env:`), then RELSUPD_APP, RELSUPD_RELEASE,
// RELSUPD_PROCESS (`process`) and RELSUPD_SUPERVISOR, each later one
// winning. Instances add NOTIFY_SOCKET and LISTEN_FDNAMES.
std::map<std::string, std::string> ProcessEnvironment(
    const ReleaseRun& run, const SuperviseEnv& env, const std::string& process,
    const std::map<std::string, std::string>& extra);

class Instance;

class InstanceObserver {
 public:
  virtual ~InstanceObserver() = default;
  virtual void OnInstanceState(Instance* instance, InstanceState before) = 0;
  // The crash limit was hit: the instance is now kFailed.
  virtual void OnInstanceFailed(Instance* instance,
                                const std::string& reason) = 0;
};

class Instance {
 public:
  Instance(SuperviseEnv* env, std::shared_ptr<const ReleaseRun> run,
           std::string type, int index, InstanceObserver* observer);
  // Kills a running child at once (SIGKILL to its group); use Stop() first
  // for a graceful end.
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  void Start();
  void Stop();
  // Sends `signum` to the current process (its main process only: `ctl
  // signal`); what follows, an exit included, is handled as any other.
  Status Signal(int signum) const;
  // READY=1 arrived from this instance's process (notify readiness).
  void NotifyReady();
  // WATCHDOG=`value` arrived from its process: "1" keeps the watchdog
  // from running out; "trigger" makes it run out now (as under systemd).
  void NotifyWatchdog(std::string_view value);
  // A usage sample of its processes (the Supervisor's sampler), taken at
  // monotonic `now_ms`. Over `limits: memory` under the RSS watch, a
  // running instance is restarted with reason "memory limit (N MiB > M
  // MiB)".
  void SetUsage(const Usage& usage, int64_t now_ms);
  // The last sample of the current process (zeros when none yet), and its
  // CPU use since the sample before, in percent of one core.
  const Usage& usage() const { return usage_; }
  // Its `limits: memory` is kept by the RSS watch (no memory.max was
  // written for its current process).
  bool memory_watched() const {
    return spec_->limits.memory_bytes > 0 && !memory_max_set_;
  }
  double cpu_percent() const { return cpu_percent_; }

  const std::string& type() const { return type_; }
  int index() const { return index_; }
  std::string name() const { return type_ + "." + std::to_string(index_); }
  const ReleaseRun& run() const { return *run_; }
  const ProcessSpec& spec() const { return *spec_; }
  InstanceState state() const { return state_; }
  // Waits in its group's start queue (a scale of many starts them a batch
  // per loop turn): still kStopped, shown as "starting". Start() and
  // Stop() clear it.
  bool start_queued() const { return start_queued_; }
  void set_start_queued() { start_queued_ = true; }
  // The state as ps, status, events and metrics show it.
  std::string_view shown_state() const {
    return start_queued_ && state_ == InstanceState::kStopped
               ? InstanceStateName(InstanceState::kStarting)
               : InstanceStateName(state_);
  }
  pid_t pid() const;
  int restarts() const { return backoff_.restarts(); }
  // Monotonic ms when the current process started; 0 when none runs.
  int64_t started_ms() const { return started_ms_; }
  // Monotonic ms when the stop signal was sent to the current process; 0
  // when none was (ps shows how long a stop has waited).
  int64_t stop_sent_ms() const { return stop_sent_ms_; }
  // Its process's cgroup; empty when it has none.
  const std::string& cgroup_dir() const { return cgroup_dir_; }
  const std::vector<ExitInfo>& exits() const { return exits_; }
  // Exits since this image started (or adopted it), by ExitInfo::Cause():
  // metrics.
  const std::map<std::string, uint64_t>& exit_counts() const { return exit_counts_; }
  bool settled() const {  // not running and not about to
    return state_ == InstanceState::kStopped ||
           state_ == InstanceState::kExited || state_ == InstanceState::kFailed;
  }
  // Once its type has failed, an instance that exits is not restarted: it
  // becomes failed too, until a start by hand.
  void set_type_failed(bool failed) { type_failed_ = failed; }
  const std::string& status_text() const { return status_text_; }
  void set_status_text(std::string s) { status_text_ = std::move(s); }

  static constexpr size_t kMaxExits = 10;

  // daemon-reexec (docs/reexec.md §3.2; adopt.cc). Export: the instance as
  // it is, its fds still its own. Adopt: REQUIRES a fresh instance (never
  // started); takes over the snapshot's child and fds, then re-arms the
  // state's timer from its deadline (a ready timeout gets at least
  // kMinResumedReadyMs: the exec window is not the app's fault). Abandon:
  // lets go of the child without killing it or closing its fds; the
  // instance is then inert and its destruction ends nothing.
  InstanceSnapshot Export() const;
  void Adopt(const InstanceSnapshot& snapshot);
  void Abandon();
  static constexpr int64_t kMinResumedReadyMs = 1'000;

 private:
  void Dispatch(InstanceEvent event, ExitKind exit = ExitKind::kFailure,
                CrashLimit crash_limit = CrashLimit::kNotHit,
                InstanceState adopted = InstanceState::kStopped);
  CrashLimit CrashLimitNow() const;
  void Act(InstanceAction action);
  void DoSpawn();
  void DoStartReadyCheck();
  void StartProbe();
  void DoResume();
  // Entering or leaving kReady: the health check and the watchdog run
  // while it is ready.
  void StartReadyWatch();
  void StopReadyWatch();
  void ArmWatchdog();
  // A fault while running: stops the process (SIGABRT for the watchdog)
  // and restarts it as a crash, `cause` and `what` in its exit.
  void Fault(StopCause cause, std::string what);
  ChildProcess::Callbacks ChildCallbacks();
  void ArmTimer(int64_t ms);
  void CancelTimer();
  void OnTimer();
  void OnExit(int64_t status, int signal);
  SpawnRequest BaseRequest() const;

  SuperviseEnv* env_;
  std::shared_ptr<const ReleaseRun> run_;
  const ProcessSpec* spec_;
  std::string type_;
  int index_;
  InstanceObserver* observer_;
  InstanceState state_ = InstanceState::kStopped;
  bool start_queued_ = false;
  Backoff backoff_;
  int64_t backoff_delay_ms_ = 0;
  std::unique_ptr<ChildProcess> child_;
  std::unique_ptr<ReadyProbe> probe_;
  std::unique_ptr<HealthMonitor> health_;  // while ready, with `health:`
  UvHandle<uv_timer_t> watchdog_timer_;    // while ready, with `watchdog:`
  std::string cgroup_dir_;
  UvHandle<uv_timer_t> timer_;
  int64_t timer_deadline_ms_ = 0;  // monotonic, while timer_ is active
  std::optional<int64_t> resume_deadline_;  // an adopted timer's, for kResume
  OutputCapture capture_;
  int64_t started_ms_ = 0;
  // The stop of the current process: why, when, and whether the timeout
  // ran out (the exit records them). Reset at each spawn.
  StopCause stop_cause_ = StopCause::kNone;
  std::string fault_;  // ExitInfo::fault of a stop for a fault
  // The fault the next kStoppingFault stop is for (Fault(), OnTimer()).
  StopCause fault_cause_ = StopCause::kNotReady;
  int64_t stop_sent_ms_ = 0;
  bool killed_ = false;
  std::vector<ExitInfo> exits_;  // oldest first; empty until the first exit
  std::map<std::string, uint64_t> exit_counts_;
  void RecordExit(ExitInfo info);
  std::string status_text_;
  bool type_failed_ = false;
  Usage usage_;
  bool memory_max_set_ = false;  // memory.max of its cgroup holds the limit
  int64_t usage_ms_ = 0;  // monotonic ms of usage_; 0: none yet
  double cpu_percent_ = 0;
};

}  // namespace relsupd
