#pragma once
// CgroupTree: one cgroup v2 directory per instance, under a root the daemon
// may write (a tree systemd delegated to it with Delegate=yes, or one named
// in the config).
//
//   ROOT/APP/TYPE.N@SPAWN   e.g. ROOT/shop/web.1@7
//
// The exec step moves the child into its cgroup before exec, so everything
// it forks stays there, and a stop ends with cgroup.kill: a double-forked
// grandchild dies with its instance. The memory, pids and cpu controllers
// are enabled down the tree where the root offers them (a delegated tree),
// and a process type's `limits:` become memory.max (with memory.oom.group),
// pids.max and cpu.max of each instance's cgroup. Loop thread only.

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/config/process_file.h"
#include "daemon/supervise/snapshot.h"

namespace relsupd {

// The controllers `limits:` uses, as bits.
enum CgroupController : unsigned {
  kCgroupMemory = 1,
  kCgroupPids = 2,
  kCgroupCpu = 4,
};
inline constexpr unsigned kLimitControllers = kCgroupMemory | kCgroupPids | kCgroupCpu;

// The files of an instance's cgroup that carry `limits`, as (file, value),
// for the controllers in `controllers`; a limit of a missing controller is
// left out. Pure.
std::vector<std::pair<std::string, std::string>> CgroupLimitWrites(
    const ProcessLimits& limits, unsigned controllers);

// Enables for the children of `dir` those of `wanted` that `dir` offers
// (cgroup.controllers), one by one in cgroup.subtree_control; returns the
// bits enabled there afterwards. Failures leave a controller off.
unsigned EnableControllers(const std::string& dir, unsigned wanted);

class CgroupTree {
 public:
  // REQUIRES: `root` is a writable directory on a cgroup2 mount; it is
  // created when missing.
  static Result<std::unique_ptr<CgroupTree>> Open(uv_loop_t* loop,
                                                  const std::string& root);
  ~CgroupTree();

  const std::string& root() const { return root_; }
  // Makes a fresh, empty cgroup for one spawn of `instance`, with
  // `limits` written for the controllers the tree has (a write that fails
  // is logged and skipped: the limit is then not in force).
  // `applied` (optional) gets the controllers whose limit files were all
  // written.
  Result<std::string> Create(const std::string& app,
                             const std::string& instance,
                             const ProcessLimits& limits = {},
                             unsigned* applied = nullptr);
  // The controllers enabled for instance cgroups (kCgroupMemory, ...).
  unsigned controllers() const { return controllers_; }
  // The kernel's OOM killer ended a process in `dir` (memory.events).
  bool OomKilled(const std::string& dir) const;
  // Writes "1" to DIR/cgroup.kill (SIGKILL to every process in it).
  void Kill(const std::string& dir);
  // Kills what is left in DIR and removes it; retried for a while when the
  // kernel is still ending the processes.
  void KillAndRemove(const std::string& dir);
  // Start-up: ends and removes every instance cgroup a previous daemon left.
  // Returns how many held processes.
  int KillLeftovers();

  // daemon-reexec (docs/reexec.md §1.4). Export: the root and the spawn
  // counter; removals still being retried are not carried (the cgroups
  // stay, empty, until the next cold start's KillLeftovers). Adopt: the
  // tree of a handover record, checked as Open checks it; nothing in it is
  // killed (the adopted instances live there) and spawns go on from
  // `next`, so no cgroup name is used twice.
  CgroupSnapshot Export() const { return {.root = root_, .next = next_}; }
  static Result<std::unique_ptr<CgroupTree>> Adopt(uv_loop_t* loop,
                                                   const CgroupSnapshot& snapshot);

  // The cgroup2 path of this process (from /proc/self/cgroup), as a
  // directory under `mount` (e.g. /sys/fs/cgroup), if it is writable by us.
  static Result<std::string> OwnWritableCgroup(const std::string& mount);
  // Where cgroup2 is mounted: /sys/fs/cgroup or /sys/fs/cgroup/unified.
  static Result<std::string> FindMount();

 private:
  CgroupTree(uv_loop_t* loop, std::string root);
  void RetryPending();

  uv_loop_t* loop_;
  std::string root_;
  uint64_t next_ = 1;
  unsigned controllers_ = 0;
  struct Pending {
    std::string dir;
    int tries = 0;
  };
  std::vector<Pending> pending_;
  UvHandle<uv_timer_t> timer_;
};

// The daemon's cgroup set-up at start, in one call. `setting` is the
// config's `cgroup`: "off" (none), "auto" (only under systemd, the tree it
// delegated to the daemon, if writable: the daemon moves itself to
// ROOT/daemon and the instances live under ROOT/apps) or a directory.
// Every instance cgroup a previous daemon left is ended. Null: instances
// run without cgroups.
Result<std::unique_ptr<CgroupTree>> SetUpDaemonCgroups(
    uv_loop_t* loop, const std::string& setting);

}  // namespace relsupd
