#pragma once
// The life of one process instance (web.1, worker.3, ...) as a table of
// state x event -> next state + action, in the manner of s6-supervise.
//
// An Instance (instance.h) only waits for events and dispatches them through
// NextTransition(); everything it does (spawn, signal, arm a timer) is the
// returned action, and nothing else writes its state. Pure functions; any
// thread. Instance drives this table from libuv callbacks.

#include <string_view>

#include "daemon/config/process_file.h"

namespace relsupd {

enum class InstanceState {
  kStopped,   // not running and not meant to run (initial, or stopped by hand)
  kStarting,  // spawn requested; the process has not been seen running yet
  kRunning,   // alive, waiting for its ready check
  kReady,     // alive and ready
  kStopping,  // stop signal sent, waiting for it to exit (SIGKILL on timeout)
  // Stopped for a fault (not ready in time, a failed health check, the
  // watchdog, the memory limit): the stop signal sent as in kStopping (the
  // watchdog's is SIGABRT), but its exit is a crash (restarted under the
  // backoff). Shown as "stopping".
  kStoppingFault,
  kBackoff,   // exited; waiting for the restart timer
  kExited,    // exited and not restarting (policy says so)
  kFailed,    // crashed too often in the window; only a start by hand revives it
};
inline constexpr int kInstanceStateCount = 9;

enum class InstanceEvent {
  kStartRequested,  // scale up, activation, `ctl start`
  kStopRequested,   // scale down, deactivation, `ctl stop`, daemon shutdown
  kSpawned,         // the child exec'd
  kSpawnFailed,     // fork/exec failed
  kReady,           // the ready check passed (or there is none)
  kExited,          // the child ended (status in TransitionInput)
  kTimer,           // the state's timer fired (backoff, stop timeout)
  // A daemon-reexec handed the instance over in the state `adopted`
  // (TransitionInput); only a fresh instance (kStopped) takes it.
  kAdopted,
  // A fault while it runs: the health check failed `failures` times, the
  // watchdog ran out, the memory limit was passed.
  kFault,
};
inline constexpr int kInstanceEventCount = 9;

enum class InstanceAction {
  kNone,
  kSpawn,           // start the process
  kStartReadyCheck, // begin the ready check and its timeout
  kSignalStop,      // send stop_signal to the group, arm the stop timeout
  kKill,            // SIGKILL the group (cgroup.kill where available)
  kArmBackoff,      // arm the restart timer with the backoff delay
  kMarkFailed,      // record the unit as failed (event, log)
  kResume,          // re-arm an adopted state's timer (and ready check)
  kInvalid,         // the event makes no sense in this state; log and ignore
};

// How a process ended (kExited), for the restart policy.
enum class ExitKind {
  kFailure,  // a non-zero status or a signal (a failed spawn too)
  kSuccess,  // status 0 and no signal
};

// Whether an exit or a failed spawn was one crash too many in the window
// (or the instance's type has failed already).
enum class CrashLimit { kNotHit, kHit };

struct TransitionInput {
  InstanceState state;
  InstanceEvent event;
  RestartPolicy restart = RestartPolicy::kAlways;
  ExitKind exit = ExitKind::kFailure;               // kExited only
  CrashLimit crash_limit = CrashLimit::kNotHit;     // kExited, kSpawnFailed
  InstanceState adopted = InstanceState::kStopped;  // kAdopted only
};

struct Transition {
  InstanceState next;
  InstanceAction action;
};

Transition NextTransition(const TransitionInput& in);

// The one timer an instance has serves its state: the ready timeout while
// running, the stop timeout while stopping, the restart delay in backoff.
// A transition to a state with another timer cancels the armed one.
enum class InstanceTimer { kNone, kReadyTimeout, kStopTimeout, kBackoff };
InstanceTimer TimerOf(InstanceState s);

std::string_view InstanceStateName(InstanceState s);
std::string_view InstanceEventName(InstanceEvent e);
std::string_view InstanceActionName(InstanceAction a);
std::string_view InstanceTimerName(InstanceTimer t);

}  // namespace relsupd
