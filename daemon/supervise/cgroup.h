#pragma once
// CgroupTree: one cgroup v2 directory per instance, under a root the daemon
// may write (a tree systemd delegated to it with Delegate=yes, or one named
// in the config).
//
//   ROOT/APP/TYPE.N@SPAWN   e.g. ROOT/shop/web.1@7
//
// The exec step moves the child into its cgroup before exec, so everything
// it forks stays there, and a stop ends with cgroup.kill: a double-forked
// grandchild dies with its instance. No controllers are enabled. Loop thread
// only.

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/supervise/snapshot.h"

namespace relsupd {

class CgroupTree {
 public:
  // REQUIRES: `root` is a writable directory on a cgroup2 mount; it is
  // created when missing.
  static Result<std::unique_ptr<CgroupTree>> Open(uv_loop_t* loop,
                                                  const std::string& root);
  ~CgroupTree();

  const std::string& root() const { return root_; }
  // Makes a fresh, empty cgroup for one spawn of `instance`.
  Result<std::string> Create(const std::string& app,
                             const std::string& instance);
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
