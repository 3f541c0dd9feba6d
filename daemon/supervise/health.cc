#include "daemon/supervise/health.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace relsupd {

HealthMonitor::HealthMonitor(uv_loop_t* loop, const HealthCheck& health,
                             SpawnRequest exec_template, int64_t first_ms, int* exec_slots,
                             std::function<void(const std::string&)> on_unhealthy)
    : loop_(loop), health_(health), exec_template_(std::move(exec_template)),
      on_unhealthy_(std::move(on_unhealthy)), exec_slots_(exec_slots) {
  uv_timer_init(loop_, timer_.get());
  timer_->data = this;
  Arm(first_ms);
}

HealthMonitor::~HealthMonitor() {
  if (holds_slot_) ++*exec_slots_;
}

void HealthMonitor::Arm(int64_t ms) {
  // Due times are rounded up to a multiple of kBatchMs of the loop's
  // clock, so that the checks of many instances run in a few loop
  // iterations a second instead of one wake-up each.
  const uint64_t now = uv_now(loop_);
  const uint64_t due = (now + static_cast<uint64_t>(std::max<int64_t>(ms, 0)) + kBatchMs - 1) /
                       kBatchMs * kBatchMs;
  ms = static_cast<int64_t>(due - now);
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (auto* self = static_cast<HealthMonitor*>(t->data)) self->Try();
      },
      static_cast<uint64_t>(std::max<int64_t>(ms, 0)), 0);
}

void HealthMonitor::Try() {
  if (health_.check.kind == ReadyKind::kExec && exec_slots_ != nullptr) {
    if (*exec_slots_ <= 0) return Arm(kSlotWaitMs);
    --*exec_slots_;
    holds_slot_ = true;
  }
  if (auto now = CheckTcpAtOnce(health_.check)) return Done(*now);
  auto attempt = CheckAttempt::Start(loop_, health_.check, exec_template_, health_.timeout_ms,
                                     [this](CheckResult r) { Done(r); });
  if (!attempt.ok()) {
    // Not a fault of the instance (a URL the parser let through that the
    // probe cannot use): counted as a failure so that it shows.
    return Done({false, attempt.status().message()});
  }
  attempt_ = std::move(*attempt);
}

void HealthMonitor::Done(const CheckResult& r) {
  attempt_.reset();
  if (holds_slot_) {
    ++*exec_slots_;
    holds_slot_ = false;
  }
  if (r.passed) {
    failures_ = 0;
    return Arm(health_.interval_ms);
  }
  ++failures_;
  spdlog::debug("health check failed ({} of {}): {}", failures_, health_.failures, r.detail);
  if (failures_ < health_.failures) return Arm(health_.interval_ms);
  auto on_unhealthy = on_unhealthy_;
  on_unhealthy(r.detail + (health_.failures > 1
                               ? " (" + std::to_string(failures_) + " times in a row)"
                               : ""));  // may destroy this monitor
}

}  // namespace relsupd
