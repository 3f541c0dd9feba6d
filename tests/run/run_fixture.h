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

namespace relsupd::run_test {

using e2e::Json;
using release_test::Entry;
using release_test::Stage;

// Daemon config for fast tests: restarts after 20 ms, `crash_limit`
// crashes allowed in 30 s, plus `extra` YAML lines.
std::string FastConfig(const std::string& extra = "", int crash_limit = 3);

// A loopback port nobody listens on right now.
int FreePort();
// GET `path` on 127.0.0.1:port; the body, or "" when the request failed.
std::string Get(int port, const std::string& path);

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

// `ps APP --json`.
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

// The process exists and is not a zombie.
bool Alive(pid_t pid);
// Polls until !Alive(pid) for every pid; false on timeout.
bool WaitGone(const std::set<pid_t>& pids, int timeout_ms = 10'000);
// The fds open in `pid` (from /proc/PID/fd).
std::set<int> OpenFds(pid_t pid);
// A "Key:" line of /proc/PID/status, value only ("65534\t65534...").
std::string StatusField(pid_t pid, const std::string& key);
// NAME=VALUE entries of /proc/PID/environ.
std::vector<std::string> Environ(pid_t pid);
// The session id of `pid` (field 6 of /proc/PID/stat).
pid_t SessionOf(pid_t pid);
// Pids whose command line contains `needle` (from /proc/*/cmdline).
std::set<pid_t> PidsWithCmdline(const std::string& needle);
// user + system CPU time of `pid` in ms.
int64_t CpuMs(pid_t pid);

// Every log record of the app (`logs APP -n N --json ...`).
Json Logs(Stage& stage, std::vector<std::string> extra = {});
// Polls `logs` until one record's text contains `needle`.
bool WaitLog(Stage& stage, const std::string& needle, int timeout_ms = 10'000);
// Waits for a log line "PREFIX<pid>" (as `echo escaped $!` prints) and
// returns the pid, or 0 when none came.
pid_t WaitLoggedPid(Stage& stage, const std::string& prefix);

}  // namespace relsupd::run_test
