#include "daemon/base/fd_passing.h"

#include <sys/socket.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>

namespace relsupd {
namespace {

// Room for the most fds one message can carry.
constexpr size_t kControlBytes =
    CMSG_SPACE(sizeof(int) * FdCloser::kMaxFdsPerMessage);

}  // namespace

Result<size_t> SendFds(int socket, std::string_view bytes,
                       std::span<const int> fds, int flags,
                       std::string_view what) {
  assert(!bytes.empty() && fds.size() <= FdCloser::kMaxFdsPerMessage);
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  alignas(cmsghdr) char control[kControlBytes] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(socket, &msg, flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return Status::FromErrno("cannot send " + std::string(what), errno);
  return static_cast<size_t>(n);
}

Result<ReceivedFds> ReceiveFds(int socket, std::span<char> buf, int flags,
                               size_t max_fds, std::vector<Fd>* fds,
                               FdCloser* closer) {
  assert(max_fds <= FdCloser::kMaxFdsPerMessage && fds != nullptr);
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[kControlBytes];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  // CMSG_SPACE rounds up: an odd `max_fds` leaves room for one more, which
  // the count below refuses.
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * max_fds);
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, flags | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return Status::FromErrno("cannot receive on fd " + std::to_string(socket),
                             errno);

  // Every fd now installed in this process, owned before anything else.
  std::vector<Fd> got;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr;
       cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
      got.emplace_back(fd);
    }
  }
  ReceivedFds r;
  r.bytes = static_cast<size_t>(n);
  r.truncated = (msg.msg_flags & MSG_CTRUNC) != 0 || got.size() > max_fds;
  if (!r.truncated) {
    fds->reserve(fds->size() + got.size());
    for (Fd& fd : got) fds->push_back(std::move(fd));
  } else if (closer != nullptr) {
    for (Fd& fd : got) closer->Close(std::move(fd));
  }
  // Otherwise `got` closes what it still holds here.
  return r;
}

}  // namespace relsupd
