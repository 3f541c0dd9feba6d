// The run stage's verbs: ps, scale, restart, stop, start, logs, activate.
#include <time.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "cli/ctl.h"
#include "cli/table.h"
#include "daemon/protocol/methods.h"

namespace relsupd::cli {
namespace {

namespace method = rpc::method;

std::string Uptime(int64_t ms) {
  if (ms <= 0) return "-";
  int64_t s = ms / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  if (s < 86400) return std::to_string(s / 3600) + "h" + std::to_string(s / 60 % 60) + "m";
  return std::to_string(s / 86400) + "d" + std::to_string(s / 3600 % 24) + "h";
}

void PrintPs(const rpc::Json& rows) {
  if (rows.empty()) {
    std::cout << "No processes\n";
    return;
  }
  Table t({"APP", "PROCESS", "RELEASE", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT"});
  for (const auto& r : rows) {
    std::string release = Text(r["release"]);
    if (!r.value("active", true)) release += " (old)";
    int64_t pid = r.value("pid", 0);
    t.AddRow({Text(r["app"]), Text(r["process"]), release, Text(r["state"]),
              pid > 0 ? std::to_string(pid) : "-", Uptime(r.value("uptime_ms", 0)),
              Text(r["restarts"]), Text(r["last_exit"]).empty() ? "-" : Text(r["last_exit"])});
  }
  t.Print(std::cout);
}

// "web=3" -> {"web", 3}
Result<std::pair<std::string, int>> ParseScaleArg(const std::string& arg) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    return InvalidArgument("'" + arg + "' is not TYPE=N (e.g. web=3)");
  std::string n = arg.substr(eq + 1);
  char* end = nullptr;
  long v = std::strtol(n.c_str(), &end, 10);
  if (n.empty() || *end != '\0' || v < 0 || v > 10000)
    return InvalidArgument("'" + arg + "': the count must be 0..10000");
  return std::make_pair(arg.substr(0, eq), static_cast<int>(v));
}

void PrintLogRecord(const rpc::Json& r) {
  std::string line = Text(r["time"]) + " " + Text(r["process"]) + "[" + Text(r["release"]) + "]";
  if (Text(r["stream"]) == "err") line += " err";
  line += ": " + Text(r["text"]);
  if (r.value("partial", false)) line += " \\";
  std::cout << line << '\n';
}

struct LogsArgs {
  std::string app;
  bool follow = false;
  int64_t lines = 100;
  std::string process;
  std::string stream;
};

int FollowLogs(CtlContext* ctx, const LogsArgs& a) {
  auto client = Client::Connect(ctx->socket);
  if (!client.ok()) {
    ctx->Fail(client.status());
    return ctx->exit_code;
  }
  rpc::Json p = {{"app", a.app}, {"lines", a.lines}};
  if (!a.process.empty()) p["process"] = a.process;
  if (!a.stream.empty()) p["stream"] = a.stream;
  uint64_t last = 0;
  bool first = true;
  while (true) {
    auto r = client->Call(method::kLogs, p);
    if (!r.ok()) {
      ctx->Fail(r.status());
      return ctx->exit_code;
    }
    for (const auto& rec : (*r)["records"]) {
      if (ctx->json)
        std::cout << rec.dump() << '\n';
      else
        PrintLogRecord(rec);
      last = std::max<uint64_t>(last, rec.value("seq", uint64_t{0}));
    }
    std::cout.flush();
    if (first) {
      last = std::max<uint64_t>(last, (*r).value("last_seq", uint64_t{0}));
      first = false;
    }
    if (!a.follow) return kExitOk;
    p.erase("lines");
    p["after_seq"] = last;
    if ((*r)["records"].empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

void AddProcessVerbs(CLI::App& ctl, CtlContext* ctx) {
  auto app = std::make_shared<std::string>();
  CLI::App* ps = ctl.add_subcommand("ps", "List running processes: state, pid, uptime, restarts");
  ps->add_option("APP", *app, "Only this app's processes");
  ps->callback([ctx, app] {
    rpc::Json p = rpc::Json::object();
    if (!app->empty()) p["app"] = *app;
    ctx->CallAndPrint(method::kPs, p, PrintPs);
  });

  auto scale_app = std::make_shared<std::string>();
  auto scale_args = std::make_shared<std::vector<std::string>>();
  CLI::App* scale = ctl.add_subcommand(
      "scale", "Set how many instances of each process type run (recorded; survives restarts)");
  scale->add_option("APP", *scale_app, "App")->required();
  scale->add_option("TYPE=N", *scale_args, "Process type and count, e.g. web=3 worker=1")
      ->required();
  scale->callback([ctx, scale_app, scale_args] {
    rpc::Json counts = rpc::Json::object();
    for (const auto& a : *scale_args) {
      auto parsed = ParseScaleArg(a);
      if (!parsed.ok()) {
        ctx->Fail(parsed.status());
        ctx->exit_code = kExitUsage;
        return;
      }
      counts[parsed->first] = parsed->second;
    }
    ctx->CallAndPrint(method::kScale, {{"app", *scale_app}, {"scale", counts}},
                      [](const rpc::Json& r) {
                        std::string s;
                        for (const auto& [k, v] : r["scale"].items())
                          s += (s.empty() ? "" : " ") + k + "=" + Text(v);
                        std::cout << "Scaled " << Text(r["app"]) << ": " << s << '\n';
                      });
  });

  auto restart_app = std::make_shared<std::string>();
  auto restart_type = std::make_shared<std::string>();
  CLI::App* restart = ctl.add_subcommand(
      "restart", "Restart an app's processes one at a time, each waiting for the last to be ready");
  restart->add_option("APP", *restart_app, "App")->required();
  restart->add_option("TYPE", *restart_type, "Only this process type");
  restart->callback([ctx, restart_app, restart_type] {
    rpc::Json p = {{"app", *restart_app}};
    if (!restart_type->empty()) p["type"] = *restart_type;
    ctx->CallAndPrint(method::kRestart, p, [](const rpc::Json& r) {
      std::cout << "Restarted " << Text(r["app"]) << '\n';
    });
  });

  auto stop_app = std::make_shared<std::string>();
  CLI::App* stop = ctl.add_subcommand(
      "stop", "Stop every process of an app (recorded: it stays stopped across daemon restarts)");
  stop->add_option("APP", *stop_app, "App")->required();
  stop->callback([ctx, stop_app] {
    ctx->CallAndPrint(method::kStop, {{"app", *stop_app}}, [](const rpc::Json& r) {
      std::cout << "Stopped " << Text(r["app"]) << '\n';
    });
  });

  auto start_app = std::make_shared<std::string>();
  CLI::App* start = ctl.add_subcommand(
      "start", "Start an app's active release again (failed processes too)");
  start->add_option("APP", *start_app, "App")->required();
  start->callback([ctx, start_app] {
    ctx->CallAndPrint(method::kStart, {{"app", *start_app}}, [](const rpc::Json& r) {
      std::cout << "Started " << Text(r["app"]) << '\n';
    });
  });

  auto logs_args = std::make_shared<LogsArgs>();
  CLI::App* logs = ctl.add_subcommand("logs", "Show an app's process output");
  logs->add_option("APP", logs_args->app, "App")->required();
  logs->add_flag("-f,--follow", logs_args->follow, "Keep printing new lines as they come");
  logs->add_option("-n,--lines", logs_args->lines, "Show the last N lines (default 100)")
      ->check(CLI::Range(0, 100000));
  logs->add_option("--process", logs_args->process, "Only TYPE (web) or one instance (web.2)");
  logs->add_option("--stream", logs_args->stream, "Only out or err")
      ->check(CLI::IsMember({"out", "err"}));
  logs->callback([ctx, logs_args] { ctx->exit_code = FollowLogs(ctx, *logs_args); });

  auto act_app = std::make_shared<std::string>();
  auto act_release = std::make_shared<std::string>();
  CLI::App* activate = ctl.add_subcommand(
      "activate", "Put a release live: switch apps/APP/current and run its processes");
  activate->add_option("APP", *act_app, "App")->required();
  activate->add_option("RELEASE", *act_release, "Release, e.g. v3")->required();
  activate->callback([ctx, act_app, act_release] {
    ctx->CallAndPrint(method::kActivate, {{"app", *act_app}, {"release", *act_release}},
                      [](const rpc::Json& r) {
                        std::cout << "Activated " << Text(r["app"]) << " " << Text(r["release"])
                                  << '\n';
                      });
  });
}

}  // namespace relsupd::cli
