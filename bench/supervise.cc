// supervise: the run stage against its peers (issue 4's benchmark).
//
// Measures, in one run and side by side, relsupd, runit (runsvdir/runsv),
// supervisord and PM2:
//   1. restart latency: SIGKILL of a child until its replacement reached
//      main() (bench/supervise_child sends a CLOCK_MONOTONIC timestamp over
//      a unix datagram socket); K instances killed round-robin so that each
//      kill is a first restart (no backoff); median and p95;
//   2. fan-out: N instances of `sleep` started at once, from the trigger
//      (relsupd: `ctl scale`; runit: runsvdir on N service dirs;
//      supervisord: supervisord with numprocs=N; PM2: `pm2 start` of an
//      ecosystem file with N apps) until the N-th `sleep` exec'd, taken from
//      the kernel's exec events (proc connector), /proc polling otherwise;
//   3. memory with the N instances up: the supervisor's RSS and the PSS of
//      its processes, and of the whole tree with the N sleeps;
//   4. crash storm: M services that exit 1 at once, restarting forever:
//      the supervisor's CPU over a window and the wall time of one status
//      query meanwhile (`relsupd ctl ps`, `sv status`, `supervisorctl
//      status`, `pm2 jlist`);
//   5. log throughput: one bench/log_writer writing --log-mb MB of
//      numbered lines to stdout as fast as it can, captured to disk by the
//      peer (relsupd's log store, svlogd, supervisord's stdout_logfile,
//      PM2's out file): MB/s from its first write until its last line is in
//      a log file, and every captured file parsed for lines lost.
// and prints a table with PASS/FAIL against relsupd's targets. A peer that
// is not installed (PM2 is installed with npm into the temporary dir when
// absent) is printed as "n/a (reason)". Everything runs in a temporary dir;
// every process started is stopped by pid, and the benchmark is a child
// subreaper so that daemonized peers (PM2's God daemon, runsv orphans) stay
// in its tree and are reaped. Exit code 0 whatever the figures; 1 when a
// setup step failed for relsupd itself; 2 on a usage error.
//
//   build/bench/supervise [--relsupd PATH] [--pm2 PATH] [--peers LIST]
//                         [--phases LIST] ...
//
// See bench/README.md ("supervise") for what is fair and how.

#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/child_hello.h"

extern char** environ;

namespace fs = std::filesystem;

namespace {

using Json = nlohmann::json;

// relsupd's targets.
constexpr double kTargetRestartMedianMs = 1.0;
constexpr double kTargetRestartP95Ms = 3.0;
constexpr double kTargetFanoutS = 0.5;
constexpr double kTargetRssBytes = 20e6;  // 20 MB
constexpr double kTargetStormCpu = 0.05;  // of one core
constexpr double kTargetPsP99Ms = 10.0;
constexpr double kTargetLogMBps = 100.0;  // MB = 10^6 bytes

// Log-throughput settings for every peer: files rotated at 64 MiB, and as
// many of them kept as the run needs (see LogFilesToKeep), so that rotation
// drops nothing; relsupd's per-instance rate limit at 1 GiB/s.
constexpr int64_t kLogFileBytes = int64_t{64} << 20;
constexpr int64_t kLogRateLimit = int64_t{1} << 30;

// Distinct `sleep` arguments per peer, so that the exec watcher can tell
// whose instances it sees.
const char* const kSleepMarker[] = {"9000001", "9000002", "9000003", "9000004"};

std::atomic<bool> g_interrupted{false};
void OnInterrupt(int) { g_interrupted.store(true); }

struct Options {
  std::string relsupd = RELSUPD_BIN;
  std::string child = SUPERVISE_CHILD_BIN;
  std::string pm2;  // empty: `pm2` on PATH, else npm install
  std::vector<std::string> peers = {"relsupd", "runit", "supervisord", "pm2"};
  std::set<std::string> phases = {"restart", "fanout", "storm", "log"};
  int kills = 50;
  int instances = 10;  // killed round-robin
  int gap_ms = 150;    // between two kills
  int fanout = 1000;
  int storm = 100;
  double storm_s = 10;
  int status_gap_ms = 250;
  bool keep = false;
  int rt_priority = 0;  // >0: SCHED_FIFO for the benchmark and all it starts
  std::string writer = LOG_WRITER_BIN;
  int log_mb = 200;         // payload, in MB (10^6 bytes)
  int log_line_bytes = 128;  // each line, '\n' included
  bool Phase(const char* name) const { return phases.count(name) > 0; }
  int64_t LogLines() const {
    return (int64_t{log_mb} * 1'000'000 + log_line_bytes - 1) / log_line_bytes;
  }
  int64_t LogPayloadBytes() const { return LogLines() * log_line_bytes; }
  // Log files (of kLogFileBytes) each peer keeps (relsupd's log_max_files
  // counts current.log, svlogd's n and supervisord's backups only the
  // rotated ones): room for the payload with relsupd's JSON envelope (under
  // 256 bytes a line) and then some.
  int64_t LogFilesToKeep() const {
    return std::min<int64_t>(1000, (LogLines() * (log_line_bytes + 256)) / kLogFileBytes + 4);
  }
};

void Usage(FILE* out) {
  std::fprintf(
      out,
      "usage: supervise [--relsupd PATH] [--pm2 PATH] [--peers LIST] [--phases LIST]\n"
      "                 [--kills N] [--instances N] [--gap-ms MS] [--fanout N]\n"
      "                 [--storm N] [--storm-seconds S] [--log-mb N]\n"
      "                 [--log-line-bytes N] [--rt PRIO] [--keep]\n"
      "  --relsupd PATH     relsupd binary (default %s)\n"
      "  --pm2 PATH         pm2 CLI (default: pm2 on PATH, else npm install pm2\n"
      "                     into the temporary dir)\n"
      "  --peers LIST       comma-separated subset of relsupd,runit,supervisord,pm2\n"
      "  --phases LIST      comma-separated subset of restart,fanout,storm,log\n"
      "                     (fanout includes the memory figures; default all)\n"
      "  --kills N          restart-latency kills per peer (default 50)\n"
      "  --instances N      instances killed round-robin (default 10)\n"
      "  --gap-ms MS        pause between two kills (default 150)\n"
      "  --fanout N         instances of sleep started at once (default 1000)\n"
      "  --storm N          crashing services (default 100)\n"
      "  --storm-seconds S  storm measuring window (default 10)\n"
      "  --log-mb N         log throughput: MB (10^6 bytes) of lines the writer\n"
      "                     writes (default 200)\n"
      "  --log-line-bytes N each line's length, newline included (16-16384,\n"
      "                     default 128)\n"
      "  --rt PRIO          run the benchmark, every supervisor and every child\n"
      "                     SCHED_FIFO at PRIO (1-99), inherited: measures the\n"
      "                     supervisors, not the machine's other load\n"
      "  --keep             keep the temporary dir\n",
      RELSUPD_BIN);
}

// "a,b,c" -> its items, each one of `allowed`; false for another or none.
bool ParseList(const std::string& text, const std::set<std::string>& allowed,
               std::vector<std::string>* out) {
  out->clear();
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (allowed.count(item) == 0) return false;
    out->push_back(item);
  }
  return !out->empty();
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    auto positive = [&](int* out) {
      *out = std::atoi(v);
      return *out > 0;
    };
    if (a == "-h" || a == "--help") {
      Usage(stdout);
      std::exit(0);
    } else if (a == "--relsupd" && (v = value())) {
      o->relsupd = v;
    } else if (a == "--pm2" && (v = value())) {
      o->pm2 = v;
    } else if (a == "--peers" && (v = value())) {
      std::vector<std::string> peers;
      if (!ParseList(v, {"relsupd", "runit", "supervisord", "pm2"}, &peers)) return false;
      o->peers = peers;
    } else if (a == "--phases" && (v = value())) {
      std::vector<std::string> phases;
      if (!ParseList(v, {"restart", "fanout", "storm", "log"}, &phases)) return false;
      o->phases = std::set<std::string>(phases.begin(), phases.end());
    } else if (a == "--log-mb" && (v = value())) {
      if (!positive(&o->log_mb) || o->log_mb > 100000) return false;
    } else if (a == "--log-line-bytes" && (v = value())) {
      if (!positive(&o->log_line_bytes) || o->log_line_bytes < 16 ||
          o->log_line_bytes > 16384)
        return false;
    } else if (a == "--kills" && (v = value())) {
      if (!positive(&o->kills)) return false;
    } else if (a == "--instances" && (v = value())) {
      if (!positive(&o->instances)) return false;
    } else if (a == "--gap-ms" && (v = value())) {
      if (!positive(&o->gap_ms)) return false;
    } else if (a == "--fanout" && (v = value())) {
      if (!positive(&o->fanout) || o->fanout > 10000) return false;
    } else if (a == "--storm" && (v = value())) {
      if (!positive(&o->storm) || o->storm > 10000) return false;
    } else if (a == "--storm-seconds" && (v = value())) {
      o->storm_s = std::atof(v);
      if (!(o->storm_s > 0)) return false;
    } else if (a == "--rt" && (v = value())) {
      if (!positive(&o->rt_priority) || o->rt_priority > 99) return false;
    } else if (a == "--keep") {
      o->keep = true;
    } else {
      return false;
    }
  }
  // The writer numbers its lines with 9 digits.
  return o->LogLines() <= 999'999'999;
}

// ---- Small helpers ---------------------------------------------------------

int64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void SleepMs(int64_t ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

template <typename T>
T Percentile(std::vector<T> v, double p) {
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteFile(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  return out.good() && chmod(path.c_str(), mode) == 0;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r'))
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
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The environment for children, without systemd's notification and
// activation variables, plus `extra` ("KEY=VALUE", replacing).
std::vector<std::string> ChildEnv(const std::vector<std::string>& extra = {}) {
  static const char* const kDrop[] = {"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
                                      "LISTEN_FDS=",    "LISTEN_PID=",    "LISTEN_FDNAMES="};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view s(*e);
    bool drop = false;
    for (const char* d : kDrop) drop = drop || s.starts_with(d);
    for (const auto& x : extra) drop = drop || s.starts_with(x.substr(0, x.find('=') + 1));
    if (!drop) env.emplace_back(s);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// The regular files in `dir` whose name `match` accepts, sorted by name.
std::vector<std::string> FilesIn(const std::string& dir,
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
    const std::string suffix = dot == std::string::npos ? "" : name.substr(dot + 1);
    if (suffix.empty() || suffix.find_first_not_of("0123456789") != std::string::npos) return 0;
    return std::atoi(suffix.c_str());
  };
  std::stable_sort(files.begin(), files.end(), [&](const std::string& a, const std::string& b) {
    return generation(a) > generation(b);
  });
  return files;
}

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string p = dir + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Starts argv in the background: stdin /dev/null, stdout+stderr to `log`.
// With `pdeathsig`, the child gets SIGTERM when the benchmark dies.
pid_t Spawn(std::vector<std::string> args, const std::vector<std::string>& extra_env,
            const std::string& log, bool pdeathsig, std::string* error) {
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

struct RunResult {
  int status = -1;
  double ms = 0;
  double cpu_ms = 0;  // the child's user+system time (wait4)
  std::string out, err;
  bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string Describe() const {
    std::string e = Trim(LastLines(err.empty() ? out : err, 5));
    return DescribeStatus(status) + (e.empty() ? "" : ": " + e);
  }
};

// Runs argv to completion (posix_spawn to waitpid), output captured in
// files under `dir` unless `discard_output`; gives up (SIGKILL to it) after
// `timeout_s`.
RunResult Run(std::vector<std::string> args, const std::string& dir,
              const std::vector<std::string>& extra_env = {}, bool discard_output = false,
              double timeout_s = 120) {
  RunResult res;
  const std::string out_path = discard_output ? "/dev/null" : dir + "/run.out";
  const std::string err_path = discard_output ? "/dev/null" : dir + "/run.err";
  std::vector<std::string> env = ChildEnv(extra_env);
  std::vector<char*> argv = CStrings(args), envp = CStrings(env);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
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
    return static_cast<double>(tv.tv_sec) * 1e3 + static_cast<double>(tv.tv_usec) / 1e3;
  };
  res.cpu_ms = ms(ru.ru_utime) + ms(ru.ru_stime);
  if (!discard_output) {
    res.out = ReadAll(out_path);
    res.err = ReadAll(err_path);
  }
  if (killed) res.err += "\n(killed after " + std::to_string(static_cast<int>(timeout_s)) + " s)";
  return res;
}

// ---- /proc -----------------------------------------------------------------

struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';
  std::string comm;
  uint64_t starttime = 0;  // clock ticks after boot
};

bool ReadProcStat(pid_t pid, ProcStat* st) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  char* open_paren = std::strchr(buf, '(');
  char* close_paren = std::strrchr(buf, ')');
  if (!open_paren || !close_paren || close_paren < open_paren) return false;
  st->pid = pid;
  st->comm.assign(open_paren + 1, close_paren);
  // Fields after comm: 3 state, 4 ppid, ... 22 starttime.
  std::istringstream rest(close_paren + 2);
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3) st->state = field[0];
    if (i == 4) st->ppid = static_cast<pid_t>(std::atoi(field.c_str()));
    if (i == 22) st->starttime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return true;
}

std::vector<ProcStat> AllProcs() {
  std::vector<ProcStat> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    ProcStat st;
    if (ReadProcStat(static_cast<pid_t>(std::atoi(name.c_str())), &st)) out.push_back(st);
  }
  return out;
}

// `root` and all its descendants.
std::vector<ProcStat> Tree(pid_t root) {
  std::vector<ProcStat> all = AllProcs();
  std::multimap<pid_t, const ProcStat*> children;
  const ProcStat* top = nullptr;
  for (const auto& p : all) {
    children.emplace(p.ppid, &p);
    if (p.pid == root) top = &p;
  }
  std::vector<ProcStat> out;
  if (!top) return out;
  std::vector<const ProcStat*> todo = {top};
  while (!todo.empty()) {
    const ProcStat* p = todo.back();
    todo.pop_back();
    out.push_back(*p);
    auto [b, e] = children.equal_range(p->pid);
    for (auto it = b; it != e; ++it) todo.push_back(it->second);
  }
  return out;
}

std::string Cmdline(pid_t pid) {
  std::string s = ReadAll("/proc/" + std::to_string(pid) + "/cmdline");
  return s;
}

// A field of /proc/PID/status or smaps_rollup ("VmRSS:", "Pss:") in kB; -1.
int64_t ProcKb(pid_t pid, const char* file, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  std::string line;
  const size_t klen = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, klen, key) == 0) return std::atoll(line.c_str() + klen);
  return -1;
}

// /proc/PID/schedstat of the main thread: ns on a CPU and ns waiting for
// one (run queue). False when gone.
bool SchedStat(pid_t pid, int64_t* run_ns, int64_t* wait_ns) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/schedstat");
  return static_cast<bool>(in >> *run_ns >> *wait_ns);
}

// CPU time of every thread of `pid`, in ns; -1 when gone.
int64_t CpuNs(pid_t pid) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(t.path() / "schedstat");
    int64_t ns = 0;
    if (in >> ns) total += ns;
  }
  return ec ? -1 : total;
}

// Kills (SIGKILL, by pid) and reaps every descendant of the benchmark
// except those in `keep` and their descendants. The benchmark is a child
// subreaper, so orphans of a stopped supervisor end up here. Returns how
// many it had to kill; `what` gets "PID COMM" of each.
int KillStrays(const std::set<pid_t>& keep = {}, std::string* what = nullptr) {
  int killed = 0;
  for (int round = 0; round < 50; ++round) {
    std::vector<ProcStat> tree = Tree(getpid());
    std::set<pid_t> kept;
    for (pid_t k : keep)
      for (const auto& p : Tree(k)) kept.insert(p.pid);
    bool any = false;
    for (const auto& p : tree) {
      if (p.pid == getpid() || kept.count(p.pid)) continue;
      any = true;
      if (p.state != 'Z') {
        kill(p.pid, SIGKILL);
        ++killed;
        if (what && what->size() < 200)
          *what += (what->empty() ? "" : ", ") + std::to_string(p.pid) + " " + p.comm;
      }
    }
    // Reap our direct children among them (zombies included).
    for (const auto& p : tree)
      if (p.ppid == getpid() && !kept.count(p.pid)) {
        int status = 0;
        waitpid(p.pid, &status, WNOHANG);
      }
    if (!any) break;
    SleepMs(20);
  }
  return killed;
}

// Waits until `root` has no descendants (other than itself) for up to
// `timeout_s`; reaps adopted zombies meanwhile. True when none are left.
bool WaitNoDescendants(pid_t root, double timeout_s) {
  const int64_t deadline = MonoNs() + static_cast<int64_t>(timeout_s * 1e9);
  for (;;) {
    std::vector<ProcStat> t = Tree(root);
    size_t alive = 0;
    for (const auto& p : t)
      if (p.pid != root && p.state != 'Z') ++alive;
    if (alive == 0) return true;
    if (MonoNs() > deadline) return false;
    SleepMs(20);
  }
}

// CPU (ns) of the processes of `root`'s tree that are not in `exclude`,
// by (pid, start time).
std::map<std::pair<pid_t, uint64_t>, int64_t> TreeCpu(pid_t root,
                                                      const std::set<pid_t>& exclude = {}) {
  std::map<std::pair<pid_t, uint64_t>, int64_t> cpu;
  if (root <= 0) return cpu;
  for (const auto& p : Tree(root))
    if (p.state != 'Z' && !exclude.count(p.pid)) cpu[{p.pid, p.starttime}] = CpuNs(p.pid);
  return cpu;
}

// Run-queue wait (ns) of every thread of the processes of `root`'s tree
// that are not in `exclude`, by (pid, start time); CpuUsed takes the
// difference of two snapshots.
std::map<std::pair<pid_t, uint64_t>, int64_t> TreeWait(pid_t root,
                                                       const std::set<pid_t>& exclude = {}) {
  std::map<std::pair<pid_t, uint64_t>, int64_t> wait;
  if (root <= 0) return wait;
  for (const auto& p : Tree(root)) {
    if (p.state == 'Z' || exclude.count(p.pid)) continue;
    int64_t total = 0;
    std::error_code ec;
    for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(p.pid) + "/task", ec)) {
      std::ifstream in(t.path() / "schedstat");
      int64_t run_ns = 0, wait_ns = 0;
      if (in >> run_ns >> wait_ns) total += wait_ns;
    }
    wait[{p.pid, p.starttime}] = ec ? -1 : total;
  }
  return wait;
}

// CPU used between two TreeCpu snapshots: processes in both count their
// difference; with `count_new`, those only in `after` count all of theirs.
int64_t CpuUsed(const std::map<std::pair<pid_t, uint64_t>, int64_t>& before,
                const std::map<std::pair<pid_t, uint64_t>, int64_t>& after, bool count_new,
                int* procs = nullptr) {
  int64_t used = 0;
  int n = 0;
  for (const auto& [key, ns] : after) {
    if (ns < 0) continue;
    auto it = before.find(key);
    if (it == before.end()) {
      if (!count_new) continue;
      used += ns;
    } else {
      if (it->second < 0) continue;
      used += ns - it->second;
    }
    ++n;
  }
  if (procs) *procs = n;
  return used;
}

// Stops a direct child: `sig`, then waits up to `timeout_s`, then SIGKILL.
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

// ---- The children's hello socket ------------------------------------------

class HelloSocket {
 public:
  ~HelloSocket() {
    if (fd_ >= 0) close(fd_);
  }
  bool Open(const std::string& path, std::string* error) {
    path_ = path;
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
      *error = "socket path too long: " + path;
      return false;
    }
    std::strcpy(addr.sun_path, path.c_str());
    unlink(path.c_str());
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      *error = "cannot bind " + path + ": " + std::strerror(errno);
      return false;
    }
    int size = 4 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    chmod(path.c_str(), 0666);
    return true;
  }
  const std::string& path() const { return path_; }
  // Next hello within `timeout_ms` (0: don't wait).
  std::optional<ChildHello> Receive(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
    ChildHello h{};
    ssize_t n = recv(fd_, &h, sizeof h, MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(sizeof h)) return std::nullopt;
    h.id[sizeof h.id - 1] = '\0';
    return h;
  }

 private:
  int fd_ = -1;
  std::string path_;
};

// ---- Exec events -----------------------------------------------------------

// The kernel's process events (netlink proc connector, root only): each
// exec with its CLOCK_MONOTONIC time. Counts processes whose command line
// is `sleep MARKER` and gives the time the last of them exec'd. Without
// the connector (or after a lost event) it polls /proc instead.
class ExecWatcher {
 public:
  ~ExecWatcher() {
    if (fd_ >= 0) close(fd_);
  }
  // Starts listening; false (with why) when the connector is unavailable.
  bool Listen(std::string* why) {
    fd_ = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
    if (fd_ < 0) {
      *why = std::string("netlink connector: ") + std::strerror(errno);
      return false;
    }
    int size = 32 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = CN_IDX_PROC;
    addr.nl_pid = 0;  // the kernel picks a port id
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      *why = std::string("bind proc connector: ") + std::strerror(errno);
      close(fd_);
      fd_ = -1;
      return false;
    }
    if (!Control(PROC_CN_MCAST_LISTEN)) {
      *why = std::string("PROC_CN_MCAST_LISTEN: ") + std::strerror(errno);
      close(fd_);
      fd_ = -1;
      return false;
    }
    return true;
  }

  // Waits until `n` distinct processes run `sleep marker`; returns the
  // monotonic ns at which the last of them exec'd, or -1 on timeout.
  // `how` says which method measured it.
  int64_t WaitSleeps(const std::string& marker, int n, double timeout_s, std::string* how,
                     std::set<pid_t>* pids_out) {
    const int64_t deadline = MonoNs() + static_cast<int64_t>(timeout_s * 1e9);
    std::map<pid_t, int64_t> last_exec;  // pid -> latest exec time
    std::set<pid_t> matched;
    bool lost = fd_ < 0;
    while (!lost && static_cast<int>(matched.size()) < n && !g_interrupted.load()) {
      if (MonoNs() > deadline) return -1;
      if (!ReadEvents(100, &last_exec, &lost)) continue;
      for (const auto& [pid, ts] : last_exec) {
        (void)ts;
        if (!matched.count(pid) && IsSleep(pid, marker)) matched.insert(pid);
      }
    }
    if (!lost && !g_interrupted.load()) {
      // An exec's new command line is visible a moment before its event is
      // queued: take what is still coming, then the latest exec per pid.
      SleepMs(20);
      while (ReadEvents(0, &last_exec, &lost)) {
      }
      if (!lost) {
        int64_t t = 0;
        for (pid_t pid : matched) t = std::max(t, last_exec[pid]);
        *how = "exec events";
        if (pids_out) *pids_out = matched;
        return t;
      }
    }
    // Polling /proc: the time is when the poll saw the n-th.
    *how = "polling /proc every 5 ms";
    while (!g_interrupted.load()) {
      int64_t now = MonoNs();
      std::set<pid_t> seen;
      for (const auto& p : AllProcs())
        if (p.comm == "sleep" && IsSleep(p.pid, marker)) seen.insert(p.pid);
      if (static_cast<int>(seen.size()) >= n) {
        if (pids_out) *pids_out = seen;
        return now;
      }
      if (now > deadline) return -1;
      SleepMs(5);
    }
    return -1;
  }

  // Discards queued events.
  void Drain() {
    std::map<pid_t, int64_t> ignored;
    bool lost = false;
    while (fd_ >= 0 && ReadEvents(0, &ignored, &lost)) {
    }
  }

 private:
  static bool IsSleep(pid_t pid, const std::string& marker) {
    std::string c = Cmdline(pid);
    // "sleep\0MARKER\0" or "/bin/sleep\0MARKER\0".
    size_t z = c.find('\0');
    if (z == std::string::npos) return false;
    std::string argv0 = c.substr(0, z);
    if (argv0 != "sleep" && !argv0.ends_with("/sleep")) return false;
    return c.compare(z + 1, std::string::npos, marker + '\0') == 0;
  }

  bool Control(proc_cn_mcast_op op) {
    // nlmsghdr, then cn_msg, then the op (cn_msg ends in a flexible array,
    // so no struct can hold all three in C++).
    alignas(nlmsghdr) char buf[NLMSG_SPACE(sizeof(cn_msg) + sizeof(op))] = {};
    auto* hdr = reinterpret_cast<nlmsghdr*>(buf);
    hdr->nlmsg_len = NLMSG_LENGTH(sizeof(cn_msg) + sizeof(op));
    hdr->nlmsg_type = NLMSG_DONE;
    cn_msg msg{};
    msg.id.idx = CN_IDX_PROC;
    msg.id.val = CN_VAL_PROC;
    msg.len = sizeof(op);
    std::memcpy(NLMSG_DATA(hdr), &msg, sizeof msg);
    std::memcpy(static_cast<char*>(NLMSG_DATA(hdr)) + sizeof msg, &op, sizeof op);
    return send(fd_, buf, hdr->nlmsg_len, 0) == static_cast<ssize_t>(hdr->nlmsg_len);
  }

  // Reads the events available within `timeout_ms`; false when none came.
  bool ReadEvents(int timeout_ms, std::map<pid_t, int64_t>* last_exec, bool* lost) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    alignas(nlmsghdr) char buf[64 * 1024];
    bool any = false;
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == ENOBUFS) *lost = true;
        break;
      }
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n);
           h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != NLMSG_DONE) continue;
        auto* msg = static_cast<cn_msg*>(NLMSG_DATA(h));
        if (msg->id.idx != CN_IDX_PROC || msg->id.val != CN_VAL_PROC) continue;
        auto* ev = reinterpret_cast<proc_event*>(msg->data);
        if (static_cast<uint32_t>(ev->what) != kProcEventExec) continue;
        pid_t pid = ev->event_data.exec.process_pid;
        int64_t& t = (*last_exec)[pid];
        t = std::max(t, static_cast<int64_t>(ev->timestamp_ns));
        any = true;
      }
    }
    return any;
  }

  // PROC_EVENT_EXEC; the enum moved out of struct proc_event in Linux 6.6.
  static constexpr uint32_t kProcEventExec = 0x00000002;
  int fd_ = -1;
};

// ---- Results ---------------------------------------------------------------

struct Measure {
  std::string na;  // set: not measured, why
  double value = 0;
};

struct PeerResult {
  std::string name;
  std::string version;
  std::string na;  // the whole peer is n/a, why
  // Restart latency.
  std::vector<double> restart_ms;
  std::vector<double> child_wait_ms;  // the replacement's run-queue wait
  std::vector<double> child_cpu_ms;   // and its CPU time, fork to main()
  double restart_sup_cpu_us = -1;     // supervisor CPU per restart
  int restart_timeouts = 0;
  std::string restart_na;
  // Fan-out and memory.
  double fanout_s = -1;
  std::string fanout_how;
  std::string fanout_na;
  double trigger_ms = -1;  // the command that triggered it (ctl scale, pm2 start)
  double fanout_sup_cpu_s = -1;  // supervisor CPU from trigger to the last exec
  double root_rss_kb = -1;
  double root_rss_idle_kb = -1;  // before the fan-out, where the root ran
  double root_anon_kb = -1, root_file_kb = -1;  // RssAnon, RssFile
  double sup_pss_kb = -1;
  int sup_procs = 0;
  double tree_pss_kb = -1;
  int tree_procs = 0;
  // Storm.
  std::string storm_na;
  double storm_cpu = -1;  // fraction of one core
  int storm_sup_procs = 0;
  std::vector<double> status_ms;
  std::vector<double> status_cpu_ms;  // the status command's own CPU
  std::vector<double> direct_ms;      // the query over the socket, no command
  int status_failures = 0;
  std::string status_first_failure;
  std::string status_cmd;
  // Log throughput.
  std::string log_na;
  double log_mbps = -1;       // payload MB / s, first write until the last line on disk
  double log_last_s = -1;     // first write until the last line on disk
  double log_writer_s = -1;   // first write until the writer's last write returned
  double log_sup_cpu_s = -1;  // supervisor CPU meanwhile (the writer excluded)
  double log_sup_wait_s = -1;  // and its threads' run-queue wait
  int log_sup_procs = 0;
  int64_t log_lost = -1;      // sequence numbers never seen
  int64_t log_dup = 0;        // seen more than once (extra copies)
  int64_t log_damaged = 0;    // captured lines that are not a line the writer wrote
  int64_t log_other = 0;      // relsupd: records of other processes, not counted
  int64_t log_disk_bytes = 0;
  int log_files = 0;
  std::string log_settings;
  std::string log_timeout;  // set: the last line never reached the files, why
};

// ---- Peers -----------------------------------------------------------------

class Peer {
 public:
  Peer(std::string name, const Options& o, std::string dir, HelloSocket* hello)
      : name_(std::move(name)), o_(o), dir_(std::move(dir)), hello_(hello) {}
  virtual ~Peer() = default;
  const std::string& name() const { return name_; }

  // Installs or finds the peer and starts what lives for all phases.
  // False: n/a, with why.
  virtual bool Setup(std::string* why, std::string* version) = 0;
  // Phase 1: `k` instances of supervise_child (ids distinct), running.
  virtual bool StartChildren(int k, std::string* error) = 0;
  // Phase 2: writes what the fan-out needs, so that Trigger only starts it.
  virtual bool PrepareFanout(int n, const std::string& marker, std::string* error) = 0;
  // Starts the fan-out (returns at once; the CLI it may run is reaped later
  // by FinishTrigger).
  virtual bool TriggerFanout(std::string* error) = 0;
  // Waits for what Trigger ran; its wall time in ms (-1 when none).
  virtual double FinishTrigger() { return -1; }
  // Phase 3: `m` services that exit 1 at once and restart forever.
  virtual bool StartStorm(int m, std::string* error) = 0;
  virtual std::vector<std::string> StatusCommand() = 0;
  virtual std::vector<std::string> StatusEnv() { return {}; }
  // The same query without the command's own start-up, where the peer has
  // a socket protocol the benchmark speaks (relsupd: JSON-RPC `ps`): its
  // wall time in ms, -1 when not applicable or failed.
  virtual double DirectStatusMs() { return -1; }
  // The supervisor's root process (its tree is measured).
  virtual pid_t Root() = 0;
  // Phase 5: one log_writer writing `lines` lines of `line_bytes`, its
  // stdout captured to files by the peer.
  virtual bool StartLogWriter(int64_t lines, int line_bytes, std::string* error) = 0;
  // The files the writer's output went to (current and rotated), as they
  // are now, oldest first (a line may be split across two of them: read
  // them as one stream). LogIsJson: relsupd's JSON lines (text in "text").
  virtual std::vector<std::string> LogFiles() = 0;
  virtual bool LogIsJson() const { return false; }
  // How the phase captures, for the notes.
  virtual std::string LogSettings() const = 0;
  // Stops everything the phase started (by pid) and waits for it.
  virtual void StopPhase() = 0;
  // Stops what Setup started.
  virtual void Teardown() = 0;
  // Notes printed under the table.
  virtual std::string Config() const = 0;

 protected:
  std::string name_;
  const Options& o_;
  std::string dir_;
  HelloSocket* hello_;
};

// relsupd: one daemon for all phases; an app `bench` whose release declares
// `child`, `worker` and `crash` at scale 0; each phase scales one of them.
class RelsupdPeer final : public Peer {
 public:
  using Peer::Peer;
  ~RelsupdPeer() override { Teardown(); }

  bool Setup(std::string* why, std::string* version) override {
    socket_ = dir_ + "/s.sock";
    fs::create_directories(dir_ + "/state");
    // Round-robin kills reach each instance every ~1.5 s: a reset after 1 s
    // makes each kill a first restart. The storm restarts at most once a
    // second (backoff 100 ms doubling to 1 s), like runsv; no crash limit.
    // The log keys matter only to the log phase (the other phases' children
    // write nothing): the default rate limit (4 MiB/s per instance) is a
    // deliberate throttle that would make the phase measure it, and the
    // default 4 files of 8 MiB would rotate most of the lines away.
    const std::string config =
        "log_level: warn\n"
        "restart_initial_delay: 100ms\n"
        "restart_max_delay: 1s\n"
        "restart_reset_after: 1s\n"
        "crash_limit: 1000000\n"
        "crash_window: 10s\n"
        "log_rate_limit: " + std::to_string(kLogRateLimit) + "\n"
        "log_max_file_bytes: " + std::to_string(kLogFileBytes) + "\n"
        "log_max_files: " + std::to_string(o_.LogFilesToKeep()) + "\n";
    if (!WriteFile(dir_ + "/relsupd.yaml", config)) {
      *why = "cannot write " + dir_ + "/relsupd.yaml";
      return false;
    }
    std::string error;
    daemon_ = Spawn({o_.relsupd, "daemon", "--state-dir", dir_ + "/state", "--socket", socket_,
                     "--config", dir_ + "/relsupd.yaml"},
                    {}, dir_ + "/daemon.log", true, &error);
    if (daemon_ < 0) {
      *why = error;
      return false;
    }
    const int64_t deadline = MonoNs() + 15'000'000'000;
    for (;;) {
      RunResult r = Run({o_.relsupd, "ctl", "--socket", socket_, "--json", "info"}, dir_);
      if (r.ok()) {
        try {
          *version = Json::parse(r.out).value("version", "?");
        } catch (...) {
          *version = "?";
        }
        break;
      }
      int status = 0;
      if (waitpid(daemon_, &status, WNOHANG) == daemon_) {
        daemon_ = -1;
        *why = "the daemon exited (" + DescribeStatus(status) + "): " +
               Trim(LastLines(ReadAll(dir_ + "/daemon.log"), 5));
        return false;
      }
      if (MonoNs() > deadline || g_interrupted.load()) {
        *why = "no answer on " + socket_ + " within 15 s: " + r.Describe();
        return false;
      }
      SleepMs(20);
    }
    // The app: supervise_child copied into it, three process types.
    const std::string app = dir_ + "/app";
    fs::create_directories(app);
    std::error_code ec;
    fs::copy_file(o_.child, app + "/supervise_child", fs::copy_options::overwrite_existing, ec);
    if (ec) {
      *why = "cannot copy " + o_.child + ": " + ec.message();
      return false;
    }
    chmod((app + "/supervise_child").c_str(), 0755);
    // log_writer is run from where it was built, not copied into the app:
    // importing the larger artifact left the daemon 1.1 MiB more anonymous
    // RSS, which the memory phase would have counted.
    WriteFile(app + "/relsupd.yaml",
              "processes:\n"
              "  child:\n"
              "    command: ./supervise_child " + hello_->path() + "\n"
              "    scale: 0\n"
              "  worker:\n"
              "    command: sleep " + std::string(kSleepMarker[0]) + "\n"
              "    scale: 0\n"
              "  crash:\n"
              "    command: /bin/false\n"
              "    scale: 0\n"
              "  log:\n"
              "    command: " + o_.writer + " " + hello_->path() + " " +
                  std::to_string(o_.LogLines()) + " " + std::to_string(o_.log_line_bytes) + "\n"
              "    scale: 0\n");
    if (!Ctl({"app", "create", "bench"}, why)) return false;
    RunResult b = Run({o_.relsupd, "build", app, "-o", dir_ + "/app.tar.gz"}, dir_);
    if (!b.ok()) {
      *why = "relsupd build: " + b.Describe();
      return false;
    }
    std::string out;
    if (!Ctl({"--json", "build", "import", "bench", dir_ + "/app.tar.gz"}, why, &out))
      return false;
    std::string id;
    try {
      id = Json::parse(out).at("id").get<std::string>();
    } catch (...) {
      *why = "ctl build import printed no id: " + Trim(out);
      return false;
    }
    if (!Ctl({"release", "create", "bench", "--build", id}, why)) return false;
    if (!Ctl({"activate", "bench", "v1"}, why)) return false;
    return true;
  }

  bool StartChildren(int k, std::string* error) override {
    return Ctl({"scale", "bench", "child=" + std::to_string(k)}, error);
  }
  bool PrepareFanout(int n, const std::string&, std::string*) override {
    n_ = n;
    return true;
  }
  bool TriggerFanout(std::string* error) override {
    trigger_t0_ = MonoNs();
    trigger_ = Spawn({o_.relsupd, "ctl", "--socket", socket_, "scale", "bench",
                      "worker=" + std::to_string(n_)},
                     {}, dir_ + "/scale.log", true, error);
    return trigger_ > 0;
  }
  double FinishTrigger() override {
    if (trigger_ <= 0) return -1;
    int status = 0;
    while (waitpid(trigger_, &status, 0) < 0 && errno == EINTR) {
    }
    double ms = static_cast<double>(MonoNs() - trigger_t0_) / 1e6;
    trigger_ = -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ms : -1;
  }
  bool StartStorm(int m, std::string* error) override {
    return Ctl({"scale", "bench", "crash=" + std::to_string(m)}, error);
  }
  std::vector<std::string> StatusCommand() override {
    return {o_.relsupd, "ctl", "--socket", socket_, "ps", "bench"};
  }
  double DirectStatusMs() override {
    // One connection per query, as the ctl command makes.
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_.c_str());
    const std::string req = R"({"jsonrpc":"2.0","id":1,"method":"ps","params":{"app":"bench"}})"
                            "\n";
    const int64_t t0 = MonoNs();
    double ms = -1;
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      std::string resp;
      char buf[16384];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
        resp.append(buf, static_cast<size_t>(n));
        if (resp.back() == '\n') break;
      }
      if (!resp.empty() && resp.back() == '\n' && resp.find("\"result\"") != std::string::npos)
        ms = static_cast<double>(MonoNs() - t0) / 1e6;
    }
    close(fd);
    return ms;
  }
  bool StartLogWriter(int64_t, int, std::string* error) override {
    // The line count and length are in the release's command (Setup).
    return Ctl({"scale", "bench", "log=1"}, error);
  }
  std::vector<std::string> LogFiles() override {
    return OldestFirst(FilesIn(dir_ + "/state/logs/bench",
                               [](const std::string& f) { return f.starts_with("current.log"); }));
  }
  bool LogIsJson() const override { return true; }
  std::string LogSettings() const override {
    return "relsupd: log store STATE/logs/bench/current.log*, log_rate_limit " +
           std::to_string(kLogRateLimit) + " (1 GiB/s; default 4 MiB/s), log_max_file_bytes " +
           std::to_string(kLogFileBytes) + " (64 MiB), log_max_files " +
           std::to_string(o_.LogFilesToKeep()) + "; JSON lines with time, app, release, "
           "process, stream";
  }
  pid_t Root() override { return daemon_; }
  void StopPhase() override {
    std::string error;
    if (daemon_ <= 0) return;
    if (!Ctl({"scale", "bench", "child=0", "worker=0", "crash=0", "log=0"}, &error))
      std::fprintf(stderr, "supervise: relsupd: %s\n", error.c_str());
    if (!WaitNoDescendants(daemon_, 60))
      std::fprintf(stderr, "supervise: relsupd: instances still running 60 s after "
                           "scale to 0; killing them\n");
    KillStrays({daemon_});
  }
  void Teardown() override {
    if (daemon_ > 0) {
      int status = StopChild(daemon_, SIGTERM, 30);
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        std::fprintf(stderr, "supervise: relsupd daemon stopped: %s\n%s",
                     DescribeStatus(status).c_str(),
                     LastLines(ReadAll(dir_ + "/daemon.log"), 20).c_str());
      daemon_ = -1;
    }
    KillStrays();
  }
  std::string Config() const override {
    return "relsupd: `relsupd daemon` with restart_initial_delay 100ms, restart_max_delay 1s, "
           "restart_reset_after 1s, crash_limit 1000000 (cgroup: default); app from "
           "relsupd.yaml, each phase `ctl scale`";
  }

 private:
  bool Ctl(std::vector<std::string> args, std::string* error, std::string* out = nullptr) {
    std::vector<std::string> argv = {o_.relsupd, "ctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = Run(argv, dir_);
    if (!r.ok()) {
      std::string what;
      for (const auto& a : args) what += (what.empty() ? "" : " ") + a;
      *error = "relsupd ctl " + what + ": " + r.Describe();
      return false;
    }
    if (out) *out = r.out;
    return true;
  }

  std::string socket_;
  pid_t daemon_ = -1;
  pid_t trigger_ = -1;
  int64_t trigger_t0_ = 0;
  int n_ = 0;
};

// runit: one runsvdir per phase on its own directory of service dirs.
class RunitPeer final : public Peer {
 public:
  using Peer::Peer;
  ~RunitPeer() override { Teardown(); }

  bool Setup(std::string* why, std::string* version) override {
    runsvdir_ = FindOnPath("runsvdir");
    sv_ = FindOnPath("sv");
    svlogd_ = FindOnPath("svlogd");
    if (runsvdir_.empty() || sv_.empty() || svlogd_.empty()) {
      *why = "runsvdir/sv not found; apt-get install runit";
      return false;
    }
    RunResult r = Run({"dpkg-query", "-W", "-f", "${Version}", "runit"}, dir_);
    *version = r.ok() ? Trim(r.out) : "?";
    return true;
  }
  bool StartChildren(int k, std::string* error) override {
    NewDir("children");
    // ./run is supervise_child itself (a symlink: no shell in between);
    // it finds the socket in SUPERVISE_SOCK and names itself after the
    // service directory.
    for (int i = 1; i <= k; ++i) {
      std::string svc = phase_dir_ + "/runit." + std::to_string(i);
      fs::create_directories(svc);
      fs::create_symlink(o_.child, svc + "/run");
    }
    return StartRunsvdir(error);
  }
  bool PrepareFanout(int n, const std::string& marker, std::string*) override {
    NewDir("fanout");
    // The usual runit run script.
    for (int i = 1; i <= n; ++i) {
      std::string svc = phase_dir_ + "/s" + std::to_string(i);
      fs::create_directories(svc);
      WriteFile(svc + "/run", "#!/bin/sh\nexec sleep " + marker + "\n", 0755);
    }
    return true;
  }
  bool TriggerFanout(std::string* error) override { return StartRunsvdir(error); }
  bool StartStorm(int m, std::string* error) override {
    NewDir("storm");
    for (int i = 1; i <= m; ++i) {
      std::string svc = phase_dir_ + "/c" + std::to_string(i);
      fs::create_directories(svc);
      fs::create_symlink("/bin/false", svc + "/run");
      storm_dirs_.push_back(svc);
    }
    return StartRunsvdir(error);
  }
  std::vector<std::string> StatusCommand() override {
    std::vector<std::string> argv = {sv_, "status"};
    argv.insert(argv.end(), storm_dirs_.begin(), storm_dirs_.end());
    return argv;
  }
  bool StartLogWriter(int64_t lines, int line_bytes, std::string* error) override {
    // The usual service with a log service: runsv pipes ./run's stdout to
    // ./log/run, which is svlogd on a log directory with its own config
    // (rotation size s, n old files kept).
    NewDir("log");
    const std::string svc = phase_dir_ + "/w1";
    log_dir_ = svc + "/log/main";
    fs::create_directories(log_dir_);
    WriteFile(svc + "/run",
              "#!/bin/sh\nexec " + o_.writer + " " + hello_->path() + " " +
                  std::to_string(lines) + " " + std::to_string(line_bytes) + "\n",
              0755);
    WriteFile(svc + "/log/run", "#!/bin/sh\nexec " + svlogd_ + " " + log_dir_ + "\n", 0755);
    WriteFile(log_dir_ + "/config", "s" + std::to_string(kLogFileBytes) + "\nn" +
                                        std::to_string(o_.LogFilesToKeep()) + "\n");
    return StartRunsvdir(error);
  }
  std::vector<std::string> LogFiles() override {
    // The rotated @TAI64N.s (or .u when not fully written), named by their
    // time, then current ('@' sorts before 'c').
    return FilesIn(log_dir_, [](const std::string& f) {
      return f == "current" || (f.starts_with("@") && (f.ends_with(".s") || f.ends_with(".u")));
    });
  }
  std::string LogSettings() const override {
    return "runit: service dir with ./log/run `exec svlogd DIR` (svlogd's defaults: no "
           "timestamps, 1024-byte read buffer), DIR/config s" +
           std::to_string(kLogFileBytes) + " n" + std::to_string(o_.LogFilesToKeep());
  }
  pid_t Root() override { return runsvdir_pid_; }
  void StopPhase() override {
    if (runsvdir_pid_ > 0) {
      // SIGHUP: runsvdir sends TERM to each runsv and exits; each runsv
      // stops its service (TERM, CONT) and exits.
      std::set<pid_t> runsvs;
      for (const auto& p : Tree(runsvdir_pid_))
        if (p.ppid == runsvdir_pid_) runsvs.insert(p.pid);
      StopChild(runsvdir_pid_, SIGHUP, 10);
      runsvdir_pid_ = -1;
      const int64_t deadline = MonoNs() + 30'000'000'000;
      while (MonoNs() < deadline) {
        bool any = false;
        for (pid_t p : runsvs) {
          ProcStat st;
          if (ReadProcStat(p, &st) && st.state != 'Z') any = true;
          int status = 0;
          waitpid(p, &status, WNOHANG);  // adopted by us
        }
        if (!any) break;
        SleepMs(20);
      }
    }
    storm_dirs_.clear();
    std::string what;
    int strays = KillStrays({}, &what);
    if (strays > 0)
      std::fprintf(stderr, "supervise: runit: killed %d processes left after stop: %s\n",
                   strays, what.c_str());
  }
  void Teardown() override { StopPhase(); }
  std::string Config() const override {
    return "runit: runsvdir on a fresh dir per phase; latency: ./run is a symlink to "
           "supervise_child; fan-out: `#!/bin/sh exec sleep N` run scripts, timed from the "
           "spawn of runsvdir; storm: ./run -> /bin/false (runsv restarts at most once a "
           "second)";
  }

 private:
  void NewDir(const std::string& phase) {
    phase_dir_ = dir_ + "/" + phase;
    fs::create_directories(phase_dir_);
  }
  bool StartRunsvdir(std::string* error) {
    runsvdir_pid_ = Spawn({runsvdir_, phase_dir_}, {"SUPERVISE_SOCK=" + hello_->path()},
                          dir_ + "/runsvdir.log", true, error);
    return runsvdir_pid_ > 0;
  }

  std::string runsvdir_, sv_, svlogd_, phase_dir_, log_dir_;
  pid_t runsvdir_pid_ = -1;
  std::vector<std::string> storm_dirs_;
};

// supervisord: one `supervisord -n` per phase with its own config file.
class SupervisordPeer final : public Peer {
 public:
  using Peer::Peer;
  ~SupervisordPeer() override { Teardown(); }

  bool Setup(std::string* why, std::string* version) override {
    supervisord_ = FindOnPath("supervisord");
    supervisorctl_ = FindOnPath("supervisorctl");
    if (supervisord_.empty() || supervisorctl_.empty()) {
      *why = "supervisord not found; apt-get install supervisor";
      return false;
    }
    RunResult r = Run({supervisord_, "--version"}, dir_);
    *version = r.ok() ? Trim(r.out) : "?";
    return true;
  }
  bool StartChildren(int k, std::string* error) override {
    WriteConfig("child", o_.child + " " + hello_->path() + " sd.%(process_num)d", k, "");
    return Start(error);
  }
  bool PrepareFanout(int n, const std::string& marker, std::string*) override {
    WriteConfig("sleep", "/bin/sleep " + marker, n, "");
    return true;
  }
  bool TriggerFanout(std::string* error) override { return Start(error); }
  bool StartStorm(int m, std::string* error) override {
    // startsecs stays 1 (the default): a process that exits sooner is a
    // failed start, retried with supervisord's backoff (1 s, 2 s, ...).
    WriteConfig("crash", "/bin/false", m, "startretries=1000000\n");
    return Start(error);
  }
  std::vector<std::string> StatusCommand() override {
    return {supervisorctl_, "-c", conf_, "status"};
  }
  bool StartLogWriter(int64_t lines, int line_bytes, std::string* error) override {
    log_file_ = dir_ + "/log/out.log";
    WriteConfig("log",
                o_.writer + " " + hello_->path() + " " + std::to_string(lines) + " " +
                    std::to_string(line_bytes),
                1,
                "stdout_logfile=" + log_file_ + "\nstdout_logfile_maxbytes=" +
                    std::to_string(kLogFileBytes) + "\nstdout_logfile_backups=" +
                    std::to_string(o_.LogFilesToKeep()) + "\n");
    return Start(error);
  }
  std::vector<std::string> LogFiles() override {
    // supervisord rotates at the byte count, even in the middle of a line.
    return OldestFirst(
        FilesIn(dir_ + "/log", [](const std::string& f) { return f.starts_with("out.log"); }));
  }
  std::string LogSettings() const override {
    return "supervisord: [program:log] stdout_logfile=FILE, stdout_logfile_maxbytes=" +
           std::to_string(kLogFileBytes) + ", stdout_logfile_backups=" +
           std::to_string(o_.LogFilesToKeep()) + ", other settings default";
  }
  pid_t Root() override { return pid_; }
  void StopPhase() override {
    if (pid_ > 0) {
      StopChild(pid_, SIGTERM, 60);
      pid_ = -1;
    }
    std::string what;
    int strays = KillStrays({}, &what);
    if (strays > 0)
      std::fprintf(stderr, "supervise: supervisord: killed %d processes left after stop: %s\n",
                   strays, what.c_str());
  }
  void Teardown() override { StopPhase(); }
  std::string Config() const override {
    return "supervisord: `supervisord -n` per phase, [program:x] numprocs=N, autorestart=true, "
           "other settings default (output to log files in the temp dir); fan-out timed from "
           "the spawn of supervisord; storm: startretries=1000000 (backoff 1 s, 2 s, ...)";
  }

 private:
  void WriteConfig(const std::string& program, const std::string& command, int n,
                   const std::string& extra) {
    const std::string d = dir_ + "/" + program;
    fs::create_directories(d + "/log");
    conf_ = d + "/supervisord.conf";
    WriteFile(conf_,
              "[unix_http_server]\nfile=" + d + "/supervisor.sock\n\n"
              "[supervisord]\nlogfile=" + d + "/supervisord.log\npidfile=" + d +
              "/supervisord.pid\nchildlogdir=" + d + "/log\nnodaemon=true\nminfds=" +
              std::to_string(std::max(1024, 6 * n + 64)) + "\nminprocs=" +
              std::to_string(std::max(200, n + 64)) + "\nloglevel=warn\n\n"
              "[rpcinterface:supervisor]\n"
              "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
              "[supervisorctl]\nserverurl=unix://" + d + "/supervisor.sock\n\n"
              "[program:" + program + "]\ncommand=" + command +
              "\nprocess_name=%(program_name)s_%(process_num)d\nnumprocs=" + std::to_string(n) +
              "\nautorestart=true\n" + extra);
    log_ = d + "/supervisord.out";
  }
  bool Start(std::string* error) {
    pid_ = Spawn({supervisord_, "-n", "-c", conf_}, {}, log_, true, error);
    return pid_ > 0;
  }

  std::string supervisord_, supervisorctl_, conf_, log_, log_file_;
  pid_t pid_ = -1;
};

// PM2: PM2_HOME in the temp dir; one God daemon per phase (`pm2 ping`
// starts it, `pm2 kill` ends it), apps from an ecosystem file.
class Pm2Peer final : public Peer {
 public:
  using Peer::Peer;
  ~Pm2Peer() override { Teardown(); }

  bool Setup(std::string* why, std::string* version) override {
    pm2_ = o_.pm2.empty() ? FindOnPath("pm2") : o_.pm2;
    if (pm2_.empty()) {
      if (FindOnPath("npm").empty() || FindOnPath("node").empty()) {
        *why = "pm2 not found and no node/npm to install it";
        return false;
      }
      std::printf("installing pm2 with npm into %s/npm ...\n", dir_.c_str());
      std::fflush(stdout);
      fs::create_directories(dir_ + "/npm");
      RunResult r = Run({"npm", "install", "--prefix", dir_ + "/npm", "--no-audit", "--no-fund",
                         "--loglevel=error", "pm2"},
                        dir_, {"npm_config_cache=" + dir_ + "/npm-cache"}, false, 600);
      pm2_ = dir_ + "/npm/node_modules/.bin/pm2";
      if (!r.ok() || access(pm2_.c_str(), X_OK) != 0) {
        *why = "npm install pm2 failed: " + r.Describe();
        return false;
      }
    }
    home_ = dir_ + "/home";
    fs::create_directories(home_);
    RunResult r = Run({pm2_, "--version"}, dir_, Env());
    // `pm2 --version` may start no daemon, but kill whatever it did.
    *version = r.ok() ? Trim(LastLines(Trim(r.out), 1)) : "?";
    Run({pm2_, "kill"}, dir_, Env());
    KillStrays();
    return true;
  }
  bool StartChildren(int k, std::string* error) override {
    if (!StartGod(error)) return false;
    Json apps = Json::array();
    for (int i = 1; i <= k; ++i)
      apps.push_back(App("pm2." + std::to_string(i), o_.child,
                         {hello_->path(), "pm2." + std::to_string(i)}));
    return StartApps(apps, "children", error);
  }
  bool PrepareFanout(int n, const std::string& marker, std::string* error) override {
    if (!StartGod(error)) return false;
    Json apps = Json::array();
    for (int i = 1; i <= n; ++i) apps.push_back(App("s" + std::to_string(i), "/bin/sleep", {marker}));
    fanout_file_ = dir_ + "/fanout.json";
    return WriteFile(fanout_file_, Json{{"apps", apps}}.dump());
  }
  bool TriggerFanout(std::string* error) override {
    trigger_t0_ = MonoNs();
    trigger_ = Spawn({pm2_, "start", fanout_file_}, Env(), dir_ + "/pm2-start.log", true, error);
    return trigger_ > 0;
  }
  double FinishTrigger() override {
    if (trigger_ <= 0) return -1;
    int status = 0;
    const int64_t deadline = MonoNs() + 300'000'000'000;
    for (;;) {
      pid_t r = waitpid(trigger_, &status, WNOHANG);
      if (r == trigger_ || (r < 0 && errno != EINTR)) break;
      if (MonoNs() > deadline || g_interrupted.load()) {
        kill(trigger_, SIGKILL);
        waitpid(trigger_, &status, 0);
        break;
      }
      SleepMs(5);
    }
    double ms = static_cast<double>(MonoNs() - trigger_t0_) / 1e6;
    trigger_ = -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ms : -1;
  }
  bool StartStorm(int m, std::string* error) override {
    if (!StartGod(error)) return false;
    Json apps = Json::array();
    for (int i = 1; i <= m; ++i) {
      Json app = App("c" + std::to_string(i), "/bin/false", {});
      app["restart_delay"] = 1000;  // about once a second, like runsv
      apps.push_back(app);
    }
    return StartApps(apps, "storm", error);
  }
  std::vector<std::string> StatusCommand() override { return {pm2_, "jlist"}; }
  bool StartLogWriter(int64_t lines, int line_bytes, std::string* error) override {
    if (!StartGod(error)) return false;
    // PM2 itself does not rotate (that is the pm2-logrotate module): one
    // out file, stderr discarded.
    log_dir_ = dir_ + "/logs";
    fs::create_directories(log_dir_);
    Json app = App("w1", o_.writer,
                   {hello_->path(), std::to_string(lines), std::to_string(line_bytes)});
    app["out_file"] = log_dir_ + "/out.log";
    return StartApps(Json::array({app}), "log", error);
  }
  std::vector<std::string> LogFiles() override {
    return FilesIn(log_dir_, [](const std::string& f) { return f.starts_with("out.log"); });
  }
  std::string LogSettings() const override {
    return "pm2: one fork-mode app (interpreter none), out_file FILE, merge_logs, no "
           "log_date_format; no rotation (PM2 has none without the pm2-logrotate module)";
  }
  std::vector<std::string> StatusEnv() override { return Env(); }
  pid_t Root() override { return god_; }
  void StopPhase() override {
    if (pm2_.empty()) return;
    if (trigger_ > 0) FinishTrigger();
    Run({pm2_, "kill"}, dir_, Env(), false, 120);
    if (god_ > 0) {
      // Adopted by us (subreaper): reap it.
      int status = 0;
      const int64_t deadline = MonoNs() + 10'000'000'000;
      while (waitpid(god_, &status, WNOHANG) == 0 && MonoNs() < deadline) SleepMs(10);
      god_ = -1;
    }
    std::string what;
    int strays = KillStrays({}, &what);
    if (strays > 0)
      std::fprintf(stderr, "supervise: pm2: killed %d processes left after pm2 kill: %s\n",
                   strays, what.c_str());
  }
  void Teardown() override { StopPhase(); }
  std::string Config() const override {
    return "pm2: PM2_HOME in the temp dir, God daemon started by `pm2 ping` before each phase; "
           "ecosystem file of N fork-mode apps (interpreter none, output to /dev/null, "
           "max_restarts 1000000); fan-out timed from the spawn of `pm2 start eco.json`; "
           "storm: restart_delay 1000";
  }

 private:
  std::vector<std::string> Env() const {
    return {"PM2_HOME=" + home_, "PM2_DISABLE_VERSION_CHECK=true"};
  }
  static Json App(const std::string& name, const std::string& script,
                  const std::vector<std::string>& args) {
    return Json{{"name", name},          {"script", script},       {"args", args},
                {"interpreter", "none"}, {"exec_mode", "fork"},    {"autorestart", true},
                {"out_file", "/dev/null"}, {"error_file", "/dev/null"},
                {"max_restarts", 1000000}, {"merge_logs", true}};
  }
  bool StartGod(std::string* error) {
    RunResult r = Run({pm2_, "ping"}, dir_, Env(), false, 60);
    god_ = static_cast<pid_t>(std::atoi(ReadAll(home_ + "/pm2.pid").c_str()));
    if (!r.ok() || god_ <= 0) {
      *error = "pm2 ping: " + r.Describe();
      return false;
    }
    return true;
  }
  bool StartApps(const Json& apps, const std::string& tag, std::string* error) {
    const std::string file = dir_ + "/" + tag + ".json";
    WriteFile(file, Json{{"apps", apps}}.dump());
    RunResult r = Run({pm2_, "start", file}, dir_, Env(), false, 300);
    if (!r.ok()) {
      *error = "pm2 start: " + r.Describe();
      return false;
    }
    return true;
  }

  std::string pm2_, home_, fanout_file_, log_dir_;
  pid_t god_ = -1;
  pid_t trigger_ = -1;
  int64_t trigger_t0_ = 0;
};

// ---- The phases ------------------------------------------------------------

// Restart latency: `k` instances, killed round-robin, `kills` times.
void MeasureRestart(Peer& peer, HelloSocket& hello, const Options& o, PeerResult* res) {
  // Discard stale hellos.
  while (hello.Receive(0)) {
  }
  std::string error;
  if (!peer.StartChildren(o.instances, &error)) {
    res->restart_na = error;
    peer.StopPhase();
    return;
  }
  std::map<std::string, pid_t> current;
  const int64_t deadline = MonoNs() + 60'000'000'000;
  while (static_cast<int>(current.size()) < o.instances && MonoNs() < deadline &&
         !g_interrupted.load()) {
    if (auto h = hello.Receive(100)) current[h->id] = h->pid;
  }
  if (static_cast<int>(current.size()) < o.instances) {
    res->restart_na = std::to_string(current.size()) + " of " + std::to_string(o.instances) +
                      " instances reported within 60 s";
    peer.StopPhase();
    return;
  }
  std::vector<std::string> ids;
  for (const auto& [id, pid] : current) ids.push_back(id);
  // Every instance up for longer than the peers' "stable" thresholds (runsv
  // 1 s, supervisord startsecs 1 s, PM2 min_uptime 1 s, relsupd's reset).
  SleepMs(1500);
  std::set<pid_t> children;
  for (const auto& [id, pid] : current) children.insert(pid);
  const auto cpu_before = TreeCpu(peer.Root(), children);
  for (int i = 0; i < o.kills && !g_interrupted.load(); ++i) {
    SleepMs(o.gap_ms);
    while (auto h = hello.Receive(0)) current[h->id] = h->pid;
    const std::string& id = ids[static_cast<size_t>(i) % ids.size()];
    const pid_t old = current[id];
    const int64_t t0 = MonoNs();
    if (kill(old, SIGKILL) != 0) {
      ++res->restart_timeouts;
      continue;
    }
    const int64_t wait_until = t0 + 10'000'000'000;
    bool got = false;
    while (!got && MonoNs() < wait_until && !g_interrupted.load()) {
      auto h = hello.Receive(50);
      if (!h) continue;
      current[h->id] = h->pid;
      if (id == h->id && h->pid != old) {
        res->restart_ms.push_back(static_cast<double>(h->monotonic_ns - t0) / 1e6);
        // The replacement now sleeps in pause(): its schedstat is its life
        // from fork to here (exec steps included).
        int64_t run_ns = 0, wait_ns = 0;
        if (SchedStat(h->pid, &run_ns, &wait_ns)) {
          res->child_cpu_ms.push_back(static_cast<double>(run_ns) / 1e6);
          res->child_wait_ms.push_back(static_cast<double>(wait_ns) / 1e6);
        }
        got = true;
      }
    }
    if (!got) ++res->restart_timeouts;
  }
  // The supervisor's own processes (not the children) over the kills.
  std::set<pid_t> now_children;
  for (const auto& [id, pid] : current) now_children.insert(pid);
  const auto cpu_after = TreeCpu(peer.Root(), now_children);
  if (!res->restart_ms.empty() && !cpu_before.empty())
    res->restart_sup_cpu_us = static_cast<double>(CpuUsed(cpu_before, cpu_after, false)) /
                              1e3 / static_cast<double>(res->restart_ms.size());
  peer.StopPhase();
}

// Fan-out: `n` sleeps from the trigger until the n-th exec'd; then memory.
void MeasureFanout(Peer& peer, ExecWatcher& watcher, int index, const Options& o,
                   PeerResult* res) {
  std::string error;
  const std::string marker = kSleepMarker[index];
  if (!peer.PrepareFanout(o.fanout, marker, &error)) {
    res->fanout_na = error;
    peer.StopPhase();
    return;
  }
  watcher.Drain();
  // relsupd and PM2 run before the trigger; runsvdir and supervisord are
  // started by it (all their CPU counts).
  const auto cpu_before = TreeCpu(peer.Root());
  if (peer.Root() > 0)
    res->root_rss_idle_kb = static_cast<double>(ProcKb(peer.Root(), "status", "VmRSS:"));
  const int64_t t0 = MonoNs();
  if (!peer.TriggerFanout(&error)) {
    res->fanout_na = error;
    peer.StopPhase();
    return;
  }
  std::set<pid_t> sleeps;
  int64_t t1 = watcher.WaitSleeps(marker, o.fanout, 120, &res->fanout_how, &sleeps);
  // Read at once (the supervisor keeps working a little after the last
  // exec: this is the CPU up to about then).
  const auto cpu_after = TreeCpu(peer.Root(), sleeps);
  res->trigger_ms = peer.FinishTrigger();
  if (t1 < 0) {
    res->fanout_na = g_interrupted.load() ? "interrupted"
                                          : "not all " + std::to_string(o.fanout) +
                                                " running within 120 s";
    peer.StopPhase();
    return;
  }
  res->fanout_s = static_cast<double>(t1 - t0) / 1e9;
  res->fanout_sup_cpu_s = static_cast<double>(CpuUsed(cpu_before, cpu_after, true)) / 1e9;
  // Memory once things settled.
  SleepMs(1000);
  const pid_t root = peer.Root();
  res->root_rss_kb = static_cast<double>(ProcKb(root, "status", "VmRSS:"));
  res->root_anon_kb = static_cast<double>(ProcKb(root, "status", "RssAnon:"));
  res->root_file_kb = static_cast<double>(ProcKb(root, "status", "RssFile:"));
  double sup = 0, all = 0;
  for (const auto& p : Tree(root)) {
    int64_t pss = ProcKb(p.pid, "smaps_rollup", "Pss:");
    if (pss < 0) continue;
    all += static_cast<double>(pss);
    ++res->tree_procs;
    if (!sleeps.count(p.pid)) {
      sup += static_cast<double>(pss);
      ++res->sup_procs;
    }
  }
  res->sup_pss_kb = sup;
  res->tree_pss_kb = all;
  peer.StopPhase();
}

// Storm: `m` crashing services; the supervisor's CPU and status queries
// over o.storm_s seconds.
void MeasureStorm(Peer& peer, const Options& o, PeerResult* res) {
  std::string error;
  if (!peer.StartStorm(o.storm, &error)) {
    res->storm_na = error;
    peer.StopPhase();
    return;
  }
  SleepMs(2000);  // the storm under way
  const pid_t root = peer.Root();
  auto before = TreeCpu(root);
  const int64_t t0 = MonoNs();
  const int64_t end = t0 + static_cast<int64_t>(o.storm_s * 1e9);
  std::vector<std::string> cmd = peer.StatusCommand();
  for (size_t i = 0; i < cmd.size(); ++i) {
    if (i == 4) {
      res->status_cmd += " ... (" + std::to_string(cmd.size()) + " words)";
      break;
    }
    // Paths shortened to their last component.
    std::string shown = cmd[i].find('/') != std::string::npos
                            ? fs::path(cmd[i]).filename().string()
                            : cmd[i];
    res->status_cmd += (res->status_cmd.empty() ? "" : " ") + shown;
  }
  while (!g_interrupted.load() && (MonoNs() < end || res->status_ms.empty())) {
    RunResult r = Run(cmd, "", peer.StatusEnv(), true, 60);
    // supervisorctl and sv exit non-zero when a service is not up: only a
    // failure to run (127) or a timeout counts.
    if (WIFEXITED(r.status) && WEXITSTATUS(r.status) != 127 && r.err.empty()) {
      res->status_ms.push_back(r.ms);
      res->status_cpu_ms.push_back(r.cpu_ms);
      double direct = peer.DirectStatusMs();
      if (direct >= 0) res->direct_ms.push_back(direct);
    } else {
      if (res->status_first_failure.empty()) res->status_first_failure = r.Describe();
      ++res->status_failures;
    }
    SleepMs(o.status_gap_ms);
  }
  auto after = TreeCpu(root);
  const int64_t t1 = MonoNs();
  int procs = 0;
  const int64_t used = CpuUsed(before, after, false, &procs);
  res->storm_cpu = static_cast<double>(used) / static_cast<double>(t1 - t0);
  res->storm_sup_procs = procs;
  peer.StopPhase();
}

// Calls `line` with each line of the files in `paths`, read as one stream
// (without its '\n'; a last line without one too). False when a file cannot
// be read.
bool ForEachLine(const std::vector<std::string>& paths,
                 const std::function<void(std::string_view)>& line) {
  std::vector<char> buf(4 << 20);
  size_t have = 0;
  bool ok = true;
  for (const auto& path : paths) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ok = false;
      continue;
    }
    for (;;) {
      ssize_t n = read(fd, buf.data() + have, buf.size() - have);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) ok = false;
      if (n <= 0) break;
      have += static_cast<size_t>(n);
      size_t start = 0;
      for (;;) {
        const void* nl = std::memchr(buf.data() + start, '\n', have - start);
        if (!nl) break;
        const size_t end = static_cast<size_t>(static_cast<const char*>(nl) - buf.data());
        line(std::string_view(buf.data() + start, end - start));
        start = end + 1;
      }
      std::memmove(buf.data(), buf.data() + start, have - start);
      have -= start;
      if (have == buf.size()) buf.resize(buf.size() * 2);  // a line over 4 MiB
    }
    close(fd);
  }
  if (have > 0) line(std::string_view(buf.data(), have));
  return ok;
}

// Log throughput: one log_writer writing o.LogLines() lines; from its first
// write until its last line is in one of the peer's log files (polled every
// 2 ms: the tail of each file that grew); then every captured line is
// checked against what the writer wrote.
void MeasureLog(Peer& peer, HelloSocket& hello, const Options& o, PeerResult* res) {
  while (hello.Receive(0)) {
  }
  res->log_settings = peer.LogSettings();
  const int64_t lines = o.LogLines();
  const size_t line_bytes = static_cast<size_t>(o.log_line_bytes);
  std::string error;
  if (!peer.StartLogWriter(lines, o.log_line_bytes, &error)) {
    res->log_na = error;
    peer.StopPhase();
    return;
  }
  std::optional<ChildHello> start;
  const int64_t start_deadline = MonoNs() + 60'000'000'000;
  while (!start && MonoNs() < start_deadline && !g_interrupted.load()) {
    auto h = hello.Receive(100);
    if (h && std::strcmp(h->id, "log.start") == 0) start = h;
  }
  if (!start) {
    res->log_na = g_interrupted.load() ? "interrupted" : "the writer did not start within 60 s";
    peer.StopPhase();
    return;
  }
  const pid_t writer = start->pid;
  const pid_t root = peer.Root();
  const auto cpu_before = TreeCpu(root, {writer});
  const auto wait_before = TreeWait(root, {writer});
  const int64_t t0 = start->monotonic_ns;
  char marker[32];
  std::snprintf(marker, sizeof marker, "seq=%09lld ", static_cast<long long>(lines - 1));
  // Give up 10 s after the files stopped growing once the writer is done,
  // or at 1 MB/s.
  const int64_t deadline = t0 + std::max<int64_t>(60, o.log_mb) * 1'000'000'000;
  int64_t done_ns = -1, last_ns = -1;
  int64_t total = 0, last_total = -1, last_growth = MonoNs();
  std::map<std::string, int64_t> seen_size;
  std::string tail;
  while (!g_interrupted.load()) {
    while (auto h = hello.Receive(0))
      if (std::strcmp(h->id, "log.done") == 0) done_ns = h->monotonic_ns;
    bool found = false;
    total = 0;
    for (const auto& f : peer.LogFiles()) {
      int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      struct stat st {};
      if (fstat(fd, &st) == 0) {
        total += st.st_size;
        int64_t& size = seen_size[f];
        if (!found && st.st_size > 0 && st.st_size != size) {
          const size_t want = std::min<size_t>(static_cast<size_t>(st.st_size), line_bytes + 4096);
          tail.resize(want);
          ssize_t n = pread(fd, tail.data(), want, st.st_size - static_cast<off_t>(want));
          found = n > 0 && tail.find(marker) != std::string::npos;
        }
        size = st.st_size;
      }
      close(fd);
    }
    const int64_t now = MonoNs();
    if (found) {
      last_ns = now;
      break;
    }
    if (total != last_total) {
      last_total = total;
      last_growth = now;
    }
    if (done_ns >= 0 && now - last_growth > 10'000'000'000) {
      res->log_timeout = "the last line was not in the log files 10 s after the writer's last "
                         "write";
      break;
    }
    if (now > deadline) {
      res->log_timeout = std::string("the last line was not in the log files within ") +
                         std::to_string((deadline - t0) / 1'000'000'000) + " s (writer " +
                         (done_ns >= 0 ? "done" : "still writing") + ")";
      break;
    }
    usleep(2000);
  }
  const auto cpu_after = TreeCpu(root, {writer});
  const auto wait_after = TreeWait(root, {writer});
  if (done_ns < 0)
    while (auto h = hello.Receive(last_ns >= 0 ? 1000 : 0))
      if (std::strcmp(h->id, "log.done") == 0) {
        done_ns = h->monotonic_ns;
        break;
      }
  if (last_ns >= 0) {
    res->log_last_s = static_cast<double>(last_ns - t0) / 1e9;
    res->log_mbps = static_cast<double>(o.LogPayloadBytes()) / 1e6 / res->log_last_s;
    res->log_sup_cpu_s =
        static_cast<double>(CpuUsed(cpu_before, cpu_after, true, &res->log_sup_procs)) / 1e9;
    res->log_sup_wait_s = static_cast<double>(CpuUsed(wait_before, wait_after, true)) / 1e9;
  }
  if (done_ns >= 0) res->log_writer_s = static_cast<double>(done_ns - t0) / 1e9;
  if (g_interrupted.load()) {
    res->log_na = "interrupted";
    peer.StopPhase();
    return;
  }

  // Every line of every file: which sequence numbers are there, how often.
  std::vector<uint8_t> count(static_cast<size_t>(lines), 0);
  static const char kFill[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const bool json = peer.LogIsJson();
  // relsupd: the writer's records; the text ends the object, before partial.
  constexpr std::string_view kJsonText = R"("process":"log.1","stream":"out","text":")";
  constexpr std::string_view kJsonEnd = R"(","partial":false})";
  auto check = [&](std::string_view text) {
    // "seq=%09d " + (line_bytes - 15) x kFill[i % 62], the '\n' gone.
    if (text.size() != line_bytes - 1 || !text.starts_with("seq=") || text[13] != ' ') {
      ++res->log_damaged;
      return;
    }
    int64_t i = 0;
    for (size_t k = 4; k < 13; ++k) {
      if (text[k] < '0' || text[k] > '9') {
        ++res->log_damaged;
        return;
      }
      i = i * 10 + (text[k] - '0');
    }
    if (i >= lines || text.find_first_not_of(kFill[i % 62], 14) != std::string_view::npos) {
      ++res->log_damaged;
      return;
    }
    uint8_t& c = count[static_cast<size_t>(i)];
    if (c > 0) ++res->log_dup;
    if (c < 255) ++c;
  };
  const std::vector<std::string> files = peer.LogFiles();
  for (const auto& f : files) {
    std::error_code ec;
    res->log_disk_bytes += static_cast<int64_t>(fs::file_size(f, ec));
    ++res->log_files;
  }
  auto each = [&](std::string_view line) {
    if (!json) return check(line);
    const size_t p = line.find(kJsonText);
    if (p == std::string_view::npos) {
      ++res->log_other;  // another process's record (none expected)
      return;
    }
    const size_t from = p + kJsonText.size();
    if (!line.ends_with(kJsonEnd) || line.size() < from + kJsonEnd.size()) {
      ++res->log_damaged;
      return;
    }
    check(line.substr(from, line.size() - kJsonEnd.size() - from));
  };
  if (!ForEachLine(files, each))
    res->log_timeout += (res->log_timeout.empty() ? "" : "; ") + std::string("a log file could not be read");
  res->log_lost = std::count(count.begin(), count.end(), uint8_t{0});
  peer.StopPhase();
}

// ---- Output ----------------------------------------------------------------

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

const char* Verdict(bool pass) { return pass ? "PASS" : "FAIL"; }

struct TempDir {
  std::string path;
  bool keep = false;
  ~TempDir() {
    if (path.empty()) return;
    if (keep) {
      std::printf("kept %s\n", path.c_str());
      return;
    }
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec)
      std::fprintf(stderr, "supervise: cannot remove %s: %s\n", path.c_str(),
                   ec.message().c_str());
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) {
    Usage(stderr);
    return 2;
  }
  for (std::string* bin : {&o.relsupd, &o.child, &o.writer}) {
    if (access(bin->c_str(), X_OK) != 0) {
      std::fprintf(stderr, "supervise: cannot execute %s: %s\n", bin->c_str(),
                   std::strerror(errno));
      return 1;
    }
    *bin = fs::absolute(*bin).string();
  }
  if (!o.pm2.empty()) o.pm2 = fs::absolute(o.pm2).string();

  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Daemonizing peers (PM2's God, runsv orphans) stay our descendants.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (o.rt_priority > 0) {
    // Inherited by every process started from here on (none resets it).
    sched_param sp{};
    sp.sched_priority = o.rt_priority;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
      std::fprintf(stderr, "supervise: SCHED_FIFO %d: %s\n", o.rt_priority, std::strerror(errno));
      return 1;
    }
  }

  TempDir tmp;
  tmp.keep = o.keep;
  {
    std::string tmpl = (fs::temp_directory_path() / "relsupd-supervise.XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
      std::fprintf(stderr, "supervise: mkdtemp: %s\n", std::strerror(errno));
      return 1;
    }
    tmp.path = tmpl;
    chmod(tmp.path.c_str(), 0755);
  }

  HelloSocket hello;
  std::string error;
  if (!hello.Open(tmp.path + "/hello.sock", &error)) {
    std::fprintf(stderr, "supervise: %s\n", error.c_str());
    return 1;
  }
  ExecWatcher watcher;
  std::string watcher_note;
  if (!watcher.Listen(&watcher_note))
    std::fprintf(stderr, "supervise: no exec events (%s): fan-out is timed by polling /proc\n",
                 watcher_note.c_str());

  std::string load = ReadAll("/proc/loadavg");
  load = load.substr(0, load.find(' '));
  std::string plan;
  auto add_plan = [&](const std::string& what) { plan += (plan.empty() ? "" : ", ") + what; };
  if (o.Phase("restart"))
    add_plan("restart latency over " + std::to_string(o.kills) + " kills of " +
             std::to_string(o.instances) + " instances");
  if (o.Phase("fanout")) add_plan("fan-out of " + std::to_string(o.fanout) + " sleeps");
  if (o.Phase("storm"))
    add_plan("storm of " + std::to_string(o.storm) + " crashing services");
  if (o.Phase("log"))
    add_plan("log throughput of " + std::to_string(o.LogLines()) + " lines of " +
             std::to_string(o.log_line_bytes) + " bytes (" + std::to_string(o.log_mb) + " MB)");
  std::printf("supervise (%u cores, load average %s%s): %s\n",
              std::thread::hardware_concurrency(), load.c_str(),
              o.rt_priority > 0 ? (", SCHED_FIFO " + std::to_string(o.rt_priority)).c_str() : "",
              plan.c_str());
  std::fflush(stdout);

  const std::vector<std::string> all_peers = {"relsupd", "runit", "supervisord", "pm2"};
  std::vector<PeerResult> results;
  std::vector<std::string> configs;
  int exit_code = 0;
  for (size_t index = 0; index < all_peers.size() && !g_interrupted.load(); ++index) {
    const std::string& name = all_peers[index];
    if (std::find(o.peers.begin(), o.peers.end(), name) == o.peers.end()) continue;
    PeerResult res;
    res.name = name;
    const std::string dir = tmp.path + "/" + name;
    fs::create_directories(dir);
    std::unique_ptr<Peer> peer;
    if (name == "relsupd") peer = std::make_unique<RelsupdPeer>(name, o, dir, &hello);
    if (name == "runit") peer = std::make_unique<RunitPeer>(name, o, dir, &hello);
    if (name == "supervisord") peer = std::make_unique<SupervisordPeer>(name, o, dir, &hello);
    if (name == "pm2") peer = std::make_unique<Pm2Peer>(name, o, dir, &hello);
    std::string why;
    if (!peer->Setup(&why, &res.version)) {
      res.na = why;
      std::printf("%s: n/a (%s)\n", name.c_str(), why.c_str());
      if (name == "relsupd") exit_code = 1;
      peer->Teardown();
      results.push_back(res);
      continue;
    }
    configs.push_back(peer->Config());
    std::printf("%s %s:", name.c_str(), res.version.c_str());
    std::fflush(stdout);
    if (o.Phase("restart") && !g_interrupted.load()) {
      std::printf(" restart latency ...");
      std::fflush(stdout);
      MeasureRestart(*peer, hello, o, &res);
    }
    if (o.Phase("fanout") && !g_interrupted.load()) {
      std::printf(" fan-out ...");
      std::fflush(stdout);
      MeasureFanout(*peer, watcher, static_cast<int>(index), o, &res);
    }
    if (o.Phase("storm") && !g_interrupted.load()) {
      std::printf(" storm ...");
      std::fflush(stdout);
      MeasureStorm(*peer, o, &res);
    }
    if (o.Phase("log") && !g_interrupted.load()) {
      std::printf(" log throughput ...");
      std::fflush(stdout);
      MeasureLog(*peer, hello, o, &res);
    }
    peer->Teardown();
    std::printf(" done\n");
    std::fflush(stdout);
    results.push_back(res);
  }
  KillStrays();

  // The table: one column per peer.
  std::printf("\n");
  const int w = 16;
  std::printf("%-36s", "figure");
  for (const auto& r : results) std::printf(" %*s", w, r.name.c_str());
  std::printf("   relsupd target\n");
  bool show = true;  // the rows of a phase that ran
  auto row = [&](const std::string& label, const std::function<std::string(const PeerResult&)>& cell,
                 const std::string& target) {
    if (!show) return;
    std::printf("%-36s", label.c_str());
    for (const auto& r : results) {
      std::string c = !r.na.empty() ? "n/a" : cell(r);
      std::printf(" %*s", w, c.c_str());
    }
    if (target.empty())
      std::printf("\n");
    else
      std::printf("   %s\n", target.c_str());
  };
  const PeerResult* rel = nullptr;
  for (const auto& r : results)
    if (r.name == "relsupd" && r.na.empty()) rel = &r;
  auto target = [&](const std::string& what, std::optional<bool> pass) {
    if (!rel) return what + "  n/a";
    if (!pass) return what + "  FAIL (not measured)";
    return what + "  " + Verdict(*pass);
  };
  auto restart_ok = [](const PeerResult& r) {
    return r.restart_na.empty() && !r.restart_ms.empty();
  };
  show = o.Phase("restart");
  row("restart latency median (ms)",
      [&](const PeerResult& r) {
        return restart_ok(r) ? Fmt("%.2f", Percentile(r.restart_ms, 0.5)) : "n/a";
      },
      target("< 1 ms", rel && restart_ok(*rel)
                           ? std::optional<bool>(rel->restart_timeouts == 0 &&
                                                 Percentile(rel->restart_ms, 0.5) <
                                                     kTargetRestartMedianMs)
                           : std::nullopt));
  row("restart latency p95 (ms)",
      [&](const PeerResult& r) {
        return restart_ok(r) ? Fmt("%.2f", Percentile(r.restart_ms, 0.95)) : "n/a";
      },
      target("< 3 ms", rel && restart_ok(*rel)
                           ? std::optional<bool>(rel->restart_timeouts == 0 &&
                                                 Percentile(rel->restart_ms, 0.95) <
                                                     kTargetRestartP95Ms)
                           : std::nullopt));
  row("restart latency min / max (ms)",
      [&](const PeerResult& r) {
        if (!restart_ok(r)) return std::string("n/a");
        return Fmt("%.2f", Percentile(r.restart_ms, 0.0)) + " / " +
               Fmt("%.1f", Percentile(r.restart_ms, 1.0));
      },
      "");
  row("  replacement's run-queue wait, median",
      [&](const PeerResult& r) {
        return restart_ok(r) && !r.child_wait_ms.empty()
                   ? Fmt("%.2f", Percentile(r.child_wait_ms, 0.5))
                   : "n/a";
      },
      "");
  row("  replacement's CPU fork..main, median",
      [&](const PeerResult& r) {
        return restart_ok(r) && !r.child_cpu_ms.empty()
                   ? Fmt("%.2f", Percentile(r.child_cpu_ms, 0.5))
                   : "n/a";
      },
      "");
  row("  supervisor CPU per restart (us)",
      [&](const PeerResult& r) {
        return restart_ok(r) && r.restart_sup_cpu_us >= 0 ? Fmt("%.0f", r.restart_sup_cpu_us)
                                                           : "n/a";
      },
      "");
  row("  kills measured (no restart in 10 s)",
      [&](const PeerResult& r) {
        return std::to_string(r.restart_ms.size()) + " (" + std::to_string(r.restart_timeouts) +
               ")";
      },
      "");
  auto fan_ok = [](const PeerResult& r) { return r.fanout_na.empty() && r.fanout_s >= 0; };
  show = o.Phase("fanout");
  row("fan-out: " + std::to_string(o.fanout) + " sleeps running (s)",
      [&](const PeerResult& r) { return fan_ok(r) ? Fmt("%.3f", r.fanout_s) : "n/a"; },
      target("< 0.5 s", rel && fan_ok(*rel)
                            ? std::optional<bool>(rel->fanout_s < kTargetFanoutS)
                            : std::nullopt));
  row("  trigger command returned (s)",
      [&](const PeerResult& r) {
        return fan_ok(r) && r.trigger_ms >= 0 ? Fmt("%.3f", r.trigger_ms / 1e3) : "-";
      },
      "");
  row("  supervisor CPU meanwhile (s)",
      [&](const PeerResult& r) {
        return fan_ok(r) && r.fanout_sup_cpu_s >= 0 ? Fmt("%.3f", r.fanout_sup_cpu_s) : "n/a";
      },
      "");
  row("supervisor root RSS (MiB)",
      [&](const PeerResult& r) {
        return fan_ok(r) && r.root_rss_kb >= 0 ? Fmt("%.1f", r.root_rss_kb / 1024) : "n/a";
      },
      target("< 20 MB (19.1 MiB)",
             rel && fan_ok(*rel) && rel->root_rss_kb >= 0
                 ? std::optional<bool>(rel->root_rss_kb * 1024 < kTargetRssBytes)
                 : std::nullopt));
  row("  of which anon / file (MiB)",
      [&](const PeerResult& r) {
        return fan_ok(r) && r.root_anon_kb >= 0
                   ? Fmt("%.1f", r.root_anon_kb / 1024) + " / " + Fmt("%.1f", r.root_file_kb / 1024)
                   : "n/a";
      },
      "");
  row("  root RSS before the fan-out (MiB)",
      [&](const PeerResult& r) {
        return fan_ok(r) && r.root_rss_idle_kb >= 0 ? Fmt("%.1f", r.root_rss_idle_kb / 1024)
                                                    : "-";
      },
      "");
  row("supervisor PSS, all its procs (MiB)",
      [&](const PeerResult& r) {
        return fan_ok(r) ? Fmt("%.1f", r.sup_pss_kb / 1024) + " [" +
                               std::to_string(r.sup_procs) + "]"
                         : "n/a";
      },
      "");
  row("tree PSS with the sleeps (MiB)",
      [&](const PeerResult& r) {
        return fan_ok(r) ? Fmt("%.1f", r.tree_pss_kb / 1024) + " [" +
                               std::to_string(r.tree_procs) + "]"
                         : "n/a";
      },
      "");
  auto storm_ok = [](const PeerResult& r) {
    return r.storm_na.empty() && !r.status_ms.empty();
  };
  show = o.Phase("storm");
  row("storm: status query median (ms)",
      [&](const PeerResult& r) {
        return storm_ok(r) ? Fmt("%.1f", Percentile(r.status_ms, 0.5)) : "n/a";
      },
      "");
  row("storm: status query p99 (ms)",
      [&](const PeerResult& r) {
        return storm_ok(r) ? Fmt("%.1f", Percentile(r.status_ms, 0.99)) + " (" +
                                 std::to_string(r.status_ms.size()) + ")"
                           : "n/a";
      },
      target("< 10 ms (relsupd ctl ps)",
             rel && storm_ok(*rel)
                 ? std::optional<bool>(rel->status_failures == 0 &&
                                       Percentile(rel->status_ms, 0.99) < kTargetPsP99Ms)
                 : std::nullopt));
  row("  status command's own CPU, median",
      [&](const PeerResult& r) {
        return storm_ok(r) ? Fmt("%.1f", Percentile(r.status_cpu_ms, 0.5)) : "n/a";
      },
      "");
  row("  same over the socket, median / p99",
      [&](const PeerResult& r) {
        return storm_ok(r) && !r.direct_ms.empty()
                   ? Fmt("%.2f", Percentile(r.direct_ms, 0.5)) + " / " +
                         Fmt("%.2f", Percentile(r.direct_ms, 0.99))
                   : "-";
      },
      "");
  row("storm: supervisor CPU (% of a core)",
      [&](const PeerResult& r) {
        return r.storm_na.empty() && r.storm_cpu >= 0
                   ? Fmt("%.1f%%", r.storm_cpu * 100) + " [" +
                         std::to_string(r.storm_sup_procs) + "]"
                   : "n/a";
      },
      target("< 5%", rel && rel->storm_na.empty() && rel->storm_cpu >= 0
                         ? std::optional<bool>(rel->storm_cpu < kTargetStormCpu)
                         : std::nullopt));
  auto log_ok = [](const PeerResult& r) { return r.log_na.empty() && r.log_lost >= 0; };
  auto log_timed = [&](const PeerResult& r) { return log_ok(r) && r.log_mbps >= 0; };
  show = o.Phase("log");
  row("log throughput (MB/s)",
      [&](const PeerResult& r) { return log_timed(r) ? Fmt("%.1f", r.log_mbps) : "n/a"; },
      target(">= 100 MB/s", rel && log_timed(*rel)
                                ? std::optional<bool>(rel->log_mbps >= kTargetLogMBps)
                                : std::nullopt));
  row("lines lost (of " + std::to_string(o.LogLines()) + ")",
      [&](const PeerResult& r) { return log_ok(r) ? std::to_string(r.log_lost) : "n/a"; },
      target("0 (none duplicated or damaged either)",
             rel && log_ok(*rel) ? std::optional<bool>(rel->log_lost == 0 && rel->log_dup == 0 &&
                                                       rel->log_damaged == 0)
                                 : std::nullopt));
  row("  duplicated / damaged lines",
      [&](const PeerResult& r) {
        return log_ok(r) ? std::to_string(r.log_dup) + " / " + std::to_string(r.log_damaged)
                         : "n/a";
      },
      "");
  row("  last line in the files after (s)",
      [&](const PeerResult& r) { return log_timed(r) ? Fmt("%.3f", r.log_last_s) : "n/a"; }, "");
  row("  writer's last write returned (s)",
      [&](const PeerResult& r) {
        return log_ok(r) && r.log_writer_s >= 0 ? Fmt("%.3f", r.log_writer_s) : "n/a";
      },
      "");
  row("  supervisor CPU meanwhile (s)",
      [&](const PeerResult& r) {
        return log_timed(r) ? Fmt("%.2f", r.log_sup_cpu_s) + " [" +
                                  std::to_string(r.log_sup_procs) + "]"
                            : "n/a";
      },
      "");
  row("  same, % of a core",
      [&](const PeerResult& r) {
        return log_timed(r) ? Fmt("%.0f%%", 100 * r.log_sup_cpu_s / r.log_last_s) : "n/a";
      },
      "");
  row("  its run-queue wait meanwhile (s)",
      [&](const PeerResult& r) {
        return log_timed(r) && r.log_sup_wait_s >= 0 ? Fmt("%.2f", r.log_sup_wait_s) : "n/a";
      },
      "");
  row("  in the log files (MB) [files]",
      [&](const PeerResult& r) {
        return log_ok(r) ? Fmt("%.1f", static_cast<double>(r.log_disk_bytes) / 1e6) + " [" +
                               std::to_string(r.log_files) + "]"
                         : "n/a";
      },
      "");
  show = true;

  std::printf("\n");
  for (const auto& r : results) {
    if (!r.na.empty()) {
      std::printf("%s: n/a (%s)\n", r.name.c_str(), r.na.c_str());
      continue;
    }
    std::printf("%s %s:", r.name.c_str(), r.version.c_str());
    if (!r.restart_na.empty()) std::printf(" restart n/a (%s);", r.restart_na.c_str());
    if (!r.fanout_na.empty()) std::printf(" fan-out n/a (%s);", r.fanout_na.c_str());
    else if (o.Phase("fanout")) std::printf(" fan-out timed by %s;", r.fanout_how.c_str());
    if (!r.storm_na.empty()) std::printf(" storm n/a (%s);", r.storm_na.c_str());
    if (o.Phase("storm")) std::printf(" status: `%s`;", r.status_cmd.c_str());
    if (r.status_failures > 0)
      std::printf(" status %d failed (%s);", r.status_failures, r.status_first_failure.c_str());
    if (!r.log_na.empty()) std::printf(" log n/a (%s);", r.log_na.c_str());
    if (!r.log_timeout.empty()) std::printf(" log: %s;", r.log_timeout.c_str());
    if (r.log_other > 0)
      std::printf(" log: %lld records of other processes not counted;",
                  static_cast<long long>(r.log_other));
    std::printf("\n");
  }
  std::printf("\n");
  for (const auto& c : configs) std::printf("- %s\n", c.c_str());
  if (o.Phase("log"))
    for (const auto& r : results)
      if (!r.log_settings.empty()) std::printf("- log phase, %s\n", r.log_settings.c_str());
  std::printf("\n[N]: processes counted. Restart latency: kill(2) of the instance until its "
              "replacement's supervise_child read CLOCK_MONOTONIC in main(). Storm CPU: the "
              "supervisor's long-lived processes, over %.0f s.\n",
              o.storm_s);
  if (o.Phase("log"))
    std::printf("Log throughput: %lld lines of %d bytes (%.1f MB of payload) written by one "
                "log_writer as fast as its stdout takes them, MB/s = payload / (its first "
                "write until its last line was in a log file, polled every 2 ms); lines "
                "lost: sequence numbers missing from all the files; supervisor CPU and "
                "run-queue wait: its processes, the writer excluded.\n",
                static_cast<long long>(o.LogLines()), o.log_line_bytes,
                static_cast<double>(o.LogPayloadBytes()) / 1e6);
  if (g_interrupted.load()) std::printf("interrupted\n");
  return exit_code;
}
