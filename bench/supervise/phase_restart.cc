// Phase 1 of the supervise benchmark, restart latency (see phases.h).

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

std::optional<std::map<std::string, pid_t>> StartChildrenAndWait(Peer& peer, HelloSocket& hello,
                                                                 int n, std::string* na) {
  while (hello.Receive(0)) {
  }  // stale hellos
  if (!peer.StartChildren(n, na)) {
    peer.StopPhase();
    return std::nullopt;
  }
  std::map<std::string, pid_t> up;
  const int64_t deadline = MonoNs() + 60'000'000'000;
  while (static_cast<int>(up.size()) < n && MonoNs() < deadline && !g_interrupted.load()) {
    if (auto h = hello.Receive(100)) up[h->id] = h->pid;
  }
  if (static_cast<int>(up.size()) < n) {
    *na = std::to_string(up.size()) + " of " + std::to_string(n) +
          " instances reported within 60 s";
    peer.StopPhase();
    return std::nullopt;
  }
  return up;
}

// Restart latency: `k` instances, killed round-robin, `kills` times.
void MeasureRestart(Peer& peer, HelloSocket& hello, const Options& o,
                    PeerResult* res) {
  std::optional<std::map<std::string, pid_t>> started =
      StartChildrenAndWait(peer, hello, o.instances, &res->restart_na);
  if (!started) return;
  std::map<std::string, pid_t> current = std::move(*started);
  std::vector<std::string> ids;
  for (const auto& [id, pid] : current) ids.push_back(id);
  // Every instance up for longer than the peers' "stable" thresholds (runsv
  // 1 s, supervisord startsecs 1 s, PM2 min_uptime 1 s, relsupd's reset).
  SleepMs(1500);
  std::set<pid_t> children;
  for (const auto& [id, pid] : current) children.insert(pid);
  const auto cpu_before = TreeCpu(peer.Root(), children);
  for (int i = 0; i < o.kills && !g_interrupted.load(); ++i) {
    SleepMs(o.gap_ms);
    while (auto h = hello.Receive(0)) current[h->id] = h->pid;
    const std::string& id = ids[static_cast<size_t>(i) % ids.size()];
    const pid_t old = current[id];
    const int64_t t0 = MonoNs();
    if (kill(old, SIGKILL) != 0) {
      ++res->restart_timeouts;
      continue;
    }
    const int64_t wait_until = t0 + 10'000'000'000;
    bool got = false;
    while (!got && MonoNs() < wait_until && !g_interrupted.load()) {
      auto h = hello.Receive(50);
      if (!h) continue;
      current[h->id] = h->pid;
      if (id == h->id && h->pid != old) {
        res->restart_ms.push_back(static_cast<double>(h->monotonic_ns - t0) /
                                  1e6);
        // The replacement now sleeps in pause(): its schedstat is its life
        // from fork to here (exec steps included).
        int64_t run_ns = 0, wait_ns = 0;
        if (SchedStat(h->pid, &run_ns, &wait_ns)) {
          res->child_cpu_ms.push_back(static_cast<double>(run_ns) / 1e6);
          res->child_wait_ms.push_back(static_cast<double>(wait_ns) / 1e6);
        }
        got = true;
      }
    }
    if (!got) ++res->restart_timeouts;
  }
  // The supervisor's own processes (not the children) over the kills.
  std::set<pid_t> now_children;
  for (const auto& [id, pid] : current) now_children.insert(pid);
  const auto cpu_after = TreeCpu(peer.Root(), now_children);
  if (!res->restart_ms.empty() && !cpu_before.empty())
    res->restart_sup_cpu_us =
        static_cast<double>(CpuUsed(cpu_before, cpu_after, false)) / 1e3 /
        static_cast<double>(res->restart_ms.size());
  peer.StopPhase();
}

}  // namespace relsupd::bench::supervise
