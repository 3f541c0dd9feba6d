#pragma once
// An exclusive lock on a directory, held for the life of the daemon.

#include <string>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"

namespace relsupd {

// Takes flock(LOCK_EX) on DIR/relsupd.lock without waiting and writes our
// pid into it. kBusy, naming the holder's pid, when another process has it.
// The lock lasts as long as the returned Fd is open.
Result<Fd> LockDirectory(const std::string& dir);

}  // namespace relsupd
