#include "daemon/store/fs.h"

#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace relsupd {

namespace {

Result<Fd> Openat2(int dirfd, const std::string& path, int flags, mode_t mode,
                   uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = resolve;
  long fd;
  do {
    fd = syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == EXDEV)
      return Status(StatusCode::kInvalidArgument,
                    "'" + path + "' resolves outside the slot", EXDEV);
    if (errno == ELOOP && (resolve & RESOLVE_NO_SYMLINKS))
      return Status(StatusCode::kInvalidArgument,
                    "'" + path + "' passes through a symlink", ELOOP);
    return Status::FromErrno("cannot open '" + path + "'", errno);
  }
  return Fd(static_cast<int>(fd));
}

}  // namespace

Result<Fd> OpenBeneath(int dirfd, const std::string& path, int flags, mode_t mode) {
  return Openat2(dirfd, path, flags, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
}

Result<Fd> OpenParentBeneath(int dirfd, const std::string& path,
                             std::string* name) {
  size_t slash = path.rfind('/');
  *name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (slash == std::string::npos)
    return OpenBeneath(dirfd, ".", O_PATH | O_DIRECTORY);
  const std::string parent = path.substr(0, slash);
  auto fd = Openat2(dirfd, parent, O_PATH | O_DIRECTORY, 0,
                    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
  if (fd.ok() || fd.status().error_number() != ENOENT) return fd;
  // Archives may leave out directory entries: make the parents.
  std::string grand_name;
  ASSIGN_OR_RETURN(Fd grand, OpenParentBeneath(dirfd, parent, &grand_name));
  if (::mkdirat(grand.get(), grand_name.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::FromErrno("cannot create directory '" + parent + "'", errno);
  return Openat2(dirfd, parent, O_PATH | O_DIRECTORY, 0,
                 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
}

}  // namespace relsupd
