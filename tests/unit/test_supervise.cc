#include <catch2/catch.hpp>

#include <map>
#include <utility>

#include "daemon/supervise/backoff.h"
#include "daemon/supervise/instance.h"

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
