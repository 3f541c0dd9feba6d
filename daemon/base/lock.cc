#include "daemon/base/lock.h"

#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

namespace relsupd {

Result<Fd> LockDirectory(const std::string& dir) {
  const std::string path = dir + "/relsupd.lock";
  ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDWR | O_CREAT, 0644));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK)
      return Status::FromErrno("cannot lock '" + path + "'", errno);
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
      holder.pop_back();
    return Status(StatusCode::kBusy,
                  "state dir '" + dir + "' is in use by another relsupd daemon" +
                      (holder.empty() ? "" : " (pid " + holder + ")"));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0)
    return Status::FromErrno("cannot truncate '" + path + "'", errno);
  if (::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0)
    return Status::FromErrno("cannot write '" + path + "'", errno);
  return fd;
}

}  // namespace relsupd
