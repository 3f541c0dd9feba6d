// The kernel's process events (netlink proc connector, root only): each
// exec with its CLOCK_MONOTONIC time. Counts processes whose command line
// is `sleep MARKER` and gives the time the last of them exec'd. Without
// the connector (or after a lost event) it polls /proc instead.
//
// Owns its netlink fd (close-on-exec). Single-threaded: the fan-out phase
// uses it.

#ifndef RELSUPD_BENCH_SUPERVISE_EXEC_WATCHER_H_
#define RELSUPD_BENCH_SUPERVISE_EXEC_WATCHER_H_

#include <linux/cn_proc.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "bench/bench_support.h"

namespace relsupd::bench::supervise {

class ExecWatcher : NoCopy {
 public:
  ~ExecWatcher();
  // Starts listening; false (with why) when the connector is unavailable.
  bool Listen(std::string* why);
  // Waits until `n` distinct processes run `sleep marker`; returns the
  // monotonic ns at which the last of them exec'd, or -1 on timeout.
  // `how` says which method measured it.
  int64_t WaitSleeps(const std::string& marker, int n, double timeout_s,
                     std::string* how, std::set<pid_t>* pids_out);
  // Discards queued events.
  void Drain();

 private:
  static bool IsSleep(pid_t pid, const std::string& marker);
  // The /proc fallback of WaitSleeps.
  static int64_t PollSleeps(const std::string& marker, int n, int64_t deadline,
                            std::set<pid_t>* pids_out);
  bool Control(proc_cn_mcast_op op);
  // Reads the events available within `timeout_ms`; false when none came.
  bool ReadEvents(int timeout_ms, std::map<pid_t, int64_t>* last_exec,
                  bool* lost);

  // PROC_EVENT_EXEC; the enum moved out of struct proc_event in Linux 6.6.
  static constexpr uint32_t kProcEventExec = 0x00000002;
  int fd_ = -1;
};

}  // namespace relsupd::bench::supervise

#endif  // RELSUPD_BENCH_SUPERVISE_EXEC_WATCHER_H_
