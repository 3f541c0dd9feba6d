#pragma once
// Usage: the memory and CPU time of an instance's processes, read from its
// cgroup where it has one, else from /proc over its process tree (as PM2
// and pidusage-tree do). The readers are pure file reads, for libuv's
// thread pool (the Supervisor's sampler runs them there; supervisor.h);
// nothing here touches the loop. Any thread.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relsupd {

// What an instance uses now.
struct Usage {
  uint64_t memory_bytes = 0;  // resident set of every process, or memory.current
  double cpu_seconds = 0;     // user + system, the reaped children's included
  int processes = 0;          // 0: nothing was found (the process is gone)
  bool from_cgroup = false;   // memory.current was read
  // The proportional set (PSS: each shared page divided among its users),
  // read only when asked (AddPss): what the RSS watch compares with a
  // memory limit, so that a pre-forked server's shared pages count once.
  // 0: not read.
  uint64_t pss_bytes = 0;
  std::vector<pid_t> pids;    // the processes counted (not from memory.current)
};

// One process, from /proc/PID/stat.
struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t session = 0;
  uint64_t cpu_ticks = 0;  // utime + stime + cutime + cstime
  uint64_t rss_pages = 0;
};

// Parses the text of /proc/PID/stat (the comm field may hold spaces and
// parentheses). nullopt when it is not such a line.
std::optional<ProcStat> ParseProcStat(std::string_view text);

// Every process /proc (`proc_root`) shows now.
std::vector<ProcStat> ScanProcesses(const std::string& proc_root = "/proc");

// The usage of each process tree whose main process is one of `roots`: the
// root, every process of its session (instances run in a session of their
// own) and every process whose parent chain reaches it. A root not in
// `procs` gets a Usage with processes == 0.
std::map<pid_t, Usage> TreeUsage(const std::vector<ProcStat>& procs,
                                 const std::vector<pid_t>& roots);

// Sums "Pss:" of /proc/PID/smaps_rollup over usage->pids into pss_bytes
// (the kernel walks each process's page tables: costlier than stat).
void AddPss(Usage* usage, const std::string& proc_root = "/proc");

// The usage of a cgroup v2 directory: cpu.stat's usage_usec, memory.current
// where the memory controller is on, else the resident sets of the
// processes in cgroup.procs. nullopt when the directory cannot be read.
std::optional<Usage> CgroupUsage(const std::string& dir,
                                 const std::string& proc_root = "/proc");

}  // namespace relsupd
