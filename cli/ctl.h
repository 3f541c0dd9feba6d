#pragma once
// `relsupd ctl`: the control client's verbs, registered on a CLI11 app.
//
// Exit codes: 0 ok, 1 the daemon refused (its message printed), 2 usage
// error, 3 daemon unreachable (the message names the socket tried).

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>

#include "cli/client.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd::cli {

enum ExitCode { kExitOk = 0, kExitRefused = 1, kExitUsage = 2, kExitUnreachable = 3 };

struct CtlContext {
  std::string socket;
  bool json = false;
  int exit_code = kExitOk;

  // Calls `method`; with --json prints the result as is, else hands it to
  // `human`. Sets exit_code from the outcome and returns the result, if any.
  std::optional<rpc::Json> CallAndPrint(std::string_view method, rpc::Json params,
                    const std::function<void(const rpc::Json&)>& human);
  // Reports a failed call (or a local error) and sets exit_code.
  void Fail(const Status& status);
};

// Adds `ctl` and its verbs under `root`; results land in `ctx`.
void AddCtlCommand(CLI::App& root, CtlContext* ctx);

// Verb groups, one file each.
void AddInfoVerb(CLI::App& ctl, CtlContext* ctx);
void AddAppVerbs(CLI::App& ctl, CtlContext* ctx);
void AddHistoryVerb(CLI::App& ctl, CtlContext* ctx);
void AddReleaseStageVerbs(CLI::App& ctl, CtlContext* ctx);
void AddProcessVerbs(CLI::App& ctl, CtlContext* ctx);
void AddRunVerb(CLI::App& ctl, CtlContext* ctx);  // ctl_run.cc

// "" for a null or missing value, the string itself, or the JSON text.
std::string Text(const rpc::Json& j);

// The daemon's answer read without trusting its shape: `j[key]`, or null
// when `j` is not an object or has no `key`. (A const operator[] on a
// missing key is an assert in nlohmann-json, and undefined without one.)
const rpc::Json& Field(const rpc::Json& j, std::string_view key);
// Text(Field(j, key)).
std::string Text(const rpc::Json& j, std::string_view key);

// A verb whose one argument is a required APP: it calls `method` with
// {`key`: APP} and hands the result to `human` (see CallAndPrint).
struct AppVerb {
  const char* name;
  const char* help;
  const char* method;
  const char* app_help = "App name";  // APP's line in --help
  const char* key = "app";
};
// Adds `verb` under `parent`; returns it for more settings (a footer).
CLI::App* AddAppVerb(CLI::App& parent, CtlContext* ctx, const AppVerb& verb,
                     std::function<void(const rpc::Json&)> human);

}  // namespace relsupd::cli
