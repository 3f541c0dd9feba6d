#pragma once
// Daemon: the modules of `relsupd daemon` wired together (main.cc), and
// its re-exec (daemon_reexec.cc, docs/reexec.md). Internal to
// relsupd_daemon; RunDaemon (main.h) is the entry point. Loop thread.

#include <uv.h>

#include <memory>
#include <optional>
#include <string>

#include "daemon/base/event_feed.h"
#include "daemon/base/fd.h"
#include "daemon/base/fd_closer.h"
#include "daemon/base/uv_handle.h"
#include "daemon/config/daemon_config.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/handlers.h"
#include "daemon/control/long_poll.h"
#include "daemon/control/metrics.h"
#include "daemon/control/metrics_http.h"
#include "daemon/control/server.h"
#include "daemon/ledger/ledger.h"
#include "daemon/logs/log_store.h"
#include "daemon/main.h"
#include "daemon/notify/notifier.h"
#include "daemon/reexec/handover.h"
#include "daemon/reexec/phase_mark.h"
#include "daemon/reexec/probe.h"
#include "daemon/reexec/standin.h"
#include "daemon/run/run_service.h"
#include "daemon/store/release_service.h"
#include "daemon/supervise/cgroup.h"
#include "daemon/supervise/notify_socket.h"

namespace relsupd {

// What the new image of a re-exec starts from (docs/reexec.md §2.7).
struct Adoption {
  HandoverRecord record;
  int memfd = -1;              // the handover, closed after READY
  int self_fd = -1;            // the old binary (exec-back), closed after READY
  std::string fallback;        // set: this image is the exec-back's (§5.3)
  std::string standin;         // kStandinEnv: the stand-in to stop (§6.6)
  // The window's phases (§7.4): the old image's execve (its clock), main,
  // the record read, its fds checked, the ledger open.
  int64_t exec_us = 0;
  PhaseMark main, read, checked;
};

// A daemon.reexec request (or SIGUSR2: no reply, no connection).
struct ReexecAsk {
  Actor actor;
  bool kill_one_offs = false;
  std::optional<RequestSnapshot> request;  // the connection to answer from the new image
  uint64_t connection_id = 0;              // its Peer::connection_id
  Reply reply;  // refusals and failures before the exec; null for SIGUSR2
};

class Daemon {
 public:
  explicit Daemon(DaemonOptions options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Cold start, or (with `adopt`) the new image of a re-exec. On the
  // adopted path, a failure before the ledger is open leaves `*committed`
  // false: nothing has changed yet, and the caller may exec back (§5.3).
  Status Start(const Adoption* adopt = nullptr, bool* committed = nullptr);
  void Run() { uv_run(&loop_, UV_RUN_DEFAULT); }

 private:
  Result<DaemonConfig> ReadConfig() const;
  // The config, and the re-exec's own state: the carried ones when adopting.
  Status TakeConfig(const Adoption* adopt);
  void StartSignals();
  StoreLimits Limits() const;
  void ApplyPolicy();
  void SecureAppDirs();
  Status StartRunStage(const Adoption* adopt);
  Status StartCgroups(const Adoption* adopt);
  Status OpenNotify(const Adoption* adopt, const std::string& path);
  void WireHandlers();
  void Reload();
  void Shutdown(int signum);
  static void OnSignal(uv_signal_t* h, int signum);

  // daemon_reexec.cc: the old image's side (§2.5, §2.6, §5.1, §5.2) ...
  void StartReexec(ReexecAsk ask);
  Status RefuseReexec(const ReexecAsk& ask) const;
  void AfterProbe(Result<ProbeAnswer> answer);
  // Freezes the control input for the drain (the first drain tick with no
  // long work running).
  void FreezeInput();
  void KillOneOffsThenDrain();
  static void OnDrainTick(uv_timer_t* t);
  void Exec();
  HandoverRecord BuildRecord() const;
  void Undo(const Status& why, const std::vector<int>& cleared);
  void EndReexec(const Status& refusal);
  // ... and the new image's (§2.7, §6.2, §6.3).
  void FinishAdoption(const Adoption& adopt);
  std::string ReexecPendingPath() const { return config_.state_dir + "/reexec.pending"; }
  void NoteInterruptedReexec();

  DaemonOptions options_;
  DaemonConfig config_;
  uv_loop_t loop_;
  Fd lock_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<EventFeed> feed_;
  std::unique_ptr<LongPolls> polls_;
  std::unique_ptr<ReleaseService> releases_;
  AccessPolicy policy_;
  // Closes the fds peers pass us off the loop; outlives their receivers.
  std::unique_ptr<FdCloser> closer_;
  std::unique_ptr<Dispatcher> dispatcher_;
  DaemonContext context_;
  std::unique_ptr<ControlServer> server_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;  // metrics_listen; null: off
  void StartMetricsHttp();
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<LogStore> logs_;
  std::unique_ptr<CgroupTree> cgroups_;
  std::unique_ptr<NotifyListener> notify_listener_;
  std::unique_ptr<RunService> runs_;
  UvHandle<uv_check_t> flush_check_;
  // Gives the heap's free pages back to the kernel (TrimHeap): glibc
  // keeps them, and a switch of 1,000 instances has 2,000 for a while.
  UvHandle<uv_timer_t> trim_timer_;
  bool trimming_ = false;
  static constexpr uint64_t kTrimIntervalMs = 5'000;
  static void TrimHeap(uv_timer_t* timer);
  UvHandle<uv_signal_t> signals_[4];
  bool shutting_down_ = false;

  // The re-exec (daemon_reexec.cc).
  std::string self_path_;  // the binary of the cold start, kept across re-execs
  std::string supervisor_id_;
  uint64_t child_nofile_soft_ = 0, child_nofile_hard_ = 0;
  int64_t first_started_ms_ = 0;  // monotonic, of the cold start
  PhaseMark adopt_ledger_mark_;   // when an adoption opened the ledger
  int64_t reexecs_ = 0;
  struct Pending {
    // Declared: without it clang judges Pending not default-constructible
    // inside Daemon (its member initializers are not parsed yet there).
    Pending() {}
    ReexecAsk ask;
    Fd binary;  // the checked file that is exec'd
    Fd self_exe;  // the running binary, for the exec back
    std::string new_version;  // what the probe answered
    bool new_stops_standin = false;  // and whether it stops a stand-in
    int64_t drain_started_ms = 0;
    int64_t frozen_ms = 0;  // input frozen (0: not yet, waiting for long work)
    bool dropped_others = false;
    bool wait_said = false;  // the wait for long work is logged
  };
  std::optional<Pending> reexec_;
  // The old image's stand-in (§6.6): forked by Exec, stopped by Undo or,
  // across the exec, by the new image's FinishAdoption.
  std::optional<Standin> standin_;
  std::unique_ptr<StandinStopper> standin_stopper_;  // the last one stopped
  void StopStandinIfAny();
  UvHandle<uv_timer_t> drain_timer_;
};

}  // namespace relsupd
