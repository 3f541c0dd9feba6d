// Small helpers of the supervise benchmark: the clock, files, and running
// processes (in the background with Spawn, to completion with Run).
//
// Free functions, no state; called from the benchmark's one thread. Every
// child gets the benchmark's environment without systemd's notification
// and activation variables (ChildEnv).

#ifndef RELSUPD_BENCH_SUPERVISE_UTIL_H_
#define RELSUPD_BENCH_SUPERVISE_UTIL_H_

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace supervise_bench {

int64_t MonoNs();
void SleepMs(int64_t ms);

// The value at rank ceil(p * n) of `v` (p 0..1); T{} when empty.
template <typename T>
T Percentile(std::vector<T> v, double p) {
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  size_t rank =
      static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

std::string ReadAll(const std::string& path);
bool WriteFile(const std::string& path, const std::string& text,
               mode_t mode = 0644);
std::string Trim(std::string s);
std::string LastLines(const std::string& s, int n);
std::string DescribeStatus(int status);

// The environment for children, without systemd's notification and
// activation variables, plus `extra` ("KEY=VALUE", replacing).
std::vector<std::string> ChildEnv(const std::vector<std::string>& extra = {});

// The regular files in `dir` whose name `match` accepts, sorted by name.
std::vector<std::string> FilesIn(
    const std::string& dir,
    const std::function<bool(const std::string&)>& match);
// Rotated generations "BASE.N" ... "BASE.1" (oldest first), then "BASE":
// the order their lines were written in.
std::vector<std::string> OldestFirst(std::vector<std::string> files);
// The first executable `name` in $PATH; "" when none.
std::string FindOnPath(const std::string& name);

// Starts argv in the background: stdin /dev/null, stdout+stderr to `log`.
// With `pdeathsig`, the child gets SIGTERM when the benchmark dies.
pid_t Spawn(std::vector<std::string> args,
            const std::vector<std::string>& extra_env, const std::string& log,
            bool pdeathsig, std::string* error);

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
              const std::vector<std::string>& extra_env = {},
              bool discard_output = false, double timeout_s = 120);

// Stops a direct child: `sig`, then waits up to `timeout_s`, then SIGKILL.
// Its wait status.
int StopChild(pid_t pid, int sig, double timeout_s);

}  // namespace supervise_bench

#endif  // RELSUPD_BENCH_SUPERVISE_UTIL_H_
