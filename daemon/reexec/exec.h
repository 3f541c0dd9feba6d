#pragma once
// The process-level steps of daemon-reexec (docs/reexec.md §2.6, §5.1,
// §5.3): the running image's argv and binary, the probe run of the binary
// to exec, the signal mask across the exec, and the exec by fd itself.
//
// RunReexecProbe blocks (up to its timeout) and may run on any thread;
// the rest are syscalls for the loop thread, the one that spawned the
// children (PR_SET_PDEATHSIG fires when the parent thread ends; execve
// ends the other threads, never the calling one).

#include <string>
#include <utility>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/reexec/probe.h"

namespace relsupd {

// The environment variables of a re-exec (§2.1, §5.3).
inline constexpr char kHandoverFdEnv[] = "RELSUPD_HANDOVER_FD";
inline constexpr char kReexecSelfFdEnv[] = "RELSUPD_REEXEC_SELF_FD";
inline constexpr char kReexecFallbackEnv[] = "RELSUPD_REEXEC_FALLBACK";
// The old image's monotonic microseconds at its execve (the window's phases).
inline constexpr char kReexecExecUsEnv[] = "RELSUPD_REEXEC_EXEC_US";

// This process's argv, from /proc/self/cmdline.
Result<std::vector<std::string>> OwnArgv();
// The binary this process runs: readlink("/proc/self/exe"); a replaced
// file ends in " (deleted)".
Result<std::string> OwnExePath();

// Runs `path daemon --reexec-probe` with stdin on /dev/null and a minimal
// environment, reads its one line and its exit within `timeout_ms` (then
// SIGKILL), and parses the answer. Errors name the path and what went
// wrong: "'PATH' did not answer the reexec probe (exit 2: The following
// argument was not expected...): it predates daemon-reexec; use systemctl
// restart relsupd".
Result<ProbeAnswer> RunProbeOf(const std::string& path, int timeout_ms);

// Blocks SIGTERM, SIGINT, SIGHUP and SIGUSR2 (before the exec: they stay
// pending across it and the new image handles them), or unblocks them.
void BlockStopSignals();
void UnblockStopSignals();
// Starts libuv's thread-pool threads now (a no-op job on a scratch loop),
// so that they inherit the calling thread's signal mask.
void StartWorkerThreads();
// Takes a pending SIGUSR2 off the mask's queue (a second re-exec asked
// during the window); true when there was one.
bool DiscardPendingUsr2();

// execveat(fd, "", argv, environ with `set` applied, AT_EMPTY_PATH).
// Returns only on failure: "cannot exec 'NAME': Exec format error".
// `name` is for the message.
Status ExecFd(int fd, const std::string& name, const std::vector<std::string>& argv,
              const std::vector<std::pair<std::string, std::string>>& set);

}  // namespace relsupd
