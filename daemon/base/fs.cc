#include "daemon/base/fs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "daemon/base/fd.h"

namespace relsupd {

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec)))
    return Status::Ok();
  // Sealed slots have read-only directories: open them up first.
  if (std::filesystem::is_directory(
          std::filesystem::symlink_status(path, ec))) {
    ::chmod(path.c_str(), 0700);
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec))
        ::chmod(it->path().c_str(), 0700);
    }
  }
  std::filesystem::remove_all(path, ec);
  if (ec) return Status::FromErrno("cannot remove '" + path + "'", ec.value());
  return Status::Ok();
}

Status SyncDir(const std::string& path) {
  ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDONLY | O_DIRECTORY));
  if (::fsync(fd.get()) != 0)
    return Status::FromErrno("cannot fsync '" + path + "'", errno);
  return Status::Ok();
}

std::string FileKind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a fifo";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "of an unknown file type";
}

}  // namespace relsupd
