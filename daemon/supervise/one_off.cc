// OneOff: a process run once through the exec step (one_off.h).
#include "daemon/supervise/one_off.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "daemon/logs/log_store.h"
#include "daemon/supervise/cgroup.h"

namespace relsupd {

OneOffSpec OneOffOf(const ReleaseRun& run, const SuperviseEnv& env,
                    std::string name, std::vector<std::string> argv) {
  OneOffSpec spec;
  spec.app = run.app;
  spec.release = run.release();
  spec.argv = std::move(argv);
  spec.cwd = run.slot;
  spec.uid = run.uid;
  spec.gid = run.gid;
  spec.groups = run.groups;
  for (const auto& [k, v] : ProcessEnvironment(run, env, name, {}))
    spec.env.push_back(k + "=" + v);
  spec.name = std::move(name);
  return spec;
}

OneOff::OneOff(SuperviseEnv* env, OneOffSpec spec, ExitCallback on_exit)
    : env_(env), spec_(std::move(spec)), on_exit_(std::move(on_exit)) {
  uv_timer_init(env_->loop, stop_timer_.get());
  stop_timer_->data = this;
}

Result<std::unique_ptr<OneOff>> OneOff::Start(SuperviseEnv* env,
                                              OneOffSpec spec,
                                              ExitCallback on_exit) {
  if (spec.argv.empty() || spec.argv[0].empty())
    return InvalidArgument("no command to run");
  if (spec.stdio.has_value() &&
      (spec.stdio->in < 0 || spec.stdio->out < 0 || spec.stdio->err < 0))
    return InvalidArgument("stdin, stdout and stderr must all be given");
  if (spec.controlling_tty && !spec.stdio.has_value())
    return InvalidArgument("a controlling terminal needs the caller's stdio");
  // The leftovers sweep finds it by this variable, whatever the caller's
  // environment says.
  std::erase_if(spec.env, [](const std::string& e) {
    return e.starts_with("RELSUPD_SUPERVISOR=");
  });
  if (!env->supervisor_id.empty())
    spec.env.push_back("RELSUPD_SUPERVISOR=" + env->supervisor_id);
  std::unique_ptr<OneOff> self(
      new OneOff(env, std::move(spec), std::move(on_exit)));
  RETURN_IF_ERROR(self->Spawn());
  return self;
}

Status OneOff::Spawn() {
  if (!spec_.stdio.has_value()) {
    capture_ = std::make_unique<OutputCapture>(
        env_->loop, &env_->loop_turn, env_->clock, env_->logs, env_->log_rate,
        LogSource{spec_.app, spec_.release, spec_.name});
    capture_->set_line_observer(
        [this](OutputStream, std::string_view line) { KeepTail(line); });
  }
  SpawnRequest req;
  req.argv = spec_.argv;
  req.cwd = spec_.cwd;
  req.env = spec_.env;
  req.uid = spec_.uid;
  req.gid = spec_.gid;
  req.groups = spec_.groups;
  req.rlimits = env_->child_rlimits;
  req.pdeathsig = env_->pdeathsig;
  req.controlling_tty = spec_.controlling_tty;
  req.stdio = spec_.stdio;
  if (env_->cgroups != nullptr) {
    auto dir = env_->cgroups->Create(spec_.app, spec_.name);
    if (dir.ok()) {
      cgroup_dir_ = *dir;
      req.cgroup_dir = *dir;
    } else {
      spdlog::warn("{} {}: {}, running it without a cgroup", spec_.app,
                   spec_.name, dir.status().message());
    }
  }
  ChildProcess::Callbacks cb;
  if (capture_ != nullptr) {
    cb.on_output = [this](OutputStream s, std::string_view d) {
      capture_->OnOutput(s, d);
    };
    cb.on_eof = [this](OutputStream s) { capture_->OnEof(s); };
  }
  cb.on_exit = [this](int64_t status, int signal) { OnExit(status, signal); };
  auto child = ChildProcess::Spawn(env_->loop, req, std::move(cb));
  if (!child.ok()) {
    if (capture_ != nullptr) {
      capture_->WriteLine(OutputStream::kErr,
                          "relsupd: " + child.status().message());
      capture_->FlushLogs();
    }
    if (env_->cgroups != nullptr && !cgroup_dir_.empty())
      env_->cgroups->KillAndRemove(cgroup_dir_);
    cgroup_dir_.clear();
    return child.status();
  }
  child_ = std::move(*child);
  pid_ = child_->pid();
  if (capture_ != nullptr) capture_->Attach(child_.get());
  spdlog::info("{} {} {} started (pid {})", spec_.app, spec_.release,
               spec_.name, pid_);
  return Status::Ok();
}

OneOff::~OneOff() {
  if (capture_ != nullptr) capture_->Detach();
  if (child_ != nullptr)
    spdlog::warn("{} {} (pid {}) killed: its owner went away", spec_.app,
                 spec_.name, pid_);
  child_.reset();  // SIGKILLs the group if it still runs
  if (env_->cgroups != nullptr && !cgroup_dir_.empty())
    env_->cgroups->KillAndRemove(cgroup_dir_);
}

Status OneOff::Signal(int signum) {
  if (child_ == nullptr) return FailedPrecondition(spec_.name + " has exited");
  return child_->SignalGroup(signum);
}

void OneOff::Stop() {
  if (child_ == nullptr || uv_is_active(stop_timer_.handle())) return;
  if (Status s = child_->SignalGroup(spec_.stop_signal); !s.ok())
    spdlog::debug("{} {}: {}, ignoring", spec_.app, spec_.name, s.message());
  uv_timer_start(
      stop_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<OneOff*>(t->data);
        if (self == nullptr || self->child_ == nullptr) return;
        spdlog::warn("{} {} (pid {}) did not stop within {} ms, killing it",
                     self->spec_.app, self->spec_.name, self->pid_,
                     self->spec_.stop_timeout_ms);
        self->Kill();
      },
      static_cast<uint64_t>(std::max<int64_t>(spec_.stop_timeout_ms, 0)), 0);
}

void OneOff::Kill() {
  if (child_ == nullptr) return;
  if (env_->cgroups != nullptr && !cgroup_dir_.empty())
    env_->cgroups->Kill(cgroup_dir_);
  child_->SignalGroup(SIGKILL).IgnoreError();
}

void OneOff::KeepTail(std::string_view line) {
  tail_.emplace_back(line.substr(0, kTailLineBytes));
  if (tail_.size() > kTailLines) tail_.pop_front();
}

std::vector<std::string> OneOff::TailLines() const {
  return {tail_.begin(), tail_.end()};
}

void OneOff::OnExit(int64_t status, int signal) {
  uv_timer_stop(stop_timer_.get());
  // Destroyed when this returns (ChildProcess calls us last), possibly
  // after the owner destroyed `this` in on_exit.
  std::unique_ptr<ChildProcess> old = std::move(child_);
  if (capture_ != nullptr) {
    old->DrainOutput();  // what it wrote before it died is in the pipes
    capture_->FlushLines();
    capture_->Detach();
    capture_->FlushLogs();
  }
  if (env_->cgroups != nullptr && !cgroup_dir_.empty()) {
    env_->cgroups->KillAndRemove(cgroup_dir_);  // its descendants end too
    cgroup_dir_.clear();
  } else if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);  // the group cannot be reused while one lives
  }
  const ExitInfo info{.time_ms = env_->clock->WallMs(), .status = status, .signal = signal,
                      .fault = {}};
  spdlog::info("{} {} {} (pid {}) ended: {}", spec_.app, spec_.release,
               spec_.name, pid_, info.Describe());
  auto cb = std::move(on_exit_);
  if (cb) cb(info);
}

}  // namespace relsupd
