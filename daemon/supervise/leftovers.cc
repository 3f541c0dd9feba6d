#include "daemon/supervise/leftovers.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "daemon/base/fd.h"

namespace relsupd {

Result<std::string> SupervisorId(const std::string& state_dir) {
  struct stat st{};
  if (::stat(state_dir.c_str(), &st) != 0)
    return Status::FromErrno("stat '" + state_dir + "'", errno);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

std::vector<pid_t> FindLeftovers(const std::string& id) {
  std::vector<pid_t> out;
  const std::string needle = "RELSUPD_SUPERVISOR=" + id;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self) continue;
    auto env = ReadFile(std::string("/proc/") + e->d_name + "/environ",
                        1 << 20);
    if (!env.ok()) continue;  // gone, or not ours to read
    std::string_view rest = *env;
    while (!rest.empty()) {
      size_t nul = rest.find('\0');
      if (rest.substr(0, nul) == needle) {
        out.push_back(static_cast<pid_t>(pid));
        break;
      }
      if (nul == std::string_view::npos) break;
      rest.remove_prefix(nul + 1);
    }
  }
  ::closedir(d);
  return out;
}

int KillLeftovers(const std::string& id, int wait_ms) {
  std::vector<pid_t> pids = FindLeftovers(id);
  const int found = static_cast<int>(pids.size());
  for (pid_t p : pids) ::kill(p, SIGKILL);
  for (int waited = 0; waited < wait_ms && !pids.empty(); waited += 10) {
    std::vector<pid_t> alive;
    for (pid_t p : pids) {
      // A zombie still answers kill(0): only the environ check tells a
      // dead process (empty environ) from a live one.
      auto env = ReadFile("/proc/" + std::to_string(p) + "/environ", 16);
      if (env.ok() && !env->empty()) alive.push_back(p);
    }
    if (alive.empty()) break;
    pids = std::move(alive);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return found;
}

}  // namespace relsupd
