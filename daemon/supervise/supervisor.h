#pragma once
// The run stage: which instances of which release run for each app.
//
// A ReleaseGroup holds the instances of one release of one app and keeps
// their number per process type equal to its formation. The Supervisor holds
// one active group per app, plus groups being retired (stopping) while an
// activation switches releases. Instances report to their group, groups to
// the Supervisor, which tells its listener (the daemon: ledger events,
// activation progress). Loop thread only.

#include <sys/types.h>
#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/supervise/instance.h"

namespace relsupd {

// Scale per process type. A type the release declares but the formation
// does not name runs at the scale its process file gives.
using Formation = std::map<std::string, int>;

class ReleaseGroup;

class SupervisorListener {
 public:
  virtual ~SupervisorListener() = default;
  // An instance changed state (any group, any app).
  virtual void OnInstanceChange(const ReleaseGroup& group,
                                const Instance& instance) = 0;
  // An instance hit the crash limit: it and its type are now failed (once
  // per type until the type is started again).
  virtual void OnInstanceFailed(const ReleaseGroup& group,
                                const Instance& instance,
                                const std::string& reason) = 0;
};

class ReleaseGroup final : public InstanceObserver {
 public:
  ReleaseGroup(SuperviseEnv* env, std::shared_ptr<const ReleaseRun> run,
               SupervisorListener* listener);
  // Kills whatever still runs (SIGKILL): stop first for a graceful end.
  ~ReleaseGroup() override;

  const ReleaseRun& run() const { return *run_; }
  std::shared_ptr<const ReleaseRun> shared_run() const { return run_; }
  // The scale each declared type runs at under `formation`.
  Formation Effective(const Formation& formation) const;
  // Starts or stops instances so that each type runs at its scale (a type
  // not in the process file is ignored). Scaling down stops the highest
  // numbers first.
  void SetFormation(const Formation& formation);
  const Formation& formation() const { return formation_; }
  // Starts every wanted instance that is not running, failed ones included
  // (a start by hand).
  void StartAll();
  // Stops every instance gracefully; `done` runs once all have stopped.
  void StopAll(std::function<void()> done);
  // Restarts the instances of `type` (all types when empty) one at a time:
  // the next one stops only when the one before is ready again (or failed).
  // `done` gets the outcome.
  void Restart(const std::string& type, std::function<void(Status)> done);
  bool stopping() const { return stopping_; }
  // A StopAll whose `done` has not run yet.
  bool stop_waiters_pending() const { return !stop_waiters_.empty(); }
  // A rolling restart is in progress (a daemon-reexec is refused then).
  bool restarting() const { return restart_ != nullptr; }
  // daemon-reexec (adopt.cc). Export: the group with its instances.
  // Adopt: a group from its snapshot, its instances adopted without telling
  // the listener, then the wanted stopped ones queued to start (unless
  // stopping). Abandon: every instance lets go of its process (see
  // Instance::Abandon); pending stop waiters and a restart are dropped.
  GroupSnapshot Export() const;
  static std::unique_ptr<ReleaseGroup> Adopt(SuperviseEnv* env,
                                             const GroupSnapshot& snapshot,
                                             SupervisorListener* listener);
  void Abandon();
  // Types that hit the crash limit (until a start by hand).
  const std::set<std::string>& failed_types() const { return failed_types_; }
  static constexpr size_t kStartBatch = 16;

  // Sorted by type, then number.
  std::vector<const Instance*> Instances() const;
  // Those of `type` (every type when empty) and `index` (every index when
  // 0) whose process runs, sorted; none that is leaving (scaled down).
  std::vector<Instance*> Running(const std::string& type, int index);
  Instance* FindByPid(pid_t pid);
  // Every wanted instance is ready.
  bool AllReady() const;
  // No instance runs or is about to.
  bool AllSettled() const;

 private:
  void OnInstanceState(Instance* instance, InstanceState before) override;
  void OnInstanceFailed(Instance* instance, const std::string& reason) override;
  void Reconcile();
  // Starts queued instances, a batch per loop iteration, so that a scale to
  // 1,000 leaves the control socket served between batches.
  void StartQueued();
  void ScheduleSweep();
  void Sweep();
  void CheckDone();
  void RestartNext();
  void AdoptInstance(const InstanceSnapshot& snapshot);

  SuperviseEnv* env_;
  std::shared_ptr<const ReleaseRun> run_;
  SupervisorListener* listener_;
  Formation formation_;
  // Instances by type, index 1..N in order; a scaled-down or restarted
  // instance waits in `leaving_` until it stopped, then is destroyed.
  std::map<std::string, std::vector<std::unique_ptr<Instance>>> instances_;
  std::vector<std::unique_ptr<Instance>> leaving_;
  bool stopping_ = false;
  bool adopting_ = false;  // Adopt() builds the instances: no reactions
  std::set<std::string> failed_types_;
  std::vector<std::function<void()>> stop_waiters_;
  UvHandle<uv_timer_t> sweep_timer_;
  std::deque<std::pair<std::string, int>> start_queue_;  // type, index
  UvHandle<uv_idle_t> start_idle_;  // the start queue goes on
  // A rolling restart in progress.
  struct RestartJob {
    std::vector<std::pair<std::string, int>> queue;  // type, index
    Instance* current = nullptr;
    bool stopped_current = false;
    std::function<void(Status)> done;
  };
  std::unique_ptr<RestartJob> restart_;
};

class Supervisor {
 public:
  Supervisor(SuperviseEnv env, SupervisorListener* listener);
  ~Supervisor();

  SuperviseEnv* env() { return &env_; }

  // Makes `run` the app's active group at `formation`. When the app already
  // runs this release, only the formation changes; a group of another
  // release is stopped first and `run` starts when it has (stop-first).
  void Run(std::shared_ptr<const ReleaseRun> run, const Formation& formation);
  // Starts `run` beside the app's current group (start-first); the old
  // group keeps running until Retire().
  ReleaseGroup* StartBeside(std::shared_ptr<const ReleaseRun> run,
                            const Formation& formation);
  // Makes the retiring group of release `number` active again and retires
  // the current one (a rollback during a start-first switch). False when no
  // such group runs.
  bool Reinstate(const std::string& app, int64_t number,
                 std::function<void()> done);
  // Stops and drops the app's groups other than `keep`; `done` when stopped.
  // With `keep` null every group goes, and the app is forgotten.
  void Retire(const std::string& app, const ReleaseGroup* keep,
              std::function<void()> done);
  // The app's active group, or null.
  ReleaseGroup* Active(const std::string& app);
  // Every group of the app, the active one first.
  std::vector<ReleaseGroup*> Groups(const std::string& app);
  std::vector<std::string> Apps() const;
  // Stops every instance of the app (keeping the group and its formation).
  void Stop(const std::string& app, std::function<void()> done);
  // Stops every instance of every app; `done` once all have stopped.
  void StopEverything(std::function<void()> done);
  // A notify message from `sender`: READY=1 / STATUS= / WATCHDOG= for its
  // instance.
  void OnNotify(pid_t sender, const std::map<std::string, std::string>& fields);

  // Every kUsageIntervalMs, the usage of every running instance is read
  // on libuv's thread pool (usage.h: its cgroup, else one scan of /proc)
  // and handed to each instance (Instance::SetUsage: ps figures, the RSS
  // watch of `limits: memory`). No scan while nothing runs.
  static constexpr int64_t kUsageIntervalMs = 2'000;

  // daemon-reexec (adopt.cc, docs/reexec.md §1.4). True while a re-exec
  // must be refused: a retiring group still runs processes or waits, or a
  // rolling restart is in progress.
  bool RetiringBusy() const;
  // Every app's active group and unsettled retiring groups, the orphans
  // to reap, and the cgroup tree (the owner builds the new image's tree
  // from it with CgroupTree::Adopt and puts it in the env before Adopt).
  SupervisorSnapshot Export() const;
  // REQUIRES: nothing runs yet. Takes over every process and fd in it.
  void Adopt(const SupervisorSnapshot& snapshot);
  // Lets go of every process and fd without killing or closing any (as an
  // execve would; for in-process tests). Nothing runs afterwards.
  void Abandon();

 private:
  struct AppGroups {
    std::unique_ptr<ReleaseGroup> active;
    std::vector<std::unique_ptr<ReleaseGroup>> retiring;
  };
  Instance* FindInstance(pid_t pid);
  // Every instance whose process runs, leaving ones excepted.
  std::vector<Instance*> RunningInstances();
  void SampleUsage();

  SuperviseEnv env_;
  SupervisorListener* listener_;
  std::map<std::string, AppGroups> apps_;
  UvHandle<uv_timer_t> drop_timer_;
  UvHandle<uv_prepare_t> refill_;  // env_.spawn_budget, before each poll
  UvHandle<uv_timer_t> usage_timer_;
  bool sampling_ = false;  // a sample is being read off the loop
  // Tells an off-loop sample's completion whether the Supervisor still
  // exists.
  std::shared_ptr<Supervisor*> self_ = std::make_shared<Supervisor*>(this);
};

}  // namespace relsupd
