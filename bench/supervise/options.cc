// Command-line parsing of the supervise benchmark (see options.h).

#include "bench/supervise/options.h"

#include <cstdlib>
#include <sstream>

namespace relsupd::bench::supervise {
namespace {

// "a,b,c" -> its items, each one of `allowed`; false for another or none.
bool ParseList(const std::string& text, const std::set<std::string>& allowed,
               std::vector<std::string>* out) {
  out->clear();
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (allowed.count(item) == 0) return false;
    out->push_back(item);
  }
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
      "                 [--log-line-bytes N] [--rt PRIO] [--keep]\n"
      "  --relsupd PATH     relsupd binary (default %s)\n"
      "  --pm2 PATH         pm2 CLI (default: pm2 on PATH, else npm install "
      "pm2\n"
      "                     into the temporary dir)\n"
      "  --peers LIST       comma-separated subset of "
      "relsupd,runit,supervisord,pm2\n"
      "  --phases LIST      comma-separated subset of "
      "restart,fanout,storm,log\n"
      "                     (fanout includes the memory figures; default all)\n"
      "  --kills N          restart-latency kills per peer (default 50)\n"
      "  --instances N      instances killed round-robin (default 10)\n"
      "  --gap-ms MS        pause between two kills (default 150)\n"
      "  --fanout N         instances of sleep started at once (default 1000)\n"
      "  --storm N          crashing services (default 100)\n"
      "  --storm-seconds S  storm measuring window (default 10)\n"
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
  for (ArgReader args(argc, argv, Usage); args.Next();) {
    const char* v = nullptr;
    auto positive = [&](int* out) {
      *out = std::atoi(v);
      return *out > 0;
    };
    if (args.Value("--relsupd", &o->relsupd)) continue;
    if (args.Value("--pm2", &v)) {
      o->pm2 = v;
    } else if (args.Value("--peers", &v)) {
      std::vector<std::string> peers;
      if (!ParseList(v, {"relsupd", "runit", "supervisord", "pm2"}, &peers))
        return false;
      o->peers = peers;
    } else if (args.Value("--phases", &v)) {
      std::vector<std::string> phases;
      if (!ParseList(v, {"restart", "fanout", "storm", "log"}, &phases))
        return false;
      o->phases = std::set<std::string>(phases.begin(), phases.end());
    } else if (args.Value("--log-mb", &v)) {
      if (!positive(&o->log_mb) || o->log_mb > 100000) return false;
    } else if (args.Value("--log-line-bytes", &v)) {
      if (!positive(&o->log_line_bytes) || o->log_line_bytes < 16 ||
          o->log_line_bytes > 16384)
        return false;
    } else if (args.Value("--kills", &v)) {
      if (!positive(&o->kills)) return false;
    } else if (args.Value("--instances", &v)) {
      if (!positive(&o->instances)) return false;
    } else if (args.Value("--gap-ms", &v)) {
      if (!positive(&o->gap_ms)) return false;
    } else if (args.Value("--fanout", &v)) {
      if (!positive(&o->fanout) || o->fanout > 10000) return false;
    } else if (args.Value("--storm", &v)) {
      if (!positive(&o->storm) || o->storm > 10000) return false;
    } else if (args.Value("--storm-seconds", &v)) {
      o->storm_s = std::atof(v);
      if (!(o->storm_s > 0)) return false;
    } else if (args.Value("--rt", &v)) {
      if (!positive(&o->rt_priority) || o->rt_priority > 99) return false;
    } else if (args.Is("--keep")) {
      o->keep = true;
    } else {
      return false;
    }
  }
  // The writer numbers its lines with 9 digits.
  return o->LogLines() <= 999'999'999;
}

}  // namespace relsupd::bench::supervise
