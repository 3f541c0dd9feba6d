#include "daemon/store/archive_reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <vector>

namespace relsupd {
namespace {

constexpr size_t kBlockBytes = 64 * 1024;

std::vector<std::string_view> Split(std::string_view p) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    if (slash == std::string_view::npos) slash = p.size();
    parts.push_back(p.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// libarchive's message for its last error: may be null (an open that fails
// while bidding on a corrupt gzip stream sets none).
std::string ErrorText(struct archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? text : "unknown error";
}

}  // namespace

Result<std::string> NormalizeEntryPath(std::string_view raw, uint64_t max_bytes) {
  const std::string shown(raw);
  if (raw.size() > max_bytes)
    return InvalidArgument("entry '" + shown.substr(0, 80) + "...' has a path longer than " +
                           std::to_string(max_bytes) + " bytes");
  if (!raw.empty() && raw[0] == '/')
    return InvalidArgument("entry '" + shown + "' has an absolute path");
  std::string out;
  for (std::string_view part : Split(raw)) {
    if (part.empty() || part == ".") continue;
    if (part == "..")
      return InvalidArgument("entry '" + shown + "' leaves the slot ('..')");
    if (part.size() > 255)
      return InvalidArgument("entry '" + shown + "' has a name longer than 255 bytes");
    if (!out.empty()) out += '/';
    out += part;
  }
  if (out == ".relsupd" || out.rfind(".relsupd/", 0) == 0)
    return InvalidArgument("entry '" + shown + "' uses the reserved name '.relsupd'");
  return out;
}

bool SymlinkStaysInside(std::string_view path, std::string_view target) {
  if (target.empty() || target[0] == '/') return false;
  std::vector<std::string_view> parts = Split(path);
  parts.pop_back();  // the link's own name
  size_t depth = 0;
  for (std::string_view p : parts)
    if (!p.empty() && p != ".") ++depth;
  for (std::string_view p : Split(target)) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (depth == 0) return false;
      --depth;
    } else {
      ++depth;
    }
  }
  return true;
}

Result<std::unique_ptr<ArchiveReader>> ArchiveReader::Open(
    int fd, std::string name, uint64_t compressed_size, const StoreLimits& limits) {
  if (compressed_size > limits.max_artifact_bytes)
    return InvalidArgument("artifact '" + name + "' is " +
                           std::to_string(compressed_size) +
                           " bytes, over the limit of " +
                           std::to_string(limits.max_artifact_bytes));
  struct archive* a = archive_read_new();
  if (a == nullptr) return Internal("archive_read_new failed");
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_format_tar(a);
  std::unique_ptr<ArchiveReader> r(
      new ArchiveReader(a, std::move(name), compressed_size, limits));
  if (archive_read_open_fd(a, fd, kBlockBytes) != ARCHIVE_OK)
    return InvalidArgument("artifact '" + r->name_ + "' is not a tar archive: " + ErrorText(a) +
                           " (an artifact is a tar, tar.gz or tar.zst file, as `relsupd build` "
                           "makes)");
  return r;
}

ArchiveReader::~ArchiveReader() { archive_read_free(a_); }

uint64_t ArchiveReader::bytes_read() const {
  const la_int64_t n = archive_filter_bytes(a_, -1);
  return n > 0 ? static_cast<uint64_t>(n) : 0;
}

std::string ArchiveReader::format() const {
  switch (archive_filter_code(a_, 0)) {
    case ARCHIVE_FILTER_GZIP: return "tar.gz";
    case ARCHIVE_FILTER_ZSTD: return "tar.zst";
    default: return "tar";
  }
}

Status ArchiveReader::Refuse(const std::string& what) const {
  return InvalidArgument("artifact '" + name_ + "': " + what);
}

Status ArchiveReader::CountBytes(uint64_t n) {
  unpacked_ += n;
  if (unpacked_ > limits_.max_unpacked_bytes)
    return Refuse("unpacks to more than " +
                  std::to_string(limits_.max_unpacked_bytes) +
                  " bytes (max_unpacked_bytes)");
  if (unpacked_ > StoreLimits::kRatioGraceBytes &&
      unpacked_ / std::max<uint64_t>(compressed_, 1) >
          limits_.max_compression_ratio)
    return Refuse("unpacks to more than " +
                  std::to_string(limits_.max_compression_ratio) +
                  " times its size: refusing a decompression bomb");
  return Status::Ok();
}

Result<std::optional<ArchiveEntry>> ArchiveReader::Next() {
  for (;;) {
    struct archive_entry* e = nullptr;
    int rc = archive_read_next_header(a_, &e);
    if (rc == ARCHIVE_EOF) {
      if (entries_ == 0 && archive_format(a_) == 0)
        return Refuse("is not a tar archive");
      return std::optional<ArchiveEntry>();
    }
    if (rc < ARCHIVE_WARN) {
      std::string err = ErrorText(a_);
      return Refuse(entries_ == 0 ? "is not a readable tar archive: " + err
                                  : "is truncated or corrupt after entry '" +
                                        current_ + "': " + err);
    }
    if (++entries_ > limits_.max_entries)
      return Refuse("holds more than " + std::to_string(limits_.max_entries) +
                    " entries (max_entries)");
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) return Refuse("an entry has no path");
    auto path = NormalizeEntryPath(raw, limits_.max_path_bytes);
    if (!path.ok()) return Refuse(path.status().message());
    current_ = raw;
    current_size_ = 0;
    ArchiveEntry out;
    out.path = *path;
    if (archive_entry_hardlink(e) != nullptr)
      return Refuse("entry '" + current_ + "' is a hard link (to '" +
                    archive_entry_hardlink(e) + "'); hard links are not allowed");
    const mode_t type = archive_entry_filetype(e);
    const uint32_t perm = archive_entry_perm(e);
    switch (type) {
      case AE_IFREG:
        out.type = EntryType::kFile;
        out.mode = perm & 0755;
        if (archive_entry_size_is_set(e)) out.size = static_cast<uint64_t>(archive_entry_size(e));
        if (out.size > limits_.max_unpacked_bytes)
          return Refuse("entry '" + current_ + "' is larger than max_unpacked_bytes");
        current_size_ = out.size;
        break;
      case AE_IFDIR:
        out.type = EntryType::kDir;
        out.mode = (perm & 0755) | 0700;
        break;
      case AE_IFLNK: {
        out.type = EntryType::kSymlink;
        out.mode = 0777;
        const char* t = archive_entry_symlink(e);
        out.target = t ? t : "";
        if (out.target.empty() || out.target[0] == '/')
          return Refuse("symlink '" + current_ + "' -> '" + out.target +
                        "' must have a relative target");
        if (!SymlinkStaysInside(out.path, out.target))
          return Refuse("symlink '" + current_ + "' -> '" + out.target +
                        "' leaves the slot");
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
        return Refuse("entry '" + current_ + "' is a device node");
      case AE_IFIFO:
        return Refuse("entry '" + current_ + "' is a fifo");
      case AE_IFSOCK:
        return Refuse("entry '" + current_ + "' is a socket");
      default:
        return Refuse("entry '" + current_ + "' has an unsupported type");
    }
    if (out.path.empty()) {
      if (out.type == EntryType::kDir) continue;  // "./" itself
      return Refuse("entry '" + current_ + "' names the slot root");
    }
    if (!seen_.insert(out.path).second)
      return Refuse("entry '" + current_ + "' appears twice");
    return std::optional<ArchiveEntry>(std::move(out));
  }
}

Status ArchiveReader::ReadData(const std::function<Status(std::string_view)>& sink) {
  const void* buf;
  size_t size;
  la_int64_t offset;
  uint64_t expected = 0;
  for (;;) {
    int rc = archive_read_data_block(a_, &buf, &size, &offset);
    if (rc < ARCHIVE_WARN && rc != ARCHIVE_EOF)
      return Refuse("entry '" + current_ + "' is truncated or corrupt: " +
                    ErrorText(a_));
    // Sparse files come as blocks with gaps; the gaps read as zeros. A
    // hole that runs to the end of the file has no block after it: at the
    // end, the file is filled up to the size its header gives (libarchive
    // reports that size as the offset of its EOF as well).
    uint64_t off = static_cast<uint64_t>(offset);
    if (rc == ARCHIVE_EOF) off = std::max(off, current_size_);
    while (expected < off) {
      static const char kZeros[4096] = {};
      uint64_t n = std::min<uint64_t>(sizeof kZeros, off - expected);
      RETURN_IF_ERROR(CountBytes(n));
      RETURN_IF_ERROR(sink(std::string_view(kZeros, n)));
      expected += n;
    }
    if (rc == ARCHIVE_EOF) return Status::Ok();
    RETURN_IF_ERROR(CountBytes(size));
    RETURN_IF_ERROR(sink(std::string_view(static_cast<const char*>(buf), size)));
    expected += size;
  }
}

}  // namespace relsupd
