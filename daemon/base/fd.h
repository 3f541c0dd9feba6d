#pragma once
// Fd: sole owner of one file descriptor, closed on destruction.
//
// Every fd relsupd opens is born close-on-exec: open() calls pass
// kOpenCloexec, sockets SOCK_CLOEXEC, pipes pipe2(O_CLOEXEC). Any thread.

#include <fcntl.h>

#include <string>
#include <utility>

#include "daemon/base/status.h"

namespace relsupd {

inline constexpr int kOpenCloexec = O_CLOEXEC;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) Reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// open(2) with O_CLOEXEC added; the error names `path`.
Result<Fd> OpenFile(const std::string& path, int flags, mode_t mode = 0);

// Writes all of `data` to `fd`, retrying on EINTR and short writes.
Status WriteAll(int fd, std::string_view data, std::string_view what);

// Creates `path` and missing parents with `mode` (like mkdir -p).
Status MakeDirs(const std::string& path, mode_t mode);

// Writes `data` to `path` durably: path.new, fsync, rename, fsync directory.
// Not `durable`: no fsync (a process crash sees the old or the new file, a
// power loss maybe neither: for markers that matter only while it runs).
Status WriteFileAtomic(const std::string& path, std::string_view data,
                       mode_t mode, bool durable = true);

// Reads a whole file, up to `max_bytes`; larger files are an error.
Result<std::string> ReadFile(const std::string& path, size_t max_bytes);

}  // namespace relsupd
