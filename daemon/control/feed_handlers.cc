// The reads that can follow: `logs` and `events`. With `wait: true` a
// follow that finds nothing new is parked in LongPolls and answered as soon
// as something new matches (or empty after LongPolls::kMaxWaitMs), so a
// follower prints a line the moment it exists without asking on a timer.
#include <re2/re2.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>

#include "daemon/base/event_feed.h"
#include "daemon/base/release_id.h"
#include "daemon/base/suggest.h"
#include "daemon/config/process_file.h"
#include "daemon/control/handlers.h"
#include "daemon/control/long_poll.h"
#include "daemon/control/paging.h"
#include "daemon/control/params.h"
#include "daemon/logs/log_store.h"
#include "daemon/protocol/methods.h"
#include "daemon/store/slots.h"

namespace relsupd {
namespace {

using rpc::Json;
namespace method = rpc::method;

constexpr int64_t kMaxLogLines = 100'000;
constexpr size_t kMaxGrepBytes = 1024;
constexpr int kMaxGrepProgram = 500;
constexpr size_t kMaxFollowApps = 4096;
// One follow's time on the loop, across apps (each app's scan has its own
// LogStore::kScanBudgetUs too).
constexpr int64_t kFollowBudgetUs = 10'000;
constexpr int64_t kMaxEventLines = EventFeed::kCapacity;

// A `process` filter whose first page matched nothing: refused when its
// type is not one of the release's (the given one; else the active one's
// or any other kept release's), naming the types it has. The one-off and
// release-phase types always pass, and so does any filter when there is no
// release to ask.
Status CheckLogProcess(DaemonContext& ctx, const std::string& app,
                       std::optional<int64_t> release, const std::string& process) {
  const std::string type = process.substr(0, process.find('.'));
  if (type == kReleaseType || type == "run") return Status::Ok();
  int64_t number = release.value_or(0);
  if (number == 0) {
    ASSIGN_OR_RETURN(Ledger::Activation act, ctx.ledger->ActivationOf(app));
    number = act.active;
  }
  if (number == 0) return Status::Ok();
  auto file = LoadProcessFile(SlotPath(ctx.state_dir, app, number));
  if (!file.ok() || file->processes.count(type) != 0) return Status::Ok();
  if (!release) {
    // A type the live release dropped still has its records: any release
    // kept on disk that has it (the newest kMaxReleasesLooked at) will do.
    constexpr size_t kMaxReleasesLooked = 50;
    ASSIGN_OR_RETURN(std::vector<ReleaseRow> rows, ctx.ledger->ListReleases(app));
    size_t looked = 0;
    for (auto it = rows.rbegin(); it != rows.rend() && looked < kMaxReleasesLooked; ++it) {
      if (it->pruned || it->number == number) continue;
      ++looked;
      auto other = LoadProcessFile(SlotPath(ctx.state_dir, app, it->number));
      if (!other.ok() || other->processes.count(type) != 0) return Status::Ok();
    }
  }
  std::vector<std::string> types;
  for (const auto& [name, spec] : file->processes) types.push_back(name);
  std::string text = "release " + ReleaseId(number).ToString() + " of '" + app +
                     "' has no process type '" + type + "' (its types: " +
                     QuotedList(types) + ")";
  if (!release) text += ", nor has any other release of it";
  if (auto close = ClosestMatch(type, types)) text += "; did you mean '" + *close + "'?";
  return NotFound(text);
}

Result<bool> OptionalBool(const Json& params, const char* key) {
  auto it = params.find(key);
  if (it == params.end()) return false;
  if (!it->is_boolean()) return InvalidArgument(std::string("param '") + key + "' must be a boolean");
  return it->get<bool>();
}

// The filter every form of `logs` shares: process, stream, since_us, grep.
Result<LogFilter> ParseLogFilter(const Json& params) {
  LogFilter filter;
  ASSIGN_OR_RETURN(auto process, params::OptionalString(params, "process"));
  ASSIGN_OR_RETURN(auto stream, params::OptionalString(params, "stream"));
  ASSIGN_OR_RETURN(auto since, params::OptionalInt(params, "since_us", 0, INT64_MAX));
  ASSIGN_OR_RETURN(auto grep, params::OptionalString(params, "grep"));
  filter.process = process.value_or("");
  filter.stream = stream.value_or("");
  filter.since_us = since.value_or(0);
  if (!filter.stream.empty() && filter.stream != "out" && filter.stream != "err")
    return InvalidArgument("param 'stream' must be \"out\" or \"err\"");
  if (grep) {
    if (grep->empty()) return InvalidArgument("param 'grep' is empty");
    if (grep->size() > kMaxGrepBytes)
      return InvalidArgument("param 'grep' is " + std::to_string(grep->size()) +
                             " bytes; at most " + std::to_string(kMaxGrepBytes));
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(int64_t{1} << 20);
    auto re = std::make_shared<const RE2>(*grep, options);
    if (!re->ok())
      return InvalidArgument("param 'grep': '" + *grep + "' is not a valid regular expression (" +
                             re->error() + ")");
    // Matching costs the text's length times the program's size once RE2
    // leaves its DFA: a bound on the size bounds a line's cost.
    if (re->ProgramSize() > kMaxGrepProgram)
      return InvalidArgument("param 'grep': '" + *grep + "' is too complex (" +
                             std::to_string(re->ProgramSize()) + " RE2 instructions; at most " +
                             std::to_string(kMaxGrepProgram) + "): a repeat count such as {1000} "
                             "makes it so");
    filter.grep = std::move(re);
  }
  return filter;
}

// One page of records as JSON, within paging::kPageBytes; forward pages
// keep their oldest records, tail pages their newest, so the next page
// joins on without a gap. `*cut`: some were left out.
std::deque<Json> PageOf(const std::vector<LogRecord>& records, bool forward, bool* cut) {
  std::deque<Json> kept;
  size_t bytes = 0;
  for (size_t k = 0; k < records.size(); ++k) {
    const LogRecord& rec = forward ? records[k] : records[records.size() - 1 - k];
    Json j = LogRecordToJson(rec);
    bytes += paging::SerialisedSize(j) + 1;
    if (!kept.empty() && bytes > paging::kPageBytes) {
      *cut = true;
      break;
    }
    if (forward)
      kept.push_back(std::move(j));
    else
      kept.push_front(std::move(j));
  }
  return kept;
}

Json ToArray(std::deque<Json> items) {
  Json out = Json::array();
  for (Json& j : items) out.push_back(std::move(j));
  return out;
}

// A follow of logs: one app (after_seq) or every app (after: {app: seq}).
// Run() answers what came after the cursors and moves them on, so a
// parked follow can run it again each time something is appended.
struct LogFollow {
  DaemonContext* ctx = nullptr;
  LogFilter filter;
  std::optional<std::string> app;  // absent: every app
  std::map<std::string, uint64_t> cursors;
  size_t limit = paging::kPageItems;

  Result<Json> Run() {
    // Every app the ledger has: an app missing from the cursors (created
    // since the follower began) is followed from its first record.
    std::vector<std::string> apps;
    if (app) {
      apps.push_back(*app);
    } else {
      ASSIGN_OR_RETURN(std::vector<AppSpec> specs, ctx->ledger->ListApps());
      for (const AppSpec& a : specs) apps.push_back(a.name);
    }
    struct Got {
      std::string app;
      std::vector<LogRecord> records;
      uint64_t scanned = 0;
      uint64_t missed = 0;  // seqs after its cursor that no file holds any more
    };
    std::vector<Got> got;
    bool more = false;
    const auto start = std::chrono::steady_clock::now();
    for (const std::string& name : apps) {
      if (std::chrono::steady_clock::now() - start > std::chrono::microseconds(kFollowBudgetUs)) {
        more = true;  // the apps left wait for the next ask
        break;
      }
      Got g{name, {}, 0, 0};
      const uint64_t after = cursors.count(name) != 0 ? cursors[name] : 0;
      ASSIGN_OR_RETURN(g.records,
                       ctx->logs->Since(name, after, filter, limit, &g.scanned, &g.missed));
      more = more || g.scanned < ctx->logs->LastSeq(name);
      got.push_back(std::move(g));
    }
    // Oldest first across apps, each app's records in their own (seq)
    // order: a merge by time of the apps' heads, so that what the page
    // holds of an app is a prefix of its records (its cursor moves over
    // exactly that, even when the wall clock stepped back).
    std::vector<LogRecord> page;
    std::vector<size_t> from;  // page[k] came from got[from[k]]
    std::vector<size_t> taken(got.size(), 0);
    while (page.size() < limit) {
      size_t best = got.size();
      for (size_t i = 0; i < got.size(); ++i) {
        if (taken[i] >= got[i].records.size()) continue;
        if (best == got.size() || got[i].records[taken[i]].time_us <
                                      got[best].records[taken[best]].time_us)
          best = i;
      }
      if (best == got.size()) break;
      page.push_back(got[best].records[taken[best]++]);
      from.push_back(best);
    }
    bool cut = false;
    for (size_t i = 0; i < got.size(); ++i) cut = cut || taken[i] < got[i].records.size();
    std::deque<Json> kept = PageOf(page, /*forward=*/true, &cut);
    // PageOf keeps a prefix of the page: count what each app got in it.
    std::vector<size_t> in_page(got.size(), 0);
    for (size_t k = 0; k < kept.size(); ++k) ++in_page[from[k]];
    // Cursors move over what the page holds, or, for an app whose records
    // all made it, over everything looked at (non-matching ones too).
    // An app's missed seqs come before its first record: said once its
    // cursor moves over them.
    Json missed = Json::object();
    for (size_t i = 0; i < got.size(); ++i) {
      const Got& g = got[i];
      const size_t n = in_page[i];
      uint64_t& cursor = cursors[g.app];
      const uint64_t was = cursor;
      if (n == g.records.size())
        cursor = std::max(cursor, g.scanned);
      else if (n > 0)
        cursor = std::max(cursor, g.records[n - 1].seq);
      // (Not for an app followed from its start: a name deleted and made
      // again goes on from its old seqs, which were never this one's.)
      if (g.missed > 0 && cursor > was && was > 0) missed[g.app] = g.missed;
    }
    Json out = {{"records", ToArray(std::move(kept))}, {"more", more || cut}};
    if (!missed.empty()) out["missed"] = std::move(missed);
    if (app) {
      out["cursor"] = cursors[*app];
      out["last_seq"] = ctx->logs->LastSeq(*app);
    } else {
      out["cursors"] = cursors;
    }
    return out;
  }
};

// Parks `follow` until it has something (see the top of the file).
void ParkLogs(DaemonContext& ctx, const Request& r, std::shared_ptr<LogFollow> follow,
              Reply reply) {
  // Woken by a line of its app, or (every app) by any line.
  std::vector<std::string> keys = {follow->app ? "logs:" + *follow->app : "logs:*"};
  Status s = ctx.polls->Add(
      r.peer.uid, std::move(keys), LongPolls::kMaxWaitMs,
      [follow, reply](bool must_reply) {
        // Its app deleted meanwhile (app delete pokes its key): the
        // follow ends with the app's NotFound.
        if (follow->app) {
          if (Status gone = follow->ctx->ledger->GetApp(*follow->app).status(); !gone.ok()) {
            reply(gone);
            return true;
          }
        }
        // Nothing new in its app since the last look: not worth a scan.
        if (!must_reply && follow->app &&
            follow->ctx->logs->LastSeq(*follow->app) <= follow->cursors[*follow->app])
          return false;
        Result<Json> page = follow->Run();
        if (!page.ok() || must_reply || !page->at("records").empty() ||
            page->value("more", false)) {
          reply(std::move(page));
          return true;
        }
        return false;
      },
      r.peer.connection_id);
  if (!s.ok()) reply(s);
}

void Logs(DaemonContext& ctx, const Request& r, Reply reply) {
  const Json& params = r.params;
  auto run = [&]() -> Result<std::optional<Json>> {
    RETURN_IF_ERROR(params::CheckKnown(params, {"app", "lines", "process", "stream", "release",
                                                "after_seq", "before_seq", "after", "since_us",
                                                "grep", "wait"}));
    ASSIGN_OR_RETURN(LogFilter filter, ParseLogFilter(params));
    ASSIGN_OR_RETURN(bool wait, OptionalBool(params, "wait"));
    if (!params.contains("app")) {
      // Every app: only the follow form (the CLI gathers the tails app by
      // app, with their own cursors).
      for (const char* key : {"release", "after_seq", "before_seq", "lines"})
        if (params.contains(key))
          return InvalidArgument(std::string("param '") + key +
                                 "' needs an app; without one, logs follows every app from "
                                 "'after' ({APP: SEQ, ...})");
      auto it = params.find("after");
      if (it == params.end() || !it->is_object())
        return InvalidArgument(
            "without an app, logs needs 'after': an object of app names and the seq to "
            "follow each after ({} for every app from its start)");
      auto follow = std::make_shared<LogFollow>();
      follow->ctx = &ctx;
      follow->filter = std::move(filter);
      if (it->size() > kMaxFollowApps)
        return InvalidArgument("param 'after' names " + std::to_string(it->size()) +
                               " apps; at most " + std::to_string(kMaxFollowApps));
      ASSIGN_OR_RETURN(std::vector<AppSpec> known, ctx.ledger->ListApps());
      std::set<std::string, std::less<>> names;
      for (const AppSpec& a : known) names.insert(a.name);
      for (const auto& [name, seq] : it->items()) {
        if (!seq.is_number_unsigned())
          return InvalidArgument("param 'after': '" + name + "' must map to a seq (an integer from 0)");
        // An app deleted meanwhile, or never there: nothing to follow.
        if (names.count(name) != 0) follow->cursors[name] = seq.get<uint64_t>();
      }
      ASSIGN_OR_RETURN(Json page, follow->Run());
      if (!wait || !page.at("records").empty() || page.value("more", false))
        return std::optional<Json>(std::move(page));
      ParkLogs(ctx, r, std::move(follow), reply);
      return std::optional<Json>();
    }
    if (params.contains("after"))
      return InvalidArgument("param 'after' is for every app; with an app, use 'after_seq'");
    ASSIGN_OR_RETURN(std::string app, params::App(params));
    RETURN_IF_ERROR(ctx.ledger->GetApp(app).status());
    ASSIGN_OR_RETURN(auto lines, params::OptionalInt(params, "lines", 0, kMaxLogLines));
    ASSIGN_OR_RETURN(auto after, params::OptionalInt(params, "after_seq", 0, INT64_MAX));
    ASSIGN_OR_RETURN(auto before, params::OptionalInt(params, "before_seq", 1, INT64_MAX));
    if (after && before)
      return InvalidArgument("params 'after_seq' and 'before_seq' exclude each other");
    if (wait && !after) return InvalidArgument("param 'wait' needs 'after_seq' (it follows)");
    std::optional<int64_t> release;
    if (params.contains("release")) {
      ASSIGN_OR_RETURN(release, params::Release(params, "release"));
      // "app 'shop' has no release v9", before any page is read.
      RETURN_IF_ERROR(ctx.ledger->GetRelease(app, *release).status());
      filter.release = ReleaseId(*release).ToString();
    }
    const size_t wanted = static_cast<size_t>(lines.value_or(after ? 10'000 : 100));
    const size_t n = std::min(wanted, paging::kPageItems);
    if (after) {
      auto follow = std::make_shared<LogFollow>();
      follow->ctx = &ctx;
      follow->filter = std::move(filter);
      follow->app = app;
      follow->cursors[app] = static_cast<uint64_t>(*after);
      follow->limit = std::max<size_t>(n, 1);
      ASSIGN_OR_RETURN(Json page, follow->Run());
      if (!wait || !page.at("records").empty() || page.value("more", false))
        return std::optional<Json>(std::move(page));
      ParkLogs(ctx, r, std::move(follow), reply);
      return std::optional<Json>();
    }
    uint64_t resume = 0;
    ASSIGN_OR_RETURN(std::vector<LogRecord> records,
                     ctx.logs->Tail(app, filter, n,
                                    before ? static_cast<uint64_t>(*before) : UINT64_MAX,
                                    &resume));
    // A type no release has is refused when the first page finds none of
    // its records, however many a scan would have to look at to be sure.
    if (records.empty() && !filter.process.empty() && !before)
      RETURN_IF_ERROR(CheckLogProcess(ctx, app, release, filter.process));
    bool cut = (n < wanted && records.size() == n) || resume != 0;
    std::deque<Json> kept = PageOf(records, /*forward=*/false, &cut);
    // The next page back starts before the oldest record given, or, when
    // the scan budget ended this one first, where the scan stopped.
    uint64_t next = resume;
    if (!kept.empty()) next = kept.front().value("seq", uint64_t{0});
    Json out = {{"records", ToArray(std::move(kept))},
                {"last_seq", ctx.logs->LastSeq(app)},
                {"more", cut}};
    if (cut) out["next_before_seq"] = next;
    return std::optional<Json>(std::move(out));
  };
  Result<std::optional<Json>> done = run();
  if (!done.ok()) return reply(done.status());
  if (*done) reply(std::move(**done));
}

Json FeedEntryToJson(const FeedEntry& e) {
  Json j = {{"seq", e.seq},         {"time", FormatTimeUtc(e.time_ms)},
            {"app", e.app},         {"kind", e.kind},
            {"release", e.release}};
  if (e.kind == "instance") {
    j["process"] = e.process;
    j["state"] = e.state;
    j["detail"] = e.detail;
  } else {
    // A ledger event's detail is JSON where the daemon wrote it so.
    auto parsed = rpc::ParseMessage(e.detail);
    j["detail"] = parsed.ok() ? std::move(parsed).value() : Json(e.detail);
    j["actor"] = e.actor;
    j["event_id"] = e.event_id;
  }
  return j;
}

// events: {app?, lines?, after?, feed?, wait?}. Without `after`: the
// newest `lines` entries (default 20). With it: those after it, one page;
// `feed` is the id the follower saw: another one (the daemon restarted or
// re-executed) starts over at the new feed's first entry.
void Events(DaemonContext& ctx, const Request& r, Reply reply) {
  const Json& params = r.params;
  auto run = [&]() -> Result<std::optional<Json>> {
    RETURN_IF_ERROR(params::CheckKnown(params, {"app", "lines", "after", "feed", "wait"}));
    ASSIGN_OR_RETURN(auto app, params::OptionalString(params, "app"));
    if (app) {
      RETURN_IF_ERROR(ValidateAppName(*app));
      RETURN_IF_ERROR(ctx.ledger->GetApp(*app).status());
    }
    ASSIGN_OR_RETURN(auto lines, params::OptionalInt(params, "lines", 0, kMaxEventLines));
    ASSIGN_OR_RETURN(auto after, params::OptionalInt(params, "after", 0, INT64_MAX));
    ASSIGN_OR_RETURN(auto feed, params::OptionalString(params, "feed"));
    ASSIGN_OR_RETURN(bool wait, OptionalBool(params, "wait"));
    if (wait && !after) return InvalidArgument("param 'wait' needs 'after' (it follows)");
    const EventFeed& f = *ctx.feed;
    if (!after) {
      Json list = Json::array();
      for (const FeedEntry& e : f.Newest(app.value_or(""), static_cast<size_t>(lines.value_or(20))))
        list.push_back(FeedEntryToJson(e));
      return std::optional<Json>(
          Json{{"events", std::move(list)}, {"cursor", f.last_seq()}, {"feed", f.id()}});
    }
    struct Follow {
      DaemonContext* ctx;
      std::string app;
      uint64_t cursor;
      bool restarted;
      Json Run() {
        uint64_t scanned = 0;
        Json list = Json::array();
        size_t bytes = 0;
        for (const FeedEntry& e : ctx->feed->After(cursor, app, paging::kPageItems, &scanned)) {
          Json j = FeedEntryToJson(e);
          bytes += paging::SerialisedSize(j) + 1;
          // Within the page's bytes (at least one entry, so a page moves on).
          if (!list.empty() && bytes > paging::kPageBytes) {
            scanned = e.seq - 1;
            break;
          }
          list.push_back(std::move(j));
        }
        cursor = scanned;
        return Json{{"events", std::move(list)},
                    {"cursor", cursor},
                    {"feed", ctx->feed->id()},
                    {"restarted", restarted},
                    {"more", cursor < ctx->feed->last_seq()}};
      }
    };
    const bool restarted = feed && *feed != f.id();
    auto follow = std::make_shared<Follow>(
        Follow{&ctx, app.value_or(""), restarted ? 0 : static_cast<uint64_t>(*after), restarted});
    Json page = follow->Run();
    if (!wait || !page["events"].empty()) return std::optional<Json>(std::move(page));
    Status s = ctx.polls->Add(r.peer.uid, {"events"}, LongPolls::kMaxWaitMs,
                              [follow, reply](bool must_reply) {
                                Json next = follow->Run();
                                if (!must_reply && next["events"].empty()) return false;
                                reply(std::move(next));
                                return true;
                              },
                              r.peer.connection_id);
    if (!s.ok()) return s;
    return std::optional<Json>();
  };
  Result<std::optional<Json>> done = run();
  if (!done.ok()) return reply(done.status());
  if (*done) reply(std::move(**done));
}

}  // namespace

void RegisterFeedHandlers(Dispatcher* d, DaemonContext* ctx) {
  d->RegisterAsync(method::kLogs, Right::kRead,
                   [ctx](const Request& r, Reply reply) { Logs(*ctx, r, std::move(reply)); });
  d->RegisterAsync(method::kEvents, Right::kRead,
                   [ctx](const Request& r, Reply reply) { Events(*ctx, r, std::move(reply)); });
}

}  // namespace relsupd
