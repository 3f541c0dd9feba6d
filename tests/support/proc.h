#pragma once
// /proc readers for tests and benches: a process's state, session, fds,
// status fields, environment and CPU time, and processes found by their
// command line. A process that is gone reads as empty (no throw). Any
// thread.

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace relsupd::support {

// The fields of /proc/PID/stat after the command name: [0] is the state
// (field 3), [3] the session (field 6). Empty when the process is gone.
std::vector<std::string> StatFields(pid_t pid);
// The process exists and is not a zombie.
bool Alive(pid_t pid);
// Polls until !Alive(pid) for every pid; false on timeout.
bool WaitGone(const std::set<pid_t>& pids, int timeout_ms = 10'000);
// The number of open fds of process `pid` (from /proc/PID/fd); throws when
// it cannot be read.
int OpenFdCount(pid_t pid);
// The fds open in `pid` (from /proc/PID/fd).
std::set<int> OpenFds(pid_t pid);
// A "Key:" line of /proc/PID/status, value only ("65534\t65534...").
std::string StatusField(pid_t pid, const std::string& key);
// NAME=VALUE entries of /proc/PID/environ.
std::vector<std::string> Environ(pid_t pid);
// The session id of `pid` (field 6 of /proc/PID/stat), -1 when gone.
pid_t SessionOf(pid_t pid);
// Pids whose command line contains `needle` (from /proc/*/cmdline).
std::set<pid_t> PidsWithCmdline(const std::string& needle);
// user + system CPU time of `pid` in ms.
int64_t CpuMs(pid_t pid);

}  // namespace relsupd::support
