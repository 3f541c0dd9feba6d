// Phase 3 of the supervise benchmark, the crash storm (see phases.h).

#include <signal.h>
#include <sys/wait.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bench/supervise/phases.h"
#include "bench/supervise/proc.h"
#include "bench/supervise/util.h"

namespace relsupd::bench::supervise {

namespace fs = std::filesystem;

// Storm: `m` crashing services; the supervisor's CPU and status queries
// over o.storm_s seconds.
void MeasureStorm(Peer& peer, const Options& o, PeerResult* res) {
  std::string error;
  if (!peer.StartStorm(o.storm, &error)) {
    res->storm_na = error;
    peer.StopPhase();
    return;
  }
  SleepMs(2000);  // the storm under way
  const pid_t root = peer.Root();
  auto before = TreeCpu(root);
  const int64_t t0 = MonoNs();
  const int64_t end = t0 + static_cast<int64_t>(o.storm_s * 1e9);
  std::vector<std::string> cmd = peer.StatusCommand();
  for (size_t i = 0; i < cmd.size(); ++i) {
    if (i == 4) {
      res->status_cmd += " ... (" + std::to_string(cmd.size()) + " words)";
      break;
    }
    // Paths shortened to their last component.
    std::string shown = cmd[i].find('/') != std::string::npos
                            ? fs::path(cmd[i]).filename().string()
                            : cmd[i];
    res->status_cmd += (res->status_cmd.empty() ? "" : " ") + shown;
  }
  while (!g_interrupted.load() && (MonoNs() < end || res->status_ms.empty())) {
    RunOptions quiet;  // output to /dev/null
    quiet.env = peer.StatusEnv();
    quiet.timeout_s = 60;
    RunResult r = Run(cmd, quiet);
    // supervisorctl and sv exit non-zero when a service is not up: only a
    // failure to run (127) or a timeout counts.
    if (WIFEXITED(r.status) && WEXITSTATUS(r.status) != 127 && r.err.empty()) {
      res->status_ms.push_back(r.ms);
      res->status_cpu_ms.push_back(r.cpu_ms);
      double direct = peer.DirectStatusMs();
      if (direct >= 0) res->direct_ms.push_back(direct);
    } else {
      if (res->status_first_failure.empty())
        res->status_first_failure = r.Describe();
      ++res->status_failures;
    }
    SleepMs(o.status_gap_ms);
  }
  auto after = TreeCpu(root);
  const int64_t t1 = MonoNs();
  int procs = 0;
  const int64_t used = CpuUsed(before, after, false, &procs);
  res->storm_cpu = static_cast<double>(used) / static_cast<double>(t1 - t0);
  res->storm_sup_procs = procs;
  peer.StopPhase();
}

}  // namespace relsupd::bench::supervise
