// operate: what health checks and metrics cost the daemon (issue 14).
//
// One daemon, an app `many` of N instances of `sleep 100000` (ready: none).
// Phase 1, "plain": the daemon's CPU (user + system, /proc/PID/stat) over
// --seconds and its RSS (VmRSS) at the end. Phase 2, "operated": the same
// app redeployed with `health: {tcp: PORT, interval: 1s}` (PORT a loopback
// listener of this benchmark that accepts and closes), while a thread GETs
// /metrics on the daemon's metrics_listen every second; the same figures.
// Targets: under 5% of one core and an RSS under 20 MiB with both on.
// The usage sampler (every 2 s) runs in both phases.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "tests/support/sockets.h"

namespace relsupd::bench {
namespace {

struct Options {
  std::string relsupd = RELSUPD_BIN;
  int instances = 1000;
  int seconds = 20;
  bool keep = false;
};

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: operate [--relsupd PATH] [--instances N] [--seconds N] [--keep]\n"
               "  --relsupd PATH   relsupd binary (default %s)\n"
               "  --instances N    instances of the app `many` (default 1000)\n"
               "  --seconds N      length of each measured phase (default 20)\n"
               "  --keep           keep the temporary dir\n",
               RELSUPD_BIN);
}

// A loopback listener that accepts and closes, for the tcp health checks.
class Acceptor {
 public:
  bool Start() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::listen(fd_, 4096) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return false;
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          ::close(c);
          accepted_.fetch_add(1);
        }
      }
    });
    return true;
  }
  ~Acceptor() {
    stop_ = true;
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }
  uint64_t accepted() const { return accepted_.load(); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0};
  std::thread thread_;
};

// GET /metrics every second until stopped; counts the good answers.
class Scraper {
 public:
  explicit Scraper(int port) : port_(port) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        const int64_t t0 = MonoNs();
        const std::string body = support::HttpGet(port_, "/metrics");
        if (body.find("relsupd_instances{") != std::string::npos) {
          ok_.fetch_add(1);
          bytes_.store(body.size());
        }
        const int64_t left = 1000 - (MonoNs() - t0) / 1'000'000;
        for (int64_t i = 0; i < left / 10 && !stop_.load(); ++i) SleepMs(10);
      }
    });
  }
  ~Scraper() {
    stop_ = true;
    thread_.join();
  }
  uint64_t ok() const { return ok_.load(); }
  size_t bytes() const { return bytes_.load(); }

 private:
  int port_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ok_{0};
  std::atomic<size_t> bytes_{0};
  std::thread thread_;
};

double RssMiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

constexpr int kSettleMs = 6'000;  // more than Daemon::kTrimIntervalMs

struct Figures {
  double cpu_percent = 0;
  double rss_mib = 0;      // at the end
  double rss_max_mib = 0;  // the highest of the samples every 100 ms
};

// The daemon's CPU over `seconds`, its RSS every 100 ms meanwhile (the
// highest) and at the end.
Figures Measure(pid_t daemon, int seconds) {
  const double cpu0 = ProcessCpuSeconds(daemon);
  const int64_t t0 = MonoNs();
  double rss_max = 0;
  for (int i = 0; i < seconds * 10 && !g_interrupted.load(); ++i) {
    SleepMs(100);
    rss_max = std::max(rss_max, RssMiB(daemon));
  }
  const double cpu1 = ProcessCpuSeconds(daemon);
  const double wall = static_cast<double>(MonoNs() - t0) / 1e9;
  const double rss = RssMiB(daemon);
  return {100.0 * (cpu1 - cpu0) / wall, rss, std::max(rss_max, rss)};
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseFlags(argc, argv, Usage,
                  {TextFlag("--relsupd", &o.relsupd),
                   IntFlag("--instances", &o.instances, 1, 100'000),
                   IntFlag("--seconds", &o.seconds, 1, 3'600), SwitchFlag("--keep", &o.keep)}))
    return UsageError(Usage);
  InstallInterruptHandlers();
  BenchDir dir;
  if (!ResolveBinary("operate", &o.relsupd) || !dir.Make("operate", "relsupd-bench-operate"))
    return 1;
  dir.keep = o.keep;
  Acceptor acceptor;
  if (!acceptor.Start()) {
    std::perror("operate: listener");
    return 1;
  }
  const int metrics_port = support::FreePort();
  const std::string config = dir.path() + "/relsupd.yaml";
  std::ofstream(config) << "metrics_listen: 127.0.0.1:" << metrics_port << "\n";
  const std::string socket = dir.path() + "/relsupd.sock";
  DaemonProcess daemon;
  daemon.set_stop_timeout(60);
  std::string error;
  if (!daemon.Start(o.relsupd, dir.path() + "/state", socket, dir.path() + "/daemon.log", &error,
                    {"--config", config}) ||
      !daemon.WaitReady(dir.path(), 20, &error)) {
    std::fprintf(stderr, "operate: the daemon did not start: %s\n", error.c_str());
    return 1;
  }
  auto ctl = [&](std::vector<std::string> args, const std::string& what) {
    args.insert(args.begin(), {o.relsupd, "ctl", "--socket", socket});
    RunResult r = RunIn(args, dir.path(), 900);
    if (!r.ok()) std::fprintf(stderr, "operate: %s failed: %s\n", what.c_str(), r.Describe().c_str());
    return r.ok();
  };
  const std::string src = dir.path() + "/many";
  std::filesystem::create_directories(src);
  const std::string plain = "processes:\n  sleep:\n    command: sleep 100000\n    ready: none\n"
                            "    scale: " + std::to_string(o.instances) + "\n";
  std::ofstream(src + "/relsupd.yaml") << plain;
  // Deployed twice, so that both phases measure a daemon that has been
  // through one switch of every instance (its heap's high-water mark).
  if (!ctl({"app", "create", "many"}, "app create") || !ctl({"deploy", "many", src}, "deploy") ||
      !ctl({"config", "set", "many", "PHASE=plain"}, "config set") ||
      !ctl({"deploy", "many", src}, "deploy again"))
    return 1;
  std::printf("daemon pid %d, %d instances of `sleep 100000`; load %s\n", daemon.pid(),
              o.instances, LoadAverage().c_str());
  // The switch's leftovers settle: a switch of 1,000 instances peaks at
  // about 26 MiB, given back at the daemon's next heap trim (every 5 s).
  SleepMs(kSettleMs);
  const Figures before = Measure(daemon.pid(), o.seconds);

  std::ofstream(src + "/relsupd.yaml")
      << plain << "    health: {tcp: " << acceptor.port() << ", interval: 1s}\n";
  if (!ctl({"deploy", "many", src}, "deploy with health checks")) return 1;
  SleepMs(kSettleMs);
  Figures after;
  uint64_t checks = 0, scrapes = 0;
  size_t metrics_bytes = 0;
  {
    Scraper scraper(metrics_port);
    const uint64_t accepted0 = acceptor.accepted();
    after = Measure(daemon.pid(), o.seconds);
    checks = acceptor.accepted() - accepted0;
    scrapes = scraper.ok();
    metrics_bytes = scraper.bytes();
  }
  const std::string head = "phase (" + std::to_string(o.seconds) + " s each)";
  std::printf("\n%-44s %10s %10s %10s\n", head.c_str(), "CPU %", "RSS MiB", "max MiB");
  std::printf("%-44s %10.2f %10.1f %10.1f\n", "plain (usage sampler only)", before.cpu_percent,
              before.rss_mib, before.rss_max_mib);
  std::printf("%-44s %10.2f %10.1f %10.1f\n", "health tcp every 1s + GET /metrics every 1s",
              after.cpu_percent, after.rss_mib, after.rss_max_mib);
  std::printf("\nhealth checks answered: %llu (%.0f/s); scrapes: %llu, %zu bytes each\n",
              static_cast<unsigned long long>(checks),
              static_cast<double>(checks) / o.seconds, static_cast<unsigned long long>(scrapes),
              metrics_bytes);
  const bool cpu_ok = after.cpu_percent < 5.0;
  const bool rss_ok = after.rss_max_mib < 20.0;
  std::printf("target CPU < 5%%: %s; target RSS < 20 MiB (the highest sample): %s\n",
              Verdict(cpu_ok), Verdict(rss_ok));
  return 0;
}

}  // namespace
}  // namespace relsupd::bench

int main(int argc, char** argv) { return relsupd::bench::Main(argc, argv); }
