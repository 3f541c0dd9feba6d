#include "cli/follow.h"

#include "cli/terminal.h"

#include <chrono>
#include <iostream>
#include <thread>

namespace relsupd::cli {

int FollowForever(CtlContext* ctx, Result<Client> client, const std::string& what,
                  const std::function<std::string()>& lost,
                  const std::function<Result<rpc::Json>(Client&)>& ask,
                  const std::function<bool(const rpc::Json&)>& take) {
  bool away = false;
  bool busy = false;
  while (true) {
    Result<rpc::Json> r = Status(StatusCode::kUnavailable, "not connected");
    if (client.ok()) r = ask(*client);
    if (!r.ok() && r.status().code() == StatusCode::kUnavailable) {
      if (!away)
        // Not the errno text ("Broken pipe"): the daemon went away, that
        // is all a reader needs, and what happens next.
        std::cerr << "relsupd: lost the daemon at '" << ctx->socket
                  << "' (restarting or stopped?); waiting for it to come back, then "
                  << lost() << '\n';
      away = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      client = Client::Connect(ctx->socket);
      continue;
    }
    if (!r.ok() && r.status().code() == StatusCode::kBusy) {
      // Too many follows wait in the daemon (its limit): ask again soon.
      if (!busy)
        std::cerr << ForStderr("relsupd: " + r.status().message() +
                               "; asking again every second")
                  << '\n';
      busy = true;
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (!r.ok()) {
      ctx->Fail(r.status());
      return ctx->exit_code;
    }
    busy = false;
    if (away) std::cerr << "relsupd: the daemon is back; following " << what << " again\n";
    away = false;
    if (!take(*r)) return ctx->exit_code;
    std::cout.flush();
  }
}

}  // namespace relsupd::cli
