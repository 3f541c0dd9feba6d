// Wiring only: config, lock, ledger, control socket, signals, systemd.
#include "daemon/main.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <csignal>
#include <filesystem>
#include <memory>

#include "daemon/base/clock.h"
#include "daemon/base/fd.h"
#include "daemon/base/lock.h"
#include "daemon/base/users.h"
#include "daemon/base/uv_handle.h"
#include "daemon/config/daemon_config.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/handlers.h"
#include "daemon/control/server.h"
#include "daemon/ledger/ledger.h"
#include "daemon/logs/logging.h"
#include "daemon/notify/notifier.h"
#include "daemon/store/release_service.h"

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
  std::unique_ptr<Dispatcher> dispatcher_;
  DaemonContext context_;
  std::unique_ptr<ControlServer> server_;
  std::unique_ptr<Notifier> notifier_;
  UvHandle<uv_signal_t> signals_[3];
};

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

void Daemon::ApplyPolicy() {
  policy_.daemon_uid = geteuid();
  policy_.admin_group = config_.admin_group;
  policy_.socket_group = config_.socket_group;
  policy_.admin_gid = GroupOrWarn(config_.admin_group, "admin_group");
  policy_.socket_gid = GroupOrWarn(config_.socket_group, "socket_group");
}

Status Daemon::Start() {
  ASSIGN_OR_RETURN(config_, ReadConfig());
  RETURN_IF_ERROR(SetLogLevel(config_.log_level));
  RETURN_IF_ERROR(MakeDirs(config_.state_dir, 0750));
  ASSIGN_OR_RETURN(lock_, LockDirectory(config_.state_dir));
  ASSIGN_OR_RETURN(ledger_, Ledger::Open(config_.state_dir + "/ledger.db",
                                         RealClock()));
  releases_ = std::make_unique<ReleaseService>(&loop_, ledger_.get(),
                                               config_.state_dir, Limits());
  RETURN_IF_ERROR(releases_->Recover().WithContext("recovery"));
  ApplyPolicy();
  context_.ledger = ledger_.get();
  context_.releases = releases_.get();
  context_.clock = &RealClock();
  context_.state_dir = config_.state_dir;
  context_.socket = config_.socket;
  context_.started_ms = RealClock().MonotonicMs();
  dispatcher_ = std::make_unique<Dispatcher>(&policy_);
  RegisterHandlers(dispatcher_.get(), &context_);
  RegisterReleaseHandlers(dispatcher_.get(), &context_);

  const int signums[] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; ++i) {
    uv_signal_init(&loop_, signals_[i].get());
    signals_[i]->data = this;
    uv_signal_start(signals_[i].get(), &Daemon::OnSignal, signums[i]);
  }

  std::string socket_dir =
      std::filesystem::path(config_.socket).parent_path().string();
  RETURN_IF_ERROR(MakeDirs(socket_dir, 0755));
  server_ = std::make_unique<ControlServer>(&loop_, dispatcher_.get(), &policy_,
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
  Status s = server_->SetSocketAccess(config_.socket_mode, policy_.socket_gid);
  if (!s.ok()) spdlog::warn("{}, ignoring", s.message());
  spdlog::info("Config reloaded");
  notifier_->ReloadDone("Config reloaded");
}

void Daemon::Shutdown(int signum) {
  spdlog::info("Received {}, stopping", strsignal(signum));
  notifier_->Stopping("Stopping");
  server_->Close();
  uv_stop(&loop_);
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
