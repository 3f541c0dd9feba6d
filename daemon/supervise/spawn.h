#pragma once
// ChildProcess: one app process started through libuv and relsupd-exec.
//
// uv_spawn starts `relsupd-exec OPTIONS -- ARGV` with the final environment,
// cwd, stdin on /dev/null, stdout and stderr on pipes to the daemon and the
// handed-over fds on 3, 4, ...; relsupd-exec then does what uv_spawn cannot
// (setsid, cgroup, rlimits, groups and uid, PR_SET_PDEATHSIG, close_range,
// signal reset) and execs the program.
//
// The owner gets the output in chunks and the exit once. A ChildProcess may
// be destroyed before its process exits: the process group is then sent
// SIGKILL and the uv_process_t lives on until libuv reaps it (a process
// handle is never closed before its exit callback ran). Loop thread only.

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace relsupd {

struct SpawnRequest {
  std::string exec_step;          // path of relsupd-exec
  std::vector<std::string> argv;  // the program and its arguments
  std::string cwd;
  std::vector<std::string> env;   // "KEY=VALUE", the whole environment
  std::optional<uid_t> uid;       // unset: keep the daemon's
  std::optional<gid_t> gid;
  std::vector<gid_t> groups;      // supplementary groups (with uid)
  std::vector<std::string> rlimits;  // "nofile=1024:4096"
  std::vector<int> pass_fds;      // become 3, 4, ... in the child
  std::string cgroup_dir;         // joined before exec when set
  bool pdeathsig = true;          // die with the daemon
  bool capture_output = true;     // false: stdout/stderr to /dev/null
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
  ChildProcess() = default;
  static void OnExit(uv_process_t* p, int64_t exit_status, int term_signal);
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  void StartReading(Pipe* pipe);

  uv_process_t* process_ = nullptr;  // freed by its close callback
  std::unique_ptr<Pipe> out_;
  std::unique_ptr<Pipe> err_;
  Callbacks callbacks_;
  pid_t pid_ = 0;
  bool exited_ = false;
  bool paused_ = false;
};

// Builds the relsupd-exec command line for `req` (exposed for tests).
std::vector<std::string> ExecStepArgv(const SpawnRequest& req);

}  // namespace relsupd
