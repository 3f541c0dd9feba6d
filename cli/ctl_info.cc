// `relsupd ctl info` and `relsupd ctl metrics`.
#include <iostream>

#include "cli/ctl.h"
#include "cli/table.h"
#include "daemon/base/duration.h"
#include "daemon/protocol/methods.h"

namespace relsupd::cli {

void AddInfoVerb(CLI::App& ctl, CtlContext* ctx) {
  CLI::App* info = ctl.add_subcommand("info", "Show the daemon's version, pid, "
                                              "uptime, state dir and socket");
  info->callback([ctx] {
    ctx->CallAndPrint(rpc::method::kDaemonInfo, rpc::Json::object(),
                      [](const rpc::Json& r) {
                        PrintFields(std::cout,
                                    {{"version", Text(r, "version")},
                                     {"pid", Text(r, "pid")},
                                     {"uptime", FormatElapsed(r.value("uptime_ms", int64_t{0}))},
                                     {"state dir", Text(r, "state_dir")},
                                     {"socket", Text(r, "socket")},
                                     {"schema", Text(r, "schema_version")}});
                      });
  });
  CLI::App* metrics = ctl.add_subcommand(
      "metrics",
      "Print the daemon's metrics in the Prometheus text format 0.0.4 (instances, restarts, "
      "exits by reason, memory and CPU, activations, log lines, control requests)");
  SetVerbFooter(metrics, "The same text is served as GET /metrics on the daemon config's "
                  "metrics_listen address, when set.");
  metrics->callback([ctx] {
    // --json prints {"text": ...}; the text is the format itself.
    ctx->CallAndPrint(rpc::method::kMetrics, rpc::Json::object(),
                      [](const rpc::Json& r) { std::cout << Text(r, "text"); });
  });
}

}  // namespace relsupd::cli
