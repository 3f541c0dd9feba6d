#include "daemon/supervise/one_off.h"

#include <spdlog/spdlog.h>

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
    : env_(env), spec_(std::move(spec)), on_exit_(std::move(on_exit)) {}

OneOff::~OneOff() {
  stop_timer_.Close();
  if (child_ != nullptr) {
    // ChildProcess's destructor SIGKILLs the group; the cgroup too.
    child_.reset();
    if (!cgroup_dir_.empty()) env_->cgroups->KillAndRemove(cgroup_dir_);
  }
}

Result<std::unique_ptr<OneOff>> OneOff::Start(SuperviseEnv* env,
                                              OneOffSpec spec,
                                              ExitCallback on_exit) {
  if (!spec.stdio.has_value())
    return InvalidArgument("one-off '" + spec.name + "': no stdio given");
  std::unique_ptr<OneOff> one(
      new OneOff(env, std::move(spec), std::move(on_exit)));
  RETURN_IF_ERROR(one->Spawn());
  return one;
}

Status OneOff::Spawn() {
  SpawnRequest req;
  req.argv = spec_.argv;
  req.cwd = spec_.cwd;
  req.env = spec_.env;
  req.uid = spec_.uid;
  req.gid = spec_.gid;
  req.groups = spec_.groups;
  req.rlimits = env_->child_rlimits;
  req.pdeathsig = env_->pdeathsig;
  req.stdio = spec_.stdio;
  req.controlling_tty = spec_.controlling_tty;
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
  cb.on_exit = [this](int64_t status, int signal) { OnExit(status, signal); };
  auto child = ChildProcess::Spawn(env_->loop, req, std::move(cb));
  if (!child.ok()) {
    // Nothing ever ran in it (a failed step is reaped before we return).
    if (!cgroup_dir_.empty()) env_->cgroups->KillAndRemove(cgroup_dir_);
    cgroup_dir_.clear();
    return child.status();
  }
  child_ = std::move(*child);
  pid_ = child_->pid();
  return Status::Ok();
}

Status OneOff::Signal(int signum) {
  if (child_ == nullptr) return Status::Ok();
  return child_->SignalGroup(signum);
}

void OneOff::Stop() {
  if (child_ == nullptr) return;
  Status s = child_->SignalGroup(spec_.stop_signal);
  if (!s.ok()) spdlog::debug("{} {}: {}", spec_.app, spec_.name, s.message());
  if (stop_timer_.get() == nullptr || stop_timer_.initialized()) return;
  uv_timer_init(env_->loop, stop_timer_.get());
  stop_timer_->data = this;
  uv_timer_start(
      stop_timer_.get(),
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<OneOff*>(t->data)->Kill();
      },
      static_cast<uint64_t>(spec_.stop_timeout_ms), 0);
}

void OneOff::Kill() {
  if (child_ == nullptr) return;
  if (!cgroup_dir_.empty()) env_->cgroups->Kill(cgroup_dir_);
  Status s = child_->SignalGroup(SIGKILL);
  if (!s.ok()) spdlog::debug("{} {}: {}", spec_.app, spec_.name, s.message());
}

void OneOff::OnExit(int64_t status, int signal) {
  stop_timer_.Close();
  // Whatever it left behind in its cgroup ends with it, as an instance's.
  if (!cgroup_dir_.empty()) env_->cgroups->KillAndRemove(cgroup_dir_);
  cgroup_dir_.clear();
  ExitInfo exit{env_->clock->WallMs(), status, signal};
  // ChildProcess allows its destruction in its exit callback (spawn.h);
  // on_exit may destroy this.
  child_.reset();
  auto on_exit = on_exit_;
  on_exit(exit);
}

}  // namespace relsupd
