#pragma once
// Restart backoff and the crash window of one instance.
//
// The first restart after a healthy run happens at once; each further one
// waits twice as long as the last, from `initial_ms` up to `cap_ms`, with
// up to `jitter` (a fraction) added so that instances crashing together do
// not restart together. An instance that stays up `reset_after_ms` earns a
// fresh start. More than `max_crashes` exits within `window_ms` hit the
// crash limit. Times come from the caller's clock. Value type; any thread.

#include <cstdint>
#include <functional>
#include <vector>

#include "daemon/supervise/snapshot.h"

namespace relsupd {

struct BackoffPolicy {
  int64_t initial_ms = 100;
  int64_t cap_ms = 30'000;
  int64_t reset_after_ms = 10'000;
  double jitter = 0.1;
  int max_crashes = 10;
  int64_t window_ms = 60'000;
};

class Backoff {
 public:
  // `random01` returns a number in [0, 1); tests pass a fixed one.
  Backoff(BackoffPolicy policy, std::function<double()> random01);

  // The instance started running at `now_ms`.
  void Started(int64_t now_ms);
  // The instance exited at `now_ms`. Returns the delay before the restart.
  int64_t Exited(int64_t now_ms);
  // True when the exits recorded so far exceed max_crashes in window_ms.
  bool CrashLimitHit() const;
  // Forgets the history: a start by hand after `failed`.
  void Reset();
  int restarts() const { return restarts_; }
  // The policy this history is judged by (a reload's reaches new instances).
  const BackoffPolicy& policy() const { return policy_; }

  // The history, for a daemon-reexec (snapshot.h), and back: a Backoff
  // restored from Snapshot() gives the same delays and crash-limit answers.
  // The policy and random01 stay this object's own (they come from the
  // config).
  BackoffSnapshot Snapshot() const;
  void Restore(const BackoffSnapshot& snapshot);

 private:
  BackoffPolicy policy_;
  std::function<double()> random01_;
  int64_t started_ms_ = -1;
  int64_t next_delay_ms_ = 0;  // 0: the next restart is immediate
  int restarts_ = 0;
  // Times of exits within the window, oldest first. A vector, not a deque:
  // libstdc++'s deque allocates 576 bytes before its first element, and
  // most instances never exit.
  std::vector<int64_t> exits_;
};

}  // namespace relsupd
