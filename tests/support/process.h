#pragma once
// Child processes for tests and benches: start one with chosen stdio, user
// and limits; run one to completion collecting its output; wait for one
// with a deadline; look for sanitizer reports in what it printed.
//
// Every fd this file opens is close-on-exec; a child gets only its stdio.
// The caller owns the pids it gets and must reap them (WaitPid). Errors of
// set-up throw std::runtime_error (failure.h). Test thread only.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace relsupd::support {

// How a child process ended.
struct ExitStatus {
  int code = -1;           // exit code, or -1 when it did not exit normally
  int signal = 0;          // the signal that ended it, or 0
  bool timed_out = false;  // it did not end in time and was killed
  int wait_status = 0;     // as waitpid returned it (WIFEXITED...)
  bool Exited(int c) const { return !timed_out && signal == 0 && code == c; }
  std::string ToString() const;
};

struct Credentials {
  uid_t uid;
  gid_t gid;
};
// nobody's uid and primary group, from getpwnam("nobody"); nullopt when
// there is no such user.
std::optional<Credentials> NobodyCredentials();
// The name of group `gid`, or nullopt.
std::optional<std::string> GroupNameOf(gid_t gid);
// nobody's credentials when this process may run a child as nobody: it is
// root, the user exists and its primary group has a name (put in `group`).
// Otherwise nullopt, and `why_not` says why ("not root: ...").
std::optional<Credentials> NobodyToRunAs(std::string* group,
                                         std::string* why_not);

// Our environment without the variables that would change a relsupd
// child's behaviour (NOTIFY_SOCKET, LISTEN_FDS, JOURNAL_STREAM,
// RELSUPD_SOCKET...) and without those named in `extra`, then `extra`
// (NAME=VALUE entries).
std::vector<std::string> ChildEnv(const std::vector<std::string>& extra = {});

// What a child gets beyond its argv, env and stdio.
struct SpawnOptions {
  // Run as this uid/gid (supplementary groups set to just gid). REQUIRES
  // root.
  std::optional<Credentials> as;
  // RLIMIT_NOFILE (soft and hard); 0 inherits ours.
  unsigned max_open_files = 0;
  // SIGTERM to the child when we die (PR_SET_PDEATHSIG), and a process
  // group of its own, so Ctrl-C on a terminal reaches only us (benches).
  bool die_with_parent = false;
};

// Starts `argv` (argv[0] a path) with `env` as its whole environment and
// the given stdio fds (the caller keeps and closes its copies), default
// signal handling and an empty signal mask. Returns the child's pid.
pid_t Spawn(const std::vector<std::string>& argv,
            const std::vector<std::string>& env, int in, int out, int err,
            const SpawnOptions& options = {});

// Waits up to timeout_ms for `pid` to end. Returns true and fills `st` when
// it did; false when it is still running at the deadline.
bool WaitPid(pid_t pid, int timeout_ms, ExitStatus* st);

// /dev/null opened read-only, close-on-exec.
int OpenDevNull();

struct RunOptions {
  // Run as this uid/gid (supplementary groups set to just gid). REQUIRES root.
  std::optional<Credentials> as;
  // Extra NAME=VALUE environment entries (replacing inherited ones).
  std::vector<std::string> env;
  // A guard against a hung command, not a margin a test relies on: long
  // enough for a CLI that waits for an app (node, gunicorn) to start on a
  // loaded 2-core machine under ASan.
  int timeout_ms = 60'000;
  // stdout is a pseudo-terminal (output post-processing off, so the bytes
  // read back are the bytes written), as when a person runs the command.
  bool stdout_pty = false;
  // stdin comes from this file; empty: /dev/null.
  std::string stdin_path;
  // stderr goes where stdout goes: ProcResult::out holds both, interleaved
  // as written, and ProcResult::err stays empty.
  bool merge_stderr = false;
};

struct ProcResult {
  ExitStatus status;
  std::string out;
  std::string err;
  int exit_code() const {
    return status.Exited(status.code) ? status.code : -1;
  }
  // Everything, for a failure message.
  std::string Describe() const;
};

// Runs `argv` (argv[0] a path) to completion with stdin from /dev/null (or
// options.stdin_path) and the environment ChildEnv(options.env), collecting
// stdout and stderr. A sanitizer report in its output is reported
// (ReportFailure), whatever the caller expects. A child still running after
// timeout_ms is killed (status.timed_out).
ProcResult RunProcess(const std::vector<std::string>& argv,
                      const RunOptions& options = {});

// "" when `output` holds no report of ASan, LSan, UBSan or TSan; else the
// report, introduced with `who`.
std::string SanitizerReport(const std::string& output, const std::string& who);

}  // namespace relsupd::support
