#pragma once
// Looks up users and groups (getpwnam_r and friends). Any thread.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "daemon/base/status.h"

namespace relsupd {

struct UserInfo {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
  std::string home;
};

Result<UserInfo> LookupUser(const std::string& name);
Result<gid_t> LookupGroup(const std::string& name);
// The name of `uid`, or its number as text when it has none.
std::string UserName(uid_t uid);
std::string GroupName(gid_t gid);
// Every group `uid` belongs to: `primary` plus its supplementary groups.
std::vector<gid_t> GroupsOf(uid_t uid, gid_t primary);

}  // namespace relsupd
