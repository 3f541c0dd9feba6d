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
#include <optional>
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

// A tcp check decided without the loop, when the kernel has the answer at
// once (a loopback connect is usually complete or refused by the time
// connect(2) returns; a second connect(2) reads which): the result, or
// nullopt when it is not known yet (or `check` is not tcp), and the caller
// starts a CheckAttempt instead. Saves the loop a registration, a wake-up
// and a timer per check: 1,000 checks a second cost the daemon about half
// as much CPU (bench/operate).
std::optional<CheckResult> CheckTcpAtOnce(const ReadyCheck& check);

}  // namespace relsupd
