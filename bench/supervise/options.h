// The supervise benchmark's options, relsupd's targets and the settings
// every peer shares (log rotation, sleep markers).
//
// Options is filled once by ParseArgs in main() and then only read, by
// reference, from the peers and the phases; g_interrupted is set by the
// signal handler and read everywhere. Single-threaded.

#ifndef RELSUPD_BENCH_SUPERVISE_OPTIONS_H_
#define RELSUPD_BENCH_SUPERVISE_OPTIONS_H_

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "bench/bench_support.h"

namespace relsupd::bench::supervise {

// relsupd's targets (issue 4's, tightened by issue 17's margins).
constexpr double kTargetRestartMedianMs = 0.8;
constexpr double kTargetRestartP95Ms = 1.5;
constexpr double kTargetFanoutS = 0.3;
constexpr double kTargetRssBytes = 20e6;  // 20 MB
constexpr double kTargetStormCpu = 0.05;  // of one core
constexpr double kTargetPsP99Ms = 10.0;       // the `ctl ps` process
constexpr double kTargetSocketPsP99Ms = 5.0;  // its request over the socket
constexpr double kTargetLogMBps = 800.0;  // MB = 10^6 bytes

// Log-throughput settings for every peer: files rotated at 64 MiB, and as
// many of them kept as the run needs (see LogFilesToKeep), so that rotation
// drops nothing; relsupd's per-instance rate limit at 1 GiB/s.
constexpr int64_t kLogFileBytes = int64_t{64} << 20;
constexpr int64_t kLogRateLimit = int64_t{1} << 30;

// Distinct `sleep` arguments per peer, so that the exec watcher can tell
// whose instances it sees.
inline constexpr const char* kSleepMarker[] = {"9000001", "9000002", "9000003",
                                               "9000004"};

// The peers, in the order they run (and their index into kSleepMarker).
inline const std::vector<std::string> kAllPeers = {"relsupd", "runit",
                                                   "supervisord", "pm2"};

struct Options {
  std::string relsupd = RELSUPD_BIN;
  std::string child = SUPERVISE_CHILD_BIN;
  std::string pm2;  // empty: `pm2` on PATH, else npm install
  std::vector<std::string> peers = kAllPeers;
  std::set<std::string> phases = {"restart", "fanout", "storm", "log", "ctl"};
  int kills = 50;
  int instances = 10;  // killed round-robin
  int gap_ms = 150;    // between two kills
  int fanout = 1000;
  int storm = 100;
  double storm_s = 10;
  int status_gap_ms = 250;
  int ctl_instances = 100;  // ctl phase: instances the status command lists
  int ctl_runs = 200;       // and timed runs of it (after 10 untimed)
  bool keep = false;
  int rt_priority = 0;  // >0: SCHED_FIFO for the benchmark and all it starts
  std::string writer = LOG_WRITER_BIN;
  int log_mb = 200;          // payload, in MB (10^6 bytes)
  int log_line_bytes = 128;  // each line, '\n' included
  bool Phase(const char* name) const { return phases.count(name) > 0; }
  int64_t LogLines() const {
    return (int64_t{log_mb} * 1'000'000 + log_line_bytes - 1) / log_line_bytes;
  }
  int64_t LogPayloadBytes() const { return LogLines() * log_line_bytes; }
  // Log files (of kLogFileBytes) each peer keeps (relsupd's log_max_files
  // counts current.log, svlogd's n and supervisord's backups only the
  // rotated ones): room for the payload with relsupd's JSON envelope (under
  // 256 bytes a line) and then some.
  int64_t LogFilesToKeep() const {
    return std::min<int64_t>(
        1000, (LogLines() * (log_line_bytes + 256)) / kLogFileBytes + 4);
  }
};

void Usage(FILE* out);
// False on a usage error; exits 0 after --help.
bool ParseArgs(int argc, char** argv, Options* o);

}  // namespace relsupd::bench::supervise

#endif  // RELSUPD_BENCH_SUPERVISE_OPTIONS_H_
