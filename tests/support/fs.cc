#include "tests/support/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/support/failure.h"

namespace relsupd::support {

namespace fs = std::filesystem;

namespace {

// Reads all of `path` into `out`; false (errno set) when it cannot be
// opened or read. An fd of its own, close-on-exec: tests fork.
bool ReadAll(const std::string& path, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      errno = e;
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

}  // namespace

std::string ReadFileOrEmpty(const std::string& path) {
  std::string out;
  if (!ReadAll(path, &out)) return "";
  return out;
}

std::string ReadText(const std::string& path) {
  std::string out;
  if (!ReadAll(path, &out)) FailErrno("cannot read " + path);
  return out;
}

void WriteText(const std::string& path, std::string_view content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) FailErrno("open " + path);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      FailErrno("write " + path);
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

struct stat Lstat(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) FailErrno("lstat " + path);
  return st;
}

void ReplaceFile(const std::string& path, const std::string& content) {
  const std::string parent = fs::path(path).parent_path().string();
  ::chmod(parent.c_str(), 0755);  // u+w on a sealed directory
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    FailErrno("unlink " + path);
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) Fail("cannot write " + path);
}

void RemoveFile(const std::string& path) {
  const std::string parent = fs::path(path).parent_path().string();
  ::chmod(parent.c_str(), 0755);
  if (::unlink(path.c_str()) != 0) FailErrno("unlink " + path);
}

int OrphanObjects(const std::string& objects_dir) {
  int n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(objects_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_nlink == 1)
      ++n;
  }
  return n;
}

}  // namespace relsupd::support
