#pragma once
// RunOffLoop: runs `work` on libuv's thread pool, then `done` with its
// result on the loop thread.
//
// Only what `work` captures crosses threads: capture copies of plain data,
// never loop-owned objects. `done` runs on the loop and may touch them; if
// its owner can die first, it must check (e.g. a weak_ptr). Loop thread.
//
// InFlightWork() counts the jobs queued here whose `done` has not returned
// yet, across every loop of the process: daemon-reexec waits for it to
// reach 0 before it writes its handover (docs/reexec.md §2.5).

#include <uv.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

namespace relsupd {

namespace uv_work_internal {
inline std::atomic<size_t> in_flight{0};
}  // namespace uv_work_internal

// Jobs queued by RunOffLoop whose `done` has not finished (queued, running
// on the pool, or waiting for the loop). Any thread.
inline size_t InFlightWork() { return uv_work_internal::in_flight.load(); }

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
  uv_work_internal::in_flight.fetch_add(1);
  uv_queue_work(
      loop, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<Job*>(req->data);
        j->result.emplace(j->work());
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<Job> j(static_cast<Job*>(req->data));
        // Counted out after `done`: its ledger write or reply is part of
        // the job.
        if (j->result) j->done(std::move(*j->result));
        uv_work_internal::in_flight.fetch_sub(1);
      });
}

}  // namespace relsupd
