// daemon-reexec, the Daemon's side (docs/reexec.md): in the old image the
// refusals, the binary checks and the probe, the drain, the record and the
// exec, and Undo when the exec fails (§2.5, §2.6, §5.1, §5.2); in the new
// image the end of the adoption: the ledger event, the requester's answer
// and READY (§2.7 step 8, §6). The adoption itself is Daemon::Start with
// an Adoption (main.cc).
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "daemon/base/clock.h"
#include "daemon/base/failpoint.h"
#include "daemon/base/uv_work.h"
#include "daemon/base/version.h"
#include "daemon/daemon.h"
#include "daemon/protocol/jsonrpc.h"
#include "daemon/reexec/binary_check.h"
#include "daemon/reexec/exec.h"
#include "daemon/reexec/phase_mark.h"
#include "daemon/reexec/handover_fds.h"
#include "daemon/reexec/memfd.h"
#include "daemon/run/one_offs.h"

namespace relsupd {
namespace {

constexpr int kProbeTimeoutMs = 5'000;
// How long the drain waits for work already started (§2.5 step 3).
constexpr int64_t kDrainMs = 2'000;
constexpr uint64_t kDrainTickMs = 5;

int64_t NowMs() { return RealClock().MonotonicMs(); }

size_t InstanceCount(const SupervisorSnapshot& s) {
  size_t n = 0;
  for (const AppSnapshot& app : s.apps) {
    if (app.active) n += app.active->instances.size();
    for (const GroupSnapshot& g : app.retiring) n += g.instances.size();
  }
  return n;
}

}  // namespace

Status Daemon::RefuseReexec(const ReexecAsk& ask) const {
  if (shutting_down_) return Status(StatusCode::kBusy, "the daemon is stopping");
  if (reexec_) return Status(StatusCode::kBusy, "a re-exec is in progress; retry in a moment");
  if (self_path_.empty())
    return Status(StatusCode::kFailedPrecondition,
                  "the daemon could not read its own binary's path (/proc/self/exe) at start");
  if (ask.request && ask.connection_id == 0)
    return Internal("daemon.reexec came without a connection");
  return runs_->RefuseReexec(ask.kill_one_offs);
}

void Daemon::StartReexec(ReexecAsk ask) {
  Status refusal = RefuseReexec(ask);
  Result<Fd> binary = refusal.ok() ? OpenCheckedBinary(self_path_) : Result<Fd>(refusal);
  if (!binary.ok()) {
    spdlog::warn("Re-exec asked by {} refused: {}", ask.actor.name, binary.status().message());
    if (ask.reply) ask.reply(binary.status());
    return;
  }
  spdlog::info("Re-exec of {} asked by {}: probing it", self_path_, ask.actor.name);
  reexec_.emplace();
  reexec_->ask = std::move(ask);
  reexec_->binary = std::move(binary).value();
  const std::string path = self_path_;
  RunOffLoop<Result<ProbeAnswer>>(
      &loop_, [path] { return RunProbeOf(path, kProbeTimeoutMs); },
      [this](Result<ProbeAnswer> answer) { AfterProbe(std::move(answer)); });
}

void Daemon::AfterProbe(Result<ProbeAnswer> answer) {
  if (!reexec_ || runs_ == nullptr) return;  // ended meanwhile (shutdown)
  Status s = answer.ok() ? CheckProbeAnswer(self_path_, *answer, kHandoverVersion,
                                            ledger_->schema_version())
                         : answer.status();
  // The path must still name the file that was checked and probed (§5.1).
  struct stat probed{}, now{};
  if (s.ok() && (::fstat(reexec_->binary.get(), &probed) != 0 ||
                 ::stat(self_path_.c_str(), &now) != 0 || probed.st_dev != now.st_dev ||
                 probed.st_ino != now.st_ino))
    s = Status(StatusCode::kBusy, "'" + self_path_ + "' changed during the re-exec; retry");
  // What runs may have changed while the probe ran.
  if (s.ok()) s = runs_->RefuseReexec(reexec_->ask.kill_one_offs);
  if (!s.ok()) return EndReexec(s);
  reexec_->new_version = answer->version;
  reexec_->new_stops_standin = answer->standin;
  // Long work already running (an import, a verify) is waited for with
  // the input still open: frozen, every client would wait with it, and
  // again at each retry of `daemon-reexec --wait` (OnDrainTick). Queued
  // read jobs do not start meanwhile: a read-only peer keeping verifies
  // queued would hold every re-exec off.
  context_.read_jobs->Pause();
  reexec_->drain_started_ms = NowMs();
  uv_timer_start(drain_timer_.get(), &Daemon::OnDrainTick, 0, kDrainTickMs);
}

void Daemon::FreezeInput() {
  // Freeze the input: no new request reaches a handler; work already
  // started completes and its replies are written (§2.5).
  server_->Freeze();
  dispatcher_->Pause();
  context_.read_jobs->Pause();
  // Parked follows answer now (what they have, maybe nothing) instead of
  // holding the drain: their clients ask the new image next.
  polls_->AnswerAll();
  reexec_->frozen_ms = NowMs();
  if (reexec_->ask.kill_one_offs && runs_->one_offs()->running() > 0)
    runs_->one_offs()->KillAll();
  reexec_->drain_started_ms = NowMs();
}

void Daemon::OnDrainTick(uv_timer_t* t) {
  auto* self = static_cast<Daemon*>(t->data);
  if (self == nullptr || !self->reexec_) return;
  Pending& p = *self->reexec_;
  if (p.frozen_ms == 0) {
    const size_t running = InFlightWork();
    if (running > 0 && !p.wait_said) {
      spdlog::info("Re-exec waits up to 2 s for {} requests (imports, verifies) before it "
                   "freezes the control input",
                   running);
      p.wait_said = true;
    }
    if (running > 0 && NowMs() - p.drain_started_ms < kDrainMs) return;
    if (running > 0) {
      uv_timer_stop(t);
      return self->EndReexec(Status(
          StatusCode::kBusy, std::to_string(running) +
                                 " requests (imports, verifies) still run after 2 s; retry "
                                 "when they are done"));
    }
    self->FreezeInput();
  }
  const bool one_offs = p.ask.kill_one_offs && self->runs_->one_offs()->running() > 0;
  const bool closing = !self->closer_->empty();
  // The last re-exec's stand-in still exiting counts as work: its pid
  // and handed-back connections must not be lost in this exec.
  const size_t work = InFlightWork() + (self->standin_stopper_ && !self->standin_stopper_->done());
  const bool late = NowMs() - p.drain_started_ms >= kDrainMs;
  if ((one_offs || closing || work > 0) && !late) return;
  if (one_offs || closing || work > 0) {
    // Work still running would be cut off by the exec, and a passed file
    // still open would be closed inside execve (a close can block).
    uv_timer_stop(t);
    return self->EndReexec(Status(
        StatusCode::kBusy,
        one_offs  ? "the one-off processes did not end within 2 s; retry"
        : closing ? std::to_string(self->closer_->pending()) +
                        " passed files are still being closed; retry in a moment"
                  : std::to_string(work) +
                        " requests started before the re-exec (imports, verifies) still "
                        "run after 2 s; retry when they are done"));
  }
  if (!p.dropped_others) {
    // Every other connection goes now, and every queued line with the
    // files it carries: through the closer, which the next ticks wait for.
    self->server_->DropBusyBut(p.ask.connection_id);
    // No stand-in to take the idle ones: closed now, while the drain can
    // still wait for the closer (a close in execve could block).
    if (!p.new_stops_standin) self->server_->DropIdle(/*shared=*/false);
    self->dispatcher_->DropQueued();
    p.dropped_others = true;
    p.drain_started_ms = NowMs();
    if (!self->closer_->empty()) return;
  }
  // What the drain let finish may have started something that refuses.
  if (Status s = self->runs_->RefuseReexec(p.ask.kill_one_offs); !s.ok()) {
    uv_timer_stop(t);
    return self->EndReexec(s);
  }
  uv_timer_stop(t);
  self->Exec();
}

HandoverRecord Daemon::BuildRecord() const {
  HandoverRecord r;
  r.writer = kVersion;
  r.written_mono_ms = NowMs();
  r.actor = reexec_->ask.actor;
  r.daemon = DaemonSnapshot{.self_path = self_path_,
                            .supervisor_id = supervisor_id_,
                            .reexecs = reexecs_,
                            .first_started_mono_ms = first_started_ms_,
                            .child_nofile_soft = child_nofile_soft_,
                            .child_nofile_hard = child_nofile_hard_};
  r.config = config_;
  r.fds.lock = lock_.get();
  r.fds.listener = server_->listen_fd();
  r.fds.self_exe = reexec_->self_exe.get();
  r.notify = notify_listener_->Export();
  // The requester's connection by its id: one that went away meanwhile
  // (its fd number maybe reused by another peer) gets no answer.
  const int conn = server_->ConnectionFd(reexec_->ask.connection_id);
  if (reexec_->ask.request && conn >= 0) {
    r.request = reexec_->ask.request;
    r.request->conn_fd = conn;
  }
  RunSnapshot run = runs_->Export();
  r.supervisor = std::move(run.supervisor);
  r.app_sockets = std::move(run.app_sockets);
  r.switch_outcomes = std::move(run.switch_outcomes);
  r.next_switch_id = run.next_switch_id;
  r.one_offs_next_id = run.one_offs_next_id;
  return r;
}

void Daemon::Exec() {
  Pending& p = *reexec_;
  // The old binary, for the new image's exec back (§5.3).
  p.self_exe = Fd(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  notifier_->Reloading("Re-executing " + self_path_);
  logs_->Flush();
  // ps keeps answering, from a forked copy of this state, until the new
  // image accepts (§6.6); without a stand-in the window is silent.
  // A binary too old to stop it gets none: the window is silent then (its
  // idle connections were closed with the busy ones, in the drain).
  if (p.new_stops_standin) {
    auto standin = StartStandin(server_->listen_fd(), server_->IdleConnectionFds(), policy_,
                                config_.max_request_bytes, [this](Dispatcher* d) {
                                  RegisterStandinHandlers(d, &context_);
                                });
    // Without it the idle connections would be closed inside execve, where
    // a close can block (files passed with unread lines): undo instead.
    if (!standin.ok()) return Undo(standin.status(), {});
    standin_ = std::move(*standin);
    server_->DropIdle(/*shared=*/true);  // the stand-in's now
  }
  const PhaseMark m0 = MarkNow();
  const HandoverRecord record = BuildRecord();
  const PhaseMark m1 = MarkNow();
  auto memfd = WriteHandover(record);
  const PhaseMark m2 = MarkNow();
  if (!memfd.ok()) return Undo(memfd.status(), {});
  auto argv = OwnArgv();
  if (!argv.ok()) return Undo(argv.status(), {});
  const nlohmann::json pending = {{"from", kVersion}, {"to", p.new_version}, {"mono_ms", NowMs()}};
  // Not fsynced: it tells a cold start after a crash of this process, and
  // a machine that lost power restarts every app anyway.
  if (Status s = WriteFileAtomic(ReexecPendingPath(), pending.dump() + "\n", 0600,
                                 /*durable=*/false);
      !s.ok())
    return Undo(s, {});
  Failpoint("reexec-after-pending");
  std::vector<int> fds = HandoverFdList(record);
  fds.push_back(memfd->get());
  // stdin, stdout and stderr too: uv_disable_stdio_inheritance set them
  // close-on-exec, and the new image logs to the same journal stream.
  for (int std_fd : {0, 1, 2})
    if (::fcntl(std_fd, F_GETFD) >= 0) fds.push_back(std_fd);
  std::vector<std::pair<std::string, std::string>> env = {
      {kHandoverFdEnv, std::to_string(memfd->get())},
      {kReexecSelfFdEnv, std::to_string(p.self_exe.get())}};
  // Always set: a value inherited from the cold start's environment must
  // not name fds of this image.
  env.emplace_back(kStandinEnv, standin_ ? StandinEnvValue(*standin_) : "");
  if (standin_) {
    fds.push_back(standin_->pidfd.get());
    fds.push_back(standin_->stop.get());
    fds.push_back(standin_->handback.get());
  }
  const PhaseMark m3 = MarkNow();
  if (Status s = ClearCloexec(fds); !s.ok()) return Undo(s, fds);
  const PhaseMark m4 = MarkNow();
  spdlog::info("Re-executing {} (relsupd {} -> {}), {} instances, handover {} fds; "
               "drained in {} ms; record built {}, written {}, pending {}, cloexec {}",
               self_path_, kVersion, p.new_version, InstanceCount(record.supervisor),
               fds.size(), record.written_mono_ms - p.frozen_ms, Between(m0, m1),
               Between(m1, m2), Between(m2, m3), Between(m3, m4));
  spdlog::default_logger()->flush();
  // Pending stop signals wait for the new image's handlers (§2.6 step 6).
  BlockStopSignals();
  env.emplace_back(kReexecExecUsEnv, std::to_string(MarkNow().us));
  Status failed = ExecFd(p.binary.get(), self_path_, *argv, env);
  // Still here: nothing was replaced (§5.2). A SIGUSR2 of the window
  // would start the same re-exec again.
  DiscardPendingUsr2();
  UnblockStopSignals();
  Undo(failed, fds);
}

void Daemon::StopStandinIfAny() {
  if (!standin_) return;
  standin_stopper_ = std::make_unique<StandinStopper>(
      &loop_, std::move(*standin_), [this](Fd fd) { server_->TakeConnection(std::move(fd)); });
  standin_.reset();
}

void Daemon::Undo(const Status& why, const std::vector<int>& cleared) {
  SetCloexec(cleared).IgnoreError();
  StopStandinIfAny();
  ::unlink(ReexecPendingPath().c_str());
  spdlog::error("Re-exec failed: {}; relsupd {} keeps running", why.message(), kVersion);
  notifier_->ReloadDone("Re-exec failed: " + why.message());
  EndReexec(Status(StatusCode::kUnavailable,
                   why.message() + "; relsupd " + std::string(kVersion) + " (pid " +
                       std::to_string(getpid()) + ") keeps running"));
}

void Daemon::EndReexec(const Status& refusal) {
  if (!reexec_) return;
  Pending p = std::move(*reexec_);
  reexec_.reset();
  uv_timer_stop(drain_timer_.get());
  server_->Thaw();
  dispatcher_->Resume();
  context_.read_jobs->Resume();
  if (!refusal.ok())
    spdlog::warn("Re-exec asked by {} refused: {}", p.ask.actor.name, refusal.message());
  if (p.ask.reply) p.ask.reply(refusal);
}

void Daemon::FinishAdoption(const Adoption& a) {
  const HandoverRecord& r = a.record;
  const bool fell_back = !a.fallback.empty();
  const int64_t window_ms = NowMs() - r.written_mono_ms;
  const std::string detail =
      fell_back ? a.fallback + "; running " + std::string(kVersion) + " again"
                : r.writer + " -> " + std::string(kVersion);
  Status event = ledger_->AppendEvent("", EventKind::kReexec, ReleaseId{}, r.actor, detail);
  if (!event.ok()) spdlog::warn("Cannot record the re-exec: {}, ignoring", event.message());
  if (r.request) {
    rpc::Json id = rpc::Json::parse(r.request->rpc_id, nullptr, false);
    if (id.is_discarded()) id = nullptr;
    const rpc::Json result = {{"old_version", r.writer},
                              {"new_version", kVersion},
                              {"pid", static_cast<int64_t>(getpid())},
                              {"exe", self_path_},
                              {"instances", InstanceCount(r.supervisor)},
                              {"window_ms", window_ms},
                              {"outcome", fell_back ? "fell-back" : "ok"}};
    rpc::Json response =
        fell_back ? rpc::MakeError(id, rpc::CodeForStatus(Status(StatusCode::kUnavailable, "")),
                                   a.fallback + "; back on relsupd " + std::string(kVersion))
                  : rpc::MakeResult(id, result);
    if (fell_back) response["error"]["data"] = result;
    server_->AdoptConnection(Fd(r.request->conn_fd), rpc::Frame(response));
  }
  // This image accepts from here: the stand-in answers what it accepted,
  // then exits.
  StopStandinIfAny();
  ::unlink(ReexecPendingPath().c_str());
  if (a.memfd >= 0) ::close(a.memfd);
  if (a.self_fd >= 0) ::close(a.self_fd);
  if (DiscardPendingUsr2()) spdlog::info("SIGUSR2 during the re-exec, ignored");
  UnblockStopSignals();
  const PhaseMark done = MarkNow();
  const PhaseMark start = ImageStartMark();
  spdlog::info("relsupd daemon re-executed (pid {}): {}, {} instances adopted, {} ms since "
               "the handover was written (written to exec {:.1f} ms, exec to start {:.1f}, "
               "start to main {}, read {}, fd checks {}, to the ledger {}, adoption {})",
               getpid(), detail, InstanceCount(r.supervisor), window_ms,
               static_cast<double>(a.exec_us) / 1000.0 - static_cast<double>(r.written_mono_ms),
               static_cast<double>(start.us - a.exec_us) / 1000.0, Between(start, a.main),
               Between(a.main, a.read), Between(a.read, a.checked), Between(a.checked, adopt_ledger_mark_),
               Between(adopt_ledger_mark_, done));
  notifier_->ReexecDone("Ready: re-executed " + detail);
}

void Daemon::NoteInterruptedReexec() {
  auto text = ReadFile(ReexecPendingPath(), 4096);
  if (!text.ok()) return;
  auto pending = nlohmann::json::parse(*text, nullptr, false);
  std::string from = "?", to = "?";
  if (pending.is_object()) {
    from = pending.value("from", from);
    to = pending.value("to", to);
  }
  const std::string detail = from + " -> " + to + " interrupted: the daemon restarted cold";
  spdlog::warn("A re-exec was interrupted ({}): its apps were restarted", detail);
  Status s = ledger_->AppendEvent("", EventKind::kReexec, ReleaseId{}, Actor{0, "relsupd"}, detail);
  if (!s.ok()) spdlog::warn("Cannot record it: {}, ignoring", s.message());
  ::unlink(ReexecPendingPath().c_str());
}

}  // namespace relsupd
