// Wiring only: config, lock, ledger, control socket, signals, systemd.
#include "daemon/main.h"

#include <limits.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <memory>

#include "daemon/base/clock.h"
#include "daemon/base/fd.h"
#include "daemon/base/fd_closer.h"
#include "daemon/base/lock.h"
#include "daemon/base/users.h"
#include "daemon/base/uv_handle.h"
#include "daemon/config/daemon_config.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/handlers.h"
#include "daemon/control/server.h"
#include "daemon/ledger/ledger.h"
#include "daemon/logs/log_store.h"
#include "daemon/logs/logging.h"
#include "daemon/notify/notifier.h"
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

class Daemon {
 public:
  explicit Daemon(DaemonOptions options) : options_(std::move(options)) {
    uv_loop_init(&loop_);
  }
  ~Daemon() {
    server_.reset();
    if (dispatcher_ != nullptr) dispatcher_->Stop();
    context_.read_jobs->Stop();
    // Whatever still runs is killed here (a second signal, or a failed
    // start); a clean stop has stopped every instance already.
    runs_.reset();
    notify_listener_.reset();
    flush_check_.Close();
    if (logs_ != nullptr) logs_->Flush();
    logs_.reset();
    cgroups_.reset();
    notifier_.reset();
    releases_.reset();
    for (auto& s : signals_) s.Close();
    if (CloseLoop(&loop_) != 0)
      spdlog::warn("Event loop did not close cleanly, ignoring");
  }

  Status Start();
  void Run() { uv_run(&loop_, UV_RUN_DEFAULT); }

 private:
  Result<DaemonConfig> ReadConfig() const;
  StoreLimits Limits() const {
    StoreLimits l;
    l.max_artifact_bytes = config_.max_artifact_bytes;
    l.max_unpacked_bytes = config_.max_unpacked_bytes;
    l.max_entries = config_.max_entries;
    l.max_compression_ratio = config_.max_compression_ratio;
    return l;
  }
  void ApplyPolicy();
  void SecureAppDirs();
  Status StartRunStage();
  void Reload();
  void Shutdown(int signum);
  static void OnSignal(uv_signal_t* h, int signum);

  DaemonOptions options_;
  DaemonConfig config_;
  uv_loop_t loop_;
  Fd lock_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<ReleaseService> releases_;
  AccessPolicy policy_;
  // Closes the fds peers pass us off the loop; outlives their receivers.
  std::unique_ptr<FdCloser> closer_;
  std::unique_ptr<Dispatcher> dispatcher_;
  DaemonContext context_;
  std::unique_ptr<ControlServer> server_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<LogStore> logs_;
  std::unique_ptr<CgroupTree> cgroups_;
  std::unique_ptr<NotifyListener> notify_listener_;
  std::unique_ptr<RunService> runs_;
  UvHandle<uv_check_t> flush_check_;
  UvHandle<uv_signal_t> signals_[3];
  bool shutting_down_ = false;
};

BackoffPolicy BackoffFrom(const DaemonConfig& c) {
  BackoffPolicy b;
  b.initial_ms = c.restart_initial_delay_ms;
  b.cap_ms = c.restart_max_delay_ms;
  b.reset_after_ms = c.restart_reset_after_ms;
  b.max_crashes = static_cast<int>(c.crash_limit);
  b.window_ms = c.crash_window_ms;
  return b;
}

Status Daemon::StartRunStage() {
  // Up to 1,000s of children with two pipes each: raise the soft fd limit
  // to the hard one; children get the original soft limit back (select()).
  struct rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  const ExecRlimit child_nofile{RLIMIT_NOFILE, nofile.rlim_cur,
                                nofile.rlim_max};
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

  ASSIGN_OR_RETURN(std::string supervisor_id, SupervisorId(config_.state_dir));
  ASSIGN_OR_RETURN(cgroups_, SetUpDaemonCgroups(&loop_, config_.cgroup));
  // Descendants that outlived a killed daemon (PR_SET_PDEATHSIG only
  // reaches direct children) end before anything starts again.
  int leftovers = KillLeftovers(supervisor_id);
  if (leftovers > 0)
    spdlog::warn("Ended {} app processes a previous daemon left running",
                 leftovers);

  LogStoreOptions log_options;
  log_options.max_file_bytes = config_.log_max_file_bytes;
  log_options.max_files = static_cast<int>(config_.log_max_files);
  log_options.journal = getenv("JOURNAL_STREAM") != nullptr;
  ASSIGN_OR_RETURN(logs_, LogStore::Open(config_.state_dir + "/logs",
                                         log_options, RealClock()));
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
  env.supervisor_id = supervisor_id;
  env.child_rlimits = {child_nofile};
  env.backoff = BackoffFrom(config_);
  env.log_rate.bytes_per_sec = static_cast<int64_t>(config_.log_rate_limit);
  env.log_rate.burst = static_cast<int64_t>(config_.log_rate_limit);
  env.cgroups = cgroups_.get();
  std::string notify_path =
      std::filesystem::path(config_.socket).parent_path().string() +
      "/app-notify.sock";
  env.notify_socket = notify_path;
  runs_ = std::make_unique<RunService>(std::move(env), ledger_.get(),
                                       releases_.get(), config_.state_dir);
  ASSIGN_OR_RETURN(
      notify_listener_,
      NotifyListener::Open(&loop_, notify_path, closer_.get(),
                           [this](pid_t pid,
                                  const std::map<std::string, std::string>& f) {
                             runs_->supervisor()->OnNotify(pid, f);
                           }));
  context_.runs = runs_.get();
  context_.closer = closer_.get();
  context_.logs = logs_.get();
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

Status Daemon::Start() {
  ASSIGN_OR_RETURN(config_, ReadConfig());
  RETURN_IF_ERROR(SetLogLevel(config_.log_level));
  // Traversable by the apps, listable by nobody (store/layout.h); an older
  // relsupd's 0750/0755 directories are narrowed here.
  RETURN_IF_ERROR(SecureStateDir(config_.state_dir));
  ASSIGN_OR_RETURN(lock_, LockDirectory(config_.state_dir));
  ASSIGN_OR_RETURN(ledger_, Ledger::Open(config_.state_dir + "/ledger.db",
                                         RealClock()));
  SecureAppDirs();
  releases_ = std::make_unique<ReleaseService>(&loop_, ledger_.get(),
                                               config_.state_dir, Limits());
  RETURN_IF_ERROR(releases_->Recover().WithContext("recovery"));
  ApplyPolicy();
  context_.loop = &loop_;
  context_.ledger = ledger_.get();
  context_.releases = releases_.get();
  context_.clock = &RealClock();
  context_.state_dir = config_.state_dir;
  context_.socket = config_.socket;
  context_.started_ms = RealClock().MonotonicMs();
  dispatcher_ = std::make_unique<Dispatcher>(&policy_);
  RegisterHandlers(dispatcher_.get(), &context_);
  RegisterReleaseHandlers(dispatcher_.get(), &context_);
  RegisterProcessHandlers(dispatcher_.get(), &context_);
  RegisterRunHandlers(dispatcher_.get(), &context_);

  const int signums[] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; ++i) {
    uv_signal_init(&loop_, signals_[i].get());
    signals_[i]->data = this;
    uv_signal_start(signals_[i].get(), &Daemon::OnSignal, signums[i]);
  }

  std::string socket_dir =
      std::filesystem::path(config_.socket).parent_path().string();
  RETURN_IF_ERROR(MakeDirs(socket_dir, 0755));
  RETURN_IF_ERROR(StartRunStage());
  // After StartRunStage, which makes the closer; nothing reaches the
  // dispatcher before the server below listens.
  dispatcher_->RunOnLoop(&loop_, closer_.get());
  server_ = std::make_unique<ControlServer>(&loop_, dispatcher_.get(), &policy_,
                                            closer_.get(),
                                            config_.max_request_bytes);
  RETURN_IF_ERROR(server_->Listen(config_.socket, config_.socket_mode,
                                  policy_.socket_gid));
  notifier_ = std::make_unique<Notifier>(&loop_);
  notifier_->StartWatchdog();
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

void Daemon::Shutdown(int signum) {
  if (shutting_down_) {
    spdlog::warn("Received {} again, killing every instance now",
                 strsignal(signum));
    uv_stop(&loop_);
    return;
  }
  shutting_down_ = true;
  spdlog::info("Received {}, stopping every instance", strsignal(signum));
  notifier_->Stopping("Stopping");
  server_->Close();
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
  if (signum == SIGHUP)
    self->Reload();
  else
    self->Shutdown(signum);
}

}  // namespace

int RunDaemon(const DaemonOptions& options) {
  // A fixed mmap threshold: a block of 128 KiB or more (the store's 1 MiB
  // hashing buffers on the thread pool) is mmapped and unmapped when freed.
  // glibc's default raises the threshold after the first such free, and
  // later ones stay resident in an arena for good (1 MiB per pool thread).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  SetupLogging();
  // Children must inherit only what the exec step hands them.
  uv_disable_stdio_inheritance();
  ::signal(SIGPIPE, SIG_IGN);
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

}  // namespace relsupd
