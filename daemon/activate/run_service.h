#pragma once
// RunService: the run stage as the control methods and the daemon see it.
//
// It joins the ledger (which release is active, the formation, who did
// what) to the Supervisor (what runs): at start-up it brings every app's
// active release back at its recorded scale; `scale`, `stop`, `start` and
// `restart` are recorded and applied; `ps` reports. Activation switches the
// `current` link and the running group. Loop thread only.

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/ledger/ledger.h"
#include "daemon/supervise/supervisor.h"

namespace relsupd {

struct PsRow {
  std::string app;
  std::string release;  // "v3"
  std::string process;  // "web.1"
  std::string type;
  pid_t pid = 0;
  std::string state;
  int64_t uptime_ms = 0;  // 0 when not running
  int restarts = 0;
  std::string last_exit;  // "exit 1", "signal KILL", "" when none
  int64_t last_exit_at = 0;  // wall ms
  std::string status;     // STATUS= text from the process
  bool active = true;     // false: a release being retired
};

class RunService final : public SupervisorListener {
 public:
  // `env` is completed with `this` as listener; pointers outlive the service.
  RunService(SuperviseEnv env, Ledger* ledger, std::string state_dir);
  ~RunService() override;

  Supervisor* supervisor() { return supervisor_.get(); }

  // Start-up: every app whose active release is not stopped by hand runs at
  // its recorded scale. An app that cannot start is logged and skipped.
  void BringUp();

  // Records new scales for the app's types and applies them. Types must
  // exist in the active release.
  Status Scale(const std::string& app, const std::map<std::string, int>& scales,
               const Actor& actor);
  // Stops every instance of the app and records `stopped`; `done` when all
  // have stopped.
  void Stop(const std::string& app, const Actor& actor,
            std::function<void(Status)> done);
  // Starts the app's active release (failed instances too) and records
  // `started`.
  Status Start(const std::string& app, const Actor& actor);
  // Rolling restart of one type or all.
  void Restart(const std::string& app, const std::string& type,
               const Actor& actor, std::function<void(Status)> done);
  Result<std::vector<PsRow>> Ps(const std::optional<std::string>& app);

  // Points apps/APP/current at release vN (temporary link, rename, fsync)
  // and runs it stop-first. REQUIRES: the release exists and is not pruned.
  void Activate(const std::string& app, int64_t number, const Actor& actor,
                std::function<void(Status)> done);

  // Daemon shutdown: stops everything gracefully, then `done`.
  void Shutdown(std::function<void()> done);

  // Builds what the supervisor needs to run release vN of the app.
  Result<std::shared_ptr<ReleaseRun>> LoadRun(const std::string& app,
                                              int64_t number);

 private:
  void OnInstanceChange(const ReleaseGroup& group,
                        const Instance& instance) override;
  void OnInstanceFailed(const ReleaseGroup& group, const Instance& instance,
                        const std::string& reason) override;
  Status RunActive(const std::string& app);

  Ledger* ledger_;
  std::string state_dir_;
  std::unique_ptr<Supervisor> supervisor_;
};

// Points DIR/current at `target` atomically: DIR/.current.tmp -> target,
// rename over DIR/current, fsync DIR.
Status SwitchCurrentLink(const std::string& app_dir, const std::string& target);

}  // namespace relsupd
