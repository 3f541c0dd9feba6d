#include "tests/support/daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <iostream>
#include <thread>

#include "cli/client.h"
#include "tests/support/failure.h"
#include "tests/support/fs.h"
#include "tests/support/wait.h"

namespace relsupd::support {
namespace {

// Between polls of a socket that does not exist yet. Never used to wait
// for correctness, only to pace a poll.
constexpr auto kPollPace = std::chrono::milliseconds(5);

}  // namespace

std::string LogTail(const std::string& log) {
  constexpr size_t kMaxShown = 16 * 1024;
  if (log.size() <= kMaxShown) return log;
  return "[... " + std::to_string(log.size() - kMaxShown) +
         " bytes left out ...]\n" + log.substr(log.size() - kMaxShown);
}

DaemonProcess::DaemonProcess(const TempDir& dir, DaemonOptions options) {
  state_dir_ =
      options.state_dir.empty() ? dir.Path("state") : options.state_dir;
  socket_ = options.socket.empty() ? dir.Path("relsupd.sock") : options.socket;
  log_path_ = options.log_path;
  for (int n = 1; log_path_.empty(); ++n) {
    std::string candidate = dir.Path("daemon-" + std::to_string(n) + ".log");
    if (::access(candidate.c_str(), F_OK) != 0) log_path_ = candidate;
  }
  std::vector<std::string> argv = options.wrap;
  argv.insert(
      argv.end(),
      {options.binary.empty() ? RelsupdBin() : options.binary, "daemon"});
  if (options.pass_paths) {
    argv.insert(argv.end(), {"--state-dir", state_dir_, "--socket", socket_});
  }
  if (!options.config.empty())
    argv.insert(argv.end(), {"--config", options.config});

  int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                   0644);
  if (log < 0) FailErrno("open " + log_path_);
  int in = OpenDevNull();
  SpawnOptions spawn;
  spawn.max_open_files = options.max_open_files;
  spawn.die_with_parent = options.die_with_parent;
  pid_ = Spawn(argv, ChildEnv(options.env), in, log, log, spawn);
  ::close(in);
  ::close(log);
  if (!options.wait_ready) return;
  try {
    WaitReady();
  } catch (...) {
    // No destructor runs for a half-built object: end the child here.
    if (running()) {
      ::kill(pid_, SIGKILL);
      WaitPid(pid_, 10'000, &last_);
      pid_ = -1;
    }
    throw;
  }
}

DaemonProcess::~DaemonProcess() {
  const bool failing = std::uncaught_exceptions() > 0;
  try {
    std::string problem;
    if (running()) {
      const pid_t pid = pid_;
      ExitStatus st = Terminate();
      if (!st.Exited(0))
        problem = "daemon pid " + std::to_string(pid) +
                  " did not stop cleanly on SIGTERM: " + st.ToString();
    }
    if (problem.empty()) problem = SanitizerReport(Log(), "the daemon");
    if (!problem.empty()) {
      if (failing) {
        std::cerr << "e2e: " << problem << '\n';
      } else {
        // A daemon that crashed, hung or tripped a sanitizer fails the
        // test even when every check of the test itself passed.
        ReportFailure(problem + "\n" + LogTail(Log()));
      }
    }
    if (failing) {
      std::cerr << "e2e: log of the daemon (" << log_path_ << "):\n"
                << LogTail(Log()) << "--- end of daemon log ---\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "e2e: cannot stop the daemon: " << e.what() << '\n';
  }
}

std::string DaemonProcess::Log() const { return ReadFileOrEmpty(log_path_); }

void DaemonProcess::WaitReady(int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  std::string last_error = "no attempt";
  for (;;) {
    ExitStatus st;
    if (running() && WaitPid(pid_, 0, &st)) {
      pid_ = -1;
      last_ = st;
      Fail("daemon exited before it was ready (" + st.ToString() + "); log:\n" +
           Log());
    }
    if (!running()) Fail("daemon is not running");
    auto client = Client::Connect(socket_);
    if (client.ok()) {
      auto info = client->Call("daemon.info");
      if (info.ok() && info->value("pid", int64_t{-1}) == pid_) return;
      last_error = info.ok() ? "answered by pid " + info->dump()
                             : info.status().message();
    } else {
      last_error = client.status().message();
    }
    if (NowMs() >= deadline)
      Fail("daemon pid " + std::to_string(pid_) + " not ready within " +
           std::to_string(timeout_ms) + " ms (" + last_error + "); log:\n" +
           Log());
    std::this_thread::sleep_for(kPollPace);
  }
}

void DaemonProcess::Signal(int signum) {
  if (!running()) Fail("Signal: daemon is not running");
  if (::kill(pid_, signum) != 0) FailErrno("kill");
}

void DaemonProcess::Kill9() {
  Signal(SIGKILL);
  if (!WaitPid(pid_, 10'000, &last_)) Fail("daemon survived SIGKILL for 10 s");
  pid_ = -1;
}

ExitStatus DaemonProcess::Terminate(int timeout_ms) {
  if (!running()) return last_;
  Signal(SIGTERM);
  ExitStatus st;
  if (!WaitPid(pid_, timeout_ms, &st)) {
    ::kill(pid_, SIGKILL);
    WaitPid(pid_, 10'000, &st);
    st.timed_out = true;
  }
  pid_ = -1;
  last_ = st;
  return st;
}

ExitStatus DaemonProcess::Wait(int timeout_ms) {
  if (!running()) return last_;
  ExitStatus st;
  if (!WaitPid(pid_, timeout_ms, &st)) {
    st.timed_out = true;
    return st;  // still running; the destructor ends it
  }
  pid_ = -1;
  last_ = st;
  return st;
}

}  // namespace relsupd::support
