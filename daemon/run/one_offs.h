#pragma once
// OneOffs: the one-off processes `relsupd ctl run` starts (12-factor XII
// admin processes), from start to the `ran` event.
//
// A one-off runs a command of one release (the active one, or one named)
// the way an instance of it would run: its slot as cwd, the release's
// environment plus RELSUPD_APP, RELSUPD_RELEASE and RELSUPD_PROCESS=run,
// the app's user, a cgroup of its own where cgroups are on (ROOT/APP/
// run.N@SPAWN), a session of its own. Its stdin, stdout and stderr are
// the client's fds (or a pty slave, then also its controlling terminal).
// It is never an instance: no restart, no scale, no crash limit, and
// plain `ps` does not list it (PsRows, for `ps --all`, does).
//
// The client is represented by the control pipe, whose read end it passed
// and whose write end it keeps: each byte it writes is a signal number
// (INT, TERM, HUP, QUIT, USR1, USR2; others are ignored) sent to the
// process group, and its end (the client exited or closed it) kills the
// group and the cgroup. The ledger gets `run-started` before the process
// starts (no record, no run) and `ran` with the exit status when it ended.
//
// Owns every running one-off; destroying it kills them all. Loop thread
// only.

#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/ledger/ledger.h"
#include "daemon/run/run_service.h"
#include "daemon/supervise/instance.h"
#include "daemon/supervise/one_off.h"

namespace relsupd {

struct OneOffRequest {
  std::string app;
  int64_t release = 0;  // 0: the active release
  std::vector<std::string> argv;
  bool tty = false;  // stdin is a terminal: it becomes the controlling one
  ExecStdio stdio;   // the caller's fds, dup'd by the child
  Fd control;        // the control pipe's read end (non-blocking)
  Actor actor;
};

struct OneOffExit {
  std::string app;
  int64_t release = 0;
  int64_t id = 0;  // run.N
  pid_t pid = 0;   // 0: it never ran
  int64_t exit_status = 0;
  int signal = 0;     // the signal that ended it, else 0
  std::string error;  // why it never ran (exit_status 125-127)
};

class OneOffs {
 public:
  // At most this many run at once (a client can grow nothing unbounded).
  static constexpr size_t kMaxRunning = 64;

  using LoadRunFn = std::function<Result<std::shared_ptr<ReleaseRun>>(
      const std::string& app, int64_t release)>;
  // `env` and `ledger` outlive this.
  OneOffs(SuperviseEnv* env, Ledger* ledger, LoadRunFn load_run);
  ~OneOffs();
  OneOffs(const OneOffs&) = delete;
  OneOffs& operator=(const OneOffs&) = delete;

  // Starts `req`; `done` gets how it ended (also when the program could
  // not be exec'd: exit 125-127 with `error`). An error instead means
  // nothing ran and `done` is not called: no such app or release, no
  // active one, a pruned release, too many running, the ledger refusing
  // `run-started`.
  Status Start(OneOffRequest req, std::function<void(const OneOffExit&)> done);

  // One row per running one-off (process `run.N`, type `run`).
  std::vector<PsRow> PsRows(const std::optional<std::string>& app) const;
  size_t running() const { return running_.size(); }
  // The releases running one-offs of `app` use (retention keeps them).
  std::set<int64_t> InUse(const std::string& app) const;
  // Called with the app after a one-off ended.
  void set_on_ended(std::function<void(const std::string&)> f) {
    on_ended_ = std::move(f);
  }

  // Kills every one-off's group and cgroup (daemon shutdown).
  void KillAll();

  // daemon-reexec (docs/reexec.md §4.7): one-offs are not carried (a
  // re-exec is refused while any runs, or kills them first), but the next
  // id is, so `run.N` names are not used twice in an app's logs.
  int64_t next_id() const { return next_id_; }
  void AdoptNextId(int64_t next_id) { next_id_ = std::max<int64_t>(next_id_, next_id); }

 private:
  struct Running;
  void OnControl(Running* r);
  void OnExit(Running* r, const ExitInfo& exit);

  SuperviseEnv* env_;
  Ledger* ledger_;
  LoadRunFn load_run_;
  int64_t next_id_ = 1;
  std::map<int64_t, std::unique_ptr<Running>> running_;
  std::function<void(const std::string&)> on_ended_;
};

// "./manage.py shell", each word quoted for a shell where it needs it.
std::string CommandLine(const std::vector<std::string>& argv);

}  // namespace relsupd
