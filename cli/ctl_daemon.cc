// `relsupd ctl daemon-reexec` (docs/reexec.md §6.2).
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/client.h"
#include "cli/ctl.h"
#include "daemon/base/duration.h"
#include "daemon/protocol/methods.h"

namespace relsupd::cli {
namespace {

struct ReexecOptions {
  bool kill_one_offs = false;
  std::string wait = "0";
};

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A daemon that never answers (a hung new image) must not hold the caller
// (a package upgrade) forever: the reply may take this long.
constexpr int kAnswerTimeoutS = 120;

Result<rpc::Json> CallOnce(const std::string& socket, std::string_view method,
                           rpc::Json params) {
  ASSIGN_OR_RETURN(Client client, Client::Connect(socket));
  timeval limit{kAnswerTimeoutS, 0};
  ::setsockopt(client.fd(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  return client.Call(method, std::move(params));
}

// The connection ended with no answer: what runs now, asked for up to 30 s.
std::string WhatRunsNow(const std::string& socket) {
  const int64_t deadline = Now() + 30'000;
  for (;;) {
    auto info = CallOnce(socket, rpc::method::kDaemonInfo, rpc::Json::object());
    if (info.ok())
      return "relsupd " + Text(*info, "version") + " (pid " + Text(*info, "pid") +
             ") runs now, its image up " +
             FormatElapsed(info->value("image_uptime_ms", int64_t{0}));
    if (Now() >= deadline) return "no daemon answers: " + info.status().message();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void Reexec(CtlContext* ctx, const ReexecOptions& o) {
  auto wait_ms = ParseDurationMs(o.wait);
  if (!wait_ms.ok()) return ctx->Fail(wait_ms.status().WithContext("--wait"), kExitUsage);
  const int64_t started = Now();
  const int64_t deadline = started + *wait_ms;
  Result<rpc::Json> result = Status(StatusCode::kBusy, "");
  for (;;) {
    result = CallOnce(ctx->socket, rpc::method::kDaemonReexec,
                      {{"kill_one_offs", o.kill_one_offs}});
    // A busy daemon (a switch, one-offs) is asked again until --wait ends.
    if (result.ok() || result.status().code() != StatusCode::kBusy || Now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!result.ok()) {
    Status s = result.status();
    if (s.code() == StatusCode::kUnavailable &&
        s.message().find("closed the connection") != std::string::npos)
      s = Status(StatusCode::kUnavailable,
                 "no answer from the new image (" + s.message() + "); " + WhatRunsNow(ctx->socket));
    return ctx->Fail(s.WithContext("re-exec failed"));
  }
  ctx->exit_code = kExitOk;
  if (ctx->json) {
    std::cout << result->dump(2) << '\n';
    return;
  }
  std::cout << "relsupd " << Text(*result, "old_version") << " -> "
            << Text(*result, "new_version") << " (pid " << Text(*result, "pid") << ", "
            << Text(*result, "instances") << " instances) in " << (Now() - started)
            << " ms\n";
}

constexpr char kReexecAbout[] =
    "Replace the running daemon with its binary as it is on disk now (after a package "
    "upgrade), in the same pid, without stopping any app";

}  // namespace

void AddDaemonVerbs(CLI::App& ctl, CtlContext* ctx) {
  auto o = std::make_shared<ReexecOptions>();
  CLI::App* cmd = ctl.add_subcommand("daemon-reexec", kReexecAbout);
  cmd->add_flag("--kill-one-offs", o->kill_one_offs,
                "End running `ctl run` processes first (they are not carried across)");
  cmd->add_option("--wait", o->wait,
                  "Retry while the daemon is busy (a switch, a rolling restart, one-offs) "
                  "for up to this long, e.g. 60s (default: 0, answer at once)");
  SetVerbFooter(cmd,
      "The daemon checks and test-runs the binary first; if it cannot run, or the new\n"
      "image cannot read the handed-over state, the previous one keeps running and\n"
      "this command fails with the reason. SIGUSR2 to the daemon does the same.\n"
      "`systemctl restart relsupd` instead stops every app and starts again.");
  cmd->callback([ctx, o] { Reexec(ctx, *o); });
}

}  // namespace relsupd::cli
