#pragma once
// File system steps of the store, all relative to directory fds so a path
// from an artifact can never resolve outside its slot (openat2 with
// RESOLVE_BENEATH). RemoveTree and SyncDir live in daemon/base/fs.h,
// shared with the CLI. Any thread.

#include <sys/types.h>

#include <string>

#include "daemon/base/fd.h"
#include "daemon/base/fs.h"
#include "daemon/base/status.h"

namespace relsupd {

// openat2(dirfd, path, flags | O_CLOEXEC, mode) with RESOLVE_BENEATH and
// RESOLVE_NO_MAGICLINKS: EXDEV when `path` would leave `dirfd`.
Result<Fd> OpenBeneath(int dirfd, const std::string& path, int flags,
                       mode_t mode = 0);
// Opens the parent directory of `path` beneath `dirfd`, creating missing
// directories (mode 0755) on the way; sets *name to the last component.
// No component may be a symlink: an archive must not write through one of
// its own links (the file would land elsewhere than its manifest says).
Result<Fd> OpenParentBeneath(int dirfd, const std::string& path,
                             std::string* name);

}  // namespace relsupd
