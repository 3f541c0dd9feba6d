// /proc readers of the supervise benchmark: process trees, CPU time and
// run-queue wait, memory fields; and the clean-up of stray descendants.
//
// Free functions, no state; called from the benchmark's one thread. The
// benchmark is a child subreaper, so orphans of a supervisor stay in its
// tree (KillStrays).

#ifndef RELSUPD_BENCH_SUPERVISE_PROC_H_
#define RELSUPD_BENCH_SUPERVISE_PROC_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_support.h"

namespace relsupd::bench::supervise {

struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';
  std::string comm;
  uint64_t starttime = 0;  // clock ticks after boot
};

// A per-process figure (ns) keyed by (pid, start time).
using ProcNs = std::map<std::pair<pid_t, uint64_t>, int64_t>;

bool ReadProcStat(pid_t pid, ProcStat* st);
std::vector<ProcStat> AllProcs();
// `root` and all its descendants.
std::vector<ProcStat> Tree(pid_t root);
std::string Cmdline(pid_t pid);
// A field of /proc/PID/status or smaps_rollup ("VmRSS:", "Pss:") in kB; -1.
int64_t ProcKb(pid_t pid, const char* file, const char* key);
// /proc/PID/schedstat of the main thread: ns on a CPU and ns waiting for
// one (run queue). False when gone.
bool SchedStat(pid_t pid, int64_t* run_ns, int64_t* wait_ns);

// Kills (SIGKILL, by pid) and reaps every descendant of the benchmark
// except those in `keep` and their descendants. Returns how many it had to
// kill; `what` gets "PID COMM" of each.
int KillStrays(const std::set<pid_t>& keep = {}, std::string* what = nullptr);
// KillStrays, and a line on stderr when it found any ("supervise: PEER:
// killed N processes left after WHEN: ...").
void KillStraysAfter(const char* peer, const char* when);
// Reaps `*pid`, a process the benchmark adopted (it is a subreaper), once
// it exits, waiting up to `timeout_s`; then sets *pid to -1. Nothing when
// *pid is not set.
void ReapAdopted(pid_t* pid, double timeout_s);
// Waits until `root` has no descendants (other than itself) for up to
// `timeout_s`; reaps adopted zombies meanwhile. True when none are left.
bool WaitNoDescendants(pid_t root, double timeout_s);

// CPU (ns) of the processes of `root`'s tree that are not in `exclude`.
ProcNs TreeCpu(pid_t root, const std::set<pid_t>& exclude = {});
// Run-queue wait (ns) of every thread of the processes of `root`'s tree
// that are not in `exclude`.
ProcNs TreeWait(pid_t root, const std::set<pid_t>& exclude = {});
// CPU used between two TreeCpu (or TreeWait) snapshots: processes in both
// count their difference; with `count_new`, those only in `after` count
// all of theirs.
int64_t CpuUsed(const ProcNs& before, const ProcNs& after, bool count_new,
                int* procs = nullptr);

}  // namespace relsupd::bench::supervise

#endif  // RELSUPD_BENCH_SUPERVISE_PROC_H_
