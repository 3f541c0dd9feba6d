#include <catch2/catch.hpp>

#include <unistd.h>

#include <map>
#include <utility>

#include "daemon/supervise/backoff.h"
#include "daemon/supervise/cgroup.h"
#include "daemon/supervise/instance.h"
#include "daemon/supervise/usage.h"

namespace relsupd {
namespace {

struct FakeClock {
  int64_t now = 1'000'000;
};

TEST_CASE("an exit says whether it crashed, was stopped, or was killed at the stop timeout") {
  // By itself: a crash or an exit, whatever the signal (nobody sent it).
  CHECK(ExitInfo{0, 3, 0}.Describe() == "exit 3");
  CHECK(ExitInfo{0, 0, 9}.Describe() == "signal KILL");
  CHECK(ExitInfo{0, 0, 9}.Cause() == "exited");
  ExitInfo stopped{0, 0, 15};
  stopped.stop = StopCause::kRequested;
  stopped.stop_signal = 15;
  stopped.stop_timeout_ms = 10'000;
  CHECK(stopped.Describe() == "stopped (SIGTERM)");
  CHECK(stopped.Cause() == "stopped");
  ExitInfo clean = stopped;  // exited 0 after the stop signal
  clean.signal = 0;
  CHECK(clean.Describe() == "stopped (SIGTERM)");
  ExitInfo odd = stopped;  // ended otherwise while stopping
  odd.signal = 0;
  odd.status = 3;
  CHECK(odd.Describe() == "stopped (SIGTERM): exit 3");
  ExitInfo killed = stopped;
  killed.signal = 9;
  killed.killed = true;
  CHECK(killed.Describe() == "killed (stop timeout 10s)");
  CHECK(killed.Cause() == "stop-timeout");
  ExitInfo unready = stopped;
  unready.stop = StopCause::kNotReady;
  unready.ready_timeout_ms = 60'000;
  CHECK(unready.Describe() == "not ready within 1m: stopped (SIGTERM)");
  CHECK(unready.Cause() == "not-ready");
}

TEST_CASE("backoff restarts at once, then doubles to the cap") {
  BackoffPolicy p;
  p.jitter = 0;
  p.max_crashes = 1000;
  Backoff b(p, [] { return 0.0; });
  FakeClock c;
  std::vector<int64_t> delays;
  for (int i = 0; i < 12; ++i) {
    b.Started(c.now);
    c.now += 50;  // crashes quickly every time
    delays.push_back(b.Exited(c.now));
    c.now += delays.back();
  }
  CHECK(delays == std::vector<int64_t>{0, 100, 200, 400, 800, 1600, 3200, 6400, 12800,
                                       25600, 30000, 30000});
  CHECK(b.restarts() == 12);
}

TEST_CASE("backoff resets after the instance stays up") {
  BackoffPolicy p;
  p.jitter = 0;
  Backoff b(p, [] { return 0.0; });
  FakeClock c;
  b.Started(c.now);
  CHECK(b.Exited(c.now += 10) == 0);
  b.Started(c.now);
  CHECK(b.Exited(c.now += 10) == 100);
  b.Started(c.now += 100);
  CHECK(b.Exited(c.now += 10) == 200);
  b.Started(c.now += 200);
  c.now += p.reset_after_ms;  // a healthy run
  CHECK(b.Exited(c.now) == 0);
  b.Started(c.now);
  CHECK(b.Exited(c.now += 10) == 100);
}

TEST_CASE("backoff jitter stays within its fraction and the cap") {
  BackoffPolicy p;
  p.jitter = 0.5;
  p.cap_ms = 1000;
  p.max_crashes = 1000;
  Backoff b(p, [] { return 0.999; });
  FakeClock c;
  b.Started(c.now);
  CHECK(b.Exited(c.now) == 0);
  b.Started(c.now);
  int64_t d = b.Exited(c.now);
  CHECK(d > 100);
  CHECK(d < 150);
  for (int i = 0; i < 10; ++i) {
    b.Started(c.now);
    CHECK(b.Exited(c.now) <= 1000);
  }
}

TEST_CASE("too many crashes in the window hit the limit, old ones age out") {
  BackoffPolicy p;
  p.max_crashes = 3;
  p.window_ms = 10'000;
  Backoff b(p, [] { return 0.0; });
  FakeClock c;
  for (int i = 0; i < 3; ++i) {
    b.Started(c.now);
    b.Exited(c.now += 100);
    CHECK_FALSE(b.CrashLimitHit());
  }
  b.Started(c.now);
  b.Exited(c.now += 100);
  CHECK(b.CrashLimitHit());
  b.Reset();
  CHECK_FALSE(b.CrashLimitHit());
  for (int i = 0; i < 3; ++i) {
    b.Started(c.now);
    b.Exited(c.now += 100);
  }
  c.now += 20'000;  // the window passes
  b.Started(c.now);
  b.Exited(c.now);
  CHECK_FALSE(b.CrashLimitHit());
}

TEST_CASE("backoff restored from a snapshot gives the same delays and crash-limit answers") {
  BackoffPolicy p;
  p.max_crashes = 4;
  p.window_ms = 10'000;
  auto random = [] { return 0.5; };
  Backoff a(p, random);
  FakeClock c;
  for (int i = 0; i < 3; ++i) {
    a.Started(c.now);
    c.now += 500;
    a.Exited(c.now);
  }
  a.Started(c.now);  // running again: started_ms carries too
  Backoff b(p, random);
  b.Restore(a.Snapshot());
  CHECK(b.restarts() == 3);
  const BackoffSnapshot sa = a.Snapshot(), sb = b.Snapshot();
  CHECK(sb.started_ms == sa.started_ms);
  CHECK(sb.next_delay_ms == sa.next_delay_ms);
  CHECK(sb.exits == sa.exits);
  // From here both take the same exits and answer alike, up to the limit
  // and as old exits age out of the window.
  for (int i = 0; i < 6; ++i) {
    c.now += i == 4 ? 20'000 : 300;
    INFO("exit " << i);
    CHECK(a.Exited(c.now) == b.Exited(c.now));
    CHECK(a.CrashLimitHit() == b.CrashLimitHit());
    CHECK(a.restarts() == b.restarts());
    a.Started(c.now);
    b.Started(c.now);
  }
  // A run long enough resets both.
  c.now += p.reset_after_ms;
  CHECK(a.Exited(c.now) == 0);
  CHECK(b.Exited(c.now) == 0);
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE("a /proc/PID/stat line is read whatever its comm holds") {
  // Fields after comm: state ppid pgrp session tty tpgid flags minflt
  // cminflt majflt cmajflt utime stime cutime cstime prio nice threads
  // itreal starttime vsize rss.
  const std::string tail = " S 10 20 20 0 -1 4194304 100 0 0 0 250 50 7 3 20 0 1 0 999 1000000 "
                           "1234 18446744073709551615\n";
  auto st = ParseProcStat("4242 (py (x) ) y)" + tail);
  REQUIRE(st.has_value());
  CHECK(st->pid == 4242);
  CHECK(st->ppid == 10);
  CHECK(st->session == 20);
  CHECK(st->cpu_ticks == 250 + 50 + 7 + 3);
  CHECK(st->rss_pages == 1234);
  CHECK_FALSE(ParseProcStat("").has_value());
  CHECK_FALSE(ParseProcStat("4242 (x) S 10 20").has_value());
  CHECK_FALSE(ParseProcStat("abc (x)" + tail).has_value());
}

TEST_CASE("a process tree's usage sums its session and every descendant, and nothing else") {
  auto p = [](pid_t pid, pid_t ppid, pid_t sid, uint64_t ticks, uint64_t pages) {
    return ProcStat{.pid = pid, .ppid = ppid, .session = sid, .cpu_ticks = ticks,
                    .rss_pages = pages};
  };
  const std::vector<ProcStat> procs = {
      p(1, 0, 1, 0, 0),
      p(100, 1, 100, 10, 1),   // instance A's main process
      p(101, 100, 100, 20, 2), // its worker, same session
      p(102, 101, 102, 30, 4), // a grandchild that called setsid: still A's
      p(200, 1, 200, 40, 8),   // instance B
      p(300, 1, 300, 50, 16),  // not an instance
      p(301, 300, 300, 60, 32),
  };
  const auto u = TreeUsage(procs, {100, 200, 999});
  const double tick = 1.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  REQUIRE(u.size() == 3);
  CHECK(u.at(100).processes == 3);
  CHECK(u.at(100).memory_bytes == 7 * page);
  CHECK(u.at(100).cpu_seconds == Approx(60 * tick));
  CHECK(u.at(200).processes == 1);
  CHECK(u.at(200).memory_bytes == 8 * page);
  CHECK(u.at(999).processes == 0);  // gone
}

TEST_CASE("this process's own tree is found in the real /proc") {
  const auto u = TreeUsage(ScanProcesses(), {::getpid()});
  REQUIRE(u.at(::getpid()).processes >= 1);
  CHECK(u.at(::getpid()).memory_bytes > 0);
}

TEST_CASE("limits become the cgroup files of the controllers there are, and only those") {
  const ProcessLimits all{.memory_bytes = 64 << 20, .pids = 100, .nofile = 4096, .cpu = 1.5};
  using W = std::vector<std::pair<std::string, std::string>>;
  CHECK(CgroupLimitWrites(all, kLimitControllers) ==
        W{{"memory.max", "67108864"}, {"memory.oom.group", "1"}, {"pids.max", "100"},
          {"cpu.max", "150000 100000"}});
  CHECK(CgroupLimitWrites(all, kCgroupPids) == W{{"pids.max", "100"}});
  CHECK(CgroupLimitWrites(all, 0).empty());
  CHECK(CgroupLimitWrites({}, kLimitControllers).empty());
  CHECK(CgroupLimitWrites({.cpu = 0.001}, kCgroupCpu) == W{{"cpu.max", "1000 100000"}});
}

}  // namespace
}  // namespace relsupd
