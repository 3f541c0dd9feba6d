#pragma once
// End-to-end test harness: the real `relsupd` binary on a temporary state
// dir, driven by the real CLI.
//
// TempDir owns a fresh directory under /tmp; DaemonProcess owns one running
// `relsupd daemon` and always ends it (by pid) when it goes away; RunCtl runs
// `relsupd ctl` to completion, optionally as another user; RawConn speaks raw
// lines on the control socket; NotifySocket plays systemd's notify socket.
// Every wait is a poll with a deadline, never a bare sleep. Every fd is born
// close-on-exec, so no child inherits a test's connection.
//
// Failures to set up (a daemon that does not start, a socket that cannot be
// made) throw std::runtime_error with a message that says why; Catch2 reports
// it as the test's failure. Test thread only, except where noted.

#include <sys/types.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relsupd::e2e {

using Json = nlohmann::json;

// The built relsupd binary (RELSUPD_BIN).
std::string RelsupdBin();

// Milliseconds on the monotonic clock.
int64_t NowMs();

// A fresh directory /tmp/relsupd-e2e-XXXXXX, mode 0755 so another user
// (nobody) can reach a socket inside it; removed with all its contents by
// the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name.
  std::string Path(std::string_view name) const;
  // Writes `content` to path()/name (replacing it); returns the full path.
  std::string WriteFile(std::string_view name, std::string_view content) const;

 private:
  std::string path_;
};

// How a child process ended.
struct ExitStatus {
  int code = -1;           // exit code, or -1 when it did not exit normally
  int signal = 0;          // the signal that ended it, or 0
  bool timed_out = false;  // it did not end in time and was killed
  bool Exited(int c) const { return !timed_out && signal == 0 && code == c; }
  std::string ToString() const;
};

struct Credentials {
  uid_t uid;
  gid_t gid;
};
// nobody's uid and primary group, from getpwnam("nobody"); nullopt when
// there is no such user.
std::optional<Credentials> NobodyCredentials();
// The name of group `gid`, or nullopt.
std::optional<std::string> GroupNameOf(gid_t gid);

struct RunOptions {
  // Run as this uid/gid (supplementary groups set to just gid). REQUIRES root.
  std::optional<Credentials> as;
  // Extra NAME=VALUE environment entries (replacing inherited ones).
  std::vector<std::string> env;
  int timeout_ms = 10'000;
  // stdout is a pseudo-terminal (output post-processing off, so the bytes
  // read back are the bytes written), as when a person runs the command.
  bool stdout_pty = false;
};

struct ProcResult {
  ExitStatus status;
  std::string out;
  std::string err;
  int exit_code() const {
    return status.Exited(status.code) ? status.code : -1;
  }
  // Everything, for a failure message.
  std::string Describe() const;
};

// Runs `argv` (argv[0] a path) to completion with stdin from /dev/null,
// collecting stdout and stderr. A sanitizer report on stderr fails the
// running test (Catch2 FAIL_CHECK), whatever the caller expects.
// A child still running after timeout_ms is killed (status.timed_out).
ProcResult RunProcess(const std::vector<std::string>& argv,
                      const RunOptions& options = {});

// Runs `RELSUPD_BIN ctl --socket SOCKET ARGS...`.
ProcResult RunCtl(const std::string& socket,
                  const std::vector<std::string>& args,
                  const RunOptions& options = {});

// RunCtl that must exit 0: returns stdout, throws with everything otherwise.
std::string CtlOk(const std::string& socket,
                  const std::vector<std::string>& args,
                  const RunOptions& options = {});
// `ctl --json ARGS...` that must exit 0: returns stdout parsed.
Json CtlJson(const std::string& socket, const std::vector<std::string>& args,
             const RunOptions& options = {});

// Calls `method` on the daemon in-process (relsupd::Client). Throws on a
// connection failure; returns the whole response object.
Json CallRaw(const std::string& socket, std::string_view method,
             Json params = Json::object());
// Like CallRaw, but returns "result" and throws on an error response.
Json Call(const std::string& socket, std::string_view method,
          Json params = Json::object());

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
};

// "" when `output` holds no report of ASan, LSan, UBSan or TSan; else the
// report, introduced with `who`.
std::string SanitizerReport(const std::string& output, const std::string& who);

// One `relsupd daemon` child. The destructor always stops it: SIGTERM,
// waitpid with a 10 s deadline, then SIGKILL. It fails the running test
// (Catch2 FAIL_CHECK) when the daemon does not stop cleanly (exit 0) or its
// log holds a sanitizer report; when it runs during a test failure, the
// tail of the daemon's log is copied to stderr instead.
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

// A raw connection to the control socket, for protocol tests. Usable from
// one thread at a time (any thread).
class RawConn {
 public:
  explicit RawConn(const std::string& socket);  // throws when it cannot connect
  ~RawConn();
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  int fd() const { return fd_; }
  // Writes all of `data`; false when the peer is gone (EPIPE, ECONNRESET).
  bool Send(std::string_view data);
  // Sends `data` with `fds` attached (SCM_RIGHTS, one sendmsg); false when
  // the peer is gone.
  bool SendWithFds(std::string_view data, const std::vector<int>& fds);
  // shutdown(SHUT_WR): the daemon sees EOF.
  void CloseWrite();
  // The next line (without '\n'), or nullopt on EOF, error or timeout.
  std::optional<std::string> ReadLine(int timeout_ms = 5'000);
  // Sends `line` + '\n' and reads the next line, parsed; throws on failure.
  Json Exchange(std::string_view line, int timeout_ms = 5'000);

  enum class End { kEof, kReset, kTimeout, kData };
  // After any buffered lines were read: waits for the peer to close.
  End WaitEnd(int timeout_ms = 5'000);
  // What is buffered but not yet returned as a line.
  const std::string& buffered() const { return buf_; }

 private:
  int fd_ = -1;
  std::string buf_;
};

// A stand-in for systemd's notify socket: a Unix datagram socket bound at
// `path`. Pass "NOTIFY_SOCKET=" + path() to the daemon.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }
  // The next datagram, or nullopt after timeout_ms.
  std::optional<std::string> Receive(int timeout_ms);
  // Receives until a datagram holds the line `line` (e.g. "READY=1");
  // returns that datagram, or nullopt at the deadline. Every datagram
  // received is appended to `seen` when given.
  std::optional<std::string> WaitFor(std::string_view line, int timeout_ms,
                                     std::vector<std::string>* seen = nullptr);

 private:
  std::string path_;
  int fd_ = -1;
};

// The number of open fds of process `pid` (from /proc/PID/fd).
int OpenFdCount(pid_t pid);

// True when the newline-separated `message` holds `line` exactly.
bool HasLine(std::string_view message, std::string_view line);
// The value of "KEY=value" in `message`, or nullopt.
std::optional<std::string> Field(std::string_view message,
                                 std::string_view key);

}  // namespace relsupd::e2e
