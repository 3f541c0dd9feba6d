#include "daemon/control/read_jobs.h"

#include <spdlog/spdlog.h>

namespace relsupd {

void ReadJobs::Submit(uid_t uid, const std::string& key, Start start,
                      Reply reply) {
  if (stopped_)
    return reply(Status(StatusCode::kBusy, "busy: the daemon is stopping"));
  size_t& mine = per_uid_[uid];
  if (mine >= limits_.per_uid) {
    return reply(Status(StatusCode::kBusy,
                        "busy: uid " + std::to_string(uid) + " already has " +
                            std::to_string(limits_.per_uid) +
                            " release reads (verify, show, diff) waiting or running "
                            "(the limit per uid); try again when they are done"));
  }
  if (auto it = jobs_.find(key); it != jobs_.end()) {
    ++mine;
    it->second->waiters.emplace_back(uid, std::move(reply));
    return;
  }
  if (running_ >= limits_.running && queue_.size() >= limits_.waiting) {
    if (mine == 0) per_uid_.erase(uid);
    return reply(Status(StatusCode::kBusy,
                        "busy: " + std::to_string(limits_.waiting) +
                            " release reads (verify, show, diff) are waiting already "
                            "(the limit for all peers); try again later"));
  }
  ++mine;
  auto job = std::make_shared<Job>();
  job->key = key;
  job->start = std::move(start);
  job->waiters.emplace_back(uid, std::move(reply));
  jobs_.emplace(key, job);
  queue_.push_back(std::move(job));
  StartNext();
}

void ReadJobs::Stop() {
  stopped_ = true;
  for (const auto& job : queue_) jobs_.erase(job->key);
  queue_.clear();
}

void ReadJobs::StartNext() {
  while (!stopped_ && !paused_ && running_ < limits_.running && !queue_.empty()) {
    std::shared_ptr<Job> job = queue_.front();
    queue_.pop_front();
    ++running_;
    job->started = true;
    Start start = std::move(job->start);
    start([this, alive = alive_, job](Result<rpc::Json> result) {
      if (!*alive) return;
      Finish(job, std::move(result));
    });
  }
}

void ReadJobs::Finish(const std::shared_ptr<Job>& job, Result<rpc::Json> result) {
  --running_;
  jobs_.erase(job->key);
  std::vector<std::pair<uid_t, Reply>> waiters = std::move(job->waiters);
  for (auto& [uid, reply] : waiters) {
    if (auto it = per_uid_.find(uid); it != per_uid_.end() && --it->second == 0)
      per_uid_.erase(it);
  }
  // Every waiter gets the result; the last one may take it.
  for (size_t i = 0; i < waiters.size(); ++i)
    waiters[i].second(i + 1 == waiters.size() ? std::move(result) : result);
  StartNext();
}

}  // namespace relsupd
