#pragma once
// The re-exec probe (docs/reexec.md §5.1 step 4): before it execs a binary,
// the daemon runs it once as `relsupd-core daemon --reexec-probe`. The
// probe touches no state; it prints one JSON line naming its version, the
// handover versions it reads and the ledger schema it knows, and exits 0:
//
//   {"version":"0.10.0","handover":[1,2],"schema":7,"standin":true}
//
// The daemon checks that answer against what it writes and what its ledger
// holds before anything changes. A binary older than daemon-reexec fails
// the probe with a usage error and is refused.
//
// Pure functions, any thread; RunReexecProbe writes to stdout.

#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace relsupd {

struct ProbeAnswer {
  std::string version;           // "0.10.0"
  int handover_oldest = 0;       // handover versions it reads: oldest..newest
  int handover_newest = 0;
  int schema = 0;                // the newest ledger schema it opens
  // It stops a stand-in named in RELSUPD_REEXEC_STANDIN (§6.6); an older
  // binary would leave one running, so it gets none.
  bool standin = false;
  bool operator==(const ProbeAnswer&) const = default;
};

// This binary's answer.
ProbeAnswer OwnProbeAnswer();

// The answer as the probe prints it: one JSON line, without the newline.
std::string FormatProbeAnswer(const ProbeAnswer& answer);

// Reads what the probe printed (one line, surrounding blanks ignored).
// kInvalidArgument naming what is missing or wrong.
Result<ProbeAnswer> ParseProbeAnswer(std::string_view out);

// Whether this daemon, writing handover version `writes` over a ledger at
// schema `ledger_schema`, may exec the binary at `path` that answered
// `answer`. kFailedPrecondition with the reason and what to do otherwise:
// "relsupd 0.8.0 reads handover versions 1-1; this daemon writes 2: use
// systemctl restart relsupd".
Status CheckProbeAnswer(const std::string& path, const ProbeAnswer& answer,
                        int writes, int ledger_schema);

// `relsupd-core daemon --reexec-probe`: prints OwnProbeAnswer() and
// returns the exit code (0).
int RunReexecProbe();

}  // namespace relsupd
