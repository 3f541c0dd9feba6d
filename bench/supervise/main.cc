// supervise: the run stage against its peers (issue 4's benchmark).
//
// Measures, in one run and side by side, relsupd, runit (runsvdir/runsv),
// supervisord and PM2 (one file each: peer_*.cc):
//   1. restart latency: SIGKILL of a child until its replacement reached
//      main() (bench/supervise_child sends a CLOCK_MONOTONIC timestamp over
//      a unix datagram socket); K instances killed round-robin so that each
//      kill is a first restart (no backoff); median and p95;
//   2. fan-out: N instances of `sleep` started at once, from the trigger
//      (relsupd: `ctl scale`; runit: runsvdir on N service dirs;
//      supervisord: supervisord with numprocs=N; PM2: `pm2 start` of an
//      ecosystem file with N apps) until the N-th `sleep` exec'd, taken from
//      the kernel's exec events (proc connector), /proc polling otherwise;
//   3. memory with the N instances up: the supervisor's RSS and the PSS of
//      its processes, and of the whole tree with the N sleeps;
//   4. crash storm: M services that exit 1 at once, restarting forever:
//      the supervisor's CPU over a window and the wall time of one status
//      query meanwhile (`relsupd ctl ps`, `sv status`, `supervisorctl
//      status`, `pm2 jlist`);
//   5. log throughput: one bench/log_writer writing --log-mb MB of
//      numbered lines to stdout as fast as it can, captured to disk by the
//      peer (relsupd's log store, svlogd, supervisord's stdout_logfile,
//      PM2's out file): MB/s from its first write until its last line is in
//      a log file, and every captured file parsed for lines lost.
// (one file per phase: phase_*.cc) and prints a table with PASS/FAIL
// against relsupd's targets (report.cc). A peer that is not installed (PM2
// is installed with npm into the temporary dir when absent) is printed as
// "n/a (reason)". Everything runs in a temporary dir; every process started
// is stopped by pid, and the benchmark is a child subreaper so that
// daemonized peers (PM2's God daemon, runsv orphans) stay in its tree and
// are reaped. Exit code 0 whatever the figures; 1 when a setup step failed
// for relsupd itself; 2 on a usage error.
//
//   build/bench/supervise [--relsupd PATH] [--pm2 PATH] [--peers LIST]
//                         [--phases LIST] ...
//
// See bench/README.md ("supervise") for what is fair and how. This file is
// the wiring only; it runs on the benchmark's one thread.

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bench/supervise/exec_watcher.h"
#include "bench/supervise/hello_socket.h"
#include "bench/supervise/options.h"
#include "bench/supervise/peer.h"
#include "bench/supervise/phases.h"
#include "bench/supervise/proc.h"
#include "bench/supervise/report.h"
#include "bench/supervise/util.h"

namespace relsupd::bench::supervise {
namespace {

namespace fs = std::filesystem;

// The binaries the benchmark runs, made absolute; false (printed) when one
// cannot be executed.
bool ResolveBinaries(Options* o) {
  for (std::string* bin : {&o->relsupd, &o->child, &o->writer}) {
    if (access(bin->c_str(), X_OK) != 0) {
      std::fprintf(stderr, "supervise: cannot execute %s: %s\n", bin->c_str(),
                   std::strerror(errno));
      return false;
    }
    *bin = fs::absolute(*bin).string();
  }
  if (!o->pm2.empty()) o->pm2 = fs::absolute(o->pm2).string();
  return true;
}

// Signals set g_interrupted; the benchmark becomes a child subreaper and,
// with --rt, SCHED_FIFO. False (printed) when that fails.
bool SetUpProcess(const Options& o) {
  InstallInterruptHandlers();
  // Daemonizing peers (PM2's God, runsv orphans) stay our descendants.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (o.rt_priority > 0) {
    // Inherited by every process started from here on (none resets it).
    sched_param sp{};
    sp.sched_priority = o.rt_priority;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
      std::fprintf(stderr, "supervise: SCHED_FIFO %d: %s\n", o.rt_priority,
                   std::strerror(errno));
      return false;
    }
  }
  return true;
}

// The header line: cores, load average, what will be measured.
void PrintPlan(const Options& o) {
  const std::string load = LoadAverage();
  std::string plan;
  auto add_plan = [&](const std::string& what) {
    plan += (plan.empty() ? "" : ", ") + what;
  };
  if (o.Phase("restart"))
    add_plan("restart latency over " + std::to_string(o.kills) + " kills of " +
             std::to_string(o.instances) + " instances");
  if (o.Phase("fanout"))
    add_plan("fan-out of " + std::to_string(o.fanout) + " sleeps");
  if (o.Phase("storm"))
    add_plan("storm of " + std::to_string(o.storm) + " crashing services");
  if (o.Phase("log"))
    add_plan("log throughput of " + std::to_string(o.LogLines()) +
             " lines of " + std::to_string(o.log_line_bytes) + " bytes (" +
             std::to_string(o.log_mb) + " MB)");
  std::printf("supervise (%u cores, load average %s%s): %s\n",
              std::thread::hardware_concurrency(), load.c_str(),
              o.rt_priority > 0
                  ? (", SCHED_FIFO " + std::to_string(o.rt_priority)).c_str()
                  : "",
              plan.c_str());
  std::fflush(stdout);
}

std::unique_ptr<Peer> NewPeer(const std::string& name, const Options& o,
                              const std::string& dir, HelloSocket* hello) {
  if (name == "relsupd") return NewRelsupdPeer(o, dir, hello);
  if (name == "runit") return NewRunitPeer(o, dir, hello);
  if (name == "supervisord") return NewSupervisordPeer(o, dir, hello);
  return NewPm2Peer(o, dir, hello);
}

// The phases of o.phases on one peer, printing progress.
void RunPhases(Peer& peer, int index, const Options& o, HelloSocket& hello,
               ExecWatcher& watcher, PeerResult* res) {
  if (o.Phase("restart") && !g_interrupted.load()) {
    std::printf(" restart latency ...");
    std::fflush(stdout);
    MeasureRestart(peer, hello, o, res);
  }
  if (o.Phase("fanout") && !g_interrupted.load()) {
    std::printf(" fan-out ...");
    std::fflush(stdout);
    MeasureFanout(peer, watcher, index, o, res);
  }
  if (o.Phase("storm") && !g_interrupted.load()) {
    std::printf(" storm ...");
    std::fflush(stdout);
    MeasureStorm(peer, o, res);
  }
  if (o.Phase("log") && !g_interrupted.load()) {
    std::printf(" log throughput ...");
    std::fflush(stdout);
    MeasureLog(peer, hello, o, res);
  }
  if (o.Phase("ctl") && !g_interrupted.load()) {
    std::printf(" status command ...");
    std::fflush(stdout);
    MeasureCtl(peer, hello, o, res);
  }
}

// One peer: set up, every phase, torn down. False when relsupd itself
// could not be set up.
bool RunPeer(int index, const Options& o, const std::string& tmp,
             HelloSocket& hello, ExecWatcher& watcher,
             std::vector<PeerResult>* results,
             std::vector<std::string>* configs) {
  const std::string& name = kAllPeers[static_cast<size_t>(index)];
  PeerResult res;
  res.name = name;
  const std::string dir = tmp + "/" + name;
  fs::create_directories(dir);
  std::unique_ptr<Peer> peer = NewPeer(name, o, dir, &hello);
  std::string why;
  if (!peer->Setup(&why, &res.version)) {
    res.na = why;
    std::printf("%s: n/a (%s)\n", name.c_str(), why.c_str());
    peer->Teardown();
    results->push_back(res);
    return name != "relsupd";
  }
  configs->push_back(peer->Config());
  std::printf("%s %s:", name.c_str(), res.version.c_str());
  std::fflush(stdout);
  RunPhases(*peer, index, o, hello, watcher, &res);
  peer->Teardown();
  std::printf(" done\n");
  std::fflush(stdout);
  results->push_back(res);
  return true;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return UsageError(Usage);
  if (!ResolveBinaries(&o) || !SetUpProcess(o)) return 1;
  BenchDir tmp;
  tmp.keep = o.keep;
  if (!tmp.Make("supervise", "relsupd-supervise", 0755)) return 1;
  HelloSocket hello;
  std::string error;
  if (!hello.Open(tmp.path() + "/hello.sock", &error)) {
    std::fprintf(stderr, "supervise: %s\n", error.c_str());
    return 1;
  }
  ExecWatcher watcher;
  std::string watcher_note;
  if (!watcher.Listen(&watcher_note))
    std::fprintf(
        stderr,
        "supervise: no exec events (%s): fan-out is timed by polling /proc\n",
        watcher_note.c_str());
  PrintPlan(o);

  std::vector<PeerResult> results;
  std::vector<std::string> configs;
  int exit_code = 0;
  for (size_t index = 0; index < kAllPeers.size() && !g_interrupted.load();
       ++index) {
    if (std::find(o.peers.begin(), o.peers.end(), kAllPeers[index]) ==
        o.peers.end())
      continue;
    if (!RunPeer(static_cast<int>(index), o, tmp.path(), hello, watcher,
                 &results, &configs))
      exit_code = 1;
  }
  KillStrays();
  PrintTable(results, o);
  PrintNotes(results, configs, o);
  if (g_interrupted.load()) std::printf("interrupted\n");
  return exit_code;
}

}  // namespace
}  // namespace relsupd::bench::supervise

int main(int argc, char** argv) {
  return relsupd::bench::supervise::Main(argc, argv);
}
