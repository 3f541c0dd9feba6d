// `relsupd ctl info`.
#include <iostream>

#include "cli/ctl.h"
#include "cli/table.h"
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
                                     {"uptime", Text(r, "uptime_ms") + " ms"},
                                     {"state dir", Text(r, "state_dir")},
                                     {"socket", Text(r, "socket")},
                                     {"schema", Text(r, "schema_version")}});
                      });
  });
}

}  // namespace relsupd::cli
