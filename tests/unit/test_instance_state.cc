#include <catch2/catch.hpp>

#include <map>
#include <utility>

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
      {{S::kStopped, E::kAdopted}, {S::kStopped, A::kNone}},  // adopted stopped
      {{S::kStopped, E::kFault}, {S::kStopped, A::kInvalid}},

      {{S::kStarting, E::kStartRequested}, {S::kStarting, A::kNone}},
      {{S::kStarting, E::kStopRequested}, {S::kStopping, A::kSignalStop}},
      {{S::kStarting, E::kSpawned}, {S::kRunning, A::kStartReadyCheck}},
      {{S::kStarting, E::kSpawnFailed}, {S::kBackoff, A::kArmBackoff}},
      {{S::kStarting, E::kReady}, {S::kStarting, A::kInvalid}},
      {{S::kStarting, E::kExited}, {S::kBackoff, A::kArmBackoff}},
      {{S::kStarting, E::kTimer}, {S::kStarting, A::kInvalid}},
      {{S::kStarting, E::kAdopted}, {S::kStarting, A::kInvalid}},
      {{S::kStarting, E::kFault}, {S::kStarting, A::kInvalid}},

      {{S::kRunning, E::kStartRequested}, {S::kRunning, A::kNone}},
      {{S::kRunning, E::kStopRequested}, {S::kStopping, A::kSignalStop}},
      {{S::kRunning, E::kSpawned}, {S::kRunning, A::kInvalid}},
      {{S::kRunning, E::kSpawnFailed}, {S::kRunning, A::kInvalid}},
      {{S::kRunning, E::kReady}, {S::kReady, A::kNone}},
      {{S::kRunning, E::kExited}, {S::kBackoff, A::kArmBackoff}},
      {{S::kRunning, E::kTimer}, {S::kStoppingFault, A::kSignalStop}},
      {{S::kRunning, E::kAdopted}, {S::kRunning, A::kInvalid}},
      {{S::kRunning, E::kFault}, {S::kStoppingFault, A::kSignalStop}},  // health, watchdog, memory

      {{S::kReady, E::kStartRequested}, {S::kReady, A::kNone}},
      {{S::kReady, E::kStopRequested}, {S::kStopping, A::kSignalStop}},
      {{S::kReady, E::kSpawned}, {S::kReady, A::kInvalid}},
      {{S::kReady, E::kSpawnFailed}, {S::kReady, A::kInvalid}},
      {{S::kReady, E::kReady}, {S::kReady, A::kNone}},
      {{S::kReady, E::kExited}, {S::kBackoff, A::kArmBackoff}},
      {{S::kReady, E::kTimer}, {S::kReady, A::kInvalid}},
      {{S::kReady, E::kAdopted}, {S::kReady, A::kInvalid}},
      {{S::kReady, E::kFault}, {S::kStoppingFault, A::kSignalStop}},  // health, watchdog, memory

      {{S::kStopping, E::kStartRequested}, {S::kStopping, A::kNone}},
      {{S::kStopping, E::kStopRequested}, {S::kStopping, A::kNone}},
      {{S::kStopping, E::kSpawned}, {S::kStopping, A::kInvalid}},
      {{S::kStopping, E::kSpawnFailed}, {S::kStopping, A::kInvalid}},
      {{S::kStopping, E::kReady}, {S::kStopping, A::kInvalid}},
      {{S::kStopping, E::kExited}, {S::kStopped, A::kNone}},
      {{S::kStopping, E::kTimer}, {S::kStopping, A::kKill}},
      {{S::kStopping, E::kAdopted}, {S::kStopping, A::kInvalid}},
      {{S::kStopping, E::kFault}, {S::kStopping, A::kInvalid}},

      // Stopped for a fault (not ready in time, ...): the exit is a crash.
      {{S::kStoppingFault, E::kStartRequested}, {S::kStoppingFault, A::kNone}},
      {{S::kStoppingFault, E::kStopRequested}, {S::kStopping, A::kNone}},
      {{S::kStoppingFault, E::kSpawned}, {S::kStoppingFault, A::kInvalid}},
      {{S::kStoppingFault, E::kSpawnFailed}, {S::kStoppingFault, A::kInvalid}},
      {{S::kStoppingFault, E::kReady}, {S::kStoppingFault, A::kInvalid}},
      {{S::kStoppingFault, E::kExited}, {S::kBackoff, A::kArmBackoff}},
      {{S::kStoppingFault, E::kTimer}, {S::kStoppingFault, A::kKill}},
      {{S::kStoppingFault, E::kAdopted}, {S::kStoppingFault, A::kInvalid}},
      {{S::kStoppingFault, E::kFault}, {S::kStoppingFault, A::kInvalid}},

      {{S::kBackoff, E::kStartRequested}, {S::kStarting, A::kSpawn}},
      {{S::kBackoff, E::kStopRequested}, {S::kStopped, A::kNone}},
      {{S::kBackoff, E::kSpawned}, {S::kBackoff, A::kInvalid}},
      {{S::kBackoff, E::kSpawnFailed}, {S::kBackoff, A::kInvalid}},
      {{S::kBackoff, E::kReady}, {S::kBackoff, A::kInvalid}},
      {{S::kBackoff, E::kExited}, {S::kBackoff, A::kInvalid}},
      {{S::kBackoff, E::kTimer}, {S::kStarting, A::kSpawn}},
      {{S::kBackoff, E::kAdopted}, {S::kBackoff, A::kInvalid}},
      {{S::kBackoff, E::kFault}, {S::kBackoff, A::kInvalid}},

      {{S::kExited, E::kStartRequested}, {S::kStarting, A::kSpawn}},
      {{S::kExited, E::kStopRequested}, {S::kStopped, A::kNone}},
      {{S::kExited, E::kSpawned}, {S::kExited, A::kInvalid}},
      {{S::kExited, E::kSpawnFailed}, {S::kExited, A::kInvalid}},
      {{S::kExited, E::kReady}, {S::kExited, A::kInvalid}},
      {{S::kExited, E::kExited}, {S::kExited, A::kInvalid}},
      {{S::kExited, E::kTimer}, {S::kExited, A::kInvalid}},
      {{S::kExited, E::kAdopted}, {S::kExited, A::kInvalid}},
      {{S::kExited, E::kFault}, {S::kExited, A::kInvalid}},

      {{S::kFailed, E::kStartRequested}, {S::kStarting, A::kSpawn}},
      {{S::kFailed, E::kStopRequested}, {S::kStopped, A::kNone}},
      {{S::kFailed, E::kSpawned}, {S::kFailed, A::kInvalid}},
      {{S::kFailed, E::kSpawnFailed}, {S::kFailed, A::kInvalid}},
      {{S::kFailed, E::kReady}, {S::kFailed, A::kInvalid}},
      {{S::kFailed, E::kExited}, {S::kFailed, A::kInvalid}},
      {{S::kFailed, E::kTimer}, {S::kFailed, A::kInvalid}},
      {{S::kFailed, E::kAdopted}, {S::kFailed, A::kInvalid}},
      {{S::kFailed, E::kFault}, {S::kFailed, A::kInvalid}},
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
  for (S alive : {S::kStarting, S::kRunning, S::kReady, S::kStoppingFault}) {
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
      {S::kStoppingFault, InstanceTimer::kStopTimeout},
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
  CHECK(InstanceStateName(S::kStoppingFault) == InstanceStateName(S::kStopping));
}

TEST_CASE("a fresh instance takes every adopted state, and resumes the ones with a timer") {
  // docs/reexec.md §3.2: the state handed over is an input of the table.
  const std::map<S, Transition> expected = {
      {S::kStopped, {S::kStopped, A::kNone}},
      // Never written; a child that exists has been spawned.
      {S::kStarting, {S::kRunning, A::kResume}},
      {S::kRunning, {S::kRunning, A::kResume}},
      {S::kReady, {S::kReady, A::kNone}},
      {S::kStopping, {S::kStopping, A::kResume}},
      {S::kStoppingFault, {S::kStoppingFault, A::kResume}},
      {S::kBackoff, {S::kBackoff, A::kResume}},
      {S::kExited, {S::kExited, A::kNone}},
      {S::kFailed, {S::kFailed, A::kNone}},
  };
  REQUIRE(expected.size() == kInstanceStateCount);
  for (const auto& [adopted, want] : expected) {
    for (RestartPolicy r : {RestartPolicy::kAlways, RestartPolicy::kOnFailure,
                            RestartPolicy::kNever}) {
      TransitionInput in{S::kStopped, E::kAdopted, r};
      in.adopted = adopted;
      Transition got = NextTransition(in);
      INFO("adopted " << InstanceStateName(adopted) << " -> " << InstanceStateName(got.next)
           << " / " << InstanceActionName(got.action));
      CHECK(got.next == want.next);
      CHECK(got.action == want.action);
      // A resumed state is one with a timer to re-arm, and only those.
      CHECK((got.action == A::kResume) == (TimerOf(got.next) != InstanceTimer::kNone));
    }
  }
}

TEST_CASE("only a fresh instance can be adopted, whatever the adopted state") {
  for (int s = 1; s < kInstanceStateCount; ++s) {
    for (int a = 0; a < kInstanceStateCount; ++a) {
      TransitionInput in{static_cast<S>(s), E::kAdopted};
      in.adopted = static_cast<S>(a);
      Transition got = NextTransition(in);
      INFO(InstanceStateName(in.state) << " x adopted " << InstanceStateName(in.adopted));
      CHECK(got.next == in.state);
      CHECK(got.action == A::kInvalid);
    }
  }
}

TEST_CASE("the adopted event and the resume action have names") {
  CHECK(InstanceEventName(E::kAdopted) == "adopted");
  CHECK(InstanceActionName(A::kResume) == "resume");
}

}  // namespace
}  // namespace relsupd
