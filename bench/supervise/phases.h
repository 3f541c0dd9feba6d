// The phases of the supervise benchmark, each run on one peer and filling
// its part of the PeerResult: restart latency, fan-out with memory, crash
// storm, log throughput. One file per phase (phase_*.cc).
//
// Each phase starts what it measures through the Peer and ends with
// peer.StopPhase(), also when it fails (then its *_na says why). Runs on
// the benchmark's one thread.

#ifndef RELSUPD_BENCH_SUPERVISE_PHASES_H_
#define RELSUPD_BENCH_SUPERVISE_PHASES_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>

#include "bench/supervise/exec_watcher.h"
#include "bench/supervise/hello_socket.h"
#include "bench/supervise/options.h"
#include "bench/supervise/peer.h"

namespace relsupd::bench::supervise {

// What the restart and ctl phases start with: the peer's `n` supervise
// children started, and each one's hello within 60 s. Their pids by hello
// id; none when not all came (then *na says why, and the phase is
// stopped).
std::optional<std::map<std::string, pid_t>> StartChildrenAndWait(Peer& peer, HelloSocket& hello,
                                                                 int n, std::string* na);

// Restart latency: o.instances instances, killed round-robin, o.kills times.
void MeasureRestart(Peer& peer, HelloSocket& hello, const Options& o,
                    PeerResult* res);
// Fan-out: o.fanout sleeps from the trigger until the last exec'd; then
// memory. `index` picks the peer's sleep marker.
void MeasureFanout(Peer& peer, ExecWatcher& watcher, int index,
                   const Options& o, PeerResult* res);
// Storm: o.storm crashing services; the supervisor's CPU and status queries
// over o.storm_s seconds.
void MeasureStorm(Peer& peer, const Options& o, PeerResult* res);
// Log throughput: one log_writer writing o.LogLines() lines; from its first
// write until its last line is in one of the peer's log files; then every
// captured line is checked against what the writer wrote.
void MeasureLog(Peer& peer, HelloSocket& hello, const Options& o,
                PeerResult* res);
// ctl: o.ctl_instances instances running, nothing else; o.ctl_runs runs of
// the peer's status command over them, one at a time, each a whole
// process (its start-up included), after 10 untimed ones.
void MeasureCtl(Peer& peer, HelloSocket& hello, const Options& o,
                PeerResult* res);

}  // namespace relsupd::bench::supervise

#endif  // RELSUPD_BENCH_SUPERVISE_PHASES_H_
