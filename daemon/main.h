#pragma once
// `relsupd daemon`: wires the modules together and runs the loop.

#include <string>

namespace relsupd {

struct DaemonOptions {
  std::string config_path;  // empty: embedded defaults
  std::string state_dir;    // overrides the config when set
  std::string socket;       // overrides the config when set
};

// Runs the daemon until SIGTERM or SIGINT. Returns the process exit code:
// 0 after a clean stop, 1 when it could not start.
int RunDaemon(const DaemonOptions& options);

}  // namespace relsupd
