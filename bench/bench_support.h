// What the benchmarks in bench/ share and tests/support/ (which it builds
// on: ChildEnv, Spawn, files, FreePort) does not offer:
// Ctrl-C handling, the command line as a table of flags, timed child
// processes (posix_spawn to wait4, with the child's CPU time), a daemon
// child that answers `ctl info`, stopped by pid with a chosen deadline, a
// temporary dir that --keep can keep, per-thread CPU time from
// /proc/PID/task/*/schedstat, and the small formatting helpers of their
// reports.
//
// Free functions and two owning types (DaemonProcess owns its child,
// BenchDir its directory). Called from a benchmark's main thread; Run and
// the formatting helpers from any thread.

#ifndef RELSUPD_BENCH_BENCH_SUPPORT_H_
#define RELSUPD_BENCH_BENCH_SUPPORT_H_

#include <sys/types.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace relsupd::bench {

// Set by SIGINT, SIGTERM and SIGHUP once InstallInterruptHandlers ran:
// every wait of a benchmark gives up and it stops what it started.
inline std::atomic<bool> g_interrupted{false};
// Those three set g_interrupted; SIGPIPE is ignored.
void InstallInterruptHandlers();

// The base of a class that owns a resource (a child, a directory, an fd):
// it is neither copied nor moved.
class NoCopy {
 public:
  NoCopy(const NoCopy&) = delete;
  NoCopy& operator=(const NoCopy&) = delete;

 protected:
  NoCopy() = default;
  ~NoCopy() = default;
};

// A benchmark's command line as a table of its flags:
//   return ParseFlags(argc, argv, Usage, {TextFlag("--relsupd", &o->relsupd),
//                                         IntFlag("--runs", &o->runs, 1),
//                                         SwitchFlag("--keep", &o->keep)});
// Every argument must be one of the flags (with its value, when it takes
// one) and `set` must accept the value: false otherwise (a usage error).
// -h and --help print the usage to stdout and exit 0.
struct Flag {
  const char* name;
  bool takes_value;
  std::function<bool(const char* value)> set;  // value null without one
};
bool ParseFlags(int argc, char** argv, void (*usage)(FILE*),
                const std::vector<Flag>& flags);

// The flags of the usual kinds. IntFlag: a whole number (atoll) from `min`
// to `max`. PositiveFlag: a number (atof) above 0. TextFlag: any string.
// SwitchFlag: no value, sets *out.
template <typename T>
Flag IntFlag(const char* name, T* out, T min,
             T max = std::numeric_limits<T>::max()) {
  return {name, true, [=](const char* v) {
            const long long n = std::atoll(v);
            *out = static_cast<T>(n);
            return *out >= min && *out <= max;
          }};
}
Flag PositiveFlag(const char* name, double* out);
Flag TextFlag(const char* name, std::string* out);
Flag SwitchFlag(const char* name, bool* out);

// The usage on stderr; the exit code of a usage error, 2.
int UsageError(void (*usage)(FILE*));

int64_t MonoNs();
void SleepMs(int64_t ms);

// Nearest-rank percentile (p 0..1) of `v`; T{} when empty.
template <typename T>
T Percentile(std::vector<T> v, double p) {
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  size_t rank =
      static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// printf of one double.
std::string Fmt(const char* format, double v);
const char* Verdict(bool pass);  // "PASS" or "FAIL"
// The 1-minute load average as /proc/loadavg prints it; "?" when unknown.
std::string LoadAverage();

// "a,b,c" -> {"a", "b", "c"}; "" -> {}.
std::vector<std::string> SplitCommas(const std::string& text);
// Without leading and trailing blanks and newlines.
std::string Trim(std::string s);
// The last `n` lines of `s`.
std::string LastLines(const std::string& s, int n);
// "exit N", "killed by SIGNAL" or "status N" of a wait status.
std::string DescribeStatus(int status);

// `*path` made absolute; false (printed, as `bench`) when it cannot be
// executed.
bool ResolveBinary(const char* bench, std::string* path);

// Starts argv (argv[0] a path) in the background with `env` (NAME=VALUE)
// added to support::ChildEnv (support::Spawn): stdin /dev/null, stdout and
// stderr to `log`, a process group of its own (Ctrl-C reaches the benchmark
// only), SIGTERM when the benchmark dies. -1 with why.
enum class LogMode { kAppend, kTruncate };
pid_t Spawn(const std::vector<std::string>& args, const std::string& log,
            const std::vector<std::string>& env, std::string* error,
            LogMode mode = LogMode::kAppend);

// Stops a direct child: `sig`, then waits up to `timeout_s`, then SIGKILL
// (saying so on stderr when `who` is set). Its wait status.
int StopChild(pid_t pid, int sig, double timeout_s, const char* who = nullptr);

// A finished child: its wait status, the wall time from posix_spawn to
// wait4, its user+system CPU time (with the children it reaped), output.
struct RunResult {
  int status = -1;
  double ms = 0;
  double cpu_ms = 0;
  std::string out, err;
  bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  // The status and the last lines of stderr (or stdout).
  std::string Describe() const;
};

struct RunOptions {
  std::vector<std::string> env;  // extra NAME=VALUE (support::ChildEnv)
  // Where stdout and stderr go (truncated; read back into out and err):
  // "" is /dev/null; the same path for both gets them interleaved in out.
  std::string out_path, err_path;
  double timeout_s = 0;  // > 0: SIGKILL after it (said in err)
};
// Runs argv (argv[0] looked up in PATH) to completion, stdin /dev/null.
RunResult Run(const std::vector<std::string>& args, const RunOptions& options);
// Run with stdout to DIR/run.out and stderr to DIR/run.err, `env` added,
// SIGKILL after `timeout_s` (0: none).
RunResult RunIn(const std::vector<std::string>& args, const std::string& dir,
                double timeout_s, const std::vector<std::string>& env = {});

// `relsupd daemon --state-dir STATE --socket SOCKET [EXTRA...]`, a child
// of the benchmark stopped by pid: on Stop and on destruction.
class DaemonProcess : NoCopy {
 public:
  ~DaemonProcess() { Stop(); }

  // Its output goes to `log` (truncated). It gets SIGTERM if the benchmark
  // dies. REQUIRES: no other thread of the benchmark runs (fork).
  bool Start(const std::string& binary, const std::string& state,
             const std::string& socket, const std::string& log,
             std::string* error,
             const std::vector<std::string>& extra_args = {});
  // Polls `BINARY ctl --socket SOCKET --json info` (run in `dir`: its
  // output in dir/run.out and run.err) every 20 ms until it answers, for up
  // to `timeout_s`; the answer (the daemon's info, JSON) in *info when set.
  // False with why: the daemon exited, the benchmark was interrupted, or no
  // answer in time (with the last failure).
  bool WaitReady(const std::string& dir, double timeout_s, std::string* error,
                 std::string* info = nullptr);
  // True once the daemon exited on its own (reaps it).
  bool Exited();
  // SIGTERM, then waits up to `timeout_s` (set_stop_timeout); SIGKILL
  // after that.
  void Stop();
  void set_stop_timeout(double s) { stop_timeout_s_ = s; }

  pid_t pid() const { return pid_; }
  int exit_status() const { return exit_status_; }
  const std::string& log() const { return log_; }

 private:
  pid_t pid_ = -1;
  int exit_status_ = 0;
  double stop_timeout_s_ = 10;
  std::string binary_, socket_, log_;
};

// CPU time of every living thread of `pid` (schedstat), in ns; -1 when
// gone. ProcessCpuSeconds: user + system time of the whole process, its
// threads that ended included (/proc/PID/stat); -1 when gone.
int64_t ThreadsCpuNs(pid_t pid);
double ProcessCpuSeconds(pid_t pid);

// A fresh directory TMPDIR/NAME.XXXXXX (TMPDIR or /tmp) that is removed,
// sealed read-only directories included, on destruction unless keep() is
// set (then its path is printed). After a removal, `after_remove` runs.
class BenchDir : NoCopy {
 public:
  ~BenchDir();
  // False (printed, as `bench`) when it cannot be made.
  bool Make(const char* bench, const std::string& name, mode_t mode = 0700);
  const std::string& path() const { return path_; }
  bool keep = false;
  bool print_kept = true;
  void (*after_remove)(const std::string& parent) = nullptr;
  // Takes over an existing directory (removed the same way).
  void Adopt(std::string path) { path_ = std::move(path); }

 private:
  std::string path_;
};

// Removes `path`, making read-only directories (sealed slots) writable
// first; a failure goes to stderr.
void RemoveTree(const std::string& path);

}  // namespace relsupd::bench

#endif  // RELSUPD_BENCH_BENCH_SUPPORT_H_
