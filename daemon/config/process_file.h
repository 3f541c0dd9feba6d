#pragma once
// The process file of a release: `processes:` in relsupd.yaml, or a
// Heroku-style Procfile as the fallback. Parsed when a release is made
// (errors name file, line and column, and no release is made) and again
// when it runs. Value types; any thread.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace relsupd {

enum class RestartPolicy { kAlways, kOnFailure, kNever };
enum class ReadyKind { kNone, kNotify, kTcp, kHttp, kExec };
// Who gets the stop signal. kGroup: the instance's whole process group
// (the default). kMain: its main process only, so that a master such as
// gunicorn's stops its own workers; the rest of the group (and cgroup) is
// SIGKILLed once the main process exited or after stop_timeout, as
// systemd's KillMode=mixed.
enum class StopMode { kGroup, kMain };

struct ReadyCheck {
  ReadyKind kind = ReadyKind::kNone;
  int port = 0;         // tcp
  std::string target;   // http URL or exec command
  bool operator==(const ReadyCheck&) const = default;
};

// `health:` of a process type: checked while an instance is ready; after
// `failures` failed checks in a row it is restarted (as a crash). kind
// kNone: no health check. Ready kinds only: kTcp, kHttp, kExec.
struct HealthCheck {
  ReadyCheck check;
  int64_t interval_ms = 10'000;
  int64_t timeout_ms = 2'000;
  int failures = 3;
  bool operator==(const HealthCheck&) const = default;
};

// `limits:` of a process type; 0 means none. Enforced through the cgroup v2
// controllers where they are delegated; memory by an RSS watch otherwise,
// nofile always by RLIMIT_NOFILE.
struct ProcessLimits {
  uint64_t memory_bytes = 0;
  int64_t pids = 0;
  int64_t nofile = 0;
  double cpu = 0;  // cores: 1.5 is 150 ms of CPU time per 100 ms
  bool operator==(const ProcessLimits&) const = default;
  bool empty() const { return *this == ProcessLimits{}; }
};

struct ProcessSpec {
  std::string name;
  std::string command;
  int scale = 1;
  RestartPolicy restart = RestartPolicy::kAlways;
  int stop_signal = 15;  // SIGTERM
  int64_t stop_timeout_ms = 10'000;
  StopMode stop_mode = StopMode::kGroup;
  std::vector<std::string> sockets;
  ReadyCheck ready;
  int64_t ready_timeout_ms = 60'000;
  std::map<std::string, std::string> env;
  HealthCheck health;
  // systemd's WatchdogSec=: WATCHDOG_USEC and WATCHDOG_PID are set, and an
  // instance that sends no WATCHDOG=1 within it gets SIGABRT. 0: none.
  int64_t watchdog_ms = 0;
  ProcessLimits limits;
  bool operator==(const ProcessSpec&) const = default;
};

// The release phase: a command run once before a release first goes live
// (a Procfile `release:` line, or `release:` in relsupd.yaml as a command
// or {command: ..., timeout: 10m}). Never a process type.
struct ReleaseCommand {
  std::string command;  // empty: the release has none
  int64_t timeout_ms = 10 * 60 * 1000;  // stopped (TERM, KILL 10 s later) past it
  bool operator==(const ReleaseCommand&) const = default;
};
inline constexpr std::string_view kReleaseType = "release";

struct ProcessFile {
  std::string source;  // "relsupd.yaml" or "Procfile"
  std::map<std::string, ProcessSpec> processes;
  ReleaseCommand release;
  bool operator==(const ProcessFile&) const = default;
};

inline constexpr int kMaxScale = 10'000;
// At most this many process types, and instances in all (the sum of the
// scales): a release asking for 5,000 types of 10,000 is refused before it
// is made; `scale` and `activate` count the app's recorded scales too.
inline constexpr size_t kMaxProcessTypes = 100;
inline constexpr int64_t kMaxInstances = 10'000;
// The file's processes within those limits (`file`: how errors name it).
Status CheckFormationSize(const ProcessFile& pf, const std::string& file);
// The instances `pf` runs with `scales` (a type's count; the file's own
// scale for a type not in it).
int64_t TotalInstances(const ProcessFile& pf, const std::map<std::string, int>& scales = {});

// Every key relsupd.yaml accepts, by section (the `build:` keys are
// kBuildKeys in build_spec.h). README.md and relsupd-app(5) list each one;
// a unit test holds them to it.
inline constexpr std::string_view kAppFileKeys[] = {
    "build", "processes", "release"};
inline constexpr std::string_view kProcessKeys[] = {
    "command", "scale", "restart", "stop_signal", "stop_timeout",
    "stop_mode", "sockets", "ready", "ready_timeout", "env", "health",
    "watchdog", "limits"};
inline constexpr std::string_view kReleaseKeys[] = {
    "command", "timeout"};
inline constexpr std::string_view kReadyKeys[] = {
    "tcp", "http", "exec"};
inline constexpr std::string_view kHealthKeys[] = {
    "tcp", "http", "exec", "interval", "timeout", "failures"};
inline constexpr std::string_view kLimitsKeys[] = {
    "memory", "pids", "nofile", "cpu"};
inline constexpr int64_t kMinWatchdogMs = 100;
inline constexpr int64_t kMinHealthIntervalMs = 100;
inline constexpr int64_t kMinExecHealthIntervalMs = 1'000;
// fs.nr_open's default: RLIMIT_NOFILE cannot be set above it.
inline constexpr int64_t kMaxNofile = 1 << 20;

// Parses relsupd.yaml text, the whole file (`build:` too); returns an empty
// process map when the file has no `processes:` key (the Procfile may then
// serve). An error lists every problem found, one per line, each as
// FILE:LINE:COL: message.
Result<ProcessFile> ParseProcessYaml(const std::string& text,
                                     const std::string& filename);
// Parses "name: command" lines; '#' starts a comment line. An error lists
// every bad line, one per line.
Result<ProcessFile> ParseProcfile(const std::string& text,
                                  const std::string& filename);
// Reads DIR/relsupd.yaml, falling back to DIR/Procfile. An error when
// neither declares a process.
Result<ProcessFile> LoadProcessFile(const std::string& dir);

// Checks DIR/relsupd.yaml (the whole file) and, when that declares no
// processes, DIR/Procfile, as LoadProcessFile would read them; having
// neither file, or no process, is not an error here. Every error found is
// reported, one per line, naming the files as SHOWN/relsupd.yaml and
// SHOWN/Procfile. The build stage's check.
Status CheckProcessFiles(const std::string& dir, const std::string& shown);

// "TERM", "SIGTERM" or "15" -> 15.
Result<int> ParseSignal(const std::string& text);

}  // namespace relsupd
