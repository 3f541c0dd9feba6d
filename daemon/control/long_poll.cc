#include "daemon/control/long_poll.h"

#include <algorithm>
#include <utility>

namespace relsupd {

LongPolls::LongPolls(uv_loop_t* loop) : loop_(loop) {
  uv_timer_init(loop_, timer_.get());
  timer_->data = this;
}

LongPolls::~LongPolls() { Close(); }

void LongPolls::Close() {
  AnswerAll();
  timer_.Close();
}

Status LongPolls::Add(uid_t uid, std::vector<std::string> keys, int64_t wait_ms,
                      Attempt attempt, uint64_t connection) {
  if (connection != 0 && gone_.count(connection) != 0) return Status::Ok();  // no one to answer
  if (waiters_.size() >= kMaxWaiters)
    return Status(StatusCode::kBusy, std::to_string(kMaxWaiters) +
                                         " requests already wait for news (the daemon's limit); "
                                         "retry in a moment");
  size_t& mine = per_uid_[uid];
  if (mine >= kMaxWaitersPerUid)
    return Status(StatusCode::kBusy, "uid " + std::to_string(uid) + " already has " +
                                         std::to_string(kMaxWaitersPerUid) +
                                         " requests waiting for news (the limit per user)");
  ++mine;
  const int64_t wait = std::clamp<int64_t>(wait_ms, 0, kMaxWaitMs);
  waiters_.push_back(Waiter{uid, std::move(keys),
                            static_cast<int64_t>(uv_now(loop_)) + wait, std::move(attempt),
                            connection});
  Arm();
  return Status::Ok();
}

void LongPolls::Poke(const std::string& key) {
  if (waiters_.empty()) return;
  if (poked_.insert(key).second) Arm();
}

void LongPolls::Forget(uint64_t connection) {
  if (connection == 0) return;
  if (gone_.insert(connection).second) {
    gone_order_.push_back(connection);
    if (gone_order_.size() > kRecentlyGone) {
      gone_.erase(gone_order_.front());
      gone_order_.pop_front();
    }
  }
  if (!waiters_.empty() && forgotten_.insert(connection).second) Arm();
}

void LongPolls::AnswerAll() {
  if (running_) {
    // From inside an attempt: every waiter is late, answered by the next
    // Run (Arm, after this one, starts it at once).
    for (Waiter& w : waiters_) w.deadline_ms = 0;
    return;
  }
  std::list<Waiter> all = std::move(waiters_);
  waiters_.clear();
  per_uid_.clear();
  poked_.clear();
  forgotten_.clear();
  for (Waiter& w : all) w.attempt(true);
  if (timer_.initialized()) uv_timer_stop(timer_.get());
}

bool LongPolls::Wants(const Waiter& w, const std::set<std::string, std::less<>>& poked) {
  if (poked.empty()) return false;
  if (w.keys.empty()) return true;
  return std::any_of(w.keys.begin(), w.keys.end(),
                     [&poked](const std::string& k) { return poked.count(k) != 0; });
}

void LongPolls::Arm() {
  if (running_ || !timer_.initialized()) return;
  if (waiters_.empty()) {
    uv_timer_stop(timer_.get());
    return;
  }
  uint64_t due = 0;
  if (poked_.empty() && forgotten_.empty()) {
    int64_t first = INT64_MAX;
    for (const Waiter& w : waiters_) first = std::min(first, w.deadline_ms);
    const int64_t now = static_cast<int64_t>(uv_now(loop_));
    due = first > now ? static_cast<uint64_t>(first - now) : 0;
  }
  uv_timer_start(timer_.get(), &LongPolls::OnTimer, due, 0);
}

void LongPolls::OnTimer(uv_timer_t* timer) {
  if (auto* self = static_cast<LongPolls*>(timer->data)) self->Run();
}

void LongPolls::Run() {
  running_ = true;
  const int64_t now = static_cast<int64_t>(uv_now(loop_));
  // Pokes that come while the attempts run (their replies write to
  // sockets, nothing else) are for the next turn.
  std::set<std::string, std::less<>> poked = std::move(poked_);
  poked_.clear();
  const std::set<uint64_t> gone = std::move(forgotten_);
  forgotten_.clear();
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    const bool late = it->deadline_ms <= now;
    bool done = gone.count(it->connection) != 0;  // no one to answer
    if (!done && (late || Wants(*it, poked))) done = it->attempt(late) || late;
    if (done) {
      if (--per_uid_[it->uid] == 0) per_uid_.erase(it->uid);
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  running_ = false;
  Arm();
}

}  // namespace relsupd
