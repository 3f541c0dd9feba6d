#pragma once
// The stand-in (docs/reexec.md §6.6): during a re-exec's window, a forked
// copy of the old image answers `ps` from memory, as of the moment it was
// forked, so the control socket never goes silent while the new image
// reads the record and adopts the apps. A connection whose next line is
// anything else (or no whole line yet) is handed back unread, its bytes
// still in the socket, over a socketpair whose other end crosses the exec:
// the new image serves it as if it had accepted it. No client sees an
// error it would not have seen without the stand-in.
//
// The stand-in is expendable: it holds no app's fd (it closes every fd but
// the control listener, its stop pipe and its end of the socketpair),
// never signals or reaps an app, never touches the ledger, and dies with
// the daemon (PR_SET_PDEATHSIG). Whoever holds the stop pipe's write end
// ends it by closing that end: the new image once it accepts on the
// listener itself, the old one when the exec failed. A peer that stalls it
// stalls only the stand-in's answer to that peer; the stand-in exits at
// the latest kStandinLifetimeMs after its start.
//
// Its pid, pidfd, stop fd and socketpair end cross the exec in
// RELSUPD_REEXEC_STANDIN.

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/peer.h"

namespace relsupd {

inline constexpr char kStandinEnv[] = "RELSUPD_REEXEC_STANDIN";

struct Standin {
  pid_t pid = 0;
  Fd pidfd;
  Fd stop;      // the stop pipe's write end
  Fd handback;  // the socketpair's end connections come back on
};

// Forks the stand-in. In the child, `register_handlers` fills a fresh
// Dispatcher (under `policy`) that answers the `ps` lines; the child
// serves `listen_fd` and the idle `connections` it takes over (a first
// line longer than `max_request_bytes` goes back, as the daemon would
// refuse it) until the
// stop pipe closes, hands back what it did not answer, then exits. Loop thread; no thread-pool job may run (the drain
// ended them).
Result<Standin> StartStandin(int listen_fd, const std::vector<int>& connections,
                             const AccessPolicy& policy, size_t max_request_bytes,
                             const std::function<void(Dispatcher*)>& register_handlers);

// "pid,pidfd,stopfd,handbackfd" for kStandinEnv, and back. Parse gives
// nullopt for anything but four numbers (the fds stay the caller's to
// check).
std::string StandinEnvValue(const Standin& s);
std::optional<Standin> ParseStandinEnv(const char* value);

// The fds of a parsed kStandinEnv are a pidfd of that pid, a pipe and a
// socket, none of them in `taken` (the record's fds).
Status CheckStandin(const Standin& s, const std::vector<int>& taken);

// Stops a stand-in: closes its stop pipe, gives every connection handed
// back to `take` (from the loop), and reaps it once it exits, killing it
// if it is still there after kStandinStopGraceMs. Destroyed before it is
// done (the daemon stops), it kills and reaps the stand-in at once.
class StandinStopper {
 public:
  StandinStopper(uv_loop_t* loop, Standin standin, std::function<void(Fd)> take);
  ~StandinStopper();
  StandinStopper(const StandinStopper&) = delete;
  StandinStopper& operator=(const StandinStopper&) = delete;

  // Reaped, and every handed-back connection taken.
  bool done() const { return reaped_ && drained_; }

 private:
  static void OnExited(uv_poll_t* poll, int status, int events);
  static void OnHandback(uv_poll_t* poll, int status, int events);
  static void OnKill(uv_timer_t* timer);
  void Reap(int options);

  Standin standin_;
  std::function<void(Fd)> take_;
  UvHandle<uv_poll_t> exited_, handback_;
  UvHandle<uv_timer_t> kill_;
  bool reaped_ = false, drained_ = false;
};

// The stand-in exits by itself this long after its start, and is killed
// this long after its stop.
inline constexpr int64_t kStandinLifetimeMs = 10000;
inline constexpr uint64_t kStandinStopGraceMs = 2000;

}  // namespace relsupd
