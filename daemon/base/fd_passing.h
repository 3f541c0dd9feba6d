#pragma once
// Open files passed over Unix sockets (SCM_RIGHTS): the one place that
// builds and parses the control messages (msghdr, cmsghdr) for them.
//
// SendFds attaches fds to one sendmsg(2); ReceiveFds reads one recvmsg(2)
// and gives the caller every fd that came with it, each close-on-exec
// (MSG_CMSG_CLOEXEC, always), or none of them: a message with more fds
// than the caller takes is refused whole. The caller owns what it is given
// (Fd); the fds refused are closed, here or on an FdCloser's thread.
// Neither function keeps state; any thread.
//
// Not for a socket with SO_PASSCRED (or SO_PASSSEC, SO_PASSPIDFD) on: the
// control buffer has room for fds only, so other control data would
// truncate the message. The notify socket, which reads credentials, parses
// its own.

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "daemon/base/fd.h"
#include "daemon/base/fd_closer.h"
#include "daemon/base/status.h"

namespace relsupd {

// Sends `bytes` in one sendmsg(2) with `flags` (add MSG_NOSIGNAL, and
// MSG_DONTWAIT where it applies) and `fds` attached in one SCM_RIGHTS
// message (none when `fds` is empty), retrying on EINTR. Returns how many
// bytes went: all of them on a datagram or seqpacket socket, perhaps fewer
// on a stream socket (the fds went with the first of them: send the rest
// without). The sender keeps its own fds. The error, "cannot send <what>:
// <strerror>", keeps sendmsg's errno (EAGAIN: the socket is full).
// REQUIRES: `bytes` not empty (fds travel only with data), at most
// FdCloser::kMaxFdsPerMessage fds.
Result<size_t> SendFds(int socket, std::string_view bytes,
                       std::span<const int> fds, int flags,
                       std::string_view what);

// What one ReceiveFds read.
struct ReceivedFds {
  // Bytes read into the buffer; 0 is the end of a stream (or an empty
  // datagram).
  size_t bytes = 0;
  // The message carried more fds than `max_fds`, or the kernel could not
  // install all of them (MSG_CTRUNC: out of fds, or no room): none of its
  // fds were given to the caller, all were closed.
  bool truncated = false;
};

// Reads one message from `socket` into `buf` with one recvmsg(2) with
// `flags` (MSG_DONTWAIT, MSG_PEEK, ...) plus MSG_CMSG_CLOEXEC, retrying on
// EINTR. The fds that came with it are appended to `fds`, in the order
// sent, when there are at most `max_fds` of them; otherwise the result
// says `truncated` and every one of them is closed: handed to `closer`
// when there is one (a peer's file can make close() block), else closed
// here. With MSG_PEEK the fds are copies (the socket keeps its own). The
// error, "cannot receive on fd <socket>: <strerror>", keeps recvmsg's errno
// (EAGAIN: nothing to read); nothing was received then.
// REQUIRES: `max_fds` at most FdCloser::kMaxFdsPerMessage; `fds` not null.
Result<ReceivedFds> ReceiveFds(int socket, std::span<char> buf, int flags,
                               size_t max_fds, std::vector<Fd>* fds,
                               FdCloser* closer = nullptr);

}  // namespace relsupd
