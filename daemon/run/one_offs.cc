#include "daemon/run/one_offs.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>

#include "daemon/base/release_id.h"
#include "daemon/base/uv_handle.h"
#include "daemon/supervise/exec_step.h"

namespace relsupd {
namespace {

// The signals a client may forward; a byte naming another one is ignored
// (it is the client's own process, but SIGKILL and SIGSTOP are the
// daemon's to send).
bool Forwardable(int signum) {
  switch (signum) {
    case SIGINT:
    case SIGTERM:
    case SIGHUP:
    case SIGQUIT:
    case SIGUSR1:
    case SIGUSR2:
      return true;
    default:
      return false;
  }
}

std::string ExitText(const OneOffExit& e) {
  if (!e.error.empty()) return "exit " + std::to_string(e.exit_status);
  ExitInfo info;
  info.status = e.exit_status;
  info.signal = e.signal;
  return info.Describe();
}

}  // namespace

std::string CommandLine(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain =
        !a.empty() &&
        a.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
            "KLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") == std::string::npos;
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) {
      if (c == '\'')
        out += "'\\''";
      else
        out += c;
    }
    out += '\'';
  }
  return out;
}

struct OneOffs::Running {
  OneOffs* owner = nullptr;
  int64_t id = 0;
  std::shared_ptr<ReleaseRun> run;
  std::string command;  // CommandLine(argv)
  Actor actor;
  std::unique_ptr<OneOff> process;
  Fd control;
  UvHandle<uv_poll_t> control_poll;
  int64_t started_ms = 0;  // monotonic
  uid_t uid = 0;
  std::function<void(const OneOffExit&)> done;
  std::string name() const { return "run." + std::to_string(id); }
};

OneOffs::OneOffs(SuperviseEnv* env, Ledger* ledger, LoadRunFn load_run)
    : env_(env), ledger_(ledger), load_run_(std::move(load_run)) {}

OneOffs::~OneOffs() { KillAll(); }

Status OneOffs::Start(OneOffRequest req,
                      std::function<void(const OneOffExit&)> done) {
  if (running_.size() >= kMaxRunning)
    return Status(StatusCode::kBusy,
                  "too many one-off processes are running (" +
                      std::to_string(kMaxRunning) + ")");
  int64_t number = req.release;
  if (number == 0) {
    ASSIGN_OR_RETURN(Ledger::Activation act, ledger_->ActivationOf(req.app));
    if (act.active == 0)
      return FailedPrecondition("app '" + req.app +
                                "' has no active release; activate one or "
                                "name one with --release");
    number = act.active;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<ReleaseRun> run, load_run_(req.app, number));

  auto r = std::make_unique<Running>();
  r->owner = this;
  r->id = next_id_++;
  r->run = run;
  r->command = CommandLine(req.argv);
  r->actor = req.actor;
  r->done = std::move(done);
  r->uid = run->uid.value_or(::geteuid());
  // RELSUPD_PROCESS is "run" (the name run.N is for logs, ps and cgroups).
  OneOffSpec spec = OneOffOf(*run, *env_, "run", req.argv);
  spec.name = r->name();
  spec.stdio = req.stdio;
  spec.controlling_tty = req.tty;

  // Who ran what is recorded before it runs: no record, no run.
  RETURN_IF_ERROR(ledger_
                      ->AppendEvent(run->app, EventKind::kRunStarted,
                                    ReleaseId(number), req.actor,
                                    r->name() + ": " + r->command)
                      .WithContext("cannot record the run in the ledger"));
  Running* raw = r.get();
  auto process =
      OneOff::Start(env_, std::move(spec),
                    [this, raw](const ExitInfo& e) { OnExit(raw, e); });
  if (!process.ok()) {
    OneOffExit e{run->app,
                 number,
                 r->id,
                 0,
                 ExecStepExitCode(process.status()),
                 0,
                 process.status().message()};
    spdlog::info("{} {} {}: {}", run->app, run->release(), r->name(), e.error);
    Status s = ledger_->AppendEvent(run->app, EventKind::kRan,
                                    ReleaseId(number), req.actor,
                                    r->name() + " " + ExitText(e) + ": " +
                                        r->command + " (" + e.error + ")");
    if (!s.ok()) spdlog::warn("{}, ignoring", s.message());
    r->done(e);
    return Status::Ok();
  }
  r->process = std::move(*process);
  r->started_ms = env_->clock->MonotonicMs();
  spdlog::info("{} {} {} started (pid {}) by {}: {}", run->app, run->release(),
               r->name(), r->process->pid(), req.actor.name, r->command);

  r->control = std::move(req.control);
  uv_poll_init(env_->loop, r->control_poll.get(), r->control.get());
  r->control_poll->data = raw;
  uv_poll_start(r->control_poll.get(), UV_READABLE | UV_DISCONNECT,
                [](uv_poll_t* p, int, int) {
                  auto* one = static_cast<Running*>(p->data);
                  if (one != nullptr) one->owner->OnControl(one);
                });
  running_.emplace(r->id, std::move(r));
  return Status::Ok();
}

void OneOffs::OnControl(Running* r) {
  // At most 64 signals a turn: a client that floods the pipe delays
  // nobody but itself.
  unsigned char buf[64];
  ssize_t n = ::read(r->control.get(), buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    // The client is gone (or its pipe broke): its process goes with it.
    spdlog::info("{} {}: the client went away, killing it", r->run->app,
                 r->name());
    r->control_poll.Close();
    r->process->Kill();
    return;
  }
  for (ssize_t i = 0; i < n; ++i) {
    if (!Forwardable(buf[i])) continue;
    Status s = r->process->Signal(buf[i]);
    if (!s.ok())
      spdlog::debug("{} {}: {}", r->run->app, r->name(), s.message());
  }
}

void OneOffs::OnExit(Running* r, const ExitInfo& exit) {
  auto it = running_.find(r->id);
  if (it == running_.end()) return;
  std::unique_ptr<Running> owned = std::move(it->second);
  running_.erase(it);
  OneOffExit e{r->run->app, r->run->number, r->id, r->process->pid(),
               exit.status, exit.signal,    ""};
  spdlog::info("{} {} {} (pid {}) ended: {}", e.app, r->run->release(),
               r->name(), e.pid, exit.Describe());
  Status s = ledger_->AppendEvent(
      e.app, EventKind::kRan, ReleaseId(e.release), r->actor,
      r->name() + " " + exit.Describe() + ": " + r->command);
  if (!s.ok()) spdlog::warn("{}, ignoring", s.message());
  r->control_poll.Close();
  auto done = std::move(r->done);
  // The OneOff may be destroyed in its exit callback (one_off.h).
  owned.reset();
  if (on_ended_) on_ended_(e.app);
  done(e);
}

std::vector<PsRow> OneOffs::PsRows(
    const std::optional<std::string>& app) const {
  std::vector<PsRow> rows;
  const int64_t now = env_->clock->MonotonicMs();
  for (const auto& [id, r] : running_) {
    if (app && *app != r->run->app) continue;
    PsRow row;
    row.app = r->run->app;
    row.release = r->run->release();
    row.process = r->name();
    row.type = "run";
    row.pid = r->process->pid();
    row.state = "running";
    row.uptime_ms = now - r->started_ms;
    row.status = r->command;
    row.uid = r->uid;
    rows.push_back(std::move(row));
  }
  return rows;
}

std::set<int64_t> OneOffs::InUse(const std::string& app) const {
  std::set<int64_t> out;
  for (const auto& [id, r] : running_)
    if (r->run->app == app) out.insert(r->run->number);
  return out;
}

void OneOffs::KillAll() {
  for (auto& [id, r] : running_) r->process->Kill();
}

}  // namespace relsupd
