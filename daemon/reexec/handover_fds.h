#pragma once
// The fds that cross daemon-reexec's exec (docs/reexec.md §2.4): the list a
// record names, FD_CLOEXEC cleared on them just before the exec and set
// again first thing in the new image, and the checks the new image runs on
// each before it trusts the record.
//
// A failed check makes the whole record unreadable (the new image then
// execs back, §5.3): a record that lies about one fd cannot be trusted
// about the others. The checks change nothing. Loop thread (syscalls only).

#include <sys/types.h>

#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/reexec/handover.h"

namespace relsupd {

// Every fd `record` names (lock, listener, old binary, notify socket,
// requester, app sockets, pidfds and pipes, the reap list), sorted, each
// once; -1 entries left out.
std::vector<int> HandoverFdList(const HandoverRecord& record);

// FD_CLOEXEC off (before the exec) or on (in the new image) for each fd.
// Stops at the first failure, naming the fd.
Status ClearCloexec(const std::vector<int>& fds);
Status SetCloexec(const std::vector<int>& fds);

// The checks of §2.4, one per kind of fd. Each error names the fd and what
// it is instead ("fd 7: not a socket").
Status CheckPidfd(int fd, pid_t pid);  // /proc/self/fdinfo: "Pid:\t<pid>"
// A listening stream socket (SO_ACCEPTCONN), bound to `path` when not empty.
Status CheckListener(int fd, const std::string& path);
// A datagram socket bound to `path` (the notify socket).
Status CheckDatagram(int fd, const std::string& path);
// A socket whose peer (SO_PEERCRED) is `pid` with `uid`.
Status CheckPeer(int fd, pid_t pid, uid_t uid);
Status CheckFifo(int fd);  // a pipe's read end
// The state dir's lock: the regular file STATE_DIR/relsupd.lock.
Status CheckLockFile(int fd, const std::string& state_dir);
Status CheckRegularFile(int fd);  // the old binary

// Every check above on every fd of `record`, and that no fd is named
// twice.
Status CheckHandoverFds(const HandoverRecord& record);

}  // namespace relsupd
