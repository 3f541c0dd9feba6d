// Small helpers of the supervise benchmark (see util.h).

#include "bench/supervise/util.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

extern char** environ;

namespace supervise_bench {

namespace fs = std::filesystem;

int64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void SleepMs(int64_t ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  return out.good() && chmod(path.c_str(), mode) == 0;
}

std::string Trim(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == ' ' || s.back() == '\r'))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  return s.substr(i);
}

std::string LastLines(const std::string& s, int n) {
  size_t pos = s.size();
  while (n-- > 0 && pos > 0) {
    pos = s.rfind('\n', pos - 1);
    if (pos == std::string::npos) return s;
  }
  return s.substr(pos + 1);
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

namespace {

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

// The environment for children, without systemd's notification and
// activation variables, plus `extra` ("KEY=VALUE", replacing).
std::vector<std::string> ChildEnv(const std::vector<std::string>& extra) {
  static const char* const kDrop[] = {
      "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
      "LISTEN_FDS=",    "LISTEN_PID=",    "LISTEN_FDNAMES="};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view s(*e);
    bool drop = false;
    for (const char* d : kDrop) drop = drop || s.starts_with(d);
    for (const auto& x : extra)
      drop = drop || s.starts_with(x.substr(0, x.find('=') + 1));
    if (!drop) env.emplace_back(s);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// The regular files in `dir` whose name `match` accepts, sorted by name.
std::vector<std::string> FilesIn(
    const std::string& dir,
    const std::function<bool(const std::string&)>& match) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && match(e.path().filename().string()))
      out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Rotated generations "BASE.N" ... "BASE.1" (oldest first), then "BASE":
// the order their lines were written in.
std::vector<std::string> OldestFirst(std::vector<std::string> files) {
  auto generation = [](const std::string& path) {
    const std::string name = fs::path(path).filename().string();
    const size_t dot = name.rfind('.');
    const std::string suffix =
        dot == std::string::npos ? "" : name.substr(dot + 1);
    if (suffix.empty() ||
        suffix.find_first_not_of("0123456789") != std::string::npos)
      return 0;
    return std::atoi(suffix.c_str());
  };
  std::stable_sort(files.begin(), files.end(),
                   [&](const std::string& a, const std::string& b) {
                     return generation(a) > generation(b);
                   });
  return files;
}

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path
                            : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string p = dir + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Starts argv in the background: stdin /dev/null, stdout+stderr to `log`.
// With `pdeathsig`, the child gets SIGTERM when the benchmark dies.
pid_t Spawn(std::vector<std::string> args,
            const std::vector<std::string>& extra_env, const std::string& log,
            bool pdeathsig, std::string* error) {
  std::vector<std::string> env = ChildEnv(extra_env);
  std::vector<char*> argv = CStrings(args), envp = CStrings(env);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return -1;
  }
  if (pid == 0) {
    // Async-signal-safe calls only (the benchmark has no other thread, but
    // keep it that way).
    if (pdeathsig) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
    }
    setpgid(0, 0);  // Ctrl-C reaches the benchmark only; it stops the rest
    int in = open("/dev/null", O_RDONLY);
    int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0) _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execvpe(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

// Runs argv to completion (posix_spawn to waitpid), output captured in
// files under `dir` unless `discard_output`; gives up (SIGKILL to it) after
// `timeout_s`.
RunResult Run(std::vector<std::string> args, const std::string& dir,
              const std::vector<std::string>& extra_env, bool discard_output,
              double timeout_s) {
  RunResult res;
  const std::string out_path = discard_output ? "/dev/null" : dir + "/run.out";
  const std::string err_path = discard_output ? "/dev/null" : dir + "/run.err";
  std::vector<std::string> env = ChildEnv(extra_env);
  std::vector<char*> argv = CStrings(args), envp = CStrings(env);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  const int64_t t0 = MonoNs();
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    res.status = 127 << 8;
    res.err = "cannot run " + args[0] + ": " + std::strerror(rc);
    return res;
  }
  const int64_t deadline = t0 + static_cast<int64_t>(timeout_s * 1e9);
  bool killed = false;
  rusage ru{};
  for (;;) {
    pid_t r = wait4(pid, &res.status, killed ? 0 : WNOHANG, &ru);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (!killed && MonoNs() > deadline) {
      kill(pid, SIGKILL);
      killed = true;
      continue;
    }
    if (r == 0) usleep(200);
  }
  res.ms = static_cast<double>(MonoNs() - t0) / 1e6;
  auto ms = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1e3 +
           static_cast<double>(tv.tv_usec) / 1e3;
  };
  res.cpu_ms = ms(ru.ru_utime) + ms(ru.ru_stime);
  if (!discard_output) {
    res.out = ReadAll(out_path);
    res.err = ReadAll(err_path);
  }
  if (killed)
    res.err += "\n(killed after " +
               std::to_string(static_cast<int>(timeout_s)) + " s)";
  return res;
}

int StopChild(pid_t pid, int sig, double timeout_s) {
  if (pid <= 0) return 0;
  kill(pid, sig);
  int status = 0;
  const int64_t deadline = MonoNs() + static_cast<int64_t>(timeout_s * 1e9);
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (MonoNs() > deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    SleepMs(5);
  }
  return status;
}

}  // namespace supervise_bench
