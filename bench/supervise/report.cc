// The supervise benchmark's output (see report.h).

#include "bench/supervise/report.h"

#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include "bench/supervise/util.h"

namespace relsupd::bench::supervise {
namespace {

// The table: a column per peer, a row per figure, relsupd's target last.
class Table {
 public:
  explicit Table(const std::vector<PeerResult>& results) : results_(results) {
    for (const auto& r : results_)
      if (r.name == "relsupd" && r.na.empty()) rel_ = &r;
  }
  // relsupd's result when it ran; null otherwise.
  const PeerResult* rel() const { return rel_; }
  void Header() const {
    std::printf("%-36s", "figure");
    for (const auto& r : results_) std::printf(" %*s", kWidth, r.name.c_str());
    std::printf("   relsupd target\n");
  }
  void Row(const std::string& label,
           const std::function<std::string(const PeerResult&)>& cell,
           const std::string& target) const {
    std::printf("%-36s", label.c_str());
    for (const auto& r : results_) {
      std::string c = !r.na.empty() ? "n/a" : cell(r);
      std::printf(" %*s", kWidth, c.c_str());
    }
    if (target.empty())
      std::printf("\n");
    else
      std::printf("   %s\n", target.c_str());
  }
  // "WHAT  PASS|FAIL", or n/a without relsupd; `pass` unset: not measured.
  std::string Target(const std::string& what, std::optional<bool> pass) const {
    if (!rel_) return what + "  n/a";
    if (!pass) return what + "  FAIL (not measured)";
    return what + "  " + Verdict(*pass);
  }

 private:
  static constexpr int kWidth = 16;
  const std::vector<PeerResult>& results_;
  const PeerResult* rel_ = nullptr;
};

// The rows of the restart latency phase.
void RestartRows(const Table& t) {
  const PeerResult* rel = t.rel();
  auto restart_ok = [](const PeerResult& r) {
    return r.restart_na.empty() && !r.restart_ms.empty();
  };
  t.Row(
      "restart latency median (ms)",
      [&](const PeerResult& r) {
        return restart_ok(r) ? Fmt("%.2f", Percentile(r.restart_ms, 0.5))
                             : "n/a";
      },
      t.Target("< 1 ms",
               rel && restart_ok(*rel)
                   ? std::optional<bool>(rel->restart_timeouts == 0 &&
                                         Percentile(rel->restart_ms, 0.5) <
                                             kTargetRestartMedianMs)
                   : std::nullopt));
  t.Row(
      "restart latency p95 (ms)",
      [&](const PeerResult& r) {
        return restart_ok(r) ? Fmt("%.2f", Percentile(r.restart_ms, 0.95))
                             : "n/a";
      },
      t.Target("< 3 ms",
               rel && restart_ok(*rel)
                   ? std::optional<bool>(rel->restart_timeouts == 0 &&
                                         Percentile(rel->restart_ms, 0.95) <
                                             kTargetRestartP95Ms)
                   : std::nullopt));
  t.Row(
      "restart latency min / max (ms)",
      [&](const PeerResult& r) {
        if (!restart_ok(r)) return std::string("n/a");
        return Fmt("%.2f", Percentile(r.restart_ms, 0.0)) + " / " +
               Fmt("%.1f", Percentile(r.restart_ms, 1.0));
      },
      "");
  t.Row(
      "  replacement's run-queue wait, median",
      [&](const PeerResult& r) {
        return restart_ok(r) && !r.child_wait_ms.empty()
                   ? Fmt("%.2f", Percentile(r.child_wait_ms, 0.5))
                   : "n/a";
      },
      "");
  t.Row(
      "  replacement's CPU fork..main, median",
      [&](const PeerResult& r) {
        return restart_ok(r) && !r.child_cpu_ms.empty()
                   ? Fmt("%.2f", Percentile(r.child_cpu_ms, 0.5))
                   : "n/a";
      },
      "");
  t.Row(
      "  supervisor CPU per restart (us)",
      [&](const PeerResult& r) {
        return restart_ok(r) && r.restart_sup_cpu_us >= 0
                   ? Fmt("%.0f", r.restart_sup_cpu_us)
                   : "n/a";
      },
      "");
  t.Row(
      "  kills measured (no restart in 10 s)",
      [&](const PeerResult& r) {
        return std::to_string(r.restart_ms.size()) + " (" +
               std::to_string(r.restart_timeouts) + ")";
      },
      "");
}

// The rows of the fan-out and memory phase.
void FanoutRows(const Table& t, const Options& o) {
  const PeerResult* rel = t.rel();
  auto fan_ok = [](const PeerResult& r) {
    return r.fanout_na.empty() && r.fanout_s >= 0;
  };
  t.Row(
      "fan-out: " + std::to_string(o.fanout) + " sleeps running (s)",
      [&](const PeerResult& r) {
        return fan_ok(r) ? Fmt("%.3f", r.fanout_s) : "n/a";
      },
      t.Target("< 0.5 s",
               rel && fan_ok(*rel)
                   ? std::optional<bool>(rel->fanout_s < kTargetFanoutS)
                   : std::nullopt));
  t.Row(
      "  trigger command returned (s)",
      [&](const PeerResult& r) {
        return fan_ok(r) && r.trigger_ms >= 0 ? Fmt("%.3f", r.trigger_ms / 1e3)
                                              : "-";
      },
      "");
  t.Row(
      "  supervisor CPU meanwhile (s)",
      [&](const PeerResult& r) {
        return fan_ok(r) && r.fanout_sup_cpu_s >= 0
                   ? Fmt("%.3f", r.fanout_sup_cpu_s)
                   : "n/a";
      },
      "");
  t.Row(
      "supervisor root RSS (MiB)",
      [&](const PeerResult& r) {
        return fan_ok(r) && r.root_rss_kb >= 0
                   ? Fmt("%.1f", r.root_rss_kb / 1024)
                   : "n/a";
      },
      t.Target(
          "< 20 MB (19.1 MiB)",
          rel && fan_ok(*rel) && rel->root_rss_kb >= 0
              ? std::optional<bool>(rel->root_rss_kb * 1024 < kTargetRssBytes)
              : std::nullopt));
  t.Row(
      "  of which anon / file (MiB)",
      [&](const PeerResult& r) {
        return fan_ok(r) && r.root_anon_kb >= 0
                   ? Fmt("%.1f", r.root_anon_kb / 1024) + " / " +
                         Fmt("%.1f", r.root_file_kb / 1024)
                   : "n/a";
      },
      "");
  t.Row(
      "  root RSS before the fan-out (MiB)",
      [&](const PeerResult& r) {
        return fan_ok(r) && r.root_rss_idle_kb >= 0
                   ? Fmt("%.1f", r.root_rss_idle_kb / 1024)
                   : "-";
      },
      "");
  t.Row(
      "supervisor PSS, all its procs (MiB)",
      [&](const PeerResult& r) {
        return fan_ok(r) ? Fmt("%.1f", r.sup_pss_kb / 1024) + " [" +
                               std::to_string(r.sup_procs) + "]"
                         : "n/a";
      },
      "");
  t.Row(
      "tree PSS with the sleeps (MiB)",
      [&](const PeerResult& r) {
        return fan_ok(r) ? Fmt("%.1f", r.tree_pss_kb / 1024) + " [" +
                               std::to_string(r.tree_procs) + "]"
                         : "n/a";
      },
      "");
}

// The rows of the crash storm phase.
void StormRows(const Table& t) {
  const PeerResult* rel = t.rel();
  auto storm_ok = [](const PeerResult& r) {
    return r.storm_na.empty() && !r.status_ms.empty();
  };
  t.Row(
      "storm: status query median (ms)",
      [&](const PeerResult& r) {
        return storm_ok(r) ? Fmt("%.1f", Percentile(r.status_ms, 0.5)) : "n/a";
      },
      "");
  t.Row(
      "storm: status query p99 (ms)",
      [&](const PeerResult& r) {
        return storm_ok(r) ? Fmt("%.1f", Percentile(r.status_ms, 0.99)) + " (" +
                                 std::to_string(r.status_ms.size()) + ")"
                           : "n/a";
      },
      t.Target("< 10 ms (relsupd ctl ps)",
               rel && storm_ok(*rel)
                   ? std::optional<bool>(rel->status_failures == 0 &&
                                         Percentile(rel->status_ms, 0.99) <
                                             kTargetPsP99Ms)
                   : std::nullopt));
  t.Row(
      "  status command's own CPU, median",
      [&](const PeerResult& r) {
        return storm_ok(r) ? Fmt("%.1f", Percentile(r.status_cpu_ms, 0.5))
                           : "n/a";
      },
      "");
  t.Row(
      "  same over the socket, median / p99",
      [&](const PeerResult& r) {
        return storm_ok(r) && !r.direct_ms.empty()
                   ? Fmt("%.2f", Percentile(r.direct_ms, 0.5)) + " / " +
                         Fmt("%.2f", Percentile(r.direct_ms, 0.99))
                   : "-";
      },
      "");
  t.Row(
      "storm: supervisor CPU (% of a core)",
      [&](const PeerResult& r) {
        return r.storm_na.empty() && r.storm_cpu >= 0
                   ? Fmt("%.1f%%", r.storm_cpu * 100) + " [" +
                         std::to_string(r.storm_sup_procs) + "]"
                   : "n/a";
      },
      t.Target("< 5%",
               rel && rel->storm_na.empty() && rel->storm_cpu >= 0
                   ? std::optional<bool>(rel->storm_cpu < kTargetStormCpu)
                   : std::nullopt));
}

// The rows of the log throughput phase.
void LogRows(const Table& t, const Options& o) {
  const PeerResult* rel = t.rel();
  auto log_ok = [](const PeerResult& r) {
    return r.log_na.empty() && r.log_lost >= 0;
  };
  auto log_timed = [&](const PeerResult& r) {
    return log_ok(r) && r.log_mbps >= 0;
  };
  t.Row(
      "log throughput (MB/s)",
      [&](const PeerResult& r) {
        return log_timed(r) ? Fmt("%.1f", r.log_mbps) : "n/a";
      },
      t.Target(">= 100 MB/s",
               rel && log_timed(*rel)
                   ? std::optional<bool>(rel->log_mbps >= kTargetLogMBps)
                   : std::nullopt));
  t.Row(
      "lines lost (of " + std::to_string(o.LogLines()) + ")",
      [&](const PeerResult& r) {
        return log_ok(r) ? std::to_string(r.log_lost) : "n/a";
      },
      t.Target("0 (none duplicated or damaged either)",
               rel && log_ok(*rel) ? std::optional<bool>(rel->log_lost == 0 &&
                                                         rel->log_dup == 0 &&
                                                         rel->log_damaged == 0)
                                   : std::nullopt));
  t.Row(
      "  duplicated / damaged lines",
      [&](const PeerResult& r) {
        return log_ok(r) ? std::to_string(r.log_dup) + " / " +
                               std::to_string(r.log_damaged)
                         : "n/a";
      },
      "");
  t.Row(
      "  last line in the files after (s)",
      [&](const PeerResult& r) {
        return log_timed(r) ? Fmt("%.3f", r.log_last_s) : "n/a";
      },
      "");
  t.Row(
      "  writer's last write returned (s)",
      [&](const PeerResult& r) {
        return log_ok(r) && r.log_writer_s >= 0 ? Fmt("%.3f", r.log_writer_s)
                                                : "n/a";
      },
      "");
  t.Row(
      "  supervisor CPU meanwhile (s)",
      [&](const PeerResult& r) {
        return log_timed(r) ? Fmt("%.2f", r.log_sup_cpu_s) + " [" +
                                  std::to_string(r.log_sup_procs) + "]"
                            : "n/a";
      },
      "");
  t.Row(
      "  same, % of a core",
      [&](const PeerResult& r) {
        return log_timed(r)
                   ? Fmt("%.0f%%", 100 * r.log_sup_cpu_s / r.log_last_s)
                   : "n/a";
      },
      "");
  t.Row(
      "  its run-queue wait meanwhile (s)",
      [&](const PeerResult& r) {
        return log_timed(r) && r.log_sup_wait_s >= 0
                   ? Fmt("%.2f", r.log_sup_wait_s)
                   : "n/a";
      },
      "");
  t.Row(
      "  in the log files (MB) [files]",
      [&](const PeerResult& r) {
        return log_ok(r)
                   ? Fmt("%.1f", static_cast<double>(r.log_disk_bytes) / 1e6) +
                         " [" + std::to_string(r.log_files) + "]"
                   : "n/a";
      },
      "");
}

}  // namespace

void PrintTable(const std::vector<PeerResult>& results, const Options& o) {
  std::printf("\n");
  Table t(results);
  t.Header();
  if (o.Phase("restart")) RestartRows(t);
  if (o.Phase("fanout")) FanoutRows(t, o);
  if (o.Phase("storm")) StormRows(t);
  if (o.Phase("log")) LogRows(t, o);
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
