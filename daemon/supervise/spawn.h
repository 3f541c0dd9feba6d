#pragma once
// ChildProcess: one app process, started by the exec step and watched
// through libuv.
//
// CloneExec (exec_step.h) starts the program with stdin on /dev/null,
// stdout and stderr on pipes to the daemon and the handed-over fds on 3,
// 4, ..., after the exec step (setsid, cwd, cgroup, rlimits, groups and
// uid, PR_SET_PDEATHSIG, close_range, signal reset). libuv reads the pipes
// (uv_pipe_t) and watches the child's pidfd (uv_poll_t): readable once the
// process exited, when waitid(P_PIDFD, WNOWAIT) reads its status; the
// zombie is reaped once the owner has acted on the exit. No SIGCHLD handler
// and no waitpid over every child on each exit.
//
// The owner gets the output in chunks and the exit once. A ChildProcess may
// be destroyed before its process exits: the process group is then sent
// SIGKILL and the pidfd watch lives on until it has reaped the process.
// Loop thread only.
//
// The daemon never calls uv_spawn: it would start libuv's SIGCHLD handler,
// and the handler's waitpid would race the pidfd watches (and, across a
// daemon-reexec, children libuv does not know). SIGCHLD stays SIG_DFL, so
// a child that exits while nobody watches (the exec window) stays a zombie
// with a readable pidfd until a watch reads its status (docs/reexec.md §3).

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/supervise/exec_step.h"
#include "daemon/supervise/snapshot.h"

namespace relsupd {

struct SpawnRequest : ExecRequest {
  bool capture_output = true;  // false: stdout/stderr to /dev/null
  // Set: the child's stdin, stdout and stderr are these fds of the caller
  // (dup'd in the child; the caller keeps its own), and capture_output is
  // ignored. REQUIRES: all three >= 0.
  std::optional<ExecStdio> stdio;
};

enum class OutputStream { kOut = 1, kErr = 2 };

class ChildProcess {
 public:
  struct Callbacks {
    // A chunk of the child's stdout or stderr.
    std::function<void(OutputStream, std::string_view)> on_output;
    // The stream reached its end (the child and its descendants closed it).
    std::function<void(OutputStream)> on_eof;
    // The process ended: exit status, or the signal that ended it (then
    // exit_status is 0). Called once; the object may be destroyed in it.
    std::function<void(int64_t exit_status, int term_signal)> on_exit;
  };

  static Result<std::unique_ptr<ChildProcess>> Spawn(uv_loop_t* loop,
                                                     const SpawnRequest& req,
                                                     Callbacks callbacks);
  // Takes over a child spawned by another ChildProcess (a daemon-reexec,
  // from the fds its Export() gave): watches `fds.pidfd`, reads the pipes
  // that are still open (-1: none), paused as it was. An exit that happened
  // meanwhile is read on the first poll. Takes ownership of every fd in
  // `fds`, on failure too; when the pidfd cannot be watched the child is
  // killed and reaped, as Spawn does.
  // REQUIRES: the process is this process's child and not yet reaped.
  static Result<std::unique_ptr<ChildProcess>> Adopt(uv_loop_t* loop,
                                                     const ChildFds& fds,
                                                     Callbacks callbacks);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool exited() const { return exited_; }
  // Sends `signum` to the child's process group (its pid: it ran setsid).
  Status SignalGroup(int signum) const;
  // Sends `signum` to the child's main process only (it is not reaped
  // before on_exit ran, so the pid is still its own).
  Status Signal(int signum) const;
  // Stops and resumes reading the child's output (a flooding child then
  // blocks on its own writes).
  void PauseOutput();
  void ResumeOutput();
  bool output_paused() const { return paused_; }
  // Reads nothing more of either stream in this loop turn: while `*turn`
  // (the caller's count of loop turns) and the loop's time (uv_now) keep
  // the values they have now. The pipes stay watched, and reading goes on
  // in the next turn. Unlike PauseOutput and a timer, this costs no system
  // call (the alloc callback hands libuv no buffer, and the
  // level-triggered epoll reports the pipe again). The loop's time is the
  // fallback for a count nobody moves on (a skip then lasts a millisecond).
  // REQUIRES: `turn` outlives this object.
  void SkipTurn(const uint64_t* turn, uint64_t now_ms);
  bool skipping_turn(uint64_t now_ms) const {
    return skip_turn_ != nullptr && *skip_turn_ == skip_value_ && now_ms == skip_ms_;
  }
  // Output is read kReadBytes at a time. A stream that fills much of that
  // (its writer is ahead of the daemon) may be given a pipe of kGrownPipeBytes,
  // read kGrownPipeBytes at a time: fewer reads and wake-ups per MB (a
  // fifth less of the daemon's CPU in bench/supervise's log phase). It
  // costs kernel memory only while the daemon is behind, at most that
  // much per grown pipe; the caller decides when it is worth it
  // (OutputCapture: an instance allowed to log fast). Tried once per
  // stream; a refusal (the user's pipe quota, pipe-max-size) is ignored.
  static constexpr size_t kReadBytes = 64 * 1024;
  static constexpr size_t kGrownPipeBytes = 1024 * 1024;
  void GrowOutputPipe(OutputStream stream);
  // The capacity of the stream's pipe (F_GETPIPE_SZ); 0 without one.
  size_t OutputPipeBytes(OutputStream stream) const;
  // Reads what is already in the pipes, without waiting (after the exit,
  // so that the last lines of a crashing child are not lost).
  void DrainOutput();

  // The pid and the fds a daemon-reexec carries (a pipe at its end: -1).
  // The fds stay this object's. REQUIRES: !exited().
  ChildFds Export() const;
  // Lets go of the process without killing it or closing its pidfd and
  // open pipes (their numbers stay what Export() said), as an execve would;
  // the object then watches and reads nothing. For in-process handover
  // tests. REQUIRES: no other thread opens fds meanwhile (a pipe's fd is
  // closed by libuv and put back at its number).
  void Abandon();

  // Processes whose owner went away, killed and waiting to be reaped.
  static std::vector<ReapEntry> ExportOrphans();
  // Stops watching every orphan, leaving its pidfd open (see Abandon).
  static void AbandonOrphans();
  // Reaps `entry`'s process once it exited, silently (the new image's
  // share of an old image's orphans). Takes ownership of its pidfd.
  static Status AdoptOrphan(uv_loop_t* loop, const ReapEntry& entry);

 private:
  struct Pipe;
  struct ExitWatch;
  ChildProcess() = default;
  // Spawn's steps after the clone: the pidfd watch (on failure the child is
  // killed and reaped), then reading the pipes' ends in `*out_read` and
  // `*err_read` (taken over when libuv accepts them).
  Status WatchExit(uv_loop_t* loop, const ClonedChild& cloned);
  // A pipe whose fd is not valid is left closed (its stream at its end).
  void ReadOutput(uv_loop_t* loop, Fd* out_read, Fd* err_read);
  void OnExit(int64_t exit_status, int term_signal);
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  void StartReading(Pipe* pipe);

  ExitWatch* watch_ = nullptr;  // freed by its close callback
  std::unique_ptr<Pipe> out_;
  std::unique_ptr<Pipe> err_;
  Callbacks callbacks_;
  pid_t pid_ = 0;
  bool exited_ = false;
  bool paused_ = false;
  const uint64_t* skip_turn_ = nullptr;
  uint64_t skip_value_ = 0;
  uint64_t skip_ms_ = 0;
};

}  // namespace relsupd
