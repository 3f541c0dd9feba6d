#pragma once
// ReadJobs: the thread-pool work that control requests of read-only methods
// start (release.verify, the file parts of release.show and release.diff),
// held to a budget so that no peer can fill libuv's pool (4 threads by
// default) and an admin's activate or rollback, which verifies on the pool
// too but not through here, never waits behind it.
//
// At most `running` jobs (ReadJobLimits) are on the pool at once; the rest
// wait here, in order, at most `waiting` of them. A job with the same key
// as one running or waiting (same method, app and release) is not started
// again: its caller joins it and gets the same result. Each uid may have at
// most `per_uid` calls waiting or running; past any limit a call gets kBusy
// naming it. Loop thread only; the work itself runs wherever `start` puts
// it (RunOffLoop).

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/control/dispatcher.h"

namespace relsupd {

struct ReadJobLimits {
  size_t running = 1;   // on the pool at once
  size_t waiting = 32;  // queued behind them, all peers together
  size_t per_uid = 4;   // waiting or running, joined ones included
};

class ReadJobs {
 public:
  // Starts the work; calls its argument once, on the loop, with the result.
  using Start = std::function<void(Reply)>;

  explicit ReadJobs(ReadJobLimits limits = {}) : limits_(limits) {}
  ReadJobs(const ReadJobs&) = delete;
  ReadJobs& operator=(const ReadJobs&) = delete;

  // Runs (or joins) the job `key` for `uid`; `reply` gets its result.
  void Submit(uid_t uid, const std::string& key, Start start, Reply reply);

  // Shutdown: waiting jobs are dropped unanswered and none starts any
  // more, so the loop only waits for the one running.
  void Stop();

  size_t running() const { return running_; }
  // daemon-reexec's drain: queued jobs do not start until Resume (the
  // running ones finish).
  void Pause() { paused_ = true; }
  void Resume() {
    paused_ = false;
    StartNext();
  }
  size_t waiting() const { return queue_.size(); }

 private:
  struct Job {
    std::string key;
    Start start;
    std::vector<std::pair<uid_t, Reply>> waiters;
    bool started = false;
  };
  void StartNext();
  void Finish(const std::shared_ptr<Job>& job, Result<rpc::Json> result);

  const ReadJobLimits limits_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // running or waiting
  std::deque<std::shared_ptr<Job>> queue_;            // waiting, in order
  std::map<uid_t, size_t> per_uid_;
  size_t running_ = 0;
  bool stopped_ = false;
  bool paused_ = false;
  // Lets completions that come after the owner died know it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

 public:
  ~ReadJobs() { *alive_ = false; }
};

}  // namespace relsupd
