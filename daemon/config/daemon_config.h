#pragma once
// The daemon's own configuration: YAML file -> DaemonConfig.
//
// Every key is optional; a missing key keeps the embedded default below.
// Unknown keys and wrong types are errors that name the file, line and
// column. The only yaml-cpp user in relsupd is this module. Any thread.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>

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
  // Apps. An app created without a user gets a uid (and gid) of its own from
  // [app_uid_min, app_uid_max]: unused by systemd (its dynamic users are
  // 61184-65519, containers from 524288), outside Debian's reserved ids
  // (0-999, 60000-65535) and below shadow's SUB_UID_MIN (100000).
  uid_t app_uid_min = 70000;
  uid_t app_uid_max = 79999;
  // uid 0 for an app (user root, by name or number) is refused unless set.
  bool allow_root_apps = false;
  // GET /metrics over HTTP on this address ("tcp://127.0.0.1:9100");
  // empty: off. Read at start (and by a re-exec's new image).
  std::string metrics_listen;

  bool operator==(const DaemonConfig&) const = default;
};

// Parses `text` read from `filename` (used only in messages).
Result<DaemonConfig> ParseDaemonConfig(const std::string& text,
                                       const std::string& filename);
// "MIN-MAX" as `app_uid_range` takes it.
Result<std::pair<uid_t, uid_t>> ParseUidRange(const std::string& text);
// Reads and parses the file at `path`.
Result<DaemonConfig> LoadDaemonConfig(const std::string& path);

}  // namespace relsupd
