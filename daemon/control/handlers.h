#pragma once
// The control protocol's methods: daemon.info, app.*, history.
//
// Each handler validates its params, calls the ledger and returns the JSON
// result the CLI prints with --json. Loop thread only.

#include <memory>
#include <string>

#include "daemon/base/clock.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/read_jobs.h"
#include "daemon/ledger/ledger.h"

namespace relsupd {
class ReleaseService;
class RunService;
class LogStore;
}

namespace relsupd {

// What the handlers need from the daemon. All pointers outlive the handlers.
struct DaemonContext {
  uv_loop_t* loop = nullptr;
  Ledger* ledger = nullptr;
  ReleaseService* releases = nullptr;
  RunService* runs = nullptr;
  LogStore* logs = nullptr;
  const Clock* clock = nullptr;
  std::string state_dir;
  std::string socket;
  int64_t started_ms = 0;  // monotonic
  // Thread-pool work that read methods start (release.verify/show/diff).
  std::unique_ptr<ReadJobs> read_jobs = std::make_unique<ReadJobs>();
};

void RegisterHandlers(Dispatcher* dispatcher, DaemonContext* context);
// build.*, release.* and config.* (release_handlers.cc).
void RegisterReleaseHandlers(Dispatcher* dispatcher, DaemonContext* context);

// ps, scale, restart, stop, start, logs, activate (process_handlers.cc).
void RegisterProcessHandlers(Dispatcher* dispatcher, DaemonContext* context);

// Fills an app's empty user and group: the daemon's own user when it is not
// root, `nobody` when it is; the group defaults to the user's primary group.
// Checks that both exist on this host.
Status FillAppDefaults(AppSpec* spec);

}  // namespace relsupd
