// The exec watcher (see exec_watcher.h).

#include "bench/supervise/exec_watcher.h"

#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "bench/supervise/options.h"
#include "bench/supervise/proc.h"
#include "bench/supervise/util.h"

namespace relsupd::bench::supervise {

ExecWatcher::~ExecWatcher() {
  if (fd_ >= 0) close(fd_);
}
bool ExecWatcher::Listen(std::string* why) {
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

int64_t ExecWatcher::WaitSleeps(const std::string& marker, int n,
                                double timeout_s, std::string* how,
                                std::set<pid_t>* pids_out) {
  const int64_t deadline = MonoNs() + static_cast<int64_t>(timeout_s * 1e9);
  std::map<pid_t, int64_t> last_exec;  // pid -> latest exec time
  std::set<pid_t> matched;
  bool lost = fd_ < 0;
  while (!lost && static_cast<int>(matched.size()) < n &&
         !g_interrupted.load()) {
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
  return PollSleeps(marker, n, deadline, pids_out);
}

void ExecWatcher::Drain() {
  std::map<pid_t, int64_t> ignored;
  bool lost = false;
  while (fd_ >= 0 && ReadEvents(0, &ignored, &lost)) {
  }
}

bool ExecWatcher::IsSleep(pid_t pid, const std::string& marker) {
  std::string c = Cmdline(pid);
  // "sleep\0MARKER\0" or "/bin/sleep\0MARKER\0".
  size_t z = c.find('\0');
  if (z == std::string::npos) return false;
  std::string argv0 = c.substr(0, z);
  if (argv0 != "sleep" && !argv0.ends_with("/sleep")) return false;
  return c.compare(z + 1, std::string::npos, marker + '\0') == 0;
}

int64_t ExecWatcher::PollSleeps(const std::string& marker, int n,
                                int64_t deadline, std::set<pid_t>* pids_out) {
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

bool ExecWatcher::Control(proc_cn_mcast_op op) {
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
  return send(fd_, buf, hdr->nlmsg_len, 0) ==
         static_cast<ssize_t>(hdr->nlmsg_len);
}

bool ExecWatcher::ReadEvents(int timeout_ms,
                             std::map<pid_t, int64_t>* last_exec, bool* lost) {
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

}  // namespace relsupd::bench::supervise
