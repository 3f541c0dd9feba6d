// ctl_roundtrip: how fast the daemon's control socket answers.
//
// Starts a real `relsupd daemon` on a temporary state dir and socket, then
// measures, in one run:
//   - daemon.info over the socket with 1 and with 16 concurrent clients
//     (each client its own connection and thread): requests/s in total and
//     p50/p99/max latency in microseconds, after a warm-up;
//   - the wall time of one `relsupd ctl info` process (posix_spawn to
//     waitpid, stdout to /dev/null): median and p95 over many runs;
// and prints each figure next to its target with PASS or FAIL. The daemon
// is always stopped by pid (SIGTERM, waitpid) and the temporary dir
// removed. Exit code 0 whatever the figures; 1 when the daemon cannot be
// started, 2 on a usage error.
//
//   build/bench/ctl_roundtrip [--relsupd PATH] [--duration SEC]
//                             [--runs N] [--clients N,N,...]

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "tests/support/fs.h"
#include "cli/client.h"
#include "daemon/base/version.h"
#include "daemon/protocol/methods.h"

namespace relsupd::bench {
namespace {

using Clock = std::chrono::steady_clock;
using relsupd::Client;

// Targets.
constexpr double kTargetRate16 = 20000;    // req/s with 16 clients, at least
constexpr double kTargetP99OneUs = 1000;   // p99 with one client, below
constexpr double kTargetCtlMs = 3.0;       // median `ctl info` process, below

struct Options {
  std::string relsupd = RELSUPD_BIN;
  double duration_s = 3.0;
  int warmup_requests = 500;  // per client, before the clock starts
  int runs = 200;             // `ctl info` processes timed
  int warmup_runs = 10;       // `ctl info` processes not timed
  std::vector<int> clients = {1, 16};
};

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: ctl_roundtrip [--relsupd PATH] [--duration SEC] "
               "[--runs N] [--clients N,N,...]\n"
               "  --relsupd PATH   relsupd binary (default %s)\n"
               "  --duration SEC   timed seconds per client count (default 3)\n"
               "  --runs N         `relsupd ctl info` processes timed "
               "(default 200)\n"
               "  --clients LIST   concurrent client counts (default 1,16)\n",
               RELSUPD_BIN);
}

// "N,N,...": client counts from 1 to 1000.
bool ParseClients(const char* text, std::vector<int>* clients) {
  clients->clear();
  for (const std::string& item : SplitCommas(text)) {
    int n = std::atoi(item.c_str());
    if (n < 1 || n > 1000) return false;
    clients->push_back(n);
  }
  return !clients->empty();
}

bool ParseArgs(int argc, char** argv, Options* o) {
  return ParseFlags(
      argc, argv, Usage,
      {TextFlag("--relsupd", &o->relsupd),
       PositiveFlag("--duration", &o->duration_s),
       IntFlag("--runs", &o->runs, 1),
       {"--clients", true,
        [o](const char* v) { return ParseClients(v, &o->clients); }}});
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// CPU time used by this process (all threads), in nanoseconds.
int64_t SelfCpuNs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) {
    return int64_t{tv.tv_sec} * 1'000'000'000 + int64_t{tv.tv_usec} * 1000;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

// A client that gives up after `timeout` without an answer rather than
// hang the benchmark on a stuck daemon.
relsupd::Result<Client> ConnectWithTimeout(const std::string& socket,
                                           std::chrono::seconds timeout) {
  auto c = Client::Connect(socket);
  if (c.ok()) {
    timeval tv{static_cast<time_t>(timeout.count()), 0};
    setsockopt(c->fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  return c;
}

// Waits until daemon.info answers; returns the daemon's version.
bool WaitReady(DaemonProcess& d, const std::string& socket,
               std::string* version, std::string* error) {
  auto deadline = Clock::now() + std::chrono::seconds(15);
  std::string last = "no answer";
  while (Clock::now() < deadline && !g_interrupted.load()) {
    if (d.Exited()) {
      *error = "the daemon exited (" + DescribeStatus(d.exit_status()) + ")";
      return false;
    }
    auto c = ConnectWithTimeout(socket, std::chrono::seconds(5));
    if (c.ok()) {
      auto r = c->Call(relsupd::rpc::method::kDaemonInfo);
      if (r.ok() && r->is_object()) {
        *version = r->value("version", std::string(relsupd::kVersion));
        return true;
      }
      last = r.ok() ? "daemon.info returned no object" : r.status().message();
    } else {
      last = c.status().message();
    }
    usleep(10'000);
  }
  *error = g_interrupted.load() ? "interrupted"
                                : "no answer on the socket within 15 s: " + last;
  return false;
}

struct LoadResult {
  int clients = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  double rate = 0;
  double p50_us = 0, p99_us = 0, max_us = 0;
  double daemon_cpu = -1;  // fraction of one core
  double daemon_us_per_request = -1;  // daemon CPU time per request
  double client_cpu = 0;   // fraction of one core, this process
};

// What the clients of one RunLoad share: each client's latencies, errors
// and end time, and the start signal.
struct LoadShared {
  explicit LoadShared(int n)
      : lat(static_cast<size_t>(n)),
        errors(static_cast<size_t>(n), 0),
        finished(static_cast<size_t>(n)),
        ready(n) {}
  std::vector<std::vector<int64_t>> lat;
  std::vector<uint64_t> errors;
  std::vector<Clock::time_point> finished;
  std::mutex error_mu;
  std::string first_error;  // guarded by error_mu
  std::latch ready;
  std::latch go{1};
  Clock::time_point end;  // written before go, read after it

  void NoteError(size_t i, const std::string& msg) {
    ++errors[i];
    std::lock_guard<std::mutex> lock(error_mu);
    if (first_error.empty()) first_error = msg;
  }
};

// Client `i` of RunLoad, on its own thread: connect, warm up, wait for go,
// then daemon.info in a closed loop until the shared end.
void ClientLoop(const std::string& socket, const Options& o, size_t i, LoadShared* sh) {
  auto c = ConnectWithTimeout(socket, std::chrono::seconds(5));
  bool alive = c.ok();
  if (!alive) sh->NoteError(i, c.status().message());
  for (int w = 0; alive && w < o.warmup_requests; ++w) {
    auto r = c->Call(relsupd::rpc::method::kDaemonInfo);
    if (!r.ok()) {
      sh->NoteError(i, r.status().message());
      alive = r.status().code() != relsupd::StatusCode::kUnavailable;
    }
  }
  sh->lat[i].reserve(200'000);
  sh->ready.count_down();
  sh->go.wait();
  while (alive && !g_interrupted.load(std::memory_order_relaxed)) {
    auto t0 = Clock::now();
    if (t0 >= sh->end) break;
    auto r = c->Call(relsupd::rpc::method::kDaemonInfo);
    auto t1 = Clock::now();
    if (!r.ok() || !r->is_object()) {
      sh->NoteError(i, r.ok() ? "daemon.info returned no object" : r.status().message());
      if (!r.ok() && r.status().code() == relsupd::StatusCode::kUnavailable) alive = false;
      continue;
    }
    sh->lat[i].push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  sh->finished[i] = Clock::now();
}

// The figures of a finished RunLoad: requests, rate and latency over the
// window from `start` to the last client's end; CPU from the two snapshots.
void Summarize(const LoadShared& sh, Clock::time_point start, int64_t daemon_cpu0,
               int64_t daemon_cpu1, int64_t self_cpu0, int64_t self_cpu1, LoadResult* res) {
  res->first_error = sh.first_error;
  Clock::time_point last = start;
  for (auto& f : sh.finished) last = std::max(last, f);
  res->seconds = Seconds(last - start);
  std::vector<int64_t> all;
  for (auto& v : sh.lat) all.insert(all.end(), v.begin(), v.end());
  for (uint64_t e : sh.errors) res->errors += e;
  std::sort(all.begin(), all.end());
  res->requests = all.size();
  res->rate = res->seconds > 0 ? static_cast<double>(all.size()) / res->seconds : 0;
  res->p50_us = static_cast<double>(Percentile(all, 0.50)) / 1e3;
  res->p99_us = static_cast<double>(Percentile(all, 0.99)) / 1e3;
  res->max_us = all.empty() ? 0 : static_cast<double>(all.back()) / 1e3;
  double wall_ns = res->seconds * 1e9;
  if (daemon_cpu0 >= 0 && daemon_cpu1 >= 0 && wall_ns > 0)
    res->daemon_cpu = static_cast<double>(daemon_cpu1 - daemon_cpu0) / wall_ns;
  if (daemon_cpu0 >= 0 && daemon_cpu1 >= 0 && res->requests > 0)
    res->daemon_us_per_request = static_cast<double>(daemon_cpu1 - daemon_cpu0) / 1e3 /
                                 static_cast<double>(res->requests);
  if (wall_ns > 0) res->client_cpu = static_cast<double>(self_cpu1 - self_cpu0) / wall_ns;
}

// `n` clients, each on its own connection and thread, call daemon.info in
// a closed loop: a warm-up of o.warmup_requests each, then o.duration_s
// timed seconds that start at the same instant for every client.
LoadResult RunLoad(const std::string& socket, int n, const Options& o,
                   const DaemonProcess& d) {
  LoadResult res;
  res.clients = n;
  LoadShared sh(n);
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t)
    threads.emplace_back(ClientLoop, std::cref(socket), std::cref(o), static_cast<size_t>(t),
                         &sh);
  sh.ready.wait();
  int64_t daemon_cpu0 = ThreadsCpuNs(d.pid());
  int64_t self_cpu0 = SelfCpuNs();
  const Clock::time_point start = Clock::now();
  sh.end = start + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(o.duration_s));
  sh.go.count_down();
  for (auto& th : threads) th.join();
  int64_t daemon_cpu1 = ThreadsCpuNs(d.pid());
  int64_t self_cpu1 = SelfCpuNs();
  Summarize(sh, start, daemon_cpu0, daemon_cpu1, self_cpu0, self_cpu1, &res);
  return res;
}

struct SpawnResult {
  std::vector<double> ms;      // wall time, sorted
  std::vector<double> cpu_ms;  // the child's user+system CPU time, sorted
  int failures = 0;
  std::string first_failure;
};

// Times `relsupd ctl --socket S info` processes, posix_spawn to waitpid
// (wait4, which also gives the child's CPU time).
SpawnResult RunCtlInfo(const std::string& binary, const std::string& socket,
                       const std::string& dir, const Options& o) {
  SpawnResult res;
  RunOptions quiet;  // stdout to /dev/null
  quiet.err_path = dir + "/ctl.err";
  for (int i = 0; i < o.warmup_runs + o.runs && !g_interrupted.load(); ++i) {
    RunResult r = Run({binary, "ctl", "--socket", socket, "info"}, quiet);
    if (!r.ok()) {
      ++res.failures;
      if (res.first_failure.empty()) {
        std::string err = r.err;
        while (!err.empty() && err.back() == '\n') err.pop_back();
        res.first_failure = DescribeStatus(r.status) + (err.empty() ? "" : ": " + err);
      }
      continue;
    }
    if (i >= o.warmup_runs) {
      res.ms.push_back(r.ms);
      res.cpu_ms.push_back(r.cpu_ms);
    }
  }
  std::sort(res.ms.begin(), res.ms.end());
  std::sort(res.cpu_ms.begin(), res.cpu_ms.end());
  return res;
}

// Starts the daemon and waits until it answers; false (its log printed)
// when it does not.
bool StartDaemon(const Options& o, const std::string& dir, const std::string& socket,
                 DaemonProcess* daemon, std::string* version) {
  std::string error;
  if (daemon->Start(o.relsupd, dir + "/state", socket, dir + "/daemon.log", &error) &&
      WaitReady(*daemon, socket, version, &error))
    return true;
  std::fprintf(stderr, "ctl_roundtrip: cannot start the daemon (%s): %s\n",
               o.relsupd.c_str(), error.c_str());
  daemon->Stop();
  std::string log = support::ReadFileOrEmpty(daemon->log());
  if (!log.empty()) std::fprintf(stderr, "daemon log:\n%s", log.c_str());
  return false;
}

void PrintHeader(const Options& o, const std::string& version, const DaemonProcess& daemon,
                 const std::string& socket) {
  std::printf("ctl_roundtrip (relsupd %s, %u cores, load average %s)\n",
              version.c_str(), std::thread::hardware_concurrency(),
              LoadAverage().c_str());
  std::printf("daemon pid %d on %s; daemon.info, %d warm-up requests then "
              "%.1f s per client count\n\n",
              daemon.pid(), socket.c_str(), o.warmup_requests, o.duration_s);
  std::printf("%-8s %9s %9s %8s %8s %8s %7s %7s %7s  %s\n", "clients",
              "requests", "req/s", "p50_us", "p99_us", "max_us", "daemon",
              "client", "srv_us", "target");
  std::fflush(stdout);
}

// One row of the load table, with its target where the row has one.
void PrintLoadRow(int n, const LoadResult& r) {
  std::string target = "-";
  if (g_interrupted.load())
    target = "(interrupted)";
  else if (n == 1)
    target = "p99 < " + std::to_string(static_cast<int>(kTargetP99OneUs)) +
             " us  " + Verdict(r.requests > 0 && r.errors == 0 &&
                               r.p99_us < kTargetP99OneUs);
  else if (n == 16)
    target = ">= " + std::to_string(static_cast<int>(kTargetRate16)) +
             " req/s  " + Verdict(r.errors == 0 && r.rate >= kTargetRate16);
  char dcpu[16] = "?";
  if (r.daemon_cpu >= 0)
    std::snprintf(dcpu, sizeof dcpu, "%.0f%%", r.daemon_cpu * 100);
  char ccpu[16];
  std::snprintf(ccpu, sizeof ccpu, "%.0f%%", r.client_cpu * 100);
  char srv[16] = "?";
  if (r.daemon_us_per_request >= 0)
    std::snprintf(srv, sizeof srv, "%.1f", r.daemon_us_per_request);
  std::printf("%-8d %9llu %9.0f %8.1f %8.1f %8.0f %7s %7s %7s  %s\n", n,
              static_cast<unsigned long long>(r.requests), r.rate, r.p50_us,
              r.p99_us, r.max_us, dcpu, ccpu, srv, target.c_str());
  if (r.errors > 0)
    std::printf("         %llu errors, first: %s\n",
                static_cast<unsigned long long>(r.errors),
                r.first_error.c_str());
  std::fflush(stdout);
}

// Times `ctl info` processes and prints their figures.
void MeasureCtlInfo(const Options& o, const std::string& socket, const std::string& dir) {
  SpawnResult ctl = RunCtlInfo(o.relsupd, socket, dir, o);
  double median = Percentile(ctl.ms, 0.50), p95 = Percentile(ctl.ms, 0.95);
  std::printf("\nctl info process: median %.2f ms, p95 %.2f ms, min %.2f ms "
              "over %zu runs   (target median < %.0f ms) %s\n",
              median, p95, ctl.ms.empty() ? 0.0 : ctl.ms.front(),
              ctl.ms.size(), kTargetCtlMs,
              Verdict(!ctl.ms.empty() && ctl.failures == 0 &&
                      median < kTargetCtlMs));
  std::printf("  (the process's own CPU time: median %.2f ms, min %.2f ms; "
              "wall time above this is waiting for a CPU)\n",
              Percentile(ctl.cpu_ms, 0.50),
              ctl.cpu_ms.empty() ? 0.0 : ctl.cpu_ms.front());
  if (ctl.failures > 0)
    std::printf("  %d runs failed, first: %s\n", ctl.failures,
                ctl.first_failure.c_str());
}

// Stops the daemon; prints its log when it did not exit 0.
void StopDaemon(DaemonProcess* daemon) {
  daemon->Stop();
  if (!(WIFEXITED(daemon->exit_status()) && WEXITSTATUS(daemon->exit_status()) == 0)) {
    std::printf("daemon stopped: %s\n", DescribeStatus(daemon->exit_status()).c_str());
    std::string log = support::ReadFileOrEmpty(daemon->log());
    if (!log.empty()) std::printf("daemon log:\n%s", log.c_str());
  }
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return UsageError(Usage);
  if (!ResolveBinary("ctl_roundtrip", &o.relsupd)) return 1;
  InstallInterruptHandlers();
  BenchDir tmp;
  if (!tmp.Make("ctl_roundtrip", "relsupd-bench")) return 1;
  const std::string socket = tmp.path() + "/relsupd.sock";
  DaemonProcess daemon;  // declared after tmp: stopped before tmp is removed
  std::string version;
  if (!StartDaemon(o, tmp.path(), socket, &daemon, &version)) return 1;
  PrintHeader(o, version, daemon, socket);
  for (int n : o.clients) {
    if (g_interrupted.load()) break;
    PrintLoadRow(n, RunLoad(socket, n, o, daemon));
  }
  if (!g_interrupted.load()) MeasureCtlInfo(o, socket, tmp.path());
  std::printf("\n(daemon, client: CPU used by the daemon and by this "
              "benchmark's client threads, in %% of one core; srv_us: daemon "
              "CPU time per request)\n");
  if (g_interrupted.load()) std::printf("interrupted\n");
  StopDaemon(&daemon);
  return 0;
}

}  // namespace
}  // namespace relsupd::bench

int main(int argc, char** argv) { return relsupd::bench::Main(argc, argv); }
