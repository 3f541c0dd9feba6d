#pragma once
// What `relsupd ctl run` does on the client's side of a one-off process:
// the pseudo-terminal it may hand over, the terminal's raw mode, and the
// loop that relays bytes and signals until the daemon's reply comes.
//
// The process runs under the daemon; the CLI only holds the pty's master
// (when there is one) and the write end of the run's control pipe, whose
// read end went to the daemon: a byte written there is a signal number the
// daemon forwards to the process group, and the pipe's end (this process
// exiting, however it exits) ends the process. Main thread of `relsupd
// ctl`; signal handlers only write to a self-pipe.

#include <termios.h>

#include <memory>
#include <optional>
#include <string>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"

namespace relsupd::cli {

// A new pseudo-terminal: both ends close-on-exec, the slave not this
// process's controlling terminal.
struct Pty {
  Fd master;
  Fd slave;
};
Result<Pty> OpenPty();

// Puts a terminal in raw mode and restores it when destroyed (so on every
// return path; the signals that would end `ctl run` are caught, see
// SignalPipe).
class RawMode {
 public:
  RawMode() = default;
  ~RawMode() { Restore(); }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;
  Status Enter(int fd);
  void Restore();

 private:
  int fd_ = -1;
  termios saved_{};
};

// SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGWINCH are written to a
// self-pipe (read end `fd()`) instead of acting; SIGPIPE is ignored. The
// previous dispositions come back when destroyed. One at a time.
class SignalPipe {
 public:
  static Result<std::unique_ptr<SignalPipe>> Install();
  ~SignalPipe();
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;
  int fd() const { return read_.get(); }

 private:
  SignalPipe() = default;
  Fd read_;
  Fd write_;
};

// The fds of one relay. `master` is -1 without a pty (the process then
// has this process's own stdin, stdout and stderr).
struct RelayFds {
  int socket = -1;   // the control connection, the request already sent
  int master = -1;   // the pty's master, non-blocking
  int control = -1;  // the control pipe's write end, non-blocking
  int signals = -1;  // SignalPipe::fd()
};

// Runs until the daemon's reply line arrives on `socket` and returns it.
// Meanwhile: stdin to the master and the master to stdout (with a pty),
// SIGWINCH sets the master's window size from stdin's terminal, and the
// other caught signals go down the control pipe. After the reply, what
// the process wrote last is read from the master until it reports that no
// slave is open (at most a few seconds).
Result<std::string> Relay(const RelayFds& fds);

// Sets O_NONBLOCK on `fd`.
Status SetNonBlockingFd(int fd);

// The terminal's window size copied onto the master (when `from` is one).
void CopyWindowSize(int from, int master);

}  // namespace relsupd::cli
