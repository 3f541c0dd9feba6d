#include "daemon/notify/notifier.h"

#include <systemd/sd-daemon.h>
#include <time.h>
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

namespace {
unsigned long long MonotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<unsigned long long>(ts.tv_sec) * 1'000'000ULL +
         static_cast<unsigned long long>(ts.tv_nsec) / 1'000ULL;
}
}  // namespace

void Notifier::Reloading(const std::string& status) {
  if (status.empty())
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", MonotonicUsec());
  else
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%s", MonotonicUsec(),
               status.c_str());
  if (watchdog_usec_ != 0) sd_notify(0, "WATCHDOG=1");
}

void Notifier::ReexecDone(const std::string& status) {
  sd_notifyf(0, "READY=1\nMAINPID=%d\nMONOTONIC_USEC=%llu\nSTATUS=%s",
             static_cast<int>(getpid()), MonotonicUsec(), status.c_str());
}

void Notifier::ReloadDone(const std::string& status) {
  sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
}

}  // namespace relsupd
