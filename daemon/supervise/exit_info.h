#pragma once
// ExitInfo: how one process of an instance ended, as `ps` and the ledger
// show it. Plain data; Describe() and Cause() live in instance.cc.

#include <cstdint>
#include <string>
#include <string_view>

namespace relsupd {

// Why the daemon was stopping a process when it ended.
enum class StopCause {
  kNone,       // nobody asked it to stop: it exited or crashed by itself
  kRequested,  // a stop (ctl stop, scale down, restart, a switch, shutdown)
  kNotReady,   // stopped because it was not ready within ready_timeout
  // Faults found while it ran; the exit is a crash (restarted under the
  // backoff) and `ExitInfo::fault` says what was seen.
  kHealth,     // its health check failed `failures` times in a row
  kWatchdog,   // no WATCHDOG=1 within `watchdog` (SIGABRT, not stop_signal)
  kMemory,     // its memory passed `limits: memory` (the RSS watch)
  kOomKilled,  // the kernel's OOM killer ended it in its cgroup (memory.max)
};

// "health check failed: FAULT", "watchdog: FAULT", "memory limit (FAULT)":
// the reason of a fault stop, as the exit and the logs give it.
std::string FaultReason(StopCause cause, const std::string& fault);

struct ExitInfo {
  int64_t time_ms = 0;  // wall clock
  int64_t status = 0;
  int signal = 0;
  StopCause stop = StopCause::kNone;
  int stop_signal = 0;          // what was sent, when `stop` is set
  bool killed = false;          // SIGKILL after the stop timeout ran out
  int64_t stop_timeout_ms = 0;  // that timeout, when `killed`
  int64_t ready_timeout_ms = 0; // kNotReady: the timeout it missed
  // kHealth, kWatchdog, kMemory: what the daemon saw, e.g. "GET /health:
  // HTTP 500", "no WATCHDOG=1 within 2s", "70 MiB > 64 MiB".
  std::string fault{};
  // "exit 3", "signal KILL" (by itself: a crash, or the kernel's kill);
  // "stopped (SIGTERM)" (the stop signal ended it, or it exited 0 after
  // it), "stopped (SIGTERM): exit 3"; "killed (stop timeout 10s)" (it
  // outlived the stop timeout); prefixed "not ready within 1m: ",
  // "health check failed: FAULT: ", "watchdog: FAULT: " or "memory limit
  // (FAULT): " when it was stopped for that; "oom-killed (memory.max):
  // signal KILL" for the kernel's kill.
  std::string Describe() const;
  // "exited", "stopped", "stop-timeout", "not-ready", "health",
  // "watchdog", "memory-limit" or "oom-killed" (ps --json). A fault's
  // cause wins over "stop-timeout" (the exit says it was killed).
  std::string_view Cause() const;
  bool operator==(const ExitInfo&) const = default;
};

}  // namespace relsupd
