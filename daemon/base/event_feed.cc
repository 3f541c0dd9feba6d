#include "daemon/base/event_feed.h"

#include <algorithm>
#include <utility>

namespace relsupd {

void EventFeed::Add(FeedEntry entry, int64_t now_ms) {
  entry.seq = next_seq_++;
  if (entry.time_ms == 0) entry.time_ms = now_ms;
  if (entries_.size() >= kCapacity) entries_.pop_front();
  entries_.push_back(std::move(entry));
  if (on_add_) on_add_(entries_.back());
}

std::vector<FeedEntry> EventFeed::After(uint64_t after, const std::string& app, size_t limit,
                                        uint64_t* scanned) const {
  std::vector<FeedEntry> out;
  // A cursor past the newest (from before a restart of the feed) counts
  // as "now".
  *scanned = std::min(after, last_seq());
  if (entries_.empty() || after >= entries_.back().seq) return out;
  // Consecutive seqs: the first one after `after` is found by index.
  size_t i = after < entries_.front().seq ? 0 : static_cast<size_t>(after + 1 - entries_.front().seq);
  for (; i < entries_.size() && out.size() < limit; ++i) {
    *scanned = entries_[i].seq;
    if (app.empty() || entries_[i].app == app) out.push_back(entries_[i]);
  }
  return out;
}

std::vector<FeedEntry> EventFeed::Newest(const std::string& app, size_t count) const {
  std::vector<FeedEntry> out;
  for (auto it = entries_.rbegin(); it != entries_.rend() && out.size() < count; ++it)
    if (app.empty() || it->app == app) out.push_back(*it);
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace relsupd
