#include "daemon/base/uv_handle.h"

namespace relsupd {

int CloseLoop(uv_loop_t* loop, int max_iterations) {
  int rc = uv_loop_close(loop);
  for (int i = 0; rc == UV_EBUSY && i < max_iterations; ++i) {
    // Handles still open belong to owners that were not destroyed; close
    // them here so the loop can end. Their owners must not touch them again.
    uv_walk(
        loop,
        [](uv_handle_t* h, void*) {
          if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
    // With every handle closing, only requests keep the loop alive, e.g.
    // thread-pool jobs: wait for them, since their threads still use it.
    uv_run(loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(loop);
  }
  return rc;
}

}  // namespace relsupd
