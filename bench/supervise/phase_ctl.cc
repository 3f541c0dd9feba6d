// The ctl phase of the supervise benchmark: the status command as a whole
// process (see phases.h). Issue 17's figure: `relsupd ctl ps` over 100
// instances against `sv status` over 100 services, start-up included.

#include <sys/wait.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bench/supervise/phases.h"
#include "bench/supervise/util.h"

namespace relsupd::bench::supervise {

void MeasureCtl(Peer& peer, HelloSocket& hello, const Options& o, PeerResult* res) {
  // Every instance said hello: all of them run.
  if (!StartChildrenAndWait(peer, hello, o.ctl_instances, &res->ctl_na)) return;
  SleepMs(1500);  // past every peer's "stable" threshold, as the restart phase
  const std::vector<std::string> cmd = peer.StatusCommand();
  res->ctl_cmd = std::filesystem::path(cmd[0]).filename().string();
  for (size_t i = 1; i < cmd.size() && i < 4; ++i)
    res->ctl_cmd += " " + (cmd[i].find('/') != std::string::npos
                               ? std::filesystem::path(cmd[i]).filename().string()
                               : cmd[i]);
  if (cmd.size() > 4) res->ctl_cmd += " ... (" + std::to_string(cmd.size()) + " words)";
  RunOptions quiet;  // output to /dev/null
  quiet.env = peer.StatusEnv();
  quiet.timeout_s = 60;
  for (int i = 0; i < 10 + o.ctl_runs && !g_interrupted.load(); ++i) {
    RunResult r = Run(cmd, quiet);
    // sv and supervisorctl exit non-zero when a service is not up: only a
    // failure to run (127) or a timeout ends the phase.
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) == 127 || !r.err.empty()) {
      res->ctl_na = r.Describe();
      res->ctl_ms.clear();
      break;
    }
    if (i < 10) continue;
    res->ctl_ms.push_back(r.ms);
    res->ctl_cpu_ms.push_back(r.cpu_ms);
  }
  peer.StopPhase();
}

}  // namespace relsupd::bench::supervise
