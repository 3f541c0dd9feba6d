#pragma once
// OneOff: one process run once, never restarted: a release's release phase
// (`release:`), an operator's `ctl run`. It is not an instance: no state
// table, no backoff, never in a ReleaseGroup, so `ps` and `scale` never see
// it.
//
// It goes through the same exec step as instances (exec_step.h: the app's
// user and groups, setsid, rlimits, close_range, PR_SET_PDEATHSIG, no fd of
// the daemon), gets a cgroup of its own when the daemon has cgroups
// (ROOT/APP/NAME@SPAWN) and RELSUPD_SUPERVISOR in its environment, so the
// start-up leftovers sweep (leftovers.h, CgroupTree::KillLeftovers) ends it
// if the daemon dies while it runs. Its stdio is either captured into the
// app's logs line by line under `name` (OutputCapture, with the instances'
// rate limit) or fds the caller gives (a client's passed fds, a pty slave).
//
// The OneOff owns its ChildProcess, cgroup and stop timer; the caller owns
// the OneOff. Destroying it while the process runs kills the process group
// and the cgroup at once (as Kill()) without calling `on_exit`.
// Loop thread only.

#include <signal.h>
#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/supervise/instance.h"
#include "daemon/supervise/output_capture.h"
#include "daemon/supervise/spawn.h"

namespace relsupd {

struct OneOffSpec {
  std::string app;
  std::string release;  // "v3": in the log records
  // The process name in the logs and the cgroup: "release", "run.4".
  std::string name;
  // The program and its arguments; CommandArgv(command) for a command
  // line of a process file.
  std::vector<std::string> argv;
  std::string cwd;               // the release's slot
  std::vector<std::string> env;  // "KEY=VALUE", the whole environment;
                                 // RELSUPD_SUPERVISOR is set by Start
  std::optional<uid_t> uid;      // unset: the daemon's user
  std::optional<gid_t> gid;      // REQUIRED with uid
  std::vector<gid_t> groups;
  int stop_signal = SIGTERM;
  int64_t stop_timeout_ms = 10000;
  // Unset: stdout and stderr are captured into the app's logs (stdin is
  // /dev/null). Set: these fds of the caller are the process's stdin,
  // stdout and stderr (all three >= 0; the caller keeps its copies and may
  // close them once Start returned).
  std::optional<ExecStdio> stdio;
  // With `stdio`: fd 0 is a terminal (a pty slave) and becomes the
  // process's controlling terminal, so Ctrl-C and job control work.
  bool controlling_tty = false;
};

// A spec for running `argv` as `name` in release `run`: its slot as cwd, its
// user and groups, its environment (ProcessEnvironment, RELSUPD_PROCESS =
// `name`).
OneOffSpec OneOffOf(const ReleaseRun& run, const SuperviseEnv& env,
                    std::string name, std::vector<std::string> argv);

class OneOff {
 public:
  // The process ended: exit status or signal (ExitInfo::Describe). Called
  // once, after its last output is in the logs and its cgroup is killed;
  // the OneOff may be destroyed in it.
  using ExitCallback = std::function<void(const ExitInfo&)>;

  // Spawns the process. An error (the exec step failed: no such program,
  // a uid, a cgroup) leaves nothing running; with captured output the
  // error is also written to the app's log as "relsupd: ...".
  // REQUIRES: `env` (loop, clock, logs, cgroups) outlives the OneOff.
  static Result<std::unique_ptr<OneOff>> Start(SuperviseEnv* env,
                                               OneOffSpec spec,
                                               ExitCallback on_exit);
  ~OneOff();
  OneOff(const OneOff&) = delete;
  OneOff& operator=(const OneOff&) = delete;

  const OneOffSpec& spec() const { return spec_; }
  pid_t pid() const { return pid_; }
  bool running() const { return child_ != nullptr; }
  // Sends `signum` to the process group (a client's Ctrl-C, SIGTERM).
  Status Signal(int signum);
  // Ends it like an instance: stop_signal to the group, then SIGKILL (and
  // cgroup.kill) after stop_timeout_ms. `on_exit` reports the end.
  void Stop();
  // Ends it now: cgroup.kill and SIGKILL to the group (a client gone away).
  // `on_exit` reports the end.
  void Kill();
  // The last lines of captured output (stdout and stderr as they came),
  // each cut to kTailLineBytes; empty with `stdio`.
  std::vector<std::string> TailLines() const;

  static constexpr size_t kTailLines = 20;
  static constexpr size_t kTailLineBytes = 1024;

 private:
  OneOff(SuperviseEnv* env, OneOffSpec spec, ExitCallback on_exit);
  Status Spawn();
  void OnExit(int64_t status, int signal);
  void KeepTail(std::string_view line);

  SuperviseEnv* env_;
  OneOffSpec spec_;
  ExitCallback on_exit_;
  std::unique_ptr<OutputCapture> capture_;  // null with `stdio`
  std::unique_ptr<ChildProcess> child_;     // null once it exited
  std::string cgroup_dir_;
  pid_t pid_ = 0;
  UvHandle<uv_timer_t> stop_timer_;
  std::deque<std::string> tail_;
};

}  // namespace relsupd
