#pragma once
// Metrics: the daemon's figures in the Prometheus text exposition format
// 0.0.4, for `relsupd ctl metrics` and `GET /metrics` on `metrics_listen`
// (metrics_http.h).
//
// GatherMetrics() copies what the families need from the daemon's parts on
// the loop (a walk over the instances, no I/O); RenderMetrics() is a pure
// function of that copy. Counters count from this image's start (a
// daemon-reexec starts them again, which rate() reads as a reset), except
// restarts and CPU seconds, which instances carry. Label values are escaped
// as the format says (\\, \" and \n). Loop thread for GatherMetrics; any
// thread for RenderMetrics.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace relsupd {

class Dispatcher;
struct DaemonContext;

struct MetricsSnapshot {
  std::string version;
  struct Instance {
    std::string app{}, type{}, process{}, state{};
    int64_t restarts = 0;
    std::map<std::string, uint64_t> exits{};  // by reason (ExitInfo::Cause)
    bool has_usage = false;
    uint64_t memory_bytes = 0;
    double cpu_seconds = 0;
  };
  std::vector<Instance> instances;
  std::map<std::string, std::string> active_release;  // app -> "v3"
  std::map<std::pair<std::string, std::string>, uint64_t> activations;  // app, outcome
  std::map<std::pair<std::string, std::string>, uint64_t> log_lines;    // app, stream
  std::map<std::string, uint64_t> log_dropped;                          // app
  std::map<std::pair<std::string, std::string>, uint64_t> requests;     // method, outcome
};

// The figures of the daemon now. `dispatcher` may be null (no request
// counts).
MetricsSnapshot GatherMetrics(DaemonContext& ctx, const Dispatcher* dispatcher);

// The text format 0.0.4: # HELP and # TYPE for every family, then its
// samples, families in a fixed order, samples sorted by labels.
std::string RenderMetrics(const MetricsSnapshot& m);

// "a\"b" for a\"b: a label value escaped (backslash, double quote, line
// feed).
std::string EscapeLabelValue(const std::string& value);

inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace relsupd
