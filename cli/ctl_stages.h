#pragma once
// The client calls of the stage verbs that `ctl deploy` chains, shared so
// that deploy runs the very code of `build import` (cli/ctl_release.cc),
// `release create` (its config changes, cli/ctl_release.cc) and `activate`
// (cli/ctl_process.cc). Each prints through std::cout/std::cerr as its verb
// does; the caller owns the Client. Main thread only.

#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/ctl.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd::cli {

// `build import`: sends the open artifact `fd` to the daemon and returns its
// reply. Draws progress on stderr when `progress`, stderr is a terminal and
// the file is large enough to be worth it.
// Opens `path` as an artifact to import: a regular file, and with
// Sniff::kYes one whose first bytes are a tar (ustar), tar.gz or tar.zst
// archive (`build import` leaves that to the daemon, which also reads
// older tars). Errors name it as `label` ("FILE", "SRC") and say what it is
// instead; `instead` ("neither a directory nor ") words what else the verb
// would take.
enum class Sniff { kNo, kYes };
Result<Fd> OpenArtifactFile(const std::string& path, const std::string& label,
                            const std::string& instead = "not ", Sniff sniff = Sniff::kNo);
Result<rpc::Json> ImportArtifact(Client& client, const std::string& app, int fd,
                                 bool progress);
// "Imported build ID (sha256:..., SIZE, N entries)", from ImportArtifact's
// reply.
std::string DescribeImport(const rpc::Json& imported);

// `release create`'s config changes: the KEY=VALUE lines of `env_file` (if
// not empty), then each of `sets`, into `set`. On a bad one prints the
// error, sets ctx's exit code to kExitUsage and returns false.
bool ReadConfigChanges(const std::string& env_file,
                       const std::vector<std::string>& sets, rpc::Json* set,
                       CtlContext* ctx);
// "v3 (from v2 + GREETING)": a new release and what it started from (the
// reply of release.create, config.set or config.unset); `sign` '+' for keys
// set, '-' for keys removed.
std::string DescribeCreated(const rpc::Json& created, char sign);

// `activate` and `rollback`.
struct SwitchArgs {
  std::string app;
  std::string release;
  std::string strategy;
  bool no_wait = false;
  bool rerun_release_phase = false;
  std::string prefix;  // put before each line of our own ("activate: ")
};
struct SwitchResult {
  // Ok: the release is live (with no_wait: the switch began). Else why not.
  Status status;
  // Whether `status` is the switch's own failure (it began and did not end
  // live), not a refused or failed call.
  bool switch_failed = false;
  // The daemon's reply (no_wait) or the switch's outcome (`last_switch`:
  // id, ok, live, message); null when a call failed.
  rpc::Json outcome;
};
// Asks for the switch and, unless no_wait, follows it with `status` polls,
// printing each instance's state as it changes (not with --json).
SwitchResult StartSwitch(CtlContext* ctx, Client& client, const SwitchArgs& a,
                         bool rollback);

}  // namespace relsupd::cli
