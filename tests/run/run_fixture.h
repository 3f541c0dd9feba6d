#pragma once
// Helpers for the run-stage end-to-end tests: a daemon with one app (the
// release tests' Stage), a release made from a process file and activated,
// `ps` read back, and looks at real processes in /proc. Test thread only.

#include <sys/types.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "tests/release/release_fixture.h"
#include "tests/support/proc.h"
#include "tests/support/sockets.h"
#include "tests/support/temp_dir.h"

namespace relsupd::run_test {

using e2e::Json;
using release_test::Entry;
using release_test::Stage;

// Daemon config for fast tests: restarts after 20 ms, `crash_limit`
// crashes allowed in 30 s, plus `extra` YAML lines.
std::string FastConfig(const std::string& extra = "", int crash_limit = 3);

using support::FreePort;
// GET `path` on 127.0.0.1:port; the body, or "" when the request failed.
inline constexpr auto& Get = support::HttpGet;

// Imports an artifact holding `entries` (one of them the process file)
// for `app` and creates a release, not activated. Returns "vN".
std::string ReleaseTo(Stage& stage, const std::string& app, const std::vector<Entry>& entries);
// Imports an artifact holding `entries` (one of them the process file),
// creates a release and activates it (waiting until it is live, unless
// `no_wait`). Returns "vN".
std::string Deploy(Stage& stage, const std::vector<Entry>& entries, bool no_wait = false);
// The same for another app of the stage's daemon.
std::string DeployTo(Stage& stage, const std::string& app,
                     const std::vector<Entry>& entries, bool no_wait = false);
// The same with just a Procfile of `procfile` text.
std::string DeployProcfile(Stage& stage, const std::string& procfile, bool no_wait = false);
// The same with just a relsupd.yaml of `yaml` text.
std::string DeployYaml(Stage& stage, const std::string& yaml, bool no_wait = false);

// The `ps` method's rows for the app (what `ps APP --json` prints), called
// in-process: WaitPs polls it, and a CLI start costs 0.2 s under ASan.
Json Ps(Stage& stage);
// The row of `process` ("web.1") in `ps`; null when absent.
Json Row(const Json& ps, const std::string& process);
// Polls `ps` until `pred` holds; throws with the last `ps` on timeout.
Json WaitPs(Stage& stage, const std::function<bool(const Json&)>& pred,
            int timeout_ms = 20'000, const std::string& what = "");
// Every row of `type` (all when empty) is in `state`, and there are `n`.
bool AllIn(const Json& ps, const std::string& type, const std::string& state,
           size_t n);
std::set<pid_t> Pids(const Json& ps, const std::string& type = "");

// Looks at real processes (tests/support/proc.h).
using support::Alive;
using support::CpuMs;
using support::Environ;
using support::OpenFds;
using support::PidsWithCmdline;
using support::SessionOf;
using support::StatusField;
using support::WaitGone;

// A directory the app's user can write (0777), for the marker files an
// app's commands leave.
struct WritableDir {
  support::TempDir dir{"relsupd-marks"};
  std::string path = dir.Path("marks");
  WritableDir();
};

// A file an app's command waits for, in a WritableDir; it exists from the
// start. Open() creates it, Close() removes it.
struct Gate {
  WritableDir dir;
  std::string path = dir.path + "/gate";
  Gate() { Open(); }
  void Open();
  void Close();
};

// A relsupd.yaml with one process `web`, `ready: notify`, whose main
// process sends READY=1 itself once `gate` exists (a helper that exits at
// once, such as `systemd-notify --no-block`, may be gone before the daemon
// reads its datagram, and is then matched to no instance; without
// --no-block it waits for its barrier: tests/run/test_sockets.cc). Needs
// /usr/bin/python3.
std::string GatedNotifyYaml(const std::string& gate);

// The relsupd.yaml lines of a process `name` that ignores SIGTERM, so that
// only the SIGKILL at its `stop_timeout` ("3s") ends it.
std::string IgnoresTerm(const std::string& name, const std::string& stop_timeout);

// A `relsupd ctl ARGS...` left running (`logs -f`, `events -f`), its
// stdout and stderr in files of the stage's dir; stopped by the test, by
// pid (Stop, or when it goes: SIGTERM, then SIGKILL after 5 s).
class Follower {
 public:
  Follower(Stage& stage, const std::vector<std::string>& args);
  ~Follower() { Stop(); }
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;
  void Stop();
  pid_t pid() const { return pid_; }
  std::string out() const;
  std::string err() const;
  // Waits up to 20 s for `needle` in stdout at or after `from`.
  bool WaitOut(const std::string& needle, size_t from = 0) const;
  // False once it exited (then reaped).
  bool running();

 private:
  pid_t pid_ = 0;
  std::string out_, err_;
};

// Every log record of the app (`logs APP -n N --json ...`).
Json Logs(Stage& stage, std::vector<std::string> extra = {});
// Every log record of the app from the `logs` method, page by page (what
// Logs() gets through the CLI), in-process.
Json LogRecords(Stage& stage);
// Polls LogRecords() until one record's text contains `needle`.
bool WaitLog(Stage& stage, const std::string& needle, int timeout_ms = 10'000);
// Waits for a log line "PREFIX<pid>" (as `echo escaped $!` prints) and
// returns the pid, or 0 when none came.
pid_t WaitLoggedPid(Stage& stage, const std::string& prefix);
// Waits until `n` lines "PREFIX<pid>" were logged, then SIGKILLs each of
// those pids still alive: processes that escaped their instance (setsid)
// on purpose, which no stop of the daemon ends without cgroups.
void KillLoggedPids(Stage& stage, const std::string& prefix, size_t n);

}  // namespace relsupd::run_test
