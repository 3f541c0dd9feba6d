#pragma once
// Manifest: every path of a release slot with its type, mode, size and
// content hash (or symlink target), sorted by path. The in-memory form:
// a slot stores it as tree objects (daemon/store/tree.h), whose root hash
// a release's digest covers. Value type.

#include <map>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/store/archive_reader.h"

namespace relsupd {

struct ManifestEntry {
  EntryType type = EntryType::kFile;
  uint32_t mode = 0;       // as sealed on disk
  uint64_t size = 0;       // files
  std::string sha256;      // files
  std::string target;      // symlinks
  bool operator==(const ManifestEntry&) const = default;
};

struct Manifest {
  std::map<std::string, ManifestEntry> entries;  // by path

  // Canonical text: a JSON array of [path, "f"|"d"|"l", mode, size, hash or
  // target], one entry per line, sorted by path. For display and tests;
  // slots no longer store it.
  std::string Serialize() const;
  static Result<Manifest> Parse(const std::string& text);
};

// Walks the slot at `slot_dir` (skipping .relsupd/) and hashes every file.
Result<Manifest> ScanSlot(const std::string& slot_dir);

struct ManifestDiff {
  std::vector<std::string> added, removed, changed;
  bool empty() const { return added.empty() && removed.empty() && changed.empty(); }
};
ManifestDiff DiffManifests(const Manifest& from, const Manifest& to);

}  // namespace relsupd
