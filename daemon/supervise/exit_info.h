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
};

struct ExitInfo {
  int64_t time_ms = 0;  // wall clock
  int64_t status = 0;
  int signal = 0;
  StopCause stop = StopCause::kNone;
  int stop_signal = 0;          // what was sent, when `stop` is set
  bool killed = false;          // SIGKILL after the stop timeout ran out
  int64_t stop_timeout_ms = 0;  // that timeout, when `killed`
  int64_t ready_timeout_ms = 0; // kNotReady: the timeout it missed
  // "exit 3", "signal KILL" (by itself: a crash, or the kernel's kill);
  // "stopped (SIGTERM)" (the stop signal ended it, or it exited 0 after
  // it), "stopped (SIGTERM): exit 3"; "killed (stop timeout 10s)" (it
  // outlived the stop timeout); prefixed "not ready within 1m: " when it
  // was stopped for that.
  std::string Describe() const;
  // "exited", "stopped", "stop-timeout" or "not-ready" (ps --json).
  std::string_view Cause() const;
  bool operator==(const ExitInfo&) const = default;
};

}  // namespace relsupd
