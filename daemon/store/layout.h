#pragma once
// Ownership and modes under the state directory: who may reach what.
//
// Each app's processes run under the app's own uid and must open their own
// slot by absolute path (python3 server.py, gunicorn, node); nothing else
// under the state directory is theirs:
//
//   STATE/                 root 0711  traversable, not listable
//   STATE/ledger.db*       root 0600  (daemon/ledger)
//   STATE/apps/            root 0711
//   STATE/apps/APP/        root:APPGID 0750  only the app's group gets in
//   STATE/apps/APP/releases/  root 0755  (its slots are sealed 0555)
//   STATE/apps/APP/builds/ root 0700  artifacts are the daemon's
//   STATE/objects/         root 0700  slots hard-link bodies; access checks
//                                     the path used, not objects/
//   STATE/tmp/ STATE/logs/ root 0700
//
// A daemon that is not root runs every app as itself: the directories are
// the same but keep their owner's group. Directories an older relsupd made
// (0750/0755) are narrowed at start-up. Everything goes through fds opened
// with O_NOFOLLOW, and none of these directories is writable by an app, so
// no link swapped in by an app user can redirect a chown or chmod.
// Start-up and loop thread; the calls are idempotent.

#include <sys/types.h>

#include <optional>
#include <string>

#include "daemon/base/status.h"

namespace relsupd {

inline constexpr mode_t kStateDirMode = 0711;
inline constexpr mode_t kAppsDirMode = 0711;
inline constexpr mode_t kAppDirMode = 0750;
inline constexpr mode_t kPrivateDirMode = 0700;

// Creates STATE (and its parents, 0755) and its top-level directories, or
// sets their modes when they exist.
Status SecureStateDir(const std::string& state_dir);
// The first directory above `state_dir` that others cannot search
// ("'/root' (mode 0700)"): app users, who reach their slots by absolute
// path, fail there with EACCES. nullopt when every one is searchable.
std::optional<std::string> UntraversableParent(const std::string& state_dir);

// Creates STATE/apps/APP with releases/ and builds/, or fixes them, and
// hands APP/ to `gid` (group owner; the owner stays root).
Status SecureAppDir(const std::string& state_dir, const std::string& app,
                    gid_t gid);

}  // namespace relsupd
