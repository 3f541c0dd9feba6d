#include "daemon/logs/log_lines.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace relsupd {

Status PreadFull(int fd, char* buf, size_t len, off_t offset,
                 const std::string& path) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot read '" + path + "'", errno);
    }
    if (n == 0) return Corruption("'" + path + "' shrank while being read");
    buf += n;
    len -= static_cast<size_t>(n);
    offset += n;
  }
  return Status::Ok();
}

namespace {

constexpr size_t kReadBlock = 64 * 1024;

// Opens `path` for reading; a missing file is an invalid Fd, not an error.
Result<Fd> OpenForRead(const std::string& path) {
  Result<Fd> fd = OpenFile(path, O_RDONLY);
  if (!fd.ok() && fd.status().error_number() == ENOENT) return Fd();
  return fd;
}

}  // namespace

// Calls fn for each non-empty line of `path`, last line first, until fn
// returns false. A final line without '\n' is passed too (a torn record
// fails to decode). A missing file has no lines.
Status ForEachLineBackward(const std::string& path, const LineFn& fn) {
  ASSIGN_OR_RETURN(Fd fd, OpenForRead(path));
  if (!fd.valid()) return Status::Ok();
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return Status::FromErrno("cannot stat '" + path + "'", errno);
  off_t pos = st.st_size;
  std::string chunk, carry;
  bool skipping = false;  // inside an over-long line; drop up to its start
  while (pos > 0) {
    size_t len = static_cast<size_t>(std::min<off_t>(pos, kReadBlock));
    pos -= static_cast<off_t>(len);
    chunk.resize(len);
    RETURN_IF_ERROR(PreadFull(fd.get(), chunk.data(), len, pos, path));
    chunk += carry;
    size_t end = chunk.size();
    while (end > 0) {
      size_t nl = chunk.rfind('\n', end - 1);
      if (nl == std::string::npos) break;
      std::string_view line(chunk.data() + nl + 1, end - nl - 1);
      if (skipping) {
        skipping = false;
      } else if (!line.empty() && !fn(line)) {
        return Status::Ok();
      }
      end = nl;
    }
    carry.assign(chunk, 0, end);
    if (carry.size() > kMaxLogLineBytes) {
      carry.clear();
      skipping = true;
    }
  }
  if (!skipping && !carry.empty()) fn(carry);
  return Status::Ok();
}

// Calls fn for each non-empty line of `path`, first line first, until fn
// returns false. Same rules as ForEachLineBackward.
Status ForEachLineForward(const std::string& path, const LineFn& fn) {
  ASSIGN_OR_RETURN(Fd fd, OpenForRead(path));
  if (!fd.valid()) return Status::Ok();
  std::string block(kReadBlock, '\0');
  std::string carry;
  bool skipping = false;
  for (;;) {
    ssize_t n = ::read(fd.get(), block.data(), block.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot read '" + path + "'", errno);
    }
    if (n == 0) break;
    std::string_view data(block.data(), static_cast<size_t>(n));
    while (!data.empty()) {
      const void* hit = std::memchr(data.data(), '\n', data.size());
      if (hit == nullptr) {
        if (!skipping) carry.append(data);
        if (carry.size() > kMaxLogLineBytes) {
          carry.clear();
          skipping = true;
        }
        break;
      }
      size_t len =
          static_cast<size_t>(static_cast<const char*>(hit) - data.data());
      std::string_view line = data.substr(0, len);
      data.remove_prefix(len + 1);
      if (skipping) {
        skipping = false;
        continue;
      }
      if (!carry.empty()) {
        carry.append(line);
        line = carry;
      }
      if (!line.empty() && !fn(line)) return Status::Ok();
      carry.clear();
    }
  }
  if (!skipping && !carry.empty()) fn(carry);
  return Status::Ok();
}

}  // namespace relsupd
