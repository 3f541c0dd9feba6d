#pragma once
// End-to-end test harness: the real `relsupd` binary on a temporary state
// dir, driven by the real CLI. The helpers live in the support library
// (tests/support/, no Catch2); this header names them in relsupd::e2e for
// the e2e, release and run tests, and adds the few that speak Catch2. Test
// thread only.

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/cli.h"
#include "tests/support/daemon_process.h"
#include "tests/support/proc.h"
#include "tests/support/process.h"
#include "tests/support/sockets.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace relsupd::e2e {

// The hostile tests' bound on one answer to another client during an attack.
// What they guard against is a stall: a lingering close() holds the loop for
// its 30 s linger, a heavy read done on the loop holds it for seconds. On a
// quiet machine the worst answer is a few ms (each test prints it); the bound
// leaves room for an ASan build on a loaded 2-core CI host, so the tests wait
// for states, not for a tight wall-clock margin.
constexpr int64_t kStallMs = 1'000;

using support::Call;
using support::CallRaw;
using support::Credentials;
using support::CtlJson;
using support::CtlOk;
using support::DaemonOptions;
using support::DaemonProcess;
using support::ExitStatus;
using support::Field;
using support::GroupNameOf;
using support::HasLine;
using support::Json;
using support::NobodyCredentials;
using support::NobodyToRunAs;
using support::NotifySocket;
using support::NowMs;
using support::OpenFdCount;
using support::ProcResult;
using support::RawConn;
using support::RelsupdBin;
using support::RunCtl;
using support::RunOptions;
using support::RunProcess;
using support::SanitizerReport;
using support::TempDir;

// nobody, and the name of its primary group in `group`, when the test may
// run a child as nobody; else nullopt, after a WARN that says why the test
// is skipped.
inline std::optional<Credentials> NobodyOrSkip(std::string* group) {
  std::string why_not;
  auto nobody = NobodyToRunAs(group, &why_not);
  if (!nobody) WARN(why_not << ", skipping");
  return nobody;
}

// Runs `relsupd daemon ARGS...` where it must refuse to start: checks that
// it exited by itself within `timeout_ms`, and not with status 0.
inline ProcResult RunRefusedDaemon(std::vector<std::string> args,
                                   int timeout_ms) {
  args.insert(args.begin(), {RelsupdBin(), "daemon"});
  ProcResult r = RunProcess(args, RunOptions{.timeout_ms = timeout_ms});
  INFO(r.Describe());
  CHECK_FALSE(r.status.timed_out);
  CHECK_FALSE(r.status.Exited(0));
  return r;
}

// A daemon on a fresh temp dir, for TEST_CASE_METHOD.
struct DaemonFixture {
  TempDir dir;
  DaemonProcess d{dir};
};

// Checks that the daemon on `socket` holds no app and no event: what a
// refused request must leave behind.
inline void CheckNothingRecorded(const std::string& socket) {
  CHECK(CtlJson(socket, {"app", "list"}).empty());
  CHECK(CtlJson(socket, {"history"}).empty());
}

}  // namespace relsupd::e2e
