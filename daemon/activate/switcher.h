#pragma once
// Switcher: activation and rollback, the switch of an app's `current` link
// and running group from one release to another.
//
// It drives the switch table (switch_table.h): callbacks (verification,
// timers, groups stopping, instance changes) become SwitchEvents, and the
// returned actions are executed here. Each Switch owns its timers, whose
// `data` points at it; a callback that outlives its switch finds nothing
// by the switch's id (Find). The RunService (daemon/run/) owns the Switcher
// and forwards instance changes to it. Loop thread only.

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/activate/app_sockets.h"
#include "daemon/activate/switch_table.h"
#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/ledger/ledger.h"
#include "daemon/supervise/one_off.h"
#include "daemon/supervise/supervisor.h"

namespace relsupd {

struct ReleaseVerification;

class ReleaseService;

// A switch of an app from one release to another (activate or rollback).
struct SwitchInfo {
  int64_t id = 0;
  std::string app;
  std::string kind;  // "activate" or "rollback"
  int64_t from = 0;  // 0: nothing was active
  int64_t to = 0;
  Strategy strategy = Strategy::kStartFirst;
  SwitchPhase phase = SwitchPhase::kVerifying;  // written by the table only
  int64_t started_at = 0;                       // wall ms
  std::string actor;
};

// How the last switch of an app ended.
struct SwitchOutcome {
  int64_t id = 0;
  bool ok = false;
  int64_t live = 0;     // the release live after it
  std::string message;  // why it failed or rolled back
  // Nothing was switched: the release asked for was live already ("v2 of
  // shop is already live; nothing to do").
  std::string note;
  // False when the switch went back to `live` and that release was judged
  // not ready either (the message says why).
  bool live_ready = true;
  // False when nothing changed: the release was live already with nothing
  // to start (what automation reports as "changed").
  bool changed = true;
  bool operator==(const SwitchOutcome&) const = default;
};

// Whether a switch runs the release's release phase (`release:`).
enum class ReleasePhaseRun {
  kIfDue,  // unless it succeeded before, or the release was live before
  kForce,  // `activate --rerun-release-phase`
};

struct ActivateRequest {
  std::string app;
  int64_t release = 0;  // 0 with kind rollback: the previous release
  std::string kind = "activate";
  std::optional<Strategy> strategy;  // unset: the app's
  Actor actor;
  ReleasePhaseRun release_phase = ReleasePhaseRun::kIfDue;
};

// Builds what the supervisor needs to run release vN of the app (the run
// stage's RunService::LoadRun), binding the app's held sockets per `bind`.
using RunLoader = std::function<Result<std::shared_ptr<ReleaseRun>>(
    const std::string& app, int64_t number, SocketBind bind)>;

class Switcher {
 public:
  // Pointers outlive the switcher; `releases` may be null.
  Switcher(Supervisor* supervisor, Ledger* ledger, ReleaseService* releases,
           std::string state_dir, RunLoader load_run);
  ~Switcher();
  Switcher(const Switcher&) = delete;
  Switcher& operator=(const Switcher&) = delete;

  // See RunService::Activate.
  void Activate(const ActivateRequest& request,
                std::function<void(Result<int64_t>)> started,
                std::function<void(Status)> done);
  // The switch in progress for `app`, if any, and how the last one ended.
  const SwitchInfo* Current(const std::string& app) const;
  // Switches that ended since this image started, by (app, outcome):
  // "activated" (the release asked for is live), "rolled-back" (it went
  // back to the one before, by itself) or "failed" (refused or broke off
  // with nothing switched).
  const std::map<std::pair<std::string, std::string>, uint64_t>& activation_counts() const {
    return activation_counts_;
  }
  const SwitchOutcome* Last(const std::string& app) const;
  // `app delete`: forgets how the app's last switch ended, and its
  // activation counts (a name created again starts its series afresh).
  void Forget(const std::string& app);
  // kBusy when a switch of `app` is in progress, or the daemon is stopping.
  Status RefuseDuringSwitch(const std::string& app) const;
  // An instance of `group` changed: judge the new group if it is one.
  void OnInstanceChange(const ReleaseGroup& group);
  // Daemon shutdown: ends every switch in progress (kUnavailable).
  void Shutdown();
  bool shutting_down() const { return shutting_down_; }
  // The owner is being destroyed: no more prunes are started, and release
  // phases still running are killed now, while the Supervisor (whose env
  // they use) lives.
  void MarkShuttingDown();
  // Start-up: makes the `current` link and the ledger agree for every app,
  // finishing or undoing a switch a crash interrupted (recover.cc).
  void Recover();

  // daemon-reexec (docs/reexec.md §1.5, §4.8). RefuseReexec: kBusy naming
  // the switch in progress (app, from -> to, phase) or the release phase
  // still stopping; Ok when none. The last outcome per app and the next
  // switch id are carried; Adopt REQUIRES that no switch ran yet.
  Status RefuseReexec() const;
  const std::map<std::string, SwitchOutcome>& outcomes() const { return outcomes_; }
  int64_t next_switch_id() const { return next_switch_id_; }
  void Adopt(std::map<std::string, SwitchOutcome> outcomes, int64_t next_switch_id);

 private:
  struct Switch {
    Switcher* owner = nullptr;
    SwitchInfo info;
    bool went_back = false;  // GoBack() ran: the outcome is a rollback
    Actor actor;
    AppSpec spec;
    std::shared_ptr<ReleaseRun> run;
    ReleaseGroup* fresh = nullptr;
    std::string unhealthy;  // live, but not ready (auto_rollback off)
    std::string failure;    // why it went back (kGoBack's reason)
    // Exits the release gone back to had before the switch went back (a
    // reinstated group keeps its count): a crash loop counts those after.
    int back_restarts_base = 0;
    std::function<void(Status)> done;
    UvHandle<uv_timer_t> deadline;  // data: this Switch
    UvHandle<uv_timer_t> check;     // data: this Switch
    // The release phase (release_phase.cc): its process, and its timeout.
    ReleasePhaseRun phase_run = ReleasePhaseRun::kIfDue;
    std::unique_ptr<OneOff> phase;
    bool phase_timed_out = false;
    UvHandle<uv_timer_t> phase_timer;  // data: this Switch
  };

  // The switch of `app` with this id, or null once it ended: the one guard
  // of every callback that may outlive its switch.
  Switch* Find(const std::string& app, int64_t id);
  // A callback that dispatches `event` (with `why`) to the switch, if it
  // still runs.
  std::function<void()> Later(Switch* sw, SwitchEvent event,
                              Status why = Status::Ok());
  // The release `req` switches to, or why it cannot. The live release
  // itself is returned as it is, unchecked (AlreadyLive).
  Result<int64_t> Target(const ActivateRequest& req, const AppSpec& spec,
                         const Ledger::Activation& act);
  // Runs `event` through the table and executes its actions. `why` is the
  // failure the event reports. May end (destroy) `sw`.
  void Dispatch(Switch* sw, SwitchEvent event, Status why = Status::Ok());
  // `activate` of the release that runs live: no switch. Its failed
  // instances start again (as `start` does); the outcome says what was
  // done, ok.
  void AlreadyLive(const ActivateRequest& req, ReleaseGroup* group,
                   const std::function<void(Result<int64_t>)>& started,
                   const std::function<void(Status)>& done);
  void Execute(Switch* sw, uint32_t actions, const Status& why);
  // Verified: loads the release and checks it; changes nothing.
  Status Prepare(Switch* sw, const Result<ReleaseVerification>& report);
  // Records `activating` and switches `current` -> kVerified, or
  // kVerifyFailed with nothing changed.
  void SwitchLink(Switch* sw);
  // The release phase (release_phase.cc).
  Result<bool> PhaseDue(const Switch* sw);
  void RunPhase(Switch* sw);
  static void OnPhaseTimer(uv_timer_t* timer);
  void OnPhaseExit(Switch* sw, const ExitInfo& exit);
  void StopPhase(Switch* sw);
  void ArmDeadline(Switch* sw);
  static void OnDeadlineTimer(uv_timer_t* timer);
  static void OnCheckTimer(uv_timer_t* timer);
  void StartNew(Switch* sw);
  // Judges the new group: ready (and settled), failed or crash-looping.
  void CheckNew(Switch* sw);
  // Judges the release gone back to the same way (kCheckBack).
  void CheckBack(Switch* sw);
  // The group of the release gone back to, or null while it has no
  // instances yet (stop-first: it starts once the new one stopped).
  // Judges again in `settle_ms` (when > 0): the check timer of `sw`.
  void ArmSettle(Switch* sw, int64_t settle_ms);
  const ReleaseGroup* BackGroup(const Switch* sw);
  // "; its last lines on stderr:\n  ...\n  more: relsupd ctl logs APP
  // --process web.1", from the log store, or "" when it kept none.
  std::string LastLines(const std::string& app, int64_t release,
                        const std::string& process);
  void RecordLive(Switch* sw);
  void GoBack(Switch* sw, const std::string& reason);
  // Records `auto-rolled-back` (or `activation-failed` after a first
  // activation) with the switch's failure and, when not empty, why the
  // release gone back to is not ready; ends the switch failed.
  void RecordBack(Switch* sw, const std::string& not_ready);
  enum class LiveReady { kYes, kNo };
  void End(Switch* sw, Status outcome, int64_t live,
           LiveReady live_ready = LiveReady::kYes);
  bool FreshGroupAlive(const Switch* sw);
  std::string AppDir(const std::string& app) const;

  Supervisor* supervisor_;
  Ledger* ledger_;
  ReleaseService* releases_;
  std::string state_dir_;
  RunLoader load_run_;
  std::map<std::string, std::unique_ptr<Switch>> switches_;
  std::map<std::string, SwitchOutcome> outcomes_;
  std::map<std::pair<std::string, std::string>, uint64_t> activation_counts_;
  // Release phases of switches that ended (a shutdown), stopping.
  std::vector<std::unique_ptr<OneOff>> stopping_phases_;
  int64_t next_switch_id_ = 1;
  bool shutting_down_ = false;
};

// What a release phase or an instance printed last, for an error message:
// "; its last lines:" and each line on its own, indented (release_phase.cc).
std::string LastLinesNote(const std::string& intro,
                          const std::vector<std::string>& lines);

// Points DIR/current at `target` atomically: DIR/.current.tmp -> target,
// rename over DIR/current, fsync DIR.
Status SwitchCurrentLink(const std::string& app_dir, const std::string& target);

}  // namespace relsupd
