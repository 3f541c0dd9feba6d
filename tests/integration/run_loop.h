#pragma once
// Runs a libuv loop without blocking, a turn each millisecond, until `done`
// holds (true) or 10 s pass (false). The integration tests' one way to
// wait for what a loop delivers.

#include <uv.h>

#include <functional>

#include "tests/support/wait.h"

namespace relsupd::support {

inline bool RunLoopUntil(uv_loop_t* loop, const std::function<bool()>& done) {
  return WaitUntil(
      [&] {
        uv_run(loop, UV_RUN_NOWAIT);
        return done();
      },
      10'000, 1);
}

}  // namespace relsupd::support
