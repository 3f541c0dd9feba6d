#include "daemon/notify/notifier.h"

#include <systemd/sd-daemon.h>
#include <unistd.h>

namespace relsupd {

Notifier::Notifier(uv_loop_t* loop) {
  uv_timer_init(loop, timer_.get());
  timer_->data = this;
}

void Notifier::StartWatchdog() {
  uint64_t usec = 0;
  // unset_environment=0: children get a clean environment of their own.
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
  watchdog_usec_ = usec;
  uint64_t period_ms = usec / 2000;
  if (period_ms == 0) period_ms = 1;
  sd_notify(0, "WATCHDOG=1");
  uv_timer_start(timer_.get(), &Notifier::OnWatchdog, period_ms, period_ms);
}

void Notifier::OnWatchdog(uv_timer_t*) { sd_notify(0, "WATCHDOG=1"); }

void Notifier::Ready(const std::string& status) {
  sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%d", status.c_str(),
             static_cast<int>(getpid()));
}

void Notifier::Status(const std::string& status) {
  sd_notifyf(0, "STATUS=%s", status.c_str());
}

void Notifier::Stopping(const std::string& status) {
  uv_timer_stop(timer_.get());
  sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status.c_str());
}

void Notifier::Reloading() { sd_notify(0, "RELOADING=1"); }

void Notifier::ReloadDone(const std::string& status) {
  sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
}

}  // namespace relsupd
