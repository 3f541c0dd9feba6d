// `relsupd ctl history [APP] [-n N] [--verify]`.
#include <iostream>
#include <optional>

#include "cli/ctl.h"
#include "cli/table.h"
#include "daemon/protocol/methods.h"

namespace relsupd::cli {
namespace {

struct HistoryArgs {
  std::string app;
  int64_t limit = 50;
  bool verify = false;
};

}  // namespace

void AddHistoryVerb(CLI::App& ctl, CtlContext* ctx) {
  auto args = std::make_shared<HistoryArgs>();
  CLI::App* history = ctl.add_subcommand(
      "history", "Show the audit trail: who changed what, and when");
  history->add_option("APP", args->app, "Only this app's events");
  history->add_option("-n", args->limit, "Show the newest N events (default 50)")
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
        std::string detail = Text(e, "detail");
        if (detail.size() > 60) detail = detail.substr(0, 57) + "...";
        t.AddRow({Text(e, "id"), Text(e, "time"), Text(e, "app"),
                  Text(e, "kind"), Text(e, "release").empty() ? "-" : Text(e, "release"),
                  Text(e, "actor"), detail});
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
