#pragma once
// LongPolls: requests that wait for news instead of being asked again.
//
// `logs -f` and `events -f` send a read with `wait: true`; when nothing new
// matches, the handler parks it here and the daemon answers it the moment
// something new comes (Poke), or empty after kMaxWaitMs, so a follower
// prints a line as soon as it exists and no client polls on a timer.
//
// A waiter is a key set (the apps it follows; empty: every key) and an
// `attempt` that runs its query again and replies when it has something:
// attempt(false) returns whether it replied; attempt(true) must reply (the
// wait is over: its deadline, a re-exec's drain, shutdown). Pokes are
// gathered and the matching waiters run once per loop turn, from a timer,
// never inside the Poke (which comes from deep inside a log append or a
// state change). Limits: kMaxWaiters in all, kMaxWaitersPerUid for one
// uid; past them Add fails (kBusy) and the caller answers at once with
// that error, so a peer cannot park an unbounded number of replies.
// Loop thread only.

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"

namespace relsupd {

class LongPolls {
 public:
  static constexpr int64_t kMaxWaitMs = 30'000;
  static constexpr size_t kMaxWaiters = 512;
  static constexpr size_t kMaxWaitersPerUid = 32;

  using Attempt = std::function<bool(bool must_reply)>;

  // REQUIRES: `loop` outlives this object, or Close() is called first.
  explicit LongPolls(uv_loop_t* loop);
  ~LongPolls();
  LongPolls(const LongPolls&) = delete;
  LongPolls& operator=(const LongPolls&) = delete;

  // Parks a waiter on `keys` (empty: any key) for at most `wait_ms`
  // (capped at kMaxWaitMs), for the client on control connection
  // `connection` (Peer::connection_id; 0: none, never forgotten). kBusy
  // past the limits; the attempt is then not kept.
  Status Add(uid_t uid, std::vector<std::string> keys, int64_t wait_ms, Attempt attempt,
             uint64_t connection = 0);
  // Connection `connection` is gone: its waiters are dropped unanswered in
  // the next loop turn, and their places in the limits freed, rather than
  // held until their deadline; a request of it still queued when it went
  // (the last kRecentlyGone connections are remembered) is not parked at
  // all: Add returns Ok and keeps nothing. Only notes the id: callable
  // from anywhere, an attempt's reply included.
  void Forget(uint64_t connection);
  static constexpr size_t kRecentlyGone = 1024;
  // Something under `key` changed: the waiters on it try again soon.
  void Poke(const std::string& key);
  // Every waiter replies now (attempt(true)) and is dropped: before a
  // re-exec's drain, and at shutdown.
  void AnswerAll();
  void Close();
  size_t size() const { return waiters_.size(); }

 private:
  struct Waiter {
    uid_t uid = 0;
    std::vector<std::string> keys;
    int64_t deadline_ms = 0;
    Attempt attempt;
    uint64_t connection = 0;
  };
  void Arm();
  static void OnTimer(uv_timer_t* timer);
  void Run();
  static bool Wants(const Waiter& w, const std::set<std::string, std::less<>>& poked);

  uv_loop_t* loop_;
  UvHandle<uv_timer_t> timer_;
  std::list<Waiter> waiters_;
  std::map<uid_t, size_t> per_uid_;
  std::set<std::string, std::less<>> poked_;
  std::set<uint64_t> forgotten_;
  // Connection ids are never reused: the newest kRecentlyGone dropped.
  std::deque<uint64_t> gone_order_;
  std::set<uint64_t> gone_;
  bool running_ = false;
};

}  // namespace relsupd
