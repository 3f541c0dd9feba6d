// Wiring only: config, lock, ledger, control socket, signals, systemd.
#include "daemon/main.h"

#include "daemon/daemon.h"

#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdlib>
#include <csignal>
#include <filesystem>
#include <memory>

#include "daemon/base/clock.h"
#include "daemon/base/failpoint.h"
#include "daemon/base/version.h"
#include "daemon/reexec/memfd.h"
#include "daemon/base/fd.h"
#include "daemon/base/fd_closer.h"
#include "daemon/base/lock.h"
#include "daemon/base/paths.h"
#include "daemon/base/users.h"
#include "daemon/base/uv_handle.h"
#include "daemon/base/uv_work.h"
#include "daemon/config/daemon_config.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/handlers.h"
#include "daemon/control/params.h"
#include "daemon/control/server.h"
#include "daemon/ledger/ledger.h"
#include "daemon/logs/log_store.h"
#include "daemon/logs/logging.h"
#include "daemon/notify/notifier.h"
#include "daemon/reexec/exec.h"
#include "daemon/reexec/handover_fds.h"
#include "daemon/run/run_service.h"
#include "daemon/store/layout.h"
#include "daemon/store/release_service.h"
#include "daemon/supervise/cgroup.h"
#include "daemon/supervise/exec_step.h"
#include "daemon/supervise/leftovers.h"
#include "daemon/supervise/notify_socket.h"

namespace relsupd {
namespace {

std::string Absolute(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal().string();
}

// A missing group is tolerated: nobody is a member of it.
std::optional<gid_t> GroupOrWarn(const std::string& name, const char* key) {
  auto gid = LookupGroup(name);
  if (gid.ok()) return *gid;
  spdlog::warn("{} '{}': {}, ignoring", key, name, gid.status().message());
  return std::nullopt;
}

}  // namespace

Daemon::Daemon(DaemonOptions options) : options_(std::move(options)) {
  uv_loop_init(&loop_);
}

Daemon::~Daemon() {
  standin_stopper_.reset();  // its take() needs server_
  // The parked follows answer while their connections still exist.
  if (polls_ != nullptr) polls_->Close();
  metrics_http_.reset();
  server_.reset();
  if (dispatcher_ != nullptr) dispatcher_->Stop();
  context_.read_jobs->Stop();
  // Whatever still runs is killed here (a second signal, or a failed
  // start); a clean stop has stopped every instance already.
  runs_.reset();
  notify_listener_.reset();
  flush_check_.Close();
  trim_timer_.Close();
  drain_timer_.Close();
  if (logs_ != nullptr) logs_->Flush();
  logs_.reset();
  cgroups_.reset();
  notifier_.reset();
  releases_.reset();
  for (auto& s : signals_) s.Close();
  if (CloseLoop(&loop_) != 0)
    spdlog::warn("Event loop did not close cleanly, ignoring");
}

StoreLimits Daemon::Limits() const {
  StoreLimits l;
  l.max_artifact_bytes = config_.max_artifact_bytes;
  l.max_unpacked_bytes = config_.max_unpacked_bytes;
  l.max_entries = config_.max_entries;
  l.max_compression_ratio = config_.max_compression_ratio;
  return l;
}

namespace {

BackoffPolicy BackoffFrom(const DaemonConfig& c) {
  BackoffPolicy b;
  b.initial_ms = c.restart_initial_delay_ms;
  b.cap_ms = c.restart_max_delay_ms;
  b.reset_after_ms = c.restart_reset_after_ms;
  b.max_crashes = static_cast<int>(c.crash_limit);
  b.window_ms = c.crash_window_ms;
  return b;
}

}  // namespace

Status Daemon::StartCgroups(const Adoption* adopt) {
  if (adopt != nullptr) {
    // Nothing in the adopted tree is killed: its processes are ours.
    const auto& snapshot = adopt->record.supervisor.cgroups;
    if (!snapshot) return Status::Ok();
    auto tree = CgroupTree::Adopt(&loop_, *snapshot);
    if (tree.ok()) {
      cgroups_ = std::move(tree).value();
    } else {
      spdlog::warn("{}: instances start without cgroups from now on",
                   tree.status().message());
    }
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(cgroups_, SetUpDaemonCgroups(&loop_, config_.cgroup));
  // Descendants that outlived a killed daemon (PR_SET_PDEATHSIG only
  // reaches direct children) end before anything starts again.
  int leftovers = KillLeftovers(supervisor_id_);
  if (leftovers > 0)
    spdlog::warn("Ended {} app processes a previous daemon left running",
                 leftovers);
  return Status::Ok();
}

void Daemon::TrimHeap(uv_timer_t* timer) {
  auto* self = static_cast<Daemon*>(timer->data);
  if (self == nullptr || self->trimming_ || self->reexec_) return;
  // On the pool: a trim walks the free heap (1 to 10 ms with 1,000
  // instances), which the loop need not wait for.
  self->trimming_ = true;
  RunOffLoop<bool>(
      &self->loop_, [] { return malloc_trim(0) != 0; },
      [self](bool) { self->trimming_ = false; });
}

Status Daemon::OpenNotify(const Adoption* adopt, const std::string& path) {
  auto on_notify = [this](pid_t pid, const std::map<std::string, std::string>& f) {
    runs_->supervisor()->OnNotify(pid, f);
  };
  if (adopt != nullptr && adopt->record.notify) {
    // Never bound again: the children's NOTIFY_SOCKET stays right.
    notify_listener_ =
        NotifyListener::Adopt(&loop_, *adopt->record.notify, closer_.get(), on_notify);
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(notify_listener_,
                   NotifyListener::Open(&loop_, path, closer_.get(), on_notify));
  return Status::Ok();
}

Status Daemon::StartRunStage(const Adoption* adopt) {
  // Up to 1,000s of children with two pipes each: raise the soft fd limit
  // to the hard one; children get the original soft limit back (select()).
  // A re-exec'd image finds it raised already: the original crossed.
  struct rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  child_nofile_soft_ = adopt ? adopt->record.daemon.child_nofile_soft : nofile.rlim_cur;
  child_nofile_hard_ = adopt ? adopt->record.daemon.child_nofile_hard : nofile.rlim_max;
  const ExecRlimit child_nofile{RLIMIT_NOFILE, child_nofile_soft_, child_nofile_hard_};
  struct rlimit raised = nofile;
  raised.rlim_cur = nofile.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &raised) != 0)
    spdlog::warn("Cannot raise the fd limit: {}, ignoring", strerror(errno));

  // Up to a quarter of the fd table for fds peers pass and we close.
  getrlimit(RLIMIT_NOFILE, &raised);
  closer_ = std::make_unique<FdCloser>(std::clamp<size_t>(
      static_cast<size_t>(std::min<rlim_t>(raised.rlim_cur / 4, 1 << 20)),
      4 * FdCloser::kMaxFdsPerMessage, FdCloser::kDefaultCapacity));

  // Spawns cost the same with 3,000 fds open as with 30 (exec_step.h).
  if (Status s = ReserveSpawnSlots(); !s.ok())
    spdlog::warn("{}: each spawn copies the fd table, ignoring", s.message());

  ASSIGN_OR_RETURN(supervisor_id_, SupervisorId(config_.state_dir));
  RETURN_IF_ERROR(StartCgroups(adopt));

  LogStoreOptions log_options;
  log_options.max_file_bytes = config_.log_max_file_bytes;
  log_options.max_files = static_cast<int>(config_.log_max_files);
  log_options.journal = getenv("JOURNAL_STREAM") != nullptr;
  ASSIGN_OR_RETURN(logs_, LogStore::Open(LogsDir(config_.state_dir),
                                         log_options, RealClock()));
  // glibc keeps freed heap pages for good (after a switch of 1,000
  // instances, 5 of the daemon's 24 MiB); every 5 s they go back.
  uv_timer_init(&loop_, trim_timer_.get());
  trim_timer_->data = this;
  uv_timer_start(trim_timer_.get(), &Daemon::TrimHeap, kTrimIntervalMs, kTrimIntervalMs);
  uv_unref(trim_timer_.handle());
  uv_check_init(&loop_, flush_check_.get());
  flush_check_->data = this;
  // After each loop iteration: what the children wrote reaches the files.
  uv_check_start(flush_check_.get(), [](uv_check_t* h) {
    auto* self = static_cast<Daemon*>(h->data);
    if (self != nullptr && self->logs_ != nullptr) self->logs_->Flush();
  });

  SuperviseEnv env;
  env.loop = &loop_;
  env.clock = &RealClock();
  env.logs = logs_.get();
  env.supervisor_id = supervisor_id_;
  env.child_rlimits = {child_nofile};
  env.backoff = BackoffFrom(config_);
  env.log_rate.bytes_per_sec = static_cast<int64_t>(config_.log_rate_limit);
  env.log_rate.burst = static_cast<int64_t>(config_.log_rate_limit);
  env.cgroups = cgroups_.get();
  const unsigned controllers = cgroups_ != nullptr ? cgroups_->controllers() : 0;
  env.memory_by_cgroup = (controllers & kCgroupMemory) != 0;
  spdlog::info("Limits: memory by {}; pids {}; cpu {}; nofile by RLIMIT_NOFILE",
               env.memory_by_cgroup ? "cgroup memory.max (OOM kills read from memory.events)"
                                    : "an RSS watch every " +
                                          std::to_string(Supervisor::kUsageIntervalMs / 1000) +
                                          "s (no cgroup memory controller)",
               controllers & kCgroupPids ? "by cgroup pids.max" : "not enforced (no pids controller)",
               controllers & kCgroupCpu ? "by cgroup cpu.max" : "not enforced (no cpu controller)");
  std::string notify_path = NotifySocketPath(config_.socket);
  env.notify_socket = notify_path;
  runs_ = std::make_unique<RunService>(std::move(env), ledger_.get(),
                                       releases_.get(), config_.state_dir);
  runs_->set_socket_guard({config_.state_dir, {config_.socket, notify_path}});
  runs_->set_feed(feed_.get());
  // A parked `logs -f` of the app wakes with each new line.
  logs_->set_on_append([this](const std::string& app) {
    if (polls_->size() == 0) return;
    polls_->Poke("logs:" + app);
    polls_->Poke("logs:*");
  });
  RETURN_IF_ERROR(OpenNotify(adopt, notify_path));
  context_.runs = runs_.get();
  context_.closer = closer_.get();
  context_.logs = logs_.get();
  if (adopt != nullptr) {
    const HandoverRecord& r = adopt->record;
    runs_->Adopt(RunSnapshot{.supervisor = r.supervisor,
                             .app_sockets = r.app_sockets,
                             .switch_outcomes = r.switch_outcomes,
                             .next_switch_id = r.next_switch_id,
                             .one_offs_next_id = r.one_offs_next_id});
    return Status::Ok();
  }
  // The `current` links and the ledger agree before anything runs.
  runs_->Recover();
  runs_->BringUp();
  return Status::Ok();
}

Result<DaemonConfig> Daemon::ReadConfig() const {
  DaemonConfig c;
  if (!options_.config_path.empty()) {
    ASSIGN_OR_RETURN(c, LoadDaemonConfig(options_.config_path));
  }
  if (!options_.state_dir.empty()) c.state_dir = options_.state_dir;
  if (!options_.socket.empty()) c.socket = options_.socket;
  c.state_dir = Absolute(c.state_dir);
  c.socket = Absolute(c.socket);
  return c;
}

void Daemon::SecureAppDirs() {
  auto apps = ledger_->ListApps();
  if (!apps.ok()) return;  // the run stage reports it
  for (const AppSpec& app : *apps) {
    auto as = RunAsOf(app);
    Status s = as.ok() ? SecureAppDir(config_.state_dir, app.name, as->gid)
                       : as.status();
    // Left as it is: the app's next start fixes it or fails with the reason.
    if (!s.ok()) spdlog::warn("app {}: {}, ignoring", app.name, s.message());
  }
}

void Daemon::ApplyPolicy() {
  policy_.daemon_uid = geteuid();
  policy_.admin_group = config_.admin_group;
  policy_.socket_group = config_.socket_group;
  policy_.admin_gid = GroupOrWarn(config_.admin_group, "admin_group");
  policy_.socket_gid = GroupOrWarn(config_.socket_group, "socket_group");
  context_.allow_root_apps = config_.allow_root_apps;
  context_.app_uid_min = config_.app_uid_min;
  context_.app_uid_max = config_.app_uid_max;
}

void Daemon::WireHandlers() {
  context_.loop = &loop_;
  context_.ledger = ledger_.get();
  context_.releases = releases_.get();
  context_.clock = &RealClock();
  context_.state_dir = config_.state_dir;
  context_.socket = config_.socket;
  context_.started_ms = first_started_ms_;
  context_.image_started_ms = RealClock().MonotonicMs();
  context_.reexecs = reexecs_;
  context_.reexec = [this](const Request& r, Reply reply) {
    if (r.in_batch) return reply(InvalidArgument("daemon.reexec cannot be sent in a batch"));
    ReexecAsk ask;
    ask.actor = params::ActorOf(r.peer);
    ask.reply = std::move(reply);
    auto kill = r.params.find("kill_one_offs");
    ask.kill_one_offs = kill != r.params.end() && kill->is_boolean() && kill->get<bool>();
    // A notification (no id) is answered by nobody, as SIGUSR2.
    if (!r.id.is_null()) {
      ask.request = RequestSnapshot{.conn_fd = -1, .rpc_id = r.id.dump(),
                                    .pid = r.peer.pid, .uid = r.peer.uid, .gid = r.peer.gid,
                                    .kill_one_offs = ask.kill_one_offs};
      ask.connection_id = r.peer.connection_id;
    }
    StartReexec(std::move(ask));
  };
  dispatcher_ = std::make_unique<Dispatcher>(&policy_);
  RegisterHandlers(dispatcher_.get(), &context_);
  RegisterReleaseHandlers(dispatcher_.get(), &context_);
  RegisterProcessHandlers(dispatcher_.get(), &context_);
  RegisterFeedHandlers(dispatcher_.get(), &context_);
  RegisterRunHandlers(dispatcher_.get(), &context_);
}

Status Daemon::TakeConfig(const Adoption* adopt) {
  if (adopt == nullptr) {
    ASSIGN_OR_RETURN(config_, ReadConfig());
    auto exe = OwnExePath();
    self_path_ = exe.ok() ? *exe : "";
    first_started_ms_ = RealClock().MonotonicMs();
    return Status::Ok();
  }
  // The carried config when the file cannot be read now; the state dir
  // and socket are the carried ones either way (§1.1).
  auto fresh = ReadConfig();
  if (!fresh.ok())
    spdlog::warn("{}: keeping the config the previous image ran with",
                 fresh.status().message());
  config_ = fresh.ok() ? *fresh : adopt->record.config;
  config_.state_dir = adopt->record.config.state_dir;
  config_.socket = adopt->record.config.socket;
  self_path_ = adopt->record.daemon.self_path;
  first_started_ms_ = adopt->record.daemon.first_started_mono_ms;
  reexecs_ = adopt->record.daemon.reexecs + 1;
  return Status::Ok();
}

void Daemon::StartSignals() {
  const int signums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2};
  for (int i = 0; i < 4; ++i) {
    uv_signal_init(&loop_, signals_[i].get());
    signals_[i]->data = this;
    uv_signal_start(signals_[i].get(), &Daemon::OnSignal, signums[i]);
  }
  uv_timer_init(&loop_, drain_timer_.get());
  drain_timer_->data = this;
}

Status Daemon::Start(const Adoption* adopt, bool* committed) {
  RETURN_IF_ERROR(TakeConfig(adopt));
  RETURN_IF_ERROR(SetLogLevel(config_.log_level));
  // Traversable by the apps, listable by nobody (store/layout.h); an older
  // relsupd's 0750/0755 directories are narrowed here.
  RETURN_IF_ERROR(SecureStateDir(config_.state_dir));
  if (geteuid() == 0) {
    if (auto blocked = UntraversableParent(config_.state_dir))
      spdlog::warn("State dir {}: {} cannot be searched by others, so apps that run as their "
                   "own users cannot reach their releases there (EACCES at their start); "
                   "chmod o+x it, or use a state dir under /var/lib",
                   config_.state_dir, *blocked);
    // The notify socket lives beside the control socket (below).
    const std::string notify = NotifySocketPath(config_.socket);
    if (auto blocked = UntraversableParent(notify))
      spdlog::warn("Notify socket {}: {} cannot be searched by others, so apps that run as "
                   "their own users cannot send READY=1 or WATCHDOG=1 (`ready: notify` and "
                   "`watchdog:` fail for them); chmod o+x it, or put the control socket "
                   "elsewhere",
                   notify, *blocked);
  }
  if (adopt == nullptr) {
    ASSIGN_OR_RETURN(lock_, LockDirectory(config_.state_dir));
  }
  // Stage B of an adoption (§5.3): a migration that succeeded is the point
  // of no return, so a failed open may still exec back.
  ASSIGN_OR_RETURN(ledger_, Ledger::Open(config_.state_dir + "/ledger.db",
                                         RealClock()));
  if (committed != nullptr) *committed = true;
  if (adopt != nullptr) adopt_ledger_mark_ = MarkNow();
  // ctl events: ledger events as they commit, and (StartRunStage)
  // instance state changes; each wakes the parked `events -f`.
  polls_ = std::make_unique<LongPolls>(&loop_);
  feed_ = std::make_unique<EventFeed>(std::to_string(getpid()) + "-" +
                                      std::to_string(RealClock().WallMs()));
  feed_->set_on_add([this](const FeedEntry&) { polls_->Poke("events"); });
  ledger_->set_on_event([this](const Event& e) {
    FeedEntry f;
    f.time_ms = e.time_ms;
    f.app = e.app;
    f.kind = e.kind;
    f.release = e.release;
    f.detail = e.detail;
    f.actor = e.actor_name.empty() ? "uid " + std::to_string(e.actor_uid) : e.actor_name;
    f.event_id = e.id;
    feed_->Add(std::move(f), RealClock().WallMs());
  });
  context_.feed = feed_.get();
  context_.polls = polls_.get();
  if (adopt != nullptr) {
    // From here the carried fds are this image's: closed at any later exec.
    std::vector<int> carried = HandoverFdList(adopt->record);
    carried.push_back(adopt->memfd);
    if (adopt->self_fd >= 0) carried.push_back(adopt->self_fd);
    if (auto standin = ParseStandinEnv(adopt->standin.c_str())) {
      carried.push_back(standin->pidfd.get());
      carried.push_back(standin->stop.get());
      carried.push_back(standin->handback.get());
      standin_ = std::move(*standin);
    }
    SetCloexec(carried).IgnoreError();  // each was checked in stage A
    uv_disable_stdio_inheritance();
    lock_ = Fd(adopt->record.fds.lock);
  } else {
    NoteInterruptedReexec();
  }
  SecureAppDirs();
  releases_ = std::make_unique<ReleaseService>(&loop_, ledger_.get(),
                                               config_.state_dir, Limits());
  Status recovered = releases_->Recover().WithContext("recovery");
  // Past the point of no return a failure here would end every app.
  if (!recovered.ok() && adopt != nullptr)
    spdlog::warn("{}, ignoring until the next start", recovered.message());
  else
    RETURN_IF_ERROR(recovered);
  ApplyPolicy();
  WireHandlers();

  StartSignals();

  std::string socket_dir =
      std::filesystem::path(config_.socket).parent_path().string();
  RETURN_IF_ERROR(MakeDirs(socket_dir, 0755));
  RETURN_IF_ERROR(StartRunStage(adopt));
  // After StartRunStage, which makes the closer; nothing reaches the
  // dispatcher before the server below listens.
  dispatcher_->RunOnLoop(&loop_, closer_.get());
  server_ = std::make_unique<ControlServer>(&loop_, dispatcher_.get(), &policy_,
                                            closer_.get(),
                                            config_.max_request_bytes);
  // A parked `logs -f` or `events -f` whose client left frees its place.
  server_->set_on_drop([this](uint64_t connection) {
    if (polls_) polls_->Forget(connection);
  });
  notifier_ = std::make_unique<Notifier>(&loop_);
  notifier_->StartWatchdog();
  StartMetricsHttp();
  if (adopt != nullptr) {
    RETURN_IF_ERROR(server_->AdoptListener(Fd(adopt->record.fds.listener), config_.socket));
    Status s = server_->SetSocketAccess(config_.socket_mode, policy_.socket_gid);
    if (!s.ok()) spdlog::warn("{}, ignoring", s.message());
    FinishAdoption(*adopt);
    return Status::Ok();
  }
  RETURN_IF_ERROR(server_->Listen(config_.socket, config_.socket_mode,
                                  policy_.socket_gid));
  auto apps = ledger_->ListApps();
  std::string status = "Ready: " +
                       std::to_string(apps.ok() ? apps->size() : 0) +
                       " apps, control socket " + config_.socket;
  spdlog::info("relsupd daemon started (pid {}), state dir {}, control socket {}",
               getpid(), config_.state_dir, config_.socket);
  notifier_->Ready(status);
  return Status::Ok();
}

void Daemon::Reload() {
  notifier_->Reloading();
  auto fresh = ReadConfig();
  if (!fresh.ok()) {
    spdlog::error("Reload failed, keeping the old config: {}",
                  fresh.status().message());
    notifier_->ReloadDone("Reload failed: " + fresh.status().message());
    return;
  }
  if (fresh->state_dir != config_.state_dir)
    spdlog::warn("state_dir changed to {}: takes effect at restart, ignoring",
                 fresh->state_dir);
  if (fresh->socket != config_.socket)
    spdlog::warn("socket changed to {}: takes effect at restart, ignoring",
                 fresh->socket);
  fresh->state_dir = config_.state_dir;
  fresh->socket = config_.socket;
  config_ = *fresh;
  SetLogLevel(config_.log_level).IgnoreError();  // validated by the parser
  ApplyPolicy();
  server_->set_max_request_bytes(config_.max_request_bytes);
  releases_->set_limits(Limits());
  // Restart and log policies apply to instances started from now on.
  SuperviseEnv* env = runs_->supervisor()->env();
  env->backoff = BackoffFrom(config_);
  env->log_rate.bytes_per_sec = static_cast<int64_t>(config_.log_rate_limit);
  env->log_rate.burst = static_cast<int64_t>(config_.log_rate_limit);
  Status s = server_->SetSocketAccess(config_.socket_mode, policy_.socket_gid);
  if (!s.ok()) spdlog::warn("{}, ignoring", s.message());
  spdlog::info("Config reloaded");
  notifier_->ReloadDone("Config reloaded");
}

void Daemon::StartMetricsHttp() {
  if (config_.metrics_listen.empty()) return;
  auto http = MetricsHttpServer::Start(&loop_, config_.metrics_listen, [this] {
    return RenderMetrics(GatherMetrics(context_, dispatcher_.get()));
  });
  if (!http.ok()) {
    // The apps matter more than the scrape: said loudly, and carried on.
    spdlog::error("{}; metrics are served by `relsupd ctl metrics` only", http.status().message());
    return;
  }
  metrics_http_ = std::move(*http);
  spdlog::info("Serving GET /metrics on {}", config_.metrics_listen);
}

void Daemon::Shutdown(int signum) {
  if (shutting_down_) {
    spdlog::warn("Received {} again, killing every instance now",
                 strsignal(signum));
    uv_stop(&loop_);
    return;
  }
  shutting_down_ = true;
  EndReexec(Status(StatusCode::kBusy, "the daemon is stopping"));
  // A stand-in still handing connections back: killed, its queue closed.
  standin_stopper_.reset();
  spdlog::info("Received {}, stopping every instance", strsignal(signum));
  notifier_->Stopping("Stopping");
  polls_->AnswerAll();
  server_->Close();
  server_->RemovePath();
  metrics_http_.reset();
  dispatcher_->Stop();
  context_.read_jobs->Stop();
  runs_->Shutdown([this] {
    spdlog::info("Every instance stopped");
    uv_stop(&loop_);
  });
}

void Daemon::OnSignal(uv_signal_t* h, int signum) {
  auto* self = static_cast<Daemon*>(h->data);
  if (self == nullptr) return;
  if (signum == SIGHUP) return self->Reload();
  if (signum != SIGUSR2) return self->Shutdown(signum);
  ReexecAsk ask;
  ask.actor = Actor{0, "SIGUSR2"};
  self->StartReexec(std::move(ask));
}

namespace {

int RunCold(const DaemonOptions& options) {
  // Children must inherit only what the exec step hands them.
  uv_disable_stdio_inheritance();
  Daemon daemon(options);
  Status s = daemon.Start();
  if (!s.ok()) {
    spdlog::error("Cannot start: {}", s.message());
    return 1;
  }
  daemon.Run();
  spdlog::info("relsupd daemon stopped");
  return 0;
}

int EnvFd(const char* name) {
  const char* v = getenv(name);
  if (v == nullptr) return -1;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return (end != v && *end == '\0' && n >= 0 && n < INT_MAX) ? static_cast<int>(n) : -1;
}

// Stage A (docs/reexec.md §5.3): read and check, change nothing.
Status ReadAdoption(Adoption* a) {
  if (a->memfd < 0) return InvalidArgument(std::string(kHandoverFdEnv) + " is not an fd number");
  ASSIGN_OR_RETURN(a->record, ReadHandover(a->memfd));
  a->read = MarkNow();
  // The requester is the one fd a peer controls: a requester that went
  // away costs its answer, never the record.
  if (const auto& q = a->record.request) {
    Status peer = CheckPeer(q->conn_fd, q->pid, q->uid);
    if (!peer.ok()) {
      spdlog::warn("The re-exec's requester cannot be answered: {}", peer.message());
      ::fcntl(q->conn_fd, F_SETFD, FD_CLOEXEC);
      a->record.request.reset();
    }
  }
  if (a->fallback.empty() && FailpointFails("handover-unreadable"))
    return Status(StatusCode::kCorruption, "the handover is unreadable (failpoint)");
  RETURN_IF_ERROR(CheckHandoverFds(a->record));
  // A stand-in whose fds are not what the name says is left alone: its
  // fd numbers may be anything (it exits by itself, or with the daemon).
  if (auto standin = ParseStandinEnv(a->standin.c_str())) {
    std::vector<int> taken = HandoverFdList(a->record);
    taken.insert(taken.end(), {a->memfd, a->self_fd});
    Status s = CheckStandin(*standin, taken);
    (void)standin->pidfd.Release();
    (void)standin->stop.Release();
    (void)standin->handback.Release();
    if (!s.ok()) {
      spdlog::warn("The stand-in is ignored: {}", s.message());
      a->standin.clear();
    }
  } else if (!a->standin.empty()) {
    spdlog::warn("The stand-in is ignored: {}='{}' is not pid,pidfd,fd", kStandinEnv, a->standin);
    a->standin.clear();
  }
  a->checked = MarkNow();
  return Status::Ok();
}

// The new image of a re-exec: adopt, or exec back into the old binary
// while nothing has changed (§5.3).
int RunAdopted(const DaemonOptions& options) {
  ::prctl(PR_SET_NAME, "relsupd-core");
  Adoption a;
  a.main = MarkNow();
  if (const char* e = getenv(kReexecExecUsEnv)) a.exec_us = std::strtoll(e, nullptr, 10);
  a.memfd = EnvFd(kHandoverFdEnv);
  a.self_fd = EnvFd(kReexecSelfFdEnv);
  if (const char* f = getenv(kReexecFallbackEnv)) a.fallback = f;
  if (const char* e = getenv(kStandinEnv)) a.standin = e;
  for (const char* name :
       {kHandoverFdEnv, kReexecSelfFdEnv, kReexecFallbackEnv, kReexecExecUsEnv, kStandinEnv}) ::unsetenv(name);
  // Tests: a long window, in which only the stand-in answers (§6.6).
  if (a.fallback.empty() && FailpointFails("reexec-slow-adoption")) ::usleep(1'000'000);
  Status s = ReadAdoption(&a);
  bool committed = false;
  if (s.ok()) {
    Daemon daemon(options);
    s = daemon.Start(&a, &committed);
    if (s.ok()) {
      daemon.Run();
      spdlog::info("relsupd daemon stopped");
      return 0;
    }
  }
  const std::string reason =
      "relsupd " + std::string(kVersion) + " could not take over: " + s.message();
  spdlog::error("{}", reason);
  if (!committed && a.fallback.empty() && a.self_fd >= 0) {
    spdlog::error("Executing the previous binary again (fd {})", a.self_fd);
    auto argv = OwnArgv();
    Status back = argv.ok() ? ExecFd(a.self_fd, "the previous binary", *argv,
                                     {{kHandoverFdEnv, std::to_string(a.memfd)},
                                      {kReexecSelfFdEnv, std::to_string(a.self_fd)},
                                      {kReexecFallbackEnv, reason.substr(0, 1024)},
                                      {kStandinEnv, a.standin}})
                            : argv.status();
    spdlog::error("{}", back.message());
  }
  // Nothing trustworthy is left: the apps end with us (PR_SET_PDEATHSIG)
  // and systemd starts a cold daemon.
  return 1;
}

}  // namespace

int RunDaemon(const DaemonOptions& options) {
  // A fixed mmap threshold: a block of 128 KiB or more (the store's 1 MiB
  // hashing buffers on the thread pool) is mmapped and unmapped when freed.
  // glibc's default raises the threshold after the first such free, and
  // later ones stay resident in an arena for good (1 MiB per pool thread).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  SetupLogging();
  ::signal(SIGPIPE, SIG_IGN);
  // The stop signals go to the loop thread only: the thread pool's threads
  // start now with them blocked (a re-exec blocks them on the loop thread
  // across the exec, and a handler run on another thread would write into
  // a loop the exec discards). A new image inherits them blocked.
  BlockStopSignals();
  StartWorkerThreads();
  if (getenv(kHandoverFdEnv) != nullptr) return RunAdopted(options);
  UnblockStopSignals();
  return RunCold(options);
}

}  // namespace relsupd
