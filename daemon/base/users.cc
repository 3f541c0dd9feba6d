#include "daemon/base/users.h"

#include "daemon/base/fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace relsupd {

Result<UserInfo> LookupUser(const std::string& name) {
  struct passwd pw, *res = nullptr;
  std::vector<char> buf(16384);
  int rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
  if (rc != 0) return Status::FromErrno("cannot look up user '" + name + "'", rc);
  if (res == nullptr) return NotFound("user '" + name + "' does not exist");
  return UserInfo{pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir};
}

Result<gid_t> LookupGroup(const std::string& name) {
  struct group gr, *res = nullptr;
  std::vector<char> buf(65536);
  int rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &res);
  if (rc != 0)
    return Status::FromErrno("cannot look up group '" + name + "'", rc);
  if (res == nullptr) return NotFound("group '" + name + "' does not exist");
  return gr.gr_gid;
}

namespace {

// A decimal id below 2^32-1 ((uid_t)-1 is never an id), or nothing.
std::optional<uint32_t> ParseId(const std::string& s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  uint64_t v = std::stoull(s);
  if (v >= 0xffffffffu) return std::nullopt;
  return static_cast<uint32_t>(v);
}

}  // namespace

Result<UserInfo> LookupUid(uid_t uid) {
  struct passwd pw, *res = nullptr;
  std::vector<char> buf(16384);
  int rc = getpwuid_r(uid, &pw, buf.data(), buf.size(), &res);
  if (rc != 0)
    return Status::FromErrno("cannot look up uid " + std::to_string(uid), rc);
  if (res == nullptr) return NotFound("uid " + std::to_string(uid) + " has no user");
  return UserInfo{pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir};
}

namespace {

// The name of group `gid`, or nothing when it has no entry (or the lookup
// failed).
std::optional<std::string> FindGroupName(gid_t gid) {
  struct group gr, *res = nullptr;
  std::vector<char> buf(65536);
  if (getgrgid_r(gid, &gr, buf.data(), buf.size(), &res) != 0 || !res)
    return std::nullopt;
  return gr.gr_name;
}

}  // namespace

bool GroupExists(gid_t gid) { return FindGroupName(gid).has_value(); }

Result<UserInfo> LookupUserOrId(const std::string& name_or_id) {
  std::optional<uint32_t> id = ParseId(name_or_id);
  if (!id) return LookupUser(name_or_id);
  auto user = LookupUid(*id);
  if (user.ok() || user.status().code() != StatusCode::kNotFound) return user;
  return UserInfo{*id, *id, name_or_id, "/"};
}

Result<gid_t> LookupGroupOrId(const std::string& name_or_id) {
  if (std::optional<uint32_t> id = ParseId(name_or_id)) return gid_t{*id};
  return LookupGroup(name_or_id);
}

std::string UserName(uid_t uid) {
  Result<UserInfo> user = LookupUid(uid);
  return user.ok() ? user->name : std::to_string(uid);
}

std::string GroupName(gid_t gid) {
  return FindGroupName(gid).value_or(std::to_string(gid));
}

std::vector<gid_t> GroupsOf(uid_t uid, gid_t primary) {
  struct passwd pw, *res = nullptr;
  std::vector<char> buf(16384);
  std::vector<gid_t> groups{primary};
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &res) != 0 || !res)
    return groups;
  int n = 64;
  groups.resize(static_cast<size_t>(n));
  while (getgrouplist(pw.pw_name, primary, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));
  }
  groups.resize(static_cast<size_t>(n));
  return groups;
}

namespace {

// Parses the four ids after `key` ("\nUid:") in a status file's text.
template <typename Id>
bool ParseIds(const std::string& status, const char* key, Id (&out)[4]) {
  const size_t at = status.find(key);
  if (at == std::string::npos) return false;
  const char* p = status.c_str() + at + std::strlen(key);
  for (Id& id : out) {
    char* end = nullptr;
    errno = 0;
    const unsigned long v = std::strtoul(p, &end, 10);
    if (end == p || errno != 0) return false;
    id = static_cast<Id>(v);
    p = end;
  }
  return true;
}

}  // namespace

bool ReadProcIds(const std::string& proc_dir, ProcIds* ids) {
  Result<std::string> status = ReadFile(proc_dir + "/status", 1 << 16);
  if (!status.ok()) return false;
  // A leading '\n' so that the first line is found like any other.
  const std::string text = "\n" + *status;
  return ParseIds(text, "\nUid:", ids->uid) && ParseIds(text, "\nGid:", ids->gid);
}

bool UidHasProcesses(uid_t uid) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return true;  // cannot tell: assume so
  bool found = false;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    ProcIds ids;
    if (!ReadProcIds(std::string("/proc/") + e->d_name, &ids)) continue;  // gone meanwhile
    for (uid_t id : ids.uid) found = found || id == uid;
    if (found) break;
  }
  ::closedir(proc);
  return found;
}

}  // namespace relsupd
