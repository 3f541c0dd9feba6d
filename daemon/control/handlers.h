#pragma once
// The control protocol's methods: daemon.info, app.*, history.
//
// Each handler validates its params, calls the ledger and returns the JSON
// result the CLI prints with --json. Loop thread only.

#include <memory>
#include <string>
#include <vector>

#include "daemon/base/clock.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/read_jobs.h"
#include "daemon/ledger/ledger.h"

namespace relsupd {
class ReleaseService;
class RunService;
class LogStore;
class EventFeed;
class LongPolls;
class FdCloser;
}

namespace relsupd {

// What the handlers need from the daemon. All pointers outlive the handlers.
struct DaemonContext {
  uv_loop_t* loop = nullptr;
  Ledger* ledger = nullptr;
  ReleaseService* releases = nullptr;
  RunService* runs = nullptr;
  LogStore* logs = nullptr;
  // Closes fds a handler took from a peer off the loop (null: in place).
  FdCloser* closer = nullptr;
  const Clock* clock = nullptr;
  std::string state_dir;
  std::string socket;
  int64_t started_ms = 0;  // monotonic, of the cold start
  int64_t image_started_ms = 0;  // monotonic, of this image (re-exec)
  int64_t reexecs = 0;           // re-execs since the cold start
  // daemon.reexec: the Daemon's (answers later, or from the new image).
  AsyncHandler reexec;
  // From the daemon config (updated on reload).
  bool allow_root_apps = false;
  uint32_t app_uid_min = 70000;
  uint32_t app_uid_max = 79999;
  // What happened in this image (ctl events), and the follows (logs -f,
  // events -f) waiting for news.
  EventFeed* feed = nullptr;
  LongPolls* polls = nullptr;
  // Thread-pool work that read methods start (release.verify/show/diff).
  std::unique_ptr<ReadJobs> read_jobs = std::make_unique<ReadJobs>();
};

void RegisterHandlers(Dispatcher* dispatcher, DaemonContext* context);
// build.*, release.* and config.* (release_handlers.cc).
void RegisterReleaseHandlers(Dispatcher* dispatcher, DaemonContext* context);

// logs and events, which can follow (feed_handlers.cc).
void RegisterFeedHandlers(Dispatcher* dispatcher, DaemonContext* context);
// ps, scale, restart, stop, start, activate (process_handlers.cc).
void RegisterProcessHandlers(Dispatcher* dispatcher, DaemonContext* context);
// The re-exec's stand-in (daemon/reexec/standin.h): `ps`, from memory.
void RegisterStandinHandlers(Dispatcher* dispatcher, DaemonContext* context);
// run: one-off processes (run_handlers.cc).
void RegisterRunHandlers(Dispatcher* dispatcher, DaemonContext* context);

// Resolves the ids an app runs as (uid, gid, dynamic_user), whatever the
// client sent for them. No user: a root daemon gives the app a uid of its
// own from app_uid_range (kept when the app exists already), a daemon that
// is not root its own user. A named user (or number) must exist, or be a
// number; the group defaults to the user's primary group. uid 0 is refused
// unless allow_root_apps; so is another app's dynamic uid.
Status FillAppDefaults(const DaemonContext& ctx, AppSpec* spec);
// The lowest id in [lo, hi] that no app in `apps` has as uid or gid, that
// has no passwd or group entry on this host, and that no deleted app had
// (`retired`); only when there is none, the lowest retired one that no
// process runs as (UidHasProcesses: a process a deleted app left behind
// keeps its uid from the next app).
Result<uint32_t> AllocateAppUid(const std::vector<AppSpec>& apps,
                                const std::set<int64_t>& retired, uint32_t lo, uint32_t hi);

}  // namespace relsupd
