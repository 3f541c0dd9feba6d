#include "daemon/supervise/exec_strings.h"

namespace relsupd {

namespace {

// Returns the child's PATH.
std::string BuildEnv(const ExecRequest& req, ExecStrings* s) {
  const bool listen = !req.pass_fds.empty();
  std::string path_var = "/bin:/usr/bin";  // execvp's default
  for (const std::string& v : req.env) {
    if (v.starts_with("LISTEN_PID=") || v.starts_with("LISTEN_FDS=")) continue;
    if (v.starts_with("WATCHDOG_PID=")) continue;
    if (!listen && v.starts_with("LISTEN_FDNAMES=")) continue;
    if (v.starts_with("PATH=")) path_var = v.substr(5);
    s->envp.push_back(const_cast<char*>(v.c_str()));
  }
  if (listen) {
    s->listen_fds = "LISTEN_FDS=" + std::to_string(req.pass_fds.size());
    // The child writes its pid over the NULs.
    s->listen_pid = "LISTEN_PID=" + std::string(21, '\0');
    s->envp.push_back(s->listen_fds.data());
    s->envp.push_back(s->listen_pid.data());
  }
  if (req.watchdog_pid) {
    s->watchdog_pid = "WATCHDOG_PID=" + std::string(21, '\0');
    s->envp.push_back(s->watchdog_pid.data());
  }
  s->envp.push_back(nullptr);
  return path_var;
}

}  // namespace

void BuildExecStrings(const ExecRequest& req, ExecStrings* s) {
  for (const std::string& v : req.argv)
    s->argv.push_back(const_cast<char*>(v.c_str()));
  s->argv.push_back(nullptr);
  const std::string path_var = BuildEnv(req, s);
  const std::string& program = req.argv[0];
  if (program.find('/') != std::string::npos) {
    s->candidates.push_back(program);
  } else {
    size_t start = 0;
    for (;;) {
      const size_t end = path_var.find(':', start);
      std::string dir =
          path_var.substr(start, end == std::string::npos ? end : end - start);
      s->candidates.push_back((dir.empty() ? "." : dir) + "/" + program);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  for (const std::string& c : s->candidates) s->paths.push_back(c.c_str());
  s->paths.push_back(nullptr);
  if (!req.cgroup_dir.empty())
    s->cgroup_procs = req.cgroup_dir + "/cgroup.procs";
}

}  // namespace relsupd
