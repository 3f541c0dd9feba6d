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
// A name, or a decimal id ("0", "70001"). A number without a passwd entry
// gives uid = gid = that number, its text as name and "/" as home.
Result<UserInfo> LookupUserOrId(const std::string& name_or_id);
Result<gid_t> LookupGroupOrId(const std::string& name_or_id);
// The passwd entry of `uid`, NotFound when it has none.
Result<UserInfo> LookupUid(uid_t uid);
// Whether `gid` has a group entry.
bool GroupExists(gid_t gid);
// The name of `uid`, or its number as text when it has none.
std::string UserName(uid_t uid);
std::string GroupName(gid_t gid);
// A process's real, effective, saved and file-system ids, from
// /proc/PID/status (readable by anyone, unlike environ).
struct ProcIds {
  uid_t uid[4] = {};
  gid_t gid[4] = {};
};
// `proc_dir`: "/proc/PID". False when the process is gone or its status
// lacks the Uid: or Gid: line.
bool ReadProcIds(const std::string& proc_dir, ProcIds* ids);
// Whether some process runs with `uid` as its real, effective, saved or
// file-system uid (ReadProcIds of each; one pass over /proc).
bool UidHasProcesses(uid_t uid);
// Every group `uid` belongs to: `primary` plus its supplementary groups.
std::vector<gid_t> GroupsOf(uid_t uid, gid_t primary);

}  // namespace relsupd
