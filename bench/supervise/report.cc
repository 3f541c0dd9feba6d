// The supervise benchmark's output (see report.h).

#include "bench/supervise/report.h"

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/supervise/util.h"

namespace relsupd::bench::supervise {
namespace {

using Test = std::function<bool(const PeerResult&)>;
using Value = std::function<std::string(const PeerResult&)>;
using Figures = std::vector<double> PeerResult::*;
using Figure = double PeerResult::*;

// One row of the table, as data: the label; `measured`, whether a peer has
// the figure (else its cell is `missing`); the cell's text; and, where
// relsupd has a target, its text and whether relsupd's figure meets it.
struct Row {
  std::string label;
  Test measured;  // null: always
  Value value;
  std::string target = "";
  Test pass = nullptr;
  const char* missing = "n/a";
};

// The table: a column per peer, a row per figure, relsupd's target last.
class Table {
 public:
  explicit Table(const std::vector<PeerResult>& results) : results_(results) {
    for (const auto& r : results_)
      if (r.name == "relsupd" && r.na.empty()) rel_ = &r;
  }
  void Header() const {
    std::printf("%-36s", "figure");
    for (const auto& r : results_) std::printf(" %*s", kWidth, r.name.c_str());
    std::printf("   relsupd target\n");
  }
  void Print(const std::vector<Row>& rows) const {
    for (const Row& row : rows) {
      std::printf("%-36s", row.label.c_str());
      for (const auto& r : results_)
        std::printf(" %*s", kWidth, Cell(row, r).c_str());
      if (row.target.empty())
        std::printf("\n");
      else
        std::printf("   %s\n", Target(row).c_str());
    }
  }

 private:
  static constexpr int kWidth = 16;

  static bool Measured(const Row& row, const PeerResult& r) {
    return !row.measured || row.measured(r);
  }
  static std::string Cell(const Row& row, const PeerResult& r) {
    if (!r.na.empty()) return "n/a";
    return Measured(row, r) ? row.value(r) : row.missing;
  }
  // "WHAT  PASS|FAIL", or n/a without relsupd; FAIL (not measured) when
  // relsupd does not have the figure.
  std::string Target(const Row& row) const {
    if (!rel_) return row.target + "  n/a";
    if (!Measured(row, *rel_)) return row.target + "  FAIL (not measured)";
    return row.target + "  " + Verdict(row.pass(*rel_));
  }

  const std::vector<PeerResult>& results_;
  const PeerResult* rel_ = nullptr;
};

// Cells: a percentile of a list, a figure / `divisor`, two cells as
// "A / B", a cell with the processes counted "A [N]", a whole number.
Value Pct(Figures list, double p, const char* format) {
  return
      [=](const PeerResult& r) { return Fmt(format, Percentile(r.*list, p)); };
}
Value Num(Figure field, const char* format, double divisor = 1) {
  return [=](const PeerResult& r) { return Fmt(format, r.*field / divisor); };
}
Value Pair(Value a, Value b) {
  return [=](const PeerResult& r) { return a(r) + " / " + b(r); };
}
Value Procs(Value a, int PeerResult::*procs) {
  return [=](const PeerResult& r) {
    return a(r) + " [" + std::to_string(r.*procs) + "]";
  };
}
Value Whole(int64_t PeerResult::*field) {
  return [=](const PeerResult& r) { return std::to_string(r.*field); };
}

// Tests: the phase's, and a figure set (>= 0) or a list not empty.
Test And(Test phase, Figure field) {
  return [=](const PeerResult& r) { return phase(r) && r.*field >= 0; };
}
Test AndAny(Test phase, Figures list) {
  return [=](const PeerResult& r) { return phase(r) && !(r.*list).empty(); };
}

// The rows of the restart latency phase.
std::vector<Row> RestartRows() {
  using R = PeerResult;
  const Test ok = [](const R& r) {
    return r.restart_na.empty() && !r.restart_ms.empty();
  };
  return {
      {"restart latency median (ms)", ok, Pct(&R::restart_ms, 0.5, "%.2f"),
       "< 0.8 ms",
       [](const R& r) {
         return r.restart_timeouts == 0 &&
                Percentile(r.restart_ms, 0.5) < kTargetRestartMedianMs;
       }},
      {"restart latency p95 (ms)", ok, Pct(&R::restart_ms, 0.95, "%.2f"),
       "< 1.5 ms",
       [](const R& r) {
         return r.restart_timeouts == 0 &&
                Percentile(r.restart_ms, 0.95) < kTargetRestartP95Ms;
       }},
      {"restart latency min / max (ms)", ok,
       Pair(Pct(&R::restart_ms, 0.0, "%.2f"),
            Pct(&R::restart_ms, 1.0, "%.1f"))},
      {"  replacement's run-queue wait, median", AndAny(ok, &R::child_wait_ms),
       Pct(&R::child_wait_ms, 0.5, "%.2f")},
      {"  replacement's CPU fork..main, median", AndAny(ok, &R::child_cpu_ms),
       Pct(&R::child_cpu_ms, 0.5, "%.2f")},
      {"  supervisor CPU per restart (us)", And(ok, &R::restart_sup_cpu_us),
       Num(&R::restart_sup_cpu_us, "%.0f")},
      {"  kills measured (no restart in 10 s)", nullptr,
       [](const R& r) {
         return std::to_string(r.restart_ms.size()) + " (" +
                std::to_string(r.restart_timeouts) + ")";
       }},
  };
}

// The rows of the fan-out and memory phase.
std::vector<Row> FanoutRows(const Options& o) {
  using R = PeerResult;
  const Test ok = [](const R& r) {
    return r.fanout_na.empty() && r.fanout_s >= 0;
  };
  return {
      {"fan-out: " + std::to_string(o.fanout) + " sleeps running (s)", ok,
       Num(&R::fanout_s, "%.3f"), "< 0.3 s",
       [](const R& r) { return r.fanout_s < kTargetFanoutS; }},
      {"  trigger command returned (s)", And(ok, &R::trigger_ms),
       Num(&R::trigger_ms, "%.3f", 1e3), "", nullptr, "-"},
      {"  supervisor CPU meanwhile (s)", And(ok, &R::fanout_sup_cpu_s),
       Num(&R::fanout_sup_cpu_s, "%.3f")},
      {"supervisor root RSS (MiB)", And(ok, &R::root_rss_kb),
       Num(&R::root_rss_kb, "%.1f", 1024), "< 20 MB (19.1 MiB)",
       [](const R& r) { return r.root_rss_kb * 1024 < kTargetRssBytes; }},
      {"  of which anon / file (MiB)", And(ok, &R::root_anon_kb),
       Pair(Num(&R::root_anon_kb, "%.1f", 1024),
            Num(&R::root_file_kb, "%.1f", 1024))},
      {"  root RSS before the fan-out (MiB)", And(ok, &R::root_rss_idle_kb),
       Num(&R::root_rss_idle_kb, "%.1f", 1024), "", nullptr, "-"},
      {"supervisor PSS, all its procs (MiB)", ok,
       Procs(Num(&R::sup_pss_kb, "%.1f", 1024), &R::sup_procs)},
      {"tree PSS with the sleeps (MiB)", ok,
       Procs(Num(&R::tree_pss_kb, "%.1f", 1024), &R::tree_procs)},
  };
}

// The rows of the crash storm phase.
std::vector<Row> StormRows() {
  using R = PeerResult;
  const Test ok = [](const R& r) {
    return r.storm_na.empty() && !r.status_ms.empty();
  };
  return {
      {"storm: status query median (ms)", ok, Pct(&R::status_ms, 0.5, "%.1f")},
      {"storm: status query p99 (ms)", ok,
       [](const R& r) {
         return Fmt("%.1f", Percentile(r.status_ms, 0.99)) + " (" +
                std::to_string(r.status_ms.size()) + ")";
       },
       "< 10 ms (relsupd ctl ps)",
       [](const R& r) {
         return r.status_failures == 0 &&
                Percentile(r.status_ms, 0.99) < kTargetPsP99Ms;
       }},
      {"  status command's own CPU, median", ok,
       Pct(&R::status_cpu_ms, 0.5, "%.1f")},
      {"  same over the socket, median / p99", AndAny(ok, &R::direct_ms),
       Pair(Pct(&R::direct_ms, 0.5, "%.2f"), Pct(&R::direct_ms, 0.99, "%.2f")),
       "p99 < 5 ms",
       [](const R& r) { return Percentile(r.direct_ms, 0.99) < kTargetSocketPsP99Ms; }, "-"},
      {"storm: supervisor CPU (% of a core)",
       [](const R& r) { return r.storm_na.empty() && r.storm_cpu >= 0; },
       Procs([](const R& r) { return Fmt("%.1f%%", r.storm_cpu * 100); },
             &R::storm_sup_procs),
       "< 5%", [](const R& r) { return r.storm_cpu < kTargetStormCpu; }},
  };
}

// The rows of the log throughput phase.
std::vector<Row> LogRows(const Options& o) {
  using R = PeerResult;
  const Test ok = [](const R& r) {
    return r.log_na.empty() && r.log_lost >= 0;
  };
  const Test timed = And(ok, &R::log_mbps);
  return {
      {"log throughput (MB/s)", timed, Num(&R::log_mbps, "%.1f"), ">= 800 MB/s",
       [](const R& r) { return r.log_mbps >= kTargetLogMBps; }},
      {"lines lost (of " + std::to_string(o.LogLines()) + ")", ok,
       Whole(&R::log_lost), "0 (none duplicated or damaged either)",
       [](const R& r) {
         return r.log_lost == 0 && r.log_dup == 0 && r.log_damaged == 0;
       }},
      {"  duplicated / damaged lines", ok,
       Pair(Whole(&R::log_dup), Whole(&R::log_damaged))},
      {"  last line in the files after (s)", timed,
       Num(&R::log_last_s, "%.3f")},
      {"  writer's last write returned (s)", And(ok, &R::log_writer_s),
       Num(&R::log_writer_s, "%.3f")},
      {"  supervisor CPU meanwhile (s)", timed,
       Procs(Num(&R::log_sup_cpu_s, "%.2f"), &R::log_sup_procs)},
      {"  same, % of a core", timed,
       [](const R& r) {
         return Fmt("%.0f%%", 100 * r.log_sup_cpu_s / r.log_last_s);
       }},
      {"  supervisor CPU per MB (ms)", timed,
       [mb = o.log_mb](const R& r) { return Fmt("%.2f", 1000 * r.log_sup_cpu_s / mb); }},
      {"  its run-queue wait meanwhile (s)", And(timed, &R::log_sup_wait_s),
       Num(&R::log_sup_wait_s, "%.2f")},
      {"  in the log files (MB) [files]", ok,
       Procs(
           [](const R& r) {
             return Fmt("%.1f", static_cast<double>(r.log_disk_bytes) / 1e6);
           },
           &R::log_files)},
  };
}

// The rows of the ctl phase: the status command as a whole process.
std::vector<Row> CtlRows(const Options& o) {
  using R = PeerResult;
  const Test ok = [](const R& r) { return r.ctl_na.empty() && !r.ctl_ms.empty(); };
  return {
      {"ctl: status of " + std::to_string(o.ctl_instances) + ", median (ms)", ok,
       Pct(&R::ctl_ms, 0.5, "%.2f")},
      {"  p95 / min (ms)", ok,
       Pair(Pct(&R::ctl_ms, 0.95, "%.2f"), Pct(&R::ctl_ms, 0.0, "%.2f"))},
      {"  the command's own CPU, median (ms)", ok, Pct(&R::ctl_cpu_ms, 0.5, "%.2f")},
  };
}

}  // namespace

void PrintTable(const std::vector<PeerResult>& results, const Options& o) {
  std::printf("\n");
  Table t(results);
  t.Header();
  if (o.Phase("restart")) t.Print(RestartRows());
  if (o.Phase("fanout")) t.Print(FanoutRows(o));
  if (o.Phase("storm")) t.Print(StormRows());
  if (o.Phase("log")) t.Print(LogRows(o));
  if (o.Phase("ctl")) {
    t.Print(CtlRows(o));
    // The target is another peer's figure of the same run.
    const PeerResult* relsupd = nullptr;
    const PeerResult* runit = nullptr;
    for (const auto& r : results) {
      if (!r.ctl_na.empty() || r.ctl_ms.empty()) continue;
      if (r.name == "relsupd") relsupd = &r;
      if (r.name == "runit") runit = &r;
    }
    if (relsupd != nullptr && runit != nullptr) {
      const double mine = Percentile(relsupd->ctl_ms, 0.5);
      const double theirs = Percentile(runit->ctl_ms, 0.5);
      std::printf("\nctl: relsupd's `%s` median %.2f ms, runit's `%s` %.2f ms: %s\n",
                  relsupd->ctl_cmd.c_str(), mine, runit->ctl_cmd.c_str(), theirs,
                  mine <= theirs ? "PASS" : "FAIL");
    }
  }
}

void PrintNotes(const std::vector<PeerResult>& results,
                const std::vector<std::string>& configs, const Options& o) {
  std::printf("\n");
  for (const auto& r : results) {
    if (!r.na.empty()) {
      std::printf("%s: n/a (%s)\n", r.name.c_str(), r.na.c_str());
      continue;
    }
    std::printf("%s %s:", r.name.c_str(), r.version.c_str());
    if (!r.restart_na.empty())
      std::printf(" restart n/a (%s);", r.restart_na.c_str());
    if (!r.fanout_na.empty())
      std::printf(" fan-out n/a (%s);", r.fanout_na.c_str());
    else if (o.Phase("fanout"))
      std::printf(" fan-out timed by %s;", r.fanout_how.c_str());
    if (!r.storm_na.empty())
      std::printf(" storm n/a (%s);", r.storm_na.c_str());
    if (o.Phase("storm")) std::printf(" status: `%s`;", r.status_cmd.c_str());
    if (r.status_failures > 0)
      std::printf(" status %d failed (%s);", r.status_failures,
                  r.status_first_failure.c_str());
    if (!r.log_na.empty()) std::printf(" log n/a (%s);", r.log_na.c_str());
    if (!r.ctl_na.empty()) std::printf(" ctl n/a (%s);", r.ctl_na.c_str());
    if (o.Phase("ctl") && r.ctl_na.empty()) std::printf(" ctl: `%s`;", r.ctl_cmd.c_str());
    if (!r.log_timeout.empty()) std::printf(" log: %s;", r.log_timeout.c_str());
    if (r.log_other > 0)
      std::printf(" log: %lld records of other processes not counted;",
                  static_cast<long long>(r.log_other));
    std::printf("\n");
  }
  std::printf("\n");
  for (const auto& c : configs) std::printf("- %s\n", c.c_str());
  if (o.Phase("log"))
    for (const auto& r : results)
      if (!r.log_settings.empty())
        std::printf("- log phase, %s\n", r.log_settings.c_str());
  std::printf(
      "\n[N]: processes counted. Restart latency: kill(2) of the instance "
      "until its "
      "replacement's supervise_child read CLOCK_MONOTONIC in main(). Storm "
      "CPU: the "
      "supervisor's long-lived processes, over %.0f s.\n",
      o.storm_s);
  if (o.Phase("log"))
    std::printf(
        "Log throughput: %lld lines of %d bytes (%.1f MB of payload) written "
        "by one "
        "log_writer as fast as its stdout takes them, MB/s = payload / (its "
        "first "
        "write until its last line was in a log file, polled every 2 ms); "
        "lines "
        "lost: sequence numbers missing from all the files; supervisor CPU and "
        "run-queue wait: its processes, the writer excluded.\n",
        static_cast<long long>(o.LogLines()), o.log_line_bytes,
        static_cast<double>(o.LogPayloadBytes()) / 1e6);
}

}  // namespace relsupd::bench::supervise
