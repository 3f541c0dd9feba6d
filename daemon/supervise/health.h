#pragma once
// HealthMonitor: the health check of one ready instance (`health:` of its
// process type), as Kamal's or Docker's HEALTHCHECK.
//
// Every `interval` it runs one try of the check (check_attempt.h) with
// `timeout`; a pass resets the count of failures; after `failures` failed
// tries in a row it calls `on_unhealthy` once, with what the last try saw,
// and stops. A try still running when the next is due is not doubled: the
// next starts `interval` after it ended. The owner (Instance) starts it
// when the instance becomes ready and destroys it when it stops being
// ready, which cancels a try in progress. Loop thread only.

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "daemon/base/uv_handle.h"
#include "daemon/config/process_file.h"
#include "daemon/supervise/check_attempt.h"
#include "daemon/supervise/spawn.h"

namespace relsupd {

class HealthMonitor {
 public:
  // REQUIRES: health.check.kind is kTcp, kHttp or kExec. The first try is
  // `first_ms` from now. `exec_slots` (null: no limit) counts the exec
  // checks that may still start daemon-wide: an exec try takes one while it
  // runs, and waits kSlotWaitMs while none is free.
  HealthMonitor(uv_loop_t* loop, const HealthCheck& health, SpawnRequest exec_template,
                int64_t first_ms, int* exec_slots,
                std::function<void(const std::string& why)> on_unhealthy);
  ~HealthMonitor();
  static constexpr int64_t kSlotWaitMs = 100;
  static constexpr uint64_t kBatchMs = 50;
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  int failures_in_row() const { return failures_; }

 private:
  void Arm(int64_t ms);
  void Try();
  void Done(const CheckResult& r);

  uv_loop_t* loop_;
  HealthCheck health_;
  SpawnRequest exec_template_;
  std::function<void(const std::string&)> on_unhealthy_;
  UvHandle<uv_timer_t> timer_;
  std::unique_ptr<CheckAttempt> attempt_;
  int* exec_slots_;
  bool holds_slot_ = false;
  int failures_ = 0;
};

}  // namespace relsupd
