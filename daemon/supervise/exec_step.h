#pragma once
// The exec step: what every app process goes through between uv_spawn() and
// its own program, plus two helpers the daemon's spawn code uses.
//
// The daemon uv_spawn()s
//
//   relsupd-exec [--setsid] [--cgroup DIR] [--rlimit NAME=SOFT:HARD]...
//                [--groups G1,G2,...] [--gid N] [--uid N] [--pdeathsig PPID]
//                [--listen-fds N] [--umask OCTAL] -- PROGRAM ARGS...
//
// with the final environment, cwd and stdio already set by libuv and the fds
// to hand over already at 3, 4, ... (UV_INHERIT_FD). relsupd-exec then does,
// in this order, what uv_spawn cannot:
//   1. --setsid: a new session and process group.
//   2. --cgroup DIR: join DIR (write "0\n" to DIR/cgroup.procs), while still
//      privileged.
//   3. --rlimit: setrlimit (names nofile, nproc, core, as, fsize, stack, cpu,
//      memlock; "infinity" allowed), while still privileged (raising a hard
//      limit needs CAP_SYS_RESOURCE).
//   4. setgroups (when --groups or --uid; empty without --groups), setresgid,
//      setresuid, then checks that real, effective and saved ids all changed.
//   5. --pdeathsig PPID: PR_SET_PDEATHSIG(SIGKILL), after the id change
//      (which clears it); exits at once if the parent is no longer PPID.
//   6. --listen-fds N: fds 3..3+N-1 must be open; their close-on-exec flag is
//      cleared; LISTEN_PID and LISTEN_FDS are set (LISTEN_FDNAMES comes from
//      the daemon). Without it LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES are
//      removed, because the fds they would describe are closed in step 7.
//   7. every fd >= 3+N closed (close_range; /proc/self/fd when ENOSYS).
//   8. signal mask emptied, every disposition SIG_DFL.
//   9. umask (022 unless --umask).
//  10. execvp(PROGRAM, ARGS).
// Any failure writes one line to stderr,
//   relsupd-exec: <step>: <what>: <strerror>
//   relsupd-exec: cannot run './bin/server': No such file or directory
// and _exits 127 (program not found), 126 (found, cannot be run) or 125 (bad
// options or a setup step failed). The step never returns to its caller.
//
// Start-up cost matters (restart latency), so this module uses no Status, no
// iostreams and no library beyond libc/libstdc++ (relsupd-exec is linked
// statically outside sanitizer builds), and allocates nothing after parsing
// but setenv's copies of LISTEN_PID/LISTEN_FDS. It runs in the child,
// single-threaded; the helpers at the end run on the daemon's loop thread.
// PR_SET_PDEATHSIG follows the thread that forked: the daemon must spawn
// from a thread that lives as long as it does (the loop thread).

#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace relsupd {

inline constexpr int kExecStepNotFound = 127;       // PROGRAM does not exist
inline constexpr int kExecStepCannotExecute = 126;  // exists, exec failed
inline constexpr int kExecStepSetupFailed = 125;    // options or a step

struct ExecRlimit {
  int resource = 0;  // RLIMIT_*
  rlim_t soft = 0;   // RLIM_INFINITY for "infinity"
  rlim_t hard = 0;
};

struct ExecStepOptions {
  bool setsid = false;
  const char* cgroup_dir = nullptr;  // nullptr: stay in the current cgroup
  std::vector<ExecRlimit> rlimits;
  bool set_groups = false;  // --groups given (possibly empty)
  std::vector<gid_t> groups;
  bool set_gid = false;
  gid_t gid = 0;
  bool set_uid = false;
  uid_t uid = 0;
  pid_t pdeathsig_ppid = 0;  // 0: no --pdeathsig
  int listen_fds = 0;
  mode_t umask = 022;
  // PROGRAM ARGS..., null-terminated; points into the argv that was parsed,
  // which must outlive the options.
  char** argv = nullptr;
};

// A parse result: `error` is empty on success, else what was wrong.
struct ParsedExecStepArgs {
  ExecStepOptions options;
  std::string error;
  bool ok() const { return error.empty(); }
};

// Parses relsupd-exec's command line (argv[0] is the program's own name).
// REQUIRES: argv[argc] == nullptr, as for main().
ParsedExecStepArgs ParseExecStepArgs(int argc, char** argv);

// A failed step. `step` is nullptr when nothing failed; `what` names the
// thing (a path, an fd); `err` is the errno, 0 when there is none.
struct ExecStepError {
  const char* step = nullptr;
  char what[256] = {};
  int err = 0;
  int exit_code = kExecStepSetupFailed;
  bool failed() const { return step != nullptr; }
};

// Steps 1-9 on the calling process. Stops at the first failure.
ExecStepError RunExecSetup(const ExecStepOptions& options);

// Step 6 alone: fds 3..3+n-1 open and inherited across exec. Sets no
// environment variables.
ExecStepError KeepListenFds(int n);

enum class CloseMethod {
  kBest,        // close_range, then /proc/self/fd, then a loop over all fds
  kProcSelfFd,  // the fallback for kernels without close_range (< 5.9)
};
// Step 7 alone: closes every fd >= `first`.
ExecStepError CloseFdsFrom(int first, CloseMethod method = CloseMethod::kBest);

// Writes "relsupd-exec: <step>: <what>: <strerror>" to fd 2 and _exits
// with error.exit_code.
[[noreturn]] void ExecStepFail(const ExecStepError& error);

// Steps 1-10: on success the process image is replaced; on failure
// ExecStepFail. Never returns.
[[noreturn]] void RunExecStep(const ExecStepOptions& options);

// For the daemon: relsupd-exec beside the running executable (the build
// tree) if it exists there, else the installed
// `self_exe_dir`/../libexec/relsupd/relsupd-exec.
std::string FindExecStep(const std::string& self_exe_dir);

// For the daemon: the argv to exec for a process file's `command`.
// {"/bin/sh", "-c", command} when it needs a shell (quoting, expansion,
// redirection, pipes, lists, globbing, comments, a variable assignment or a
// shell keyword/builtin such as `exec` or `cd` as the first word); otherwise
// the words split on spaces and tabs, exec'd directly so that the instance's
// pid is the program itself and no shell start-up is paid. Empty for a blank
// command (the spec parser rejects those).
std::vector<std::string> CommandArgv(const std::string& command);

}  // namespace relsupd
