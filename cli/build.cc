#include "cli/build.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <utility>
#include <vector>

#include "cli/ctl.h"
#include "daemon/base/fd.h"
#include "daemon/base/fs.h"
#include "daemon/base/paths.h"
#include "daemon/base/sha256.h"
#include "daemon/config/build_spec.h"
#include "daemon/config/process_file.h"

extern char** environ;

namespace relsupd::cli {
namespace {

// Deeper trees are refused rather than risk running out of fds: the copy and
// the walk hold two directory fds per level.
constexpr int kMaxDepth = 200;
constexpr size_t kIoBufferBytes = 1 << 16;
// 9999-12-31T23:59:59Z; later values are surely a mistake.
constexpr int64_t kMaxSourceDateEpoch = 253402300799;

struct FileId {
  dev_t dev;
  ino_t ino;
  bool operator==(const FileId&) const = default;
};

std::string Quote(const std::string& s) { return "'" + s + "'"; }

Status Unsupported(const std::string& path, mode_t mode) {
  return InvalidArgument(Quote(path) + " is " + FileKind(mode) +
                         "; only regular files, directories and symlinks can "
                         "go into an artifact");
}

Result<Fd> OpenAt(int dirfd, const std::string& name, int flags,
                  const std::string& path, mode_t mode = 0) {
  int fd;
  do {
    fd = ::openat(dirfd, name.c_str(), flags | kOpenCloexec, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::FromErrno("cannot open " + Quote(path), errno);
  return Fd(fd);
}

Result<Fd> OpenDirAt(int dirfd, const std::string& name,
                     const std::string& path) {
  return OpenAt(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, path);
}

// The names in the directory `dirfd` (without "." and ".."), sorted bytewise.
Result<std::vector<std::string>> ListDir(int dirfd, const std::string& path) {
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return Status::FromErrno("cannot read " + Quote(path), errno);
  DIR* d = ::fdopendir(dup);
  if (d == nullptr) {
    int err = errno;
    ::close(dup);
    return Status::FromErrno("cannot read " + Quote(path), err);
  }
  // The dup shares its offset with dirfd, which may have been read before.
  ::rewinddir(d);
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    dirent* e = ::readdir(d);
    if (e == nullptr) break;
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Status::FromErrno("cannot read " + Quote(path), err);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::string> ReadLinkAt(int dirfd, const std::string& name,
                               const std::string& path) {
  std::string buf(256, '\0');
  for (;;) {
    ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
    if (n < 0)
      return Status::FromErrno("cannot read symlink " + Quote(path), errno);
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    if (buf.size() >= (1 << 16))
      return InvalidArgument("symlink " + Quote(path) + " is too long");
    buf.resize(buf.size() * 2);
  }
}

Status StatAt(int dirfd, const std::string& name, const std::string& path,
              struct stat* st) {
  if (::fstatat(dirfd, name.c_str(), st, AT_SYMLINK_NOFOLLOW) != 0)
    return Status::FromErrno("cannot stat " + Quote(path), errno);
  return Status::Ok();
}

// ---- The scratch directory ------------------------------------------------

// A mkdtemp directory under $TMPDIR (or /tmp), removed with all its contents
// when the object dies. Removal failures are ignored: there is nobody left to
// tell, and the directory lives in a temp dir.
class ScratchDir {
 public:
  static Result<ScratchDir> Create() {
    const char* env = std::getenv("TMPDIR");
    std::string base = env != nullptr && *env != '\0' ? env : "/tmp";
    std::string templ = JoinPath(base, "relsupd-build.XXXXXX");
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr)
      return Status::FromErrno(
          "cannot create a scratch directory in " + Quote(base), errno);
    return ScratchDir(buf.data());
  }
  ScratchDir(ScratchDir&& o) noexcept : path_(std::exchange(o.path_, "")) {}
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir() {
    if (!path_.empty()) RemoveTree(path_).IgnoreError();
  }
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// ---- Copying DIR into the scratch directory ---------------------------------

struct CopyContext {
  std::vector<FileId> skip;  // the artifact file, its .tmp, the scratch dir
};

Status SetTimes(int fd, const struct stat& st, const std::string& path) {
  const timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(fd, times) != 0)
    return Status::FromErrno("cannot set times of " + Quote(path), errno);
  return Status::Ok();
}

Status CopyFile(int src_dir, int dst_dir, const std::string& name,
                const std::string& path, const struct stat& st) {
  ASSIGN_OR_RETURN(
      Fd in, OpenAt(src_dir, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY, path));
  ASSIGN_OR_RETURN(
      Fd out, OpenAt(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                     path, S_IRUSR | S_IWUSR));
  std::vector<char> buf(kIoBufferBytes);
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot read " + Quote(path), errno);
    }
    if (n == 0) break;
    RETURN_IF_ERROR(WriteAll(
        out.get(), std::string_view(buf.data(), static_cast<size_t>(n)),
        "the scratch copy of " + Quote(path)));
  }
  // Permission bits travel (the build may rely on x bits); set-id bits do not.
  if (::fchmod(out.get(), (st.st_mode & 0777) | S_IRUSR | S_IWUSR) != 0)
    return Status::FromErrno("cannot chmod the copy of " + Quote(path), errno);
  // Times travel too, so that make-style builds see what they would see in DIR.
  return SetTimes(out.get(), st, path);
}

Status CopyDirContents(int src_dir, int dst_dir, const std::string& path,
                       const CopyContext& ctx, int depth) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(src_dir, path));
  for (const std::string& name : names) {
    if (name == ".git") continue;
    const std::string child = JoinPath(path, name);
    struct stat st;
    RETURN_IF_ERROR(StatAt(src_dir, name, child, &st));
    if (std::find(ctx.skip.begin(), ctx.skip.end(),
                  FileId{st.st_dev, st.st_ino}) != ctx.skip.end())
      continue;
    if (S_ISDIR(st.st_mode)) {
      if (depth >= kMaxDepth)
        return FailedPrecondition(Quote(child) + " is nested deeper than " +
                                  std::to_string(kMaxDepth) + " levels");
      if (::mkdirat(dst_dir, name.c_str(), S_IRWXU) != 0)
        return Status::FromErrno("cannot copy " + Quote(child), errno);
      ASSIGN_OR_RETURN(Fd src, OpenDirAt(src_dir, name, child));
      ASSIGN_OR_RETURN(Fd dst, OpenDirAt(dst_dir, name, child));
      RETURN_IF_ERROR(
          CopyDirContents(src.get(), dst.get(), child, ctx, depth + 1));
      // The owner keeps rwx so the build can write and the cleanup can remove.
      if (::fchmod(dst.get(), (st.st_mode & 0777) | S_IRWXU) != 0)
        return Status::FromErrno("cannot chmod the copy of " + Quote(child),
                                 errno);
      RETURN_IF_ERROR(SetTimes(dst.get(), st, child));
    } else if (S_ISREG(st.st_mode)) {
      RETURN_IF_ERROR(CopyFile(src_dir, dst_dir, name, child, st));
    } else if (S_ISLNK(st.st_mode)) {
      ASSIGN_OR_RETURN(std::string target, ReadLinkAt(src_dir, name, child));
      if (::symlinkat(target.c_str(), dst_dir, name.c_str()) != 0)
        return Status::FromErrno("cannot copy symlink " + Quote(child), errno);
      const timespec times[2] = {st.st_atim, st.st_mtim};
      // Symlink times matter to nobody's build; a failure is harmless.
      (void)::utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
    } else {
      return Unsupported(child, st.st_mode);
    }
  }
  return Status::Ok();
}

// ---- Running build.command
// ---------------------------------------------------

volatile sig_atomic_t g_build_child = 0;
volatile sig_atomic_t g_build_signal = 0;

extern "C" void ForwardToBuildChild(int sig) {
  g_build_signal = sig;
  pid_t pid = g_build_child;
  if (pid > 0) ::kill(pid, sig);
}

// Restores a signal's disposition when it goes out of scope.
class SignalDisposition {
 public:
  SignalDisposition(int sig, void (*handler)(int)) : sig_(sig) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig_, &sa, &old_);
  }
  ~SignalDisposition() { ::sigaction(sig_, &old_, nullptr); }
  SignalDisposition(const SignalDisposition&) = delete;
  SignalDisposition& operator=(const SignalDisposition&) = delete;

 private:
  int sig_;
  struct sigaction old_ {};
};

// Owns posix_spawn's attribute objects.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// Runs `/bin/sh -c command` in `cwd` with stdin from /dev/null and its stdout
// sent to our stderr (so our stdout carries only the digest line); returns
// the wait status. Like system(3), SIGINT and SIGQUIT from the terminal reach
// the child while we ignore them; SIGTERM and SIGHUP sent to us are passed on,
// so the caller lives to remove the scratch directory.
Result<int> RunBuildCommand(const std::string& command,
                            const std::string& cwd) {
  SpawnSetup s;
  int rc = posix_spawn_file_actions_addopen(&s.actions, STDIN_FILENO,
                                            "/dev/null", O_RDONLY, 0);
  if (rc == 0)
    rc = posix_spawn_file_actions_adddup2(&s.actions, STDERR_FILENO,
                                          STDOUT_FILENO);
  if (rc == 0)
    rc = posix_spawn_file_actions_addchdir_np(&s.actions, cwd.c_str());
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&s.attr, &all);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&s.attr, &none);
  if (rc == 0)
    rc = posix_spawnattr_setflags(
        &s.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (rc != 0) return Status::FromErrno("cannot set up the build command", rc);

  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);

  // SIGTERM and SIGHUP stay blocked until the child's pid is known, so one
  // that arrives early is forwarded rather than lost or fatal.
  SignalDisposition ignore_int(SIGINT, SIG_IGN);
  SignalDisposition ignore_quit(SIGQUIT, SIG_IGN);
  SignalDisposition forward_term(SIGTERM, ForwardToBuildChild);
  SignalDisposition forward_hup(SIGHUP, ForwardToBuildChild);
  g_build_signal = 0;
  sigset_t term_hup, old_mask;
  sigemptyset(&term_hup);
  sigaddset(&term_hup, SIGTERM);
  sigaddset(&term_hup, SIGHUP);
  ::pthread_sigmask(SIG_BLOCK, &term_hup, &old_mask);
  pid_t pid = 0;
  rc = ::posix_spawn(&pid, "/bin/sh", &s.actions, &s.attr, argv, environ);
  if (rc == 0) g_build_child = pid;
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (rc != 0)
    return Status::FromErrno("cannot run the build command with /bin/sh", rc);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  g_build_child = 0;
  if (r < 0)
    return Status::FromErrno("cannot wait for the build command", errno);
  // A signal that came as the command finished still stops the build.
  if (g_build_signal != 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return FailedPrecondition("build interrupted by signal " +
                              std::to_string(g_build_signal));
  return status;
}

// ---- Packing
// ------------------------------------------------------------------

struct PackEntry {
  std::string name;  // path in the archive; directories end in '/'
  std::string disk;  // where it is now
  mode_t type = 0;   // AE_IFREG, AE_IFDIR or AE_IFLNK
  mode_t perm = 0;
  int64_t size = 0;
  std::string link;
};

// A symlink at `rel` (relative to the artifact root) may only point at a
// relative path that stays inside the root, as the release stage demands.
// `shown` names it in messages.
Status CheckSymlink(const std::string& rel, const std::string& shown,
                    const std::string& target) {
  if (target.empty())
    return InvalidArgument("symlink " + Quote(shown) + " has an empty target");
  if (target[0] == '/')
    return InvalidArgument("symlink " + Quote(shown) + " -> " + Quote(target) +
                           " is absolute; artifacts admit only relative "
                           "symlinks that stay inside");
  int depth = static_cast<int>(std::count(rel.begin(), rel.end(), '/'));
  size_t pos = 0;
  while (pos <= target.size()) {
    size_t slash = target.find('/', pos);
    if (slash == std::string::npos) slash = target.size();
    std::string_view part(target.data() + pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    depth += part == ".." ? -1 : 1;
    if (depth < 0)
      return InvalidArgument("symlink " + Quote(shown) + " -> " +
                             Quote(target) + " points outside the artifact");
  }
  return Status::Ok();
}

// Walks the directory `dirfd` (at `disk`, shown as `shown` in messages, with
// archive names starting with `prefix`) and appends what it finds to *out.
Status CollectEntries(int dirfd, const std::string& disk,
                      const std::string& prefix, const std::string& shown,
                      int depth, std::vector<PackEntry>* out) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dirfd, disk));
  for (const std::string& name : names) {
    const std::string rel = prefix + name;
    const std::string path = JoinPath(disk, name);
    const std::string show = JoinPath(shown, name);
    if (depth == 0 && name == ".relsupd")
      return InvalidArgument(Quote(show) +
                             " is a name reserved for relsupd at the artifact "
                             "root; the release stage would refuse it");
    struct stat st;
    RETURN_IF_ERROR(StatAt(dirfd, name, show, &st));
    PackEntry e;
    e.disk = path;
    if (S_ISDIR(st.st_mode)) {
      if (depth >= kMaxDepth)
        return FailedPrecondition(Quote(show) + " is nested deeper than " +
                                  std::to_string(kMaxDepth) + " levels");
      e.name = rel + "/";
      e.type = AE_IFDIR;
      e.perm = 0755;
      out->push_back(std::move(e));
      ASSIGN_OR_RETURN(Fd sub, OpenDirAt(dirfd, name, show));
      RETURN_IF_ERROR(
          CollectEntries(sub.get(), path, rel + "/", show, depth + 1, out));
    } else if (S_ISREG(st.st_mode)) {
      e.name = rel;
      e.type = AE_IFREG;
      e.perm = (st.st_mode & S_IXUSR) != 0 ? 0755 : 0644;
      e.size = st.st_size;
      out->push_back(std::move(e));
    } else if (S_ISLNK(st.st_mode)) {
      ASSIGN_OR_RETURN(e.link, ReadLinkAt(dirfd, name, show));
      RETURN_IF_ERROR(CheckSymlink(rel, show, e.link));
      e.name = rel;
      e.type = AE_IFLNK;
      e.perm = 0777;
      out->push_back(std::move(e));
    } else {
      return Unsupported(show, st.st_mode);
    }
  }
  return Status::Ok();
}

Status ArchiveError(struct archive* a, const std::string& what) {
  const char* msg = archive_error_string(a);
  return Status(StatusCode::kIoError,
                what + ": " + (msg != nullptr ? msg : "libarchive error"),
                archive_errno(a));
}

// Where libarchive's output goes: the .tmp file, hashed on the way.
struct Sink {
  int fd;
  std::string path;
  Sha256 hash;
  Status status;
};

extern "C" la_ssize_t SinkWrite(struct archive* a, void* client,
                                const void* buf, size_t n) {
  auto* sink = static_cast<Sink*>(client);
  std::string_view data(static_cast<const char*>(buf), n);
  Status s = WriteAll(sink->fd, data, Quote(sink->path));
  if (!s.ok()) {
    archive_set_error(a, s.error_number() != 0 ? s.error_number() : EIO, "%s",
                      s.message().c_str());
    sink->status = s;
    return -1;
  }
  sink->hash.Update(data);
  return static_cast<la_ssize_t>(n);
}

Status WriteEntries(struct archive* a, const std::vector<PackEntry>& entries,
                    int64_t mtime, const std::string& file) {
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(
      archive_entry_new(), &archive_entry_free);
  if (!entry) return Internal("cannot allocate an archive entry");
  std::vector<char> buf(kIoBufferBytes);
  for (const PackEntry& e : entries) {
    archive_entry_clear(entry.get());
    archive_entry_set_pathname(entry.get(), e.name.c_str());
    archive_entry_set_filetype(entry.get(), e.type);
    archive_entry_set_perm(entry.get(), e.perm);
    archive_entry_set_mtime(entry.get(), mtime, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    archive_entry_set_size(entry.get(), e.type == AE_IFREG ? e.size : 0);
    if (e.type == AE_IFLNK)
      archive_entry_set_symlink(entry.get(), e.link.c_str());
    Fd fd;
    if (e.type == AE_IFREG) {
      // Opened before the header is written so an unreadable file fails
      // cleanly.
      ASSIGN_OR_RETURN(fd, OpenFile(e.disk, O_RDONLY | O_NOFOLLOW | O_NOCTTY));
    }
    if (archive_write_header(a, entry.get()) != ARCHIVE_OK)
      return ArchiveError(
          a, "cannot write " + Quote(file) + " (entry " + Quote(e.name) + ")");
    if (e.type != AE_IFREG) continue;
    int64_t left = e.size;
    while (left > 0) {
      ssize_t n =
          ::read(fd.get(), buf.data(),
                 static_cast<size_t>(std::min<int64_t>(left, buf.size())));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("cannot read " + Quote(e.name), errno);
      }
      if (n == 0) break;
      if (archive_write_data(a, buf.data(), static_cast<size_t>(n)) != n)
        return ArchiveError(a, "cannot write " + Quote(file));
      left -= n;
    }
    if (left != 0)
      return FailedPrecondition(Quote(e.name) +
                                " changed size while being packed");
  }
  return Status::Ok();
}

Status FsyncDirOf(const std::string& file) {
  std::string dir = file;
  size_t slash = dir.rfind('/');
  dir = slash == std::string::npos ? "."
        : slash == 0               ? "/"
                                   : dir.substr(0, slash);
  ASSIGN_OR_RETURN(Fd fd, OpenFile(dir, O_RDONLY | O_DIRECTORY));
  if (::fsync(fd.get()) != 0)
    return Status::FromErrno("cannot fsync " + Quote(dir), errno);
  return Status::Ok();
}

// Removes file.tmp unless the rename happened.
class TmpFileGuard {
 public:
  explicit TmpFileGuard(std::string path) : path_(std::move(path)) {}
  ~TmpFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void Commit() { path_.clear(); }
  TmpFileGuard(const TmpFileGuard&) = delete;
  TmpFileGuard& operator=(const TmpFileGuard&) = delete;

 private:
  std::string path_;
};

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Checks that FILE can be written before any work is done.
Status CheckOutputFile(const std::string& file) {
  if (file.empty()) return InvalidArgument("no output file given (-o FILE)");
  if (file.back() == '/' || IsDir(file))
    return InvalidArgument("output file " + Quote(file) + " is a directory");
  size_t slash = file.rfind('/');
  std::string dir = slash == std::string::npos ? "."
                    : slash == 0               ? "/"
                                               : file.substr(0, slash);
  if (!IsDir(dir))
    return NotFound("cannot write " + Quote(file) + ": directory " +
                    Quote(dir) + " does not exist");
  return Status::Ok();
}

void AddSkip(const std::string& path, std::vector<FileId>* skip) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) skip->push_back({st.st_dev, st.st_ino});
}

Result<std::string> RealPath(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> p(
      ::realpath(path.c_str(), nullptr), &std::free);
  if (!p) return Status::FromErrno("cannot resolve " + Quote(path), errno);
  return std::string(p.get());
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status))
    return "build command failed with exit status " +
           std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = ::strsignal(WTERMSIG(status));
    return "build command was killed by signal " +
           std::to_string(WTERMSIG(status)) +
           (name != nullptr ? std::string(" (") + name + ")" : "");
  }
  return "build command ended with wait status " + std::to_string(status);
}

}  // namespace

std::string_view ArchiveFormatName(ArchiveFormat format) {
  switch (format) {
    case ArchiveFormat::kTarGz:
      return "tar.gz";
    case ArchiveFormat::kTarZst:
      return "tar.zst";
    case ArchiveFormat::kTar:
      return "tar";
  }
  return "tar.gz";
}

Result<ArchiveFormat> ParseArchiveFormat(std::string_view name) {
  if (name == "tar.gz") return ArchiveFormat::kTarGz;
  if (name == "tar.zst") return ArchiveFormat::kTarZst;
  if (name == "tar") return ArchiveFormat::kTar;
  return InvalidArgument("format '" + std::string(name) +
                         "' is not tar.gz, tar.zst or tar");
}

std::optional<ArchiveFormat> ArchiveFormatFromFileName(std::string_view file) {
  auto ends = [&](std::string_view s) {
    return file.size() > s.size() && file.substr(file.size() - s.size()) == s;
  };
  if (ends(".tar.gz") || ends(".tgz")) return ArchiveFormat::kTarGz;
  if (ends(".tar.zst") || ends(".tzst")) return ArchiveFormat::kTarZst;
  if (ends(".tar")) return ArchiveFormat::kTar;
  return std::nullopt;
}

Result<int64_t> SourceDateEpoch() {
  const char* env = std::getenv("SOURCE_DATE_EPOCH");
  if (env == nullptr || *env == '\0') return int64_t{0};
  std::string_view v(env);
  int64_t value = 0;
  bool ok = v.size() <= 12;
  for (char c : v) {
    ok = ok && c >= '0' && c <= '9';
    if (ok) value = value * 10 + (c - '0');
  }
  if (!ok || value > kMaxSourceDateEpoch)
    return InvalidArgument("SOURCE_DATE_EPOCH '" + std::string(v) +
                           "' is not a number of seconds since 1970 (0 to " +
                           std::to_string(kMaxSourceDateEpoch) + ")");
  return value;
}

namespace {

// PackTree, naming paths in messages as if `root` were `shown`.
Result<std::string> PackTreeShown(const std::string& root,
                                  const std::string& shown,
                                  const std::string& file, ArchiveFormat format,
                                  int64_t mtime, size_t* entries_out) {
  std::vector<PackEntry> entries;
  {
    ASSIGN_OR_RETURN(Fd dir, OpenFile(root, O_RDONLY | O_DIRECTORY));
    RETURN_IF_ERROR(CollectEntries(dir.get(), root, "", shown, 0, &entries));
  }
  std::sort(
      entries.begin(), entries.end(),
      [](const PackEntry& a, const PackEntry& b) { return a.name < b.name; });

  const std::string tmp = file + ".tmp";
  ASSIGN_OR_RETURN(
      Fd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644));
  TmpFileGuard guard(tmp);
  Sink sink{fd.get(), tmp, Sha256(), Status::Ok()};
  {
    std::unique_ptr<struct archive, decltype(&archive_write_free)> a(
        archive_write_new(), &archive_write_free);
    if (!a) return Internal("cannot allocate an archive writer");
    // Restricted pax: plain ustar headers unless a name or size needs pax.
    if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK)
      return ArchiveError(a.get(), "cannot set the tar format");
    int rc = ARCHIVE_OK;
    switch (format) {
      case ArchiveFormat::kTarGz:
        rc = archive_write_add_filter_gzip(a.get());
        // No mtime in the gzip header (libarchive never stores a name).
        if (rc == ARCHIVE_OK)
          rc = archive_write_set_filter_option(a.get(), "gzip", "timestamp",
                                               nullptr);
        break;
      case ArchiveFormat::kTarZst:
        rc = archive_write_add_filter_zstd(a.get());
        break;
      case ArchiveFormat::kTar:
        rc = archive_write_add_filter_none(a.get());
        break;
    }
    // A compressed stream ends where the compressor ends it: zero padding
    // after it is "trailing garbage" to zstd and gzip.
    if (rc == ARCHIVE_OK && format != ArchiveFormat::kTar)
      rc = archive_write_set_bytes_in_last_block(a.get(), 1);
    if (rc != ARCHIVE_OK)
      return ArchiveError(a.get(), "cannot set up " +
                                       std::string(ArchiveFormatName(format)) +
                                       " compression");
    if (archive_write_open(a.get(), &sink, nullptr, SinkWrite, nullptr) !=
        ARCHIVE_OK)
      return ArchiveError(a.get(), "cannot write " + Quote(tmp));
    Status s = WriteEntries(a.get(), entries, mtime, tmp);
    if (!s.ok()) return sink.status.ok() ? s : sink.status;
    if (archive_write_close(a.get()) != ARCHIVE_OK)
      return sink.status.ok()
                 ? ArchiveError(a.get(), "cannot write " + Quote(tmp))
                 : sink.status;
  }
  if (::fsync(fd.get()) != 0)
    return Status::FromErrno("cannot fsync " + Quote(tmp), errno);
  fd.Reset();
  if (::rename(tmp.c_str(), file.c_str()) != 0)
    return Status::FromErrno(
        "cannot rename " + Quote(tmp) + " to " + Quote(file), errno);
  guard.Commit();
  RETURN_IF_ERROR(FsyncDirOf(file));
  if (entries_out != nullptr) *entries_out = entries.size();
  return sink.hash.HexDigest();
}

}  // namespace

Result<std::string> PackTree(const std::string& root, const std::string& file,
                             ArchiveFormat format, int64_t mtime,
                             size_t* entries_out) {
  return PackTreeShown(root, ".", file, format, mtime, entries_out);
}

Result<std::string> BuildArtifact(const BuildOptions& options,
                                  BuildReport* report) {
  BuildReport local;
  if (report == nullptr) report = &local;
  *report = BuildReport{};
  const std::string& dir = options.dir;

  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return NotFound("source directory " + Quote(dir) + " does not exist");
    return Status::FromErrno("cannot stat " + Quote(dir), errno);
  }
  if (!S_ISDIR(st.st_mode))
    return InvalidArgument(Quote(dir) + " is not a directory");
  RETURN_IF_ERROR(CheckOutputFile(options.output_file));
  // The whole process file, before anything runs: a typo fails in a second,
  // not after the build command, and never reaches `release create`.
  if (Status files = CheckProcessFiles(dir, dir); !files.ok())
    return Status(files.code(), "the process file of " + Quote(dir) +
                                    " is not valid:\n" + files.message());
  ASSIGN_OR_RETURN(BuildSpec spec, LoadBuildSpec(dir));
  int64_t mtime;
  if (options.mtime.has_value()) {
    mtime = *options.mtime;
  } else {
    ASSIGN_OR_RETURN(mtime, SourceDateEpoch());
  }
  ASSIGN_OR_RETURN(std::string dir_real, RealPath(dir));

  ASSIGN_OR_RETURN(ScratchDir scratch, ScratchDir::Create());
  // The copy keeps DIR's name: some builds look at the name of their directory.
  std::string base = dir_real.substr(dir_real.rfind('/') + 1);
  const std::string tree = JoinPath(scratch.path(), base.empty() ? "src" : base);
  {
    CopyContext ctx;
    AddSkip(options.output_file, &ctx.skip);
    AddSkip(options.output_file + ".tmp", &ctx.skip);
    AddSkip(scratch.path(), &ctx.skip);
    ASSIGN_OR_RETURN(Fd src, OpenFile(dir, O_RDONLY | O_DIRECTORY));
    if (::mkdir(tree.c_str(), S_IRWXU) != 0)
      return Status::FromErrno("cannot create " + Quote(tree), errno);
    ASSIGN_OR_RETURN(Fd dst,
                     OpenFile(tree, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    RETURN_IF_ERROR(CopyDirContents(src.get(), dst.get(), dir, ctx, 0));
    if (::fchmod(dst.get(), (st.st_mode & 0777) | S_IRWXU) != 0)
      return Status::FromErrno("cannot chmod " + Quote(tree), errno);
    RETURN_IF_ERROR(SetTimes(dst.get(), st, tree));
  }

  if (!spec.command.empty()) {
    if (options.progress != nullptr)
      *options.progress
          << "relsupd: running build command in a scratch copy of "
          << Quote(dir) << ": " << spec.command << std::endl;
    ASSIGN_OR_RETURN(int wait_status, RunBuildCommand(spec.command, tree));
    if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
      report->command_exit_code =
          WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 1;
      return FailedPrecondition(DescribeWaitStatus(wait_status));
    }
  }

  const std::string out_dir =
      spec.output == "." ? tree : JoinPath(tree, spec.output);
  const std::string after =
      spec.command.empty() ? "" : " after the build command ran";
  if (!Exists(out_dir))
    return NotFound("build output " + Quote(spec.output) +
                    " does not exist in " + Quote(dir) + after);
  ASSIGN_OR_RETURN(std::string out_real, RealPath(out_dir));
  ASSIGN_OR_RETURN(std::string tree_real, RealPath(tree));
  if (out_real != tree_real && out_real.rfind(tree_real + "/", 0) != 0)
    return InvalidArgument("build output " + Quote(spec.output) +
                           " resolves to a path outside " + Quote(dir));
  if (!IsDir(out_real))
    return InvalidArgument("build output " + Quote(spec.output) +
                           " is not a directory" + after);
  report->has_process_file = Exists(JoinPath(out_real, kBuildSpecFile)) ||
                             Exists(JoinPath(out_real, "Procfile"));
  // What the release stage reads is build.output's process file; checked
  // again when that is not DIR's own.
  if (spec.output != "." || !spec.command.empty())
    if (Status files = CheckProcessFiles(out_real, spec.output); !files.ok())
      return Status(files.code(), "the process file of build output " +
                                      Quote(spec.output) + after +
                                      " is not valid:\n" + files.message());

  return PackTreeShown(out_real, spec.output, options.output_file,
                       options.format, mtime, &report->entries);
}

namespace {

// What `relsupd build --help` says after the options.
constexpr char kBuildHelpFooter[] =
    "What it does:\n"
    "  1. Copies DIR into a new scratch directory under $TMPDIR (or /tmp),\n"
    "     leaving out every '.git' and FILE itself if it lies inside DIR.\n"
    "     DIR is never changed.\n"
    "  2. Runs build.command from DIR/relsupd.yaml there with /bin/sh -c\n"
    "     (working directory: the scratch copy; stdin: /dev/null; its "
    "stdout\n"
    "     and stderr go to stderr, so stdout carries only the digest line).\n"
    "  3. Packs build.output of the scratch copy as the artifact's root and\n"
    "     removes the scratch directory, whatever happened.\n"
    "\n"
    "relsupd.yaml ('build:' is read here; the whole file, 'processes:'\n"
    "and 'release:' too, or the Procfile, is checked before the build\n"
    "command runs, and build.output's again before packing):\n"
    "  build:\n"
    "    command: make dist   # optional; without it DIR is packed as it is\n"
    "    output: dist         # optional; directory to pack, relative to\n"
    "                         # DIR, no '..' (default: '.', the whole tree)\n"
    "Without relsupd.yaml or its build: section, DIR is packed as it is.\n"
    "Unknown keys, wrong types and bad paths are reported as FILE:LINE:COL,\n"
    "every one found, one per line; nothing is written then (exit 1).\n"
    "Every key: README.md and relsupd-app(5).\n"
    "\n"
    "The artifact is reproducible: the same input gives the same bytes and\n"
    "the same sha256. Entries are sorted by path; headers are ustar/pax "
    "with\n"
    "mtime fixed to $SOURCE_DATE_EPOCH (or 0), owner 0:0 without names, no\n"
    "xattrs, ACLs, atime or ctime; modes are 0755 for directories and\n"
    "executable files, 0644 for other files; gzip stores no timestamp or\n"
    "name. Only regular files, directories and relative symlinks that stay\n"
    "inside may be packed; a fifo, socket or device is an error naming it.\n"
    "For the release stage, build.output should hold relsupd.yaml (or a\n"
    "Procfile) at its root.\n"
    "\n"
    "FILE is written as FILE.tmp and renamed into place; on success prints\n"
    "  sha256:<hex>  FILE\n"
    "On failure FILE is not written (an older FILE stays as it was) and\n"
    "no FILE.tmp is left behind. SIGTERM or SIGHUP is passed on to the\n"
    "build command, and the scratch directory is still removed.\n"
    "\n"
    "Exit codes: 0 ok; the build command's exit status if it failed (1 if a\n"
    "signal killed it); 1 any other error (DIR missing, relsupd.yaml\n"
    "invalid, build output missing, unsupported file, ...); 2 usage error.";

struct BuildArgs {
  std::string dir, output, format;
};

void RunBuild(const BuildArgs& args, int* exit_code) {
  BuildOptions options;
  options.dir = args.dir;
  options.output_file = args.output;
  if (!args.format.empty()) {
    auto format = ParseArchiveFormat(args.format);
    if (!format.ok()) {
      PrintError(std::cerr, format.status().message());
      *exit_code = kExitUsage;
      return;
    }
    options.format = *format;
  } else {
    options.format = ArchiveFormatFromFileName(args.output)
                         .value_or(ArchiveFormat::kTarGz);
  }
  options.progress = &std::cerr;
  BuildReport report;
  auto sha = BuildArtifact(options, &report);
  if (!sha.ok()) {
    PrintError(std::cerr, "build failed: " + sha.status().message());
    *exit_code = report.command_exit_code.value_or(kExitRefused);
    return;
  }
  if (!report.has_process_file)
    std::cerr << "relsupd: warning: the artifact has no relsupd.yaml or "
                 "Procfile at its root; a release of it will run no "
                 "processes\n";
  std::cout << "sha256:" << *sha << "  " << args.output << '\n';
  *exit_code = kExitOk;
}

}  // namespace

void AddBuildCommand(CLI::App& root, int* exit_code) {
  auto args = std::make_shared<BuildArgs>();
  CLI::App* build = root.add_subcommand(
      "build",
      "Build DIR into a reproducible artifact (tarball) and print its sha256; "
      "no daemon needed");
  build->add_option("DIR", args->dir, "Source directory")->required();
  build
      ->add_option("-o,--output", args->output,
                   "Artifact file to write (FILE.tmp, then renamed)")
      ->required();
  build
      ->add_option("--format", args->format,
                   "tar.gz (default), tar.zst or tar; without it, taken from "
                   "FILE's suffix (.tar.gz/.tgz, .tar.zst/.tzst, .tar)")
      ->check(CLI::IsMember({"tar.gz", "tar.zst", "tar"}));
  build->footer(kBuildHelpFooter);
  build->callback([args, exit_code] { RunBuild(*args, exit_code); });
}

}  // namespace relsupd::cli
