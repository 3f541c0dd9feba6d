#include "daemon/store/layout.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "daemon/base/fd.h"

namespace relsupd {
namespace {

// Makes `name` in `parent` (or finds it) a directory with exactly `mode`
// and, when `gid` is set and we are root, owned by root:gid. Returns its fd.
Result<Fd> EnsureDir(int parent, const std::string& name, const std::string& path,
                     mode_t mode, std::optional<gid_t> gid = std::nullopt) {
  if (::mkdirat(parent, name.c_str(), mode) != 0 && errno != EEXIST)
    return Status::FromErrno("cannot create directory '" + path + "'", errno);
  int raw = ::openat(parent, name.c_str(),
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | kOpenCloexec);
  if (raw < 0) return Status::FromErrno("cannot open directory '" + path + "'", errno);
  Fd fd(raw);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0)
    return Status::FromErrno("cannot stat '" + path + "'", errno);
  if (::geteuid() == 0) {
    const gid_t want_gid = gid.value_or(0);
    if ((st.st_uid != 0 || st.st_gid != want_gid) &&
        ::fchown(fd.get(), 0, want_gid) != 0)
      return Status::FromErrno("cannot chown '" + path + "'", errno);
  }
  if ((st.st_mode & 07777) != mode && ::fchmod(fd.get(), mode) != 0)
    return Status::FromErrno("cannot chmod '" + path + "'", errno);
  return fd;
}

}  // namespace

Status SecureStateDir(const std::string& state_dir) {
  RETURN_IF_ERROR(MakeDirs(state_dir, 0755));
  ASSIGN_OR_RETURN(Fd root, EnsureDir(AT_FDCWD, state_dir, state_dir, kStateDirMode));
  ASSIGN_OR_RETURN(Fd apps, EnsureDir(root.get(), "apps", state_dir + "/apps",
                                      kAppsDirMode));
  for (const char* dir : {"objects", "tmp", "logs"}) {
    ASSIGN_OR_RETURN(Fd fd, EnsureDir(root.get(), dir, state_dir + "/" + dir,
                                      kPrivateDirMode));
  }
  return Status::Ok();
}

std::optional<std::string> UntraversableParent(const std::string& state_dir) {
  std::filesystem::path p = std::filesystem::path(state_dir).lexically_normal();
  for (p = p.parent_path(); !p.empty(); p = p.parent_path()) {
    struct stat st{};
    if (::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) {
      char mode[8];
      snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      return "'" + p.string() + "' (mode " + mode + ")";
    }
    if (p == p.root_path()) break;
  }
  return std::nullopt;
}

Status SecureAppDir(const std::string& state_dir, const std::string& app,
                    gid_t gid) {
  const std::string apps_path = state_dir + "/apps";
  ASSIGN_OR_RETURN(Fd apps, EnsureDir(AT_FDCWD, apps_path, apps_path, kAppsDirMode));
  const std::string app_path = apps_path + "/" + app;
  ASSIGN_OR_RETURN(Fd dir, EnsureDir(apps.get(), app, app_path, kAppDirMode, gid));
  ASSIGN_OR_RETURN(Fd releases, EnsureDir(dir.get(), "releases",
                                          app_path + "/releases", 0755));
  ASSIGN_OR_RETURN(Fd builds, EnsureDir(dir.get(), "builds", app_path + "/builds",
                                        kPrivateDirMode));
  return Status::Ok();
}

}  // namespace relsupd
