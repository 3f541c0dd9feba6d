#include "daemon/control/metrics.h"

#include <cmath>
#include <cstdio>
#include <set>

#include "daemon/activate/switcher.h"
#include "daemon/base/version.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/handlers.h"
#include "daemon/logs/log_store.h"
#include "daemon/run/run_service.h"
#include "daemon/supervise/supervisor.h"

namespace relsupd {
namespace {

using Labels = std::vector<std::pair<const char*, std::string>>;

class Writer {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void Sample(const char* name, const Labels& labels, double value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += EscapeLabelValue(v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    char buf[64];
    if (std::floor(value) == value && std::fabs(value) < 1e15)
      std::snprintf(buf, sizeof(buf), "%.0f", value);
    else
      std::snprintf(buf, sizeof(buf), "%.6g", value);
    out_ += buf;
    out_ += '\n';
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

MetricsSnapshot GatherMetrics(DaemonContext& ctx, const Dispatcher* dispatcher) {
  MetricsSnapshot m;
  m.version = kVersion;
  if (ctx.runs != nullptr) {
    Supervisor* sup = ctx.runs->supervisor();
    for (const std::string& app : sup->Apps()) {
      bool first = true;
      for (ReleaseGroup* g : sup->Groups(app)) {
        if (first) m.active_release[app] = g->run().release();
        first = false;
        for (const Instance* i : g->Instances()) {
          MetricsSnapshot::Instance row;
          row.app = app;
          row.type = i->type();
          row.process = i->name();
          row.state = std::string(i->shown_state());
          row.restarts = i->restarts();
          row.exits = i->exit_counts();
          row.has_usage = i->pid() > 0 && i->usage().processes > 0;
          row.memory_bytes = i->usage().memory_bytes;
          row.cpu_seconds = i->usage().cpu_seconds;
          m.instances.push_back(std::move(row));
        }
      }
    }
    m.activations = ctx.runs->activation_counts();
  }
  if (ctx.logs != nullptr) {
    std::set<std::string> running;
    if (ctx.runs != nullptr)
      for (const std::string& app : ctx.runs->supervisor()->Apps()) running.insert(app);
    for (const auto& [app, c] : ctx.logs->Counters()) {
      // A logs directory with nothing behind it (an app deleted, its logs
      // kept; a directory made by hand) is no app of this daemon's.
      if (c.lines.empty() && c.dropped == 0 && !running.contains(app)) continue;
      for (const auto& [stream, n] : c.lines) m.log_lines[{app, stream}] = n;
      m.log_dropped[app] = c.dropped;
    }
  }
  if (dispatcher != nullptr) m.requests = dispatcher->request_counts();
  return m;
}

std::string RenderMetrics(const MetricsSnapshot& m) {
  Writer w;
  w.Family("relsupd_build_info", "gauge", "The relsupd version running (always 1).");
  w.Sample("relsupd_build_info", {{"version", m.version}}, 1);

  w.Family("relsupd_instances", "gauge", "Instances by app, process type and state.");
  std::map<std::tuple<std::string, std::string, std::string>, int> states;
  for (const auto& i : m.instances) ++states[{i.app, i.type, i.state}];
  for (const auto& [k, n] : states)
    w.Sample("relsupd_instances",
             {{"app", std::get<0>(k)}, {"type", std::get<1>(k)}, {"state", std::get<2>(k)}}, n);

  w.Family("relsupd_instance_restarts_total", "counter",
           "Restarts of each instance (carried across daemon-reexec).");
  for (const auto& i : m.instances)
    w.Sample("relsupd_instance_restarts_total", {{"app", i.app}, {"process", i.process}},
             static_cast<double>(i.restarts));

  w.Family("relsupd_instance_exits_total", "counter",
           "Exits of each instance's processes by reason (exited, stopped, stop-timeout, "
           "not-ready, health, watchdog, memory-limit, oom-killed).");
  for (const auto& i : m.instances)
    for (const auto& [reason, n] : i.exits)
      w.Sample("relsupd_instance_exits_total",
               {{"app", i.app}, {"process", i.process}, {"reason", reason}},
               static_cast<double>(n));

  w.Family("relsupd_instance_memory_bytes", "gauge",
           "Memory of each running instance: its cgroup's memory.current, or the resident "
           "set of its process tree.");
  for (const auto& i : m.instances)
    if (i.has_usage)
      w.Sample("relsupd_instance_memory_bytes", {{"app", i.app}, {"process", i.process}},
               static_cast<double>(i.memory_bytes));

  w.Family("relsupd_instance_cpu_seconds_total", "counter",
           "CPU time (user and system) of each running instance's processes.");
  for (const auto& i : m.instances)
    if (i.has_usage)
      w.Sample("relsupd_instance_cpu_seconds_total", {{"app", i.app}, {"process", i.process}},
               i.cpu_seconds);

  w.Family("relsupd_activations_total", "counter",
           "Release switches that ended, by app and outcome: activated (it went live; a "
           "rollback asked for included), rolled-back (the daemon went back by itself), "
           "failed.");
  for (const auto& [k, n] : m.activations)
    w.Sample("relsupd_activations_total", {{"app", k.first}, {"outcome", k.second}},
             static_cast<double>(n));

  w.Family("relsupd_release_active", "gauge", "1 for the release each app runs.");
  for (const auto& [app, release] : m.active_release)
    w.Sample("relsupd_release_active", {{"app", app}, {"release", release}}, 1);

  w.Family("relsupd_log_lines_total", "counter",
           "Log records taken from the apps' output, by app and stream.");
  for (const auto& [k, n] : m.log_lines)
    w.Sample("relsupd_log_lines_total", {{"app", k.first}, {"stream", k.second}},
             static_cast<double>(n));

  w.Family("relsupd_log_lines_dropped_total", "counter",
           "Log records lost (a write to the log store failed). The rate limit throttles an "
           "app's output and drops nothing.");
  for (const auto& [app, n] : m.log_dropped)
    w.Sample("relsupd_log_lines_dropped_total", {{"app", app}}, static_cast<double>(n));

  w.Family("relsupd_control_requests_total", "counter",
           "Control requests answered, by method and outcome (ok or the error's kind).");
  for (const auto& [k, n] : m.requests)
    w.Sample("relsupd_control_requests_total", {{"method", k.first}, {"outcome", k.second}},
             static_cast<double>(n));
  return w.Take();
}

}  // namespace relsupd
