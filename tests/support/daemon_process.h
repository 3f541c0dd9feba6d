#pragma once
// DaemonProcess: one `relsupd daemon` child on a temporary state dir, for
// tests and benches. It owns the child and always ends it (by its pid,
// never by a name) when it goes away. Every wait is a poll with a
// deadline. Set-up failures throw std::runtime_error (failure.h); a daemon
// that does not stop cleanly, or a sanitizer report in its log, is
// reported with ReportFailure. Test thread only.

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/support/cli.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace relsupd::support {

struct DaemonOptions {
  std::string config;  // passed as --config when not empty
  // --state-dir and --socket; defaults dir/state and dir/relsupd.sock. Set
  // `pass_paths` false to omit both flags (the config file decides).
  std::string state_dir;
  std::string socket;
  bool pass_paths = true;
  std::vector<std::string> env;  // extra NAME=VALUE
  // RLIMIT_NOFILE (soft and hard) for the daemon; 0 inherits the test's.
  unsigned max_open_files = 0;
  // Wait until daemon.info answers on the socket before returning.
  bool wait_ready = true;
  // A command that execs the rest of the argv in place (same pid), put in
  // front of the daemon's: e.g. {"/usr/bin/setpriv", "--bounding-set=...",
  // "--"} to run it with fewer capabilities.
  std::vector<std::string> wrap;
  // The relsupd binary; empty: RelsupdBin().
  std::string binary;
  // Where the daemon's stdout and stderr go (appended); empty: a new
  // dir/daemon-N.log.
  std::string log_path;
  // The daemon gets SIGTERM when we die and a process group of its own
  // (SpawnOptions::die_with_parent), for benches run by hand.
  bool die_with_parent = false;
};

// One `relsupd daemon` child. The destructor always stops it: SIGTERM,
// waitpid with a 10 s deadline, then SIGKILL. It reports a failure
// (ReportFailure) when the daemon does not stop cleanly (exit 0) or its log
// holds a sanitizer report; when it runs during a failure (an exception in
// flight), the tail of the daemon's log is copied to stderr instead.
class DaemonProcess {
 public:
  // Starts the daemon; throws (with its log) if it exits or is not ready
  // within 10 s.
  explicit DaemonProcess(const TempDir& dir, DaemonOptions options = {});
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  const std::string& socket() const { return socket_; }
  const std::string& state_dir() const { return state_dir_; }
  const std::string& log_path() const { return log_path_; }
  // The daemon's stderr and stdout so far.
  std::string Log() const;

  // Polls daemon.info until it answers; throws on timeout or exit.
  void WaitReady(int timeout_ms = 10'000);
  // Sends `signum` to the daemon's pid. REQUIRES: running().
  void Signal(int signum);
  // SIGKILL and reap.
  void Kill9();
  // SIGTERM and wait up to timeout_ms (then SIGKILL, timed_out set).
  ExitStatus Terminate(int timeout_ms = 10'000);
  // Waits for the daemon to exit by itself.
  ExitStatus Wait(int timeout_ms);

 private:
  std::string state_dir_;
  std::string socket_;
  std::string log_path_;
  pid_t pid_ = -1;
  ExitStatus last_;
};

// The tail of a log, at most 16 KiB, for a failure message: a daemon that
// floods its log must not flood ours.
std::string LogTail(const std::string& log);

}  // namespace relsupd::support
