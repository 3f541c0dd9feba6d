// Phase 2 of the supervise benchmark, fan-out and memory (see phases.h).

#include <signal.h>
#include <sys/wait.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bench/supervise/phases.h"
#include "bench/supervise/proc.h"
#include "bench/supervise/util.h"

namespace relsupd::bench::supervise {

// Fan-out: `n` sleeps from the trigger until the n-th exec'd; then memory.
void MeasureFanout(Peer& peer, ExecWatcher& watcher, int index,
                   const Options& o, PeerResult* res) {
  std::string error;
  const std::string marker = kSleepMarker[index];
  if (!peer.PrepareFanout(o.fanout, marker, &error)) {
    res->fanout_na = error;
    peer.StopPhase();
    return;
  }
  watcher.Drain();
  // relsupd and PM2 run before the trigger; runsvdir and supervisord are
  // started by it (all their CPU counts).
  const auto cpu_before = TreeCpu(peer.Root());
  if (peer.Root() > 0)
    res->root_rss_idle_kb =
        static_cast<double>(ProcKb(peer.Root(), "status", "VmRSS:"));
  const int64_t t0 = MonoNs();
  if (!peer.TriggerFanout(&error)) {
    res->fanout_na = error;
    peer.StopPhase();
    return;
  }
  std::set<pid_t> sleeps;
  int64_t t1 =
      watcher.WaitSleeps(marker, o.fanout, 120, &res->fanout_how, &sleeps);
  // Read at once (the supervisor keeps working a little after the last
  // exec: this is the CPU up to about then).
  const auto cpu_after = TreeCpu(peer.Root(), sleeps);
  res->trigger_ms = peer.FinishTrigger();
  if (t1 < 0) {
    res->fanout_na =
        g_interrupted.load()
            ? "interrupted"
            : "not all " + std::to_string(o.fanout) + " running within 120 s";
    peer.StopPhase();
    return;
  }
  res->fanout_s = static_cast<double>(t1 - t0) / 1e9;
  res->fanout_sup_cpu_s =
      static_cast<double>(CpuUsed(cpu_before, cpu_after, true)) / 1e9;
  // Memory once things settled.
  SleepMs(1000);
  const pid_t root = peer.Root();
  res->root_rss_kb = static_cast<double>(ProcKb(root, "status", "VmRSS:"));
  res->root_anon_kb = static_cast<double>(ProcKb(root, "status", "RssAnon:"));
  res->root_file_kb = static_cast<double>(ProcKb(root, "status", "RssFile:"));
  double sup = 0, all = 0;
  for (const auto& p : Tree(root)) {
    int64_t pss = ProcKb(p.pid, "smaps_rollup", "Pss:");
    if (pss < 0) continue;
    all += static_cast<double>(pss);
    ++res->tree_procs;
    if (!sleeps.count(p.pid)) {
      sup += static_cast<double>(pss);
      ++res->sup_procs;
    }
  }
  res->sup_pss_kb = sup;
  res->tree_pss_kb = all;
  peer.StopPhase();
}

}  // namespace relsupd::bench::supervise
