#include "daemon/base/paths.h"

namespace relsupd {

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == ".") return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string AppDir(const std::string& state_dir, const std::string& app) {
  return state_dir + "/apps/" + app;
}

std::string ReleasesDir(const std::string& state_dir, const std::string& app) {
  return AppDir(state_dir, app) + "/releases";
}

std::string BuildsDir(const std::string& state_dir, const std::string& app) {
  return AppDir(state_dir, app) + "/builds";
}

std::string ObjectsDir(const std::string& state_dir) {
  return state_dir + "/objects";
}

std::string StagingDir(const std::string& state_dir) {
  return state_dir + "/tmp";
}

std::string LogsDir(const std::string& state_dir) {
  return state_dir + "/logs";
}

std::string NotifySocketPath(const std::string& control_socket) {
  const size_t slash = control_socket.rfind('/');
  if (slash == std::string::npos) return "app-notify.sock";
  return JoinPath(slash == 0 ? "/" : control_socket.substr(0, slash), "app-notify.sock");
}

}  // namespace relsupd
