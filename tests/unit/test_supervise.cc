#include <catch2/catch.hpp>

#include <map>
#include <utility>

#include "daemon/supervise/backoff.h"
#include "daemon/supervise/instance.h"
#include "daemon/supervise/instance_state.h"

namespace relsupd {
namespace {

using S = InstanceState;
using E = InstanceEvent;
using A = InstanceAction;

using X = ExitKind;
using L = CrashLimit;

Transition Step(S s, E e, RestartPolicy r = RestartPolicy::kAlways, X exit = X::kFailure,
                L limit = L::kNotHit) {
  return NextTransition({s, e, r, exit, limit});
}

TEST_CASE("every state x event pair has its expected transition") {
  // restart=always, a failing exit, crash limit not reached.
  const std::map<std::pair<S, E>, Transition> expected = {
      {{S::kStopped, E::kStartRequested}, {S::kStarting, A::kSpawn}},
      {{S::kStopped, E::kStopRequested}, {S::kStopped, A::kNone}},
      {{S::kStopped, E::kSpawned}, {S::kStopped, A::kInvalid}},
      {{S::kStopped, E::kSpawnFailed}, {S::kStopped, A::kInvalid}},
      {{S::kStopped, E::kReady}, {S::kStopped, A::kInvalid}},
      {{S::kStopped, E::kExited}, {S::kStopped, A::kInvalid}},
      {{S::kStopped, E::kTimer}, {S::kStopped, A::kInvalid}},

      {{S::kStarting, E::kStartRequested}, {S::kStarting, A::kNone}},
      {{S::kStarting, E::kStopRequested}, {S::kStopping, A::kSignalStop}},
      {{S::kStarting, E::kSpawned}, {S::kRunning, A::kStartReadyCheck}},
      {{S::kStarting, E::kSpawnFailed}, {S::kBackoff, A::kArmBackoff}},
      {{S::kStarting, E::kReady}, {S::kStarting, A::kInvalid}},
      {{S::kStarting, E::kExited}, {S::kBackoff, A::kArmBackoff}},
      {{S::kStarting, E::kTimer}, {S::kStarting, A::kInvalid}},

      {{S::kRunning, E::kStartRequested}, {S::kRunning, A::kNone}},
      {{S::kRunning, E::kStopRequested}, {S::kStopping, A::kSignalStop}},
      {{S::kRunning, E::kSpawned}, {S::kRunning, A::kInvalid}},
      {{S::kRunning, E::kSpawnFailed}, {S::kRunning, A::kInvalid}},
      {{S::kRunning, E::kReady}, {S::kReady, A::kNone}},
      {{S::kRunning, E::kExited}, {S::kBackoff, A::kArmBackoff}},
      {{S::kRunning, E::kTimer}, {S::kStoppingUnready, A::kSignalStop}},

      {{S::kReady, E::kStartRequested}, {S::kReady, A::kNone}},
      {{S::kReady, E::kStopRequested}, {S::kStopping, A::kSignalStop}},
      {{S::kReady, E::kSpawned}, {S::kReady, A::kInvalid}},
      {{S::kReady, E::kSpawnFailed}, {S::kReady, A::kInvalid}},
      {{S::kReady, E::kReady}, {S::kReady, A::kNone}},
      {{S::kReady, E::kExited}, {S::kBackoff, A::kArmBackoff}},
      {{S::kReady, E::kTimer}, {S::kReady, A::kInvalid}},

      {{S::kStopping, E::kStartRequested}, {S::kStopping, A::kNone}},
      {{S::kStopping, E::kStopRequested}, {S::kStopping, A::kNone}},
      {{S::kStopping, E::kSpawned}, {S::kStopping, A::kInvalid}},
      {{S::kStopping, E::kSpawnFailed}, {S::kStopping, A::kInvalid}},
      {{S::kStopping, E::kReady}, {S::kStopping, A::kInvalid}},
      {{S::kStopping, E::kExited}, {S::kStopped, A::kNone}},
      {{S::kStopping, E::kTimer}, {S::kStopping, A::kKill}},

      // Stopped because it was not ready in time: the exit is a crash.
      {{S::kStoppingUnready, E::kStartRequested}, {S::kStoppingUnready, A::kNone}},
      {{S::kStoppingUnready, E::kStopRequested}, {S::kStopping, A::kNone}},
      {{S::kStoppingUnready, E::kSpawned}, {S::kStoppingUnready, A::kInvalid}},
      {{S::kStoppingUnready, E::kSpawnFailed}, {S::kStoppingUnready, A::kInvalid}},
      {{S::kStoppingUnready, E::kReady}, {S::kStoppingUnready, A::kInvalid}},
      {{S::kStoppingUnready, E::kExited}, {S::kBackoff, A::kArmBackoff}},
      {{S::kStoppingUnready, E::kTimer}, {S::kStoppingUnready, A::kKill}},

      {{S::kBackoff, E::kStartRequested}, {S::kStarting, A::kSpawn}},
      {{S::kBackoff, E::kStopRequested}, {S::kStopped, A::kNone}},
      {{S::kBackoff, E::kSpawned}, {S::kBackoff, A::kInvalid}},
      {{S::kBackoff, E::kSpawnFailed}, {S::kBackoff, A::kInvalid}},
      {{S::kBackoff, E::kReady}, {S::kBackoff, A::kInvalid}},
      {{S::kBackoff, E::kExited}, {S::kBackoff, A::kInvalid}},
      {{S::kBackoff, E::kTimer}, {S::kStarting, A::kSpawn}},

      {{S::kExited, E::kStartRequested}, {S::kStarting, A::kSpawn}},
      {{S::kExited, E::kStopRequested}, {S::kStopped, A::kNone}},
      {{S::kExited, E::kSpawned}, {S::kExited, A::kInvalid}},
      {{S::kExited, E::kSpawnFailed}, {S::kExited, A::kInvalid}},
      {{S::kExited, E::kReady}, {S::kExited, A::kInvalid}},
      {{S::kExited, E::kExited}, {S::kExited, A::kInvalid}},
      {{S::kExited, E::kTimer}, {S::kExited, A::kInvalid}},

      {{S::kFailed, E::kStartRequested}, {S::kStarting, A::kSpawn}},
      {{S::kFailed, E::kStopRequested}, {S::kStopped, A::kNone}},
      {{S::kFailed, E::kSpawned}, {S::kFailed, A::kInvalid}},
      {{S::kFailed, E::kSpawnFailed}, {S::kFailed, A::kInvalid}},
      {{S::kFailed, E::kReady}, {S::kFailed, A::kInvalid}},
      {{S::kFailed, E::kExited}, {S::kFailed, A::kInvalid}},
      {{S::kFailed, E::kTimer}, {S::kFailed, A::kInvalid}},
  };
  REQUIRE(expected.size() == kInstanceStateCount * kInstanceEventCount);
  for (const auto& [key, want] : expected) {
    Transition got = Step(key.first, key.second);
    INFO(InstanceStateName(key.first) << " x " << InstanceEventName(key.second) << " -> "
         << InstanceStateName(got.next) << " / " << InstanceActionName(got.action));
    CHECK(got.next == want.next);
    CHECK(got.action == want.action);
  }
}

TEST_CASE("restart policy decides what an exit leads to") {
  // A stop for the ready timeout ends in an exit like any other.
  for (S alive : {S::kStarting, S::kRunning, S::kReady, S::kStoppingUnready}) {
    INFO(InstanceStateName(alive));
    CHECK(Step(alive, E::kExited, RestartPolicy::kAlways, X::kSuccess).next == S::kBackoff);
    CHECK(Step(alive, E::kExited, RestartPolicy::kOnFailure, X::kSuccess).next == S::kExited);
    CHECK(Step(alive, E::kExited, RestartPolicy::kOnFailure, X::kFailure).next == S::kBackoff);
    CHECK(Step(alive, E::kExited, RestartPolicy::kNever, X::kFailure).next == S::kExited);
    auto failed = Step(alive, E::kExited, RestartPolicy::kAlways, X::kFailure, L::kHit);
    CHECK(failed.next == S::kFailed);
    CHECK(failed.action == A::kMarkFailed);
  }
  // A failed spawn counts as a failure even under on-failure.
  CHECK(Step(S::kStarting, E::kSpawnFailed, RestartPolicy::kOnFailure, X::kSuccess).next ==
        S::kBackoff);
  CHECK(Step(S::kStarting, E::kSpawnFailed, RestartPolicy::kAlways, X::kFailure, L::kHit).next ==
        S::kFailed);
  // A stop by hand never restarts, whatever the policy or the crash count.
  CHECK(Step(S::kStopping, E::kExited, RestartPolicy::kAlways, X::kFailure).next == S::kStopped);
  CHECK(Step(S::kStopping, E::kExited, RestartPolicy::kAlways, X::kFailure, L::kHit).next ==
        S::kStopped);
}

TEST_CASE("each state has its timer, and the stopping states share the stop timeout") {
  const std::map<S, InstanceTimer> expected = {
      {S::kStopped, InstanceTimer::kNone},
      {S::kStarting, InstanceTimer::kNone},
      {S::kRunning, InstanceTimer::kReadyTimeout},
      {S::kReady, InstanceTimer::kNone},
      {S::kStopping, InstanceTimer::kStopTimeout},
      {S::kStoppingUnready, InstanceTimer::kStopTimeout},
      {S::kBackoff, InstanceTimer::kBackoff},
      {S::kExited, InstanceTimer::kNone},
      {S::kFailed, InstanceTimer::kNone},
  };
  REQUIRE(expected.size() == kInstanceStateCount);
  for (const auto& [state, want] : expected) {
    INFO(InstanceStateName(state) << " -> " << InstanceTimerName(TimerOf(state)));
    CHECK(TimerOf(state) == want);
  }
}

TEST_CASE("a stop for the ready timeout shows as stopping") {
  CHECK(InstanceStateName(S::kStoppingUnready) == InstanceStateName(S::kStopping));
}

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

}  // namespace
}  // namespace relsupd
