#pragma once
// The supervise part of the daemon-reexec handover record (docs/reexec.md
// §1.4, §2.2): plain data, as the running objects hand it out (Export())
// and take it back (Adopt()).
//
// No encoding here: reexec/handover_codec.cc is the only code that turns
// these structs into bytes and back. Enums stay typed here; the codec
// writes them as names, never as numbers.
//
// fds are plain numbers, not owned by the structs. Export() leaves each fd
// open and still owned by the live object (until Abandon() releases it
// without closing); Adopt() takes ownership of every fd it is given. A
// field added here must be added to the codec and to its round-trip test.
// Only fields are added to these structs, none renamed. Any thread.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/supervise/exit_info.h"
#include "daemon/supervise/instance_state.h"
#include "daemon/supervise/release_run.h"

namespace relsupd {

// Backoff (backoff.h): the restart history of one instance. Times are
// monotonic ms (Clock::MonotonicMs, CLOCK_MONOTONIC: it survives exec).
struct BackoffSnapshot {
  int64_t started_ms = -1;     // -1: never started
  int64_t next_delay_ms = 0;   // 0: the next restart is immediate
  int restarts = 0;
  std::vector<int64_t> exits;  // the crash window, oldest first
  bool operator==(const BackoffSnapshot&) const = default;
};

// The live process of an instance (ChildProcess, spawn.h).
struct ChildFds {
  pid_t pid = 0;
  int pidfd = -1;
  int out_fd = -1;  // stdout's read end; -1: at EOF, or not captured
  int err_fd = -1;  // stderr's read end; -1 likewise
  bool paused = false;  // reading paused by the rate budget
  bool operator==(const ChildFds&) const = default;
};

// OutputCapture (output_capture.h): the unfinished lines and the budget.
struct CaptureSnapshot {
  // Raw bytes held by each LineSplitter (any bytes, '\0' included); at
  // most max_line + 1 each.
  std::string out_partial;
  std::string err_partial;
  double tokens = 0;      // the token bucket; < 0: throttled
  int64_t tokens_ms = 0;  // monotonic ms of the last refill
  bool operator==(const CaptureSnapshot&) const = default;
};

// One Instance (instance.h), INSTANCE in §2.2.
struct InstanceSnapshot {
  std::string type;
  int index = 0;
  bool leaving = false;  // scaled down or restarted, still stopping
  // Never kStarting (a spawn is synchronous); a reader maps it as §3.2.
  InstanceState state = InstanceState::kStopped;
  // The state's timer (ready timeout, stop timeout or restart delay) as an
  // absolute monotonic deadline; unset: none armed.
  std::optional<int64_t> timer_deadline_mono_ms;
  BackoffSnapshot backoff;
  int64_t backoff_delay_ms = 0;
  int64_t started_ms = 0;  // monotonic; 0: no process runs
  // The stop of the current process (recorded in its exit).
  StopCause stop_cause = StopCause::kNone;
  std::string fault;         // ExitInfo::fault of that stop
  int64_t stop_sent_ms = 0;  // monotonic; 0: no stop signal sent
  bool killed = false;       // SIGKILL after the stop timeout
  std::string cgroup_dir;    // empty: none
  std::vector<ExitInfo> exits;  // the last Instance::kMaxExits, oldest first
  std::string status_text;
  bool type_failed = false;
  std::optional<ChildFds> child;  // unset: no process
  CaptureSnapshot capture;
  bool operator==(const InstanceSnapshot&) const = default;
};

// One ReleaseGroup (supervisor.h), GROUP in §2.2.
struct GroupSnapshot {
  ReleaseRun run;  // by value: what the running children started with
  std::map<std::string, int> formation;  // Formation
  bool stopping = false;
  std::set<std::string> failed_types;
  // Wanted instances and leaving ones (InstanceSnapshot::leaving), sorted
  // by type, then index.
  std::vector<InstanceSnapshot> instances;
  bool operator==(const GroupSnapshot&) const = default;
};

// The groups of one app in the Supervisor.
struct AppSnapshot {
  std::string app;
  std::optional<GroupSnapshot> active;
  std::vector<GroupSnapshot> retiring;  // settled groups are not exported
  bool operator==(const AppSnapshot&) const = default;
};

// A process whose owner has gone (killed, not yet reaped): reaped silently
// by the new image.
struct ReapEntry {
  pid_t pid = 0;
  int pidfd = -1;
  bool operator==(const ReapEntry&) const = default;
};

// CgroupTree (cgroup.h).
struct CgroupSnapshot {
  std::string root;
  uint64_t next = 1;  // the @SPAWN counter
  bool operator==(const CgroupSnapshot&) const = default;
};

// NotifyListener (notify_socket.h).
struct NotifySnapshot {
  int fd = -1;
  std::string path;
  // Kept for handover compatibility: an image from before the sd_notify
  // barrier support wrote true when it had set SO_PASSRIGHTS off. Written
  // false now; Adopt turns SO_PASSRIGHTS on again in any case.
  bool refuses_fds = false;
  bool operator==(const NotifySnapshot&) const = default;
};

// The Supervisor with everything it runs.
struct SupervisorSnapshot {
  std::vector<AppSnapshot> apps;
  std::vector<ReapEntry> reap;
  std::optional<CgroupSnapshot> cgroups;  // unset: no cgroups
  bool operator==(const SupervisorSnapshot&) const = default;
};

}  // namespace relsupd
