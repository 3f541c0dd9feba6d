// /proc readers of the supervise benchmark (see proc.h).

#include "bench/supervise/proc.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/supervise/util.h"
#include "tests/support/fs.h"

namespace relsupd::bench::supervise {

namespace fs = std::filesystem;

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
    if (name.empty() ||
        name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    ProcStat st;
    if (ReadProcStat(static_cast<pid_t>(std::atoi(name.c_str())), &st))
      out.push_back(st);
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
  std::string s = support::ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/cmdline");
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

// Kills (SIGKILL, by pid) and reaps every descendant of the benchmark
// except those in `keep` and their descendants. The benchmark is a child
// subreaper, so orphans of a stopped supervisor end up here. Returns how
// many it had to kill; `what` gets "PID COMM" of each.
int KillStrays(const std::set<pid_t>& keep, std::string* what) {
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
          *what += (what->empty() ? "" : ", ") + std::to_string(p.pid) + " " +
                   p.comm;
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

void KillStraysAfter(const char* peer, const char* when) {
  std::string what;
  int strays = KillStrays({}, &what);
  if (strays > 0)
    std::fprintf(stderr,
                 "supervise: %s: killed %d processes left after %s: %s\n", peer,
                 strays, when, what.c_str());
}

// Waits until `root` has no descendants (other than itself) for up to
// `timeout_s`; reaps adopted zombies meanwhile. True when none are left.
void ReapAdopted(pid_t* pid, double timeout_s) {
  if (*pid <= 0) return;
  int status = 0;
  const int64_t deadline = MonoNs() + static_cast<int64_t>(timeout_s * 1e9);
  while (waitpid(*pid, &status, WNOHANG) == 0 && MonoNs() < deadline)
    SleepMs(10);
  *pid = -1;
}

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
ProcNs TreeCpu(pid_t root, const std::set<pid_t>& exclude) {
  ProcNs cpu;
  if (root <= 0) return cpu;
  for (const auto& p : Tree(root))
    if (p.state != 'Z' && !exclude.count(p.pid))
      cpu[{p.pid, p.starttime}] = ThreadsCpuNs(p.pid);
  return cpu;
}

// Run-queue wait (ns) of every thread of the processes of `root`'s tree
// that are not in `exclude`, by (pid, start time); CpuUsed takes the
// difference of two snapshots.
ProcNs TreeWait(pid_t root, const std::set<pid_t>& exclude) {
  ProcNs wait;
  if (root <= 0) return wait;
  for (const auto& p : Tree(root)) {
    if (p.state == 'Z' || exclude.count(p.pid)) continue;
    int64_t total = 0;
    std::error_code ec;
    for (const auto& t : fs::directory_iterator(
             "/proc/" + std::to_string(p.pid) + "/task", ec)) {
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
int64_t CpuUsed(const ProcNs& before, const ProcNs& after, bool count_new,
                int* procs) {
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

}  // namespace relsupd::bench::supervise
