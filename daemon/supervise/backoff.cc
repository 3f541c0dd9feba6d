#include "daemon/supervise/backoff.h"

#include <algorithm>

namespace relsupd {

Backoff::Backoff(BackoffPolicy policy, std::function<double()> random01)
    : policy_(policy), random01_(std::move(random01)) {}

void Backoff::Started(int64_t now_ms) { started_ms_ = now_ms; }

int64_t Backoff::Exited(int64_t now_ms) {
  if (started_ms_ >= 0 && now_ms - started_ms_ >= policy_.reset_after_ms)
    next_delay_ms_ = 0;  // it ran long enough: a fresh start
  started_ms_ = -1;
  exits_.push_back(now_ms);
  auto first = exits_.begin();
  while (first != exits_.end() && now_ms - *first > policy_.window_ms) ++first;
  exits_.erase(exits_.begin(), first);
  ++restarts_;
  int64_t delay = next_delay_ms_;
  next_delay_ms_ = delay == 0 ? policy_.initial_ms
                              : std::min(delay * 2, policy_.cap_ms);
  if (delay > 0 && policy_.jitter > 0) {
    delay += static_cast<int64_t>(static_cast<double>(delay) * policy_.jitter *
                                  random01_());
    delay = std::min(delay, policy_.cap_ms);
  }
  return delay;
}

bool Backoff::CrashLimitHit() const {
  return static_cast<int>(exits_.size()) > policy_.max_crashes;
}

void Backoff::Reset() {
  started_ms_ = -1;
  next_delay_ms_ = 0;
  exits_.clear();
}

BackoffSnapshot Backoff::Snapshot() const {
  return {started_ms_, next_delay_ms_, restarts_, exits_};
}

void Backoff::Restore(const BackoffSnapshot& snapshot) {
  started_ms_ = snapshot.started_ms;
  next_delay_ms_ = snapshot.next_delay_ms;
  restarts_ = snapshot.restarts;
  exits_ = snapshot.exits;
}

}  // namespace relsupd
