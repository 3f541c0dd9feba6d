#pragma once
// Finding app processes a previous daemon left behind (it was killed with
// -9 and a descendant outlived PR_SET_PDEATHSIG, e.g. by double-forking).
//
// Every instance is started with RELSUPD_SUPERVISOR=<id> in its environment,
// and its descendants inherit it; <id> names the state directory, so two
// daemons on one host never touch each other's processes. Start-up, before
// anything runs: any thread.

#include <sys/types.h>

#include <string>
#include <vector>

#include "daemon/base/status.h"

namespace relsupd {

// "<device>:<inode>" of the state directory.
Result<std::string> SupervisorId(const std::string& state_dir);
// Pids whose environment holds RELSUPD_SUPERVISOR=<id> (never this process).
// Needs no CAP_SYS_PTRACE: a root daemon reads each environ with the
// process's own ids as its fs ids (CAP_SETUID, CAP_SETGID), as the shipped
// unit allows. Processes whose real, effective and saved ids differ (a
// setuid program) stay unread without CAP_SYS_PTRACE.
std::vector<pid_t> FindLeftovers(const std::string& id);
// SIGKILLs them through pidfds (each checked again once its pidfd is open,
// so a pid reused since the scan is never signalled) and waits up to
// `wait_ms` for them to exit. Returns how many were killed.
int KillLeftovers(const std::string& id, int wait_ms = 2000);

}  // namespace relsupd
