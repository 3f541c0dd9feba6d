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
  // Reads what is already in the pipes, without waiting (after the exit,
  // so that the last lines of a crashing child are not lost).
  void DrainOutput();

 private:
  struct Pipe;
  struct ExitWatch;
  ChildProcess() = default;
  // Spawn's steps after the clone: the pidfd watch (on failure the child is
  // killed and reaped), then reading the pipes' ends in `*out_read` and
  // `*err_read` (taken over when libuv accepts them).
  Status WatchExit(uv_loop_t* loop, const ClonedChild& cloned);
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
};

}  // namespace relsupd
