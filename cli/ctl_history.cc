// `relsupd ctl history [APP] [-n N] [--verify]`.
#include <iostream>

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
                            std::cout << "History intact: " << Text(r["checked"])
                                      << " events checked\n";
                            return;
                          }
                          std::cout << "History was tampered with:\n";
                          for (const auto& p : r["problems"])
                            std::cout << "  " << Text(p) << '\n';
                        });
      // A broken chain is a failure for scripts too, --json or not.
      if (verdict && !verdict->value("ok", false)) ctx->exit_code = kExitRefused;
      return;
    }
    rpc::Json p = {{"limit", args->limit}};
    if (!args->app.empty()) p["app"] = args->app;
    ctx->CallAndPrint(rpc::method::kHistory, p, [](const rpc::Json& events) {
      Table t({"ID", "TIME", "APP", "KIND", "RELEASE", "ACTOR", "DETAIL"});
      for (const auto& e : events) {
        std::string detail = Text(e["detail"]);
        if (detail.size() > 60) detail = detail.substr(0, 57) + "...";
        t.AddRow({Text(e["id"]), Text(e["time"]), Text(e["app"]),
                  Text(e["kind"]), Text(e["release"]).empty() ? "-" : Text(e["release"]),
                  Text(e["actor"]), detail});
      }
      t.Print(std::cout);
    });
  });
}

}  // namespace relsupd::cli
