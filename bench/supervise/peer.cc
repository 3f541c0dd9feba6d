// What the compared supervisors share (see peer.h): finding a peer's
// programs and version, and the fan-out's trigger command, timed from its
// spawn until it exited.
//
// Called from the benchmark's one thread; a Peer owns its trigger process
// (by pid) until FinishTrigger reaped it.

#include "bench/supervise/peer.h"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>

#include "bench/supervise/util.h"

namespace relsupd::bench::supervise {

bool Peer::FindPrograms(
    const std::vector<std::pair<std::string*, const char*>>& programs,
    const char* missing, std::string* why) {
  bool all = true;
  for (const auto& [path, name] : programs) {
    *path = FindOnPath(name);
    all = all && !path->empty();
  }
  if (!all) *why = missing;
  return all;
}

std::string Peer::VersionOf(const std::vector<std::string>& args,
                            const std::vector<std::string>& env) {
  RunResult r = RunIn(args, dir_, 120, env);
  return r.ok() ? Trim(LastLines(Trim(r.out), 1)) : "?";
}

bool Peer::StartTrigger(const std::vector<std::string>& args,
                        const std::string& log,
                        const std::vector<std::string>& env, double timeout_s,
                        std::string* error) {
  trigger_t0_ = MonoNs();
  trigger_timeout_s_ = timeout_s;
  trigger_ = Spawn(args, log, env, error);
  return trigger_ > 0;
}

double Peer::FinishTrigger() {
  if (trigger_ <= 0) return -1;
  int status = 0;
  if (trigger_timeout_s_ <= 0) {
    while (waitpid(trigger_, &status, 0) < 0 && errno == EINTR) {
    }
  } else {
    const int64_t deadline =
        MonoNs() + static_cast<int64_t>(trigger_timeout_s_ * 1e9);
    for (;;) {
      pid_t r = waitpid(trigger_, &status, WNOHANG);
      if (r == trigger_ || (r < 0 && errno != EINTR)) break;
      if (MonoNs() > deadline || g_interrupted.load()) {
        kill(trigger_, SIGKILL);
        waitpid(trigger_, &status, 0);
        break;
      }
      SleepMs(5);
    }
  }
  const double ms = static_cast<double>(MonoNs() - trigger_t0_) / 1e6;
  trigger_ = -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ms : -1;
}

}  // namespace relsupd::bench::supervise
