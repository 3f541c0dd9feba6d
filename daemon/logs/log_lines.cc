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

// Opens `path` for reading; a missing file is an invalid Fd, not an error,
// and so is anything but a regular file (LogStore warns of one when it
// starts): never followed if a symlink, never waited for (a FIFO would
// block the open or the reads of the loop), never made a controlling tty.
Result<Fd> OpenForRead(const std::string& path) {
  Result<Fd> fd = OpenFile(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
  if (!fd.ok() && (fd.status().error_number() == ENOENT ||
                   fd.status().error_number() == ELOOP))
    return Fd();
  if (!fd.ok()) return fd;
  struct stat st;
  if (::fstat(fd->get(), &st) != 0)
    return Status::FromErrno("cannot stat '" + path + "'", errno);
  if (!S_ISREG(st.st_mode)) return Fd();
  return fd;
}

}  // namespace

// Calls fn for each non-empty line of `path`, last line first, until fn
// returns false. A final line without '\n' is passed too (a torn record
// fails to decode). A missing file has no lines.
Status ForEachLineBackward(const std::string& path, const LineFn& fn, off_t end) {
  ASSIGN_OR_RETURN(Fd fd, OpenForRead(path));
  if (!fd.valid()) return Status::Ok();
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return Status::FromErrno("cannot stat '" + path + "'", errno);
  off_t pos = end >= 0 ? std::min(end, st.st_size) : st.st_size;
  std::string chunk, carry;
  bool skipping = false;  // inside an over-long line; drop up to its start
  while (pos > 0) {
    size_t len = static_cast<size_t>(std::min<off_t>(pos, kReadBlock));
    pos -= static_cast<off_t>(len);
    chunk.resize(len);
    RETURN_IF_ERROR(PreadFull(fd.get(), chunk.data(), len, pos, path));
    chunk += carry;
    size_t line_end = chunk.size();
    while (line_end > 0) {
      size_t nl = chunk.rfind('\n', line_end - 1);
      if (nl == std::string::npos) break;
      std::string_view line(chunk.data() + nl + 1, line_end - nl - 1);
      if (skipping) {
        skipping = false;
      } else if (!line.empty() && !fn(line)) {
        return Status::Ok();
      }
      line_end = nl;
    }
    carry.assign(chunk, 0, line_end);
    if (carry.size() > kMaxLogLineBytes) {
      carry.clear();
      skipping = true;
    }
  }
  if (!skipping && !carry.empty()) fn(carry);
  return Status::Ok();
}

Result<off_t> LineBoundary(const std::string& path, const LineAfterFn& after) {
  ASSIGN_OR_RETURN(Fd fd, OpenForRead(path));
  if (!fd.valid()) return off_t{0};
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return Status::FromErrno("cannot stat '" + path + "'", errno);
  const off_t size = st.st_size;
  constexpr off_t kWindow = 16 * 1024;
  constexpr size_t kMaxJudged = 1 << 20;  // longer lines are not judged
  constexpr int kTriesPerStep = 8;        // lines tried past those that cannot tell
  std::string w;
  // The offset of the first '\n' in [from, limit), or `limit`.
  auto newline = [&](off_t from, off_t limit) -> Result<off_t> {
    for (off_t at = from; at < limit; at += kWindow) {
      w.resize(static_cast<size_t>(std::min(kWindow, limit - at)));
      RETURN_IF_ERROR(PreadFull(fd.get(), w.data(), w.size(), at, path));
      if (size_t nl = w.find('\n'); nl != std::string::npos) return at + static_cast<off_t>(nl);
    }
    return limit;
  };
  // Invariant: every line starting at or after `hi` is `after`; `lo` only
  // bounds the search. hi is lowered to the start of a line seen to be
  // `after` and nothing else, so a line that cannot tell never hides a
  // wanted one (it only makes the answer later).
  off_t lo = 0, hi = size;
  while (hi - lo > kWindow) {
    const off_t mid = lo + (hi - lo) / 2;
    ASSIGN_OR_RETURN(off_t nl, newline(mid - 1, hi));  // a line starting at mid counts
    if (nl >= hi - 1) {
      hi = mid;  // no line starts in [mid, hi): the same bound
      continue;
    }
    // start < hi here (nl < hi - 1), so the loop runs at least once, and
    // each pass moves lo or hi.
    off_t start = nl + 1;
    for (int tries = 0; tries < kTriesPerStep && start < hi; ++tries) {
      ASSIGN_OR_RETURN(off_t end, newline(start, size));
      std::optional<bool> is_after;
      if (static_cast<size_t>(end - start) <= kMaxJudged) {
        w.resize(static_cast<size_t>(end - start));
        RETURN_IF_ERROR(PreadFull(fd.get(), w.data(), w.size(), start, path));
        is_after = after(w);
      }
      if (is_after == true) {
        hi = start;
        break;
      }
      lo = end + 1;
      if (is_after == false) break;
      start = end + 1;
    }
  }
  // hi as a line start: the end of the line it falls in.
  if (hi == 0 || hi >= size) return hi;
  ASSIGN_OR_RETURN(off_t nl, newline(hi - 1, size));
  return std::min(nl + 1, size);
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
