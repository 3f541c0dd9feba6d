#pragma once
// End-to-end test harness: the real `relsupd` binary on a temporary state
// dir, driven by the real CLI. Everything here lives in the support library
// (tests/support/, no Catch2); this header names it in relsupd::e2e for the
// e2e, release and run tests. Test thread only.

#include "tests/support/cli.h"
#include "tests/support/daemon_process.h"
#include "tests/support/proc.h"
#include "tests/support/process.h"
#include "tests/support/sockets.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace relsupd::e2e {

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

}  // namespace relsupd::e2e
