#pragma once
// The tar builder: artifacts for tests and benches, written with
// libarchive's writer (pax, optionally gzip or zstd), good ones and every
// kind of bad one (links leaving the tree, devices, sparse files, huge
// zero-filled files). Failures throw std::runtime_error (failure.h). Test
// thread only.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace relsupd::support {

enum class Filter { kNone, kGzip, kZstd };

struct Entry {
  std::string path;
  unsigned type = 0100000;  // AE_IFREG
  unsigned perm = 0644;
  std::string body;      // a regular file's content
  uint64_t zeros = 0;    // or this many zero bytes
  std::string symlink;   // a symlink's target
  std::string hardlink;  // a hard link to this earlier entry
  // A sparse file of `zeros` bytes: only these (offset, data) regions are
  // stored (GNU sparse 1.0 in pax); the rest are holes.
  std::vector<std::pair<uint64_t, std::string>> sparse;
};

Entry File(std::string path, std::string body, unsigned perm = 0644);
Entry Zeros(std::string path, uint64_t bytes);
Entry Dir(std::string path, unsigned perm = 0755);
Entry Symlink(std::string path, std::string target);
Entry HardLink(std::string path, std::string to);
// An entry of libarchive file type `type` (AE_IFIFO, AE_IFCHR...) and no
// data; a device is 1:3 (/dev/null's numbers).
Entry Special(std::string path, unsigned type);
Entry Fifo(std::string path);
Entry CharDevice(std::string path);
// A Procfile "web: ./bin/web".
Entry Procfile();

// `bytes` that do not compress (a fixed pseudo-random sequence).
std::string Noise(size_t bytes, uint32_t seed = 1);

// Writes a pax tar with `entries` to `file`, every mtime 1,700,000,000.
void WriteArchive(const std::string& file, const std::vector<Entry>& entries,
                  Filter filter = Filter::kGzip);

}  // namespace relsupd::support
