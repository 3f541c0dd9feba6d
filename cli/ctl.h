#pragma once
// `relsupd ctl`: the control client's verbs, registered on a CLI11 app.
//
// Exit codes: 0 ok, 1 the daemon refused (its message printed), 2 usage
// error, 3 daemon unreachable (the message names the socket tried).
//
// Errors: one shape everywhere, "relsupd: MESSAGE" on stderr (further lines
// of a message indented by two spaces). With --json an error is instead one
// JSON document on stdout, as a result would be, and stderr stays empty:
//   {"error": {"code": "refused", "exit": 1, "status": "not found",
//              "message": "app 'nope' does not exist"}}
// code is refused, usage or unreachable (the exit code's name); status is
// the kind of failure (StatusCodeName) where one is known.

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

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
  // Reports a failed call (or a local error) and sets exit_code (3 for
  // unavailable, else 1).
  void Fail(const Status& status);
  // The same with the exit code given (kExitUsage for a bad argument).
  void Fail(const Status& status, int code);
};

// Prints "relsupd: MESSAGE\n" to `out`, further lines of MESSAGE indented.
void PrintError(std::ostream& out, std::string_view message);
// The --json form of an error (see the top of this file); `status` is
// StatusCodeName of the failure, or empty.
rpc::Json ErrorJson(int exit_code, std::string_view status, std::string_view message);
// Prints an error as --json or not asks: JSON on stdout, else PrintError on
// stderr.
void ReportError(bool json, int exit_code, std::string_view status,
                 std::string_view message);

// Adds `ctl` and its verbs under `root`; results land in `ctx`. With
// `verb` (CtlVerbOf) one of theirs, only the verbs added with it are
// added: a command line builds no more of the CLI than it parses (a
// `relsupd ctl ps` spends most of its own time in CLI11 otherwise). Any
// other `verb` (none, `help`, one misspelt) adds them all.
void AddCtlCommand(CLI::App& root, CtlContext* ctx, std::string_view verb = "");
// The ctl verb of a command line `relsupd ctl [--socket S] [--json] VERB
// ...`, or "" when it is not one.
std::string_view CtlVerbOf(int argc, char** argv);
// Each function that adds ctl verbs, with each verb it adds (for tests).
using AddVerbsFn = void (*)(CLI::App& ctl, CtlContext* ctx);
struct VerbAdder {
  std::string_view verb;
  AddVerbsFn add;  // nullptr: added elsewhere (deploy)
};
std::vector<VerbAdder> CtlVerbAdders();

// Verb groups, one file each.
void AddInfoVerb(CLI::App& ctl, CtlContext* ctx);
void AddDaemonVerbs(CLI::App& ctl, CtlContext* ctx);  // ctl_daemon.cc
void AddAppVerbs(CLI::App& ctl, CtlContext* ctx);
void AddHistoryVerb(CLI::App& ctl, CtlContext* ctx);
void AddEventsVerb(CLI::App& ctl, CtlContext* ctx);  // ctl_history.cc
void AddReleaseStageVerbs(CLI::App& ctl, CtlContext* ctx);
// ps and status, each alone: the verbs a script or a benchmark calls most,
// so that their command line builds nothing else (ctl_process.cc).
void AddPsVerb(CLI::App& ctl, CtlContext* ctx);
void AddStatusVerb(CLI::App& ctl, CtlContext* ctx);
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

// Adds the subcommand `name` under `parent`, its first argument a required
// APP read into `app`; returns it for the rest of its options.
CLI::App* AddAppCommand(CLI::App& parent, const std::string& name,
                        const std::string& help, std::string* app,
                        const std::string& app_help = "App");

// A verb whose one argument is a required APP: it calls `method` with
// {`key`: APP} and hands the result to `human` (see CallAndPrint).
struct AppVerb {
  const char* name;
  const char* help;
  const char* method;
  const char* app_help = "App name";  // APP's line in --help
  const char* key = "app";
};
// Gives `verb` a footer of its own, printed in its --help above the one
// it has from ctl (exit codes, errors), which CLI11's footer() would
// replace.
void SetVerbFooter(CLI::App* verb, std::string text);

// Adds `verb` under `parent`; returns it for more settings (a footer).
CLI::App* AddAppVerb(CLI::App& parent, CtlContext* ctx, const AppVerb& verb,
                     std::function<void(const rpc::Json&)> human);

}  // namespace relsupd::cli
