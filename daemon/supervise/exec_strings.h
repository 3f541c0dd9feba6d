#pragma once
// ExecStrings: what the exec step's child reads (exec_step.h), built by
// CloneExec before the clone, since the child allocates nothing: the argv,
// the environment with LISTEN_FDS/LISTEN_PID set or removed, the program's
// candidate paths from the PATH search on the child's PATH, and the
// cgroup.procs path. Owned by CloneExec's frame for one spawn; any thread.

#include <string>
#include <vector>

#include "daemon/supervise/exec_step.h"

namespace relsupd {

// Filled in place and never copied: argv, envp and paths point into `req`
// and into the strings here.
struct ExecStrings {
  ExecStrings() = default;
  ExecStrings(const ExecStrings&) = delete;
  ExecStrings& operator=(const ExecStrings&) = delete;

  std::vector<char*> argv;  // nullptr-terminated, into req.argv
  std::vector<char*> envp;  // nullptr-terminated
  std::string listen_fds;
  std::string listen_pid;  // "LISTEN_PID=" and 21 NULs the child fills in
  std::string watchdog_pid;  // "WATCHDOG_PID=" and 21 NULs, likewise
  std::vector<std::string> candidates;
  std::vector<const char*> paths;  // nullptr-terminated, into candidates
  std::string cgroup_procs;        // empty: no cgroup
};

// REQUIRES: req.argv[0] is not empty; `req` outlives `out`.
void BuildExecStrings(const ExecRequest& req, ExecStrings* out);

}  // namespace relsupd
