#include "daemon/supervise/spawn.h"

#include <signal.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <string>

#include "daemon/base/uv_handle.h"

namespace relsupd {

struct ChildProcess::Pipe {
  UvHandle<uv_pipe_t> handle;
  OutputStream stream = OutputStream::kOut;
  ChildProcess* owner = nullptr;
  bool open = false;     // initialised and not yet at EOF
  bool reading = false;
};

namespace {

// One read buffer for every pipe: libuv calls the read callback right after
// the alloc callback, and the callback consumes the bytes before returning,
// so 1,000 children do not need 1,000 buffers.
char g_read_buffer[64 * 1024];

std::string JoinGroups(const std::vector<gid_t>& groups) {
  std::string s;
  for (gid_t g : groups) {
    if (!s.empty()) s += ',';
    s += std::to_string(g);
  }
  return s;
}

}  // namespace

std::vector<std::string> ExecStepArgv(const SpawnRequest& req) {
  std::vector<std::string> a = {req.exec_step, "--setsid"};
  if (!req.cgroup_dir.empty()) {
    a.push_back("--cgroup");
    a.push_back(req.cgroup_dir);
  }
  for (const auto& r : req.rlimits) {
    a.push_back("--rlimit");
    a.push_back(r);
  }
  if (req.uid) {
    a.push_back("--groups");
    a.push_back(JoinGroups(req.groups));
  }
  if (req.gid) {
    a.push_back("--gid");
    a.push_back(std::to_string(*req.gid));
  }
  if (req.uid) {
    a.push_back("--uid");
    a.push_back(std::to_string(*req.uid));
  }
  if (req.pdeathsig) {
    a.push_back("--pdeathsig");
    a.push_back(std::to_string(getpid()));
  }
  if (!req.pass_fds.empty()) {
    a.push_back("--listen-fds");
    a.push_back(std::to_string(req.pass_fds.size()));
  }
  a.push_back("--");
  a.insert(a.end(), req.argv.begin(), req.argv.end());
  return a;
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    uv_loop_t* loop, const SpawnRequest& req, Callbacks callbacks) {
  assert(!req.argv.empty());
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->callbacks_ = std::move(callbacks);

  std::vector<std::string> argv_s = ExecStepArgv(req);
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s = req.env;
  std::vector<char*> env;
  for (auto& s : env_s) env.push_back(s.data());
  env.push_back(nullptr);

  std::vector<uv_stdio_container_t> stdio(3 + req.pass_fds.size());
  stdio[0].flags = UV_IGNORE;
  if (req.capture_output) {
    child->out_ = std::make_unique<Pipe>();
    child->err_ = std::make_unique<Pipe>();
    child->err_->stream = OutputStream::kErr;
    for (Pipe* p : {child->out_.get(), child->err_.get()}) {
      uv_pipe_init(loop, p->handle.get(), 0);
      p->handle->data = p;
      p->owner = child.get();
    }
    for (int i : {1, 2}) {
      Pipe* p = i == 1 ? child->out_.get() : child->err_.get();
      stdio[i].flags =
          static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
      stdio[i].data.stream = p->handle.stream();
    }
  } else {
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_IGNORE;
  }
  for (size_t i = 0; i < req.pass_fds.size(); ++i) {
    stdio[3 + i].flags = UV_INHERIT_FD;
    stdio[3 + i].data.fd = req.pass_fds[i];
  }

  uv_process_options_t opts{};
  opts.exit_cb = &ChildProcess::OnExit;
  opts.file = argv[0];
  opts.args = argv.data();
  opts.env = env.data();
  opts.cwd = req.cwd.empty() ? nullptr : req.cwd.c_str();
  opts.stdio_count = static_cast<int>(stdio.size());
  opts.stdio = stdio.data();

  auto* process = new uv_process_t{};
  int rc = uv_spawn(loop, process, &opts);
  if (rc != 0) {
    // A failed uv_spawn still initialised the handle; it must be closed.
    uv_close(reinterpret_cast<uv_handle_t*>(process),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    return Status(StatusCode::kIoError,
                  "cannot start '" + req.exec_step + "': " + uv_strerror(rc),
                  -rc);
  }
  process->data = child.get();
  child->process_ = process;
  child->pid_ = process->pid;
  if (req.capture_output) {
    child->StartReading(child->out_.get());
    child->StartReading(child->err_.get());
  }
  return child;
}

ChildProcess::~ChildProcess() {
  // Pipes close with their UvHandles. The process handle must outlive the
  // process: kill the group and let the exit callback free the handle.
  if (process_ == nullptr) return;
  if (!exited_) {
    // The exec step may not have run setsid yet: then the pid itself.
    if (pid_ > 0 && ::kill(-pid_, SIGKILL) != 0 && errno == ESRCH)
      ::kill(pid_, SIGKILL);
    process_->data = nullptr;
    return;
  }
  process_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(process_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
}

void ChildProcess::OnExit(uv_process_t* p, int64_t exit_status,
                          int term_signal) {
  auto* self = static_cast<ChildProcess*>(p->data);
  if (self == nullptr) {
    // The owner is gone: nobody wants the status; free the handle.
    uv_close(reinterpret_cast<uv_handle_t*>(p),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    return;
  }
  self->exited_ = true;
  if (self->callbacks_.on_exit) {
    // Copy: the callback may destroy `self`.
    auto cb = self->callbacks_.on_exit;
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

void ChildProcess::OnAlloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  buf->base = g_read_buffer;
  buf->len = sizeof(g_read_buffer);
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
  if (n == 0) return;  // EAGAIN
  // EOF or an error: the stream is done either way.
  uv_read_stop(s);
  pipe->reading = false;
  pipe->open = false;
  if (self->callbacks_.on_eof) self->callbacks_.on_eof(pipe->stream);
}

}  // namespace relsupd
