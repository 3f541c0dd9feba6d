#pragma once
// The daemon's own configuration: YAML file -> DaemonConfig.
//
// Every key is optional; a missing key keeps the embedded default below.
// Unknown keys and wrong types are errors that name the file, line and
// column. The only yaml-cpp user in relsupd is this module. Any thread.

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "daemon/base/status.h"

namespace relsupd {

struct DaemonConfig {
  std::string state_dir = "/var/lib/relsupd";
  std::string socket = "/run/relsupd/relsupd.sock";
  mode_t socket_mode = 0660;
  std::string socket_group = "relsupd";
  std::string admin_group = "relsupd-admin";
  std::string log_level = "info";  // trace|debug|info|warn|error
  uint64_t max_request_bytes = 1 << 20;
  // Caps on artifacts (see daemon/store/limits.h).
  uint64_t max_artifact_bytes = uint64_t{2} << 30;
  uint64_t max_unpacked_bytes = uint64_t{8} << 30;
  uint64_t max_entries = 200'000;
  uint64_t max_compression_ratio = 200;
  // Run stage. cgroup: "auto" (the tree systemd delegated, if writable),
  // "off", or an absolute path under a cgroup2 mount.
  std::string cgroup = "auto";
  int64_t restart_initial_delay_ms = 100;
  int64_t restart_max_delay_ms = 30'000;
  int64_t restart_reset_after_ms = 10'000;
  int64_t crash_limit = 10;
  int64_t crash_window_ms = 60'000;
  uint64_t log_max_file_bytes = 8 << 20;
  int64_t log_max_files = 4;
  uint64_t log_rate_limit = 4 << 20;  // bytes per second per instance

  bool operator==(const DaemonConfig&) const = default;
};

// Parses `text` read from `filename` (used only in messages).
Result<DaemonConfig> ParseDaemonConfig(const std::string& text,
                                       const std::string& filename);
// Reads and parses the file at `path`.
Result<DaemonConfig> LoadDaemonConfig(const std::string& path);

}  // namespace relsupd
