#include "daemon/base/fd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace relsupd {

void Fd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<Fd> OpenFile(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | kOpenCloexec, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::FromErrno("cannot open '" + path + "'", errno);
  return Fd(fd);
}

Status WriteAll(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot write " + std::string(what), errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status MakeDirs(const std::string& path, mode_t mode) {
  std::string partial;
  for (size_t pos = 0; pos != std::string::npos;) {
    size_t next = path.find('/', pos + 1);
    partial = path.substr(0, next);
    pos = next;
    if (partial.empty() || partial == "/") continue;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST)
      return Status::FromErrno("cannot create directory '" + partial + "'",
                               errno);
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Status::FromErrno("cannot stat '" + path + "'", errno);
  if (!S_ISDIR(st.st_mode))
    return FailedPrecondition("'" + path + "' exists and is not a directory");
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view data,
                       mode_t mode, bool durable) {
  const std::string tmp = path + ".new";
  {
    ASSIGN_OR_RETURN(Fd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
    RETURN_IF_ERROR(WriteAll(fd.get(), data, "'" + tmp + "'"));
    if (durable && ::fsync(fd.get()) != 0)
      return Status::FromErrno("cannot fsync '" + tmp + "'", errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::FromErrno("cannot rename '" + tmp + "'", errno);
  if (!durable) return Status::Ok();
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  ASSIGN_OR_RETURN(Fd dfd, OpenFile(dir, O_RDONLY | O_DIRECTORY));
  if (::fsync(dfd.get()) != 0)
    return Status::FromErrno("cannot fsync '" + dir + "'", errno);
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  ASSIGN_OR_RETURN(Fd fd, OpenFile(path, O_RDONLY));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot read '" + path + "'", errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes)
      return InvalidArgument("'" + path + "' is larger than " +
                             std::to_string(max_bytes) + " bytes");
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace relsupd
