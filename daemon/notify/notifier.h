#pragma once
// Notifier: the daemon's sd_notify(3) messages to systemd.
//
// READY=1, STATUS=, STOPPING=1 and WATCHDOG=1 at half of WATCHDOG_USEC
// (sd_watchdog_enabled). Without NOTIFY_SOCKET every call does nothing.
// Owns one uv timer; loop thread only.

#include <uv.h>

#include <string>

#include "daemon/base/uv_handle.h"

namespace relsupd {

class Notifier {
 public:
  explicit Notifier(uv_loop_t* loop);
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Starts the watchdog timer when systemd asked for one.
  void StartWatchdog();
  void Ready(const std::string& status);
  void Status(const std::string& status);
  void Stopping(const std::string& status);
  // RELOADING=1 with MONOTONIC_USEC (systemd >= 253 wants it), and a
  // STATUS when given; then a WATCHDOG=1, so a re-exec starts fed.
  void Reloading(const std::string& status = "");
  // READY=1 after a re-exec: the same MAINPID, MONOTONIC_USEC, STATUS.
  void ReexecDone(const std::string& status);
  void ReloadDone(const std::string& status);
  // The watchdog period in microseconds, 0 when none is set.
  uint64_t watchdog_usec() const { return watchdog_usec_; }

 private:
  static void OnWatchdog(uv_timer_t* t);
  UvHandle<uv_timer_t> timer_;
  uint64_t watchdog_usec_ = 0;
};

}  // namespace relsupd
