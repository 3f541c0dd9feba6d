// What the benchmarks share (see bench_support.h).

#include "bench/bench_support.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

#include "tests/support/fs.h"
#include "tests/support/process.h"

namespace relsupd::bench {
namespace {

namespace fs = std::filesystem;

void OnInterrupt(int) { g_interrupted.store(true); }

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

double Ms(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) * 1e3 +
         static_cast<double>(tv.tv_usec) / 1e3;
}

// Waits for `pid` (wait4): blocking without a timeout, else polling every
// 200 us and SIGKILL at the deadline. Sets *killed when it had to.
void Reap(pid_t pid, int64_t deadline, int* status, rusage* ru, bool* killed) {
  if (deadline == 0) {
    while (wait4(pid, status, 0, ru) < 0 && errno == EINTR) {
    }
    return;
  }
  for (;;) {
    pid_t r = wait4(pid, status, *killed ? 0 : WNOHANG, ru);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (!*killed && MonoNs() > deadline) {
      kill(pid, SIGKILL);
      *killed = true;
      continue;
    }
    if (r == 0) usleep(200);
  }
}

// Makes a directory writable for its owner, so that its entries can go.
int MakeWritable(const char* path, const struct stat* st, int type, FTW*) {
  if (type == FTW_D || type == FTW_DNR)
    ::chmod(path, (st->st_mode & 07777) | S_IRWXU);
  return 0;
}

}  // namespace

void InstallInterruptHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool ParseFlags(int argc, char** argv, void (*usage)(FILE*),
                const std::vector<Flag>& flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(stdout);
      std::exit(0);
    }
    auto flag = std::find_if(flags.begin(), flags.end(),
                             [&](const Flag& f) { return arg == f.name; });
    if (flag == flags.end()) return false;
    const char* value = nullptr;
    if (flag->takes_value) {
      if (i + 1 >= argc) return false;
      value = argv[++i];
    }
    if (!flag->set(value)) return false;
  }
  return true;
}

Flag PositiveFlag(const char* name, double* out) {
  return {name, true, [=](const char* v) {
            *out = std::atof(v);
            return *out > 0;
          }};
}

Flag TextFlag(const char* name, std::string* out) {
  return {name, true, [=](const char* v) {
            *out = v;
            return true;
          }};
}

Flag SwitchFlag(const char* name, bool* out) {
  return {name, false, [=](const char*) {
            *out = true;
            return true;
          }};
}

int UsageError(void (*usage)(FILE*)) {
  usage(stderr);
  return 2;
}

int64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void SleepMs(int64_t ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

const char* Verdict(bool pass) { return pass ? "PASS" : "FAIL"; }

std::string LoadAverage() {
  std::string load = support::ReadFileOrEmpty("/proc/loadavg");
  load = load.substr(0, load.find(' '));
  return load.empty() ? "?" : load;
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) items.push_back(item);
  return items;
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
  return pos < s.size() ? s.substr(pos + 1) : "";
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

bool ResolveBinary(const char* bench, std::string* path) {
  if (access(path->c_str(), X_OK) != 0) {
    std::fprintf(stderr, "%s: cannot execute %s: %s\n", bench, path->c_str(),
                 std::strerror(errno));
    return false;
  }
  *path = fs::absolute(*path).string();
  return true;
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& log,
            const std::vector<std::string>& extra_env, std::string* error,
            LogMode mode) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC |
                    (mode == LogMode::kTruncate ? O_TRUNC : O_APPEND);
  int out = ::open(log.c_str(), flags, 0644);
  if (out < 0) {
    *error = "cannot open " + log + ": " + std::strerror(errno);
    return -1;
  }
  pid_t pid = -1;
  try {
    int in = support::OpenDevNull();
    support::SpawnOptions options;
    options.die_with_parent = true;  // and a process group of its own
    pid = support::Spawn(args, support::ChildEnv(extra_env), in, out, out,
                         options);
    ::close(in);
  } catch (const std::exception& e) {
    *error = e.what();
  }
  ::close(out);
  return pid;
}

int StopChild(pid_t pid, int sig, double timeout_s, const char* who) {
  if (pid <= 0) return 0;
  kill(pid, sig);
  int status = 0;
  const int64_t deadline = MonoNs() + static_cast<int64_t>(timeout_s * 1e9);
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (MonoNs() > deadline) {
      if (who)
        std::fprintf(
            stderr,
            "%s: daemon pid %d ignored SIGTERM for %.0f s, killing it\n", who,
            pid, timeout_s);
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    SleepMs(5);
  }
  return status;
}

std::string RunResult::Describe() const {
  std::string e = Trim(LastLines(err.empty() ? out : err, 5));
  return DescribeStatus(status) + (e.empty() ? "" : ": " + e);
}

RunResult Run(const std::vector<std::string>& args, const RunOptions& options) {
  RunResult res;
  const std::string out_path =
      options.out_path.empty() ? "/dev/null" : options.out_path;
  const std::string err_path =
      options.err_path.empty() ? "/dev/null" : options.err_path;
  const bool merged = !options.out_path.empty() && out_path == err_path;
  std::vector<std::string> a = args;
  std::vector<std::string> env = support::ChildEnv(options.env);
  std::vector<char*> argv = CStrings(a), envp = CStrings(env);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (merged)
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  else
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
  const int64_t deadline =
      options.timeout_s > 0 ? t0 + static_cast<int64_t>(options.timeout_s * 1e9)
                            : 0;
  bool killed = false;
  rusage ru{};
  Reap(pid, deadline, &res.status, &ru, &killed);
  res.ms = static_cast<double>(MonoNs() - t0) / 1e6;
  res.cpu_ms = Ms(ru.ru_utime) + Ms(ru.ru_stime);
  if (!options.out_path.empty()) res.out = support::ReadFileOrEmpty(out_path);
  if (!options.err_path.empty() && !merged)
    res.err = support::ReadFileOrEmpty(err_path);
  if (killed)
    res.err += "\n(killed after " +
               std::to_string(static_cast<int>(options.timeout_s)) + " s)";
  return res;
}

RunResult RunIn(const std::vector<std::string>& args, const std::string& dir,
                double timeout_s, const std::vector<std::string>& env) {
  RunOptions options;
  options.env = env;
  options.timeout_s = timeout_s;
  options.out_path = dir + "/run.out";
  options.err_path = dir + "/run.err";
  return Run(args, options);
}

bool DaemonProcess::Start(const std::string& binary, const std::string& state,
                          const std::string& socket, const std::string& log,
                          std::string* error,
                          const std::vector<std::string>& extra_args) {
  binary_ = binary;
  socket_ = socket;
  log_ = log;
  std::vector<std::string> args = {binary, "daemon",   "--state-dir",
                                   state,  "--socket", socket};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = Spawn(args, log, {}, error, LogMode::kTruncate);
  return pid_ > 0;
}

bool DaemonProcess::WaitReady(const std::string& dir, double timeout_s,
                              std::string* error, std::string* info) {
  const int64_t deadline = MonoNs() + static_cast<int64_t>(timeout_s * 1e9);
  std::string last;
  while (MonoNs() < deadline && !g_interrupted.load()) {
    if (Exited()) {
      *error = "the daemon exited (" + DescribeStatus(exit_status_) + ")";
      return false;
    }
    RunResult r =
        RunIn({binary_, "ctl", "--socket", socket_, "--json", "info"}, dir, 0);
    if (r.ok()) {
      if (info) *info = r.out;
      return true;
    }
    last = r.Describe();
    SleepMs(20);
  }
  *error = g_interrupted.load()
               ? "interrupted"
               : "`ctl info` got no answer within " +
                     std::to_string(static_cast<int>(timeout_s)) +
                     " s: " + last;
  return false;
}

bool DaemonProcess::Exited() {
  if (pid_ <= 0) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    exit_status_ = status;
    return true;
  }
  return false;
}

void DaemonProcess::Stop() {
  if (pid_ <= 0) return;
  exit_status_ =
      StopChild(pid_, SIGTERM, stop_timeout_s_, program_invocation_short_name);
  pid_ = -1;
}

int64_t ThreadsCpuNs(pid_t pid) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& t :
       fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(t.path() / "schedstat");
    int64_t ns = 0;
    if (in >> ns) total += ns;
  }
  return ec ? -1 : total;
}

double ProcessCpuSeconds(pid_t pid) {
  if (pid <= 0) return -1;
  std::string stat =
      support::ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  double utime = 0, stime = 0;
  // Fields 3.. follow the ")"; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::atof(field.c_str());
    if (i == 15) stime = std::atof(field.c_str());
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

bool BenchDir::Make(const char* bench, const std::string& name, mode_t mode) {
  std::string tmpl = (fs::temp_directory_path() / (name + ".XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) {
    std::fprintf(stderr, "%s: mkdtemp: %s\n", bench, std::strerror(errno));
    return false;
  }
  path_ = tmpl;
  if (mode != 0700) chmod(path_.c_str(), mode);
  return true;
}

BenchDir::~BenchDir() {
  if (path_.empty()) return;
  if (keep) {
    if (print_kept) std::printf("kept %s\n", path_.c_str());
    return;
  }
  RemoveTree(path_);
  if (after_remove) after_remove(fs::path(path_).parent_path().string());
}

void RemoveTree(const std::string& path) {
  if (path.empty()) return;
  ::chmod(path.c_str(), S_IRWXU);
  nftw(path.c_str(), MakeWritable, 64, FTW_PHYS);
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec)
    std::fprintf(stderr, "%s: cannot remove %s: %s\n",
                 program_invocation_short_name, path.c_str(),
                 ec.message().c_str());
}

}  // namespace relsupd::bench
