#pragma once
// ReleaseService: the release stage. Imports artifacts by digest, turns a
// build plus config into a sealed, numbered release, and verifies slots.
//
// The heavy steps (copying, hashing, unpacking, verifying) run on libuv's
// thread pool and touch only the file system; the ledger is written on the
// loop thread once they are done. One release at a time per app: a second
// request for the same app meanwhile is refused (kBusy). Loop thread.

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/ledger/ledger.h"
#include "daemon/store/limits.h"
#include "daemon/store/manifest.h"
#include "daemon/store/slots.h"

namespace relsupd {

// What ImportBuild stored: the build's row, and whether it is new (false:
// the same bytes were imported before).
struct ImportedBuild {
  BuildRow build;
  bool is_new = false;
};

// What a prune did: the releases pruned (newest first) and those held back
// while in use, the builds whose artifacts went, and how many unused
// objects were collected.
struct PruneReport {
  std::vector<int64_t> pruned;
  std::vector<int64_t> in_use;
  std::vector<std::string> builds_removed;
  uint64_t objects_removed = 0;
};

// What CreateRelease made: the release's row, the release it started from
// (its config, and its build when none was named; 0: none, the app's first
// release), whether that one was live, and the config keys that differ
// from it (set, changed or removed).
struct CreatedRelease {
  ReleaseRow release;
  int64_t from = 0;
  bool from_live = false;
  std::vector<std::string> config_changed;
  // No release was made: the change left the base release's config as it
  // was (ConfigChange::only_if_changed); `release` is the base release.
  bool unchanged = false;
  // No release was made: `release`, kept, has the same build and config
  // (ConfigChange::reuse).
  bool reused = false;
};

// The release a new release of an app starts from: the live one (`active`);
// the newest while none was ever live (active 0); nullptr when the app has
// no release, or when `active` is not among `releases`.
// REQUIRES: `releases` oldest first, as Ledger::ListReleases returns them.
const ReleaseRow* BaseRelease(const std::vector<ReleaseRow>& releases, int64_t active);

// A release's verification: `result` compares its slot with the stored
// manifest and the ledger's digest.
struct ReleaseVerification {
  int64_t number = 0;
  VerifyResult result;
};

class ReleaseService {
 public:
  template <typename T>
  using Done = std::function<void(Result<T>)>;

  // `ledger` must outlive the service.
  ReleaseService(uv_loop_t* loop, Ledger* ledger, std::string state_dir,
                 StoreLimits limits);
  ~ReleaseService();
  ReleaseService(const ReleaseService&) = delete;
  ReleaseService& operator=(const ReleaseService&) = delete;

  void set_limits(const StoreLimits& limits) { limits_ = limits; }

  // Start-up recovery: empties tmp/, removes slots that have no ledger row
  // (a crash between rename and commit), the app and log directories of
  // apps that do not exist (deleted; a crash before RemoveApp moved them)
  // and objects no slot uses.
  Status Recover();

  // Stores the artifact read from `file` and records the build.
  void ImportBuild(const std::string& app, Fd file, const Actor& actor,
                   Done<ImportedBuild> done);

  // Config changes applied to the base release's config (BaseRelease: the
  // live release, or the newest while none was ever live).
  struct ConfigChange {
    ReleaseConfig set;  // KEY: value
    std::vector<std::string> unset;
    bool replace = false;  // start from an empty config, not the base's
    // `config set`/`unset` without --force: when the config comes out as
    // the base release's, make no release (CreatedRelease::unchanged).
    bool only_if_changed = false;
    // `release create --reuse`: when a kept (unpruned) release has the
    // same build and the same config, answer it (the newest such) and
    // make none (CreatedRelease::reused).
    bool reuse = false;
  };
  // Makes release vN from `build_id` (empty: the base release's build) and
  // the base release's config with `change` applied. With
  // change.only_if_changed and an empty `build_id`, a change that changes
  // nothing makes no release and answers the base one, `unchanged` set.
  void CreateRelease(const std::string& app, const std::string& build_id,
                     const ConfigChange& change, const Actor& actor,
                     Done<CreatedRelease> done);
  // Verifies the release's slot; problems name a changed or missing tree
  // object.
  void VerifyRelease(const std::string& app, int64_t number,
                     Done<ReleaseVerification> done);

  // Applies the app's keep_releases: of the releases that were ever
  // activated, all but the newest keep_releases go, never the active one,
  // the rollback target, nor one the run stage says is in use (see
  // set_in_use). Each gets a `pruned` event (recorded before its slot is
  // removed, so a crash leaves at worst a slot recovery removes); then
  // artifacts no unpruned release uses and unused objects go. A release
  // held back because it was in use is pruned by InUseEnded once it is no
  // longer in use, if retention still says so then.
  void Prune(const std::string& app, const Actor& actor, Done<PruneReport> done);

  // What the run stage uses beyond the ledger's active release and
  // rollback target: the source and target of a switch in progress and
  // every release with live (running, starting or stopping) instances.
  // Set by the run stage, which outlives no prune: it sets an empty
  // function before it goes.
  using InUseFn = std::function<std::set<int64_t>(const std::string& app)>;
  void set_in_use(InUseFn in_use) { in_use_ = std::move(in_use); }
  // The run stage: a release of `app` may have stopped being in use (a
  // switch ended, a retired group stopped). Runs the prune that held a
  // release back, once one of those is free. Cheap when nothing was held.
  void InUseEnded(const std::string& app);

  // kBusy while a release of `app` is being made, an artifact of it
  // imported, or it is being pruned.
  Status CheckIdle(const std::string& app) const;
  // `app delete` under way (the run stage stops the app meanwhile):
  // imports, releases and prunes of `app` are refused until it is cleared.
  void SetDeleting(const std::string& app, bool deleting);
  // `app delete`, after the ledger marked the app deleted: its directory
  // (slots and artifacts) and its log directory are renamed into tmp/ at
  // once, on the loop, so the name can be created again meanwhile; then
  // they are removed and unused objects collected on the thread pool.
  // `done` gets how many objects went. A crash before the removal ends
  // leaves only tmp/, which start-up empties.
  // REQUIRES: the log store has forgotten the app (LogStore::Forget).
  void RemoveApp(const std::string& app, Done<uint64_t> done);

  std::string SlotDir(const std::string& app, int64_t number) const;
  std::string BuildPath(const BuildRow& build) const;

 private:
  // What Prune decided before it removes anything (PrunePlan's fields).
  struct PrunePlan;

  // kBusy "app 'x' is being deleted" while SetDeleting(app, true) holds.
  Status RefuseWhileDeleting(const std::string& app) const;
  // That, or a release of it being made.
  Status CheckNotBusy(const std::string& app) const;
  // The config a new release of `app` gets: `base`'s (none, or
  // change.replace: empty) with `change` applied; validated.
  Result<ReleaseConfig> ApplyConfigChange(const std::string& app,
                                          const ReleaseRow* base,
                                          const ConfigChange& change) const;
  // The build a release of `app` is made from: `build_id`, or `base`'s.
  Result<BuildRow> ReleaseBuild(const std::string& app, const std::string& build_id,
                                const ReleaseRow* base);
  // Records the release made in the slot (on the loop, after BuildSlot);
  // `made` holds what is known before: from, from_live, config_changed.
  void CommitRelease(const SlotRequest& req, const std::string& detail,
                     const Actor& actor, Result<SlotResult> slot, CreatedRelease made,
                     const Done<CreatedRelease>& done);
  Result<PrunePlan> PlanPrune(const std::string& app, const Actor& actor);
  // Builds of `app` whose every release was pruned (none: not garbage).
  Result<std::vector<BuildRow>> UnusedBuilds(const std::string& app);

  uv_loop_t* loop_;
  Ledger* ledger_;
  std::string state_dir_;
  StoreLimits limits_;
  std::set<std::string> busy_;     // apps with a release being made
  std::set<std::string> pruning_;  // apps being pruned
  std::map<std::string, int> importing_;  // imports under way, by app
  std::set<std::string> deleting_;  // SetDeleting
  InUseFn in_use_;
  // Releases a prune held back because they were in use, by app.
  std::map<std::string, std::set<int64_t>> held_back_;
  // Apps whose InUseEnded came while they were being pruned.
  std::set<std::string> recheck_;
  // Lets thread-pool completions know the service still exists.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// A release row's config, or Corruption naming the app when the ledger's
// copy was damaged (ReleaseRow::config_malformed).
Result<ReleaseConfig> ReleaseConfigOf(const ReleaseRow& r);

}  // namespace relsupd
