#pragma once
// Paths: joining path components, and where things live under the state
// directory (modes and owners: daemon/store/layout.h). Pure string
// functions; any thread.
//
//   STATE/apps/APP/releases/vN   a release's sealed slot
//   STATE/apps/APP/builds/       imported artifacts, SHA256.FORMAT
//   STATE/objects/               content objects the slots link
//   STATE/tmp/                   staging, emptied at start-up
//   STATE/logs/APP/              an app's captured output (log_store.h)

#include <string>

namespace relsupd {

// "dir" + "/" + "name", without doubling a trailing '/'; an empty or "."
// dir gives `name`.
std::string JoinPath(const std::string& dir, const std::string& name);

std::string AppDir(const std::string& state_dir, const std::string& app);
std::string ReleasesDir(const std::string& state_dir, const std::string& app);
std::string BuildsDir(const std::string& state_dir, const std::string& app);
std::string ObjectsDir(const std::string& state_dir);
std::string StagingDir(const std::string& state_dir);
std::string LogsDir(const std::string& state_dir);

// The socket apps send READY=1 and WATCHDOG=1 to (their NOTIFY_SOCKET):
// "app-notify.sock" beside the control socket `control_socket`.
std::string NotifySocketPath(const std::string& control_socket);

}  // namespace relsupd
