#pragma once
// RunOffLoop: runs `work` on libuv's thread pool, then `done` with its
// result on the loop thread.
//
// Only what `work` captures crosses threads: capture copies of plain data,
// never loop-owned objects. `done` runs on the loop and may touch them; if
// its owner can die first, it must check (e.g. a weak_ptr). Loop thread.

#include <uv.h>

#include <functional>
#include <optional>
#include <utility>

namespace relsupd {

template <typename T>
void RunOffLoop(uv_loop_t* loop, std::function<T()> work,
                std::function<void(T)> done) {
  struct Job {
    uv_work_t req;
    std::function<T()> work;
    std::function<void(T)> done;
    std::optional<T> result;
  };
  auto* job = new Job{{}, std::move(work), std::move(done), std::nullopt};
  job->req.data = job;
  uv_queue_work(
      loop, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<Job*>(req->data);
        j->result.emplace(j->work());
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<Job> j(static_cast<Job*>(req->data));
        if (j->result) j->done(std::move(*j->result));
      });
}

}  // namespace relsupd
