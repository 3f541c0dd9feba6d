#pragma once
// File-system helpers shared by the daemon and the CLI: removing a tree
// and syncing a directory. (Opening, writing whole files and making
// directories are in daemon/base/fd.h; the store's slot-confined openat2
// helpers in daemon/store/fs.h.) Stateless; any thread.

#include <sys/types.h>

#include <string>

#include "daemon/base/status.h"

namespace relsupd {

// Removes `path` and everything under it, making read-only directories
// writable first (sealed slots, a build's leftovers). Symlinks are removed,
// never followed. A missing path is fine.
Status RemoveTree(const std::string& path);
// fsync(2) of a directory by path, so a rename or link in it is durable.
Status SyncDir(const std::string& path);
// What a file of `mode` is, for messages: "a regular file", "a directory",
// "a symbolic link", "a fifo", "a socket", "a character device", ...
std::string FileKind(mode_t mode);

}  // namespace relsupd
