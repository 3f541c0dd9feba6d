#pragma once
// ReadyProbe: the tcp, http and exec ready checks of one instance.
//
// A probe retries until its check passes, then calls `on_ready` once; it
// never gives up by itself (the instance owns the ready timeout). `notify`
// and `none` need no probe. Destroying the probe cancels it. Loop thread
// only.

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "daemon/base/status.h"
#include "daemon/config/process_file.h"
#include "daemon/config/ready_sockets.h"
#include "daemon/supervise/spawn.h"

namespace relsupd {


class ReadyProbe {
 public:
  virtual ~ReadyProbe() = default;

  // `exec_template` is how an exec check runs (user, cwd, env of the
  // instance); its argv is replaced by the check's command.
  static Result<std::unique_ptr<ReadyProbe>> Start(
      uv_loop_t* loop, const ReadyCheck& check,
      const SpawnRequest& exec_template, std::function<void()> on_ready);

  static constexpr int64_t kRetryMs = 100;
};

}  // namespace relsupd
