#pragma once
// CheckAttempt: one try of a tcp, http or exec check of an instance, the
// unit both the ready probe (readiness.h) and the health monitor
// (health.h) are made of.
//
// tcp passes when a connect to 127.0.0.1:PORT succeeds; http when a GET of
// the URL answers a 2xx status line; exec when `sh -c CMD`, run as the
// instance runs (user, cwd, env, and its cgroup where it has one), exits 0;
// whatever the exec check leaves in its process group is killed when it
// ends (a child that left the group lives on, unless the cgroup ends it). The result says what was seen,
// for a log line or an exit reason ("GET http://127.0.0.1:8000/health: HTTP
// 500", "tcp 127.0.0.1:6379: connection refused", "exec 'pg_isready':
// exit 2", "...: no answer within 2s"). Loop thread only.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "daemon/base/status.h"
#include "daemon/config/process_file.h"
#include "daemon/supervise/spawn.h"

namespace relsupd {

struct CheckResult {
  bool passed = false;
  std::string detail;  // what was seen; empty when it passed
};

class CheckAttempt {
 public:
  virtual ~CheckAttempt() = default;

  // Starts one try of `check` (kTcp, kHttp or kExec). `done` runs once,
  // always from a later loop callback (never inside Start), unless the
  // attempt is destroyed first, which cancels it (an exec check's process
  // group is killed). `timeout_ms` > 0: the try fails when it has no answer
  // by then. `exec_template` is how an exec check runs; its argv is
  // replaced by the check's command.
  static Result<std::unique_ptr<CheckAttempt>> Start(
      uv_loop_t* loop, const ReadyCheck& check, const SpawnRequest& exec_template,
      int64_t timeout_ms, std::function<void(CheckResult)> done);
};

}  // namespace relsupd
