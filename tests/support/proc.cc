#include "tests/support/proc.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "tests/support/fs.h"
#include "tests/support/wait.h"

namespace relsupd::support {
namespace {

std::string ProcPath(pid_t pid, const char* file) {
  return "/proc/" + std::to_string(pid) + "/" + file;
}

}  // namespace

std::vector<std::string> StatFields(pid_t pid) {
  std::string s = ReadFileOrEmpty(ProcPath(pid, "stat"));
  size_t close = s.rfind(')');
  std::vector<std::string> out;
  if (close == std::string::npos) return out;
  std::istringstream in(s.substr(close + 2));
  std::string f;
  while (in >> f) out.push_back(f);
  return out;
}

bool Alive(pid_t pid) {
  auto f = StatFields(pid);
  return !f.empty() && f[0] != "Z" && f[0] != "X";
}

bool WaitGone(const std::set<pid_t>& pids, int timeout_ms) {
  return WaitUntil(
      [&] {
        for (pid_t p : pids)
          if (Alive(p)) return false;
        return true;
      },
      timeout_ms);
}

int OpenFdCount(pid_t pid) {
  int n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator(ProcPath(pid, "fd")))
    ++n;
  return n;
}

std::set<int> OpenFds(pid_t pid) {
  std::set<int> out;
  std::string dir = ProcPath(pid, "fd");
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    out.insert(std::atoi(e->d_name));
  }
  ::closedir(d);
  return out;
}

std::string StatusField(pid_t pid, const std::string& key) {
  std::istringstream in(ReadFileOrEmpty(ProcPath(pid, "status")));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      size_t start = v.find_first_not_of(" \t");
      return start == std::string::npos ? "" : v.substr(start);
    }
  return "";
}

std::vector<std::string> Environ(pid_t pid) {
  std::string env = ReadFileOrEmpty(ProcPath(pid, "environ"));
  std::vector<std::string> out;
  size_t start = 0;
  while (start < env.size()) {
    size_t nul = env.find('\0', start);
    if (nul == std::string::npos) nul = env.size();
    out.push_back(env.substr(start, nul - start));
    start = nul + 1;
  }
  return out;
}

pid_t SessionOf(pid_t pid) {
  auto f = StatFields(pid);
  return f.size() > 3 ? std::atoi(f[3].c_str()) : -1;
}

std::set<pid_t> PidsWithCmdline(const std::string& needle) {
  std::set<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::string cmd = ReadFileOrEmpty(ProcPath(pid, "cmdline"));
    for (char& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find(needle) != std::string::npos && Alive(pid)) out.insert(pid);
  }
  ::closedir(d);
  return out;
}

int64_t CpuMs(pid_t pid) {
  auto f = StatFields(pid);
  if (f.size() < 13) return 0;
  // utime and stime are fields 14 and 15 (out[11], out[12]), in ticks.
  int64_t ticks = std::atoll(f[11].c_str()) + std::atoll(f[12].c_str());
  return ticks * 1000 / sysconf(_SC_CLK_TCK);
}

}  // namespace relsupd::support
