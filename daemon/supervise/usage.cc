#include "daemon/supervise/usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <unordered_map>

namespace relsupd {
namespace {

const uint64_t kPageSize = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
const double kTicksPerSecond = static_cast<double>(::sysconf(_SC_CLK_TCK));

// Reads a small file whole into `buf`; the length, or -1.
ssize_t ReadSmall(const char* path, char* buf, size_t size) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return -1;
  ssize_t n = ::read(fd, buf, size);
  ::close(fd);
  return n;
}

template <typename T>
bool Number(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::optional<ProcStat> ReadStat(const std::string& proc_root, std::string_view pid) {
  std::string path = proc_root;
  path.append("/").append(pid).append("/stat");
  char buf[1024];
  ssize_t n = ReadSmall(path.c_str(), buf, sizeof(buf));
  if (n <= 0) return std::nullopt;
  return ParseProcStat(std::string_view(buf, static_cast<size_t>(n)));
}

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  // "PID (COMM) S PPID PGRP SESSION TTY TPGID FLAGS MINFLT CMINFLT MAJFLT
  //  CMAJFLT UTIME STIME CUTIME CSTIME PRIO NICE THREADS ITREAL START VSIZE
  //  RSS ..."
  const size_t open = text.find(" (");
  const size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return std::nullopt;
  ProcStat st;
  if (!Number(text.substr(0, open), &st.pid)) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  std::string_view fields[22];
  size_t count = 0;
  while (count < 22) {
    size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest = rest.substr(start);
    size_t end = rest.find_first_of(" \n");
    fields[count++] = rest.substr(0, end);
    if (end == std::string_view::npos) break;
    rest = rest.substr(end);
  }
  if (count < 22) return std::nullopt;
  uint64_t ticks[4];
  int64_t rss = 0;
  if (!Number(fields[1], &st.ppid) || !Number(fields[3], &st.session) ||
      !Number(fields[11], &ticks[0]) || !Number(fields[12], &ticks[1]) ||
      !Number(fields[21], &rss))
    return std::nullopt;
  // cutime and cstime are signed in the kernel's format; never negative.
  int64_t cticks[2] = {0, 0};
  if (!Number(fields[13], &cticks[0]) || !Number(fields[14], &cticks[1])) return std::nullopt;
  ticks[2] = static_cast<uint64_t>(std::max<int64_t>(cticks[0], 0));
  ticks[3] = static_cast<uint64_t>(std::max<int64_t>(cticks[1], 0));
  st.cpu_ticks = ticks[0] + ticks[1] + ticks[2] + ticks[3];
  st.rss_pages = static_cast<uint64_t>(std::max<int64_t>(rss, 0));
  return st;
}

std::vector<ProcStat> ScanProcesses(const std::string& proc_root) {
  std::vector<ProcStat> out;
  DIR* dir = ::opendir(proc_root.c_str());
  if (dir == nullptr) return out;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    if (auto st = ReadStat(proc_root, e->d_name)) out.push_back(*st);
  }
  ::closedir(dir);
  return out;
}

std::map<pid_t, Usage> TreeUsage(const std::vector<ProcStat>& procs,
                                 const std::vector<pid_t>& roots) {
  std::map<pid_t, Usage> out;
  for (pid_t r : roots) out[r];
  std::unordered_map<pid_t, const ProcStat*> by_pid;
  by_pid.reserve(procs.size());
  for (const ProcStat& p : procs) by_pid[p.pid] = &p;
  // The root each process belongs to (0: none), found once per process.
  std::unordered_map<pid_t, pid_t> owner;
  owner.reserve(procs.size());
  auto root_of = [&](const ProcStat& p) -> pid_t {
    if (out.count(p.session)) return p.session;
    // Up the parent chain, at most 64 steps (no loop can trap us).
    std::vector<pid_t> path;
    pid_t found = 0;
    const ProcStat* at = &p;
    for (int step = 0; step < 64 && at != nullptr; ++step) {
      if (out.count(at->pid)) {
        found = at->pid;
        break;
      }
      if (auto it = owner.find(at->pid); it != owner.end()) {
        found = it->second;
        break;
      }
      path.push_back(at->pid);
      if (at->ppid <= 1) break;
      auto parent = by_pid.find(at->ppid);
      at = parent == by_pid.end() ? nullptr : parent->second;
    }
    for (pid_t q : path) owner[q] = found;
    return found;
  };
  for (const ProcStat& p : procs) {
    pid_t root = root_of(p);
    if (root == 0) continue;
    Usage& u = out[root];
    u.memory_bytes += p.rss_pages * kPageSize;
    u.cpu_seconds += static_cast<double>(p.cpu_ticks) / kTicksPerSecond;
    ++u.processes;
    u.pids.push_back(p.pid);
  }
  return out;
}

void AddPss(Usage* usage, const std::string& proc_root) {
  uint64_t total = 0;
  char buf[4096];
  for (pid_t pid : usage->pids) {
    const std::string path = proc_root + "/" + std::to_string(pid) + "/smaps_rollup";
    ssize_t n = ReadSmall(path.c_str(), buf, sizeof(buf));
    if (n <= 0) continue;
    std::string_view text(buf, static_cast<size_t>(n));
    // "Pss:                1234 kB"
    size_t at = text.find("\nPss:");
    if (at == std::string_view::npos) continue;
    std::string_view v = text.substr(at + 5);
    v = v.substr(v.find_first_not_of(' '));
    v = v.substr(0, v.find(' '));
    uint64_t kb = 0;
    if (Number(v, &kb)) total += kb * 1024;
  }
  usage->pss_bytes = total;
}

std::optional<Usage> CgroupUsage(const std::string& dir, const std::string& proc_root) {
  Usage u;
  u.from_cgroup = true;
  char buf[4096];
  ssize_t n = ReadSmall((dir + "/cpu.stat").c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return std::nullopt;
  std::string_view cpu(buf, static_cast<size_t>(n));
  if (size_t at = cpu.find("usage_usec "); at != std::string_view::npos) {
    std::string_view v = cpu.substr(at + 11);
    v = v.substr(0, v.find('\n'));
    uint64_t usec = 0;
    if (Number(v, &usec)) u.cpu_seconds = static_cast<double>(usec) / 1e6;
  }
  n = ReadSmall((dir + "/memory.current").c_str(), buf, sizeof(buf) - 1);
  uint64_t current = 0;
  const bool has_memory =
      n > 0 && Number(std::string_view(buf, static_cast<size_t>(n)).substr(
                          0, std::string_view(buf, static_cast<size_t>(n)).find('\n')),
                      &current);
  u.memory_bytes = current;
  u.from_cgroup = has_memory;
  // cgroup.procs: count the processes; their resident sets where there is
  // no memory.current. A big cgroup is read in pieces.
  int fd = ::open((dir + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string pids;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) pids.append(buf, static_cast<size_t>(n));
  ::close(fd);
  std::string_view rest(pids);
  while (!rest.empty()) {
    size_t eol = rest.find('\n');
    std::string_view pid = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (pid.empty()) continue;
    ++u.processes;
    if (has_memory) continue;
    pid_t number = 0;
    if (Number(pid, &number)) u.pids.push_back(number);
    if (auto st = ReadStat(proc_root, pid)) u.memory_bytes += st->rss_pages * kPageSize;
  }
  return u;
}

}  // namespace relsupd
