#pragma once
// ArchiveReader: reads a tar artifact (plain, gzip or zstd) entry by entry,
// refusing anything a release slot must not hold.
//
// Every entry is checked before the caller sees it: paths are normalised
// and may not be absolute, contain "..", name the reserved ".relsupd", be
// too long or appear twice; only regular files, directories and symlinks
// with relative targets that stay inside the tree are admitted (hard links,
// devices, fifos and sockets are refused); setuid, setgid and sticky bits
// and group/other write are stripped from modes. Entry count, unpacked
// bytes and the compression ratio are capped. Errors name the artifact and
// the entry. Owns a libarchive handle; one thread at a time.

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "daemon/base/status.h"
#include "daemon/store/limits.h"

struct archive;

namespace relsupd {

enum class EntryType { kFile, kDir, kSymlink };

struct ArchiveEntry {
  std::string path;    // normalised, relative, no trailing slash
  EntryType type = EntryType::kFile;
  uint32_t mode = 0;   // permission bits after masking
  uint64_t size = 0;   // files only
  std::string target;  // symlinks only
};

// Normalises a path from an archive: strips "./" and trailing "/", refuses
// absolute paths, "..", empty names and the reserved top-level ".relsupd".
// Returns "" for the root itself.
Result<std::string> NormalizeEntryPath(std::string_view raw, uint64_t max_bytes);
// True when a symlink at `path` pointing at `target` resolves, lexically,
// to a place inside the tree.
bool SymlinkStaysInside(std::string_view path, std::string_view target);

class ArchiveReader {
 public:
  // Reads from `fd` (not owned, positioned at the start). `name` is used in
  // messages; `compressed_size` feeds the bomb check.
  static Result<std::unique_ptr<ArchiveReader>> Open(int fd, std::string name,
                                                     uint64_t compressed_size,
                                                     const StoreLimits& limits);
  ~ArchiveReader();
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;

  // The next valid entry, or nullopt at the end of the archive.
  Result<std::optional<ArchiveEntry>> Next();
  // Streams the current file's data to `sink` in chunks; the holes of a
  // sparse file, a trailing one included, as zeros.
  Status ReadData(const std::function<Status(std::string_view)>& sink);
  // "tar", "tar.gz" or "tar.zst"; known after the first Next().
  std::string format() const;
  uint64_t entries() const { return entries_; }
  uint64_t unpacked_bytes() const { return unpacked_; }
  // The archive file's bytes read so far: at the end, up to the archive's
  // end-of-archive marker and at most a read block (64 KiB) past it.
  uint64_t bytes_read() const;

 private:
  ArchiveReader(struct archive* a, std::string name, uint64_t compressed,
                const StoreLimits& limits)
      : a_(a), name_(std::move(name)), compressed_(compressed), limits_(limits) {}
  Status Refuse(const std::string& what) const;
  Status CountBytes(uint64_t n);

  struct archive* a_;
  std::string name_;
  uint64_t compressed_;
  StoreLimits limits_;
  uint64_t entries_ = 0;
  uint64_t unpacked_ = 0;
  std::string current_;
  uint64_t current_size_ = 0;  // the current file's size from its header
  std::set<std::string> seen_;
};

}  // namespace relsupd
