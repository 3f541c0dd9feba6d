// `relsupd ctl history [APP] [-n N] [--verify]`.
#include <iostream>
#include <optional>

#include "cli/ctl.h"
#include "cli/follow.h"
#include "cli/terminal.h"
#include "cli/table.h"
#include "daemon/protocol/methods.h"

namespace relsupd::cli {
namespace {

struct HistoryArgs {
  std::string app;
  int64_t limit = 50;
  bool verify = false;
};

// A JSON value as a person reads it: strings bare, the rest compact.
std::string Plain(const rpc::Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

// "-" for an empty column.
std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

// "A, B, C" from an array of strings.
std::string List(const rpc::Json& items) {
  std::string out;
  if (!items.is_array()) return Plain(items);
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + Plain(i);
  return out;
}

// An event's detail as a short phrase. The daemon records most details as
// text already ("from v1, start-first", "web=3"); the structured ones (an
// app's spec or its changes, an import, a release, a prune) are said here
// per kind. `--json` keeps the structured detail.
std::string HistoryDetail(const rpc::Json& e) {
  const rpc::Json& d = Field(e, "detail");
  if (d.is_string()) return d.get<std::string>();
  if (!d.is_object()) return d.is_null() ? "" : d.dump();
  const std::string kind = Text(e, "kind");
  if (kind == "imported")
    return "build " + Text(d, "build") + " (" + Text(d, "format") + ", " + Text(d, "size") +
           " bytes)";
  if (kind == "released") {
    std::string out = d.contains("from") ? "from " + Text(d, "from") : "first release";
    out += ", build " + Text(d, "build");
    if (d.contains("config_changed") && !Field(d, "config_changed").empty())
      out += ", config changed: " + List(Field(d, "config_changed"));
    return out;
  }
  if (kind == "app-created") {
    std::string out = Text(d, "strategy") + ", keep " + Text(d, "keep_releases") + " releases";
    if (!Text(d, "user").empty()) out = "user " + Text(d, "user") + ", " + out;
    return out;
  }
  if (kind == "app-updated") {
    // {"field": [old, new]}
    std::string out;
    for (const auto& [k, v] : d.items()) {
      out += out.empty() ? "" : ", ";
      if (v.is_array() && v.size() == 2)
        out += k + ": " + Plain(v[0]) + " -> " + Plain(v[1]);
      else
        out += k + ": " + Plain(v);
    }
    return out.empty() ? "no change" : out;
  }
  if (kind == "pruned" && d.contains("reason")) return Text(d, "reason");
  std::string out;
  for (const auto& [k, v] : d.items()) out += (out.empty() ? "" : ", ") + k + " " + Plain(v);
  return out;
}

// One line per feed entry: "TIME APP RELEASE web.1 ready" for an
// instance (with its exit's reason when it exited), "TIME APP RELEASE
// activated by root: from v2, start-first" for a ledger event.
std::string EventLine(const rpc::Json& e) {
  std::string line = Text(e, "time") + " " + OrDash(Text(e, "app")) + " " +
                     OrDash(Text(e, "release")) + " ";
  if (Text(e, "kind") == "instance") {
    line += Text(e, "process") + " " + Text(e, "state");
    if (!Text(e, "detail").empty()) line += ": " + Text(e, "detail");
    return line;
  }
  line += Text(e, "kind") + " by " + Text(e, "actor");
  std::string detail = HistoryDetail(e);
  for (char& c : detail)
    if (c == '\n' || c == '\t') c = ' ';
  if (!detail.empty()) line += ": " + detail;
  return line;
}

struct EventsArgs {
  std::string app;
  int64_t lines = 20;
  bool follow = false;
};

}  // namespace

// `relsupd ctl events [APP] [-n N] [-f]`: what happened in the running
// daemon (ledger events and instance state changes), one per line; -f
// prints each as it happens (the daemon sends it: see follow.h).
void AddEventsVerb(CLI::App& ctl, CtlContext* ctx) {
  auto args = std::make_shared<EventsArgs>();
  CLI::App* events = ctl.add_subcommand(
      "events",
      "Show what happened since the daemon started: deploys, activations, rollbacks, config "
      "changes and failures (as in history), and every instance state change; -f follows");
  events->add_option("APP", args->app, "Only this app's events");
  events->add_option("-n,--limit", args->lines, "Show the newest N first (default 20)")
      ->check(CLI::Range(0, 1024));
  events->add_flag("-f,--follow", args->follow,
                   "Print each event the moment it happens, one line each (--json: one object "
                   "each), until interrupted; across a restart of the daemon, wait for it");
  SetVerbFooter(events,
      "The daemon keeps the last 1024 events in memory; `relsupd ctl history` is the durable "
      "record of deploys and changes.");
  events->callback([ctx, args] {
    auto client = Client::Connect(ctx->socket);
    if (!client.ok()) return ctx->Fail(client.status());
    rpc::Json p = {{"lines", args->lines}};
    if (!args->app.empty()) p["app"] = args->app;
    auto first = client->Call(rpc::method::kEvents, p);
    if (!first.ok()) return ctx->Fail(first.status());
    auto print = [ctx](const rpc::Json& list) {
      if (!list.is_array()) return;
      for (const auto& e : list) std::cout << (ctx->json ? e.dump() : ForStdout(EventLine(e))) << '\n';
    };
    if (!args->follow && ctx->json) {
      std::cout << Field(*first, "events").dump() << '\n';
      return;
    }
    print(Field(*first, "events"));
    std::cout.flush();
    if (!args->follow) return;
    uint64_t cursor = first->value("cursor", uint64_t{0});
    std::string feed = Text(*first, "feed");
    p.erase("lines");
    p["wait"] = true;
    auto ask = [&](Client& c) {
      rpc::Json q = p;
      q["after"] = cursor;
      q["feed"] = feed;
      return c.Call(rpc::method::kEvents, q);
    };
    auto take = [&](const rpc::Json& r) {
      if (r.value("restarted", false) && !ctx->json)
        std::cerr << "relsupd: the daemon started anew; its events so far follow\n";
      print(Field(r, "events"));
      cursor = r.value("cursor", cursor);
      feed = Text(r, "feed");
      return true;
    };
    ctx->exit_code = FollowForever(
        ctx, std::move(client), args->app.empty() ? "every app's events" : args->app + "'s events",
        [] { return std::string("following its events"); }, ask, take);
  });
}

void AddHistoryVerb(CLI::App& ctl, CtlContext* ctx) {
  auto args = std::make_shared<HistoryArgs>();
  CLI::App* history = ctl.add_subcommand(
      "history", "Show the audit trail: who changed what, and when");
  history->add_option("APP", args->app, "Only this app's events");
  history->add_option("-n,--limit", args->limit, "Show the newest N events (default 50)")
      ->check(CLI::Range(1, 100000));
  history->add_flag("--verify", args->verify,
                    "Check the hash chain of the whole event log; exit 1 if "
                    "an event was edited or deleted");
  history->callback([ctx, args] {
    if (args->verify) {
      auto verdict = ctx->CallAndPrint(rpc::method::kHistoryVerify, rpc::Json::object(),
                        [](const rpc::Json& r) {
                          if (r.value("ok", false)) {
                            std::cout << "History intact: " << Text(r, "checked")
                                      << " events checked\n";
                            return;
                          }
                          std::cout << "History was tampered with:\n";
                          for (const auto& p : Field(r, "problems"))
                            std::cout << "  " << Text(p) << '\n';
                          if (r.value("more_problems", int64_t{0}) > 0)
                            std::cout << "  ... and " << Text(r, "more_problems")
                                      << " more\n";
                        });
      // A broken chain is a failure for scripts too, --json or not.
      if (verdict && !verdict->value("ok", false)) ctx->exit_code = kExitRefused;
      return;
    }
    // The daemon answers a page at a time (at most 100 events); the
    // pages are asked for with `after` = the last id seen until `-n` events
    // came or a page is empty. --json streams one array as pages come.
    auto client = Client::Connect(ctx->socket);
    if (!client.ok()) return ctx->Fail(client.status());
    Table t({"ID", "TIME", "APP", "KIND", "RELEASE", "ACTOR", "DETAIL"});
    t.Cuttable("DETAIL");
    int64_t remaining = args->limit;
    std::optional<int64_t> after;
    bool first = true;
    while (remaining > 0) {
      rpc::Json p = {{"limit", remaining}};
      if (!args->app.empty()) p["app"] = args->app;
      if (after) p["after"] = *after;
      auto page = client->Call(rpc::method::kHistory, p);
      if (!page.ok()) {
        if (ctx->json && !first) std::cout << "\n]\n";
        return ctx->Fail(page.status());
      }
      if (!page->is_array() || page->empty()) break;
      for (const auto& e : *page) {
        if (ctx->json) {
          std::cout << (first ? "[\n  " : ",\n  ") << e.dump();
          first = false;
          continue;
        }
        // One line per event; on a terminal a long detail is cut to the
        // window (Table::Cuttable) and the text apps put in it (a `ctl run`
        // command, a release phase's message) is shown escaped, as in ps;
        // `--json` has all of it as it is.
        std::string detail = HistoryDetail(e);
        for (char& c : detail)
          if (c == '\n' || c == '\t') c = ' ';
        detail = ForStdout(detail);
        // A daemon-wide event (reexec) has no app and no release.
        t.AddRow({Text(e, "id"), Text(e, "time"), OrDash(Text(e, "app")), Text(e, "kind"),
                  OrDash(Text(e, "release")), Text(e, "actor"), detail});
      }
      std::cout.flush();
      remaining -= static_cast<int64_t>(page->size());
      after = page->back().value("id", int64_t{0});
    }
    if (ctx->json)
      std::cout << (first ? "[]\n" : "\n]\n");
    else
      t.Print(std::cout);
    ctx->exit_code = kExitOk;
  });
}

}  // namespace relsupd::cli
