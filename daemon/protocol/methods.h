#pragma once
// Names of the control protocol's methods, shared by daemon and client.

namespace relsupd::rpc::method {

inline constexpr const char kDaemonInfo[] = "daemon.info";
inline constexpr const char kDaemonReexec[] = "daemon.reexec";
inline constexpr const char kAppCreate[] = "app.create";
inline constexpr const char kAppShow[] = "app.show";
inline constexpr const char kAppList[] = "app.list";
inline constexpr const char kAppApply[] = "app.apply";
inline constexpr const char kAppDelete[] = "app.delete";
inline constexpr const char kHistory[] = "history";
inline constexpr const char kHistoryVerify[] = "history.verify";

inline constexpr const char kBuildImport[] = "build.import";
inline constexpr const char kBuildList[] = "build.list";
inline constexpr const char kReleaseCreate[] = "release.create";
inline constexpr const char kReleaseList[] = "release.list";
inline constexpr const char kReleaseShow[] = "release.show";
inline constexpr const char kReleaseDiff[] = "release.diff";
inline constexpr const char kReleaseVerify[] = "release.verify";
inline constexpr const char kConfigSet[] = "config.set";
inline constexpr const char kConfigUnset[] = "config.unset";
inline constexpr const char kConfigShow[] = "config.show";
inline constexpr const char kPrune[] = "prune";

inline constexpr const char kPs[] = "ps";
inline constexpr const char kScale[] = "scale";
inline constexpr const char kRestart[] = "restart";
inline constexpr const char kStop[] = "stop";
inline constexpr const char kStart[] = "start";
inline constexpr const char kLogs[] = "logs";
inline constexpr const char kEvents[] = "events";
inline constexpr const char kActivate[] = "activate";
inline constexpr const char kRollback[] = "rollback";
inline constexpr const char kStatus[] = "status";
inline constexpr const char kSignal[] = "signal";
// The metrics text (control/metrics.h): {"text": "..."}.
inline constexpr const char kMetrics[] = "metrics";
// A one-off process (run_handlers.cc): argv, stdio fds and a control pipe.
inline constexpr const char kRun[] = "run";

}  // namespace relsupd::rpc::method
