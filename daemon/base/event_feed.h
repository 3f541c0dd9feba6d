#pragma once
// EventFeed: what happened in this daemon image, newest last, for
// `relsupd ctl events [-f]`: every ledger event as it is committed
// (deploys, activations, rollbacks, config changes, failures) and every
// change of an instance's state (starting, ready, exited, backoff, ...).
//
// In memory only, the last kCapacity entries; seq numbers start at 1 in
// each image, and `id()` names the image's feed so that a follower that
// reconnects after a restart or re-exec knows to start over (the durable
// record is the ledger's history). Add calls `on_add` (the daemon pokes
// the waiting `events` requests with it). Loop thread only.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace relsupd {

struct FeedEntry {
  uint64_t seq = 0;
  int64_t time_ms = 0;  // wall clock
  std::string app;
  // A ledger event's kind (activated, rolled-back, ...), or "instance".
  std::string kind;
  std::string release;  // "v3", or ""
  std::string process;  // "web.1" for an instance, else ""
  std::string state;    // the instance's new state, else ""
  // The ledger event's detail, or what an instance's state change says
  // (its last exit's reason when it exited).
  std::string detail;
  std::string actor;    // who, for a ledger event
  int64_t event_id = 0;  // the ledger event's id, else 0
};

class EventFeed {
 public:
  static constexpr size_t kCapacity = 1024;

  explicit EventFeed(std::string id) : id_(std::move(id)) {}
  EventFeed(const EventFeed&) = delete;
  EventFeed& operator=(const EventFeed&) = delete;

  void set_on_add(std::function<void(const FeedEntry&)> f) { on_add_ = std::move(f); }
  // Assigns seq (and time_ms when 0: `now_ms`).
  void Add(FeedEntry entry, int64_t now_ms);
  // Entries with seq > after (of `app` when not empty), oldest first, at
  // most `limit`; `*scanned` is the seq a next call may start after (the
  // last entry looked at, matching or not).
  std::vector<FeedEntry> After(uint64_t after, const std::string& app, size_t limit,
                               uint64_t* scanned) const;
  // The newest `count` entries (of `app` when not empty), oldest first.
  std::vector<FeedEntry> Newest(const std::string& app, size_t count) const;
  uint64_t last_seq() const { return next_seq_ - 1; }
  const std::string& id() const { return id_; }

 private:
  std::string id_;
  uint64_t next_seq_ = 1;
  std::deque<FeedEntry> entries_;
  std::function<void(const FeedEntry&)> on_add_;
};

}  // namespace relsupd
