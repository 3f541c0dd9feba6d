#include "tests/run/run_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace relsupd::run_test {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Fields of /proc/PID/stat after the command name.
std::vector<std::string> StatFields(pid_t pid) {
  std::string s = Slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t close = s.rfind(')');
  std::vector<std::string> out;
  if (close == std::string::npos) return out;
  std::istringstream in(s.substr(close + 2));
  std::string f;
  while (in >> f) out.push_back(f);
  return out;  // out[0] is the state (field 3)
}

}  // namespace

// A loopback port nobody listens on right now.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// GET `path` on 127.0.0.1:port; the body, or "" when the request failed.
std::string Get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) reply.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) return "";
  return reply.substr(body + 4);
}

std::string FastConfig(const std::string& extra, int crash_limit) {
  return "restart_initial_delay: 20ms\n"
         "restart_max_delay: 200ms\n"
         "crash_limit: " + std::to_string(crash_limit) + "\n"
         "crash_window: 30s\n" +
         extra;
}

std::string DeployTo(Stage& stage, const std::string& app,
                     const std::vector<Entry>& entries, bool no_wait) {
  std::string file = stage.Artifact(app + ".tar.gz", entries);
  Json build = stage.CtlJson({"build", "import", app, file});
  std::string release = stage.CtlOk(
      {"release", "create", app, "--build", build["id"].get<std::string>()});
  while (!release.empty() && (release.back() == '\n' || release.back() == ' '))
    release.pop_back();
  if (no_wait)
    stage.CtlOk({"activate", app, release, "--no-wait"});
  else
    stage.CtlOk({"activate", app, release});
  return release;
}

std::string Deploy(Stage& stage, const std::vector<Entry>& entries, bool no_wait) {
  return DeployTo(stage, stage.app(), entries, no_wait);
}

std::string DeployProcfile(Stage& stage, const std::string& procfile, bool no_wait) {
  return Deploy(stage, {release_test::File("Procfile", procfile)}, no_wait);
}

std::string DeployYaml(Stage& stage, const std::string& yaml, bool no_wait) {
  return Deploy(stage, {release_test::File("relsupd.yaml", yaml)}, no_wait);
}

Json Ps(Stage& stage) { return stage.CtlJson({"ps", stage.app()}); }

Json Row(const Json& ps, const std::string& process) {
  for (const auto& r : ps)
    if (r.value("process", "") == process) return r;
  return Json();
}

Json WaitPs(Stage& stage, const std::function<bool(const Json&)>& pred,
            int timeout_ms, const std::string& what) {
  int64_t deadline = e2e::NowMs() + timeout_ms;
  Json ps;
  while (true) {
    ps = Ps(stage);
    if (pred(ps)) return ps;
    if (e2e::NowMs() > deadline)
      throw std::runtime_error("timed out waiting for " +
                               (what.empty() ? std::string("ps") : what) +
                               "; last ps: " + ps.dump());
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

bool AllIn(const Json& ps, const std::string& type, const std::string& state,
           size_t n) {
  size_t count = 0;
  for (const auto& r : ps) {
    if (!type.empty() && r.value("type", "") != type) continue;
    if (r.value("state", "") != state) return false;
    ++count;
  }
  return count == n;
}

std::set<pid_t> Pids(const Json& ps, const std::string& type) {
  std::set<pid_t> out;
  for (const auto& r : ps) {
    if (!type.empty() && r.value("type", "") != type) continue;
    if (r.value("pid", 0) > 0) out.insert(r["pid"].get<pid_t>());
  }
  return out;
}

bool Alive(pid_t pid) {
  auto f = StatFields(pid);
  return !f.empty() && f[0] != "Z" && f[0] != "X";
}

bool WaitGone(const std::set<pid_t>& pids, int timeout_ms) {
  int64_t deadline = e2e::NowMs() + timeout_ms;
  while (true) {
    bool any = false;
    for (pid_t p : pids) any = any || Alive(p);
    if (!any) return true;
    if (e2e::NowMs() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::set<int> OpenFds(pid_t pid) {
  std::set<int> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
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
  std::istringstream in(Slurp("/proc/" + std::to_string(pid) + "/status"));
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
  std::string env = Slurp("/proc/" + std::to_string(pid) + "/environ");
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
    std::string cmd = Slurp("/proc/" + std::string(e->d_name) + "/cmdline");
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

Json Logs(Stage& stage, std::vector<std::string> extra) {
  std::vector<std::string> args = {"--json", "logs", stage.app(), "-n", "100000"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::string out = stage.CtlOk(args);
  Json records = Json::array();
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) records.push_back(Json::parse(line));
  return records;
}

bool WaitLog(Stage& stage, const std::string& needle, int timeout_ms) {
  int64_t deadline = e2e::NowMs() + timeout_ms;
  while (true) {
    for (const auto& r : Logs(stage))
      if (r.value("text", "").find(needle) != std::string::npos) return true;
    if (e2e::NowMs() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

pid_t WaitLoggedPid(Stage& stage, const std::string& prefix) {
  if (!WaitLog(stage, prefix)) return 0;
  for (const auto& rec : Logs(stage)) {
    std::string t = rec.value("text", "");
    if (t.rfind(prefix, 0) == 0) return std::atoi(t.c_str() + prefix.size());
  }
  return 0;
}

}  // namespace relsupd::run_test
