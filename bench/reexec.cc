// reexec: `relsupd ctl daemon-reexec` with many instances (issue 13).
//
// Starts a real daemon on a temporary state dir, deploys an app `many`
// whose one process type (`sleep 100000`, ready: none) is scaled to
// --instances (1,000), and an app `probe` with one instance. A poller
// thread then asks `ps probe` every --poll-ms (1) ms, each time on a fresh
// connection, and keeps the time of every answer. Then, --rounds (10)
// times, daemon.reexec is sent on its own connection; t0 is the send, t1
// the answer (the new image's). Printed: p50 and max of t1 - t0; the
// longest gap between two successive poller answers in [t0 - 100 ms,
// t1 + 100 ms] of each round (target: under 50 ms, PASS or FAIL); the
// window the daemon logs ("N ms since the handover was written": encode,
// exec, decode, adoption); and that every pid of `many` is unchanged. The
// daemon is stopped by pid and the temporary dir removed (--keep keeps
// it). Exit code 0 whatever the figures; 1 when a setup step fails, 2 on a
// usage error.
//
//   build/bench/reexec [--relsupd PATH] [--instances N] [--rounds N]
//                      [--poll-ms N] [--keep]

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "cli/client.h"
#include "daemon/protocol/methods.h"

namespace relsupd::bench {
namespace {

constexpr double kTargetGapMs = 50;

struct Options {
  std::string relsupd = RELSUPD_BIN;
  int instances = 1000;
  int rounds = 10;
  int poll_ms = 1;
  bool keep = false;
};

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: reexec [--relsupd PATH] [--instances N] [--rounds N] [--poll-ms N] "
               "[--keep]\n"
               "  --relsupd PATH   relsupd binary (default %s)\n"
               "  --instances N    instances of the app `many` (default 1000)\n"
               "  --rounds N       re-execs (default 10)\n"
               "  --poll-ms N      the poller's period (default 1)\n"
               "  --keep           keep the temporary dir\n",
               RELSUPD_BIN);
}

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// Every answer's time, from a thread asking `ps probe` on fresh connections.
class Poller {
 public:
  Poller(std::string socket, int period_ms)
      : thread_([this, socket = std::move(socket), period_ms] {
          while (!stop_) {
            auto client = Client::Connect(socket);
            if (client.ok() && client->Call(rpc::method::kPs, {{"app", "probe"}}).ok()) {
              std::lock_guard<std::mutex> lock(mu_);
              answers_.push_back(MonoNs());
            }
            SleepMs(period_ms);
          }
        }) {}
  ~Poller() {
    stop_ = true;
    thread_.join();
  }
  // The longest gap between answers within [from, to] (both ends count:
  // the last answer before `from` and the first after `to`).
  int64_t LongestGap(int64_t from, int64_t to) {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t worst = 0, prev = -1;
    for (int64_t t : answers_) {
      if (prev >= 0 && t >= from && prev <= to) worst = std::max(worst, t - prev);
      prev = t;
    }
    return worst;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<int64_t> answers_;
  std::thread thread_;
};

struct Run {
  Options o;
  BenchDir dir;
  DaemonProcess daemon;
  std::string socket;
  RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {o.relsupd, "ctl", "--socket", socket});
    return RunIn(args, dir.path(), 600);
  }
  bool Ok(const RunResult& r, const std::string& what) {
    if (r.ok()) return true;
    std::fprintf(stderr, "reexec: %s failed: %s\n", what.c_str(), r.Describe().c_str());
    return false;
  }
};

// Deploys `app` from a directory holding only relsupd.yaml.
bool Deploy(Run& run, const std::string& app, const std::string& yaml) {
  const std::string src = run.dir.path() + "/" + app;
  std::filesystem::create_directories(src);
  std::ofstream(src + "/relsupd.yaml") << yaml;
  return run.Ok(run.Ctl({"app", "create", app}), "app create " + app) &&
         run.Ok(run.Ctl({"deploy", app, src}), "deploy " + app);
}

std::set<std::string> Pids(Run& run) {
  RunResult r = run.Ctl({"--json", "ps", "many"});
  std::set<std::string> pids;
  const std::regex pid(R"("pid":\s*(\d+))");
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), pid), end; it != end; ++it)
    pids.insert((*it)[1]);
  return pids;
}

// The windows the new images logged, in ms.
std::vector<double> LoggedWindows(const std::string& log_path) {
  std::ifstream in(log_path);
  std::vector<double> out;
  const std::regex window(R"((\d+) ms since the handover was written)");
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, window)) out.push_back(std::stod(m[1]));
  return out;
}

int Main(int argc, char** argv) {
  Run run;
  if (!ParseFlags(argc, argv, Usage,
                  {TextFlag("--relsupd", &run.o.relsupd),
                   IntFlag("--instances", &run.o.instances, 1, 100'000),
                   IntFlag("--rounds", &run.o.rounds, 1, 1'000),
                   IntFlag("--poll-ms", &run.o.poll_ms, 1, 1'000),
                   SwitchFlag("--keep", &run.o.keep)}))
    return UsageError(Usage);
  InstallInterruptHandlers();
  if (!ResolveBinary("reexec", &run.o.relsupd) || !run.dir.Make("reexec", "relsupd-bench-reexec"))
    return 1;
  run.dir.keep = run.o.keep;
  run.socket = run.dir.path() + "/relsupd.sock";
  std::string error;
  run.daemon.set_stop_timeout(60);
  if (!run.daemon.Start(run.o.relsupd, run.dir.path() + "/state", run.socket,
                        run.dir.path() + "/daemon.log", &error) ||
      !run.daemon.WaitReady(run.dir.path(), 20, &error)) {
    std::fprintf(stderr, "reexec: the daemon did not start: %s\n", error.c_str());
    return 1;
  }
  const int64_t deploy_start = MonoNs();
  if (!Deploy(run, "many",
              "processes:\n  sleep:\n    command: sleep 100000\n    ready: none\n    scale: " +
                  std::to_string(run.o.instances) + "\n") ||
      !Deploy(run, "probe", "processes:\n  sleep:\n    command: sleep 100000\n    ready: none\n"))
    return 1;
  const std::set<std::string> pids = Pids(run);
  std::printf("daemon pid %d; app many: %zu instances of `sleep 100000` (ready: none), "
              "live after %.1f s; app probe: 1 instance; load %s\n\n",
              run.daemon.pid(), pids.size(), Ms(MonoNs() - deploy_start) / 1000,
              LoadAverage().c_str());
  std::vector<double> answer_ms, gap_ms;
  {
    Poller poller(run.socket, run.o.poll_ms);
    SleepMs(200);
    for (int i = 0; i < run.o.rounds; ++i) {
      const int64_t t0 = MonoNs();
      auto client = Client::Connect(run.socket);
      auto r = client.ok() ? client->Call(rpc::method::kDaemonReexec, rpc::Json::object())
                           : Result<rpc::Json>(client.status());
      const int64_t t1 = MonoNs();
      if (!r.ok()) {
        std::fprintf(stderr, "reexec: round %d failed: %s\n", i + 1, r.status().message().c_str());
        return 1;
      }
      SleepMs(150);  // the poller's answers after t1 + 100 ms
      answer_ms.push_back(Ms(t1 - t0));
      gap_ms.push_back(Ms(poller.LongestGap(t0 - 100'000'000, t1 + 100'000'000)));
    }
  }
  const bool same = Pids(run) == pids;
  const std::vector<double> windows = LoggedWindows(run.dir.path() + "/daemon.log");
  const double worst_gap = *std::max_element(gap_ms.begin(), gap_ms.end());
  std::printf("daemon.reexec, request to the new image's answer (%d rounds): p50 %.1f ms, "
              "max %.1f ms\n",
              run.o.rounds, Percentile(answer_ms, 0.5), Percentile(answer_ms, 1.0));
  std::printf("  of which the exec window (handover written to adopted, daemon log): "
              "p50 %.1f ms, max %.1f ms\n",
              windows.empty() ? 0.0 : Percentile(windows, 0.5),
              windows.empty() ? 0.0 : Percentile(windows, 1.0));
  std::printf("longest gap in `ps probe` answers (every %d ms, fresh connections): p50 %.1f ms, "
              "max %.1f ms (target < %.0f ms): %s\n",
              run.o.poll_ms, Percentile(gap_ms, 0.5), worst_gap, kTargetGapMs,
              Verdict(worst_gap < kTargetGapMs));
  std::printf("pids of the %zu instances unchanged: %s\n", pids.size(), same ? "yes" : "NO");
  return 0;
}

}  // namespace
}  // namespace relsupd::bench

int main(int argc, char** argv) { return relsupd::bench::Main(argc, argv); }
