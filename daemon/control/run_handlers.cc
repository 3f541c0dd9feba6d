// The `run` method: a one-off process (daemon/run/one_offs.h) with the
// client's fds as its stdio.
//
// params: {app, release?: "vN", argv: [CMD, ARG...], tty?: bool}, and with
// the request's first byte (SCM_RIGHTS) either stdin, stdout, stderr and
// the control pipe's read end, or (tty) a terminal and the control pipe.
// The reply comes when the process ended: {app, release, run, pid,
// exit_status, signal, exit} (and `error` when it could not be exec'd:
// exit_status 125-127). Every fd is checked before anything runs; the
// stdio fds go to the FdCloser afterwards (a close() can block). Loop
// thread.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>

#include "daemon/base/fd_closer.h"
#include "daemon/base/release_id.h"
#include "daemon/control/handlers.h"
#include "daemon/control/params.h"
#include "daemon/protocol/methods.h"
#include "daemon/run/one_offs.h"
#include "daemon/run/run_service.h"

namespace relsupd {
namespace {

using rpc::Json;

// Bounds on argv: the kernel's MAX_ARG_STRLEN is 128 KiB a string; the
// whole command is recorded in the ledger, so it stays small.
constexpr size_t kMaxArgs = 4096;
constexpr size_t kMaxArgvBytes = 64 * 1024;

enum class Access { kRead, kWrite };

// Checks that a passed fd can serve as `what`: opened for the access,
// and a file, pipe, socket or character device (a directory, an O_PATH
// fd or an anonymous inode such as an eventfd is refused).
Status CheckStdio(int fd, const char* what, Access access) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return Status::FromErrno(std::string("run: ") + what + " passed", errno);
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || (flags & O_PATH) != 0)
    return InvalidArgument(std::string("run: ") + what +
                           " passed is not an open file (O_PATH?)");
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode) &&
      !S_ISCHR(st.st_mode))
    return InvalidArgument(std::string("run: ") + what +
                           " passed is not a file, pipe, socket or character "
                           "device");
  const int mode = flags & O_ACCMODE;
  const bool ok = access == Access::kRead ? mode != O_WRONLY : mode != O_RDONLY;
  if (!ok)
    return InvalidArgument(std::string("run: ") + what +
                           " passed is not open for " +
                           (access == Access::kRead ? "reading" : "writing"));
  return Status::Ok();
}

// The control pipe: the read end of a pipe, which we read without
// blocking. (A pipe's close() never blocks, so it is closed on the loop.)
Status CheckControl(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode))
    return InvalidArgument(
        "run: the last fd passed must be the read end of a "
        "pipe (the control pipe)");
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || (flags & O_ACCMODE) != O_RDONLY)
    return InvalidArgument(
        "run: the control pipe passed is not open for reading only");
  if (::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return Status::FromErrno("run: control pipe", errno);
  return Status::Ok();
}

Result<std::vector<std::string>> Argv(const Json& params) {
  auto it = params.find("argv");
  if (it == params.end() || !it->is_array() || it->empty())
    return InvalidArgument(
        "param 'argv' must be a non-empty array of strings "
        "(the command and its arguments)");
  if (it->size() > kMaxArgs)
    return InvalidArgument("param 'argv' has " + std::to_string(it->size()) +
                           " strings, at most " + std::to_string(kMaxArgs));
  std::vector<std::string> argv;
  size_t bytes = 0;
  for (const Json& a : *it) {
    if (!a.is_string())
      return InvalidArgument("param 'argv' must be an array of strings");
    const std::string& s = a.get_ref<const std::string&>();
    if (s.find('\0') != std::string::npos)
      return InvalidArgument("param 'argv' holds a string with a NUL byte");
    bytes += s.size() + 1;
    if (bytes > kMaxArgvBytes)
      return InvalidArgument("param 'argv' is over " +
                             std::to_string(kMaxArgvBytes) + " bytes");
    argv.push_back(s);
  }
  if (argv[0].empty())
    return InvalidArgument("param 'argv': the command is empty");
  return argv;
}

// The fds a `run` request brought, checked: 4 without a tty, 2 with one.
Status TakeFds(std::deque<Fd>* passed, bool tty, std::vector<Fd>* out) {
  const size_t want = tty ? 2 : 4;
  const size_t got = passed == nullptr ? 0 : passed->size();
  if (got != want)
    return InvalidArgument(
        "run: " + std::to_string(got) + " fds passed with the request, need " +
        std::to_string(want) +
        (tty ? " (a terminal and the control pipe)"
             : " (stdin, stdout, stderr and the control pipe)"));
  for (size_t i = 0; i < want; ++i) {
    out->push_back(std::move(passed->front()));
    passed->pop_front();
  }
  if (tty) {
    if (::isatty((*out)[0].get()) != 1)
      return InvalidArgument(
          "run: with 'tty' the first fd passed must be a terminal");
    RETURN_IF_ERROR(
        CheckStdio((*out)[0].get(), "the terminal", Access::kWrite));
  } else {
    RETURN_IF_ERROR(CheckStdio((*out)[0].get(), "stdin", Access::kRead));
    RETURN_IF_ERROR(CheckStdio((*out)[1].get(), "stdout", Access::kWrite));
    RETURN_IF_ERROR(CheckStdio((*out)[2].get(), "stderr", Access::kWrite));
  }
  return CheckControl(out->back().get());
}

Json ExitToJson(const OneOffExit& e) {
  ExitInfo info;
  info.status = e.exit_status;
  info.signal = e.signal;
  Json j = {{"app", e.app},
            {"release", ReleaseId(e.release).ToString()},
            {"run", e.id},
            {"pid", e.pid},
            {"exit_status", e.exit_status},
            {"signal", e.signal},
            {"exit", info.Describe()}};
  if (!e.error.empty()) j["error"] = e.error;
  return j;
}

Status StartRun(DaemonContext& ctx, const Request& r, std::vector<Fd>* fds,
                const Reply& reply) {
  RETURN_IF_ERROR(
      params::CheckKnown(r.params, {"app", "release", "argv", "tty"}));
  OneOffRequest req;
  ASSIGN_OR_RETURN(req.app, params::App(r.params));
  if (r.params.contains("release")) {
    ASSIGN_OR_RETURN(req.release, params::Release(r.params, "release"));
  }
  ASSIGN_OR_RETURN(req.argv, Argv(r.params));
  if (auto it = r.params.find("tty"); it != r.params.end()) {
    if (!it->is_boolean())
      return InvalidArgument("param 'tty' must be a boolean");
    req.tty = it->get<bool>();
  }
  RETURN_IF_ERROR(TakeFds(r.fds, req.tty, fds));
  RETURN_IF_ERROR(ctx.ledger->GetApp(req.app).status());
  RETURN_IF_ERROR(ctx.runs->RefuseDuringDelete(req.app));
  const int in = (*fds)[0].get();
  req.stdio = req.tty ? ExecStdio{in, in, in}
                      : ExecStdio{in, (*fds)[1].get(), (*fds)[2].get()};
  req.control = std::move(fds->back());
  req.actor = params::ActorOf(r.peer);
  return ctx.runs->one_offs()->Start(
      std::move(req), [reply](const OneOffExit& e) { reply(ExitToJson(e)); });
}

}  // namespace

void RegisterRunHandlers(Dispatcher* d, DaemonContext* ctx) {
  d->RegisterAsync(rpc::method::kRun, Right::kChange,
                   [ctx](const Request& r, Reply reply) {
                     std::vector<Fd> fds;
                     Status s = StartRun(*ctx, r, &fds, reply);
                     // The child has its copies (or none runs): ours may
                     // block in close(), so not on the loop.
                     for (Fd& fd : fds)
                       if (fd.valid()) {
                         if (ctx->closer != nullptr)
                           ctx->closer->Close(std::move(fd));
                       }
                     if (!s.ok()) reply(s);
                   });
}

}  // namespace relsupd
