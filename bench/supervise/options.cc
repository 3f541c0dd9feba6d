// Command-line parsing of the supervise benchmark (see options.h).

#include "bench/supervise/options.h"

#include <cstdlib>

namespace relsupd::bench::supervise {
namespace {

// "a,b,c" -> its items, each one of `allowed`; false for another or none.
bool ParseList(const std::string& text, const std::set<std::string>& allowed,
               std::vector<std::string>* out) {
  *out = SplitCommas(text);
  for (const std::string& item : *out)
    if (allowed.count(item) == 0) return false;
  return !out->empty();
}

}  // namespace

void Usage(FILE* out) {
  std::fprintf(
      out,
      "usage: supervise [--relsupd PATH] [--pm2 PATH] [--peers LIST] [--phases "
      "LIST]\n"
      "                 [--kills N] [--instances N] [--gap-ms MS] [--fanout "
      "N]\n"
      "                 [--storm N] [--storm-seconds S] [--log-mb N]\n"
      "                 [--log-line-bytes N] [--ctl-instances N] [--ctl-runs N]\n"
      "                 [--rt PRIO] [--keep]\n"
      "  --relsupd PATH     relsupd binary (default %s)\n"
      "  --pm2 PATH         pm2 CLI (default: pm2 on PATH, else npm install "
      "pm2\n"
      "                     into the temporary dir)\n"
      "  --peers LIST       comma-separated subset of "
      "relsupd,runit,supervisord,pm2\n"
      "  --phases LIST      comma-separated subset of "
      "restart,fanout,storm,log,ctl\n"
      "                     (fanout includes the memory figures; default all)\n"
      "  --kills N          restart-latency kills per peer (default 50)\n"
      "  --instances N      instances killed round-robin (default 10)\n"
      "  --gap-ms MS        pause between two kills (default 150)\n"
      "  --fanout N         instances of sleep started at once (default 1000)\n"
      "  --storm N          crashing services (default 100)\n"
      "  --storm-seconds S  storm measuring window (default 10)\n"
      "  --ctl-instances N  ctl: instances running while the status command\n"
      "                     runs (default 100)\n"
      "  --ctl-runs N       ctl: timed runs of the status command (default 200)\n"
      "  --log-mb N         log throughput: MB (10^6 bytes) of lines the "
      "writer\n"
      "                     writes (default 200)\n"
      "  --log-line-bytes N each line's length, newline included (16-16384,\n"
      "                     default 128)\n"
      "  --rt PRIO          run the benchmark, every supervisor and every "
      "child\n"
      "                     SCHED_FIFO at PRIO (1-99), inherited: measures "
      "the\n"
      "                     supervisors, not the machine's other load\n"
      "  --keep             keep the temporary dir\n",
      RELSUPD_BIN);
}

bool ParseArgs(int argc, char** argv, Options* o) {
  auto peers = [o](const char* v) {
    return ParseList(v, {"relsupd", "runit", "supervisord", "pm2"}, &o->peers);
  };
  auto phases = [o](const char* v) {
    std::vector<std::string> list;
    if (!ParseList(v, {"restart", "fanout", "storm", "log", "ctl"}, &list))
      return false;
    o->phases = std::set<std::string>(list.begin(), list.end());
    return true;
  };
  return ParseFlags(argc, argv, Usage,
                    {TextFlag("--relsupd", &o->relsupd),
                     TextFlag("--pm2", &o->pm2),
                     {"--peers", true, peers},
                     {"--phases", true, phases},
                     IntFlag("--log-mb", &o->log_mb, 1, 100000),
                     IntFlag("--ctl-instances", &o->ctl_instances, 1, 10000),
                     IntFlag("--ctl-runs", &o->ctl_runs, 1, 100000),
                     IntFlag("--log-line-bytes", &o->log_line_bytes, 16, 16384),
                     IntFlag("--kills", &o->kills, 1),
                     IntFlag("--instances", &o->instances, 1),
                     IntFlag("--gap-ms", &o->gap_ms, 1),
                     IntFlag("--fanout", &o->fanout, 1, 10000),
                     IntFlag("--storm", &o->storm, 1, 10000),
                     PositiveFlag("--storm-seconds", &o->storm_s),
                     IntFlag("--rt", &o->rt_priority, 1, 99),
                     SwitchFlag("--keep", &o->keep)}) &&
         // The writer numbers its lines with 9 digits.
         o->LogLines() <= 999'999'999;
}

}  // namespace relsupd::bench::supervise
