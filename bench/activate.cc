// activate: the run stage's switch between releases (issue 5's benchmark).
//
// One run prints:
//   1. the switch itself, as the daemon does it: one `activating` event
//      appended to a real ledger (WAL, synchronous=FULL) and
//      SwitchCurrentLink (temporary link, rename(2), fsync of the app dir),
//      timed in this process by linking the daemon's own ledger and
//      activate libraries, on a state dir in the same temporary dir (so the
//      same disk) as the daemon's: median and p95 of --switches (100);
//   2. the time from `relsupd ctl activate shop vN` to the CLI's exit 0
//      (it exits when the new release is live) for the example app
//      (examples/hello, web scale 2, ready: notify, start-first), alternating
//      v2/v1, --rounds (10) times: median, p95, min, max;
//   3. a paced loopback HTTP client (--threads threads, a new connection per
//      request, GET /version, --rate requests/s for --duration s) while the
//      daemon activates v2 and rolls back, --cycles (10) times each, spread
//      over the window: requests sent, failed (refused, reset, timeout,
//      non-200, wrong body), p50/p99/max latency. Every failure is listed
//      with its time next to the switch windows.
// Each figure with a target is printed with PASS or FAIL. Every process it
// starts is stopped by pid; the temporary dir is removed (--keep keeps it).
// Exit code 0 whatever the figures; 1 when a setup step fails, 2 on a usage
// error.
//
//   build/bench/activate [--relsupd PATH] [--hello PATH] [--switches N]
//                        [--rounds N] [--rate R] [--duration SEC]
//                        [--cycles N] [--threads N] [--keep]

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_support.h"
#include "daemon/activate/switcher.h"
#include "tests/support/fs.h"
#include "daemon/base/clock.h"
#include "daemon/ledger/ledger.h"
#include "tests/support/sockets.h"

namespace relsupd::bench {
namespace {

using Steady = std::chrono::steady_clock;

// Targets.
constexpr double kTargetSwitchMs = 5.0;   // median switch, below
constexpr double kTargetRate = 500;       // requests/s under load, at least
constexpr double kTargetLoadS = 30;       // for at least this long
constexpr int kTargetCycles = 10;         // activations and rollbacks, each

constexpr int kRequestTimeoutS = 2;  // connect, send or read: a failure

struct Options {
  std::string relsupd = RELSUPD_BIN;
  std::string hello = HELLO_BIN;
  int switches = 100;
  int rounds = 10;
  double rate = 600;
  double duration_s = 30;
  int cycles = 10;
  int threads = 4;
  int send_delay_us = 0;  // diagnostic: pause between connect and send
  bool keep = false;
};

void Usage(FILE* out) {
  std::fprintf(
      out,
      "usage: activate [--relsupd PATH] [--hello PATH] [--switches N] "
      "[--rounds N]\n"
      "                [--rate R] [--duration SEC] [--cycles N] [--threads N] "
      "[--send-delay-us N] [--keep]\n"
      "  --relsupd PATH   relsupd binary (default %s)\n"
      "  --hello PATH     the example app's binary (default %s)\n"
      "  --switches N     in-process switches timed (default 100)\n"
      "  --rounds N       `ctl activate` runs timed, alternating v2/v1 "
      "(default 10)\n"
      "  --rate R         HTTP requests/s under load (default 600)\n"
      "  --duration SEC   load window (default 30; longer if the switches "
      "take longer)\n"
      "  --cycles N       activate + rollback pairs under load (default 10)\n"
      "  --threads N      HTTP client threads (default 4)\n"
      "  --send-delay-us N  pause between connect and sending the request "
      "(default 0;\n"
      "                   a diagnostic: widens the window in which a "
      "connection is\n"
      "                   accepted but its request has not arrived)\n"
      "  --keep           keep the temporary dir (daemon log, state)\n",
      RELSUPD_BIN, HELLO_BIN);
}

bool ParseArgs(int argc, char** argv, Options* o) {
  return ParseFlags(argc, argv, Usage,
                    {TextFlag("--relsupd", &o->relsupd),
                     TextFlag("--hello", &o->hello),
                     IntFlag("--switches", &o->switches, 1),
                     IntFlag("--rounds", &o->rounds, 0),
                     PositiveFlag("--rate", &o->rate),
                     PositiveFlag("--duration", &o->duration_s),
                     IntFlag("--cycles", &o->cycles, 0),
                     IntFlag("--threads", &o->threads, 1, 256),
                     IntFlag("--send-delay-us", &o->send_delay_us, 0),
                     SwitchFlag("--keep", &o->keep)});
}

double Ms(Steady::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Wall clock as HH:MM:SS.mmm (UTC, as the daemon's log lines).
std::string WallText(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                t.time_since_epoch())
                .count();
  time_t s = static_cast<time_t>(ms / 1000);
  tm parts{};
  gmtime_r(&s, &parts);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", parts.tm_hour,
                parts.tm_min, parts.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

// Milliseconds since midnight (UTC) of a log line that starts with a date
// and a time, "2026-11-27 15:22:49.317" (daemon) or
// "2026-11-27T15:22:49.321600Z" (app output); -1 for other lines.
double LineMsOfDay(const std::string& line) {
  int h = 0, m = 0;
  double sec = 0;
  if (line.size() < 23 || (line[10] != ' ' && line[10] != 'T') ||
      std::sscanf(line.c_str() + 11, "%2d:%2d:%lf", &h, &m, &sec) != 3)
    return -1;
  return (h * 3600 + m * 60) * 1000.0 + sec * 1000.0;
}

double MsOfDay(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                t.time_since_epoch())
                .count();
  return static_cast<double>(us % 86'400'000'000LL) / 1e3;
}

// ---- 1. the switch itself ----

struct SwitchFigures {
  std::vector<double> total_ms, ledger_ms, link_ms;
  std::string error;
};

// `n` times (after 5 untimed): AppendEvent("activating") then
// SwitchCurrentLink between releases/v1 and releases/v2, exactly the two
// calls Switcher::Prepare makes, on a fresh ledger in `dir`.
SwitchFigures MeasureSwitch(const std::string& dir, int n) {
  SwitchFigures f;
  namespace fs = std::filesystem;
  const std::string app_dir = dir + "/apps/shop";
  std::error_code ec;
  fs::create_directories(app_dir + "/releases/v1", ec);
  fs::create_directories(app_dir + "/releases/v2", ec);
  if (ec) {
    f.error = "mkdir " + app_dir + ": " + ec.message();
    return f;
  }
  auto ledger = relsupd::Ledger::Open(dir + "/ledger.db", relsupd::RealClock());
  if (!ledger.ok()) {
    f.error = ledger.status().message();
    return f;
  }
  relsupd::AppSpec spec;
  spec.name = "shop";
  spec.user = "nobody";
  spec.group = "nogroup";
  if (auto s = (*ledger)->CreateApp(spec, {0, "bench"}); !s.ok()) {
    f.error = s.message();
    return f;
  }
  const relsupd::Actor actor{0, "root"};
  for (int i = -5; i < n && !g_interrupted.load(); ++i) {
    const relsupd::ReleaseId to((i & 1) ? 1 : 2);
    const relsupd::ReleaseId from((i & 1) ? 2 : 1);
    auto t0 = Steady::now();
    relsupd::Status s =
        (*ledger)->AppendEvent("shop", relsupd::EventKind::kActivating, to,
                               actor, "from " + from.ToString() + ", start-first");
    auto t1 = Steady::now();
    if (s.ok()) s = relsupd::SwitchCurrentLink(app_dir, "releases/" + to.ToString());
    auto t2 = Steady::now();
    if (!s.ok()) {
      f.error = s.message();
      return f;
    }
    if (i < 0) continue;
    f.ledger_ms.push_back(Ms(t1 - t0));
    f.link_ms.push_back(Ms(t2 - t1));
    f.total_ms.push_back(Ms(t2 - t0));
  }
  for (auto* v : {&f.total_ms, &f.ledger_ms, &f.link_ms})
    std::sort(v->begin(), v->end());
  return f;
}

// ---- 3. the HTTP client ----

enum class Outcome : uint8_t {
  kOk,
  kRefused,     // connect: ECONNREFUSED
  kTimeout,     // connect, send or read timed out
  kReset,       // ECONNRESET / EPIPE
  kClosed,      // closed with no (complete) response
  kBadStatus,   // not 200
  kBadBody,     // 200 without v1/v2
  kOtherError,  // any other errno
};

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kRefused: return "refused";
    case Outcome::kTimeout: return "timeout";
    case Outcome::kReset: return "reset";
    case Outcome::kClosed: return "closed without response";
    case Outcome::kBadStatus: return "non-200";
    case Outcome::kBadBody: return "wrong body";
    case Outcome::kOtherError: return "error";
  }
  return "?";
}

struct Sample {
  int64_t sched_us = 0;  // when it was due, from the load's start
  int64_t start_us = 0;  // connect() called
  int64_t end_us = 0;    // response read to EOF, or the failure
  Outcome outcome = Outcome::kOk;
  int err = 0;
  char version = 0;  // '1' or '2' when served
  std::string detail;
};

Outcome FromErrno(int err) {
  if (err == ECONNREFUSED) return Outcome::kRefused;
  if (err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT ||
      err == EINPROGRESS)
    return Outcome::kTimeout;
  if (err == ECONNRESET || err == EPIPE) return Outcome::kReset;
  return Outcome::kOtherError;
}

// One GET /version on a new connection ("Connection: close").
void OneRequest(int port, int send_delay_us, Sample* s) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    s->outcome = Outcome::kOtherError;
    s->err = errno;
    return;
  }
  timeval tv{kRequestTimeoutS, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  static const char kReq[] =
      "GET /version HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
  std::string reply;
  const bool connected =
      connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  const int connect_err = errno;
  if (connected && send_delay_us > 0)
    std::this_thread::sleep_for(std::chrono::microseconds(send_delay_us));
  if (!connected) {
    s->err = connect_err;
    s->outcome = FromErrno(s->err);
    s->detail = "connect";
  } else if (send(fd, kReq, sizeof kReq - 1, MSG_NOSIGNAL) !=
             static_cast<ssize_t>(sizeof kReq - 1)) {
    s->err = errno;
    s->outcome = FromErrno(s->err);
    s->detail = "send";
  } else {
    char buf[1024];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) {
        reply.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        s->err = errno;
        s->outcome = FromErrno(s->err);
        s->detail = "read after " + std::to_string(reply.size()) + " bytes";
      }
      break;
    }
  }
  close(fd);
  if (s->outcome != Outcome::kOk) return;
  size_t body = reply.find("\r\n\r\n");
  if (reply.empty() || body == std::string::npos) {
    s->outcome = Outcome::kClosed;
    s->detail = std::to_string(reply.size()) + " bytes";
  } else if (!reply.starts_with("HTTP/1.1 200 ")) {
    s->outcome = Outcome::kBadStatus;
    s->detail = reply.substr(0, reply.find('\r'));
  } else if (reply.compare(body + 4, std::string::npos, "v1\n") == 0) {
    s->version = '1';
  } else if (reply.compare(body + 4, std::string::npos, "v2\n") == 0) {
    s->version = '2';
  } else {
    s->outcome = Outcome::kBadBody;
    s->detail = reply.substr(body + 4, 40);
  }
}

// Paced load: request k is due at start + k / rate; a free thread takes the
// next due request, so one slow request does not delay the others.
class Load {
 public:
  Load(int port, double rate, int threads, int send_delay_us)
      : port_(port),
        period_us_(1e6 / rate),
        threads_(threads),
        send_delay_us_(send_delay_us) {}

  void Start() {
    start_ = Steady::now();
    wall_start_ = std::chrono::system_clock::now();
    for (int t = 0; t < threads_; ++t)
      workers_.emplace_back([this, t] { Work(t); });
  }
  // No request due at or after `after_us` (from the start) is sent.
  void StopAt(int64_t after_us) { stop_us_.store(after_us); }
  void Join() {
    for (auto& w : workers_) w.join();
    workers_.clear();
  }
  int64_t NowUs() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               Steady::now() - start_)
        .count();
  }
  Steady::time_point start() const { return start_; }
  std::chrono::system_clock::time_point wall_start() const {
    return wall_start_;
  }
  std::vector<Sample> Samples() const {
    std::vector<Sample> all;
    for (const auto& v : per_thread_) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end(), [](const Sample& a, const Sample& b) {
      return a.sched_us < b.sched_us;
    });
    return all;
  }

 private:
  void Work(int t) {
    std::vector<Sample>& out = per_thread_[static_cast<size_t>(t)];
    out.reserve(20000);
    for (;;) {
      const int64_t k = next_.fetch_add(1);
      const int64_t due =
          static_cast<int64_t>(static_cast<double>(k) * period_us_);
      if (due >= stop_us_.load() || g_interrupted.load()) return;
      // Sleep in slices so that StopAt() is seen soon.
      for (int64_t now = NowUs(); now < due; now = NowUs()) {
        if (due >= stop_us_.load() || g_interrupted.load()) return;
        std::this_thread::sleep_for(
            std::chrono::microseconds(std::min<int64_t>(due - now, 50'000)));
      }
      Sample s;
      s.sched_us = due;
      s.start_us = NowUs();
      OneRequest(port_, send_delay_us_, &s);
      s.end_us = NowUs();
      out.push_back(std::move(s));
    }
  }

  int port_;
  double period_us_;
  int threads_;
  int send_delay_us_;
  Steady::time_point start_;
  std::chrono::system_clock::time_point wall_start_;
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> stop_us_{std::numeric_limits<int64_t>::max()};
  std::vector<std::thread> workers_;
  std::vector<std::vector<Sample>> per_thread_{256};
};

// One `ctl activate` or `ctl rollback` under load.
struct SwitchRun {
  std::string what;       // "activate v2", "rollback"
  int64_t start_us = 0;   // from the load's start
  int64_t end_us = 0;
  int status = -1;
  std::string out;
};

// One run: the options, the temporary dir and the daemon in it. Fail()
// prints why the run stopped (with the daemon's log) and sets the exit
// code; each step returns false once it failed or was interrupted.
struct Bench {
  Options o;
  BenchDir tmp;  // removed at the end unless --keep
  std::string dir, socket;
  DaemonProcess daemon;
  int port = 0;
  int rc = 0;

  void Fail(const std::string& what) {
    std::fprintf(stderr, "activate: %s\n", what.c_str());
    if (daemon.pid() > 0 || !daemon.log().empty())
      std::fprintf(stderr, "--- daemon log ---\n%s\n", support::ReadFileOrEmpty(daemon.log()).c_str());
    rc = 1;
  }
  // Runs argv to completion, its stdout and stderr together (through
  // DIR/run.out).
  RunResult Exec(const std::vector<std::string>& args) const {
    RunOptions merged;
    merged.out_path = merged.err_path = dir + "/run.out";
    return Run(args, merged);
  }
  // `relsupd ctl --socket SOCKET ARGS...`.
  RunResult Ctl(std::vector<std::string> args) const {
    args.insert(args.begin(), {o.relsupd, "ctl", "--socket", socket});
    return Exec(args);
  }
};

// Part 1: the switch in process.
bool SwitchInProcess(Bench& run) {
  SwitchFigures sf = MeasureSwitch(run.dir + "/switch", run.o.switches);
  if (!sf.error.empty()) {
    run.Fail("the switch: " + sf.error);
    return false;
  }
  const double sw_med = Percentile(sf.total_ms, 0.5);
  std::printf(
      "1. the switch (ledger `activating` event + link + rename + fsync of "
      "the app dir), in process, %zu times\n"
      "   median %.3f ms, p95 %.3f ms, min %.3f ms, max %.3f ms   "
      "(target median < %.0f ms) %s\n"
      "   of which the ledger event: median %.3f ms, p95 %.3f ms; the link: "
      "median %.3f ms, p95 %.3f ms\n\n",
      sf.total_ms.size(), sw_med, Percentile(sf.total_ms, 0.95),
      sf.total_ms.front(), sf.total_ms.back(), kTargetSwitchMs,
      Verdict(sw_med < kTargetSwitchMs), Percentile(sf.ledger_ms, 0.5),
      Percentile(sf.ledger_ms, 0.95), Percentile(sf.link_ms, 0.5),
      Percentile(sf.link_ms, 0.95));
  std::fflush(stdout);
  return !g_interrupted.load();
}

// Starts the daemon and waits until `ctl info` answers (20 s).
bool StartDaemon(Bench& run) {
  std::string error;
  run.daemon.set_stop_timeout(20);  // it stops the app's instances
  if (!run.daemon.Start(run.o.relsupd, run.dir + "/state", run.socket, run.dir + "/daemon.log",
                        &error)) {
    run.Fail("cannot start the daemon: " + error);
    return false;
  }
  if (run.daemon.WaitReady(run.dir, 20, &error)) return true;
  run.Fail("the daemon did not answer: " + error);
  return false;
}

// The app's source: relsupd.yaml and the built hello, packed into
// DIR/hello.tar.gz; the app `shop` created on a free loopback port.
bool PackApp(Bench& run, const std::string& artifact) {
  run.port = support::FreePort();
  const std::string app_src = run.dir + "/app";
  std::filesystem::create_directories(app_src + "/bin");
  std::error_code ec;
  std::filesystem::copy_file(run.o.hello, app_src + "/bin/hello", ec);
  {
    std::ofstream y(app_src + "/relsupd.yaml");
    // The example app's processes (examples/hello/relsupd.yaml).
    y << "processes: {web: {command: ./bin/hello, scale: 2, sockets: [http], "
         "ready: notify, stop_timeout: 5s}}\n";
  }
  chmod((app_src + "/bin/hello").c_str(), 0755);
  if (ec) {
    run.Fail("copy " + run.o.hello + ": " + ec.message());
    return false;
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> steps = {
      {"tar",
       {"/bin/tar", "-czf", artifact, "-C", app_src, "relsupd.yaml", "bin"}},
      {"app create",
       {run.o.relsupd, "ctl", "--socket", run.socket, "app", "create", "shop",
        "--socket", "http=tcp://127.0.0.1:" + std::to_string(run.port)}},
  };
  for (auto& [name, args] : steps) {
    RunResult r = run.Exec(args);
    if (!r.ok()) {
      run.Fail(name + " failed (" + DescribeStatus(r.status) + "): " + r.out);
      return false;
    }
  }
  return true;
}

// The app `shop` with releases v1 and v2 of hello, v1 live.
bool SetUpApp(Bench& run) {
  const std::string artifact = run.dir + "/hello.tar.gz";
  if (!PackApp(run, artifact)) return false;
  RunResult imp = run.Ctl({"--json", "build", "import", "shop", artifact});
  size_t id_at = imp.out.find("\"id\"");
  size_t q1 = imp.out.find('"', imp.out.find(':', id_at) + 1);
  size_t q2 = q1 == std::string::npos ? q1 : imp.out.find('"', q1 + 1);
  if (!imp.ok() || id_at == std::string::npos || q2 == std::string::npos) {
    run.Fail("build import failed (" + DescribeStatus(imp.status) + "): " + imp.out);
    return false;
  }
  const std::string build = imp.out.substr(q1 + 1, q2 - q1 - 1);
  for (const char* set : {"GREETING=one", "GREETING=two"}) {
    RunResult r = run.Ctl({"release", "create", "shop", "--build", build, "--set", set});
    if (!r.ok()) {
      run.Fail("release create failed: " + r.out);
      return false;
    }
  }
  RunResult first = run.Ctl({"activate", "shop", "v1"});
  if (!first.ok()) {
    run.Fail("activate v1 failed: " + first.out);
    return false;
  }
  std::printf(
      "daemon pid %d, app shop: examples/hello, web scale 2, ready: notify, "
      "start-first, on 127.0.0.1:%d; v1 live after %.0f ms\n\n",
      run.daemon.pid(), run.port, first.ms);
  std::fflush(stdout);
  return true;
}

// Part 2: `ctl activate` until live, alternating v2/v1; v1 live after it.
bool MeasureActivate(Bench& run) {
  std::vector<double> act_ms;
  for (int i = 0; i < run.o.rounds && !g_interrupted.load(); ++i) {
    const std::string to = (i % 2 == 0) ? "v2" : "v1";
    RunResult r = run.Ctl({"activate", "shop", to});
    if (!r.ok()) {
      run.Fail("activate " + to + " failed (" + DescribeStatus(r.status) + "): " + r.out);
      return false;
    }
    act_ms.push_back(r.ms);
  }
  std::sort(act_ms.begin(), act_ms.end());
  if (!act_ms.empty())
    std::printf(
        "2. `relsupd ctl activate shop vN` until it exits 0 (new release "
        "live, old stopped), %zu runs alternating v2/v1\n"
        "   median %.0f ms, p95 %.0f ms, min %.0f ms, max %.0f ms   (no "
        "target)\n\n",
        act_ms.size(), Percentile(act_ms, 0.5), Percentile(act_ms, 0.95),
        act_ms.front(), act_ms.back());
  std::fflush(stdout);
  if (g_interrupted.load()) return false;
  // After an even number of rounds v1 is live; activate v2 first below,
  // and rollback goes back to v1.
  if (run.o.rounds % 2 == 1) {
    RunResult r = run.Ctl({"activate", "shop", "v1"});
    if (!r.ok()) {
      run.Fail("activate v1 failed: " + r.out);
      return false;
    }
  }
  return true;
}

// What part 3 recorded: every request and every switch, times from the
// load's start.
struct LoadRecord {
  std::vector<Sample> samples;
  std::vector<SwitchRun> runs;
  int64_t stop_us = 0;
  std::chrono::system_clock::time_point wall_start;
};

// Part 3: the paced load, with an activation and a rollback in each of
// o.cycles slots.
LoadRecord LoadWithSwitches(const Bench& run) {
  const Options& o = run.o;
  LoadRecord rec;
  Load load(run.port, o.rate, o.threads, o.send_delay_us);
  load.Start();
  const int64_t window_us = static_cast<int64_t>(o.duration_s * 1e6);
  const int64_t slot_us = o.cycles > 0 ? window_us / o.cycles : window_us;
  auto wait_until = [&](int64_t us) {
    while (load.NowUs() < us && !g_interrupted.load())
      usleep(static_cast<useconds_t>(std::min<int64_t>(us - load.NowUs(), 50'000)));
  };
  for (int c = 0; c < o.cycles && !g_interrupted.load(); ++c) {
    // Activate a quarter into the slot, roll back at three quarters (or
    // at once if the activation took longer).
    for (int half = 0; half < 2 && !g_interrupted.load(); ++half) {
      wait_until(c * slot_us + slot_us / 4 + half * slot_us / 2);
      SwitchRun s;
      s.what = half == 0 ? "activate v2" : "rollback";
      s.start_us = load.NowUs();
      RunResult r = half == 0 ? run.Ctl({"activate", "shop", "v2"}) : run.Ctl({"rollback", "shop"});
      s.end_us = load.NowUs();
      s.status = r.status;
      s.out = r.out;
      rec.runs.push_back(std::move(s));
    }
  }
  rec.stop_us = std::max(window_us, load.NowUs() + 500'000);
  load.StopAt(rec.stop_us);
  load.Join();
  rec.samples = load.Samples();
  rec.wall_start = load.wall_start();
  return rec;
}

// Part 3's figures: rate, failures, latency, the switches' exits.
void PrintLoad(const Bench& run, const LoadRecord& rec) {
  const Options& o = run.o;
  int64_t sent = static_cast<int64_t>(rec.samples.size()), failed = 0;
  int64_t v1 = 0, v2 = 0;
  std::vector<int64_t> lat, lat_sched;
  for (const Sample& s : rec.samples) {
    if (s.outcome != Outcome::kOk) {
      ++failed;
      continue;
    }
    (s.version == '1' ? v1 : v2)++;
    lat.push_back(s.end_us - s.start_us);
    lat_sched.push_back(s.end_us - s.sched_us);
  }
  std::sort(lat.begin(), lat.end());
  std::sort(lat_sched.begin(), lat_sched.end());
  const double seconds = static_cast<double>(rec.stop_us) / 1e6;
  const double rate = static_cast<double>(sent) / seconds;
  int switches_ok = 0, activations_ok = 0, rollbacks_ok = 0;
  std::vector<double> sw_ms;
  for (const SwitchRun& s : rec.runs) {
    bool good = WIFEXITED(s.status) && WEXITSTATUS(s.status) == 0;
    switches_ok += good;
    (s.what == "rollback" ? rollbacks_ok : activations_ok) += good;
    sw_ms.push_back(static_cast<double>(s.end_us - s.start_us) / 1e3);
  }
  std::sort(sw_ms.begin(), sw_ms.end());
  std::printf(
      "3. GET /version on 127.0.0.1:%d, a new connection per request, %d "
      "threads paced to %.0f req/s, %.1f s,\n"
      "   while activating v2 and rolling back %d times each (start-first)\n"
      "   switches: %zu run, %d exited 0 (%d activate, %d rollback); each "
      "took median %.0f ms, max %.0f ms\n"
      "   requests sent %lld (%.0f req/s over %.1f s; v1 served %lld, v2 "
      "served %lld)   (target >= %.0f req/s for >= %.0f s, %d + %d "
      "switches) %s\n"
      "   requests failed %lld   (target 0) %s\n"
      "   latency connect to EOF: p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
      "from the due time: p50 %.2f ms, p99 %.2f ms\n",
      run.port, o.threads, o.rate, seconds, o.cycles, rec.runs.size(), switches_ok,
      activations_ok, rollbacks_ok, Percentile(sw_ms, 0.5),
      sw_ms.empty() ? 0.0 : sw_ms.back(), static_cast<long long>(sent), rate,
      seconds, static_cast<long long>(v1), static_cast<long long>(v2),
      kTargetRate, kTargetLoadS, kTargetCycles, kTargetCycles,
      Verdict(rate >= kTargetRate && seconds >= kTargetLoadS &&
              activations_ok >= kTargetCycles &&
              rollbacks_ok >= kTargetCycles),
      static_cast<long long>(failed), Verdict(failed == 0 && sent > 0),
      Percentile(lat, 0.5) / 1e3, Percentile(lat, 0.99) / 1e3,
      lat.empty() ? 0.0 : static_cast<double>(lat.back()) / 1e3,
      Percentile(lat_sched, 0.5) / 1e3, Percentile(lat_sched, 0.99) / 1e3);
  for (const SwitchRun& s : rec.runs)
    if (!(WIFEXITED(s.status) && WEXITSTATUS(s.status) == 0))
      std::printf("   switch '%s' at +%.3f s failed (%s): %s\n",
                  s.what.c_str(), static_cast<double>(s.start_us) / 1e6,
                  DescribeStatus(s.status).c_str(), s.out.c_str());
}

// The daemon's log and the app's output (`ctl logs`), sorted by time.
std::vector<std::string> LogLines(const Bench& run) {
  RunResult app_log = run.Ctl({"logs", "shop", "-n", "100000"});
  std::vector<std::string> lines;
  const std::string daemon_log = support::ReadFileOrEmpty(run.daemon.log());
  for (const std::string* text : std::vector<const std::string*>{&app_log.out, &daemon_log}) {
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end(), [](const std::string& a, const std::string& b) {
    return LineMsOfDay(a) < LineMsOfDay(b);
  });
  return lines;
}

// Evidence for part 3's failed requests: each next to the switch in
// progress (times from the load's start; wall time to match the daemon
// log's lines), the log lines within 30 ms of the first five, the
// switches' times.
void PrintFailures(const Bench& run, const LoadRecord& rec) {
  std::vector<const Sample*> failures;
  for (const Sample& s : rec.samples)
    if (s.outcome != Outcome::kOk) failures.push_back(&s);
  if (failures.empty()) return;
  std::printf("\n   failed requests (first 40), load started at %s UTC:\n",
              WallText(rec.wall_start).c_str());
  int shown = 0;
  for (const Sample* f : failures) {
    if (++shown > 40) break;
    std::string during = "no switch running";
    for (const SwitchRun& s : rec.runs)
      if (f->end_us >= s.start_us && f->start_us <= s.end_us)
        during = s.what + " (+" + std::to_string((f->start_us - s.start_us) / 1000) +
                 " ms into it)";
    auto wall = rec.wall_start + std::chrono::microseconds(f->start_us);
    std::printf("   +%9.3f s %s  %-24s %-28s errno %d (%s) -- %s\n",
                static_cast<double>(f->start_us) / 1e6, WallText(wall).c_str(),
                OutcomeName(f->outcome), f->detail.c_str(), f->err,
                f->err ? std::strerror(f->err) : "-", during.c_str());
  }
  // Which instance stopped with how many connections open, and which
  // switch step ran.
  const std::vector<std::string> lines = LogLines(run);
  shown = 0;
  for (const Sample* f : failures) {
    if (++shown > 5) break;
    const auto wall = rec.wall_start + std::chrono::microseconds(f->start_us);
    const double at = MsOfDay(wall);
    std::printf("   log lines within 30 ms of the failure at %s:\n", WallText(wall).c_str());
    for (const std::string& line : lines) {
      double t = LineMsOfDay(line);
      if (t >= 0 && std::abs(t - at) <= 30) std::printf("     %s\n", line.c_str());
    }
  }
  std::printf("   switches (start..end from the load's start):\n");
  for (const SwitchRun& s : rec.runs)
    std::printf("     %-12s +%.3f .. +%.3f s\n", s.what.c_str(),
                static_cast<double>(s.start_us) / 1e6, static_cast<double>(s.end_us) / 1e6);
}

// Part 1b: the same switch inside the daemon, from its own records. The
// `activating` event's time is read just before its insert; the daemon
// logs "APP: current -> vN" right after the link's fsync. Both are
// wall-clock milliseconds, so each difference is the daemon's ledger
// event + link + fsync to within 1 ms.
void SwitchInDaemon(const Bench& run) {
  RunResult hist = run.Ctl({"--json", "history", "shop", "-n", "100000"});
  nlohmann::json events = nlohmann::json::parse(hist.out, nullptr, false);
  std::vector<double> switched_at;
  {
    std::istringstream in(support::ReadFileOrEmpty(run.daemon.log()));
    for (std::string line; std::getline(in, line);)
      if (line.find(" shop: current -> v") != std::string::npos)
        switched_at.push_back(LineMsOfDay(line));
  }
  std::vector<double> inside;
  size_t next_line = 0;
  if (hist.ok() && events.is_array()) {
    for (const auto& e : events) {
      if (e.value("kind", "") != "activating") continue;
      const double t = LineMsOfDay(e.value("time", ""));
      while (next_line < switched_at.size() && switched_at[next_line] < t) ++next_line;
      if (t < 0 || next_line == switched_at.size()) continue;
      inside.push_back(switched_at[next_line++] - t);
    }
  }
  std::sort(inside.begin(), inside.end());
  if (inside.empty()) {
    std::printf("1b. the switch inside the daemon: no `activating` event "
                "matched a 'current ->' log line (%s)\n\n",
                hist.ok() ? "history read" : hist.out.c_str());
    return;
  }
  const double med = Percentile(inside, 0.5);
  std::printf(
      "1b. the same switch inside the daemon (`activating` event time to "
      "its 'shop: current -> vN' log line,\n"
      "    both in ms, so +-1 ms), %zu switches of this run: median %.0f "
      "ms, p95 %.0f ms, max %.0f ms   (target median < %.0f ms) %s\n\n",
      inside.size(), med, Percentile(inside, 0.95), inside.back(),
      kTargetSwitchMs, Verdict(med < kTargetSwitchMs));
}

// Every part in turn; stops at the first that fails or is interrupted.
void RunParts(Bench& run) {
  if (!SwitchInProcess(run) || !StartDaemon(run) || !SetUpApp(run) || !MeasureActivate(run))
    return;
  LoadRecord rec = LoadWithSwitches(run);
  PrintLoad(run, rec);
  PrintFailures(run, rec);
  std::printf("\n");
  SwitchInDaemon(run);
}

// Stops the daemon (it stops the app); says where a kept dir is.
void CleanUp(Bench& run) {
  if (run.daemon.pid() > 0) {
    pid_t pid = run.daemon.pid();
    run.daemon.Stop();
    if (!(WIFEXITED(run.daemon.exit_status()) && WEXITSTATUS(run.daemon.exit_status()) == 0))
      std::fprintf(stderr, "activate: daemon pid %d ended with %s\n", pid,
                   DescribeStatus(run.daemon.exit_status()).c_str());
  }
  if (run.o.keep)
    std::printf("kept %s (daemon log: %s/daemon.log)\n", run.dir.c_str(), run.dir.c_str());
}

int Main(int argc, char** argv) {
  Bench run;
  if (!ParseArgs(argc, argv, &run.o)) return UsageError(Usage);
  InstallInterruptHandlers();
  run.tmp.keep = run.o.keep;
  run.tmp.print_kept = false;  // CleanUp says where the log is
  // The app runs as `nobody`: it must reach its slot under this dir.
  if (!run.tmp.Make("activate", "relsupd-bench-activate", 0755)) return 1;
  run.dir = run.tmp.path();
  run.socket = run.dir + "/relsupd.sock";
  double loadavg[1] = {0};
  getloadavg(loadavg, 1);
  std::printf("activate (%u cores, load average %.2f), temporary dir %s\n\n",
              std::thread::hardware_concurrency(), loadavg[0], run.dir.c_str());
  RunParts(run);
  CleanUp(run);
  return run.rc;
}

}  // namespace
}  // namespace relsupd::bench

int main(int argc, char** argv) { return relsupd::bench::Main(argc, argv); }
