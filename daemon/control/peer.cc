#include "daemon/control/peer.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "daemon/base/users.h"

namespace relsupd {

std::string_view RightName(Right r) {
  switch (r) {
    case Right::kNone: return "no";
    case Right::kRead: return "read";
    case Right::kChange: return "change";
  }
  return "no";
}

Result<Peer> PeerOf(int fd) {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return Status::FromErrno("cannot read peer credentials", errno);
  Peer p;
  p.pid = cred.pid;
  p.uid = cred.uid;
  p.gid = cred.gid;
  p.name = UserName(cred.uid);
  return p;
}

Right RightOf(const Peer& peer, const AccessPolicy& policy) {
  if (peer.uid == 0 || peer.uid == policy.daemon_uid) return Right::kChange;
  std::vector<gid_t> groups = GroupsOf(peer.uid, peer.gid);
  auto member = [&](std::optional<gid_t> g) {
    return g && std::find(groups.begin(), groups.end(), *g) != groups.end();
  };
  if (member(policy.admin_gid)) return Right::kChange;
  if (member(policy.socket_gid)) return Right::kRead;
  return Right::kNone;
}

std::string RefusalMessage(std::string_view method, Right needed,
                           const Peer& peer, const AccessPolicy& policy) {
  std::string who = "uid " + std::to_string(peer.uid) + " (" + peer.name + ")";
  std::string how =
      needed == Right::kChange
          ? "root, uid " + std::to_string(policy.daemon_uid) +
                " or a member of group '" + policy.admin_group + "'"
          : "a member of group '" + policy.socket_group + "' or '" +
                policy.admin_group + "'";
  return "permission denied: '" + std::string(method) + "' needs the " +
         std::string(RightName(needed)) + " right (" + how + "); " + who +
         " has " + std::string(RightName(peer.right)) + " right";
}

}  // namespace relsupd
