// The supervise benchmark's output: the table of figures (a column per
// peer, relsupd's targets with PASS/FAIL) and the notes under it.
//
// Reads the results only; prints to stdout. Single-threaded.

#ifndef RELSUPD_BENCH_SUPERVISE_REPORT_H_
#define RELSUPD_BENCH_SUPERVISE_REPORT_H_

#include <string>
#include <vector>

#include "bench/supervise/options.h"
#include "bench/supervise/peer.h"

namespace relsupd::bench::supervise {

// The rows of the phases that ran (o.phases).
void PrintTable(const std::vector<PeerResult>& results, const Options& o);
// Per peer what was n/a and how it was measured, each peer's settings,
// and what the figures mean.
void PrintNotes(const std::vector<PeerResult>& results,
                const std::vector<std::string>& configs, const Options& o);

}  // namespace relsupd::bench::supervise

#endif  // RELSUPD_BENCH_SUPERVISE_REPORT_H_
