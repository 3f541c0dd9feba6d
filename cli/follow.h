#pragma once
// Following (`logs -f`, `events -f`): each ask waits in the daemon until
// there is news (`wait: true`), so nothing here polls on a timer.
#include <functional>
#include <string>

#include "cli/client.h"
#include "cli/ctl.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd::cli {

// Calls `ask` over and over on one connection and hands each answer to
// `take`. While the daemon is away (restarted, upgraded) it waits for it as
// `journalctl -f` does: `lost` (a phrase: "following after seq 12") goes in
// a note on stderr, a new connection is tried every 200 ms, and then it
// asks again ("following `what` again"). Returns only when the daemon
// answers with an error (reported, exit code in ctx), or when `take`
// returns false.
int FollowForever(CtlContext* ctx, Result<Client> client, const std::string& what,
                  const std::function<std::string()>& lost,
                  const std::function<Result<rpc::Json>(Client&)>& ask,
                  const std::function<bool(const rpc::Json&)>& take);

}  // namespace relsupd::cli
