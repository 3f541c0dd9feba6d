#pragma once
// RunService: the run stage as the control methods and the daemon see it.
//
// It joins the ledger (which release is active, the formation, who did
// what) to the Supervisor (what runs): at start-up it brings every app's
// active release back at its recorded scale; `scale`, `stop`, `start` and
// `restart` are recorded and applied; `ps` reports. Activation and rollback
// (the switch of the `current` link and the running group) are the
// Switcher's (daemon/activate/switcher.h), which the RunService owns and
// forwards to. Loop thread only.

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/activate/app_sockets.h"
#include "daemon/activate/switcher.h"
#include "daemon/base/event_feed.h"
#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/ledger/ledger.h"
#include "daemon/supervise/supervisor.h"

namespace relsupd {

class ReleaseService;
class OneOffs;

// Who an app's processes run as.
struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;  // USER and LOGNAME
  std::string home;  // HOME
  bool dynamic = false;  // ids from the daemon's app_uid_range
};
// Resolves the app's ids: the recorded ones for a dynamic user, the user
// database for a named one (by name, or a number).
Result<RunAs> RunAsOf(const AppSpec& spec);

struct PsRow {
  std::string app;
  std::string release;  // "v3"
  std::string process;  // "web.1"
  std::string type;
  pid_t pid = 0;
  std::string state;
  int64_t uptime_ms = 0;  // 0 when not running
  int restarts = 0;
  std::string last_exit;  // "exit 1", "signal KILL", "" when none
  int64_t last_exit_at = 0;  // wall ms
  std::string last_exit_cause;  // ExitInfo::Cause(); "" when none
  // While a stop waits for the process: ms since the stop signal, and the
  // stop timeout after which it is SIGKILLed (0 when not stopping).
  int64_t stopping_ms = 0;
  int64_t stop_timeout_ms = 0;
  std::vector<ExitInfo> exits;  // the last few, oldest first
  std::string status;     // STATUS= text from the process
  bool active = true;     // false: a release being retired
  int64_t uid = -1;       // the uid the instance runs as
  // Usage of its processes (the last sample, every 2 s; supervisor.h);
  // has_usage false until the first sample of the current process.
  bool has_usage = false;
  uint64_t memory_bytes = 0;
  double cpu_seconds = 0;
  double cpu_percent = 0;  // of one core, between the last two samples
  uint64_t memory_limit_bytes = 0;  // limits: memory; 0: none
  std::string memory_limit_by;      // "cgroup" or "rss-watch" with a limit
};

// The run stage in a daemon-reexec handover record (docs/reexec.md §1.4,
// §1.5). fds are plain numbers, owned by the exporter until the exec.
struct RunSnapshot {
  SupervisorSnapshot supervisor;
  std::vector<AppSocketSnapshot> app_sockets;
  std::map<std::string, SwitchOutcome> switch_outcomes;  // by app
  int64_t next_switch_id = 1;
  int64_t one_offs_next_id = 1;
};

class RunService final : public SupervisorListener {
 public:
  // Where app sockets may never be bound (AppSockets::set_guard).
  void set_socket_guard(UnixSocketGuard guard) { sockets_.set_guard(std::move(guard)); }
  // `env` is completed with `this` as listener; pointers outlive the service.
  RunService(SuperviseEnv env, Ledger* ledger, ReleaseService* releases,
             std::string state_dir);
  ~RunService() override;

  Supervisor* supervisor() { return supervisor_.get(); }
  // Every instance state change is added to `feed` (ctl events).
  void set_feed(EventFeed* feed) { feed_ = feed; }
  // Switches ended since this image started, by (app, outcome): metrics.
  const std::map<std::pair<std::string, std::string>, uint64_t>& activation_counts() const;
  // The one-off processes of `ctl run` (one_offs.h).
  OneOffs* one_offs() { return one_offs_.get(); }

  // Start-up: every app whose active release is not stopped by hand runs at
  // its recorded scale. An app that cannot start is logged and skipped.
  void BringUp();

  // Records new scales for the app's types and applies them. Types must
  // exist in the active release. Returns warnings for what was done but
  // will likely not work (SharedPortWarnings).
  Result<std::vector<std::string>> Scale(const std::string& app,
                                         const std::map<std::string, int>& scales,
                                         const Actor& actor);
  // Stops every instance of the app and records `stopped`; `done` when all
  // have stopped.
  void Stop(const std::string& app, const Actor& actor,
            std::function<void(Status)> done);
  // Starts the app's active release (failed instances too) and records
  // `started`; then `done`: at once (WaitReady::kNo), or once every
  // instance is ready (`ready: none`: up 1 s). It gets an error naming the
  // instances when one fails or exits for good, when they exit 3 times
  // meanwhile, or when the app's activation deadline passes first (they
  // keep running and restarting: only the wait ends), and when the app is
  // stopped or switched meanwhile.
  enum class WaitReady { kNo, kYes };
  void Start(const std::string& app, const Actor& actor, WaitReady wait,
             std::function<void(Status)> done);
  // Sends `signum` to the main process of every running instance of the
  // app's live release that `process` names ("" all, "web", "web.2"), and
  // records a `signaled` event. The instances signalled, in order.
  struct Signaled {
    std::string process;
    pid_t pid = 0;
  };
  Result<std::vector<Signaled>> Signal(const std::string& app, const std::string& process,
                                       int signum, const Actor& actor);
  // `app delete`, the run stage's part: refused (kBusy) during a switch,
  // a `start` waiting for readiness, a release being made or pruned, or
  // while one-off processes of the app run; and (kFailedPrecondition,
  // naming them) while instances run unless `stop` is kStop, which stops
  // them first (recording `stopped`). Then, with nothing of the app
  // running, Ledger::DeleteApp, and the app's groups, held sockets and
  // last switch are forgotten. `done` gets how many instances were
  // stopped. The files are the release stage's (ReleaseService::RemoveApp).
  enum class DeleteStop { kRefuse, kStop };
  // kBusy while a Delete of `app` waits for its processes to stop: start,
  // scale, activate, `ctl run` and a second delete are refused.
  Status RefuseDuringDelete(const std::string& app) const;
  void Delete(const std::string& app, DeleteStop stop, const Actor& actor,
              std::function<void(Result<int>)> done);
  // What Delete would do now, doing nothing: its refusal, or how many
  // instances it would stop (`app delete --check`).
  Result<int> CheckDelete(const std::string& app, DeleteStop stop);
  // Rolling restart of one type or all.
  void Restart(const std::string& app, const std::string& type,
               const Actor& actor, std::function<void(Status)> done);
  // `memory_only` (the re-exec's stand-in, which must not use the ledger
  // after a fork): an app with no instances is kBusy, not looked up.
  Result<std::vector<PsRow>> Ps(const std::optional<std::string>& app,
                                bool memory_only = false);

  // Switches the app to a release: checks it exists, is not pruned, has no
  // tcp/http ready check aimed at a daemon-held socket, and verifies;
  // records `activating`; points apps/APP/current at it
  // (temporary link, rename, fsync); runs the strategy; records `activated`
  // (or `rolled-back`). If the new release is not ready by the app's
  // activation deadline, or crash-loops, and auto_rollback is on, it goes
  // back to the previous release and records `auto-rolled-back` with the
  // reason; so it does, whatever auto_rollback says, when the ledger cannot
  // record the outcome. One switch per app at a time: kBusy names the one
  // in progress.
  // `started` gets the switch id once the switch began (or the refusal);
  // `done` gets the outcome (not called when `started` got an error).
  void Activate(const ActivateRequest& request,
                std::function<void(Result<int64_t>)> started,
                std::function<void(Status)> done);
  // The switch in progress for `app`, if any, and how the last one ended.
  const SwitchInfo* CurrentSwitch(const std::string& app) const {
    return switcher_->Current(app);
  }
  const SwitchOutcome* LastSwitch(const std::string& app) const {
    return switcher_->Last(app);
  }
  // Start-up: makes the `current` link and the ledger agree for every app,
  // finishing or undoing a switch a crash interrupted (`recovered` event).
  void Recover() { switcher_->Recover(); }

  // daemon-reexec (docs/reexec.md §4.8). RefuseReexec: kBusy naming what
  // is busy, so the caller retries: a switch or release phase, a rolling
  // restart or a retiring release still stopping, a `start` waiting for
  // readiness, one-offs running (unless they are to be killed). Export:
  // everything that runs, its fds still owned here. Adopt REQUIRES that
  // nothing runs yet (BringUp is not called on the adopted path): the
  // sockets first, so the groups' socket fds are the adopted ones.
  // Abandon: lets go of every process and fd without killing or closing
  // (as an execve would; for in-process tests).
  Status RefuseReexec(bool kill_one_offs) const;
  RunSnapshot Export() const;
  void Adopt(const RunSnapshot& snapshot);
  void Abandon();

  // Daemon shutdown: stops everything gracefully, then `done`.
  void Shutdown(std::function<void()> done);

  // Releases of `app` in use beyond the ledger's active release and
  // rollback target: the source and target of a switch in progress, the
  // active group's release and every release with live (running, starting
  // or stopping) instances. Retention never prunes one of them.
  std::set<int64_t> InUse(const std::string& app);

  // Builds what the supervisor needs to run release vN of the app.
  // The app's sockets go to its `web` type unless the process file maps
  // them (GiveSocketsToWeb); `bind` says whether closed ones are bound now.
  Result<std::shared_ptr<ReleaseRun>> LoadRun(
      const std::string& app, int64_t number,
      SocketBind bind = SocketBind::kNow);

 private:
  void OnInstanceChange(const ReleaseGroup& group,
                        const Instance& instance) override;
  void OnInstanceFailed(const ReleaseGroup& group, const Instance& instance,
                        const std::string& reason) override;
  Status RunActive(const std::string& app);
  // Delete's refusals other than running instances.
  Status RefuseDelete(const std::string& app) const;
  // The app's instances that run or are about to (starting, running,
  // ready, stopping, in backoff), by name ("v2 web.1").
  std::vector<std::string> LiveInstances(const std::string& app);
  // A `start` waiting for its instances to be ready.
  struct StartWait {
    RunService* owner = nullptr;
    std::string app;
    int64_t number = 0;
    int restarts_before = 0;  // the group's restarts when the start began
    int64_t deadline_ms = 0;  // the app's activation deadline
    std::function<void(Status)> done;
    UvHandle<uv_timer_t> deadline;
    UvHandle<uv_timer_t> settle;  // `ready: none` instances up 1 s
  };
  void CheckStartWait(StartWait* w);
  // Calls w's `done` with `s` and drops w.
  void EndStartWait(StartWait* w, Status s);
  // Closes the app's held sockets that no live instance lists
  // (AppSockets::CloseIdle): nothing serves them, so clients are refused.
  // One scan of the app's instances.
  void CloseIdleSockets(const std::string& app);
  // The same, once per loop turn for every app marked: instances that
  // stop together (a stop, a scale-down) cost one scan, not one each.
  void CloseIdleSocketsSoon(const std::string& app);
  static void OnIdleSocketsTimer(uv_timer_t* timer);
  // The active release of `app`, loaded to run; refused during a switch
  // or when none is active (`verb`: what the caller meant to do).
  Result<std::shared_ptr<ReleaseRun>> ActiveRun(const std::string& app,
                                                const std::string& verb);

  Ledger* ledger_;
  EventFeed* feed_ = nullptr;
  // The state each unsettled instance was last announced in (the feed),
  // and how many exits it had then.
  struct Announced {
    std::string_view state;
    uint64_t exits = 0;
  };
  std::unordered_map<const Instance*, Announced> announced_;
  void AnnounceChange(const ReleaseGroup& group, const Instance& instance);
  ReleaseService* releases_;
  std::string state_dir_;
  AppSockets sockets_;
  std::set<std::string> idle_check_apps_;  // for idle_check_timer_
  UvHandle<uv_timer_t> idle_check_timer_;  // data: this
  // Declared before the supervisor: outlives it, as the groups going
  // down report to it.
  std::unique_ptr<Switcher> switcher_;
  std::unique_ptr<Supervisor> supervisor_;
  // After the supervisor, whose env it uses: destroyed (killing what
  // runs) first.
  std::unique_ptr<OneOffs> one_offs_;
  std::vector<std::unique_ptr<StartWait>> start_waits_;
  std::set<std::string> deleting_;  // apps whose Delete waits for a stop
};

}  // namespace relsupd
