#include "daemon/supervise/instance_state.h"

namespace relsupd {
namespace {

using S = InstanceState;
using E = InstanceEvent;
using A = InstanceAction;

// What an unexpected exit (or failed spawn) leads to.
Transition AfterExit(const TransitionInput& in) {
  const bool restart =
      in.restart == RestartPolicy::kAlways ||
      (in.restart == RestartPolicy::kOnFailure &&
       in.exit == ExitKind::kFailure);
  if (!restart) return {S::kExited, A::kNone};
  if (in.crash_limit == CrashLimit::kHit) return {S::kFailed, A::kMarkFailed};
  return {S::kBackoff, A::kArmBackoff};
}

// Where an adopted instance resumes (docs/reexec.md §3.2). The settled
// states and kReady need nothing re-armed; the others had a timer (or a
// ready check) running in the old image.
Transition AfterAdopt(InstanceState adopted) {
  switch (adopted) {
    case S::kStopped:
    case S::kExited:
    case S::kFailed:
    case S::kReady: return {adopted, A::kNone};
    case S::kRunning:
    case S::kStopping:
    case S::kStoppingFault:
    case S::kBackoff: return {adopted, A::kResume};
    // Never written (a spawn is synchronous); a child that exists has been
    // spawned, so it resumes as running.
    case S::kStarting: return {S::kRunning, A::kResume};
  }
  return {S::kStopped, A::kInvalid};
}

}  // namespace

Transition NextTransition(const TransitionInput& in) {
  if (in.event == E::kAdopted) {
    if (in.state != S::kStopped) return {in.state, A::kInvalid};
    return AfterAdopt(in.adopted);
  }
  switch (in.state) {
    case S::kStopped:
    case S::kExited:
    case S::kFailed:
      switch (in.event) {
        case E::kStartRequested: return {S::kStarting, A::kSpawn};
        case E::kStopRequested: return {S::kStopped, A::kNone};
        default: return {in.state, A::kInvalid};
      }
    case S::kStarting:
      switch (in.event) {
        case E::kSpawned: return {S::kRunning, A::kStartReadyCheck};
        case E::kSpawnFailed: {
          // A spawn that fails never takes the supervisor down: it is a
          // crash like any other and is retried after the backoff.
          TransitionInput as_crash = in;
          as_crash.exit = ExitKind::kFailure;
          return AfterExit(as_crash);
        }
        case E::kExited: return AfterExit(in);
        case E::kStopRequested: return {S::kStopping, A::kSignalStop};
        case E::kStartRequested: return {S::kStarting, A::kNone};
        default: return {in.state, A::kInvalid};
      }
    case S::kRunning:
      switch (in.event) {
        case E::kReady: return {S::kReady, A::kNone};
        case E::kExited: return AfterExit(in);
        case E::kStopRequested: return {S::kStopping, A::kSignalStop};
        case E::kStartRequested: return {S::kRunning, A::kNone};
        // The ready check timed out, or a fault: stop it; it restarts as a
        // crash.
        case E::kTimer:
        case E::kFault: return {S::kStoppingFault, A::kSignalStop};
        default: return {in.state, A::kInvalid};
      }
    case S::kReady:
      switch (in.event) {
        case E::kExited: return AfterExit(in);
        case E::kStopRequested: return {S::kStopping, A::kSignalStop};
        case E::kStartRequested:
        case E::kReady: return {S::kReady, A::kNone};
        case E::kFault: return {S::kStoppingFault, A::kSignalStop};
        default: return {in.state, A::kInvalid};
      }
    case S::kStopping:
      switch (in.event) {
        case E::kExited: return {S::kStopped, A::kNone};
        case E::kTimer: return {S::kStopping, A::kKill};
        case E::kStopRequested: return {S::kStopping, A::kNone};
        // A start while stopping waits for the exit; the caller starts again.
        case E::kStartRequested: return {S::kStopping, A::kNone};
        default: return {in.state, A::kInvalid};
      }
    case S::kStoppingFault:
      switch (in.event) {
        case E::kExited: return AfterExit(in);
        case E::kTimer: return {S::kStoppingFault, A::kKill};
        // A stop by request wins: the exit then ends the instance. The stop
        // timeout runs on (both states have it).
        case E::kStopRequested: return {S::kStopping, A::kNone};
        case E::kStartRequested: return {S::kStoppingFault, A::kNone};
        default: return {in.state, A::kInvalid};
      }
    case S::kBackoff:
      switch (in.event) {
        case E::kTimer: return {S::kStarting, A::kSpawn};
        case E::kStopRequested: return {S::kStopped, A::kNone};
        case E::kStartRequested: return {S::kStarting, A::kSpawn};
        default: return {in.state, A::kInvalid};
      }
  }
  return {in.state, A::kInvalid};
}

InstanceTimer TimerOf(InstanceState s) {
  switch (s) {
    case S::kRunning: return InstanceTimer::kReadyTimeout;
    case S::kStopping:
    case S::kStoppingFault: return InstanceTimer::kStopTimeout;
    case S::kBackoff: return InstanceTimer::kBackoff;
    case S::kStopped:
    case S::kStarting:
    case S::kReady:
    case S::kExited:
    case S::kFailed: return InstanceTimer::kNone;
  }
  return InstanceTimer::kNone;
}

std::string_view InstanceStateName(InstanceState s) {
  switch (s) {
    case S::kStopped: return "stopped";
    case S::kStarting: return "starting";
    case S::kRunning: return "running";
    case S::kReady: return "ready";
    case S::kStopping: return "stopping";
    // The reason for the stop is the supervisor's; status shows "stopping".
    case S::kStoppingFault: return "stopping";
    case S::kBackoff: return "backoff";
    case S::kExited: return "exited";
    case S::kFailed: return "failed";
  }
  return "?";
}

std::string_view InstanceEventName(InstanceEvent e) {
  switch (e) {
    case E::kStartRequested: return "start-requested";
    case E::kStopRequested: return "stop-requested";
    case E::kSpawned: return "spawned";
    case E::kSpawnFailed: return "spawn-failed";
    case E::kReady: return "ready";
    case E::kExited: return "exited";
    case E::kTimer: return "timer";
    case E::kAdopted: return "adopted";
    case E::kFault: return "fault";
  }
  return "?";
}

std::string_view InstanceActionName(InstanceAction a) {
  switch (a) {
    case A::kNone: return "none";
    case A::kSpawn: return "spawn";
    case A::kStartReadyCheck: return "start-ready-check";
    case A::kSignalStop: return "signal-stop";
    case A::kKill: return "kill";
    case A::kArmBackoff: return "arm-backoff";
    case A::kMarkFailed: return "mark-failed";
    case A::kResume: return "resume";
    case A::kInvalid: return "invalid";
  }
  return "?";
}

std::string_view InstanceTimerName(InstanceTimer t) {
  switch (t) {
    case InstanceTimer::kNone: return "none";
    case InstanceTimer::kReadyTimeout: return "ready-timeout";
    case InstanceTimer::kStopTimeout: return "stop-timeout";
    case InstanceTimer::kBackoff: return "backoff";
  }
  return "?";
}

}  // namespace relsupd
