#pragma once
// Peer: who is on the other end of a control connection, and what they may do.
//
// Credentials come from SO_PEERCRED at accept time. Root, the daemon's own
// uid and members of admin_group may change things; members of socket_group
// may read. Value types; any thread.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace relsupd {

enum class Right { kNone, kRead, kChange };
std::string_view RightName(Right r);

struct Peer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;  // user name, or the uid as text
  Right right = Right::kNone;
  // The control connection (set by ControlServer, unique in the daemon's
  // life; 0 elsewhere): daemon.reexec hands it to the new image
  // (docs/reexec.md §6.2), which finds its socket with ConnectionFd.
  uint64_t connection_id = 0;
};

struct AccessPolicy {
  uid_t daemon_uid = 0;
  std::optional<gid_t> admin_gid;   // nullopt when the group does not exist
  std::optional<gid_t> socket_gid;
  std::string admin_group;
  std::string socket_group;
};

// Reads SO_PEERCRED of a connected Unix socket.
Result<Peer> PeerOf(int fd);
// The right `peer` holds under `policy` (uses the peer's group list).
Right RightOf(const Peer& peer, const AccessPolicy& policy);
// Why `peer` may not do something that needs `needed`.
std::string RefusalMessage(std::string_view method, Right needed,
                           const Peer& peer, const AccessPolicy& policy);

}  // namespace relsupd
