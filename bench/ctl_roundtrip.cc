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

#include "cli/client.h"
#include "daemon/base/version.h"
#include "daemon/protocol/methods.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using relsupd::Client;

// Targets.
constexpr double kTargetRate16 = 20000;    // req/s with 16 clients, at least
constexpr double kTargetP99OneUs = 1000;   // p99 with one client, below
constexpr double kTargetCtlMs = 3.0;       // median `ctl info` process, below

std::atomic<bool> g_interrupted{false};
void OnInterrupt(int) { g_interrupted.store(true); }

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

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) return nullptr;
      return argv[++i];
    };
    const char* v = nullptr;
    if (a == "-h" || a == "--help") {
      Usage(stdout);
      std::exit(0);
    } else if (a == "--relsupd" && (v = value())) {
      o->relsupd = v;
    } else if (a == "--duration" && (v = value())) {
      o->duration_s = std::atof(v);
      if (!(o->duration_s > 0)) return false;
    } else if (a == "--runs" && (v = value())) {
      o->runs = std::atoi(v);
      if (o->runs < 1) return false;
    } else if (a == "--clients" && (v = value())) {
      o->clients.clear();
      std::stringstream ss(v);
      std::string item;
      while (std::getline(ss, item, ',')) {
        int n = std::atoi(item.c_str());
        if (n < 1 || n > 1000) return false;
        o->clients.push_back(n);
      }
      if (o->clients.empty()) return false;
    } else {
      return false;
    }
  }
  return true;
}

// Nearest-rank percentile of sorted values.
template <typename T>
T Percentile(const std::vector<T>& sorted, double p) {
  if (sorted.empty()) return T{};
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
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

// The environment for children, without systemd's notification and
// activation variables (the daemon must not talk to our service manager).
std::vector<std::string> ChildEnv() {
  static const char* const kDrop[] = {"NOTIFY_SOCKET=", "WATCHDOG_USEC=",
                                      "WATCHDOG_PID=", "LISTEN_FDS=",
                                      "LISTEN_PID=", "LISTEN_FDNAMES="};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view s(*e);
    bool drop = false;
    for (const char* d : kDrop) drop = drop || s.starts_with(d);
    if (!drop) env.emplace_back(s);
  }
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The daemon under test: a child process, stopped by pid on destruction.
class DaemonProcess {
 public:
  DaemonProcess() = default;
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;
  ~DaemonProcess() { Stop(); }

  bool Start(const std::string& binary, const std::string& dir,
             const std::string& socket, std::string* error) {
    log_ = dir + "/daemon.log";
    std::vector<std::string> args = {binary,       "daemon", "--state-dir",
                                     dir + "/state", "--socket", socket};
    std::vector<std::string> env = ChildEnv();
    std::vector<char*> argv = CStrings(args), envp = CStrings(env);
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      *error = std::string("fork: ") + std::strerror(errno);
      return false;
    }
    if (pid == 0) {
      // Single-threaded here: the benchmark starts no thread before this.
      // Die with the benchmark, even if it is killed; keep Ctrl-C (sent to
      // the terminal's process group) for the benchmark, which then stops
      // the daemon itself.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
      setpgid(0, 0);
      int in = open("/dev/null", O_RDONLY);
      int out = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in < 0 || out < 0) _exit(127);
      dup2(in, 0);
      dup2(out, 1);
      dup2(out, 2);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    pid_ = pid;
    return true;
  }

  // True once the daemon exited on its own (reaps it).
  bool Exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return true;
    }
    return false;
  }

  // SIGTERM, then waits up to 10 s; SIGKILL after that.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    auto deadline = Clock::now() + std::chrono::seconds(10);
    for (;;) {
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno != EINTR)) break;
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "ctl_roundtrip: daemon pid %d ignored SIGTERM "
                             "for 10 s, killing it\n", pid_);
        kill(pid_, SIGKILL);
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      usleep(2000);
    }
    exit_status_ = status;
    pid_ = -1;
  }

  // CPU time used by the daemon (all threads) so far, in nanoseconds;
  // -1 when unknown.
  int64_t CpuNs() const {
    if (pid_ <= 0) return -1;
    int64_t total = 0;
    std::error_code ec;
    std::string task_dir = "/proc/" + std::to_string(pid_) + "/task";
    for (const auto& t : std::filesystem::directory_iterator(task_dir, ec)) {
      std::ifstream in(t.path() / "schedstat");
      int64_t ns = 0;
      if (in >> ns) total += ns;
    }
    return ec ? -1 : total;
  }

  pid_t pid() const { return pid_; }
  int exit_status() const { return exit_status_; }
  const std::string& log() const { return log_; }

 private:
  pid_t pid_ = -1;
  int exit_status_ = 0;
  std::string log_;
};

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
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
  int64_t daemon_cpu0 = d.CpuNs();
  int64_t self_cpu0 = SelfCpuNs();
  const Clock::time_point start = Clock::now();
  sh.end = start + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(o.duration_s));
  sh.go.count_down();
  for (auto& th : threads) th.join();
  int64_t daemon_cpu1 = d.CpuNs();
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
  const std::string err_path = dir + "/ctl.err";
  std::vector<std::string> args = {binary, "ctl", "--socket", socket, "info"};
  std::vector<std::string> env = ChildEnv();
  std::vector<char*> argv = CStrings(args), envp = CStrings(env);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (int i = 0; i < o.warmup_runs + o.runs && !g_interrupted.load(); ++i) {
    auto t0 = Clock::now();
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    if (rc != 0) {
      ++res.failures;
      if (res.first_failure.empty())
        res.first_failure = std::string("posix_spawn: ") + std::strerror(rc);
      continue;
    }
    int status = 0;
    rusage ru{};
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    auto t1 = Clock::now();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++res.failures;
      if (res.first_failure.empty()) {
        std::string err = ReadAll(err_path);
        while (!err.empty() && err.back() == '\n') err.pop_back();
        res.first_failure = DescribeStatus(status) + (err.empty() ? "" : ": " + err);
      }
      continue;
    }
    if (i >= o.warmup_runs) {
      res.ms.push_back(Seconds(t1 - t0) * 1e3);
      auto ms = [](const timeval& tv) {
        return static_cast<double>(tv.tv_sec) * 1e3 +
               static_cast<double>(tv.tv_usec) / 1e3;
      };
      res.cpu_ms.push_back(ms(ru.ru_utime) + ms(ru.ru_stime));
    }
  }
  posix_spawn_file_actions_destroy(&fa);
  std::sort(res.ms.begin(), res.ms.end());
  std::sort(res.cpu_ms.begin(), res.cpu_ms.end());
  return res;
}

const char* Verdict(bool pass) { return pass ? "PASS" : "FAIL"; }

// Removes the temporary dir however main returns.
struct TempDir {
  std::string path;
  ~TempDir() {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec)
      std::fprintf(stderr, "ctl_roundtrip: cannot remove %s: %s\n",
                   path.c_str(), ec.message().c_str());
  }
};

// The command's binary, made absolute; false (printed) when it cannot be
// executed.
bool ResolveBinary(Options* o) {
  if (access(o->relsupd.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "ctl_roundtrip: cannot execute %s: %s\n", o->relsupd.c_str(),
                 std::strerror(errno));
    return false;
  }
  o->relsupd = std::filesystem::absolute(o->relsupd).string();
  return true;
}

void InstallSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool MakeTempDir(TempDir* tmp) {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "relsupd-bench.XXXXXX").string();
  if (!mkdtemp(tmpl.data())) {
    std::fprintf(stderr, "ctl_roundtrip: mkdtemp: %s\n", std::strerror(errno));
    return false;
  }
  tmp->path = tmpl;
  return true;
}

// Starts the daemon and waits until it answers; false (its log printed)
// when it does not.
bool StartDaemon(const Options& o, const std::string& dir, const std::string& socket,
                 DaemonProcess* daemon, std::string* version) {
  std::string error;
  if (daemon->Start(o.relsupd, dir, socket, &error) &&
      WaitReady(*daemon, socket, version, &error))
    return true;
  std::fprintf(stderr, "ctl_roundtrip: cannot start the daemon (%s): %s\n",
               o.relsupd.c_str(), error.c_str());
  daemon->Stop();
  std::string log = ReadAll(daemon->log());
  if (!log.empty()) std::fprintf(stderr, "daemon log:\n%s", log.c_str());
  return false;
}

void PrintHeader(const Options& o, const std::string& version, const DaemonProcess& daemon,
                 const std::string& socket) {
  std::string load = ReadAll("/proc/loadavg");
  load = load.substr(0, load.find(' '));
  std::printf("ctl_roundtrip (relsupd %s, %u cores, load average %s)\n",
              version.c_str(), std::thread::hardware_concurrency(),
              load.empty() ? "?" : load.c_str());
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
    std::string log = ReadAll(daemon->log());
    if (!log.empty()) std::printf("daemon log:\n%s", log.c_str());
  }
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) {
    Usage(stderr);
    return 2;
  }
  if (!ResolveBinary(&o)) return 1;
  InstallSignals();
  TempDir tmp;
  if (!MakeTempDir(&tmp)) return 1;
  const std::string socket = tmp.path + "/relsupd.sock";
  DaemonProcess daemon;  // declared after tmp: stopped before tmp is removed
  std::string version;
  if (!StartDaemon(o, tmp.path, socket, &daemon, &version)) return 1;
  PrintHeader(o, version, daemon, socket);
  for (int n : o.clients) {
    if (g_interrupted.load()) break;
    PrintLoadRow(n, RunLoad(socket, n, o, daemon));
  }
  if (!g_interrupted.load()) MeasureCtlInfo(o, socket, tmp.path);
  std::printf("\n(daemon, client: CPU used by the daemon and by this "
              "benchmark's client threads, in %% of one core; srv_us: daemon "
              "CPU time per request)\n");
  if (g_interrupted.load()) std::printf("interrupted\n");
  StopDaemon(&daemon);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
