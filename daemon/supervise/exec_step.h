#pragma once
// The exec step: what every app process goes through between its creation
// and its own program, plus the helpers the daemon's spawn code uses.
//
// CloneExec() starts the child with clone(CLONE_VM | CLONE_VFORK |
// CLONE_PIDFD), plus CLONE_FILES with ReserveSpawnSlots, as glibc's
// posix_spawn does: the child runs on the
// daemon's memory while the calling thread waits, until the child has
// exec'd or failed. Nothing is copied, so a spawn costs the same with 1,000
// children as with one (libuv 1.44's uv_spawn fork()s the whole daemon,
// page tables included, and cannot do the steps below, which used to cost
// a second exec of a helper program on every restart). In the child, in
// this order:
//   0. with the spawn slots: a private fd table of only the low fds.
//   1. setsid: a new session and process group.
//   2. chdir to `cwd` (the release slot), while still root.
//   3. join `cgroup_dir` (write "0" to DIR/cgroup.procs), while privileged.
//   4. stdin, stdout, stderr and `pass_fds` moved to 0, 1, 2, 3, ...
//      (inherited across exec); every other fd closed (close_range;
//      /proc/self/fd before Linux 5.9). Before the rlimits: a lower nofile
//      would refuse the moves of fds above it. With `controlling_tty`,
//      fd 0 (a terminal) becomes the session's controlling terminal
//      (TIOCSCTTY; the new session has none yet).
//   5. rlimits (raising a hard limit needs CAP_SYS_RESOURCE).
//   6. with a uid: setgroups (exactly `groups`, possibly none), setresgid,
//      setresuid; then checks that real, effective and saved ids changed.
//   7. PR_SET_PDEATHSIG(SIGKILL), after the id change (which clears it);
//      fails if the parent already died (the child was reparented).
//   8. LISTEN_PID (and WATCHDOG_PID) filled in with the child's pid.
//   9. every signal disposition SIG_DFL (those /proc/self/status says are
//      caught or ignored; all of them without it), then an empty mask.
//  10. umask.
//  11. execve of each candidate path of the program in turn (the parent
//      did the PATH search on the child's PATH).
// A failing step stops the child: it records the step, what and errno in
// the caller's memory and _exits 125 (a setup step), 126 (found, cannot be
// run) or 127 (not found); CloneExec reaps it and returns the error, e.g.
//   cannot run './bin/server': No such file or directory
//   cgroup: cannot open '/sys/fs/cgroup/x/cgroup.procs': Permission denied
//
// The child shares the daemon's memory and TLS with the daemon's threads
// running: it makes raw system calls only (no malloc, no stdio, no glibc
// wrapper that acts on every thread such as setuid or setgroups, none that
// a sanitizer intercepts), and writes nothing but its own stack and the
// error record. This file is compiled without sanitizers for that reason.
// PR_SET_PDEATHSIG follows the thread that spawned: the daemon spawns from
// the loop thread, which lives as long as it does.

#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/supervise/command_argv.h"  // CommandArgv, which it used to declare

namespace relsupd {

inline constexpr int kExecStepNotFound = 127;       // program not found
inline constexpr int kExecStepCannotExecute = 126;  // found, exec failed
inline constexpr int kExecStepSetupFailed = 125;    // a setup step failed

// Step 9's list: the signals whose disposition is not SIG_DFL, from the
// "SigIgn:" and "SigCgt:" lines of a /proc/PID/status text (bit n-1 for
// signal n); every signal when either line is missing or malformed. No
// library call: it runs in the clone child.
uint64_t NonDefaultSignals(const char* status, size_t n);

struct ExecRlimit {
  int resource = 0;  // RLIMIT_*
  rlim_t soft = 0;   // RLIM_INFINITY for "infinity"
  rlim_t hard = 0;
};

// Parses "NAME=SOFT:HARD" (names nofile, nproc, core, as, fsize, stack,
// cpu, memlock; "infinity" allowed).
Result<ExecRlimit> ParseRlimit(const std::string& spec);

// What to run and as whom.
struct ExecRequest {
  std::vector<std::string> argv;  // the program and its arguments
  std::string cwd;                // empty: the caller's
  std::vector<std::string> env;   // "KEY=VALUE", the whole environment
  std::optional<uid_t> uid;       // unset: keep the caller's
  std::optional<gid_t> gid;       // REQUIRED with uid
  std::vector<gid_t> groups;      // supplementary groups (with uid)
  std::vector<ExecRlimit> rlimits;
  std::vector<int> pass_fds;      // become 3, 4, ... (LISTEN_FDS)
  std::string cgroup_dir;         // joined before exec when set
  bool pdeathsig = true;          // die with the spawning thread
  mode_t umask = 022;
  bool controlling_tty = false;   // fd 0 becomes the controlling terminal
  bool watchdog_pid = false;      // WATCHDOG_PID= the child's pid (step 8)
};

// The child's stdio, as fds of the caller (dup'd into place in the child;
// the caller keeps and closes its own copies).
struct ExecStdio {
  int in = -1;
  int out = -1;
  int err = -1;
};

struct ClonedChild {
  pid_t pid = -1;
  int pidfd = -1;  // close-on-exec; owned by the caller
};

// Starts `req` with the exec step. On success the child has exec'd the
// program. On failure nothing is left running: the child is reaped and the
// status says which step failed; its code maps to the child's exit code
// through ExecStepExitCode. Blocks the calling thread until the exec.
// Without LISTEN fds, LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES are removed from
// the environment (they would describe fds step 4 closes); with them,
// LISTEN_PID and LISTEN_FDS are set (LISTEN_FDNAMES comes with `env`).
Result<ClonedChild> CloneExec(const ExecRequest& req, const ExecStdio& stdio);

// Makes a spawn's cost independent of how many fds the caller holds.
// Without this, the child gets a copy of the whole fd table and closes all
// but its own (0.6 ms per spawn with 3,000 fds). With it, `count`
// contiguous fd slots (placeholders on /dev/null) are kept open; CloneExec
// puts the child's fds into them, shares the fd table with the child
// (CLONE_FILES), and the child's first act is close_range(slots' end, ~0,
// CLOSE_RANGE_UNSHARE): a private table of only the fds below the slots.
// Spawns needing more than `count` fds (3 + handed-over sockets) take the
// copying path. Call early, while the process holds few fds (the daemon:
// before the run stage starts). Idempotent.
Status ReserveSpawnSlots(int count = 16);
// Closes the slots again (tests).
void ReleaseSpawnSlots();

// 127 for a program not found, 126 for one that cannot run, else 125.
int ExecStepExitCode(const Status& status);

// Step 4's close alone, on the calling process: closes every fd >= `first`.
enum class CloseMethod {
  kBest,        // close_range, then /proc/self/fd, then a loop over all fds
  kProcSelfFd,  // the fallback for kernels without close_range (< 5.9)
};
// Returns 0 or an errno.
int CloseFdsFrom(int first, CloseMethod method = CloseMethod::kBest);

}  // namespace relsupd
