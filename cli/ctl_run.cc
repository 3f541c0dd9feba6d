// `relsupd ctl run APP [--release vN] [--tty|--no-tty] -- CMD [ARG...]`:
// a one-off process of a release, run by the daemon with this process's
// stdin, stdout and stderr (passed over the socket), or with a new
// pseudo-terminal whose master this process relays (pty_relay.h).
//
// The request (`run`, see docs/architecture.md "One-off processes") carries
// the fds with its first byte: stdin, stdout, stderr and the control
// pipe's read end, or the pty's slave and the control pipe's read end. The
// reply comes when the process has ended. Main thread of `relsupd ctl`.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <optional>
#include <vector>

#include "cli/ctl.h"
#include "cli/pty_relay.h"
#include "cli/terminal.h"
#include "daemon/protocol/methods.h"

namespace relsupd::cli {
namespace {

// Exit codes of `run` that are not the process's own: relsupd could not
// start it (as `docker run`), and the exec step's 126/127 for a program
// that cannot run or is not found come from the daemon's reply.
constexpr int kExitNotStarted = 125;

struct RunArgs {
  std::string app;
  std::string release;
  bool tty = false;
  bool no_tty = false;
  std::vector<std::string> command;
};

Result<rpc::Json> ParseReply(const std::string& line) {
  rpc::Json response = rpc::Json::parse(line, nullptr, false);
  if (!response.is_object())
    return Status(StatusCode::kUnavailable, "malformed response from relsupd");
  if (auto e = response.find("error"); e != response.end())
    return rpc::StatusFromError(*e);
  return response["result"];
}

// The process's exit as this command's exit code: its status, or 128 + N
// for signal N, as a shell reports it.
int ExitCodeOf(const rpc::Json& result) {
  int signal = result.value("signal", 0);
  if (signal > 0) return 128 + signal;
  return result.value("exit_status", kExitNotStarted);
}

// Everything from the connection to the reply; the process's exit code,
// or the error that kept it from starting.
Result<int> RunOneOff(const CtlContext& ctx, const RunArgs& a) {
  const bool tty = a.tty || (!a.no_tty && ::isatty(STDIN_FILENO) == 1);
  ASSIGN_OR_RETURN(Client client, Client::Connect(ctx.socket));
  int control[2];
  if (::pipe2(control, O_CLOEXEC) != 0)
    return Status::FromErrno("cannot create a pipe", errno);
  Fd control_read(control[0]), control_write(control[1]);
  RETURN_IF_ERROR(SetNonBlockingFd(control_write.get()));
  ASSIGN_OR_RETURN(auto signals, SignalPipe::Install());

  std::optional<Pty> pty;
  RawMode raw;
  std::vector<int> fds = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO};
  if (tty) {
    ASSIGN_OR_RETURN(pty, OpenPty());
    termios mode{};
    if (::tcgetattr(STDIN_FILENO, &mode) == 0)
      ::tcsetattr(pty->slave.get(), TCSANOW, &mode);
    CopyWindowSize(STDIN_FILENO, pty->master.get());
    RETURN_IF_ERROR(SetNonBlockingFd(pty->master.get()));
    fds = {pty->slave.get()};
  }
  fds.push_back(control_read.get());

  rpc::Json params = {{"app", a.app}, {"argv", a.command}, {"tty", tty}};
  if (!a.release.empty()) params["release"] = a.release;
  RETURN_IF_ERROR(SendWithFds(
      client.fd(), rpc::Frame(rpc::MakeRequest(1, rpc::method::kRun, params)),
      fds));
  // The daemon holds its own copies now: the pipe's end is this process's
  // exit, and the slave's last close tells the relay the process is gone.
  control_read.Reset();
  if (pty) {
    pty->slave.Reset();
    if (::isatty(STDIN_FILENO) == 1) RETURN_IF_ERROR(raw.Enter(STDIN_FILENO));
  }
  RelayFds relay;
  relay.socket = client.fd();
  relay.master = pty ? pty->master.get() : -1;
  relay.control = control_write.get();
  relay.signals = signals->fd();
  ASSIGN_OR_RETURN(std::string line, Relay(relay));
  raw.Restore();
  ASSIGN_OR_RETURN(rpc::Json result, ParseReply(line));
  if (auto e = result.find("error"); e != result.end() && e->is_string())
    std::cerr << ForStderr("relsupd: " + e->get<std::string>()) << '\n';
  return ExitCodeOf(result);
}

}  // namespace

void AddRunVerb(CLI::App& ctl, CtlContext* ctx) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* run = AddAppCommand(
      ctl, "run",
      "Run a one-off command of an app's release (12-factor admin process): "
      "in its slot, with its environment, as the app's user",
      &args->app);
  run->add_option("--release", args->release,
                  "Run in this release (e.g. v3) instead of the active one");
  auto* tty =
      run->add_flag("--tty", args->tty,
                    "Give the command a terminal even when stdin is not one");
  run->add_flag("--no-tty", args->no_tty,
                "Pass stdin, stdout and stderr as they are even on a terminal")
      ->excludes(tty);
  run->add_option("CMD", args->command,
                  "The command and its arguments, after `--`")
      ->required();
  run->footer(
      "The command's stdin, stdout and stderr are this command's own, or a "
      "new pseudo-terminal when stdin is a terminal (or with --tty). Ctrl-C, "
      "SIGTERM and window-size changes reach it; if this command goes away, "
      "the process is killed. Exit code: the command's own, 128+N when "
      "signal N ended it, 126/127 when it cannot run or is not found, 125 "
      "when relsupd could not start it (message on stderr). Needs the "
      "change right; recorded in `history` (run-started, ran). --json has "
      "no effect: stdout is the command's.");
  run->callback([ctx, args] {
    auto code = RunOneOff(*ctx, *args);
    if (!code.ok()) {
      std::cerr << "relsupd: " << code.status().message() << '\n';
      ctx->exit_code = kExitNotStarted;
      return;
    }
    ctx->exit_code = *code;
  });
}

}  // namespace relsupd::cli
