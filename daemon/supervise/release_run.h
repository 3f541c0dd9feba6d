#pragma once
// ReleaseRun: one release of one app as its processes run it: the values
// every spawn of the release reads. Built by the run stage from the ledger,
// the slot and the user database; shared (shared_ptr<const>) by a
// ReleaseGroup and its instances, immutable once built. Plain data.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/base/release_id.h"
#include "daemon/config/process_file.h"

namespace relsupd {

// One release of one app as its processes run it. Shared, immutable.
struct ReleaseRun {
  std::string app;
  int64_t number = 0;
  std::string slot;  // the resolved release directory (the children's cwd)
  std::map<std::string, std::string> config;  // the release's environment
  ProcessFile processes;
  std::optional<uid_t> uid;  // unset: run as the daemon's user
  std::optional<gid_t> gid;
  std::vector<gid_t> groups;
  std::string user;
  std::string home;
  // Daemon-held listeners by socket name; the fds stay the daemon's.
  std::map<std::string, int> socket_fds;
  std::string release() const { return ReleaseId(number).ToString(); }
  bool operator==(const ReleaseRun&) const = default;
};

}  // namespace relsupd
