#include "daemon/supervise/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <set>
#include <string>

#include "daemon/base/fd.h"
#include "daemon/base/uv_handle.h"

namespace relsupd {

struct ChildProcess::Pipe {
  UvHandle<uv_pipe_t> handle;
  OutputStream stream = OutputStream::kOut;
  ChildProcess* owner = nullptr;
  bool open = false;     // initialised and not yet at EOF
  bool reading = false;
  bool grow_tried = false;
  bool grown = false;  // read into the big buffer
};

namespace {

// One read buffer for every pipe: libuv calls the read callback right after
// the alloc callback, and the callback consumes the bytes before returning,
// so 1,000 children do not need 1,000 buffers.
char g_read_buffer[ChildProcess::kReadBytes];

// The one for grown pipes, made when the first pipe grows (so a daemon
// whose apps never flood never touches its pages).
char* BigReadBuffer() {
  static char* buffer = new char[ChildProcess::kGrownPipeBytes];
  return buffer;
}

}  // namespace

// The pidfd of one child under a uv_poll_t. Owned by its ChildProcess until
// the process exited or the owner went away first; an orphaned watch reaps
// its process and frees itself (kept in Orphans() meanwhile, so that a loop
// closed under it leaks nothing a leak checker could not reach).
struct ChildProcess::ExitWatch {
  uv_poll_t poll{};
  pid_t pid = 0;
  int pidfd = -1;
  ChildProcess* owner = nullptr;
  bool keep_fd = false;  // abandoned: the close leaves the pidfd open

  static std::set<ExitWatch*>& Orphans() {
    static auto* orphans = new std::set<ExitWatch*>();
    return *orphans;
  }
  // Closes the poll handle; the close callback closes the pidfd (after
  // libuv stopped polling it) and frees the watch.
  void Close() {
    auto* h = reinterpret_cast<uv_handle_t*>(&poll);
    if (uv_is_closing(h)) return;
    uv_close(h, [](uv_handle_t* x) {
      auto* w = static_cast<ExitWatch*>(x->data);
      Orphans().erase(w);
      if (!w->keep_fd) ::close(w->pidfd);
      delete w;
    });
  }
  // Starts polling the pidfd: 0, or a libuv error (then Discard()).
  int Start(uv_loop_t* loop) {
    poll.data = this;
    int rc = uv_poll_init(loop, &poll, pidfd);
    if (rc == 0) rc = uv_poll_start(&poll, UV_READABLE, &ExitWatch::OnReadable);
    return rc;
  }
  // Frees a watch whose Start() failed, closing its pidfd.
  void Discard() {
    if (poll.loop != nullptr) {
      Close();
    } else {
      ::close(pidfd);
      delete this;
    }
  }
  static void OnReadable(uv_poll_t* p, int status, int events);
};

void ChildProcess::ExitWatch::OnReadable(uv_poll_t* p, int /*status*/, int /*events*/) {
  auto* w = static_cast<ExitWatch*>(p->data);
  // WNOWAIT: read the status but leave the zombie. Reaping it (the kernel
  // tears down its task and /proc entries) waits until the owner has acted
  // on the exit, so a restart's spawn does not wait for it.
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(w->pidfd), &info,
                  WEXITED | WNOHANG | WNOWAIT);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0 && info.si_pid == 0) return;  // not yet
  uv_poll_stop(p);
  int64_t exit_status = 0;
  int term_signal = 0;
  if (rc != 0) {
    // ECHILD: someone else reaped it; the status is lost.
    exit_status = kExecStepSetupFailed;
  } else if (info.si_code == CLD_EXITED) {
    exit_status = info.si_status;
  } else {
    term_signal = info.si_status;
  }
  // The owner may destroy itself and close the watch in OnExit: the watch
  // (and its pidfd) lives until its close callback, after this returns.
  const int pidfd = w->pidfd;
  if (ChildProcess* owner = w->owner) {
    owner->OnExit(exit_status, term_signal);
  } else {
    w->Close();
  }
  if (rc == 0) {
    siginfo_t reaped{};
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &reaped,
                    WEXITED | WNOHANG) != 0 && errno == EINTR) {
    }
  }
}

namespace {

// The child's stdout and stderr pipes. Our copies of the child's ends
// (`*_write`) close on every path out of Spawn.
struct OutputPipes {
  Fd out_read, out_write, err_read, err_write;
};

Status MakeOutputPipes(OutputPipes* pipes) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Status::FromErrno("cannot make a pipe", errno);
  pipes->out_read = Fd(p[0]);
  pipes->out_write = Fd(p[1]);
  if (::pipe2(p, O_CLOEXEC) != 0) return Status::FromErrno("cannot make a pipe", errno);
  pipes->err_read = Fd(p[0]);
  pipes->err_write = Fd(p[1]);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    uv_loop_t* loop, const SpawnRequest& req, Callbacks callbacks) {
  assert(!req.argv.empty());
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->callbacks_ = std::move(callbacks);

  // /dev/null, opened once for the process's lifetime: every child's stdin.
  static const int dev_null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (dev_null < 0) return Status::FromErrno("cannot open /dev/null", errno);
  const bool capture = req.capture_output && !req.stdio.has_value();
  OutputPipes pipes;
  if (capture) RETURN_IF_ERROR(MakeOutputPipes(&pipes));
  ExecStdio stdio;
  stdio.in = dev_null;
  stdio.out = capture ? pipes.out_write.get() : dev_null;
  stdio.err = capture ? pipes.err_write.get() : dev_null;
  if (req.stdio.has_value()) stdio = *req.stdio;
  ASSIGN_OR_RETURN(ClonedChild cloned, CloneExec(req, stdio));
  child->pid_ = cloned.pid;
  RETURN_IF_ERROR(child->WatchExit(loop, cloned));
  if (capture) child->ReadOutput(loop, &pipes.out_read, &pipes.err_read);
  return child;
}

Status ChildProcess::WatchExit(uv_loop_t* loop, const ClonedChild& cloned) {
  auto* watch = new ExitWatch();
  watch->pid = cloned.pid;
  watch->pidfd = cloned.pidfd;
  watch->owner = this;
  watch_ = watch;
  const int rc = watch->Start(loop);
  if (rc == 0) return Status::Ok();
  // Cannot watch it: do not leave it running unwatched; killed and
  // reaped here, since no watch will.
  watch_ = nullptr;
  ::kill(-cloned.pid, SIGKILL);
  ::kill(cloned.pid, SIGKILL);
  while (::waitpid(cloned.pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  watch->Discard();
  return Status(StatusCode::kIoError,
                std::string("cannot watch the child's pidfd: ") + uv_strerror(rc), -rc);
}

void ChildProcess::ReadOutput(uv_loop_t* loop, Fd* out_read, Fd* err_read) {
  out_ = std::make_unique<Pipe>();
  err_ = std::make_unique<Pipe>();
  err_->stream = OutputStream::kErr;
  for (Pipe* p : {out_.get(), err_.get()}) {
    Fd& fd = p == out_.get() ? *out_read : *err_read;
    if (!fd.valid()) continue;  // at its end already (an adopted child)
    uv_pipe_init(loop, p->handle.get(), 0);
    p->handle->data = p;
    p->owner = this;
    if (uv_pipe_open(p->handle.get(), fd.get()) == 0) {
      (void)fd.Release();  // the pipe handle owns it now
      StartReading(p);
    }
    // else: the output is lost, the process still runs and is watched.
  }
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::Adopt(
    uv_loop_t* loop, const ChildFds& fds, Callbacks callbacks) {
  Fd out(fds.out_fd), err(fds.err_fd);  // ours from here, on every path
  if (fds.pid <= 0 || fds.pidfd < 0) {
    if (fds.pidfd >= 0) ::close(fds.pidfd);
    return InvalidArgument("cannot adopt process " + std::to_string(fds.pid) +
                           ": no pid or pidfd");
  }
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->callbacks_ = std::move(callbacks);
  child->pid_ = fds.pid;
  child->paused_ = fds.paused;
  RETURN_IF_ERROR(child->WatchExit(loop, ClonedChild{fds.pid, fds.pidfd}));
  child->ReadOutput(loop, &out, &err);
  return child;
}

namespace {

// The fd of a pipe still open (-1 at its end or when there is none).
int OpenFdOf(const UvHandle<uv_pipe_t>& handle, bool open) {
  uv_os_fd_t fd = -1;
  if (!open || uv_fileno(handle.handle(), &fd) != 0) return -1;
  return fd;
}

}  // namespace

ChildFds ChildProcess::Export() const {
  assert(!exited_);
  ChildFds fds;
  fds.pid = pid_;
  fds.pidfd = watch_ != nullptr ? watch_->pidfd : -1;
  fds.out_fd = out_ != nullptr ? OpenFdOf(out_->handle, out_->open) : -1;
  fds.err_fd = err_ != nullptr ? OpenFdOf(err_->handle, err_->open) : -1;
  fds.paused = paused_;
  return fds;
}

void ChildProcess::Abandon() {
  for (std::unique_ptr<Pipe>* pipe : {&out_, &err_}) {
    if (*pipe == nullptr) continue;
    // libuv closes a stream's fd in uv_close itself: a copy puts it back at
    // its number afterwards.
    const int fd = OpenFdOf((*pipe)->handle, (*pipe)->open);
    const int saved = fd >= 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    (*pipe)->handle.Close();
    if (saved >= 0) {
      ::dup3(saved, fd, O_CLOEXEC);
      ::close(saved);
    }
    pipe->reset();
  }
  if (watch_ != nullptr) {
    watch_->owner = nullptr;
    watch_->keep_fd = true;
    watch_->Close();
    watch_ = nullptr;
  }
  pid_ = 0;
}

std::vector<ReapEntry> ChildProcess::ExportOrphans() {
  std::vector<ReapEntry> out;
  for (const ExitWatch* w : ExitWatch::Orphans()) out.push_back({w->pid, w->pidfd});
  return out;
}

void ChildProcess::AbandonOrphans() {
  const std::set<ExitWatch*> orphans = std::move(ExitWatch::Orphans());
  ExitWatch::Orphans().clear();
  for (ExitWatch* w : orphans) {
    w->keep_fd = true;
    w->Close();
  }
}

Status ChildProcess::AdoptOrphan(uv_loop_t* loop, const ReapEntry& entry) {
  auto* watch = new ExitWatch();
  watch->pid = entry.pid;
  watch->pidfd = entry.pidfd;
  const int rc = watch->Start(loop);
  if (rc == 0) {
    ExitWatch::Orphans().insert(watch);
    return Status::Ok();
  }
  watch->Discard();
  return Status(StatusCode::kIoError,
                "cannot watch process " + std::to_string(entry.pid) +
                    " to reap it: " + uv_strerror(rc),
                -rc);
}

ChildProcess::~ChildProcess() {
  // Pipes close with their UvHandles. The watch must outlive the process:
  // kill the group and let the watch reap it and free itself.
  if (watch_ == nullptr) return;
  ExitWatch* w = watch_;
  watch_ = nullptr;
  w->owner = nullptr;
  if (!exited_) {
    if (pid_ > 0 && ::kill(-pid_, SIGKILL) != 0 && errno == ESRCH) ::kill(pid_, SIGKILL);
    ExitWatch::Orphans().insert(w);
    return;
  }
  w->Close();
}

void ChildProcess::OnExit(int64_t exit_status, int term_signal) {
  exited_ = true;
  if (callbacks_.on_exit) {
    // Copy: the callback may destroy `this`.
    auto cb = callbacks_.on_exit;
    cb(exit_status, term_signal);
  }
}

Status ChildProcess::SignalGroup(int signum) const {
  if (exited_ || pid_ <= 0)
    return FailedPrecondition("process " + std::to_string(pid_) +
                              " has exited");
  if (::kill(-pid_, signum) != 0) {
    // The group leader may be gone while its group lives on, or the group
    // may not exist yet (the exec step has not run setsid): try the pid.
    if (errno == ESRCH && ::kill(pid_, signum) == 0) return Status::Ok();
    return Status::FromErrno("kill " + std::to_string(-pid_), errno);
  }
  return Status::Ok();
}

Status ChildProcess::Signal(int signum) const {
  if (exited_ || pid_ <= 0)
    return FailedPrecondition("process " + std::to_string(pid_) +
                              " has exited");
  if (::kill(pid_, signum) != 0)
    return Status::FromErrno("kill " + std::to_string(pid_), errno);
  return Status::Ok();
}

void ChildProcess::StartReading(Pipe* pipe) {
  pipe->open = true;
  if (paused_) return;
  if (uv_read_start(pipe->handle.stream(), &ChildProcess::OnAlloc,
                    &ChildProcess::OnRead) == 0)
    pipe->reading = true;
}

void ChildProcess::PauseOutput() {
  if (paused_) return;
  paused_ = true;
  for (Pipe* p : {out_.get(), err_.get()}) {
    if (p != nullptr && p->reading) {
      uv_read_stop(p->handle.stream());
      p->reading = false;
    }
  }
}

void ChildProcess::ResumeOutput() {
  if (!paused_) return;
  paused_ = false;
  for (Pipe* p : {out_.get(), err_.get()}) {
    if (p != nullptr && p->open && !p->reading) StartReading(p);
  }
}

void ChildProcess::DrainOutput() {
  for (Pipe* p : {out_.get(), err_.get()}) {
    if (p == nullptr || !p->open) continue;
    uv_os_fd_t fd = -1;
    if (uv_fileno(p->handle.handle(), &fd) != 0) continue;
    // Bounded: a descendant that keeps writing must not hold the loop.
    for (int i = 0; i < 16; ++i) {
      ssize_t n = ::read(fd, g_read_buffer, sizeof(g_read_buffer));
      if (n <= 0) break;
      if (callbacks_.on_output)
        callbacks_.on_output(p->stream, std::string_view(g_read_buffer, n));
    }
  }
}

void ChildProcess::SkipTurn(const uint64_t* turn, uint64_t now_ms) {
  skip_turn_ = turn;
  skip_value_ = *turn;
  skip_ms_ = now_ms;
}

void ChildProcess::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  const auto* pipe = static_cast<const Pipe*>(h->data);
  if (pipe != nullptr && pipe->owner->skipping_turn(uv_now(h->loop))) {
    // No buffer: libuv calls back with UV_ENOBUFS and leaves the stream
    // for this turn.
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  if (pipe != nullptr && pipe->grown) {
    buf->base = BigReadBuffer();
    buf->len = kGrownPipeBytes;
    return;
  }
  buf->base = g_read_buffer;
  buf->len = sizeof(g_read_buffer);
}

void ChildProcess::GrowOutputPipe(OutputStream stream) {
  Pipe* p = stream == OutputStream::kOut ? out_.get() : err_.get();
  if (p == nullptr || !p->open || p->grow_tried) return;
  p->grow_tried = true;
  uv_os_fd_t fd = -1;
  if (uv_fileno(p->handle.handle(), &fd) != 0) return;
  p->grown = ::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(kGrownPipeBytes)) >= 0;
}

size_t ChildProcess::OutputPipeBytes(OutputStream stream) const {
  const Pipe* p = stream == OutputStream::kOut ? out_.get() : err_.get();
  uv_os_fd_t fd = -1;
  if (p == nullptr || !p->open || uv_fileno(p->handle.handle(), &fd) != 0) return 0;
  const int n = ::fcntl(fd, F_GETPIPE_SZ);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

void ChildProcess::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* pipe = static_cast<Pipe*>(s->data);
  if (pipe == nullptr) return;
  ChildProcess* self = pipe->owner;
  if (n > 0) {
    if (self->callbacks_.on_output)
      self->callbacks_.on_output(pipe->stream,
                                 std::string_view(buf->base, n));
    return;
  }
  if (n == 0 || n == UV_ENOBUFS) return;  // EAGAIN, or SkipTurn
  // EOF or an error: the stream is done either way.
  uv_read_stop(s);
  pipe->reading = false;
  pipe->open = false;
  if (self->callbacks_.on_eof) self->callbacks_.on_eof(pipe->stream);
}

}  // namespace relsupd
